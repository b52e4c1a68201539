/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "format/sha256.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/json.h"

/* compact: for names ("20261129T180102Z"); else RFC 3339 for the manifest. */
static char *utc_now(bool compact) {
        char buf[64];
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        if (compact)
                strftime(buf, sizeof(buf), "%Y%m%dT%H%M%SZ", &tm);
        else
                strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
        return strdup(buf);
}

char *ckpt_default_name(const char *type, const char *id) {
        _cleanup_free_ char *when = utc_now(true);
        char *name = NULL;
        if (!when || asprintf(&name, "%s-%s-%s", type, id && *id ? id : "unnamed", when) < 0)
                return NULL;
        /* Ids come from users and daemons: keep the name a single path component. */
        for (char *p = name; *p; p++)
                if (*p == '/' || *p == ' ' || *p == ':')
                        *p = '_';
        if (name[0] == '.')
                name[0] = '_';
        return name;
}

json_object *ckpt_host_info(void) {
        struct utsname u;
        json_object *o = json_object_new_object();
        if (!o || uname(&u) < 0)
                return o;
        json_object_object_add(o, "hostname", json_object_new_string(u.nodename));
        json_object_object_add(o, "kernel", json_object_new_string(u.release));
        json_object_object_add(o, "arch", json_object_new_string(u.machine));
        return o;
}

