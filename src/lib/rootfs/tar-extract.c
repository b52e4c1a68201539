/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Safe tar extraction below a root directory fd.
 *
 * libarchive only parses the stream (tar/pax/ustar/GNU, zstd/gzip/xz
 * filters); files are created here with *at() calls relative to directory
 * fds obtained by open_beneath(): no member can name a path outside the root
 * ("..", absolute names rejected), no symlink is ever followed (parents are
 * resolved with RESOLVE_NO_SYMLINKS, members are created with
 * O_EXCL|O_NOFOLLOW after removing whatever was there), and hard-link
 * targets are resolved the same way.  Directory modes and mtimes are applied
 * at the end (children change a directory's mtime; a read-only mode would
 * stop a non-root extraction).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "rootfs/tar-internal.h"
#include "util/fs.h"

struct dir_fixup {
        char *path;
        mode_t mode;
        bool has_mtime;
        struct timespec mtime;
};

struct extractor {
        int root_fd;
        int in_fd;
        const char *what;
        bool same_owner;
        struct tar_stats *stats;
        uint8_t *rbuf;
        int io_error;

        char *parent_path; /* cached parent directory and its O_PATH fd */
        int parent_fd;

        struct dir_fixup *fx;
        size_t fx_n, fx_cap;

        unsigned flags;
        bool whiteouts; /* OCI whiteouts are interpreted */
        bool checked_filter;
        /* paths created by this archive (only tracked with whiteouts) */
        char **created;
        size_t created_n, created_cap;
};

/* ---- set of created paths (open addressing) ----------------------------- */

static size_t str_hash(const char *s) {
        size_t h = 1469598103934665603ull;
        for (; *s; s++)
                h = (h ^ (unsigned char) *s) * 1099511628211ull;
        return h;
}

static char **created_slot(char **tab, size_t cap, const char *s) {
        size_t i = str_hash(s) & (cap - 1);
        while (tab[i] && strcmp(tab[i], s) != 0)
                i = (i + 1) & (cap - 1);
        return &tab[i];
}

static bool created_has(struct extractor *x, const char *s) {
        return x->created_cap && *created_slot(x->created, x->created_cap, s);
}

static int created_add(struct extractor *x, const char *s) {
        if ((x->created_n + 1) * 2 > x->created_cap) {
                size_t cap = x->created_cap ? x->created_cap * 2 : 256;
                char **tab = calloc(cap, sizeof(*tab));
                if (!tab)
                        return -ENOMEM;
                for (size_t i = 0; i < x->created_cap; i++)
                        if (x->created[i])
                                *created_slot(tab, cap, x->created[i]) = x->created[i];
                free(x->created);
                x->created = tab;
                x->created_cap = cap;
        }
        char **slot = created_slot(x->created, x->created_cap, s);
        if (*slot)
                return 0;
        if (!(*slot = strdup(s)))
                return -ENOMEM;
        x->created_n++;
        return 0;
}

static la_ssize_t read_cb(struct archive *a, void *userdata, const void **buf) {
        struct extractor *x = userdata;
        for (;;) {
                ssize_t n = read(x->in_fd, x->rbuf, TAR_IO_BUF);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        x->io_error = -errno;
                        archive_set_error(a, errno, "read error: %s", strerror(errno));
                        return -1;
                }
                x->stats->archive_bytes += (uint64_t) n;
                *buf = x->rbuf;
                return n;
        }
}

static void parent_invalidate(struct extractor *x) {
        cryo_closep(&x->parent_fd);
        x->parent_fd = -1;
        free(x->parent_path);
        x->parent_path = NULL;
}

static void extractor_clear(struct extractor *x) {
        parent_invalidate(x);
        for (size_t i = 0; i < x->fx_n; i++)
                free(x->fx[i].path);
        free(x->fx);
        for (size_t i = 0; i < x->created_cap; i++)
                free(x->created[i]);
        free(x->created);
        free(x->rbuf);
}

static const char *name_of(const char *mbs, const char *utf8) {
        return mbs ? mbs : utf8;
}

