/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * CRIU options for a runc container, derived from the configuration runc
 * compiled from the OCI spec (its state.json) exactly as runc's own
 * checkpoint derives them, so that `runc restore` (what containerd's shim
 * runs for a task created from a checkpoint) accepts the images cryo writes:
 *
 *  - bind mounts and device nodes are external mounts, keyed by their path
 *    in the container;
 *  - cgroup v1 controller mounts under /sys/fs/cgroup are bind mounts of
 *    the host's hierarchies: external too;
 *  - masked paths that are files are /dev/null bind mounts, keyed
 *    "/dev/null";
 *  - a network or pid namespace joined by path (a pod's) is external
 *    ("extRootNetNS"), so restore joins the namespace the runtime provides;
 *    a private network namespace is not dumped at all (empty_ns), as runc
 *    restores into a fresh one, set up by the runtime's prestart hooks
 *    (Docker's libnetwork, cryo's own for containerd);
 *  - the freezer cgroup freezes the tree (atomic, unlike stopping each task
 *    with ptrace), and stdio goes to descriptors.json.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plugins/container/container.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/json.h"

void container_criu_config_clear(struct container_criu_config *cfg) {
        for (size_t i = 0; i < cfg->n_ext_mounts; i++) {
                free((char *) cfg->ext_mounts[i].key);
                free((char *) cfg->ext_mounts[i].value);
        }
        free(cfg->ext_mounts);
        cryo_strv_free(cfg->externals);
        free(cfg->freeze_cgroup);
        memset(cfg, 0, sizeof(*cfg));
}

int container_criu_config_add_ext_mount(struct container_criu_config *cfg, const char *mountpoint) {
        for (size_t i = 0; i < cfg->n_ext_mounts; i++)
                if (!strcmp(cfg->ext_mounts[i].key, mountpoint))
                        return 0;
        /* One spare slot keeps the array terminated by {NULL}. */
        struct engine_pair *v = realloc(cfg->ext_mounts, (cfg->n_ext_mounts + 2) * sizeof(*v));
        if (!v)
                return -ENOMEM;
        cfg->ext_mounts = v;
        char *k = strdup(mountpoint), *val = strdup(mountpoint);
        if (!k || !val) {
                free(k);
                free(val);
                return -ENOMEM;
        }
        v[cfg->n_ext_mounts++] = (struct engine_pair){k, val};
        v[cfg->n_ext_mounts] = (struct engine_pair){NULL, NULL};
        return 0;
}

static int add_external(struct container_criu_config *cfg, const char *key) {
        size_t n = 0;
        while (cfg->externals && cfg->externals[n])
                n++;
        char **v = realloc(cfg->externals, (n + 2) * sizeof(char *));
        if (!v)
                return -ENOMEM;
        cfg->externals = v;
        v[n] = strdup(key);
        v[n + 1] = NULL;
        return v[n] ? 0 : -ENOMEM;
}

/* Mount points under /sys/fs/cgroup in the container, from its mountinfo:
 * the controller hierarchies runc bind-mounts for a "cgroup" mount. */
static int add_cgroup_mounts(struct container_criu_config *cfg, pid_t pid) {
        char path[64], line[4096];
        snprintf(path, sizeof(path), "/proc/%d/mountinfo", pid);
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        if (!f)
                return -errno;
        while (fgets(line, sizeof(line), f)) {
                char mnt[PATH_MAX_LEN], *sep = strstr(line, " - ");
                if (!sep || sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1)
                        continue;
                if (strncmp(sep + 3, "cgroup ", 7) && strncmp(sep + 3, "cgroup2 ", 8))
                        continue;
                if (strncmp(mnt, "/sys/fs/cgroup/", 15))
                        continue;
                int r = container_criu_config_add_ext_mount(cfg, mnt);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int add_ext_mount_named(struct container_criu_config *cfg, const char *mountpoint, const char *name) {
        int r = container_criu_config_add_ext_mount(cfg, mountpoint);
        if (r < 0)
                return r;
        for (size_t i = 0; i < cfg->n_ext_mounts; i++)
                if (!strcmp(cfg->ext_mounts[i].key, mountpoint)) {
                        char *v = strdup(name);
                        if (!v)
                                return -ENOMEM;
                        free((char *) cfg->ext_mounts[i].value);
                        cfg->ext_mounts[i].value = v;
                }
        return 0;
}

/* "/var/lib/x/rootfs/data" -> "/data": runc keys mounts by their path
 * inside the container. */
static const char *inside_rootfs(const char *dest, const char *rootfs) {
        size_t n = strlen(rootfs);
        if (n > 1 && !strncmp(dest, rootfs, n) && dest[n] == '/')
                return dest + n;
        return dest;
}

static int add_external_ns(struct container_criu_config *cfg, pid_t pid, const char *kind, const char *key,
                           struct cryo_error **err) {
        char nspath[64], ext[128];
        struct stat st;
        snprintf(nspath, sizeof(nspath), "/proc/%d/ns/%s", pid, kind);
        if (stat(nspath, &st) < 0)
                return cryo_error_errno(err, errno, "cannot stat %s", nspath);
        snprintf(ext, sizeof(ext), "%s[%lu]:%s", kind, (unsigned long) st.st_ino, key);
        if (add_external(cfg, ext) < 0)
                return cryo_error_set(err, ENOMEM, "out of memory");
        return 0;
}

int container_criu_config(const struct container *c, struct container_criu_config *cfg,
                          struct cryo_error **err) {
        json_object *conf = cryo_json_get(c->runc_state, "config");
        if (!conf)
                return cryo_error_set(err, EINVAL, "runc state of container %s has no config", c->id);
        const char *rootfs = cryo_json_str(conf, "rootfs", "");
        bool has_cgroupns = false;
        json_object *nss = cryo_json_get(conf, "namespaces");
        for (size_t i = 0; nss && i < json_object_array_length(nss); i++) {
                json_object *ns = json_object_array_get_idx(nss, i);
                const char *type = cryo_json_str(ns, "type", ""), *path = cryo_json_str(ns, "path", "");
                has_cgroupns = has_cgroupns || !strcmp(type, "NEWCGROUP");
                if (!*path) {
                        if (!strcmp(type, "NEWNET"))
                                cfg->empty_ns |= CLONE_NEWNET;
                        continue;
                }
                int r = 0;
                if (!strcmp(type, "NEWNET"))
                        r = add_external_ns(cfg, c->init_pid, "net", "extRootNetNS", err);
                else if (!strcmp(type, "NEWPID"))
                        r = add_external_ns(cfg, c->init_pid, "pid", "extRootPidNS", err);
                if (r < 0)
                        return r;
        }

        json_object *mounts = cryo_json_get(conf, "mounts");
        for (size_t i = 0; mounts && i < json_object_array_length(mounts); i++) {
                json_object *m = json_object_array_get_idx(mounts, i);
                const char *device = cryo_json_str(m, "device", ""),
                           *dest = cryo_json_str(m, "destination", NULL);
                int r = 0;
                if (!dest)
                        continue;
                if (!strcmp(device, "bind"))
                        r = container_criu_config_add_ext_mount(cfg, inside_rootfs(dest, rootfs));
                else if (!strcmp(device, "cgroup") && !has_cgroupns)
                        r = add_cgroup_mounts(cfg, c->init_pid);
                if (r < 0)
                        return cryo_error_errno(err, -r, "cannot list the mounts of container %s", c->id);
        }

        json_object *masked = cryo_json_get(conf, "mask_paths");
        for (size_t i = 0; masked && i < json_object_array_length(masked); i++) {
                const char *p = json_object_get_string(json_object_array_get_idx(masked, i));
                char path[PATH_MAX_LEN];
                struct stat st;
                if (!p ||
                    snprintf(path, sizeof(path), "/proc/%d/root%s", c->init_pid, p) >= (int) sizeof(path))
                        continue;
                /* Directories are masked with a tmpfs, which CRIU dumps itself. */
                if (stat(path, &st) < 0 || S_ISDIR(st.st_mode))
                        continue;
                if (add_ext_mount_named(cfg, p, "/dev/null") < 0)
                        return cryo_error_set(err, ENOMEM, "out of memory");
        }

        json_object *devices = cryo_json_get(conf, "devices");
        for (size_t i = 0; devices && i < json_object_array_length(devices); i++) {
                const char *p = cryo_json_str(json_object_array_get_idx(devices, i), "path", NULL);
                if (p && container_criu_config_add_ext_mount(cfg, p) < 0)
                        return cryo_error_set(err, ENOMEM, "out of memory");
        }

        const char *freezer = cryo_json_str(cryo_json_get(c->runc_state, "cgroup_paths"), "freezer", NULL);
        if (freezer && !(cfg->freeze_cgroup = strdup(freezer)))
                return cryo_error_set(err, ENOMEM, "out of memory");
        return 0;
}

const char *container_restore_cgroup_mode(const struct cryo_checkpoint *ck, const struct engine_options *o) {
        if (o->cgroup_mode)
                return o->cgroup_mode;
        json_object *container = cryo_json_get(ck->manifest, "container");
        return json_object_get_boolean(cryo_json_get(container, "one_cgroup")) ? "ignore" : NULL;
}
