/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Finding the overlay upperdir of a container from mountinfo.
 *
 * A mountinfo line (proc(5)):
 *   36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
 *   (1)(2)(3)   (4)   (5)      (6)      (7)   (8) (9)   (10)         (11)
 * Fields 4, 5, 10 and 11 are escaped by the kernel: space, tab, newline and
 * backslash become \ooo octal.  Overlay super options come from
 * seq_show_option(), which also escapes ',' and '=' the same way, so the
 * options are split on ',' before unescaping.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rootfs/rootfs.h"
#include "util/cleanup.h"
#include "util/fs.h"

/* The unescaped value of `key=` in a raw super-options string, or NULL. */
static int super_option(const char *super, const char *key, char **value) {
        size_t klen = strlen(key);
        *value = NULL;
        const char *p = super;
        while (*p) {
                const char *end = strchrnul(p, ',');
                if ((size_t) (end - p) > klen && strncmp(p, key, klen) == 0 && p[klen] == '=') {
                        free(*value); /* the last occurrence wins */
                        *value = strndup(p + klen + 1, (size_t) (end - p) - klen - 1);
                        if (!*value)
                                return -ENOMEM;
                        fs_unescape_mountinfo(*value);
                }
                p = *end ? end + 1 : end;
        }
        return 0;
}

int rootfs_mountinfo_upperdir(FILE *mountinfo, const char *mountpoint, char **upperdir, char **devid,
                              struct cryo_error **err) {
        _cleanup_free_ char *line = NULL, *best_fstype = NULL, *best_super = NULL, *best_devid = NULL;
        size_t cap = 0;
        bool found = false;
        while (getline(&line, &cap, mountinfo) > 0) {
                struct fs_mountinfo_line m;
                if (!fs_mountinfo_split(line, &m) || strcmp(m.mount_point, mountpoint) != 0)
                        continue;
                /* later lines are mounted on top of earlier ones */
                free(best_fstype);
                free(best_super);
                free(best_devid);
                best_fstype = strdup(m.fstype);
                best_super = strdup(m.super_options);
                best_devid = strdup(m.devid);
                if (!best_fstype || !best_super || !best_devid)
                        return cryo_error_set(err, ENOMEM, "out of memory");
                found = true;
        }
        if (ferror(mountinfo))
                return cryo_error_errno(err, EIO, "cannot read mountinfo");
        if (!found)
                return cryo_error_set(err, ENOENT, "nothing is mounted at %s", mountpoint);
        if (strcmp(best_fstype, "overlay") != 0)
                return cryo_error_set(err, EINVAL, "the mount at %s is %s, not an overlay", mountpoint,
                                      best_fstype);
        _cleanup_free_ char *upper = NULL;
        if (super_option(best_super, "upperdir", &upper) < 0)
                return cryo_error_set(err, ENOMEM, "out of memory");
        if (!upper || !upper[0])
                return cryo_error_set(err, ENODATA, "the overlay at %s has no upperdir (read-only)",
                                      mountpoint);
        *upperdir = steal_pointer(&upper);
        if (devid)
                *devid = steal_pointer(&best_devid);
        return 0;
}

static bool is_dir(const char *path) {
        struct stat st;
        return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* A relative upperdir was given relative to the directory the mounter was
 * in, in practice an ancestor of the mount point (Docker:
 * /var/lib/docker/overlay2 for <id>/merged; containers/storage likewise). */
static int resolve_relative(const char *mountpoint, char **upperdir, struct cryo_error **err) {
        _cleanup_free_ char *base = strdup(mountpoint);
        if (!base)
                return cryo_error_set(err, ENOMEM, "out of memory");
        for (;;) {
                char *slash = strrchr(base, '/');
                if (!slash)
                        break;
                *slash = '\0';
                _cleanup_free_ char *cand = NULL;
                if (asprintf(&cand, "%s/%s", base[0] ? base : "", *upperdir) < 0)
                        return cryo_error_set(err, ENOMEM, "out of memory");
                if (is_dir(cand)) {
                        free(*upperdir);
                        *upperdir = steal_pointer(&cand);
                        return 0;
                }
                if (!base[0])
                        break;
        }
        return cryo_error_set(err, ENOENT, "cannot resolve the relative upperdir '%s' of the overlay at %s",
                              *upperdir, mountpoint);
}

static int host_mountpoint_of(const char *devid, char **out, struct cryo_error **err) {
        _cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");
        if (!f)
                return cryo_error_errno(err, errno, "cannot open /proc/self/mountinfo");
        _cleanup_free_ char *line = NULL;
        size_t cap = 0;
        while (getline(&line, &cap, f) > 0) {
                struct fs_mountinfo_line m;
                if (!fs_mountinfo_split(line, &m) || strcmp(m.devid, devid) != 0 ||
                    strcmp(m.fstype, "overlay") != 0)
                        continue;
                *out = strdup(m.mount_point);
                return *out ? 0 : cryo_error_set(err, ENOMEM, "out of memory");
        }
        return cryo_error_set(err, ENOENT, "no host mount of the overlay %s found", devid);
}

int rootfs_find_upperdir(pid_t pid, char **upperdir, struct cryo_error **err) {
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/mountinfo", (int) pid);
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        if (!f)
                return cryo_error_errno(err, errno, "cannot open %s", path);
        _cleanup_free_ char *upper = NULL, *devid = NULL;
        int r = rootfs_mountinfo_upperdir(f, "/", &upper, &devid, err);
        if (r < 0)
                return cryo_error_prefix(err, "cannot find the root overlay of process %d", (int) pid);
        if (upper[0] != '/') {
                _cleanup_free_ char *mp = NULL;
                r = host_mountpoint_of(devid, &mp, err);
                if (r >= 0)
                        r = resolve_relative(mp, &upper, err);
                if (r < 0)
                        return cryo_error_prefix(err, "process %d", (int) pid);
        }
        *upperdir = steal_pointer(&upper);
        return 0;
}

int rootfs_find_upperdir_at(const char *mountpoint, char **upperdir, struct cryo_error **err) {
        char real[PATH_MAX];
        const char *mp = realpath(mountpoint, real) ? real : mountpoint;
        _cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");
        if (!f)
                return cryo_error_errno(err, errno, "cannot open /proc/self/mountinfo");
        _cleanup_free_ char *upper = NULL;
        int r = rootfs_mountinfo_upperdir(f, mp, &upper, NULL, err);
        if (r >= 0 && upper[0] != '/')
                r = resolve_relative(mp, &upper, err);
        if (r < 0)
                return r;
        *upperdir = steal_pointer(&upper);
        return 0;
}
