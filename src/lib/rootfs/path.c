/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Safe path handling below a root directory fd. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "rootfs/tar-internal.h"

int path_normalize(const char *in, bool allow_absolute, char **out, const char **why) {
        const char *dummy;
        if (!why)
                why = &dummy;
        *why = NULL;
        if (!in) {
                *why = "empty name";
                return -EINVAL;
        }
        if (in[0] == '/' && !allow_absolute) {
                *why = "absolute path";
                return -EINVAL;
        }

        size_t len = strlen(in);
        _cleanup_free_ char *res = malloc(len + 1);
        if (!res)
                return -ENOMEM;
        size_t n = 0;
        const char *p = in;
        while (*p) {
                while (*p == '/')
                        p++;
                if (!*p)
                        break;
                const char *end = strchrnul(p, '/');
                size_t clen = (size_t) (end - p);
                if (clen == 1 && p[0] == '.') {
                        p = end;
                        continue;
                }
                if (clen == 2 && p[0] == '.' && p[1] == '.') {
                        *why = "contains a '..' component";
                        return -EINVAL;
                }
                if (n > 0)
                        res[n++] = '/';
                memcpy(res + n, p, clen);
                n += clen;
                p = end;
        }
        res[n] = '\0';
        *out = steal_pointer(&res);
        return 0;
}

int path_split(const char *path, char **parent, const char **base) {
        const char *slash = strrchr(path, '/');
        if (!slash) {
                *parent = strdup("");
                *base = path;
        } else {
                *parent = strndup(path, (size_t) (slash - path));
                *base = slash + 1;
        }
        return *parent ? 0 : -ENOMEM;
}

/* Component-by-component walk, no symlink followed; used when openat2 is
 * unavailable (old kernel, seccomp) and to create missing directories. */
