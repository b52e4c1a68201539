/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Streaming tar writer: walks a directory tree with fds (openat, O_NOFOLLOW,
 * never a symlink followed), writes POSIX pax through libarchive and sends
 * the stream to an fd, optionally through zstd (multithreaded).
 *
 * Data path: file data is read in TAR_IO_BUF chunks and handed to
 * archive_write_data(); libarchive is configured unblocked
 * (bytes_per_block 0) so its output reaches our write callback without
 * another copy, where it is either compressed (ZSTD_compressStream2 with
 * nbWorkers) or coalesced into a TAR_IO_BUF buffer and written.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <zstd.h>

#include "rootfs/tar-internal.h"
#include "util/fs.h"

struct hardlink {
        dev_t dev;
        ino_t ino;
        char *path; /* NULL: free slot */
};

struct tar_writer {
        struct archive *a;
        int out_fd;
        unsigned flags;
        struct tar_stats *stats;
        struct tar_stats dummy_stats;

        ZSTD_CCtx *zc;
        uint8_t *obuf; /* output: zstd destination or coalescing buffer */
        size_t olen, ocap;
        int io_error;            /* negative errno from the write callback */
        uint64_t unsubmitted;    /* bytes written since the last write-back request */
        bool direct;             /* out_fd is in O_DIRECT mode */
        struct out_queue *queue; /* direct mode: writes in a thread; owns obuf */

        uint8_t *dbuf; /* file data */

        struct hardlink *hl;
        size_t hl_n, hl_cap;

        char *path; /* relative path of the entry being written */
        size_t path_len, path_cap;
        bool finished;
};

/* ---- output ------------------------------------------------------------- */

/* Counts output and, for TAR_WRITE_WRITEBACK, has the disk start on it:
 * the final fsync then waits for the last few MiB only. */
static void note_written(struct tar_writer *w, size_t len) {
        w->stats->archive_bytes += len;
        if (!(w->flags & TAR_WRITE_WRITEBACK))
                return;
        w->unsubmitted += len;
        if (w->unsubmitted >= (16u << 20)) {
                (void) sync_file_range(w->out_fd, 0, 0, SYNC_FILE_RANGE_WRITE);
                w->unsubmitted = 0;
        }
}

/* O_DIRECT wants block-aligned lengths (the buffer and file offsets are
 * aligned already): the unaligned tail waits in the buffer for more, or for
 * out_flush_final(). */
#define DIRECT_ALIGN 4096u

static int out_flush(struct tar_writer *w) {
        size_t len = w->direct ? w->olen & ~(size_t) (DIRECT_ALIGN - 1) : w->olen;
        if (len == 0)
                return 0;
        if (w->queue) {
                int r = out_queue_submit(w->queue, len, w->olen - len, &w->obuf);
                if (r < 0)
                        return r;
        } else {
                int r = fs_write_all(w->out_fd, w->obuf, len);
                if (r < 0)
                        return r;
                memmove(w->obuf, w->obuf + len, w->olen - len);
        }
        note_written(w, len);
        w->olen -= len;
        return 0;
}

static int out_flush_final(struct tar_writer *w) {
        int r = out_flush(w);
        if (r >= 0 && w->queue)
                r = out_queue_drain(w->queue);
        if (r < 0 || w->olen == 0)
                return r;
        int fl = fcntl(w->out_fd, F_GETFL);
        if (fl < 0 || fcntl(w->out_fd, F_SETFL, fl & ~O_DIRECT) < 0)
                return -errno;
        w->direct = false;
        return out_flush(w);
}

