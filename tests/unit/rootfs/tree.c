/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "tree.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

void tu_require_root(void) {
        if (geteuid() != 0) {
                fprintf(stderr, "SKIP: these tests need root (overlay mounts, owners, device nodes)\n");
                exit(77);
        }
}

char *tu_mkdtemp(const char *tag) {
        const char *tmp = getenv("TMPDIR");
        char *p = NULL;
        if (asprintf(&p, "%s/cryo-%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", tag) < 0)
                abort();
        if (!mkdtemp(p))
                abort();
        return p;
}

char *tu_path(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        char *p = NULL;
        if (vasprintf(&p, fmt, ap) < 0)
                abort();
        va_end(ap);
        return p;
}

int tu_write(const char *path, const void *data, size_t len, mode_t mode) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        if (fd < 0)
                return -errno;
        const char *p = data;
        while (len > 0) {
                ssize_t n = write(fd, p, len);
                if (n < 0) {
                        int e = errno;
                        close(fd);
                        return -e;
                }
                p += n;
                len -= (size_t) n;
        }
        return close(fd) < 0 ? -errno : 0;
}

int tu_mkdirs(const char *path, mode_t mode) {
        char *copy = strdup(path);
        for (char *p = copy + 1; *p; p++) {
                if (*p != '/')
                        continue;
                *p = '\0';
                mkdir(copy, mode);
                *p = '/';
        }
        int r = mkdir(copy, mode) < 0 && errno != EEXIST ? -errno : 0;
        free(copy);
        return r;
}

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) st;
        (void) ftw;
        if (flag == FTW_DP)
                rmdir(path);
        else
                unlink(path);
        return 0;
}

