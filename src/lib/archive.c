/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A checkpoint as one file: a tar of its directory, zstd-compressed with
 * several threads, for moving between hosts and for backups.  Import
 * extracts into a hidden temporary directory, verifies the manifest and
 * every checksum, and only then renames it into place, like a dump.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cryo.h"
#include "rootfs/tar.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/json.h"

/* Below this, a scratch tmpfs is not worth a mount. */
#define SCRATCH_TMPFS_MIN (64ull << 20)

/* Fails early (before anything is frozen) when the archive cannot be made:
 * an existing file is never replaced by a dump. */
int cryo_archive_prepare(const char *out_file, const char *root, char **dir_out, struct cryo_error **err) {
        if (!out_file || !*out_file)
                return cryo_error_set(err, EINVAL, "no archive file name");
        if (cryo_archive_is_stdio(out_file)) {
                if (isatty(STDOUT_FILENO))
                        return cryo_error_set(err, EINVAL,
                                              "refusing to write an archive to a terminal: redirect or pipe "
                                              "standard output");
                /* The scratch checkpoint goes where directories would. */
                *dir_out = strdup(root);
                return *dir_out ? 0 : cryo_error_set(err, ENOMEM, "out of memory");
        }
        if (access(out_file, F_OK) == 0)
                return cryo_error_set(err, EEXIST, "archive %s already exists", out_file);
        _cleanup_free_ char *dir = strdup(out_file);
        if (!dir)
                return cryo_error_set(err, ENOMEM, "out of memory");
        char *slash = strrchr(dir, '/');
        if (!slash)
                strcpy(dir, ".");
        else
                *(slash == dir ? slash + 1 : slash) = '\0';
        if (!fs_is_dir(dir))
                return cryo_error_set(err, ENOENT, "cannot write archive %s: no directory %s", out_file,
                                      dir);
        *dir_out = steal_pointer(&dir);
        return 0;
}

/* Writes the tree at `src` as out_file, atomically: a hidden temporary file
 * next to it, fsynced, then renamed (never over an existing file when
 * `replace` is false). */
static int write_archive(const char *src, const char *out_file, int level, int threads, bool replace,
                         struct tar_stats *st, struct cryo_error **err) {
        _cleanup_free_ char *tmp = NULL;
        const char *slash = strrchr(out_file, '/');
        if (asprintf(&tmp, "%.*s.%s.tmp-XXXXXX", slash ? (int) (slash - out_file + 1) : 0, out_file,
                     slash ? slash + 1 : out_file) < 0)
                return cryo_error_set(err, ENOMEM, "out of memory");
        _cleanup_close_ int fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return cryo_error_errno(err, errno, "cannot create %s", out_file);
        (void) fchmod(fd, 0600);
        struct tar_write_opts opts = {
                .compression = TAR_COMPRESSION_ZSTD,
                .level = level,
                .threads = threads,
                .flags = TAR_WRITE_DIRECT,
        };
        int r = tar_write_dir(src, fd, &opts, st, err);
        if (r >= 0 && fsync(fd) < 0)
                r = cryo_error_errno(err, errno, "cannot sync %s", out_file);
        if (r >= 0 && renameat2(AT_FDCWD, tmp, AT_FDCWD, out_file, replace ? 0 : RENAME_NOREPLACE) < 0)
                r = cryo_error_errno(err, errno, "cannot create %s", out_file);
        if (r < 0) {
                (void) unlink(tmp);
                return r;
        }
        fs_sync_parent(out_file);
        return 0;
}

/* `cryo dump --archive - | ssh host cryo restore --checkpoint-dir -`: the
 * stream is the only copy, written as it is compressed. */
static int write_stdout(const char *src, struct tar_stats *st, struct cryo_error **err) {
        struct tar_write_opts opts = {.compression = TAR_COMPRESSION_ZSTD, .level = 1, .threads = -1};
        return tar_write_dir(src, STDOUT_FILENO, &opts, st, err);
}

int cryo_archive_commit(struct cryo_checkpoint *ck, const char *out_file, struct cryo_error **err) {
        /* Sealed, not synced: the archive is the durable copy, and this
         * directory is removed once it is written. */
        int r = ckpt_seal(ck, false, err);
        if (r < 0)
                return r;
        uint64_t start = cryo_now_usec();
        struct tar_stats st = {0};
        if (cryo_archive_is_stdio(out_file))
                r = write_stdout(ck->path, &st, err);
        else
                r = write_archive(ck->path, out_file, 1, -1, false, &st, err);
        if (r < 0)
                return cryo_error_prefix(err, "archive %s", out_file);
        cryo_stats_add(&ck->stats, CRYO_PHASE_ARCHIVE, cryo_now_usec() - start, st.archive_bytes);
        return 0;
}