static int out_plain(struct tar_writer *w, const void *buf, size_t len) {
        if (w->olen + len <= w->ocap) {
                memcpy(w->obuf + w->olen, buf, len);
                w->olen += len;
                return 0;
        }
        int r = out_flush(w);
        if (r < 0)
                return r;
        if (len >= w->ocap / 2 && !w->direct) {
                r = fs_write_all(w->out_fd, buf, len);
                if (r < 0)
                        return r;
                note_written(w, len);
                return 0;
        }
        if (w->olen + len > w->ocap) {
                /* direct mode: the tail left by out_flush plus a big write */
                const uint8_t *p = buf;
                size_t room = w->ocap - w->olen;
                memcpy(w->obuf + w->olen, p, room);
                w->olen += room;
                return out_plain(w, p + room, len - room);
        }
        memcpy(w->obuf + w->olen, buf, len);
        w->olen += len;
        return 0;
}

static int out_zstd(struct tar_writer *w, const void *buf, size_t len, ZSTD_EndDirective mode) {
        ZSTD_inBuffer in = {buf, len, 0};
        for (;;) {
                ZSTD_outBuffer out = {w->obuf + w->olen, w->ocap - w->olen, 0};
                size_t rem = ZSTD_compressStream2(w->zc, &out, &in, mode);
                if (ZSTD_isError(rem))
                        return -EIO;
                w->olen += out.pos;
                /* write when the buffer is nearly full (or at the end) */
                if (w->olen > w->ocap - ZSTD_CStreamOutSize() || (mode == ZSTD_e_end && rem == 0)) {
                        int r = mode == ZSTD_e_end && rem == 0 ? out_flush_final(w) : out_flush(w);
                        if (r < 0)
                                return r;
                }
                if (mode == ZSTD_e_end ? rem == 0 : in.pos == in.size)
                        return 0;
        }
}

static la_ssize_t write_cb(struct archive *a, void *userdata, const void *buf, size_t len) {
        struct tar_writer *w = userdata;
        int r = w->zc ? out_zstd(w, buf, len, ZSTD_e_continue) : out_plain(w, buf, len);
        if (r < 0) {
                w->io_error = r;
                archive_set_error(a, -r, "%s",
                                  r == -EIO && w->zc ? "zstd compression failed" : strerror(-r));
                return -1;
        }
        return (la_ssize_t) len;
}

/* ---- writer object ------------------------------------------------------ */

void tar_writer_free(struct tar_writer *w) {
        if (!w)
                return;
        if (w->a)
                archive_write_free(w->a);
        ZSTD_freeCCtx(w->zc);
        if (w->queue)
                out_queue_free(w->queue);
        else
                free(w->obuf);
        free(w->dbuf);
        for (size_t i = 0; i < w->hl_cap; i++)
                free(w->hl[i].path);
        free(w->hl);
        free(w->path);
        free(w);
}

static int archive_fail(struct tar_writer *w, struct cryo_error **err, const char *what) {
        if (w->io_error < 0)
                return cryo_error_errno(err, w->io_error, "%s: cannot write archive", what);
        int e = archive_errno(w->a);
        return cryo_error_set(err, e > 0 ? e : EIO, "%s: %s", what,
                              archive_error_string(w->a) ?: "libarchive error");
}

