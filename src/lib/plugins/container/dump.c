/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cryo.h"
#include "plugins/container/container.h"
#include "rootfs/rootfs.h"
#include "rootfs/tar.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/proc.h"

int container_load_runc_state(struct container *c, struct cryo_error **err) {
        if (!c->runtime_root)
                return cryo_error_set(err, EINVAL, "no runc root known for container %s", c->id);
        _cleanup_free_ char *dir = fs_path_join(c->runtime_root, c->id);
        if (!dir)
                return cryo_error_set(err, ENOMEM, "out of memory");
        _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return cryo_error_errno(err, errno, "cannot open the runc state of container %s (%s)", c->id,
                                        dir);
        int r = cryo_json_read_file(fd, "state.json", 16u << 20, &c->runc_state, err);
        if (r < 0)
                return cryo_error_prefix(err, "runc state of container %s", c->id);
        if (!c->rootfs) {
                const char *rootfs =
                        cryo_json_path(c->runc_state, "config/rootfs")
                                ? json_object_get_string(cryo_json_path(c->runc_state, "config/rootfs"))
                                : NULL;
                if (!rootfs || !(c->rootfs = strdup(rootfs)))
                        return cryo_error_set(err, EBADMSG, "runc state of container %s names no rootfs",
                                              c->id);
        }
        return 0;
}

/* descriptors.json: what the container's stdio were, so that runc restore
 * can hand the new stdio to the restored tree in their place. */