int cryo_export(const char *path, const char *out_file, int level, int threads, json_object **result,
                struct cryo_error **err) {
        uint64_t start = cryo_now_usec();
        _cleanup_ckpt_ struct cryo_checkpoint *ck = NULL;
        int r = ckpt_open(path, CKPT_VERIFY_SIZES, &ck, err);
        if (r < 0)
                return r;
        struct tar_stats st = {0};
        r = write_archive(ck->path, out_file, level, threads, true, &st, err);
        if (r < 0)
                return cryo_error_prefix(err, "export of %s", path);
        json_object *res = json_object_new_object();
        json_object_object_add(res, "archive", json_object_new_string(out_file));
        json_object_object_add(res, "checkpoint", json_object_new_string(ck->path));
        json_object_object_add(res, "bytes", json_object_new_uint64(st.bytes));
        json_object_object_add(res, "archive_bytes", json_object_new_uint64(st.archive_bytes));
        json_object_object_add(res, "usec", json_object_new_uint64(cryo_now_usec() - start));
        *result = res;
        return 0;
}

/* Extracts `archive` into the new directory `dir` and verifies every
 * checksum; the caller removes `dir` on failure. */
static int extract_into(const char *archive, const char *dir, struct cryo_checkpoint **ck_out,
                        struct cryo_error **err) {
        _cleanup_close_ int fd =
                cryo_archive_is_stdio(archive) ? dup(STDIN_FILENO) : open(archive, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return cryo_error_errno(err, errno, "cannot open archive %s", archive);
        int r = tar_extract_dir(fd, dir, NULL, err);
        if (r >= 0)
                r = ckpt_open(dir, CKPT_VERIFY_FULL, ck_out, err);
        return r;
}

static int make_scratch_dir(const char *root, const char *prefix, char **out, struct cryo_error **err) {
        int r = fs_mkdir_p(root, 0700, err);
        if (r < 0)
                return r;
        _cleanup_free_ char *tmpl = NULL;
        if (asprintf(&tmpl, "%s/%sXXXXXX", root, prefix) < 0)
                return cryo_error_set(err, ENOMEM, "out of memory");
        if (!mkdtemp(tmpl))
                return cryo_error_errno(err, errno, "cannot create a directory under %s", root);
        *out = steal_pointer(&tmpl);
        return 0;
}

/* Extracts `archive` into a new hidden directory `root`/`prefix`XXXXXX and
 * verifies every checksum; the directory is removed on failure. */
static int extract_verified(const char *archive, const char *root, const char *prefix, char **dir_out,
                            struct cryo_checkpoint **ck_out, struct cryo_error **err) {
        _cleanup_(fs_rm_rf_freep) char *tmp = NULL;
        int r = make_scratch_dir(root, prefix, &tmp, err);
        if (r >= 0)
                r = extract_into(archive, tmp, ck_out, err);
        if (r < 0)
                return r;
        *dir_out = steal_pointer(&tmp);
        return 0;
}

int cryo_import(const char *archive, const char *root, char **path_out, struct cryo_error **err) {
        _cleanup_(fs_rm_rf_freep) char *tmp = NULL;
        _cleanup_free_ char *final = NULL;
        _cleanup_ckpt_ struct cryo_checkpoint *ck = NULL;
        int r = extract_verified(archive, root, ".import.tmp-", &tmp, &ck, err);
        if (r >= 0) {
                const char *name = cryo_json_str(ck->manifest, "name", NULL);
                if (!name || !*name || strchr(name, '/') || name[0] == '.')
                        r = cryo_error_set(err, EBADMSG, "archive %s: manifest has no valid name", archive);
                else if (!(final = fs_path_join(root, name)))
                        r = cryo_error_set(err, ENOMEM, "out of memory");
                else if (renameat2(AT_FDCWD, tmp, AT_FDCWD, final, RENAME_NOREPLACE) < 0)
                        r = cryo_error_errno(err, errno, "cannot move the imported checkpoint to %s", final);
                else
                        free(steal_pointer(&tmp)); /* it is `final` now */
        }
        if (r < 0)
                return cryo_error_prefix(err, "import of %s", archive);
        *path_out = steal_pointer(&final);
        return 0;
}

static uint64_t read_u64(const char *path) {
        _cleanup_free_ char *text = NULL;
        if (fs_read_file(AT_FDCWD, path, 64, &text, NULL, NULL) < 0 || !strncmp(text, "max", 3))
                return UINT64_MAX;
        return strtoull(text, NULL, 10);
}

/* Room left under a memory limit on cryo's own cgroup (v1's memory
 * controller, else v2), or UINT64_MAX. */
static uint64_t cgroup_memory_room(void) {
        _cleanup_free_ char *text = NULL;
        if (fs_read_file(AT_FDCWD, "/proc/self/cgroup", 1 << 16, &text, NULL, NULL) < 0)
                return UINT64_MAX;
        char dir[PATH_MAX] = "";
        bool v1 = false;
        char *save = NULL;
        for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                /* "ID:CONTROLLERS:PATH"; v2's is "0::PATH". */
                char *controllers = strchr(line, ':');
                char *path = controllers ? strchr(controllers + 1, ':') : NULL;
                if (!path)
                        continue;
                *path++ = '\0';
                controllers++;
                if (!strcmp(controllers, "memory")) {
                        snprintf(dir, sizeof(dir), "/sys/fs/cgroup/memory%s", path);
                        v1 = true;
                        break;
                }
                if (!*controllers)
                        snprintf(dir, sizeof(dir), "/sys/fs/cgroup%s", path);
        }
        if (!*dir)
                return UINT64_MAX;
        char limit[PATH_MAX + 32], usage[PATH_MAX + 32];
        snprintf(limit, sizeof(limit), "%s/%s", dir, v1 ? "memory.limit_in_bytes" : "memory.max");
        snprintf(usage, sizeof(usage), "%s/%s", dir, v1 ? "memory.usage_in_bytes" : "memory.current");
        uint64_t lim = read_u64(limit), used = read_u64(usage);
        if (lim == UINT64_MAX)
                return UINT64_MAX;
        return used != UINT64_MAX && used < lim ? lim - used : 0;
}