int tar_writer_new(int out_fd, const struct tar_write_opts *opts, struct tar_stats *stats,
                   struct tar_writer **out, struct cryo_error **err) {
        static const struct tar_write_opts defaults = {0};
        if (!opts)
                opts = &defaults;

        _cleanup_tar_writer_ struct tar_writer *w = calloc(1, sizeof(*w));
        if (!w)
                return cryo_error_set(err, ENOMEM, "out of memory");
        w->out_fd = out_fd;
        w->flags = opts->flags;
        w->stats = stats ?: &w->dummy_stats;
        w->ocap = TAR_IO_BUF;
        w->obuf = tar_io_alloc(w->ocap);
        w->dbuf = tar_io_alloc(TAR_IO_BUF);
        w->path_cap = 256;
        w->path = malloc(w->path_cap);
        if (!w->obuf || !w->dbuf || !w->path)
                return cryo_error_set(err, ENOMEM, "out of memory");
        w->path[0] = '\0';

        if (opts->compression == TAR_COMPRESSION_ZSTD) {
                w->zc = ZSTD_createCCtx();
                if (!w->zc)
                        return cryo_error_set(err, ENOMEM, "cannot create zstd context");
                int threads = opts->threads;
                if (threads < 0) {
                        long n = sysconf(_SC_NPROCESSORS_ONLN);
                        threads = n > 0 ? (int) n : 1;
                }
                size_t r = ZSTD_CCtx_setParameter(w->zc, ZSTD_c_compressionLevel,
                                                  opts->level ? opts->level : ZSTD_CLEVEL_DEFAULT);
                if (ZSTD_isError(r))
                        return cryo_error_set(err, EINVAL, "invalid zstd level %d: %s", opts->level,
                                              ZSTD_getErrorName(r));
                ZSTD_CCtx_setParameter(w->zc, ZSTD_c_checksumFlag, 1);
                if (threads > 0) {
                        r = ZSTD_CCtx_setParameter(w->zc, ZSTD_c_nbWorkers, threads);
                        /* a libzstd built without threads: compress in this thread */
                        (void) r;
                }
        } else if (opts->compression != TAR_COMPRESSION_NONE) {
                return cryo_error_set(err, EINVAL, "unknown compression %d", (int) opts->compression);
        }

        if (opts->flags & TAR_WRITE_DIRECT) {
                int fl = fcntl(out_fd, F_GETFL);
                if (fl >= 0 && lseek(out_fd, 0, SEEK_CUR) == 0 && fcntl(out_fd, F_SETFL, fl | O_DIRECT) == 0)
                        w->direct = true;
                else
                        w->flags |= TAR_WRITE_WRITEBACK;
        }
        if (w->direct) {
                int r = out_queue_new(out_fd, w->ocap, &w->queue);
                if (r < 0)
                        return cryo_error_errno(err, -r, "cannot start the archive writer");
                free(w->obuf);
                w->obuf = out_queue_buffer(w->queue);
        }

        w->a = archive_write_new();
        if (!w->a)
                return cryo_error_set(err, ENOMEM, "cannot create archive writer");
        if (archive_write_set_format_pax(w->a) != ARCHIVE_OK ||
            archive_write_set_bytes_per_block(w->a, 0) != ARCHIVE_OK ||
            archive_write_open2(w->a, w, NULL, write_cb, NULL, NULL) != ARCHIVE_OK)
                return archive_fail(w, err, "cannot start tar stream");

        *out = steal_pointer(&w);
        return 0;
}

int tar_writer_finish(struct tar_writer *w, struct cryo_error **err) {
        if (w->finished)
                return 0;
        w->finished = true;
        if (archive_write_close(w->a) != ARCHIVE_OK)
                return archive_fail(w, err, "cannot finish tar stream");
        int r = w->zc ? out_zstd(w, NULL, 0, ZSTD_e_end) : out_flush_final(w);
        if (r < 0)
                return cryo_error_errno(err, r, "cannot write archive");
        return 0;
}

/* ---- hard links --------------------------------------------------------- */

static size_t hl_hash(dev_t dev, ino_t ino) {
        uint64_t h = (uint64_t) ino * 0x9E3779B97F4A7C15ull ^ (uint64_t) dev * 0xC2B2AE3D27D4EB4Full;
        return (size_t) (h ^ (h >> 29));
}

static struct hardlink *hl_slot(struct hardlink *tab, size_t cap, dev_t dev, ino_t ino) {
        size_t i = hl_hash(dev, ino) & (cap - 1);
        while (tab[i].path && !(tab[i].dev == dev && tab[i].ino == ino))
                i = (i + 1) & (cap - 1);
        return &tab[i];
}

