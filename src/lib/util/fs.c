/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "fs.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"

int fs_mkdir_p(const char *path, mode_t mode, struct cryo_error **err) {
        /* Most calls find the parent there: one mkdir, not one per level. */
        if (mkdir(path, mode) == 0)
                return 0;
        int first = errno;
        if (first == EEXIST)
                return fs_is_dir(path)
                               ? 0
                               : cryo_error_set(err, ENOTDIR, "%s exists and is not a directory", path);
        if (first != ENOENT)
                return cryo_error_errno(err, first, "cannot create directory %s", path);
        _cleanup_free_ char *copy = strdup(path);
        if (!copy)
                return cryo_error_set(err, ENOMEM, "out of memory");

        for (char *p = copy + 1; *p; p++) {
                if (*p != '/')
                        continue;
                *p = '\0';
                if (mkdir(copy, mode) < 0 && errno != EEXIST)
                        return cryo_error_errno(err, errno, "cannot create directory %s", copy);
                *p = '/';
        }
        if (mkdir(copy, mode) < 0 && errno != EEXIST)
                return cryo_error_errno(err, errno, "cannot create directory %s", copy);
        if (!fs_is_dir(copy))
                return cryo_error_set(err, ENOTDIR, "%s exists and is not a directory", copy);
        return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) st;
        (void) ftw;
        if (flag == FTW_DP)
                return rmdir(path) < 0 && errno != ENOENT ? -1 : 0;
        return unlink(path) < 0 && errno != ENOENT ? -1 : 0;
}

int fs_rm_rf(const char *path) {
        struct stat st;
        if (lstat(path, &st) < 0)
                return errno == ENOENT ? 0 : -errno;
        if (nftw(path, rm_entry, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) < 0)
                return -errno;
        return 0;
}

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
void fs_unescape_mountinfo(char *s) {
        char *out = s;
        for (char *in = s; *in;) {
                if (in[0] == '\\' && in[1] >= '0' && in[1] <= '3' && in[2] >= '0' && in[2] <= '7' &&
                    in[3] >= '0' && in[3] <= '7') {
                        *out++ = (char) ((in[1] - '0') * 64 + (in[2] - '0') * 8 + (in[3] - '0'));
                        in += 4;
                } else
                        *out++ = *in++;
        }
        *out = '\0';
}

bool fs_mountinfo_split(char *line, struct fs_mountinfo_line *m) {
        char *save = NULL, *f[6];
        for (int i = 0; i < 6; i++)
                if (!(f[i] = strtok_r(i ? NULL : line, " \n", &save)))
                        return false;
        /* Optional fields (shared:N, master:N, ...) up to "-". */
        char *t = strtok_r(NULL, " \n", &save);
        m->propagates = t && strcmp(t, "-") != 0;
        while (t && strcmp(t, "-") != 0)
                t = strtok_r(NULL, " \n", &save);
        char *fstype = t ? strtok_r(NULL, " \n", &save) : NULL;
        char *source = fstype ? strtok_r(NULL, " \n", &save) : NULL;
        char *super = source ? strtok_r(NULL, " \n", &save) : NULL;
        if (!super)
                return false;
        fs_unescape_mountinfo(f[3]);
        fs_unescape_mountinfo(f[4]);
        fs_unescape_mountinfo(fstype);
        fs_unescape_mountinfo(source);
        *m = (struct fs_mountinfo_line){
                .devid = f[2],
                .root = f[3],
                .mount_point = f[4],
                .mount_options = f[5],
                .fstype = fstype,
                .source = source,
                .super_options = super,
                .propagates = m->propagates,
        };
        return true;
}

int fs_umount_if(bool (*match)(const char *point, void *arg), void *arg) {
        _cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");
        if (!f)
                return -errno;
        size_t n = 0, cap = 0;
        _cleanup_strv_ char **found = NULL;
        _cleanup_free_ char *line = NULL;
        size_t line_cap = 0;
        while (getline(&line, &line_cap, f) > 0) {
                struct fs_mountinfo_line m;
                if (!fs_mountinfo_split(line, &m) || !match(m.mount_point, arg))
                        continue;
                if (n + 1 >= cap) {
                        size_t more = cap ? 2 * cap : 16;
                        char **bigger = realloc(found, more * sizeof(*found));
                        if (!bigger)
                                return -ENOMEM;
                        found = bigger;
                        cap = more;
                }
                if (!(found[n] = strdup(m.mount_point)))
                        return -ENOMEM;
                found[++n] = NULL;
        }
        int done = 0;
        while (n > 0)
                if (umount2(found[--n], MNT_DETACH) == 0)
                        done++;
        return done;
}

