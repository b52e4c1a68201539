/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Throughput of tar_write_dir()/tar_extract_dir() (not a unit test).
 *
 *   bench-tar write SRC_DIR OUT_FILE none|zstd [LEVEL [THREADS]]
 *   bench-tar extract IN_FILE DEST_DIR
 *
 * Prints one line: operation, data bytes, archive bytes, seconds, MB/s of data.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rootfs/tar.h"

static int usage(void) {
        fprintf(stderr, "usage: bench-tar write SRC OUT none|zstd [LEVEL [THREADS]]\n"
                        "       bench-tar extract IN DEST\n");
        return 2;
}

int main(int argc, char **argv) {
        if (argc < 4)
                return usage();
        struct tar_stats st;
        _cleanup_error_ struct cryo_error *err = NULL;
        int r;
        if (strcmp(argv[1], "write") == 0 && argc >= 5) {
                struct tar_write_opts o = {0};
                if (strcmp(argv[4], "zstd") == 0) {
                        o.compression = TAR_COMPRESSION_ZSTD;
                        o.level = argc > 5 ? atoi(argv[5]) : 1;
                        o.threads = argc > 6 ? atoi(argv[6]) : -1;
                }
                int fd = strcmp(argv[3], "-") == 0 ? 1 : open(argv[3], O_WRONLY | O_CREAT | O_TRUNC, 0644);
                if (fd < 0) {
                        perror(argv[3]);
                        return 1;
                }
                r = tar_write_dir(argv[2], fd, &o, &st, &err);
                if (fd != 1)
                        close(fd);
        } else if (strcmp(argv[1], "extract") == 0) {
                int fd = strcmp(argv[2], "-") == 0 ? 0 : open(argv[2], O_RDONLY);
                if (fd < 0) {
                        perror(argv[2]);
                        return 1;
                }
                r = tar_extract_dir(fd, argv[3], &st, &err);
                if (fd != 0)
                        close(fd);
        } else {
                return usage();
        }
        if (r < 0) {
                fprintf(stderr, "bench-tar: %s\n", err ? err->message : "failed");
                return 1;
        }
        double s = (double) st.elapsed_usec / 1e6;
        fprintf(stderr, "%s: %llu data bytes, %llu archive bytes, %.3f s, %.0f MB/s\n", argv[1],
                (unsigned long long) st.bytes, (unsigned long long) st.archive_bytes, s,
                s > 0 ? (double) st.bytes / 1e6 / s : 0.0);
        return 0;
}