/* Returns the first path seen for (dev, ino), or records `path` and returns NULL. */
static int hl_lookup_or_add(struct tar_writer *w, dev_t dev, ino_t ino, const char *path,
                            const char **first) {
        *first = NULL;
        if ((w->hl_n + 1) * 2 > w->hl_cap) {
                size_t cap = w->hl_cap ? w->hl_cap * 2 : 64;
                struct hardlink *tab = calloc(cap, sizeof(*tab));
                if (!tab)
                        return -ENOMEM;
                for (size_t i = 0; i < w->hl_cap; i++)
                        if (w->hl[i].path)
                                *hl_slot(tab, cap, w->hl[i].dev, w->hl[i].ino) = w->hl[i];
                free(w->hl);
                w->hl = tab;
                w->hl_cap = cap;
        }
        struct hardlink *s = hl_slot(w->hl, w->hl_cap, dev, ino);
        if (s->path) {
                *first = s->path;
                return 0;
        }
        s->path = strdup(path);
        if (!s->path)
                return -ENOMEM;
        s->dev = dev;
        s->ino = ino;
        w->hl_n++;
        return 0;
}

/* ---- xattrs ------------------------------------------------------------- */

struct xattrs {
        char *names; /* listxattr buffer */
        size_t names_len;
        /* overlay markers found (overlay mode) */
        bool opaque, redirect, metacopy, whiteout;
};

static void xattrs_clear(struct xattrs *x) {
        free(x->names);
        *x = (struct xattrs){0};
}

/* fd >= 0: f*xattr on it; else l*xattr on path. */
static ssize_t xa_list(int fd, const char *path, char *buf, size_t size) {
        return fd >= 0 ? flistxattr(fd, buf, size) : llistxattr(path, buf, size);
}
static ssize_t xa_get(int fd, const char *path, const char *name, void *buf, size_t size) {
        return fd >= 0 ? fgetxattr(fd, name, buf, size) : lgetxattr(path, name, buf, size);
}

static int xattrs_list(int fd, const char *path, struct xattrs *x) {
        for (int tries = 0; tries < 8; tries++) {
                ssize_t n = xa_list(fd, path, NULL, 0);
                if (n < 0)
                        return (errno == ENOTSUP || errno == EOPNOTSUPP) ? 0 : -errno;
                if (n == 0)
                        return 0;
                char *buf = malloc((size_t) n);
                if (!buf)
                        return -ENOMEM;
                ssize_t m = xa_list(fd, path, buf, (size_t) n);
                if (m < 0) {
                        free(buf);
                        if (errno == ERANGE)
                                continue;
                        return -errno;
                }
                x->names = buf;
                x->names_len = (size_t) m;
                return 0;
        }
        return -EAGAIN;
}

static int xattr_value(int fd, const char *path, const char *name, void **value, size_t *size) {
        *value = NULL;
        for (int tries = 0; tries < 8; tries++) {
                ssize_t n = xa_get(fd, path, name, NULL, 0);
                if (n < 0)
                        return -errno;
                void *buf = malloc(n > 0 ? (size_t) n : 1);
                if (!buf)
                        return -ENOMEM;
                ssize_t m = xa_get(fd, path, name, buf, (size_t) n);
                if (m < 0) {
                        free(buf);
                        if (errno == ERANGE)
                                continue;
                        return -errno;
                }
                *value = buf;
                *size = (size_t) m;
                return 0;
        }
        return -EAGAIN;
}

static bool overlay_marker(const char *name, const char *what) {
        const char *rest = NULL;
        if (strncmp(name, "trusted.overlay.", 16) == 0)
                rest = name + 16;
        else if (strncmp(name, "user.overlay.", 13) == 0)
                rest = name + 13;
        return rest && strcmp(rest, what) == 0;
}

/*
 * Reads the xattrs of an entry; adds the storable ones to `e` (unless e is
 * NULL) and notes overlay markers in x.
 */
