/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "rootfs/tar.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "rootfs/tar-internal.h"

int tar_write_dir(const char *src_dir, int out_fd, const struct tar_write_opts *opts,
                  struct tar_stats *stats, struct cryo_error **err) {
        struct tar_stats local = {0};
        if (!stats)
                stats = &local;
        *stats = (struct tar_stats){0};
        uint64_t start = tar_now_usec();

        _cleanup_close_ int dfd = open(src_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return cryo_error_errno(err, errno, "cannot open %s", src_dir);

        struct strv_builder excludes = {0};
        for (const char *const *p = opts ? opts->excludes : NULL; p && *p; p++) {
                _cleanup_free_ char *norm = NULL;
                const char *why;
                int r = path_normalize(*p, true, &norm, &why);
                if (r < 0 || strv_builder_add(&excludes, norm) < 0) {
                        strv_builder_clear(&excludes);
                        return r == -EINVAL
                                       ? cryo_error_set(err, EINVAL, "invalid exclude '%s': %s", *p, why)
                                       : cryo_error_set(err, ENOMEM, "out of memory");
                }
        }

        _cleanup_tar_writer_ struct tar_writer *w = NULL;
        int r = tar_writer_new(out_fd, opts, stats, &w, err);
        if (r >= 0) {
                struct tar_walk walk = {.excludes = excludes.v,
                                        .merged_fd = -1,
                                        .one_fs = opts && (opts->flags & TAR_WRITE_ONE_FS)};
                r = tar_writer_add_tree(w, dfd, &walk, err);
        }
        if (r >= 0)
                r = tar_writer_finish(w, err);
        strv_builder_clear(&excludes);
        stats->elapsed_usec = tar_now_usec() - start;
        if (r < 0)
                return cryo_error_prefix(err, "cannot archive %s", src_dir);
        return 0;
}

int tar_extract_dir(int in_fd, const char *dest_dir, struct tar_stats *stats, struct cryo_error **err) {
        struct tar_stats local = {0};
        if (!stats)
                stats = &local;
        *stats = (struct tar_stats){0};
        uint64_t start = tar_now_usec();

        _cleanup_close_ int dfd = open(dest_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return cryo_error_errno(err, errno, "cannot open %s", dest_dir);
        int r = tar_extract_fd(in_fd, dfd, "archive", 0, stats, err);
        stats->elapsed_usec = tar_now_usec() - start;
        if (r < 0)
                return cryo_error_prefix(err, "cannot extract into %s", dest_dir);
        return 0;
}
