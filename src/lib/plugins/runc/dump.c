/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Dump of a container run by runc directly.  Everything comes from runc's
 * state directory (<root>/<id>/state.json: init pid, rootfs, cgroups,
 * mounts as runc set them up, the bundle as a label) and from the bundle's
 * config.json (the OCI spec); the container dump itself is the one all
 * container plugins share.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plugins/container/container.h"
#include "plugins/runc/runc.h"
#include "rootfs/rootfs.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/json.h"

const char *runc_root(const struct cryo_request *req) {
        return req->runtime_root && *req->runtime_root ? req->runtime_root : RUNC_DEFAULT_ROOT;
}

bool runc_id_valid(const char *id) {
        if (!id || !*id || strlen(id) > 1024 || !strcmp(id, ".") || !strcmp(id, ".."))
                return false;
        for (const char *p = id; *p; p++)
                if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-.", *p))
                        return false;
        return true;
}

/* "a, b, c" for an error message: the containers there are under `root`. */
static void list_containers(const char *root, char *buf, size_t size) {
        buf[0] = '\0';
        _cleanup_closedir_ DIR *d = opendir(root);
        struct dirent *de;
        size_t n = 0;
        while (d && (de = readdir(d))) {
                char path[4096];
                if (de->d_name[0] == '.' ||
                    snprintf(path, sizeof(path), "%s/%s/state.json", root, de->d_name) >=
                            (int) sizeof(path) ||
                    access(path, F_OK) < 0)
                        continue;
                if (n++ < 20) {
                        strncat(buf, buf[0] ? ", " : "", size - strlen(buf) - 1);
                        strncat(buf, de->d_name, size - strlen(buf) - 1);
                } else if (n == 21) {
                        strncat(buf, ", ...", size - strlen(buf) - 1);
                }
        }
}

static int load_state(const char *root, const char *id, json_object **state, struct cryo_error **err) {
        if (!fs_is_dir(root))
                return cryo_error_set(
                        err, ENOENT,
                        "runc root %s does not exist: give the --root the container was started "
                        "with as --runtime-root (runc's default is " RUNC_DEFAULT_ROOT ")",
                        root);
        _cleanup_free_ char *dir = fs_path_join(root, id);
        if (!dir)
                return cryo_error_set(err, ENOMEM, "out of memory");
        _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT) {
                char list[1024];
                list_containers(root, list, sizeof(list));
                return cryo_error_set(err, ENOENT,
                                      "no runc container '%s' under %s (containers there: %s); if it runs "
                                      "under another runc --root, give that as --runtime-root",
                                      id, root, list[0] ? list : "none");
        }
        if (fd < 0)
                return cryo_error_errno(err, errno, "cannot open the runc state of container '%s' (%s)", id,
                                        dir);
        int r = cryo_json_read_file(fd, "state.json", 16u << 20, state, err);
        if (r == -ENOENT) {
                cryo_error_freep(err);
                return cryo_error_set(err, ENOENT, "%s has no state.json: not a runc container state", dir);
        }
        return r < 0 ? cryo_error_prefix(err, "runc state of container '%s'", id) : 0;
}

/* Field 22 of /proc/<pid>/stat (start time in clock ticks) and the state
 * letter; -ESRCH when the process is gone. */
static int proc_start_time(pid_t pid, unsigned long long *start, char *state) {
        char path[64];
        _cleanup_free_ char *text = NULL;
        snprintf(path, sizeof(path), "/proc/%d/stat", pid);
        if (fs_read_file(AT_FDCWD, path, 4096, &text, NULL, NULL) < 0)
                return -ESRCH;
        const char *p = strrchr(text, ')');
        if (!p || sscanf(p + 2, "%c", state) != 1)
                return -EBADMSG;
        /* Each step lands on the space before field N: state is field 3,
         * the start time field 22. */
        for (int field = 3; field <= 22 && p; field++)
                p = strchr(p + 1, ' ');
        if (!p || sscanf(p + 1, "%llu", start) != 1)
                return -EBADMSG;
        return 0;
}

/* runc considers a container running while its init (same pid, same start
 * time) lives; a container created but not started still has exec.fifo. */