int ckpt_create(const char *root, const char *name, const char *type, struct cryo_checkpoint **out,
                struct cryo_error **err) {
        if (!name || !*name || strchr(name, '/') || name[0] == '.')
                return cryo_error_set(err, EINVAL, "invalid checkpoint name '%s'", name ? name : "");
        int r = fs_mkdir_p(root, 0700, err);
        if (r < 0)
                return cryo_error_prefix(err, "checkpoint root");

        _cleanup_ckpt_ struct cryo_checkpoint *ck = calloc(1, sizeof(*ck));
        if (!ck)
                return cryo_error_set(err, ENOMEM, "out of memory");
        ck->dirfd = -1;
        ck->writing = true;
        ck->final_path = fs_path_join(root, name);
        if (!ck->final_path)
                return cryo_error_set(err, ENOMEM, "out of memory");
        if (access(ck->final_path, F_OK) == 0)
                return cryo_error_set(err, EEXIST, "checkpoint %s already exists", ck->final_path);

        /* Hidden and suffixed: ckpt_list() never shows it, so an interrupted
         * dump leaves nothing that looks like a checkpoint. */
        _cleanup_free_ char *tmpl = NULL;
        if (asprintf(&tmpl, "%s/.%s.tmp-XXXXXX", root, name) < 0)
                return cryo_error_set(err, ENOMEM, "out of memory");
        if (!mkdtemp(tmpl))
                return cryo_error_errno(err, errno, "cannot create a directory under %s", root);
        ck->path = steal_pointer(&tmpl);
        ck->dirfd = open(ck->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (ck->dirfd < 0)
                return cryo_error_errno(err, errno, "cannot open %s", ck->path);

        ck->manifest = json_object_new_object();
        _cleanup_free_ char *created = utc_now(false);
        if (!ck->manifest || !created)
                return cryo_error_set(err, ENOMEM, "out of memory");
        json_object_object_add(ck->manifest, "format_version", json_object_new_int(CRYO_FORMAT_VERSION));
        json_object_object_add(ck->manifest, "cryo_version", json_object_new_string(CRYO_VERSION));
        json_object_object_add(ck->manifest, "type", json_object_new_string(type));
        json_object_object_add(ck->manifest, "name", json_object_new_string(name));
        json_object_object_add(ck->manifest, "created", json_object_new_string(created));
        json_object_object_add(ck->manifest, "host", ckpt_host_info());
        *out = steal_pointer(&ck);
        return 0;
}

int ckpt_open_subdir(struct cryo_checkpoint *ck, const char *name, bool create, int *fd,
                     struct cryo_error **err) {
        if (create && mkdirat(ck->dirfd, name, 0700) < 0 && errno != EEXIST)
                return cryo_error_errno(err, errno, "cannot create %s/%s", ck->path, name);
        int r = openat(ck->dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (r < 0)
                return cryo_error_errno(err, errno, "cannot open %s/%s", ck->path, name);
        *fd = r;
        return 0;
}

const char *ckpt_type(const struct cryo_checkpoint *ck) {
        return cryo_json_str(ck->manifest, "type", "unknown");
}

/* Hashes every regular file below dirfd into `files` ("sub/dir/name" keys),
 * tightening permissions on the way: checkpoints hold process memory. */
static int hash_tree(int dirfd, const char *prefix, json_object *files, uint64_t *bytes, int depth,
                     struct cryo_error **err) {
        if (depth > 32)
                return cryo_error_set(err, ELOOP, "checkpoint tree too deep at %s", prefix);
        _cleanup_closedir_ DIR *d = fs_opendir_at(dirfd);
        if (!d)
                return cryo_error_errno(err, errno, "cannot read directory %s", prefix);
        struct dirent *de;
        while ((de = readdir(d))) {
                if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                        continue;
                if (!*prefix && !strcmp(de->d_name, CRYO_MANIFEST_FILE))
                        continue;
                _cleanup_free_ char *rel = NULL;
                if (asprintf(&rel, "%s%s%s", prefix, *prefix ? "/" : "", de->d_name) < 0)
                        return cryo_error_set(err, ENOMEM, "out of memory");
                struct stat st;
                if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        return cryo_error_errno(err, errno, "cannot stat %s", rel);
                if (S_ISDIR(st.st_mode)) {
                        _cleanup_close_ int sub =
                                openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
                        if (sub < 0)
                                return cryo_error_errno(err, errno, "cannot open %s", rel);
                        (void) fchmod(sub, 0700);
                        int r = hash_tree(sub, rel, files, bytes, depth + 1, err);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (!S_ISREG(st.st_mode))
                        continue;
                (void) fchmodat(dirfd, de->d_name, 0600, 0);
                /* Start the write-back now, so the disk works while the
                 * checksums are computed and the final fsync has less to
                 * wait for. */
                _cleanup_close_ int wfd = openat(dirfd, de->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
                if (wfd >= 0)
                        (void) sync_file_range(wfd, 0, 0, SYNC_FILE_RANGE_WRITE);
                char hex[SHA256_HEX_LEN + 1];
                uint64_t size = 0;
                int r = sha256_file(dirfd, de->d_name, hex, &size, err);
                if (r < 0)
                        return r;
                json_object *entry = json_object_new_object();
                json_object_object_add(entry, "size", json_object_new_uint64(size));
                json_object_object_add(entry, "sha256", json_object_new_string(hex));
                json_object_object_add(files, rel, entry);
                *bytes += size;
        }
        return 0;
}

int ckpt_commit(struct cryo_checkpoint *ck, struct cryo_error **err) {
        if (!ck->writing || ck->committed)
                return cryo_error_set(err, EINVAL, "checkpoint is not being written");

        uint64_t start = cryo_now_usec(), bytes = 0;
        json_object *files = json_object_new_object();
        if (!files)
                return cryo_error_set(err, ENOMEM, "out of memory");
        json_object_object_add(ck->manifest, "files", files);
        int r = hash_tree(ck->dirfd, "", files, &bytes, 0, err);
        if (r < 0)
                return cryo_error_prefix(err, "cannot checksum the checkpoint");
        r = fs_sync_tree(ck->dirfd, err);
        if (r < 0)
                return cryo_error_prefix(err, "cannot sync the checkpoint");

        /* The manifest carries the write phase too, so it is timed up to the
         * last step that can be measured before writing it. */
        cryo_stats_add(&ck->stats, CRYO_PHASE_WRITE, cryo_now_usec() - start, bytes);
        json_object_object_add(ck->manifest, "stats", cryo_stats_to_json(&ck->stats));
        json_object_object_add(ck->manifest, "size", json_object_new_uint64(bytes));
        r = cryo_json_write_file(ck->dirfd, CRYO_MANIFEST_FILE, ck->manifest, 0600, err);
        if (r < 0)
                return r;
        if (fsync(ck->dirfd) < 0)
                return cryo_error_errno(err, errno, "cannot sync %s", ck->path);

        if (renameat2(AT_FDCWD, ck->path, AT_FDCWD, ck->final_path, RENAME_NOREPLACE) < 0)
                return cryo_error_errno(err, errno, "cannot move the checkpoint into place at %s",
                                        ck->final_path);
        _cleanup_free_ char *parent = strdup(ck->final_path);
        if (parent) {
                char *slash = strrchr(parent, '/');
                if (slash)
                        *(slash == parent ? slash + 1 : slash) = '\0';
                _cleanup_close_ int pfd = open(slash ? parent : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (pfd >= 0)
                        (void) fsync(pfd);
        }
        free(ck->path);
        ck->path = steal_pointer(&ck->final_path);
        ck->committed = true;
        return 0;
}

static int verify_file(struct cryo_checkpoint *ck, const char *rel, json_object *entry,
                       enum ckpt_verify verify, struct cryo_error **err) {
        if (strstr(rel, "..") || rel[0] == '/')
                return cryo_error_set(err, EBADMSG, "manifest lists a path outside the checkpoint: %s", rel);
        struct stat st;
        if (fstatat(ck->dirfd, rel, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                if (errno == ENOENT)
                        return cryo_error_set(err, ENOENT, "checkpoint is incomplete: %s is missing", rel);
                return cryo_error_errno(err, errno, "cannot stat %s", rel);
        }
        int64_t want = cryo_json_int(entry, "size", -1);
        if (!S_ISREG(st.st_mode) || want < 0)
                return cryo_error_set(err, EBADMSG, "checkpoint file %s is not what the manifest describes",
                                      rel);
        if (st.st_size != want)
                return cryo_error_set(err, EBADMSG,
                                      "checkpoint file %s is %s: %lld bytes, the manifest says %lld", rel,
                                      st.st_size < want ? "truncated" : "longer than recorded",
                                      (long long) st.st_size, (long long) want);
        if (verify < CKPT_VERIFY_FULL)
                return 0;
        char hex[SHA256_HEX_LEN + 1];
        int r = sha256_file(ck->dirfd, rel, hex, NULL, err);
        if (r < 0)
                return r;
        if (strcmp(hex, cryo_json_str(entry, "sha256", "")) != 0)
                return cryo_error_set(
                        err, EBADMSG,
                        "checkpoint file %s is corrupted: its SHA-256 does not match the manifest", rel);
        return 0;
}

int ckpt_verify(struct cryo_checkpoint *ck, enum ckpt_verify verify, struct cryo_error **err) {
        if (verify == CKPT_VERIFY_NONE)
                return 0;
        json_object *files = cryo_json_get(ck->manifest, "files");
        if (!files || !json_object_is_type(files, json_type_object))
                return cryo_error_set(err, EBADMSG, "manifest of %s has no file list", ck->path);
        uint64_t start = cryo_now_usec(), bytes = 0;
        json_object_object_foreach (files, rel, entry) {
                int r = verify_file(ck, rel, entry, verify, err);
                if (r < 0)
                        return r;
                bytes += (uint64_t) cryo_json_int(entry, "size", 0);
        }
        cryo_stats_add(&ck->stats, CRYO_PHASE_VERIFY, cryo_now_usec() - start, bytes);
        return 0;
}

int ckpt_open(const char *path, enum ckpt_verify verify, struct cryo_checkpoint **out,
              struct cryo_error **err) {
        _cleanup_ckpt_ struct cryo_checkpoint *ck = calloc(1, sizeof(*ck));
        if (!ck)
                return cryo_error_set(err, ENOMEM, "out of memory");
        ck->path = strdup(path);
        if (!ck->path)
                return cryo_error_set(err, ENOMEM, "out of memory");
        ck->dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (ck->dirfd < 0)
                return cryo_error_errno(err, errno, "cannot open checkpoint directory %s", path);

        struct stat st;
        if (fstatat(ck->dirfd, CRYO_MANIFEST_FILE, &st, 0) < 0)
                return cryo_error_set(err, errno == ENOENT ? EINVAL : errno,
                                      "%s is not a cryo checkpoint: no %s in it", path, CRYO_MANIFEST_FILE);
        int r = cryo_json_read_file(ck->dirfd, CRYO_MANIFEST_FILE, CRYO_MANIFEST_MAX, &ck->manifest, err);
        if (r < 0)
                return cryo_error_prefix(err, "checkpoint %s", path);
        if (!json_object_is_type(ck->manifest, json_type_object))
                return cryo_error_set(err, EBADMSG, "checkpoint %s: manifest is not a JSON object", path);

        int64_t version = cryo_json_int(ck->manifest, "format_version", -1);
        if (version < 1)
                return cryo_error_set(err, EBADMSG, "checkpoint %s: manifest has no valid format_version",
                                      path);
        if (version > CRYO_FORMAT_VERSION)
                return cryo_error_set(
                        err, EPROTONOSUPPORT,
                        "checkpoint %s has format version %lld, newer than this cryo (%s) reads "
                        "(up to %d): upgrade cryo on this host",
                        path, (long long) version, CRYO_VERSION, CRYO_FORMAT_VERSION);
        json_object *stats = cryo_json_get(ck->manifest, "stats");
        if (stats)
                (void) cryo_stats_from_json(stats, &ck->stats);
        r = ckpt_verify(ck, verify, err);
        if (r < 0)
                return cryo_error_prefix(err, "checkpoint %s", path);
        *out = steal_pointer(&ck);
        return 0;
}

void ckpt_free(struct cryo_checkpoint *ck) {
        if (!ck)
                return;
        if (ck->dirfd >= 0)
                close(ck->dirfd);
        if (ck->writing && !ck->committed && ck->path)
                (void) fs_rm_rf(ck->path);
        json_object_put(ck->manifest);
        free(ck->path);
        free(ck->final_path);
        free(ck);
}

int ckpt_list(const char *root, json_object **out, struct cryo_error **err) {
        json_object *arr = json_object_new_array();
        if (!arr)
                return cryo_error_set(err, ENOMEM, "out of memory");
        _cleanup_json_ json_object *owned = arr;
        _cleanup_closedir_ DIR *d = opendir(root);
        if (!d) {
                if (errno == ENOENT) {
                        *out = steal_pointer(&owned);
                        return 0;
                }
                return cryo_error_errno(err, errno, "cannot read %s", root);
        }
        struct dirent *de;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                _cleanup_free_ char *path = fs_path_join(root, de->d_name);
                if (!path || !fs_is_dir(path))
                        continue;
                _cleanup_ckpt_ struct cryo_checkpoint *ck = NULL;
                _cleanup_error_ struct cryo_error *ignored = NULL;
                if (ckpt_open(path, CKPT_VERIFY_NONE, &ck, &ignored) < 0)
                        continue;
                json_object *o = json_object_new_object();
                json_object_object_add(o, "name", json_object_new_string(de->d_name));
                json_object_object_add(o, "path", json_object_new_string(path));
                json_object_object_add(o, "type", json_object_new_string(ckpt_type(ck)));
                cryo_json_add_str(o, "id", cryo_json_str(ck->manifest, "id", NULL));
                cryo_json_add_str(o, "created", cryo_json_str(ck->manifest, "created", NULL));
                json_object_object_add(o, "size",
                                       json_object_new_int64(cryo_json_int(ck->manifest, "size", 0)));
                json_object_array_add(arr, o);
        }
        *out = steal_pointer(&owned);
        return 0;
}
