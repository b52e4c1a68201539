/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cryo.h"
#include "rpc/containerd.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/json.h"

static bool path_exists(const char *p) {
        return access(p, F_OK) == 0;
}

static bool filesystem_known(const char *fs) {
        _cleanup_free_ char *text = NULL;
        if (fs_read_file(AT_FDCWD, "/proc/filesystems", 1 << 16, &text, NULL, NULL) < 0)
                return false;
        char needle[64];
        snprintf(needle, sizeof(needle), "\t%s\n", fs);
        return strstr(text, needle) != NULL;
}

static bool socket_answers(const char *path) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        if (strlen(path) >= sizeof(sa.sun_path))
                return false;
        strcpy(sa.sun_path, path);
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        return fd >= 0 && connect(fd, (struct sockaddr *) &sa, sizeof(sa)) == 0;
}

/* Not just a socket that accepts: a daemon that answers the API. */
static void add_containerd_version(json_object *o, const char *socket) {
        _cleanup_(ctrd_closep) struct ctrd_client *c = NULL;
        _cleanup_free_ char *version = NULL, *revision = NULL;
        if (ctrd_open(socket, "default", &c, NULL) < 0 || ctrd_version(c, &version, &revision, NULL) < 0) {
                json_object_object_add(o, "answers", json_object_new_boolean(false));
                return;
        }
        json_object_object_add(o, "version", json_object_new_string(version));
}

static const char *cgroup_layout(void) {
        if (path_exists("/sys/fs/cgroup/cgroup.controllers"))
                return "v2";
        if (path_exists("/sys/fs/cgroup/unified/cgroup.controllers"))
                return "hybrid";
        return "v1";
}

int cryo_host_check(json_object **out, struct cryo_error **err) {
        _cleanup_json_ json_object *rep = json_object_new_object();
        json_object *criu = NULL;
        _cleanup_error_ struct cryo_error *criu_err = NULL;
        bool ready = true;
        if (engine_check(&criu, &criu_err) < 0) {
                criu = json_object_new_object();
                json_object_object_add(criu, "error", json_object_new_string(criu_err->message));
                ready = false;
        } else {
                ready = json_object_get_boolean(cryo_json_get(criu, "version_ok"));
        }
        json_object_object_add(rep, "criu", criu);

        json_object *kernel = ckpt_host_info();
        bool cr = path_exists("/proc/sys/kernel/ns_last_pid");
        json_object_object_add(kernel, "checkpoint_restore", json_object_new_boolean(cr));
        json_object_object_add(kernel, "overlayfs", json_object_new_boolean(filesystem_known("overlay")));
        json_object_object_add(
                kernel, "userfaultfd",
                json_object_new_boolean(path_exists("/proc/sys/vm/unprivileged_userfaultfd")));
        json_object_object_add(kernel, "time_namespace",
                               json_object_new_boolean(path_exists("/proc/self/ns/time")));
        json_object_object_add(kernel, "cgroups", json_object_new_string(cgroup_layout()));
        /* Where CRIU reads and makes cgroups: the host's mounts, or a yard
         * of its own mounted for every run (engine/cgroup-yard.c). */
        const char *yard = engine_cgroup_yard(0);
        json_object_object_add(kernel, "cgroup_yard", yard ? json_object_new_string(yard) : NULL);
        json_object_object_add(rep, "kernel", kernel);
        ready = ready && cr && geteuid() == 0;

        static const struct {
                const char *name, *socket;
        } runtimes[] = {
                {"containerd", "/run/containerd/containerd.sock"},
                {"docker", "/var/run/docker.sock"},
                {"cri-o", "/var/run/crio/crio.sock"},
        };
        json_object *rt = json_object_new_object();
        for (size_t i = 0; i < ARRAY_SIZE(runtimes); i++) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "socket", json_object_new_string(runtimes[i].socket));
                bool answers = socket_answers(runtimes[i].socket);
                json_object_object_add(o, "answers", json_object_new_boolean(answers));
                if (answers && !strcmp(runtimes[i].name, "containerd"))
                        add_containerd_version(o, runtimes[i].socket);
                json_object_object_add(rt, runtimes[i].name, o);
        }
        json_object *runc = json_object_new_object();
        json_object_object_add(
                runc, "installed",
                json_object_new_boolean(path_exists("/usr/sbin/runc") || path_exists("/usr/bin/runc")));
        json_object_object_add(rt, "runc", runc);
        json_object_object_add(rep, "runtimes", rt);
        json_object_object_add(rep, "root", json_object_new_boolean(geteuid() == 0));
        json_object_object_add(rep, "ready", json_object_new_boolean(ready));
        (void) err;
        *out = steal_pointer(&rep);
        return 0;
}
