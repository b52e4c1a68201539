/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * CRIU reads a tree's cgroups (dump) and creates them (restore, unless
 * told to ignore them) through a "yard": one directory per cgroup
 * hierarchy.  Given none, every CRIU run mounts each hierarchy afresh in a
 * private yard, one mount per hierarchy: 16 ms at a dump on this cgroup v1
 * host with ten hierarchies, spent with the container frozen, and a CRIU
 * killed mid-restore leaves that yard mounted.
 *
 * The host has every hierarchy mounted already, usually under
 * /sys/fs/cgroup with the very names CRIU looks for (criu/cgroup.c:
 * "name=systemd" -> "systemd", the cgroup2 hierarchy -> "unified", else the
 * controllers as /proc/PID/cgroup lists them, "cpu,cpuacct").  When each
 * hierarchy of the tree is mounted there at its root, that is the yard: no
 * mount at all.  Otherwise (a cgroup2-only host, whose hierarchy is
 * /sys/fs/cgroup itself, not .../unified) CRIU makes its own, as before.
 */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/engine.h"
#include "util/cleanup.h"
#include "util/fs.h"

#define HOST_CGROUP_YARD "/sys/fs/cgroup"

/* Is each comma-separated name of `want` among the comma-separated
 * `options` of a mount?  ("cpu,cpuacct" in "rw,cpu,cpuacct") */
static bool options_have_all(const char *options, const char *want) {
        for (const char *w = want; *w;) {
                size_t wl = strcspn(w, ",");
                bool found = false;
                for (const char *o = options; *o && !found;) {
                        size_t ol = strcspn(o, ",");
                        found = ol == wl && !strncmp(o, w, wl);
                        o += ol + (o[ol] == ',');
                }
                if (!found)
                        return false;
                w += wl + (w[wl] == ',');
        }
        return true;
}

/* Is `point` the mount point of the root of the hierarchy of `controllers`
 * ("" for cgroup2), by one line of mountinfo (split in place)? */
static bool mounts_hierarchy(char *line, const char *point, const char *controllers) {
        struct fs_mountinfo_line m;
        if (!fs_mountinfo_split(line, &m) || strcmp(m.root, "/") || strcmp(m.mount_point, point))
                return false;
        if (!*controllers)
                return !strcmp(m.fstype, "cgroup2");
        return !strcmp(m.fstype, "cgroup") && options_have_all(m.super_options, controllers);
}

bool engine_cgroup_yard_fits(const char *proc_cgroup, const char *mountinfo, const char *yard) {
        bool any = false;
        for (const char *line = proc_cgroup; *line;) {
                size_t len = strcspn(line, "\n");
                /* hierarchy-id:controllers:path */
                const char *c1 = memchr(line, ':', len);
                const char *c2 = c1 ? memchr(c1 + 1, ':', len - (size_t) (c1 + 1 - line)) : NULL;
                if (len && !c2)
                        return false;
                if (c2) {
                        char controllers[256], point[PATH_MAX];
                        size_t cl = (size_t) (c2 - c1 - 1);
                        if (cl >= sizeof(controllers))
                                return false;
                        memcpy(controllers, c1 + 1, cl);
                        controllers[cl] = '\0';
                        const char *dir = !cl                                 ? "unified"
                                          : !strncmp(controllers, "name=", 5) ? controllers + 5
                                                                              : controllers;
                        if (snprintf(point, sizeof(point), "%s/%s", yard, dir) >= (int) sizeof(point))
                                return false;
                        bool mounted = false;
                        for (const char *m = mountinfo; *m && !mounted;) {
                                size_t ml = strcspn(m, "\n");
                                char one[2 * PATH_MAX + 1200];
                                if (ml < sizeof(one)) {
                                        memcpy(one, m, ml);
                                        one[ml] = '\0';
                                        mounted = mounts_hierarchy(one, point, controllers);
                                }
                                m += ml + (m[ml] == '\n');
                        }
                        if (!mounted)
                                return false;
                        any = true;
                }
                line += len + (line[len] == '\n');
        }
        return any;
}

const char *engine_cgroup_yard(pid_t pid) {
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/cgroup", pid > 0 ? (int) pid : (int) getpid());
        _cleanup_free_ char *cgroups = NULL, *mountinfo = NULL;
        size_t len;
        if (fs_read_file(AT_FDCWD, path, 1 << 16, &cgroups, &len, NULL) < 0 ||
            fs_read_file(AT_FDCWD, "/proc/self/mountinfo", 1 << 22, &mountinfo, &len, NULL) < 0)
                return NULL;
        return engine_cgroup_yard_fits(cgroups, mountinfo, HOST_CGROUP_YARD) ? HOST_CGROUP_YARD : NULL;
}