static int xattrs_collect(struct tar_writer *w, int fd, const char *path, bool overlay, struct xattrs *x,
                          struct archive_entry *e) {
        int r = xattrs_list(fd, path, x);
        if (r < 0)
                return r;
        for (const char *name = x->names; x->names && name < x->names + x->names_len;
             name += strlen(name) + 1) {
                bool private = xattr_is_overlay_private(name);
                if (!private && (w->flags & TAR_WRITE_NO_XATTRS))
                        continue;
                if (private && !overlay)
                        continue;
                _cleanup_free_ void *value = NULL;
                size_t size = 0;
                r = xattr_value(fd, path, name, &value, &size);
                if (r == -ENODATA)
                        continue;
                if (r < 0)
                        return r;
                if (private) {
                        if (overlay_marker(name, "opaque"))
                                x->opaque = x->opaque || (size == 1 && ((char *) value)[0] == 'y');
                        else if (overlay_marker(name, "redirect"))
                                x->redirect = true;
                        else if (overlay_marker(name, "metacopy"))
                                x->metacopy = true;
                        else if (overlay_marker(name, "whiteout"))
                                x->whiteout = true;
                        continue;
                }
                if (e)
                        archive_entry_xattr_add_entry(e, name, value, size);
        }
        return 0;
}

/* ---- tree walk ---------------------------------------------------------- */

static int path_push(struct tar_writer *w, const char *name, size_t *saved) {
        size_t nlen = strlen(name);
        size_t need = w->path_len + 1 + nlen + 1;
        if (need > w->path_cap) {
                size_t cap = w->path_cap;
                while (cap < need)
                        cap *= 2;
                char *p = realloc(w->path, cap);
                if (!p)
                        return -ENOMEM;
                w->path = p;
                w->path_cap = cap;
        }
        *saved = w->path_len;
        if (w->path_len > 0)
                w->path[w->path_len++] = '/';
        memcpy(w->path + w->path_len, name, nlen + 1);
        w->path_len += nlen;
        return 0;
}

static void path_pop(struct tar_writer *w, size_t saved) {
        w->path_len = saved;
        w->path[saved] = '\0';
}

static bool is_excluded(char **excludes, const char *rel) {
        for (char **p = excludes; p && *p; p++)
                if (strcmp(*p, rel) == 0)
                        return true;
        return false;
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Sorted names of a directory (deterministic archives). */
static int read_names(int dfd, char ***out) {
        int fd2 = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd2 < 0)
                return -errno;
        _cleanup_closedir_ DIR *d = fdopendir(fd2);
        if (!d) {
                close(fd2);
                return -errno;
        }
        struct strv_builder b = {0};
        struct dirent *de;
        while ((errno = 0, de = readdir(d))) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                int r = strv_builder_add(&b, de->d_name);
                if (r < 0) {
                        strv_builder_clear(&b);
                        return r;
                }
        }
        if (errno) {
                int e = errno;
                strv_builder_clear(&b);
                return -e;
        }
        if (b.n > 1)
                qsort(b.v, b.n, sizeof(char *), cmp_str);
        if (!b.v) {
                b.v = calloc(1, sizeof(char *));
                if (!b.v)
                        return -ENOMEM;
        }
        *out = b.v;
        return 0;
}

static int write_header(struct tar_writer *w, struct archive_entry *e, struct cryo_error **err) {
        int r = archive_write_header(w->a, e);
        if (r < ARCHIVE_WARN)
                return archive_fail(w, err, w->path);
        w->stats->entries++;
        return 0;
}

/* Records the data segments of a file with holes in e's sparse map.  A
 * file system that cannot report holes leaves the map empty (the file is
 * stored dense). */
static int add_sparse_map(int fd, off_t size, struct archive_entry *e) {
        off_t pos = 0;
        int64_t segs = 0;
        while (pos < size) {
                off_t data = lseek(fd, pos, SEEK_DATA);
                if (data < 0 && errno == ENXIO)
                        break; /* only a hole remains */
                off_t hole = data < 0 ? -1 : lseek(fd, data, SEEK_HOLE);
                if (data < 0 || hole < 0) {
                        int e2 = errno;
                        archive_entry_sparse_clear(e);
                        return e2 == EINVAL || e2 == ENOTSUP || e2 == EOPNOTSUPP ? 0 : -e2;
                }
                if (data >= size)
                        break;
                if (hole > size)
                        hole = size;
                if (segs == 0 && data == 0 && hole == size)
                        return 0; /* dense after all */
                archive_entry_sparse_add_entry(e, data, hole - data);
                segs++;
                pos = hole;
        }
        if (segs == 0)
                /* all hole: an empty data block at the end marks the size */
                archive_entry_sparse_add_entry(e, size, 0);
        return 0;
}