static int check_running(const char *root, const char *id, json_object *state, pid_t *pid,
                         struct cryo_error **err) {
        *pid = (pid_t) cryo_json_int(state, "init_process_pid", 0);
        unsigned long long want = (unsigned long long) cryo_json_int(state, "init_process_start", 0),
                           start = 0;
        char st = '?';
        if (*pid <= 0 || proc_start_time(*pid, &start, &st) < 0 || st == 'Z' || st == 'X' ||
            (want && start != want))
                return cryo_error_set(
                        err, ESRCH,
                        "runc container '%s' under %s is not running (its init process %d has "
                        "exited): start it again, or remove it with `runc --root %s delete %s`",
                        id, root, (int) *pid, root, id);
        /* Paused (runc pause): a frozen tree would not even die after the
         * dump; runc itself reads the freezer the same way. */
        json_object *cg = cryo_json_get(state, "cgroup_paths");
        const char *v1 = cryo_json_str(cg, "freezer", NULL), *v2 = cryo_json_str(cg, "", NULL);
        char path[4096];
        _cleanup_free_ char *frozen = NULL;
        if (v1)
                snprintf(path, sizeof(path), "%s/freezer.state", v1);
        else if (v2)
                snprintf(path, sizeof(path), "%s/cgroup.freeze", v2);
        if ((v1 || v2) && fs_read_file(AT_FDCWD, path, 64, &frozen, NULL, NULL) == 0 &&
            (!strncmp(frozen, "FROZEN", 6) || !strncmp(frozen, "FREEZING", 8) || !strncmp(frozen, "1", 1)))
                return cryo_error_set(
                        err, EBUSY,
                        "runc container '%s' is paused: resume it first (`runc --root %s resume "
                        "%s`)",
                        id, root, id);
        char fifo[4096];
        snprintf(fifo, sizeof(fifo), "%s/%s/exec.fifo", root, id);
        if (access(fifo, F_OK) == 0)
                return cryo_error_set(err, ESRCH,
                                      "runc container '%s' is created but not started: start it with `runc "
                                      "--root %s start %s` first",
                                      id, root, id);
        return 0;
}

/* runc records the bundle as the config label "bundle=<path>". */
static char *bundle_of(json_object *state) {
        json_object *labels = cryo_json_path(state, "config/labels");
        for (size_t i = 0; labels && i < json_object_array_length(labels); i++) {
                const char *l = json_object_get_string(json_object_array_get_idx(labels, i));
                if (l && !strncmp(l, "bundle=", 7) && l[7])
                        return strdup(l + 7);
        }
        return NULL;
}

static int runc_source_id(const struct cryo_request *req, char **id, struct cryo_error **err) {
        if (!req->id || !*req->id)
                return cryo_error_set(err, EINVAL, "a runc dump needs --id CONTAINER-ID (see `runc list`)");
        if (!runc_id_valid(req->id))
                return cryo_error_set(err, EINVAL, "'%s' is not a valid runc container id", req->id);
        *id = strdup(req->id);
        return *id ? 0 : cryo_error_set(err, ENOMEM, "out of memory");
}

/* The user's --external keys followed by the stdio ones, for a copy of the
 * request the container dump gets. */
static char **merge_externals(char **user, char **more) {
        size_t n = 0, m = 0;
        while (user && user[n])
                n++;
        while (more && more[m])
                m++;
        char **v = calloc(n + m + 1, sizeof(char *));
        for (size_t i = 0; v && i < n + m; i++)
                if (!(v[i] = strdup(i < n ? user[i] : more[i - n]))) {
                        cryo_strv_free(v);
                        return NULL;
                }
        return v;
}

