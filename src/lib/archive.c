/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A checkpoint as one file: a tar of its directory, zstd-compressed with
 * several threads, for moving between hosts and for backups.  Import
 * extracts into a hidden temporary directory, verifies the manifest and
 * every checksum, and only then renames it into place, like a dump.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cryo.h"
#include "format/writeback.h"
#include "rootfs/tar.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/json.h"

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

/* Extracts `archive` into a new hidden directory `root`/`prefix`XXXXXX and
 * verifies it (zstd's frame checksums have checked the stream already);
 * the directory is removed on failure.  *hold_out holds it (fs_hold()) for
 * as long as the caller keeps that descriptor open. */
static int extract_verified(const char *archive, const char *root, const char *prefix,
                            enum ckpt_verify verify, bool write_back, char **dir_out, int *hold_out,
                            struct cryo_checkpoint **ck_out, struct cryo_error **err) {
        _cleanup_close_ int fd =
                cryo_archive_is_stdio(archive) ? dup(STDIN_FILENO) : open(archive, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return cryo_error_errno(err, errno, "cannot open archive %s", archive);
        int r = fs_mkdir_p(root, 0700, err);
        if (r < 0)
                return r;
        (void) ckpt_sweep(root);
        _cleanup_free_ char *tmpl = NULL;
        if (asprintf(&tmpl, "%s/%sXXXXXX", root, prefix) < 0)
                return cryo_error_set(err, ENOMEM, "out of memory");
        if (!mkdtemp(tmpl))
                return cryo_error_errno(err, errno, "cannot create a directory under %s", root);
        _cleanup_(fs_rm_rf_freep) char *tmp = steal_pointer(&tmpl);
        _cleanup_close_ int dirfd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dirfd < 0)
                return cryo_error_errno(err, errno, "cannot open %s", tmp);
        (void) fs_hold(dirfd);
        /* Written back while it is extracted, if asked: GiBs left dirty
         * would make the next fsync on this file system wait for all of
         * them (for a containerd restore, containerd's metadata commit
         * when the snapshot is prepared: 0.5 s at 1 GiB here).  Otherwise
         * it only costs disk time (~0.2 s more extraction).  Best effort. */
        struct writeback *wb = NULL;
        if (write_back)
                (void) writeback_start(dirfd, true, &wb, NULL);
        r = tar_extract_dir(fd, tmp, NULL, err);
        digest_cache_free(writeback_stop(wb));
        if (r >= 0)
                r = ckpt_open(tmp, verify, ck_out, err);
        if (r < 0)
                return r;
        *dir_out = steal_pointer(&tmp);
        if (hold_out)
                *hold_out = steal_fd(&dirfd);
        return 0;
}

int cryo_import(const char *archive, const char *root, char **path_out, struct cryo_error **err) {
        _cleanup_(fs_rm_rf_freep) char *tmp = NULL;
        _cleanup_free_ char *final = NULL;
        _cleanup_ckpt_ struct cryo_checkpoint *ck = NULL;
        /* Kept, so made durable before it gets its name, as a dump is: the
         * write-back during the extraction leaves the fsync little to do. */
        int r = extract_verified(archive, root, ".import.tmp-", CKPT_VERIFY_FULL, true, &tmp, NULL, &ck,
                                 err);
        if (r >= 0) {
                const char *name = cryo_json_str(ck->manifest, "name", NULL);
                if (!name || !*name || strchr(name, '/') || name[0] == '.')
                        r = cryo_error_set(err, EBADMSG, "archive %s: manifest has no valid name", archive);
                else if (!(final = fs_path_join(root, name)))
                        r = cryo_error_set(err, ENOMEM, "out of memory");
                else
                        r = fs_sync_tree(ck->dirfd, err);
                if (r >= 0 && renameat2(AT_FDCWD, tmp, AT_FDCWD, final, RENAME_NOREPLACE) < 0) {
                        r = cryo_error_errno(err, errno, "cannot move the imported checkpoint to %s", final);
                } else if (r >= 0) {
                        free(steal_pointer(&tmp)); /* it is `final` now */
                        fs_sync_parent(final);
                }
        }
        if (r < 0)
                return cryo_error_prefix(err, "import of %s", archive);
        *path_out = steal_pointer(&final);
        return 0;
}

int cryo_extract_for_restore(const char *archive, const char *root, bool write_back, char **dir_out,
                             int *hold_out, struct cryo_error **err) {
        _cleanup_ckpt_ struct cryo_checkpoint *ck = NULL;
        /* Sizes only: the restore checks the checksums itself, beside
         * CRIU when they are worth it (cryo_restore). */
        int r = extract_verified(archive, root, ".restore-", CKPT_VERIFY_SIZES, write_back, dir_out,
                                 hold_out, &ck, err);
        if (r < 0)
                return cryo_error_prefix(err, "archive %s", archive);
        return 0;
}
