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

#include "format/digest.h"
#include "format/writeback.h"
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

int ckpt_check_arch(const struct cryo_checkpoint *ck, struct cryo_error **err) {
        const char *theirs = cryo_json_str(cryo_json_get(ck->manifest, "host"), "arch", NULL);
        struct utsname u;
        if (!theirs || json_object_get_boolean(cryo_json_get(ck->manifest, "rootfs_only")) ||
            uname(&u) < 0 || !strcmp(theirs, u.machine))
                return 0;
        return cryo_error_set(err, ENOEXEC,
                              "%s was taken on %s and this host is %s: CRIU restores processes only on the "
                              "architecture they ran on (a --rootfs-only checkpoint carries no processes)",
                              ck->path, theirs, u.machine);
}

/* A maker holds its directory from just after mkdtemp(): this age only
 * covers that instant. */
#define CKPT_SWEEP_MIN_AGE_SEC 60

static bool temporary(const char *name) {
        return name[0] == '.' &&
               (fs_mkdtemp_name(name, ".tmp-", false) || fs_mkdtemp_name(name, ".restore-", true));
}

int ckpt_sweep(const char *root) {
        return fs_sweep_unheld(root, temporary, CKPT_SWEEP_MIN_AGE_SEC);
}

int ckpt_create(const char *root, const char *name, const char *type, unsigned flags,
                struct cryo_checkpoint **out, struct cryo_error **err) {
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
        if (!(flags & CKPT_CREATE_SCRATCH) && access(ck->final_path, F_OK) == 0)
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
        (void) fs_hold(ck->dirfd);

        ck->manifest = json_object_new_object();
        _cleanup_free_ char *created = utc_now(false);
        if (!ck->manifest || !created)
                return cryo_error_set(err, ENOMEM, "out of memory");
        json_object_object_add(ck->manifest, "format_version",
                               json_object_new_int(CRYO_FORMAT_VERSION_BASE));
        json_object_object_add(ck->manifest, "cryo_version", json_object_new_string(CRYO_VERSION));
        json_object_object_add(ck->manifest, "type", json_object_new_string(type));
        json_object_object_add(ck->manifest, "name", json_object_new_string(name));
        json_object_object_add(ck->manifest, "created", json_object_new_string(created));
        json_object_object_add(ck->manifest, "host", ckpt_host_info());
        ck->durable = !(flags & (CKPT_CREATE_SCRATCH | CKPT_CREATE_VOLATILE));
        /* Checksums early for every checkpoint; write-back for durable ones. */
        r = writeback_start(ck->dirfd, ck->durable, &ck->writeback, err);
        if (r < 0)
                return r;
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

/* The regular files of a checkpoint tree, as paths relative to its top. */
struct file_list {
        struct digest_file *v;
        size_t n, cap;
};

static void file_list_clear(struct file_list *l) {
        for (size_t i = 0; i < l->n; i++)
                free(l->v[i].rel);
        free(l->v);
        *l = (struct file_list){0};
}

static int file_list_add(struct file_list *l, char *rel) {
        if (l->n == l->cap) {
                size_t cap = l->cap ? 2 * l->cap : 32;
                struct digest_file *v = reallocarray(l->v, cap, sizeof(*v));
                if (!v)
                        return -ENOMEM;
                l->v = v;
                l->cap = cap;
        }
        l->v[l->n++] = (struct digest_file){.rel = rel};
        return 0;
}

/* Lists every regular file below dirfd but the manifest, tightening
 * permissions on the way: checkpoints hold process memory.  `durable`
 * starts the write-back of each file, so the disk works while the
 * checksums are computed and the final fsync has less to wait for. */
static int collect_tree(int dirfd, const char *prefix, bool durable, struct file_list *files, int depth,
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
                        int r = collect_tree(sub, rel, durable, files, depth + 1, err);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (!S_ISREG(st.st_mode))
                        continue;
                (void) fchmodat(dirfd, de->d_name, 0600, 0);
                if (durable) {
                        _cleanup_close_ int wfd =
                                openat(dirfd, de->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
                        if (wfd >= 0)
                                (void) sync_file_range(wfd, 0, 0, SYNC_FILE_RANGE_WRITE);
                }
                if (file_list_add(files, rel) < 0)
                        return cryo_error_set(err, ENOMEM, "out of memory");
                rel = NULL; /* owned by the list now */
        }
        return 0;
}

int ckpt_seal(struct cryo_checkpoint *ck, bool durable, struct cryo_error **err) {
        if (!ck->writing || ck->committed)
                return cryo_error_set(err, EINVAL, "checkpoint is not being written");
        _cleanup_(digest_cache_freep) struct digest_cache *early = writeback_stop(ck->writeback);
        ck->writeback = NULL;

        uint64_t start = cryo_now_usec(), bytes = 0;
        _cleanup_(file_list_clear) struct file_list list = {0};
        int r = collect_tree(ck->dirfd, "", durable, &list, 0, err);
        if (r >= 0)
                r = digest_files(ck->dirfd, list.v, list.n, 0, early, err);
        if (r < 0)
                return cryo_error_prefix(err, "cannot checksum the checkpoint");
        json_object *files = json_object_new_object();
        if (!files)
                return cryo_error_set(err, ENOMEM, "out of memory");
        json_object_object_add(ck->manifest, "checksum", json_object_new_string(DIGEST_ALGORITHM));
        json_object_object_add(ck->manifest, "files", files);
        for (size_t i = 0; i < list.n; i++) {
                json_object *entry = json_object_new_object();
                json_object_object_add(entry, "size", json_object_new_uint64(list.v[i].size));
                json_object_object_add(entry, "xxh128", json_object_new_string(list.v[i].hex));
                json_object_object_add(files, list.v[i].rel, entry);
                bytes += list.v[i].size;
        }
        if (durable) {
                r = fs_sync_tree(ck->dirfd, err);
                if (r < 0)
                        return cryo_error_prefix(err, "cannot sync the checkpoint");
        }

        /* The manifest carries the write phase too, so it is timed up to the
         * last step that can be measured before writing it. */
        cryo_stats_add(&ck->stats, CRYO_PHASE_WRITE, cryo_now_usec() - start, bytes);
        json_object_object_add(ck->manifest, "stats", cryo_stats_to_json(&ck->stats));
        json_object_object_add(ck->manifest, "size", json_object_new_uint64(bytes));
        r = cryo_json_write_file(ck->dirfd, CRYO_MANIFEST_FILE, ck->manifest, 0600, err);
        if (r < 0)
                return r;
        if (durable && fsync(ck->dirfd) < 0)
                return cryo_error_errno(err, errno, "cannot sync %s", ck->path);
        return 0;
}

int ckpt_commit(struct cryo_checkpoint *ck, struct cryo_error **err) {
        int r = ckpt_seal(ck, ck->durable, err);
        if (r < 0)
                return r;
        if (renameat2(AT_FDCWD, ck->path, AT_FDCWD, ck->final_path, RENAME_NOREPLACE) < 0)
                return cryo_error_errno(err, errno, "cannot move the checkpoint into place at %s",
                                        ck->final_path);
        if (ck->durable)
                fs_sync_parent(ck->final_path);
        free(ck->path);
        ck->path = steal_pointer(&ck->final_path);
        ck->committed = true;
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
                return r;
        *out = steal_pointer(&ck);
        return 0;
}

void ckpt_free(struct cryo_checkpoint *ck) {
        if (!ck)
                return;
        digest_cache_free(writeback_stop(ck->writeback));
        /* Its outcome no longer matters, but the thread reads ck's files. */
        ckpt_verify_cancel(ck);
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