static int runc_dump(const struct cryo_request *req, struct cryo_checkpoint *ck, struct cryo_error **err) {
        const char *root = runc_root(req);
        _cleanup_json_ json_object *state = NULL;
        int r = load_state(root, req->id, &state, err);
        if (r < 0)
                return r;
        pid_t pid = 0;
        r = check_running(root, req->id, state, &pid, err);
        if (r < 0)
                return r;

        _cleanup_container_ struct container *c = calloc(1, sizeof(*c));
        if (!c || !(c->id = strdup(req->id)) || !(c->runtime_root = strdup(root)))
                return cryo_error_set(err, ENOMEM, "out of memory");
        c->init_pid = pid;
        c->bundle = bundle_of(state);
        if (!c->bundle)
                return cryo_error_set(
                        err, EBADMSG,
                        "the runc state of container '%s' names no bundle (no \"bundle=\" label)", req->id);
        _cleanup_close_ int bundle_fd = open(c->bundle, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (bundle_fd < 0)
                return cryo_error_errno(err, errno, "cannot open the bundle %s of runc container '%s'",
                                        c->bundle, req->id);
        r = cryo_json_read_file(bundle_fd, "config.json", 16u << 20, &c->spec, err);
        if (r < 0)
                return cryo_error_prefix(err, "the OCI spec of runc container '%s' (bundle %s)", req->id,
                                         c->bundle);
        if (json_object_get_boolean(cryo_json_path(c->spec, "process/terminal")))
                return cryo_error_set(
                        err, EOPNOTSUPP,
                        "runc container '%s' has a terminal (process.terminal in %s/config.json): "
                        "cryo's runc restore has no console socket to give it",
                        req->id, c->bundle);
        r = container_load_runc_state(c, err);
        if (r < 0)
                return r;

        /* The root: an overlay (an image plus a writable layer) whose
         * changes go into the checkpoint, or a plain directory that must
         * still be there on restore. */
        _cleanup_free_ char *upper = NULL;
        _cleanup_error_ struct cryo_error *why = NULL;
        r = rootfs_find_upperdir(pid, &upper, &why);
        if (r == -EINVAL || r == -ENODATA)
                c->rootfs_plain = true;
        else if (r < 0)
                return cryo_error_set(err, -r, "runc container '%s': %s", req->id, why ? why->message : "");

        json_object *sec = json_object_new_object();
        json_object_object_add(ck->manifest, RUNC_SECTION, sec);
        json_object_object_add(sec, "bundle", json_object_new_string(c->bundle));
        json_object *rootfs = json_object_new_object();
        json_object_object_add(rootfs, "path", json_object_new_string(c->rootfs));
        json_object_object_add(rootfs, "kind",
                               json_object_new_string(c->rootfs_plain ? "directory" : "overlay"));
        cryo_json_add_str(rootfs, "upperdir", upper);
        json_object_object_add(sec, "rootfs", rootfs);
        cryo_json_add_str(sec, "cgroups_path",
                          cryo_json_str(cryo_json_get(c->spec, "linux"), "cgroupsPath", NULL));

        json_object *stdio = NULL;
        _cleanup_strv_ char **stdio_ext = NULL;
        r = runc_stdio_dump(pid, &stdio, &stdio_ext, err);
        if (r < 0)
                return cryo_error_prefix(err, "runc container '%s'", req->id);
        json_object_object_add(sec, "stdio", stdio);

        /* config.dump: the runtime's view of the container, as Podman and
         * containerd keep theirs; status.dump: what it was doing. */
        r = cryo_json_write_file(ck->dirfd, CRYO_CONFIG_DUMP, state, 0600, err);
        if (r < 0)
                return r;
        json_object *status = json_object_new_object();
        json_object_object_add(status, "pid", json_object_new_int(pid));
        json_object_object_add(status, "status", json_object_new_string("running"));
        json_object_object_add(status, "bundle", json_object_new_string(c->bundle));
        cryo_json_add_str(status, "created", cryo_json_str(state, "created", NULL));
        r = cryo_json_write_file(ck->dirfd, CRYO_STATUS_DUMP, status, 0600, err);
        json_object_put(status);
        if (r < 0)
                return r;

        json_object *source = json_object_new_object();
        json_object_object_add(source, "runtime_root", json_object_new_string(root));
        json_object_object_add(source, "id", json_object_new_string(req->id));
        json_object_object_add(source, "bundle", json_object_new_string(c->bundle));
        json_object_object_add(ck->manifest, "source", source);

        struct cryo_request local = *req;
        _cleanup_strv_ char **externals = merge_externals(req->criu.externals, stdio_ext);
        if (!externals)
                return cryo_error_set(err, ENOMEM, "out of memory");
        local.criu.externals = externals;
        r = container_dump(c, &local, ck, err);
        if (r >= 0)
                runc_stdio_dumped(pid, stdio, req->criu.leave_running);
        return r;
}

static int runc_inspect(struct cryo_checkpoint *ck, json_object *report, struct cryo_error **err) {
        (void) err;
        json_object *procs = cryo_json_get(ck->manifest, "processes");
        json_object_object_add(report, "processes",
                               procs ? json_object_get(procs) : json_object_new_array());
        json_object *c = cryo_json_get(ck->manifest, "container");
        if (c)
                json_object_object_add(report, "container", json_object_get(c));
        json_object *sec = cryo_json_get(ck->manifest, RUNC_SECTION);
        if (sec)
                json_object_object_add(report, RUNC_SECTION, json_object_get(sec));
        return 0;
}

const struct cryo_plugin cryo_plugin_runc = {
        .name = "runc",
        .summary =
                "a container run by runc directly (runc run -d), restored with runc restore on its bundle",
        .source_id = runc_source_id,
        .dump = runc_dump,
        .restore = runc_restore,
        .inspect = runc_inspect,
};