/*
 * How many bytes a restore's scratch tmpfs may hold: half of what cryo can
 * still use (tmpfs pages cannot be reclaimed without swap, and they are
 * charged to cryo's memory cgroup), the other half being left to the
 * restored tree, which needs about as much.  0: not worth it.
 */
static uint64_t scratch_tmpfs_budget(void) {
        _cleanup_free_ char *meminfo = NULL;
        if (fs_read_file(AT_FDCWD, "/proc/meminfo", 1 << 16, &meminfo, NULL, NULL) < 0)
                return 0;
        const char *p = strstr(meminfo, "MemAvailable:");
        unsigned long long kib = 0;
        if (!p || sscanf(p + strlen("MemAvailable:"), "%llu", &kib) != 1)
                return 0;
        uint64_t avail = (uint64_t) kib * 1024, room = cgroup_memory_room();
        uint64_t budget = (room < avail ? room : avail) / 2;
        return budget >= SCRATCH_TMPFS_MIN ? budget : 0;
}

/* Mounts a private tmpfs of `size` bytes on the empty directory `dir`. */
static int mount_scratch_tmpfs(const char *dir, uint64_t size) {
        char opts[64];
        snprintf(opts, sizeof(opts), "size=%llu,mode=0700", (unsigned long long) size);
        if (mount("cryo-restore", dir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, opts) < 0)
                return -errno;
        /* Not seen in, nor unmounted from, other mount namespaces. */
        (void) mount(NULL, dir, NULL, MS_PRIVATE, NULL);
        return 0;
}

void cryo_scratch_free(char *dir) {
        if (!dir)
                return;
        /* A tmpfs takes its files with it; EINVAL: not a mount point. */
        (void) umount2(dir, MNT_DETACH);
        (void) fs_rm_rf(dir);
        free(dir);
}

/*
 * An archive restored from a file is extracted into a tmpfs when it fits in
 * scratch_tmpfs_budget().  On disk, a large extraction is dirty page cache
 * that the kernel starts writing back past its background threshold (10%
 * of RAM by default), and that write-back then competes with the rest of
 * the extraction and with CRIU reading the images back: 4 GiB took 30 s
 * that way here, for files that are deleted right after the restore.  The
 * size is not known before the end of the stream, so the tmpfs is capped
 * and a too large archive is extracted again on disk.  Standard input
 * cannot be read twice: it always goes to disk.
 */
int cryo_extract_for_restore(const char *archive, const char *root, char **dir_out, bool *in_memory,
                             struct cryo_error **err) {
        _cleanup_ckpt_ struct cryo_checkpoint *ck = NULL;
        uint64_t budget = cryo_archive_is_stdio(archive) ? 0 : scratch_tmpfs_budget();
        if (budget) {
                _cleanup_(cryo_scratch_freep) char *dir = NULL;
                int r = make_scratch_dir(CRYO_WORK_DIR, "restore-", &dir, err);
                if (r < 0)
                        return cryo_error_prefix(err, "archive %s", archive);
                if (mount_scratch_tmpfs(dir, budget) == 0) {
                        _cleanup_error_ struct cryo_error *tmpfs_err = NULL;
                        r = extract_into(archive, dir, &ck, &tmpfs_err);
                        if (r >= 0) {
                                *dir_out = steal_pointer(&dir);
                                if (in_memory)
                                        *in_memory = true;
                                return 0;
                        }
                        if (r != -ENOSPC) {
                                if (err)
                                        *err = steal_pointer(&tmpfs_err);
                                return cryo_error_prefix(err, "archive %s", archive);
                        }
                        ckpt_freep(&ck);
                }
                /* No tmpfs (no mount rights, say), or the archive is larger
                 * than the budget: on disk then. */
        }
        int r = extract_verified(archive, root, ".restore-", dir_out, &ck, err);
        if (r < 0)
                return cryo_error_prefix(err, "archive %s", archive);
        return 0;
}