static int write_file_data(struct tar_writer *w, int fd, off_t size, struct archive_entry *e,
                           struct cryo_error **err) {
        /* segments: from the entry's sparse map, or the whole file */
        off_t pos = 0;
        bool sparse = archive_entry_sparse_reset(e) > 0;
        for (;;) {
                la_int64_t off, len;
                if (sparse) {
                        if (archive_entry_sparse_next(e, &off, &len) != ARCHIVE_OK)
                                break;
                } else {
                        if (pos >= size)
                                break;
                        off = 0;
                        len = size;
                }
                /* hole bytes are consumed by the pax writer without being
                 * stored; their content does not matter */
                while (pos < off) {
                        size_t n = (size_t) (off - pos) < TAR_IO_BUF ? (size_t) (off - pos) : TAR_IO_BUF;
                        if (archive_write_data(w->a, w->dbuf, n) < 0)
                                return archive_fail(w, err, w->path);
                        pos += (off_t) n;
                }
                while (pos < off + len) {
                        size_t want = (size_t) (off + len - pos) < TAR_IO_BUF ? (size_t) (off + len - pos)
                                                                              : TAR_IO_BUF;
                        ssize_t n = pread(fd, w->dbuf, want, pos);
                        if (n < 0) {
                                if (errno == EINTR)
                                        continue;
                                return cryo_error_errno(err, errno, "cannot read %s", w->path);
                        }
                        if (n == 0)
                                return cryo_error_set(err, EIO, "%s: file shrank while being archived",
                                                      w->path);
                        if (archive_write_data(w->a, w->dbuf, (size_t) n) < 0)
                                return archive_fail(w, err, w->path);
                        pos += n;
                }
                if (!sparse)
                        break;
        }
        while (pos < size) { /* trailing hole */
                size_t n = (size_t) (size - pos) < TAR_IO_BUF ? (size_t) (size - pos) : TAR_IO_BUF;
                if (archive_write_data(w->a, w->dbuf, n) < 0)
                        return archive_fail(w, err, w->path);
                pos += (off_t) n;
        }
        w->stats->files++;
        w->stats->bytes += (uint64_t) size;
        return 0;
}

static int add_children(struct tar_writer *w, int dfd, const struct tar_walk *walk, dev_t one_dev,
                        unsigned depth, struct cryo_error **err);

static int add_deleted(struct tar_writer *w, const struct tar_walk *walk, struct cryo_error **err) {
        _cleanup_free_ char *abs = NULL;
        if (asprintf(&abs, "/%s", w->path) < 0 || strv_builder_add(walk->deleted, abs) < 0)
                return cryo_error_set(err, ENOMEM, "out of memory");
        return 0;
}