static bool at_or_below(const char *point, void *arg) {
        const char *path = arg;
        size_t len = strlen(path);
        return !strncmp(point, path, len) && (point[len] == '/' || point[len] == '\0');
}

int fs_rm_work_dir(const char *path) {
        (void) fs_umount_if(at_or_below, (void *) path);
        return fs_rm_rf(path);
}

int fs_hold(int dirfd) {
        return flock(dirfd, LOCK_EX | LOCK_NB) < 0 ? -errno : 0;
}

bool fs_mkdtemp_name(const char *name, const char *stem, bool whole) {
        size_t n = strlen(name), s = strlen(stem);
        if (n < s + 6 || (whole && n != s + 6) || strncmp(name + n - 6 - s, stem, s))
                return false;
        for (const char *p = name + n - 6; *p; p++)
                if (!isalnum((unsigned char) *p))
                        return false;
        return true;
}

int fs_sweep_unheld(const char *root, bool (*match)(const char *name), unsigned min_age_sec) {
        _cleanup_closedir_ DIR *d = opendir(root);
        if (!d)
                return errno == ENOENT ? 0 : -errno;
        time_t now = time(NULL);
        int removed = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (!match(de->d_name))
                        continue;
                _cleanup_close_ int fd =
                        openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                /* And made by mkdtemp() for us: ours, private. */
                struct stat st;
                if (fd < 0 || fstat(fd, &st) < 0 || st.st_uid != geteuid() || (st.st_mode & 07777) != 0700 ||
                    now - st.st_mtime < (time_t) min_age_sec || flock(fd, LOCK_EX | LOCK_NB) < 0)
                        continue;
                _cleanup_free_ char *path = fs_path_join(root, de->d_name);
                if (path && fs_rm_work_dir(path) >= 0)
                        removed++;
        }
        return removed;
}

int fs_pwrite_all(int fd, const void *buf, size_t len, off_t off) {
        const char *p = buf;
        while (len > 0) {
                ssize_t n = off < 0 ? write(fd, p, len) : pwrite(fd, p, len, off);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += n;
                len -= (size_t) n;
                if (off >= 0)
                        off += n;
        }
        return 0;
}

int fs_write_all(int fd, const void *buf, size_t len) {
        return fs_pwrite_all(fd, buf, len, -1);
}

static int write_file(int dirfd, const char *name, const void *buf, size_t len, mode_t mode, bool sync,
                      struct cryo_error **err) {
        _cleanup_close_ int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        if (fd < 0)
                return cryo_error_errno(err, errno, "cannot create %s", name);
        int r = fs_write_all(fd, buf, len);
        if (r < 0)
                return cryo_error_errno(err, -r, "cannot write %s", name);
        if (sync && fsync(fd) < 0)
                return cryo_error_errno(err, errno, "cannot sync %s", name);
        return 0;
}

int fs_write_file(int dirfd, const char *name, const void *buf, size_t len, mode_t mode,
                  struct cryo_error **err) {
        return write_file(dirfd, name, buf, len, mode, true, err);
}

int fs_write_file_unsynced(int dirfd, const char *name, const void *buf, size_t len, mode_t mode,
                           struct cryo_error **err) {
        return write_file(dirfd, name, buf, len, mode, false, err);
}

int fs_read_fd(int fd, size_t max, char **out, size_t *out_len, struct cryo_error **err) {
        size_t cap = 4096, len = 0;
        _cleanup_free_ char *buf = malloc(cap);
        if (!buf)
                return cryo_error_set(err, ENOMEM, "out of memory");
        for (;;) {
                if (len + 1 >= cap) {
                        if (cap > max)
                                return cryo_error_set(err, EFBIG, "more than %zu bytes", max);
                        char *bigger = realloc(buf, cap * 2);
                        if (!bigger)
                                return cryo_error_set(err, ENOMEM, "out of memory");
                        buf = bigger;
                        cap *= 2;
                }
                ssize_t n = read(fd, buf + len, cap - len - 1);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return cryo_error_errno(err, errno, "read");
                }
                if (n == 0)
                        break;
                len += (size_t) n;
        }
        if (len > max)
                return cryo_error_set(err, EFBIG, "more than %zu bytes", max);
        buf[len] = '\0';
        if (out_len)
                *out_len = len;
        *out = steal_pointer(&buf);
        return 0;
}

