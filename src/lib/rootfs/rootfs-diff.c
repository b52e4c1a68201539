/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* overlay upperdir -> rootfs-diff.tar + deleted.files, and back.  Formats: rootfs.h. */
#include "rootfs/rootfs.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rootfs/tar-internal.h"
#include "util/fs.h"

#define DELETED_FILES_MAX (64u << 20)

static int normalize_excludes(const char *const *in, struct strv_builder *out, struct cryo_error **err) {
        for (const char *const *p = in; p && *p; p++) {
                _cleanup_free_ char *norm = NULL;
                const char *why;
                int r = path_normalize(*p, true, &norm, &why);
                if (r == -ENOMEM)
                        return cryo_error_set(err, ENOMEM, "out of memory");
                if (r < 0)
                        return cryo_error_set(err, EINVAL, "invalid excluded path '%s': %s", *p, why);
                if (!norm[0])
                        return cryo_error_set(err, EINVAL, "cannot exclude the root directory");
                if (strv_builder_add(out, norm) < 0)
                        return cryo_error_set(err, ENOMEM, "out of memory");
        }
        return 0;
}

int rootfs_diff_write(const char *upperdir, int tar_fd, const struct rootfs_capture_opts *opts,
                      char ***deleted, struct tar_stats *stats, struct cryo_error **err) {
        struct tar_stats local = {0};
        if (!stats)
                stats = &local;
        *stats = (struct tar_stats){0};
        uint64_t start = tar_now_usec();

        _cleanup_close_ int ufd = open(upperdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (ufd < 0)
                return cryo_error_errno(err, errno, "cannot open upperdir %s", upperdir);
        _cleanup_close_ int mfd = -1;
        if (opts && opts->merged_dir) {
                mfd = open(opts->merged_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
                if (mfd < 0)
                        return cryo_error_errno(err, errno, "cannot open merged directory %s",
                                                opts->merged_dir);
        }

        struct strv_builder excludes = {0}, del = {0};
        int r = normalize_excludes(opts ? opts->excludes : NULL, &excludes, err);
        _cleanup_tar_writer_ struct tar_writer *w = NULL;
        if (r >= 0)
                r = tar_writer_new(tar_fd, NULL, stats, &w, err);
        if (r >= 0) {
                struct tar_walk walk = {
                        .overlay = true,
                        .excludes = excludes.v,
                        .merged_fd = mfd,
                        .deleted = &del,
                };
                r = tar_writer_add_tree(w, ufd, &walk, err);
        }
        if (r >= 0)
                r = tar_writer_finish(w, err);
        strv_builder_clear(&excludes);
        stats->elapsed_usec = tar_now_usec() - start;
        if (r < 0) {
                strv_builder_clear(&del);
                return cryo_error_prefix(err, "cannot capture upperdir %s", upperdir);
        }
        if (!del.v && !(del.v = calloc(1, sizeof(char *))))
                return cryo_error_set(err, ENOMEM, "out of memory");
        stats->deleted = del.n;
        *deleted = del.v;
        return 0;
}

int rootfs_deleted_files_write(int dirfd, const char *name, char *const *paths, struct cryo_error **err) {
        json_object *arr = json_object_new_array();
        if (!arr)
                return cryo_error_set(err, ENOMEM, "out of memory");
        for (char *const *p = paths; p && *p; p++) {
                json_object *s = json_object_new_string(*p);
                if (!s || json_object_array_add(arr, s) < 0) {
                        json_object_put(s);
                        json_object_put(arr);
                        return cryo_error_set(err, ENOMEM, "out of memory");
                }
        }
        const char *text =
                json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        _cleanup_free_ char *tmp = NULL;
        int r = 0;
        if (!text || asprintf(&tmp, "%s.tmp", name) < 0) {
                json_object_put(arr);
                return cryo_error_set(err, ENOMEM, "out of memory");
        }
        _cleanup_close_ int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
                r = cryo_error_errno(err, errno, "cannot create %s", tmp);
        else if ((r = fs_write_all(fd, text, strlen(text))) < 0)
                r = cryo_error_errno(err, r, "cannot write %s", tmp);
        else if (close(steal_fd(&fd)) < 0)
                r = cryo_error_errno(err, errno, "cannot write %s", tmp);
        else if (renameat(dirfd, tmp, dirfd, name) < 0)
                r = cryo_error_errno(err, errno, "cannot rename %s to %s", tmp, name);
        json_object_put(arr);
        if (r < 0)
                unlinkat(dirfd, tmp, 0);
        return r;
}

int rootfs_diff_capture(const char *upperdir, int out_dir_fd, const struct rootfs_capture_opts *opts,
                        struct tar_stats *stats, struct cryo_error **err) {
        static const char tar_tmp[] = ROOTFS_DIFF_TAR ".tmp";
        _cleanup_close_ int fd = openat(out_dir_fd, tar_tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
                return cryo_error_errno(err, errno, "cannot create %s", tar_tmp);
        _cleanup_strv_ char **deleted = NULL;
        int r = rootfs_diff_write(upperdir, fd, opts, &deleted, stats, err);
        if (r >= 0 && close(steal_fd(&fd)) < 0)
                r = cryo_error_errno(err, errno, "cannot write %s", tar_tmp);
        if (r >= 0)
                r = rootfs_deleted_files_write(out_dir_fd, ROOTFS_DELETED_FILES, deleted, err);
        if (r >= 0 && renameat(out_dir_fd, tar_tmp, out_dir_fd, ROOTFS_DIFF_TAR) < 0)
                r = cryo_error_errno(err, errno, "cannot rename %s", tar_tmp);
        if (r < 0)
                unlinkat(out_dir_fd, tar_tmp, 0);
        return r;
}

int rootfs_deleted_files_read(const char *path, char ***paths, struct cryo_error **err) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return cryo_error_errno(err, errno, "cannot open %s", path);
        struct stat st;
        if (fstat(fd, &st) < 0)
                return cryo_error_errno(err, errno, "cannot stat %s", path);
        if (!S_ISREG(st.st_mode) || (uint64_t) st.st_size > DELETED_FILES_MAX)
                return cryo_error_set(err, EFBIG, "%s: not a regular file of at most %u bytes", path,
                                      DELETED_FILES_MAX);
        size_t len = (size_t) st.st_size;
        _cleanup_free_ char *buf = malloc(len + 1);
        if (!buf)
                return cryo_error_set(err, ENOMEM, "out of memory");
        size_t got = 0;
        while (got < len) {
                ssize_t n = read(fd, buf + got, len - got);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return cryo_error_errno(err, errno, "cannot read %s", path);
                }
                if (n == 0)
                        break;
                got += (size_t) n;
        }
        buf[got] = '\0';

        json_tokener *tok = json_tokener_new();
        if (!tok)
                return cryo_error_set(err, ENOMEM, "out of memory");
        json_object *root = json_tokener_parse_ex(tok, buf, (int) got);
        enum json_tokener_error jerr = json_tokener_get_error(tok);
        json_tokener_free(tok);
        if (!root || jerr != json_tokener_success) {
                json_object_put(root);
                return cryo_error_set(err, EINVAL, "%s: invalid JSON: %s", path,
                                      root ? "trailing data" : json_tokener_error_desc(jerr));
        }
        if (!json_object_is_type(root, json_type_array)) {
                json_object_put(root);
                return cryo_error_set(err, EINVAL, "%s: expected a JSON array of paths", path);
        }
        struct strv_builder b = {0};
        size_t n = json_object_array_length(root);
        int r = 0;
        for (size_t i = 0; i < n && r >= 0; i++) {
                json_object *s = json_object_array_get_idx(root, i);
                if (!json_object_is_type(s, json_type_string))
                        r = cryo_error_set(err, EINVAL, "%s: element %zu is not a string", path, i);
                else if (strv_builder_add(&b, json_object_get_string(s)) < 0)
                        r = cryo_error_set(err, ENOMEM, "out of memory");
        }
        json_object_put(root);
        if (r >= 0 && !b.v && !(b.v = calloc(1, sizeof(char *))))
                r = cryo_error_set(err, ENOMEM, "out of memory");
        if (r < 0) {
                strv_builder_clear(&b);
                return r;
        }
        *paths = b.v;
        return 0;
}

/* Removes one container path below root_fd; absent paths and paths below a
 * symlink are skipped (a whiteout never lies beyond a symlink). */
static int delete_path(int root_fd, const char *path, struct cryo_error **err) {
        _cleanup_free_ char *rel = NULL, *parent = NULL;
        const char *why, *base;
        int r = path_normalize(path, true, &rel, &why);
        if (r == -ENOMEM)
                return cryo_error_set(err, ENOMEM, "out of memory");
        if (r < 0)
                return cryo_error_set(err, EINVAL, "refusing to delete '%s': %s", path, why);
        if (!rel[0])
                return cryo_error_set(err, EINVAL, "refusing to delete the root directory ('%s')", path);
        if (path_split(rel, &parent, &base) < 0)
                return cryo_error_set(err, ENOMEM, "out of memory");
        _cleanup_close_ int pfd = open_beneath(root_fd, parent, O_PATH | O_DIRECTORY, 0);
        if (pfd == -ENOENT || pfd == -ENOTDIR || pfd == -ELOOP)
                return 0;
        if (pfd < 0)
                return cryo_error_errno(err, pfd, "cannot open the parent of '%s'", path);
        r = rm_rf_at(pfd, base);
        if (r == -EBUSY)
                return cryo_error_set(err, EBUSY, "refusing to delete '%s': it contains a mount point",
                                      path);
        if (r < 0)
                return cryo_error_errno(err, r, "cannot delete '%s'", path);
        return 0;
}

/* A tar archive ends with zero blocks: one whose first header block is all
 * zeros holds no member (cryo and libarchive write 1024 such bytes for an
 * empty upperdir).  A gzip layer starts with its magic, never with zeros. */
static bool tar_has_no_member(const char *path) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT;
        /* A regular file reads short only at its end. */
        unsigned char block[512];
        ssize_t n = read(fd, block, sizeof(block));
        if (n == 0)
                return true;
        if (n != (ssize_t) sizeof(block))
                return false;
        for (size_t i = 0; i < sizeof(block); i++)
                if (block[i])
                        return false;
        return true;
}