void tu_rm_rf(const char *path) {
        nftw(path, rm_cb, 64, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

void tu_scratch_remove(const char *path) {
        if (getenv("CRYO_TEST_KEEP"))
                return; /* debugging: keep scratch trees */
        tu_rm_rf(path);
}

int tu_mount_overlay(const char *lower, const char *upper, const char *work, const char *merged,
                     const char *extra) {
        char *opts = tu_path("lowerdir=%s,upperdir=%s,workdir=%s%s", lower, upper, work, extra ? extra : "");
        int r = mount("overlay", merged, "overlay", 0, opts) < 0 ? -errno : 0;
        free(opts);
        return r;
}

/* ---- comparison --------------------------------------------------------- */

struct cmp {
        const char *const *ignore;
        char *why;
        /* hard links: (ino in a) -> (ino in b) pairs */
        struct {
                ino_t a, b;
        } * links;
        size_t n_links, cap_links;
};

static bool differ(struct cmp *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool differ(struct cmp *c, const char *fmt, ...) {
        if (c->why)
                return false;
        va_list ap;
        va_start(ap, fmt);
        if (vasprintf(&c->why, fmt, ap) < 0)
                c->why = NULL;
        va_end(ap);
        return false;
}

static int cmpstr(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

static char **list_dir(const char *path, size_t *n) {
        DIR *d = opendir(path);
        if (!d)
                return NULL;
        char **v = NULL;
        size_t cap = 0;
        *n = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                        continue;
                if (*n + 1 >= cap) {
                        cap = cap ? cap * 2 : 16;
                        v = realloc(v, cap * sizeof(*v));
                }
                v[(*n)++] = strdup(de->d_name);
        }
        closedir(d);
        if (!v)
                v = calloc(1, sizeof(*v));
        v[*n] = NULL;
        qsort(v, *n, sizeof(*v), cmpstr);
        return v;
}

static void free_list(char **v) {
        for (char **p = v; p && *p; p++)
                free(*p);
        free(v);
}

static bool ignored(struct cmp *c, const char *rel) {
        for (const char *const *p = c->ignore; p && *p; p++)
                if (!strcmp(*p, rel))
                        return true;
        return false;
}

static char *xattr_blob(const char *path, size_t *len) {
        /* "name=value\n" lines sorted, overlay-private names skipped */
        char names[65536];
        ssize_t n = llistxattr(path, names, sizeof(names));
        if (n < 0)
                n = 0;
        char *list[1024];
        size_t cnt = 0;
        for (char *p = names; p < names + n && cnt < 1024; p += strlen(p) + 1)
                if (strncmp(p, "trusted.overlay.", 16) && strncmp(p, "user.overlay.", 13))
                        list[cnt++] = p;
        qsort(list, cnt, sizeof(char *), cmpstr);
        char *out = NULL;
        size_t olen = 0;
        FILE *f = open_memstream(&out, &olen);
        for (size_t i = 0; i < cnt; i++) {
                char val[65536];
                ssize_t vl = lgetxattr(path, list[i], val, sizeof(val));
                fprintf(f, "%s=", list[i]);
                if (vl > 0)
                        fwrite(val, 1, (size_t) vl, f);
                fputc('\n', f);
        }
        fclose(f);
        *len = olen;
        return out;
}

static bool same_content(const char *a, const char *b) {
        int fa = open(a, O_RDONLY), fb = open(b, O_RDONLY);
        bool same = fa >= 0 && fb >= 0;
        static char ba[1 << 16], bb[1 << 16];
        while (same) {
                ssize_t na = read(fa, ba, sizeof(ba));
                ssize_t nb = read(fb, bb, sizeof(bb));
                if (na != nb || na < 0 || memcmp(ba, bb, (size_t) na) != 0)
                        same = false;
                else if (na == 0)
                        break;
        }
        if (fa >= 0)
                close(fa);
        if (fb >= 0)
                close(fb);
        return same;
}

static bool link_pair_ok(struct cmp *c, ino_t a, ino_t b) {
        for (size_t i = 0; i < c->n_links; i++) {
                if (c->links[i].a == a || c->links[i].b == b)
                        return c->links[i].a == a && c->links[i].b == b;
        }
        if (c->n_links == c->cap_links) {
                c->cap_links = c->cap_links ? c->cap_links * 2 : 16;
                c->links = realloc(c->links, c->cap_links * sizeof(*c->links));
        }
        c->links[c->n_links].a = a;
        c->links[c->n_links].b = b;
        c->n_links++;
        return true;
}

static bool cmp_entry(struct cmp *c, const char *a, const char *b, const char *rel);

static bool cmp_dir(struct cmp *c, const char *a, const char *b, const char *rel) {
        size_t na, nb;
        char **la = list_dir(a, &na), **lb = list_dir(b, &nb);
        bool ok = la && lb;
        if (!ok)
                differ(c, "%s: cannot list", rel);
        size_t i = 0, j = 0;
        while (ok && (i < na || j < nb)) {
                int d = i >= na ? 1 : j >= nb ? -1 : strcmp(la[i], lb[j]);
                const char *name = d <= 0 ? la[i] : lb[j];
                char *r = rel[0] ? tu_path("%s/%s", rel, name) : strdup(name);
                if (ignored(c, r)) {
                        if (d <= 0)
                                i++;
                        if (d >= 0)
                                j++;
                        free(r);
                        continue;
                }
                if (d != 0) {
                        ok = differ(c, "%s: only in %s", r, d < 0 ? "the first tree" : "the second tree");
                } else {
                        char *pa = tu_path("%s/%s", a, name), *pb = tu_path("%s/%s", b, name);
                        ok = cmp_entry(c, pa, pb, r);
                        free(pa);
                        free(pb);
                        i++;
                        j++;
                }
                free(r);
        }
        free_list(la);
        free_list(lb);
        return ok;
}

static bool cmp_entry(struct cmp *c, const char *a, const char *b, const char *rel) {
        struct stat sa, sb;
        if (lstat(a, &sa) < 0 || lstat(b, &sb) < 0)
                return differ(c, "%s: cannot stat", rel);
        if ((sa.st_mode & S_IFMT) != (sb.st_mode & S_IFMT))
                return differ(c, "%s: type %o != %o", rel, sa.st_mode & S_IFMT, sb.st_mode & S_IFMT);
        if (sa.st_mode != sb.st_mode)
                return differ(c, "%s: mode %o != %o", rel, sa.st_mode, sb.st_mode);
        if (sa.st_uid != sb.st_uid || sa.st_gid != sb.st_gid)
                return differ(c, "%s: owner %u:%u != %u:%u", rel, sa.st_uid, sa.st_gid, sb.st_uid,
                              sb.st_gid);
        size_t xla, xlb;
        char *xa = xattr_blob(a, &xla), *xb = xattr_blob(b, &xlb);
        bool xsame = xla == xlb && memcmp(xa, xb, xla) == 0;
        if (!xsame)
                differ(c, "%s: xattrs differ:\n%s---\n%s", rel, xa, xb);
        free(xa);
        free(xb);
        if (!xsame)
                return false;
        if (S_ISLNK(sa.st_mode)) {
                char ta[4096] = {0}, tb[4096] = {0};
                if (readlink(a, ta, sizeof(ta) - 1) < 0 || readlink(b, tb, sizeof(tb) - 1) < 0 ||
                    strcmp(ta, tb))
                        return differ(c, "%s: link target '%s' != '%s'", rel, ta, tb);
                return true;
        }
        if ((S_ISCHR(sa.st_mode) || S_ISBLK(sa.st_mode)) && sa.st_rdev != sb.st_rdev)
                return differ(c, "%s: device numbers differ", rel);
        if (!S_ISDIR(sa.st_mode) && sa.st_nlink != sb.st_nlink)
                return differ(c, "%s: link count %lu != %lu", rel, (unsigned long) sa.st_nlink,
                              (unsigned long) sb.st_nlink);
        if (!S_ISDIR(sa.st_mode) && sa.st_nlink > 1 && !link_pair_ok(c, sa.st_ino, sb.st_ino))
                return differ(c, "%s: hard-link grouping differs", rel);
        if (S_ISREG(sa.st_mode)) {
                if (sa.st_size != sb.st_size)
                        return differ(c, "%s: size %lld != %lld", rel, (long long) sa.st_size,
                                      (long long) sb.st_size);
                if (!same_content(a, b))
                        return differ(c, "%s: content differs", rel);
        }
        if (S_ISDIR(sa.st_mode) && !cmp_dir(c, a, b, rel))
                return false;
        /* after the children: comparing can not change mtimes, but report
         * the deepest difference first */
        if (sa.st_mtim.tv_sec != sb.st_mtim.tv_sec || sa.st_mtim.tv_nsec != sb.st_mtim.tv_nsec)
                return differ(c, "%s: mtime %lld.%09ld != %lld.%09ld", rel, (long long) sa.st_mtim.tv_sec,
                              sa.st_mtim.tv_nsec, (long long) sb.st_mtim.tv_sec, sb.st_mtim.tv_nsec);
        return true;
}

bool tu_trees_equal(const char *a, const char *b, const char *const *ignore, char **why) {
        struct cmp c = {.ignore = ignore};
        bool ok = cmp_dir(&c, a, b, "");
        free(c.links);
        if (!ok && why)
                *why = c.why ? c.why : strdup("?");
        else
                free(c.why);
        return ok;
}