static int write_descriptors(const struct container *c, int images_fd, struct cryo_error **err) {
        json_object *fds = cryo_json_get(c->runc_state, "external_descriptors");
        _cleanup_json_ json_object *owned = NULL;
        if (!fds) {
                owned = json_object_new_array();
                for (int i = 0; i < 3; i++) {
                        char path[64], target[4096];
                        snprintf(path, sizeof(path), "/proc/%d/fd/%d", c->init_pid, i);
                        ssize_t n = readlink(path, target, sizeof(target) - 1);
                        target[n > 0 ? n : 0] = '\0';
                        json_object_array_add(owned, json_object_new_string(target));
                }
                fds = owned;
        }
        const char *text =
                json_object_to_json_string_ext(fds, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        return fs_write_file_unsynced(images_fd, "descriptors.json", text, strlen(text), 0600, err);
}

/* Mount points inside the container: their contents are not part of the
 * container's own filesystem changes. */
static char **mount_destinations(json_object *spec) {
        json_object *mounts = cryo_json_get(spec, "mounts");
        size_t n = mounts ? json_object_array_length(mounts) : 0;
        char **v = calloc(n + 1, sizeof(char *));
        for (size_t i = 0, k = 0; v && i < n; i++) {
                const char *d = cryo_json_str(json_object_array_get_idx(mounts, i), "destination", NULL);
                if (d && strcmp(d, "/"))
                        v[k++] = strdup(d);
        }
        return v;
}

static int capture_rootfs(const struct container *c, struct cryo_checkpoint *ck, struct cryo_error **err) {
        if (c->rootfs_plain)
                return 0;
        uint64_t start = cryo_now_usec();
        _cleanup_free_ char *upper = NULL;
        int r = rootfs_find_upperdir(c->init_pid, &upper, err);
        if (r < 0)
                return cryo_error_prefix(err, "container %s: cannot find its filesystem changes", c->id);
        _cleanup_strv_ char **excludes = mount_destinations(c->spec);
        char merged[64];
        snprintf(merged, sizeof(merged), "/proc/%d/root", c->init_pid);
        struct rootfs_capture_opts opts = {.excludes = (const char *const *) excludes, .merged_dir = merged};
        struct tar_stats st = {0};
        r = rootfs_diff_capture(upper, ck->dirfd, &opts, &st, err);
        if (r < 0)
                return cryo_error_prefix(err, "container %s: filesystem capture", c->id);
        cryo_stats_add(&ck->stats, CRYO_PHASE_ROOTFS, cryo_now_usec() - start, st.archive_bytes);
        json_object *o = json_object_new_object();
        json_object_object_add(o, "upperdir", json_object_new_string(upper));
        json_object_object_add(o, "files", json_object_new_uint64(st.files));
        json_object_object_add(o, "bytes", json_object_new_uint64(st.bytes));
        json_object_object_add(o, "deleted", json_object_new_uint64(st.deleted));
        json_object_object_add(cryo_json_get(ck->manifest, "container"), "rootfs_diff", o);
        return 0;
}

struct freeze_at_seize {
        const char *cgroup;
        struct container_freezer *fz;
        struct cryo_stats *stats;
        pid_t init;
        bool one_cgroup; /* out */
};

/* one_cgroup: whether a restore may leave the tree's cgroups to runc (CRIU's
 * manage-cgroups "ignore", docs/containerd-restore.md): runc moves its CRIU
 * into the new container's cgroups before CRIU forks the tree, so a tree
 * that lived in the container's cgroups alone gets them back by inheritance,
 * and CRIU's own cgroup work (a yard of mounts, ~15-25 ms) is not needed.
 * Not so for a tree with a cgroup namespace of its own, which CRIU creates
 * only when it manages cgroups.  Asked with the tree frozen: no fork or
 * move can change the answer before CRIU's dump. */
static void freeze_at_seize(void *arg) {
        struct freeze_at_seize *at = arg;
        if (container_freeze(at->cgroup, at->fz, NULL) < 0)
                return;
        if (at->fz->frozen_by_us)
                cryo_stats_add(at->stats, CRYO_PHASE_FREEZE, at->fz->usec, 0);
        if (proc_in_our_ns(at->init, "cgroup") &&
            proc_tree_in_one_cgroup(at->init, &at->one_cgroup, NULL) < 0)
                at->one_cgroup = false;
}

int container_dump(const struct container *c, const struct cryo_request *req, struct cryo_checkpoint *ck,
                   struct cryo_error **err) {
        uint64_t start = cryo_now_usec();
        int r = container_save_metadata(c, ck, err);
        if (r < 0)
                return r;
        _cleanup_free_ struct cryo_proc *procs = NULL;
        size_t n = 0;
        r = proc_tree_collect(c->init_pid, &procs, &n, err);
        if (r < 0)
                return r;
        cryo_stats_add(&ck->stats, CRYO_PHASE_METADATA, cryo_now_usec() - start, 0);
        r = container_save_binds(c, req, ck, err);
        if (r < 0)
                return r;
        if (req->rootfs_only)
                json_object_object_add(ck->manifest, "rootfs_only", json_object_new_boolean(true));

        if (!req->rootfs_only) {
                _cleanup_close_ int images_fd = -1;
                r = ckpt_open_subdir(ck, CRYO_CRIU_DIR, true, &images_fd, err);
                if (r < 0)
                        return r;
                r = write_descriptors(c, images_fd, err);
                if (r < 0)
                        return r;
                struct container_criu_config cfg = {0};
                _cleanup_json_ json_object *tmpfs = NULL;
                r = container_criu_config(c, &cfg, err);
                if (r >= 0)
                        r = container_tmpfs_plan(c, &cfg, &tmpfs, err);
                if (r >= 0) {
                        struct engine_dump_request dump = {
                                .pid = c->init_pid,
                                .images_fd = images_fd,
                                .work_fd = ck->dirfd,
                                .root = c->rootfs,
                                .opts = &req->criu,
                                .ext_mounts = cfg.ext_mounts,
                                .externals = (const char *const *) cfg.externals,
                                .freeze_cgroup = cfg.freeze_cgroup,
                                .orphan_pts_master = true,
                                .manage_cgroups = true,
                                .empty_ns = cfg.empty_ns,
                                /* Without TCP repair nothing needs the lock, and
                                 * a container that goes on must not keep it. */
                                .network_lock_skip = !req->criu.tcp_established,
                                /* Only plugins with lazy_pages get here with it. */
                                .lazy = req->lazy ? &req->lazy->page_server : NULL,
                        };
                        /* At CRIU's pre-dump notification: frozen no earlier
                         * than CRIU would freeze it.  Not fatal: CRIU freezes
                         * the cgroup itself then, 100 ms slower. */
                        _cleanup_container_freezer_ struct container_freezer fz = CONTAINER_FREEZER_INIT;
                        struct freeze_at_seize at = {cfg.freeze_cgroup, &fz, &ck->stats, c->init_pid, false};
                        if (cfg.freeze_cgroup) {
                                dump.before_seize = freeze_at_seize;
                                dump.before_seize_arg = &at;
                        }
                        r = cryo_dump_tree(&dump, ck, err);
                        bool prefrozen = fz.frozen_by_us;
                        /* CRIU froze it again as it let the tasks go: now they
                         * are stopped (SIGSTOP) or resumed without the freezer. */
                        int t = container_thaw(&fz, r < 0 ? NULL : err);
                        if (r >= 0 && t < 0)
                                r = t;
                        if (r >= 0 && prefrozen && !fz.v2)
                                r = container_freezer_fix_image(images_fd, err);
                        if (r >= 0 && at.one_cgroup)
                                json_object_object_add(cryo_json_get(ck->manifest, "container"),
                                                       "one_cgroup", json_object_new_boolean(true));
                        /* The tree is stopped (or held by the page server): the
                         * tmpfs contents match its memory. */
                        if (r >= 0)
                                r = container_tmpfs_capture(c, ck, tmpfs, err);
                }
                container_criu_config_clear(&cfg);
                if (r < 0)
                        return cryo_error_prefix(err, "container %s", c->id);
        }
        json_object_object_add(ck->manifest, "processes", proc_tree_to_json(procs, n));
        /* With the tree stopped by the dump, the filesystem is quiet: its
         * changes are captured in the same state as the memory. */
        return capture_rootfs(c, ck, err);
}