static int add_entry(struct tar_writer *w, int dfd, const char *name, const struct tar_walk *walk,
                     dev_t one_dev, unsigned depth, struct cryo_error **err) {
        const char *rel = w->path;
        struct stat st;
        if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                if (errno == ENOENT)
                        return 0; /* vanished while walking */
                return cryo_error_errno(err, errno, "cannot stat %s", rel);
        }
        if (walk->excludes && is_excluded(walk->excludes, rel)) {
                w->stats->skipped++;
                return 0;
        }
        if (walk->overlay && S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0))
                return add_deleted(w, walk, err); /* whiteout */
        if (S_ISSOCK(st.st_mode)) {
                w->stats->skipped++;
                return 0;
        }
        /* Another file system mounted here: in a merged view, left out; on
         * one file system's walk (TAR_WRITE_ONE_FS), stored as the place
         * it is mounted on, without what it holds. */
        bool mount_point = one_dev && st.st_dev != one_dev;
        if (mount_point && S_ISDIR(st.st_mode) && !walk->one_fs) {
                w->stats->skipped++;
                return 0;
        }

        _cleanup_close_ int fd = -1;
        if (S_ISREG(st.st_mode)) {
                /* O_NONBLOCK: never hang on a fifo swapped in meanwhile */
                fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOATIME);
                if (fd < 0 && errno == EPERM)
                        fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        } else if (S_ISDIR(st.st_mode)) {
                fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        }
        if ((S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))) {
                if (fd < 0) {
                        if (errno == ENOENT)
                                return 0;
                        return cryo_error_errno(err, errno, "cannot open %s", rel);
                }
                mode_t type = st.st_mode & S_IFMT;
                if (fstat(fd, &st) < 0)
                        return cryo_error_errno(err, errno, "cannot stat %s", rel);
                if ((st.st_mode & S_IFMT) != type)
                        return cryo_error_set(err, EAGAIN, "%s changed type while being archived", rel);
        }

        _cleanup_archive_entry_ struct archive_entry *e = archive_entry_new();
        if (!e)
                return cryo_error_set(err, ENOMEM, "out of memory");
        archive_entry_copy_pathname(e, rel);
        archive_entry_set_mode(e, st.st_mode);
        archive_entry_set_uid(e, st.st_uid);
        archive_entry_set_gid(e, st.st_gid);
        archive_entry_set_mtime(e, st.st_mtim.tv_sec, st.st_mtim.tv_nsec);

        char procpath[64];
        snprintf(procpath, sizeof(procpath), "/proc/self/fd/%d/", dfd);
        _cleanup_free_ char *xpath = NULL;
        if (fd < 0 && asprintf(&xpath, "%s%s", procpath, name) < 0)
                return cryo_error_set(err, ENOMEM, "out of memory");
        struct xattrs x = {0};
        int r = xattrs_collect(w, fd, xpath, walk->overlay, &x, e);
        bool opaque = x.opaque, redirect = x.redirect, metacopy = x.metacopy, xwhiteout = x.whiteout;
        xattrs_clear(&x);
        if (r < 0)
                return cryo_error_errno(err, r, "cannot read extended attributes of %s", rel);

        if (walk->overlay && xwhiteout && S_ISREG(st.st_mode) && st.st_size == 0)
                return add_deleted(w, walk, err); /* xattr whiteout (overlayfs >= 6.7) */

        if (S_ISLNK(st.st_mode)) {
                size_t cap = (size_t) st.st_size + 2;
                _cleanup_free_ char *target = malloc(cap);
                if (!target)
                        return cryo_error_set(err, ENOMEM, "out of memory");
                ssize_t n = readlinkat(dfd, name, target, cap);
                if (n < 0)
                        return cryo_error_errno(err, errno, "cannot read link %s", rel);
                if ((size_t) n >= cap)
                        return cryo_error_set(err, EAGAIN, "%s: symlink changed while being archived", rel);
                target[n] = '\0';
                archive_entry_copy_symlink(e, target);
        } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
                archive_entry_set_rdev(e, st.st_rdev);
        }

        if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
                const char *first;
                if (hl_lookup_or_add(w, st.st_dev, st.st_ino, rel, &first) < 0)
                        return cryo_error_set(err, ENOMEM, "out of memory");
                if (first) {
                        archive_entry_copy_hardlink(e, first);
                        archive_entry_set_size(e, 0);
                        return write_header(w, e, err);
                }
        }

        if (S_ISREG(st.st_mode) && mount_point && walk->one_fs) {
                archive_entry_set_size(e, 0);
                return write_header(w, e, err);
        }
        if (S_ISREG(st.st_mode)) {
                int data_fd = fd;
                _cleanup_close_ int merged_file = -1;
                if (walk->overlay && metacopy) {
                        /* metadata-only copy-up: the data lives in a lower layer */
                        if (walk->merged_fd < 0)
                                return cryo_error_set(err, EOPNOTSUPP,
                                                      "%s is a metacopy-only file (overlay metacopy=on); "
                                                      "the merged directory is needed to read its data",
                                                      rel);
                        merged_file = open_beneath(walk->merged_fd, rel, O_RDONLY, 0);
                        if (merged_file < 0)
                                return cryo_error_errno(err, merged_file,
                                                        "cannot open %s in the merged view", rel);
                        struct stat mst;
                        if (fstat(merged_file, &mst) < 0)
                                return cryo_error_errno(err, errno, "cannot stat %s", rel);
                        st.st_size = mst.st_size;
                        st.st_blocks = mst.st_blocks;
                        data_fd = merged_file;
                }
                archive_entry_set_size(e, st.st_size);
                if (!(w->flags & TAR_WRITE_NO_SPARSE) && st.st_size > 0 &&
                    (off_t) st.st_blocks * 512 < st.st_size) {
                        r = add_sparse_map(data_fd, st.st_size, e);
                        if (r < 0)
                                return cryo_error_errno(err, r, "cannot map holes of %s", rel);
                }
                r = write_header(w, e, err);
                if (r < 0)
                        return r;
                return write_file_data(w, data_fd, st.st_size, e, err);
        }

        if (!S_ISDIR(st.st_mode))
                return write_header(w, e, err);

        /* directory */
        if (walk->overlay && (opaque || redirect)) {
                /* The lower directory's content must go away before the
                 * archive re-creates this one: list it in deleted.files. */
                r = add_deleted(w, walk, err);
                if (r < 0)
                        return r;
                w->stats->opaque_dirs++;
        }
        r = write_header(w, e, err);
        if (r < 0 || mount_point)
                return r;

        if (walk->overlay && redirect) {
                /* renamed directory (overlay redirect_dir=on): its content is
                 * spread over the layers; archive it from the merged view */
                if (walk->merged_fd < 0)
                        return cryo_error_set(
                                err, EOPNOTSUPP,
                                "%s is a redirected (renamed) directory (overlay redirect_dir=on); "
                                "the merged directory is needed to archive it",
                                rel);
                _cleanup_close_ int mdir = open_beneath(walk->merged_fd, rel, O_RDONLY | O_DIRECTORY, 0);
                if (mdir < 0)
                        return cryo_error_errno(err, mdir, "cannot open %s in the merged view", rel);
                struct stat mst;
                if (fstat(mdir, &mst) < 0)
                        return cryo_error_errno(err, errno, "cannot stat %s", rel);
                struct tar_walk plain = *walk;
                plain.overlay = false;
                return add_children(w, mdir, &plain, mst.st_dev, depth + 1, err);
        }
        return add_children(w, fd, walk, one_dev, depth + 1, err);
}