int fs_read_file(int dirfd, const char *name, size_t max, char **out, size_t *out_len,
                 struct cryo_error **err) {
        _cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return cryo_error_errno(err, errno, "cannot open %s", name);
        int r = fs_read_fd(fd, max, out, out_len, err);
        if (r < 0)
                return cryo_error_prefix(err, "%s", name);
        return 0;
}

static int sync_tree_at(int dirfd, int depth, struct cryo_error **err) {
        if (depth > 64)
                return cryo_error_set(err, ELOOP, "directory tree too deep");

        _cleanup_closedir_ DIR *d = fs_opendir_at(dirfd);
        if (!d)
                return cryo_error_errno(err, errno, "cannot read directory");
        struct dirent *de;
        while ((de = readdir(d))) {
                if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                        continue;
                if (de->d_type != DT_DIR && de->d_type != DT_REG)
                        continue;
                _cleanup_close_ int fd = openat(dirfd, de->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
                if (fd < 0)
                        return cryo_error_errno(err, errno, "cannot open %s", de->d_name);
                if (de->d_type == DT_DIR) {
                        int r = sync_tree_at(fd, depth + 1, err);
                        if (r < 0)
                                return r;
                } else if (fsync(fd) < 0) {
                        return cryo_error_errno(err, errno, "cannot sync %s", de->d_name);
                }
        }
        if (fsync(dirfd) < 0)
                return cryo_error_errno(err, errno, "cannot sync directory");
        return 0;
}

int fs_sync_tree(int dirfd, struct cryo_error **err) {
        return sync_tree_at(dirfd, 0, err);
}

void fs_sync_parent(const char *path) {
        _cleanup_free_ char *parent = strdup(path);
        if (!parent)
                return;
        char *slash = strrchr(parent, '/');
        if (slash)
                *(slash == parent ? slash + 1 : slash) = '\0';
        _cleanup_close_ int fd = open(slash ? parent : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd >= 0)
                (void) fsync(fd);
}

static int tree_size_at(int dirfd, int depth, uint64_t *bytes) {
        if (depth > 64)
                return -ELOOP;
        _cleanup_closedir_ DIR *d = fs_opendir_at(dirfd);
        if (!d)
                return -errno;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                        continue;
                struct stat st;
                if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        return -errno;
                if (S_ISREG(st.st_mode)) {
                        *bytes += (uint64_t) st.st_size;
                } else if (S_ISDIR(st.st_mode)) {
                        _cleanup_close_ int fd =
                                openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
                        if (fd < 0)
                                return -errno;
                        int r = tree_size_at(fd, depth + 1, bytes);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

int fs_tree_size(int dirfd, uint64_t *bytes) {
        *bytes = 0;
        return tree_size_at(dirfd, 0, bytes);
}

DIR *fs_opendir_at(int dirfd) {
        int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return NULL;
        DIR *d = fdopendir(fd);
        if (!d) {
                int saved = errno;
                close(fd);
                errno = saved;
        }
        return d;
}

bool fs_is_dir(const char *path) {
        struct stat st;
        return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

char *fs_sibling_program(const char *name) {
        char self[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        if (n <= 0)
                return NULL;
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (!slash)
                return errno = ENOENT, NULL;
        *slash = '\0';
        char *path = fs_path_join(self, name);
        if (path && access(path, X_OK) < 0) {
                int e = errno;
                free(path);
                return errno = e, NULL;
        }
        return path;
}

char *fs_path_join(const char *a, const char *b) {
        char *out = NULL;
        size_t la = strlen(a);
        while (la > 0 && a[la - 1] == '/')
                la--;
        while (*b == '/')
                b++;
        if (asprintf(&out, "%.*s/%s", (int) la, a, b) < 0)
                return NULL;
        return out;
}