static int unsafe(struct extractor *x, struct cryo_error **err, int r, const char *member, const char *why) {
        if (r == -ENOMEM)
                return cryo_error_set(err, ENOMEM, "out of memory");
        return cryo_error_set(err, EINVAL, "%s: refusing unsafe archive member '%s': %s", x->what, member,
                              why);
}

static int resolve_error(struct extractor *x, struct cryo_error **err, int r, const char *member) {
        if (r == -ELOOP)
                return cryo_error_set(
                        err, ELOOP,
                        "%s: refusing archive member '%s': a parent directory is a symbolic link", x->what,
                        member);
        if (r == -ENOTDIR)
                return cryo_error_set(err, ENOTDIR, "%s: archive member '%s': a parent is not a directory",
                                      x->what, member);
        return cryo_error_errno(err, r, "%s: cannot open the parent directory of '%s'", x->what, member);
}

static int get_parent(struct extractor *x, const char *parent) {
        if (x->parent_fd >= 0 && strcmp(x->parent_path, parent) == 0)
                return x->parent_fd;
        parent_invalidate(x);
        int fd = open_dir_beneath_mkdir(x->root_fd, parent);
        if (fd < 0)
                return fd;
        x->parent_path = strdup(parent);
        if (!x->parent_path) {
                close(fd);
                return -ENOMEM;
        }
        x->parent_fd = fd;
        return fd;
}

/* Removes what is at pfd/base.  keep_dir: an existing directory stays
 * (returns 1).  Returns 0 when the name is free. */
static int make_room(struct extractor *x, int pfd, const char *base, bool keep_dir) {
        struct stat st;
        if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return errno == ENOENT ? 0 : -errno;
        if (S_ISDIR(st.st_mode)) {
                if (keep_dir)
                        return 1;
                /* pfd (possibly the cached parent) is not below base: the
                 * cache stays valid */
                return rm_rf_at(pfd, base);
        }
        if (unlinkat(pfd, base, 0) < 0 && errno != ENOENT)
                return -errno;
        return 0;
}

static bool xattr_error_ignorable(struct extractor *x, const char *name, int e, bool symlink) {
        if (e == ENOTSUP || e == EOPNOTSUPP)
                return true;
        if (e == EPERM && symlink)
                return true; /* user.* is not allowed on symlinks */
        if (e == EPERM && !x->same_owner &&
            (strncmp(name, "trusted.", 8) == 0 || strncmp(name, "security.", 9) == 0))
                return true;
        return false;
}

/* fd >= 0: fsetxattr; else lsetxattr on "/proc/self/fd/<pfd>/<base>". */
static int apply_xattrs(struct extractor *x, struct archive_entry *e, int fd, int pfd, const char *base,
                        const char *member, bool symlink, struct cryo_error **err) {
        if (archive_entry_xattr_reset(e) == 0)
                return 0;
        _cleanup_free_ char *path = NULL;
        if (fd < 0 && asprintf(&path, "/proc/self/fd/%d/%s", pfd, base) < 0)
                return cryo_error_set(err, ENOMEM, "out of memory");
        const char *name;
        const void *value;
        size_t size;
        while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
                if (!name || !*name || xattr_is_overlay_private(name)) {
                        x->stats->skipped++;
                        continue;
                }
                int r = fd >= 0 ? fsetxattr(fd, name, value, size, 0)
                                : lsetxattr(path, name, value, size, 0);
                if (r < 0) {
                        if (xattr_error_ignorable(x, name, errno, symlink)) {
                                x->stats->skipped++;
                                continue;
                        }
                        return cryo_error_errno(err, errno, "%s: cannot set extended attribute %s on '%s'",
                                                x->what, name, member);
                }
        }
        return 0;
}

static void entry_times(struct archive_entry *e, struct timespec ts[2]) {
        ts[0] = (struct timespec){.tv_nsec = UTIME_OMIT};
        ts[1] = (struct timespec){.tv_nsec = UTIME_OMIT};
        if (archive_entry_atime_is_set(e))
                ts[0] = (struct timespec){archive_entry_atime(e), archive_entry_atime_nsec(e)};
        if (archive_entry_mtime_is_set(e))
                ts[1] = (struct timespec){archive_entry_mtime(e), archive_entry_mtime_nsec(e)};
}