static int add_children(struct tar_writer *w, int dfd, const struct tar_walk *walk, dev_t one_dev,
                        unsigned depth, struct cryo_error **err) {
        if (depth > 2048)
                return cryo_error_set(err, ELOOP, "%s: directory tree too deep", w->path);
        _cleanup_strv_ char **names = NULL;
        int r = read_names(dfd, &names);
        if (r < 0)
                return cryo_error_errno(err, r, "cannot read directory %s", w->path[0] ? w->path : ".");
        for (char **n = names; *n; n++) {
                size_t saved;
                if (path_push(w, *n, &saved) < 0)
                        return cryo_error_set(err, ENOMEM, "out of memory");
                r = add_entry(w, dfd, *n, walk, one_dev, depth, err);
                path_pop(w, saved);
                if (r < 0)
                        return r;
        }
        return 0;
}

int tar_writer_add_tree(struct tar_writer *w, int dir_fd, const struct tar_walk *walk,
                        struct cryo_error **err) {
        path_pop(w, 0);
        struct stat st;
        if (walk->one_fs && fstat(dir_fd, &st) < 0)
                return cryo_error_errno(err, errno, "cannot stat the directory to archive");
        return add_children(w, dir_fd, walk, walk->one_fs ? st.st_dev : 0, 0, err);
}