bool rootfs_diff_is_empty(const char *tar_path, const char *deleted_path) {
        if (tar_path && !tar_has_no_member(tar_path))
                return false;
        if (!deleted_path)
                return true;
        if (access(deleted_path, F_OK) < 0)
                return errno == ENOENT;
        _cleanup_strv_ char **paths = NULL;
        return rootfs_deleted_files_read(deleted_path, &paths, NULL) >= 0 && (!paths || !paths[0]);
}

int rootfs_diff_apply(const char *rootfs_dir, const char *tar_path, const char *deleted_path,
                      struct tar_stats *stats, struct cryo_error **err) {
        struct tar_stats local = {0};
        if (!stats)
                stats = &local;
        *stats = (struct tar_stats){0};
        uint64_t start = tar_now_usec();

        _cleanup_close_ int root_fd = open(rootfs_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (root_fd < 0)
                return cryo_error_errno(err, errno, "cannot open %s", rootfs_dir);

        int r = 0;
        if (deleted_path && access(deleted_path, F_OK) == 0) {
                _cleanup_strv_ char **paths = NULL;
                r = rootfs_deleted_files_read(deleted_path, &paths, err);
                for (char **p = paths; r >= 0 && p && *p; p++) {
                        r = delete_path(root_fd, *p, err);
                        if (r >= 0)
                                stats->deleted++;
                }
                if (r < 0) {
                        stats->elapsed_usec = tar_now_usec() - start;
                        return cryo_error_prefix(err, "cannot apply %s to %s", deleted_path, rootfs_dir);
                }
        }

        if (tar_path) {
                _cleanup_close_ int fd = open(tar_path, O_RDONLY | O_CLOEXEC);
                if (fd < 0 && errno != ENOENT) {
                        r = cryo_error_errno(err, errno, "cannot open %s", tar_path);
                } else if (fd >= 0) {
                        r = tar_extract_fd(fd, root_fd, tar_path, TAR_EXTRACT_OCI_WHITEOUTS_GZIP, stats,
                                           err);
                        if (r < 0)
                                r = cryo_error_prefix(err, "cannot apply the root file system diff to %s",
                                                      rootfs_dir);
                }
        }
        stats->elapsed_usec = tar_now_usec() - start;
        return r;
}