static int read_error(struct extractor *x, struct archive *a, struct cryo_error **err, const char *member) {
        if (x->io_error < 0)
                return cryo_error_errno(err, x->io_error, "%s: cannot read archive", x->what);
        int e = archive_errno(a);
        return cryo_error_set(err, e > 0 ? e : EIO, "%s: corrupt archive%s%s: %s", x->what,
                              member ? " at member " : "", member ?: "",
                              archive_error_string(a) ?: "libarchive error");
}

static int extract_regular(struct extractor *x, struct archive *a, struct archive_entry *e, int pfd,
                           const char *base, const char *member, struct cryo_error **err) {
        int r = make_room(x, pfd, base, false);
        if (r < 0)
                return cryo_error_errno(err, r, "%s: cannot replace existing '%s'", x->what, member);
        _cleanup_close_ int fd =
                openat(pfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
                return cryo_error_errno(err, errno, "%s: cannot create '%s'", x->what, member);

        off_t end = 0;
        for (;;) {
                const void *buf;
                size_t size;
                la_int64_t off;
                r = archive_read_data_block(a, &buf, &size, &off);
                if (r == ARCHIVE_EOF)
                        break;
                if (r < ARCHIVE_WARN)
                        return read_error(x, a, err, member);
                if (size == 0)
                        continue;
                r = fs_pwrite_all(fd, buf, size, off);
                if (r < 0)
                        return cryo_error_errno(err, r, "%s: cannot write '%s'", x->what, member);
                if (off + (off_t) size > end)
                        end = off + (off_t) size;
        }
        off_t size = archive_entry_size_is_set(e) ? archive_entry_size(e) : end;
        if (size > end && ftruncate(fd, size) < 0)
                return cryo_error_errno(err, errno, "%s: cannot size '%s'", x->what, member);

        if (x->same_owner && fchown(fd, (uid_t) archive_entry_uid(e), (gid_t) archive_entry_gid(e)) < 0)
                return cryo_error_errno(err, errno, "%s: cannot set owner of '%s'", x->what, member);
        if (fchmod(fd, archive_entry_perm(e) & 07777) < 0)
                return cryo_error_errno(err, errno, "%s: cannot set mode of '%s'", x->what, member);
        r = apply_xattrs(x, e, fd, pfd, base, member, false, err);
        if (r < 0)
                return r;
        struct timespec ts[2];
        entry_times(e, ts);
        if (futimens(fd, ts) < 0)
                return cryo_error_errno(err, errno, "%s: cannot set times of '%s'", x->what, member);
        x->stats->files++;
        x->stats->bytes += (uint64_t) size;
        return 0;
}

static int add_fixup(struct extractor *x, const char *rel, struct archive_entry *e) {
        if (x->fx_n == x->fx_cap) {
                size_t cap = x->fx_cap ? x->fx_cap * 2 : 64;
                struct dir_fixup *v = realloc(x->fx, cap * sizeof(*v));
                if (!v)
                        return -ENOMEM;
                x->fx = v;
                x->fx_cap = cap;
        }
        char *p = strdup(rel);
        if (!p)
                return -ENOMEM;
        struct timespec ts[2];
        entry_times(e, ts);
        x->fx[x->fx_n++] = (struct dir_fixup){
                .path = p,
                .mode = archive_entry_perm(e) & 07777,
                .has_mtime = archive_entry_mtime_is_set(e),
                .mtime = ts[1],
        };
        return 0;
}

static int extract_dir(struct extractor *x, struct archive_entry *e, int pfd, const char *base,
                       const char *rel, const char *member, struct cryo_error **err) {
        _cleanup_close_ int fd = -1;
        if (!base) {
                /* the root itself ("." member) */
                fd = openat(x->root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        } else {
                int r = make_room(x, pfd, base, true);
                if (r < 0)
                        return cryo_error_errno(err, r, "%s: cannot replace existing '%s'", x->what, member);
                if (r == 0 && mkdirat(pfd, base, 0700) < 0 && errno != EEXIST)
                        return cryo_error_errno(err, errno, "%s: cannot create directory '%s'", x->what,
                                                member);
                fd = openat(pfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        }
        if (fd < 0)
                return cryo_error_errno(err, errno, "%s: cannot open directory '%s'", x->what, member);
        if (x->same_owner && fchown(fd, (uid_t) archive_entry_uid(e), (gid_t) archive_entry_gid(e)) < 0)
                return cryo_error_errno(err, errno, "%s: cannot set owner of '%s'", x->what, member);
        int r = apply_xattrs(x, e, fd, pfd, base, member, false, err);
        if (r < 0)
                return r;
        if (add_fixup(x, rel, e) < 0)
                return cryo_error_set(err, ENOMEM, "out of memory");
        return 0;
}

static int extract_special(struct extractor *x, struct archive_entry *e, int pfd, const char *base,
                           const char *member, struct cryo_error **err) {
        mode_t type = archive_entry_filetype(e);
        int r = make_room(x, pfd, base, false);
        if (r < 0)
                return cryo_error_errno(err, r, "%s: cannot replace existing '%s'", x->what, member);
        bool symlink = type == AE_IFLNK;
        if (symlink) {
                const char *target = name_of(archive_entry_symlink(e), archive_entry_symlink_utf8(e));
                if (!target || !*target)
                        return cryo_error_set(err, EINVAL, "%s: symlink '%s' has no target", x->what,
                                              member);
                if (symlinkat(target, pfd, base) < 0)
                        return cryo_error_errno(err, errno, "%s: cannot create symlink '%s'", x->what,
                                                member);
        } else {
                if (mknodat(pfd, base, type | (archive_entry_perm(e) & 0777), archive_entry_rdev(e)) < 0)
                        return cryo_error_errno(err, errno, "%s: cannot create special file '%s'", x->what,
                                                member);
        }
        if (x->same_owner && fchownat(pfd, base, (uid_t) archive_entry_uid(e), (gid_t) archive_entry_gid(e),
                                      AT_SYMLINK_NOFOLLOW) < 0)
                return cryo_error_errno(err, errno, "%s: cannot set owner of '%s'", x->what, member);
        if (!symlink && fchmodat(pfd, base, archive_entry_perm(e) & 07777, AT_SYMLINK_NOFOLLOW) < 0 &&
            (errno != EOPNOTSUPP || fchmodat(pfd, base, archive_entry_perm(e) & 07777, 0) < 0))
                return cryo_error_errno(err, errno, "%s: cannot set mode of '%s'", x->what, member);
        r = apply_xattrs(x, e, -1, pfd, base, member, symlink, err);
        if (r < 0)
                return r;
        struct timespec ts[2];
        entry_times(e, ts);
        if (utimensat(pfd, base, ts, AT_SYMLINK_NOFOLLOW) < 0)
                return cryo_error_errno(err, errno, "%s: cannot set times of '%s'", x->what, member);
        return 0;
}

static int extract_hardlink(struct extractor *x, const char *target_name, int pfd, const char *base,
                            const char *member, struct cryo_error **err) {
        _cleanup_free_ char *target = NULL, *tparent = NULL;
        const char *why, *tbase;
        int r = path_normalize(target_name, false, &target, &why);
        if (r < 0)
                return cryo_error_set(err, r == -ENOMEM ? ENOMEM : EINVAL,
                                      "%s: refusing hard link '%s' to '%s': %s", x->what, member,
                                      target_name, why ?: "out of memory");
        if (!target[0] || path_split(target, &tparent, &tbase) < 0)
                return cryo_error_set(err, EINVAL, "%s: hard link '%s' has an invalid target", x->what,
                                      member);
        _cleanup_close_ int tpfd = open_beneath(x->root_fd, tparent, O_PATH | O_DIRECTORY, 0);
        if (tpfd < 0) {
                if (tpfd == -ELOOP)
                        return cryo_error_set(
                                err, ELOOP,
                                "%s: refusing hard link '%s' to '%s': a parent directory of the "
                                "target is a symbolic link",
                                x->what, member, target_name);
                return cryo_error_errno(err, tpfd, "%s: hard link '%s': cannot find target '%s'", x->what,
                                        member, target_name);
        }
        struct stat tst, st;
        if (fstatat(tpfd, tbase, &tst, AT_SYMLINK_NOFOLLOW) < 0)
                return cryo_error_errno(err, errno, "%s: hard link '%s': cannot find target '%s'", x->what,
                                        member, target_name);
        if (S_ISDIR(tst.st_mode))
                return cryo_error_set(err, EINVAL, "%s: refusing hard link '%s' to directory '%s'", x->what,
                                      member, target_name);
        if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_dev == tst.st_dev &&
            st.st_ino == tst.st_ino)
                return 0; /* already linked */
        r = make_room(x, pfd, base, false);
        if (r < 0)
                return cryo_error_errno(err, r, "%s: cannot replace existing '%s'", x->what, member);
        if (linkat(tpfd, tbase, pfd, base, 0) < 0)
                return cryo_error_errno(err, errno, "%s: cannot create hard link '%s' to '%s'", x->what,
                                        member, target_name);
        return 0;
}

/* OCI layer whiteouts: ".wh..wh..opq" and ".wh.NAME". */
static int apply_whiteout(struct extractor *x, int pfd, const char *parent, const char *base,
                          const char *member, struct cryo_error **err) {
        if (strcmp(base, ".wh..wh..opq") == 0) {
                int dfd = openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (dfd < 0)
                        return cryo_error_errno(err, errno, "%s: cannot open '%s'", x->what, parent);
                _cleanup_closedir_ DIR *d = fdopendir(dfd);
                if (!d) {
                        close(dfd);
                        return cryo_error_errno(err, errno, "%s: cannot read '%s'", x->what, parent);
                }
                struct dirent *de;
                while ((errno = 0, de = readdir(d))) {
                        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                                continue;
                        _cleanup_free_ char *child = NULL;
                        if (asprintf(&child, "%s%s%s", parent, parent[0] ? "/" : "", de->d_name) < 0)
                                return cryo_error_set(err, ENOMEM, "out of memory");
                        if (created_has(x, child))
                                continue;
                        int r = rm_rf_at(pfd, de->d_name);
                        if (r < 0)
                                return cryo_error_errno(err, r, "%s: cannot empty opaque directory '%s'",
                                                        x->what, parent);
                }
                x->stats->opaque_dirs++;
                return 0;
        }
        const char *name = base + 4;
        if (!name[0] || strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || strchr(name, '/'))
                return unsafe(x, err, -EINVAL, member, "invalid whiteout");
        int r = rm_rf_at(pfd, name);
        if (r < 0)
                return cryo_error_errno(err, r, "%s: cannot apply whiteout '%s'", x->what, member);
        x->stats->deleted++;
        return 0;
}

static int extract_entry(struct extractor *x, struct archive *a, struct archive_entry *e,
                         struct cryo_error **err) {
        const char *member = name_of(archive_entry_pathname(e), archive_entry_pathname_utf8(e));
        if (!member)
                return cryo_error_set(err, EINVAL, "%s: archive member without a readable name", x->what);
        _cleanup_free_ char *rel = NULL, *parent = NULL;
        const char *why, *base = NULL;
        int r = path_normalize(member, false, &rel, &why);
        if (r < 0)
                return unsafe(x, err, r, member, why);

        const char *hardlink = name_of(archive_entry_hardlink(e), archive_entry_hardlink_utf8(e));
        mode_t type = archive_entry_filetype(e);

        if (!rel[0]) {
                if (hardlink || type != AE_IFDIR)
                        return unsafe(x, err, -EINVAL, member, "names the destination directory itself");
                r = extract_dir(x, e, -1, NULL, rel, member, err);
                if (r >= 0)
                        x->stats->entries++;
                return r;
        }
        if (path_split(rel, &parent, &base) < 0)
                return cryo_error_set(err, ENOMEM, "out of memory");
        int pfd = get_parent(x, parent);
        if (pfd < 0)
                return resolve_error(x, err, pfd, member);
        if (x->whiteouts && strncmp(base, ".wh.", 4) == 0)
                return apply_whiteout(x, pfd, parent, base, member, err);
        if (x->whiteouts && created_add(x, rel) < 0)
                return cryo_error_set(err, ENOMEM, "out of memory");

        if (hardlink)
                r = extract_hardlink(x, hardlink, pfd, base, member, err);
        else if (type == AE_IFREG)
                r = extract_regular(x, a, e, pfd, base, member, err);
        else if (type == AE_IFDIR)
                r = extract_dir(x, e, pfd, base, rel, member, err);
        else if (type == AE_IFLNK || type == AE_IFCHR || type == AE_IFBLK || type == AE_IFIFO)
                r = extract_special(x, e, pfd, base, member, err);
        else {
                x->stats->skipped++;
                return 0;
        }
        if (r >= 0)
                x->stats->entries++;
        return r;
}

static int apply_fixups(struct extractor *x, struct cryo_error **err) {
        for (size_t i = x->fx_n; i-- > 0;) {
                struct dir_fixup *f = &x->fx[i];
                _cleanup_close_ int fd = open_beneath(x->root_fd, f->path, O_RDONLY | O_DIRECTORY, 0);
                if (fd == -ENOENT || fd == -ENOTDIR || fd == -ELOOP)
                        continue; /* replaced by a later member */
                if (fd < 0)
                        return cryo_error_errno(err, fd, "%s: cannot open directory '%s'", x->what, f->path);
                if (fchmod(fd, f->mode) < 0)
                        return cryo_error_errno(err, errno, "%s: cannot set mode of '%s'", x->what, f->path);
                if (f->has_mtime) {
                        struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT}, f->mtime};
                        if (futimens(fd, ts) < 0)
                                return cryo_error_errno(err, errno, "%s: cannot set times of '%s'", x->what,
                                                        f->path);
                }
        }
        return 0;
}