static int walk_beneath(int root_fd, const char *rel, bool mkdir_missing, int final_flags, mode_t mode) {
        _cleanup_free_ char *copy = strdup(rel);
        if (!copy)
                return -ENOMEM;

        _cleanup_close_ int cur = openat(root_fd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (cur < 0)
                return -errno;
        char *save = NULL;
        char *comp = strtok_r(copy, "/", &save);
        while (comp) {
                char *next = strtok_r(NULL, "/", &save);
                int flags = next ? (O_PATH | O_DIRECTORY) : final_flags;
                int fd = openat(cur, comp, flags | O_NOFOLLOW | O_CLOEXEC, mode);
                if (fd < 0 && errno == ENOENT && mkdir_missing) {
                        if (mkdirat(cur, comp, 0755) < 0 && errno != EEXIST)
                                return -errno;
                        fd = openat(cur, comp, flags | O_NOFOLLOW | O_CLOEXEC, mode);
                }
                if (fd < 0) {
                        int e = errno;
                        /* O_PATH|O_NOFOLLOW on a symlink gives ENOTDIR with
                         * O_DIRECTORY; report it as the symlink it is. */
                        struct stat st;
                        if ((e == ENOTDIR || e == ELOOP) &&
                            fstatat(cur, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
                                return -ELOOP;
                        return -e;
                }
                if (!next) {
                        /* O_PATH|O_NOFOLLOW opens a final symlink itself */
                        struct stat st;
                        if ((final_flags & O_PATH) && fstat(fd, &st) == 0 && S_ISLNK(st.st_mode)) {
                                close(fd);
                                return -ELOOP;
                        }
                        cryo_closep(&cur);
                        return fd;
                }
                cryo_closep(&cur);
                cur = fd;
                comp = next;
        }
        /* empty path: the root itself */
        if (final_flags & O_PATH)
                return steal_fd(&cur);
        int fd = openat(root_fd, ".", final_flags | O_CLOEXEC, mode);
        return fd < 0 ? -errno : fd;
}

int open_beneath(int root_fd, const char *rel, int flags, mode_t mode) {
        static int have_openat2 = -1;
        if (have_openat2 != 0) {
                struct open_how how = {
                        .flags = (uint64_t) (flags | O_NOFOLLOW | O_CLOEXEC),
                        .mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0,
                        .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
                };
                long fd;
                int tries = 0;
                do
                        fd = syscall(SYS_openat2, root_fd, rel[0] ? rel : ".", &how, sizeof(how));
                while (fd < 0 && (errno == EAGAIN || errno == EINTR) && ++tries < 16);
                if (fd >= 0) {
                        have_openat2 = 1;
                        if (flags & O_PATH) {
                                struct stat st;
                                if (fstat((int) fd, &st) == 0 && S_ISLNK(st.st_mode)) {
                                        close((int) fd);
                                        return -ELOOP;
                                }
                        }
                        return (int) fd;
                }
                /* ENOTDIR: a symlink where a directory is expected (O_NOFOLLOW
                 * on the last component) or a plain file; the walk tells which */
                if (errno != ENOSYS && errno != EPERM && errno != E2BIG && errno != ENOTDIR)
                        return errno == EXDEV ? -ELOOP : -errno;
                if (errno == ENOSYS)
                        have_openat2 = 0;
        }
        return walk_beneath(root_fd, rel, false, flags, mode);
}

int open_dir_beneath_mkdir(int root_fd, const char *rel) {
        int fd = open_beneath(root_fd, rel, O_PATH | O_DIRECTORY, 0);
        if (fd != -ENOENT)
                return fd;
        return walk_beneath(root_fd, rel, true, O_PATH | O_DIRECTORY, 0);
}

static int rm_rf_children(int dfd, dev_t dev, unsigned depth) {
        if (depth > 4096)
                return -ELOOP;
        int fd2 = dup(dfd);
        if (fd2 < 0)
                return -errno;
        _cleanup_closedir_ DIR *d = fdopendir(fd2);
        if (!d) {
                close(fd2);
                return -errno;
        }
        struct dirent *de;
        while ((errno = 0, de = readdir(d))) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                if (unlinkat(dfd, de->d_name, 0) == 0 || errno == ENOENT)
                        continue;
                if (errno != EISDIR && errno != EPERM)
                        return -errno;
                _cleanup_close_ int sub =
                        openat(dfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (sub < 0)
                        return -errno;
                struct stat st;
                if (fstat(sub, &st) < 0)
                        return -errno;
                if (st.st_dev != dev)
                        return -EBUSY;
                int r = rm_rf_children(sub, dev, depth + 1);
                if (r < 0)
                        return r;
                if (unlinkat(dfd, de->d_name, AT_REMOVEDIR) < 0 && errno != ENOENT)
                        return -errno;
        }
        return errno ? -errno : 0;
}

int rm_rf_at(int dirfd, const char *name) {
        if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT)
                return 0;
        if (errno != EISDIR && errno != EPERM)
                return -errno;
        _cleanup_close_ int sub = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub < 0)
                return -errno;
        struct stat st, pst;
        if (fstat(sub, &st) < 0 || fstatat(dirfd, "", &pst, AT_EMPTY_PATH) < 0)
                return -errno;
        if (st.st_dev != pst.st_dev)
                return -EBUSY;
        int r = rm_rf_children(sub, st.st_dev, 0);
        if (r < 0)
                return r;
        if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
                return -errno;
        return 0;
}

int strv_builder_add(struct strv_builder *b, const char *s) {
        if (b->n + 1 >= b->cap) {
                size_t cap = b->cap ? b->cap * 2 : 16;
                char **v = realloc(b->v, cap * sizeof(*v));
                if (!v)
                        return -ENOMEM;
                b->v = v;
                b->cap = cap;
        }
        char *copy = strdup(s);
        if (!copy)
                return -ENOMEM;
        b->v[b->n++] = copy;
        b->v[b->n] = NULL;
        return 0;
}

bool xattr_is_overlay_private(const char *name) {
        return strncmp(name, "trusted.overlay.", 16) == 0 || strncmp(name, "user.overlay.", 13) == 0;
}
