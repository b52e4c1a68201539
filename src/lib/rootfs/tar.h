/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Generic, streaming tar helpers (libarchive; no external tar program).
 *
 * Used for volumes, /dev/shm contents, CRIU images uploaded to containerd's
 * content store and `cryo export/import` of a whole checkpoint directory.
 *
 * Archive format: POSIX pax (ustar headers plus pax extended headers carrying
 * nanosecond mtimes, long names, xattrs as SCHILY.xattr.* and
 * LIBARCHIVE.xattr.*).  Owners are numeric only (no user/group names).
 * Member names are relative ("checkpoint/pages-1.img"), the top directory
 * itself is not stored.  Files with holes are stored as GNU sparse 1.0 pax
 * entries (readable by GNU tar, bsdtar and Go's archive/tar) unless
 * TAR_WRITE_NO_SPARSE is given.  Hard links are stored as hard links.
 * Sockets cannot be archived and are counted in stats->skipped.
 *
 * Compression: none or zstd (one frame with checksum; multithreaded through
 * ZSTD_c_nbWorkers).  Extraction auto-detects zstd, gzip and xz.
 *
 * Extraction is safe against hostile archives: absolute names and ".."
 * components are rejected, no symlink is followed (neither in a parent of a
 * member nor at the member itself: existing entries are replaced, never
 * written through), hard-link targets must lie inside the destination, and
 * files are created with O_EXCL|O_NOFOLLOW.  An unsafe member aborts the
 * extraction with -EINVAL (bad name) or -ELOOP (symlink in a parent) and a
 * message naming it; members extracted before it stay in place.
 * Owners are restored when running as root, plus modes (including setuid),
 * xattrs (except overlayfs-private ones), mtimes, device nodes and fifos:
 * extraction is faithful like `tar -xp` as root, so an archive from an
 * untrusted source belongs in a root-only (0700) directory, where its
 * setuid files and device nodes cannot be reached by other users.
 */
#include <stdint.h>

#include "util/error.h"

enum tar_compression {
        TAR_COMPRESSION_NONE = 0,
        TAR_COMPRESSION_ZSTD,
};

enum {
        TAR_WRITE_NO_SPARSE = 1u << 0, /* store holes as zeros */
        TAR_WRITE_NO_XATTRS = 1u << 1, /* do not store extended attributes */
        /* out_fd is a file to be fsynced at the end: have the disk write it
         * while the stream is produced (sync_file_range every few MiB). */
        TAR_WRITE_WRITEBACK = 1u << 2,
        /* out_fd is a regular file: write it with O_DIRECT, past the page
         * cache (falls back to TAR_WRITE_WRITEBACK where the file system
         * refuses).  Saves copying every byte into freshly allocated page
         * cache, which on a VM costs as much as compressing it, and leaves
         * the final fsync next to nothing. */
        TAR_WRITE_DIRECT = 1u << 3,
        /* Stay on src_dir's file system, as `tar --one-file-system`, but
         * keep the mount points: a directory another file system is
         * mounted on is stored empty, a file mounted over is stored empty
         * (a tmpfs restored under its submounts needs their mount points). */
        TAR_WRITE_ONE_FS = 1u << 4,
};

struct tar_write_opts {
        enum tar_compression compression;
        int level;   /* zstd level (1..19, negative = fast modes); 0 = zstd's default (3) */
        int threads; /* zstd workers: 0 = compress in the calling thread, < 0 = one per online CPU */
        unsigned flags;
        /* NULL-terminated relative paths left out of the archive (with
         * everything below them), e.g. {"cryo.json", NULL}; may be NULL. */
        const char *const *excludes;
};

/* Statistics of one operation; the functions reset them at the start. */
struct tar_stats {
        uint64_t entries;       /* archive members written or extracted, all types */
        uint64_t files;         /* regular files with data (hard links not counted) */
        uint64_t bytes;         /* regular-file data bytes (apparent size) */
        uint64_t archive_bytes; /* bytes written to / read from the archive fd (compressed) */
        uint64_t deleted;       /* rootfs: deleted.files entries written / applied */
        uint64_t opaque_dirs;   /* rootfs capture: opaque (or redirected) directories */
        uint64_t skipped;       /* sockets, excluded paths, unsupported xattrs */
        uint64_t elapsed_usec;
};

/*
 * Writes the tree below src_dir (not src_dir itself) as a tar stream to
 * out_fd, which may be a pipe or socket (written sequentially, never
 * seeked).  opts may be NULL (uncompressed, defaults).  stats may be NULL.
 */
int tar_write_dir(const char *src_dir, int out_fd, const struct tar_write_opts *opts,
                  struct tar_stats *stats, struct cryo_error **err);

/*
 * Extracts a tar stream (uncompressed, zstd, gzip or xz; auto-detected) read
 * sequentially from in_fd into dest_dir, which must exist.  See the safety
 * rules above.  stats may be NULL.
 */
int tar_extract_dir(int in_fd, const char *dest_dir, struct tar_stats *stats, struct cryo_error **err);