int tar_extract_fd(int in_fd, int root_fd, const char *what, unsigned flags, struct tar_stats *stats,
                   struct cryo_error **err) {
        struct tar_stats dummy = {0};
        struct extractor x = {
                .root_fd = root_fd,
                .in_fd = in_fd,
                .what = what ?: "archive",
                .same_owner = geteuid() == 0,
                .stats = stats ?: &dummy,
                .parent_fd = -1,
                .flags = flags,
        };
        x.rbuf = tar_io_alloc(TAR_IO_BUF);
        _cleanup_archive_read_ struct archive *a = archive_read_new();
        int r;
        if (!x.rbuf || !a) {
                r = cryo_error_set(err, ENOMEM, "out of memory");
                goto out;
        }
        archive_read_support_format_tar(a);
        archive_read_support_format_empty(a);
        archive_read_support_filter_zstd(a);
        archive_read_support_filter_gzip(a);
        archive_read_support_filter_xz(a);
        if (archive_read_open2(a, &x, NULL, read_cb, NULL, NULL) != ARCHIVE_OK) {
                r = read_error(&x, a, err, NULL);
                goto out;
        }
        for (;;) {
                struct archive_entry *e;
                r = archive_read_next_header(a, &e);
                if (r == ARCHIVE_EOF)
                        break;
                if (r < ARCHIVE_WARN) {
                        r = read_error(&x, a, err, NULL);
                        goto out;
                }
                if (!x.checked_filter) {
                        x.checked_filter = true;
                        for (int i = 0;
                             (x.flags & TAR_EXTRACT_OCI_WHITEOUTS_GZIP) && i < archive_filter_count(a); i++)
                                if (archive_filter_code(a, i) == ARCHIVE_FILTER_GZIP)
                                        x.whiteouts = true;
                }
                r = extract_entry(&x, a, e, err);
                if (r < 0)
                        goto out;
        }
        r = apply_fixups(&x, err);
out:
        extractor_clear(&x);
        return r;
}
