/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "plugins/container/container.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/json.h"

void container_free(struct container *c) {
        if (!c)
                return;
        free(c->id);
        free(c->ns);
        json_object_put(c->spec);
        json_object_put(c->runc_state);
        free(c->bundle);
        free(c->rootfs);
        free(c->runtime_root);
        free(c);
}

static void copy_key(json_object *to, json_object *from, const char *key) {
        json_object *v = cryo_json_get(from, key);
        if (v)
                json_object_object_add(to, key, json_object_get(v));
}

/* The cgroup v1 path of `controller` for pid ("/docker/<id>"), or cgroup2's. */
static char *cgroup_of(pid_t pid, const char *controller) {
        char path[64], line[1024];
        snprintf(path, sizeof(path), "/proc/%d/cgroup", pid);
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        while (f && fgets(line, sizeof(line), f)) {
                char *ctrls = strchr(line, ':');
                char *cg = ctrls ? strchr(ctrls + 1, ':') : NULL;
                if (!cg)
                        continue;
                *cg++ = '\0';
                cg[strcspn(cg, "\n")] = '\0';
                ctrls++;
                for (char *save = NULL, *t = strtok_r(ctrls, ",", &save); t; t = strtok_r(NULL, ",", &save))
                        if (!strcmp(t, controller))
                                return strdup(cg);
        }
        return NULL;
}

static void add_live_value(json_object *o, const char *key, pid_t pid, const char *controller,
                           const char *file) {
        _cleanup_free_ char *cg = cgroup_of(pid, controller), *path = NULL, *text = NULL;
        if (!cg || asprintf(&path, "/sys/fs/cgroup/%s%s/%s", controller, cg, file) < 0)
                return;
        if (fs_read_file(AT_FDCWD, path, 4096, &text, NULL, NULL) < 0)
                return;
        text[strcspn(text, "\n")] = '\0';
        json_object_object_add(o, key, json_object_new_string(text));
}

json_object *container_limits(json_object *spec, pid_t pid) {
        json_object *o = json_object_new_object();
        json_object *res = cryo_json_path(spec, "linux/resources");
        if (res) {
                copy_key(o, res, "memory");
                copy_key(o, res, "cpu");
                copy_key(o, res, "pids");
                copy_key(o, res, "blockIO");
                copy_key(o, res, "hugepageLimits");
        }
        json_object *rlimits = cryo_json_path(spec, "process/rlimits");
        if (rlimits)
                json_object_object_add(o, "rlimits", json_object_get(rlimits));
        /* What the kernel enforces now, which may differ from the spec
         * after a live update (docker update, ctr tasks update). */
        json_object *live = json_object_new_object();
        add_live_value(live, "memory.limit_in_bytes", pid, "memory", "memory.limit_in_bytes");
        add_live_value(live, "cpu.shares", pid, "cpu", "cpu.shares");
        add_live_value(live, "cpu.cfs_quota_us", pid, "cpu", "cpu.cfs_quota_us");
        add_live_value(live, "cpu.cfs_period_us", pid, "cpu", "cpu.cfs_period_us");
        add_live_value(live, "pids.max", pid, "pids", "pids.max");
        add_live_value(live, "blkio.weight", pid, "blkio", "blkio.weight");
        json_object_object_add(o, "live", live);
        return o;
}

static void add_status_fields(json_object *o, pid_t pid) {
        static const char *const keys[] = {"CapInh", "CapPrm",     "CapEff",  "CapBnd",
                                           "CapAmb", "NoNewPrivs", "Seccomp", "Seccomp_filters"};
        char path[64], line[512];
        snprintf(path, sizeof(path), "/proc/%d/status", pid);
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        while (f && fgets(line, sizeof(line), f)) {
                char *colon = strchr(line, ':');
                if (!colon)
                        continue;
                *colon = '\0';
                for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
                        if (strcmp(line, keys[i]))
                                continue;
                        char *v = colon + 1;
                        v += strspn(v, " \t");
                        v[strcspn(v, "\n")] = '\0';
                        json_object_object_add(o, keys[i], json_object_new_string(v));
                }
        }
}

json_object *container_security(json_object *spec, pid_t pid) {
        json_object *o = json_object_new_object();
        json_object *proc = cryo_json_get(spec, "process");
        copy_key(o, proc, "capabilities");
        copy_key(o, proc, "noNewPrivileges");
        copy_key(o, proc, "apparmorProfile");
        copy_key(o, proc, "selinuxLabel");
        copy_key(o, proc, "user");
        json_object *linux_ = cryo_json_get(spec, "linux");
        json_object *seccomp = cryo_json_get(linux_, "seccomp");
        if (seccomp) {
                json_object *s = json_object_new_object();
                copy_key(s, seccomp, "defaultAction");
                copy_key(s, seccomp, "architectures");
                json_object *sys = cryo_json_get(seccomp, "syscalls");
                json_object_object_add(s, "rules",
                                       json_object_new_int(sys ? (int) json_object_array_length(sys) : 0));
                json_object_object_add(o, "seccomp", s);
        }
        copy_key(o, linux_, "uidMappings");
        copy_key(o, linux_, "gidMappings");
        copy_key(o, linux_, "maskedPaths");
        copy_key(o, linux_, "readonlyPaths");
        copy_key(o, linux_, "mountLabel");
        json_object *live = json_object_new_object();
        add_status_fields(live, pid);
        json_object_object_add(o, "live", live);
        return o;
}

int container_save_metadata(const struct container *c, struct cryo_checkpoint *ck, struct cryo_error **err) {
        int r = cryo_json_write_file_unsynced(ck->dirfd, CRYO_SPEC_DUMP, c->spec, 0600, err);
        if (r < 0)
                return r;
        json_object *net = NULL;
        r = container_read_network(c->init_pid, &net, err);
        if (r < 0)
                return r;
        r = cryo_json_write_file_unsynced(ck->dirfd, CRYO_NETWORK_STATUS, net, 0600, err);
        json_object *section = json_object_new_object();
        cryo_json_add_str(section, "id", c->id);
        cryo_json_add_str(section, "namespace", c->ns);
        json_object_object_add(section, "init_pid", json_object_new_int(c->init_pid));
        cryo_json_add_str(section, "rootfs", c->rootfs);
        cryo_json_add_str(section, "runtime_root", c->runtime_root);
        json_object_object_add(section, "network", net);
        json_object_object_add(section, "limits", container_limits(c->spec, c->init_pid));
        json_object_object_add(section, "security", container_security(c->spec, c->init_pid));
        copy_key(section, c->spec, "hostname");
        json_object_object_add(ck->manifest, "container", section);
        return r;
}
