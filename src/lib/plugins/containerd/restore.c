/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Restore as a containerd-managed task (docs/containerd-restore.md): a new
 * container record from the saved spec, a fresh snapshot of the image with
 * the filesystem diff applied, then Tasks.Create with runc options naming
 * the checkpoint's CRIU images, and Tasks.Start, in which the runc shim
 * runs `runc restore`.  The shim is the parent of the restored tree, so
 * kill, wait, exit status and events work as for any task.
 *
 * The images are handed over by path (criu_image_path) rather than uploaded
 * to the content store: no copy, and containerd 1.6 never deletes what it
 * extracts from an uploaded checkpoint.
 *
 * Every object this restore creates is recorded in `struct restore` and
 * removed again if a later step fails; the checkpoint is only read.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cryo.h"
#include "engine/engine.h"
#include "migrate.h"
#include "plugins/containerd/containerd.h"
#include "rootfs/rootfs.h"
#include "rootfs/tar.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/json.h"

struct restore {
        struct ctrd_client *client;
        const char *ns;
        const char *id;
        char *snapshotter;
        char *state_dir;       /* /run/cryo/containerd/<ns>/<id>: CRIU work dir, stdin FIFO */
        char *data_dir;        /* /var/lib/cryo/containers/<ns>/<id>: log, recreated bind sources */
        const char *runc_root; /* where the shim's runc keeps its state */
        bool snapshot_prepared;
        bool container_created;
        bool task_created;
};

/*
 * When CRIU fails, runc 1.1 leaves its restore's root mount
 * (<root>/<ns>/<id>/criu-root) and that state directory behind, without a
 * state.json, and then refuses the id for good: "container with given ID
 * already exists".  Only a directory runc does not count as a container
 * (no state.json) is removed.
 */
static void remove_runc_leftovers(const struct restore *rs) {
        _cleanup_free_ char *dir = NULL, *mnt = NULL;
        if (asprintf(&dir, "%s/%s/%s", rs->runc_root, rs->ns, rs->id) < 0 ||
            !(mnt = fs_path_join(dir, "criu-root")))
                return;
        _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 || faccessat(fd, "state.json", F_OK, AT_SYMLINK_NOFOLLOW) == 0)
                return;
        (void) umount2(mnt, MNT_DETACH);
        (void) unlinkat(fd, "criu-root", AT_REMOVEDIR);
        (void) rmdir(dir);
}

/* Undoes, newest first, what this restore made; errors here cannot be
 * reported better than the failure that brought us here. */
static void restore_unwind(struct restore *rs) {
        if (rs->task_created) {
                (void) ctrd_task_kill(rs->client, rs->id, SIGKILL, true, NULL);
                for (int i = 0; i < 50; i++) {
                        if (ctrd_task_delete(rs->client, rs->id, NULL, NULL) >= 0)
                                break;
                        struct timespec ts = {0, 100 * 1000 * 1000};
                        nanosleep(&ts, NULL);
                }
                remove_runc_leftovers(rs);
        }
        if (rs->container_created)
                (void) ctrd_container_delete(rs->client, rs->id, NULL);
        if (rs->snapshot_prepared)
                (void) ctrd_snapshot_remove(rs->client, rs->snapshotter, rs->id, NULL);
        if (rs->data_dir)
                (void) fs_rm_rf(rs->data_dir);
}

/* Idempotent: the success path runs it early, to measure it. */
static void restore_clear(struct restore *rs) {
        if (rs->state_dir)
                (void) fs_rm_work_dir(rs->state_dir);
        free(steal_pointer(&rs->snapshotter));
        free(steal_pointer(&rs->state_dir));
        free(steal_pointer(&rs->data_dir));
}

static int check_image(struct restore *rs, json_object *saved, struct containerd_image *out,
                       struct cryo_error **err) {
        const char *name = cryo_json_str(saved, "name", NULL);
        const char *want = cryo_json_str(saved, "config_digest", NULL);
        const char *want_chain = cryo_json_str(saved, "chain_id", NULL);
        if (!name)
                return cryo_error_set(err, EINVAL, "the checkpoint names no base image");
        int r = containerd_image_resolve(rs->client, name, out, err);
        if (r == -ENOENT) {
                cryo_error_freep(err);
                return cryo_error_set(
                        err, ENOENT,
                        "base image %s (%s) is not in containerd namespace '%s' on this host: "
                        "bring it here first, e.g. `docker save %s | ctr -n %s images import -` on a "
                        "host that has it, or pull it",
                        name, want ? want : "digest unknown", rs->ns, name, rs->ns);
        }
        if (r < 0)
                return r;
        /* The layers are what the restored filesystem stands on: the same
         * layers under another config (Docker's import vs containerd's) are
         * the same image for a restore. */
        if (want_chain ? strcmp(want_chain, out->chain_id) != 0
                       : want && strcmp(want, out->config_digest) != 0)
                return cryo_error_set(err, ESTALE,
                                      "base image %s on this host has other contents (%s) than the one the "
                                      "checkpoint was taken from (%s): restore needs the same image",
                                      name, want_chain ? out->chain_id : out->config_digest,
                                      want_chain ? want_chain : want);
        return 0;
}

static int mount_snapshot(const struct ctrd_mounts *mounts, const char *target, struct cryo_error **err) {
        if (mounts->n != 1)
                return cryo_error_set(err, EOPNOTSUPP, "snapshot has %zu mounts; cryo handles one",
                                      mounts->n);
        const struct ctrd_mount *m = &mounts->items[0];
        unsigned long flags = 0;
        char data[8192] = "";
        for (char **o = m->options; o && *o; o++) {
                if (!strcmp(*o, "bind"))
                        flags |= MS_BIND;
                else if (!strcmp(*o, "rbind"))
                        flags |= MS_BIND | MS_REC;
                else if (!strcmp(*o, "ro"))
                        flags |= MS_RDONLY;
                else if (strcmp(*o, "rw")) {
                        if (strlen(data) + strlen(*o) + 2 >= sizeof(data))
                                return cryo_error_set(err, E2BIG, "snapshot mount options too long");
                        if (data[0])
                                strcat(data, ",");
                        strcat(data, *o);
                }
        }
        if (mount(m->source, target, m->type, flags, data[0] ? data : NULL) < 0)
                return cryo_error_errno(err, errno, "cannot mount the new snapshot (%s) at %s", m->type,
                                        target);
        return 0;
}

static int prepare_rootfs(struct restore *rs, struct cryo_checkpoint *ck, const char *chain_id,
                          struct ctrd_mounts *mounts, struct cryo_error **err) {
        uint64_t t0 = cryo_now_usec();
        int r = ctrd_snapshot_prepare(rs->client, rs->snapshotter, rs->id, chain_id, NULL, mounts, err);
        if (r == -ENOENT) {
                cryo_error_freep(err);
                return cryo_error_set(
                        err, ENOENT,
                        "the image is not unpacked for snapshotter %s in namespace '%s' (no snapshot "
                        "%s): unpack it, e.g. re-import it with `ctr images import`",
                        rs->snapshotter, rs->ns, chain_id);
        }
        if (r < 0)
                return cryo_error_prefix(err, "new snapshot for %s", rs->id);
        rs->snapshot_prepared = true;

        _cleanup_free_ char *tar = fs_path_join(ck->path, CRYO_ROOTFS_DIFF);
        _cleanup_free_ char *deleted = fs_path_join(ck->path, CRYO_DELETED_FILES);
        if (!tar || !deleted)
                return cryo_error_set(err, ENOMEM, "out of memory");
        /* A container that changed no file: the fresh snapshot is its root
         * as it was; mounting it only to apply nothing costs ~2 ms. */
        if (rootfs_diff_is_empty(tar, deleted)) {
                cryo_stats_add(&ck->stats, CRYO_PHASE_SNAPSHOT, cryo_now_usec() - t0, 0);
                return 0;
        }
        _cleanup_free_ char *target = fs_path_join(rs->state_dir, "rootfs");
        if (!target || mkdir(target, 0700) < 0)
                return cryo_error_errno(err, target ? errno : ENOMEM, "cannot create a mount point");
        r = mount_snapshot(mounts, target, err);
        if (r < 0)
                return r;
        uint64_t start = cryo_now_usec();
        cryo_stats_add(&ck->stats, CRYO_PHASE_SNAPSHOT, start - t0, 0);
        struct tar_stats st = {0};
        r = rootfs_diff_apply(target, tar, deleted, &st, err);
        uint64_t applied = cryo_now_usec();
        cryo_stats_add(&ck->stats, CRYO_PHASE_ROOTFS, applied - start, st.bytes);
        if (umount2(target, MNT_DETACH) < 0 && r >= 0)
                r = cryo_error_errno(err, errno, "cannot unmount %s", target);
        cryo_stats_add(&ck->stats, CRYO_PHASE_SNAPSHOT, cryo_now_usec() - applied, 0);
        return r < 0 ? cryo_error_prefix(err, "applying the filesystem changes") : 0;
}

/* The CRIU options the shim does not pass (tcp-established, file-locks)
 * reach CRIU through a configuration file named by a spec annotation.
 *
 * mntns-compat-mode: the root of a Docker container is a slave of the
 * host's "/" peer group; CRIU's newer mount engine then tries to copy that
 * sharing from runc's criu-root bind mount, which is in another group, and
 * fails with "Failed to copy sharing ... Invalid argument".  The older
 * engine restores such trees and every other container seen here.
 *
 * network-lock skip: the tree is restored into a network namespace of its
 * own, new and unconnected (only loopback, brought up by cryo's hook), so
 * nothing can reach it while CRIU works; CRIU's iptables lock and unlock of
 * it (six iptables-restore runs, ~90 ms) protect nothing there.  Kept when
 * TCP connections are restored (their repair is what the lock is for). */
static char *write_criu_conf(struct restore *rs, struct cryo_checkpoint *ck, const struct engine_options *o,
                             bool private_netns, bool lazy, const char *cgroup_mode, const char *gate_hook,
                             struct cryo_error **err) {
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        _cleanup_fclose_ FILE *f = open_memstream(&text, &len);
        if (!f) {
                cryo_error_set(err, ENOMEM, "out of memory");
                return NULL;
        }
        fputs("mntns-compat-mode\n", f);
        if (private_netns && !o->tcp_established)
                fputs("network-lock skip\n", f);
        /* "=": the mode is an optional argument of CRIU's option. */
        if (cgroup_mode)
                fprintf(f, "manage-cgroups=%s\n", cgroup_mode);
        /* The host's cgroup mounts (engine/cgroup-yard.c) where CRIU moves
         * the tree into cgroups: nothing left mounted if CRIU is killed. */
        const char *yard = cgroup_mode && !strcmp(cgroup_mode, "ignore") ? NULL : engine_cgroup_yard(0);
        if (yard)
                fprintf(f, "cgroup-yard=%s\n", yard);
        /* Post-copy: runc's CRIU registers the anonymous memory with
         * userfaultfd and hands it to cryo's lazy-pages daemon (its own
         * lazy_pages RPC field, which runc sets false, is overridden by the
         * configuration file, as tcp-established is). */
        if (lazy)
                fputs("lazy-pages\n", f);
        if (o->tcp_established)
                fputs("tcp-established\n", f);
        if (o->file_locks)
                fputs("file-locks\n", f);
        if (o->ext_unix_sk)
                fputs("ext-unix-sk\n", f);
        if (o->tcp_close)
                fputs("tcp-close\n", f);
        /* Holds the tree at pre-resume until the checksums pass. */
        if (gate_hook)
                fprintf(f, "action-script %s\n", gate_hook);
        /* The tmpfs contents cryo saved: mounted and filled here, bound in
         * place by CRIU; restore_clear() detaches these copies. */
        _cleanup_free_ char *tmpfs_dir = fs_path_join(rs->state_dir, "tmpfs");
        if (!tmpfs_dir) {
                cryo_error_set(err, ENOMEM, "out of memory");
                return NULL;
        }
        uint64_t start = cryo_now_usec();
        if (container_tmpfs_prepare(ck, tmpfs_dir, f, err) < 0)
                return NULL;
        cryo_stats_add(&ck->stats, CRYO_PHASE_ROOTFS, cryo_now_usec() - start, 0);
        if (fflush(f) != 0 || ferror(f)) {
                cryo_error_set(err, ENOMEM, "out of memory");
                return NULL;
        }
        _cleanup_close_ int fd = open(rs->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) {
                cryo_error_errno(err, errno, "cannot open %s", rs->state_dir);
                return NULL;
        }
        if (fs_write_file_unsynced(fd, "criu.conf", text, len, 0600, err) < 0)
                return NULL;
        return fs_path_join(rs->state_dir, "criu.conf");
}

/* The saved spec, made to fit a new container: its own cgroup, a rootfs
 * mounted by the shim, and, instead of the old runtime's hooks (Docker's
 * libnetwork), cryo's own hook that brings up loopback in the fresh
 * network namespace before CRIU rebinds sockets to it. */
/* A network namespace of its own that runc creates (no path to join). */
static bool spec_private_netns(json_object *spec) {
        json_object *nss = cryo_json_get(cryo_json_get(spec, "linux"), "namespaces");
        for (size_t i = 0; nss && i < json_object_array_length(nss); i++) {
                json_object *ns = json_object_array_get_idx(nss, i);
                if (!strcmp(cryo_json_str(ns, "type", ""), "network") && !cryo_json_get(ns, "path"))
                        return true;
        }
        return false;
}

static int build_spec(struct restore *rs, json_object *saved, const char *criu_conf, json_object **out,
                      struct cryo_error **err) {
        _cleanup_json_ json_object *spec = NULL;
        if (json_object_deep_copy(saved, &spec, NULL) < 0)
                return cryo_error_set(err, ENOMEM, "out of memory");
        json_object *root = cryo_json_get(spec, "root");
        if (!root)
                return cryo_error_set(err, EBADMSG, "the saved spec has no root");
        json_object_object_add(root, "path", json_object_new_string("rootfs"));
        json_object *linux_ = cryo_json_get(spec, "linux");
        char cgroup[512];
        snprintf(cgroup, sizeof(cgroup), "/%s/%s", rs->ns, rs->id);
        if (linux_)
                json_object_object_add(linux_, "cgroupsPath", json_object_new_string(cgroup));

        json_object_object_del(spec, "hooks");
        if (spec_private_netns(spec)) {
                /* cryo-netns-up beside cryo starts in a fraction of the time
                 * cryo takes (runc runs it while CRIU waits); else cryo. */
                _cleanup_free_ char *helper = fs_sibling_program("cryo-netns-up");
                char self[4096] = "";
                if (!helper) {
                        ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
                        if (n <= 0)
                                return cryo_error_errno(err, errno,
                                                        "cannot find cryo's own path for the network hook");
                        self[n] = '\0';
                }
                json_object *hook = json_object_new_object();
                json_object_object_add(hook, "path", json_object_new_string(helper ? helper : self));
                json_object *args = json_object_new_array();
                if (helper)
                        json_object_array_add(args, json_object_new_string("cryo-netns-up"));
                else {
                        json_object_array_add(args, json_object_new_string("cryo"));
                        json_object_array_add(args, json_object_new_string("hook"));
                        json_object_array_add(args, json_object_new_string("netns-up"));
                }
                json_object_object_add(hook, "args", args);
                json_object *prestart = json_object_new_array();
                json_object_array_add(prestart, hook);
                json_object *hooks = json_object_new_object();
                json_object_object_add(hooks, "prestart", prestart);
                json_object_object_add(spec, "hooks", hooks);
        }
        if (criu_conf) {
                json_object *ann = cryo_json_get(spec, "annotations");
                if (!ann) {
                        ann = json_object_new_object();
                        json_object_object_add(spec, "annotations", ann);
                }
                json_object_object_add(ann, "org.criu.config", json_object_new_string(criu_conf));
        }
        *out = steal_pointer(&spec);
        return 0;
}

/* Bind mounts whose source is missing here: recreate it from the copy the
 * dump kept (small files such as Docker's /etc/hosts), or refuse. */
static int check_bind_sources(struct restore *rs, struct cryo_checkpoint *ck, json_object *spec,
                              struct cryo_error **err) {
        json_object *binds = cryo_json_path(ck->manifest, "container/binds");
        json_object *mounts = cryo_json_get(spec, "mounts");
        for (size_t i = 0; mounts && i < json_object_array_length(mounts); i++) {
                json_object *m = json_object_array_get_idx(mounts, i);
                const char *src = cryo_json_str(m, "source", NULL),
                           *dest = cryo_json_str(m, "destination", "");
                if (!src || src[0] != '/' || !container_mount_is_bind(m) || access(src, F_OK) == 0)
                        continue;
                const char *saved = NULL;
                for (size_t j = 0; binds && j < json_object_array_length(binds); j++) {
                        json_object *b = json_object_array_get_idx(binds, j);
                        if (!strcmp(cryo_json_str(b, "destination", ""), dest))
                                saved = cryo_json_str(b, "saved", NULL);
                }
                if (!saved)
                        return cryo_error_set(
                                err, ENOENT,
                                "bind mount source %s (mounted at %s) does not exist on this host: "
                                "create it, or dump with --with-volumes to carry its contents",
                                src, dest);
                _cleanup_free_ char *copy = NULL;
                int r = container_restore_saved_bind(ck, saved, rs->data_dir, &copy, err);
                if (r < 0)
                        return r;
                json_object_object_add(m, "source", json_object_new_string(copy));
        }
        return 0;
}

/* The state directory holds "criu", runc's CRIU work directory (and the
 * post-copy daemon's, which must be the same one: start_lazy_pages()). */
static int make_dirs(struct restore *rs, const char *address, struct cryo_error **err) {
        if (asprintf(&rs->state_dir, CRYO_WORK_DIR "/containerd/%s/%s", rs->ns, rs->id) < 0)
                return cryo_error_set(err, ENOMEM, "out of memory");
        (void) fs_rm_work_dir(rs->state_dir);
        _cleanup_free_ char *work = fs_path_join(rs->state_dir, "criu");
        if (!work)
                return cryo_error_set(err, ENOMEM, "out of memory");
        int r = fs_mkdir_p(work, 0700, err);
        if (r >= 0)
                r = containerd_data_dir_create(address, rs->ns, rs->id, &rs->data_dir, err);
        return r;
}

/*
 * Post-copy: starts CRIU's lazy-pages daemon in the CRIU work directory
 * given to runc (criu_work_path).  runc hands that directory to its CRIU as
 * its work dir, and CRIU's restore connects to "lazy-pages.socket"
 * relative to it (criu/uffd.c), so both must be that one directory; the
 * default (runc's own state dir) is not known before the task exists.
 * Started first thing: its start-up overlaps the snapshot, the container
 * and the task creation, and create_and_start() waits for it to listen.
 */
static int start_lazy_pages(struct cryo_checkpoint *ck, const struct cryo_request *req,
                            const char *state_dir, struct engine_lazy_pages **daemon,
                            struct cryo_error **err) {
        _cleanup_close_ int images_fd = -1;
        int r = ckpt_open_subdir(ck, CRYO_CRIU_DIR, false, &images_fd, err);
        if (r < 0)
                return r;
        _cleanup_free_ char *work = fs_path_join(state_dir, "criu");
        if (!work)
                return cryo_error_set(err, ENOMEM, "out of memory");
        _cleanup_close_ int work_fd = open(work, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (work_fd < 0)
                return cryo_error_errno(err, errno, "cannot open %s", work);
        struct engine_restore_request lr = {
                .images_fd = images_fd,
                .work_fd = work_fd,
                .opts = &req->criu,
                .lazy = &req->lazy->page_server,
        };
        r = engine_lazy_pages_start(&lr, daemon, err);
        return r < 0 ? cryo_error_prefix(err, "post-copy restore") : r;
}

/* Runs the task creation and start; on a CRIU failure, the restore log in
 * the work directory says why, and is kept. */
static int create_and_start(struct restore *rs, struct cryo_checkpoint *ck, const struct cryo_request *req,
                            const struct ctrd_mounts *mounts, const struct ctrd_runc_options *base,
                            bool fresh, bool gated, struct engine_lazy_pages **daemon, uint32_t *pid,
                            char **log_path, const char **verified, struct cryo_error **err) {
        /* The shim resolves the path in its own working directory. */
        _cleanup_free_ char *abs = realpath(ck->path, NULL);
        _cleanup_free_ char *images = abs ? fs_path_join(abs, CRYO_CRIU_DIR) : NULL;
        _cleanup_free_ char *work = fs_path_join(rs->state_dir, "criu");
        _cleanup_free_ char *fifo = fs_path_join(rs->state_dir, "stdin");
        if (!images || !work || !fifo || asprintf(log_path, "file://%s/stdio.log", rs->data_dir) < 0)
                return cryo_error_set(err, ENOMEM, "out of memory");
        if (mkfifo(fifo, 0600) < 0)
                return cryo_error_errno(err, errno, "cannot prepare %s", rs->state_dir);

        struct ctrd_runc_options o = *base;
        if (!fresh) {
                o.criu_image_path = images;
                o.criu_work_path = work;
        }
        struct ctrd_any any = {0};
        int r = ctrd_runc_options_encode(&o, &any, err);
        if (r < 0)
                return r;
        struct ctrd_task_opts t = {
                .container_id = rs->id,
                .rootfs = mounts->items,
                .n_rootfs = mounts->n,
                .stdin_path = fifo,
                .stdout_path = *log_path,
                .stderr_path = *log_path,
                .options = &any,
        };
        uint64_t t0 = cryo_now_usec();
        r = ctrd_task_create(rs->client, &t, NULL, err);
        cryo_stats_add(&ck->stats, CRYO_PHASE_TASK_CREATE, cryo_now_usec() - t0, 0);
        ctrd_any_clear(&any);
        if (r < 0)
                return cryo_error_prefix(err, "creating the task");
        rs->task_created = true;

        /* It must listen before runc's CRIU starts restoring. */
        if (*daemon && (r = engine_lazy_pages_ready(*daemon, err)) < 0)
                return cryo_error_prefix(err, "post-copy restore");
        _cleanup_(resume_gate_freep) struct resume_gate *gate = NULL;
        if (gated && (r = resume_gate_open(work, ck, &gate, err)) < 0)
                return r;
        uint64_t start = cryo_now_usec();
        r = ctrd_task_start(rs->client, rs->id, pid, err);
        uint64_t elapsed = cryo_now_usec() - start;
        if (gate) {
                /* A checkpoint that fails its checksums explains more than
                 * the restore CRIU could not finish once its tree was killed. */
                bool held = false;
                _cleanup_error_ struct cryo_error *bad = NULL;
                if (resume_gate_close(gate, &held, &bad) < 0)
                        return cryo_error_replace(err, &bad);
                /* Not held: CRIU never ran the hook (it failed first, or
                 * the configuration was not read); the checksums passed
                 * all the same. */
                *verified = held ? "pre-resume" : "after-resume";
        }
        cryo_stats_add(&ck->stats, CRYO_PHASE_RESTORE, elapsed, 0);
        if (r < 0) {
                /* A daemon that could not reach the source explains more than
                 * CRIU's restore, which then fails for want of it. */
                _cleanup_error_ struct cryo_error *why = NULL;
                if (*daemon && err && engine_lazy_pages_explain(*daemon, &why) < 0) {
                        cryo_error_replace(err, &why);
                        return cryo_error_prefix(err, "starting the restored task");
                }
                _cleanup_free_ char *cause = NULL, *excerpt = NULL;
                _cleanup_close_ int wfd = open(work, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (wfd >= 0 && engine_log_explain(wfd, CRYO_RESTORE_LOG, &cause, &excerpt) == 0) {
                        cryo_error_freep(err);
                        r = cryo_error_set(err, EIO, "CRIU restore failed: %s", cause);
                        cryo_error_set_detail(err, excerpt);
                }
                return cryo_error_prefix(err, "starting the restored task");
        }
        return 0;
}

/* CRIU's restore log, kept beside the task's stdio log (as Podman keeps
 * its restore.log): what CRIU did is worth having after a success too.
 * Best effort: the restore succeeded whatever happens here. */
static void keep_restore_log(const struct restore *rs, json_object *result) {
        _cleanup_free_ char *from = NULL, *to = fs_path_join(rs->data_dir, CRYO_RESTORE_LOG);
        if (!to || asprintf(&from, "%s/criu/%s", rs->state_dir, CRYO_RESTORE_LOG) < 0)
                return;
        if (rename(from, to) < 0) {
                /* /run is a tmpfs on most hosts: another file system. */
                if (errno != EXDEV)
                        return;
                _cleanup_free_ char *text = NULL;
                size_t len = 0;
                _cleanup_close_ int dir = open(rs->data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (dir < 0 || fs_read_file(AT_FDCWD, from, 256u << 20, &text, &len, NULL) < 0 ||
                    fs_write_file_unsynced(dir, CRYO_RESTORE_LOG, text, len, 0600, NULL) < 0)
                        return;
        }
        json_object_object_add(result, "criu_log", json_object_new_string(to));
}

static uint64_t measured_usec(const struct cryo_stats *s) {
        static const enum cryo_phase parts[] = {CRYO_PHASE_SNAPSHOT, CRYO_PHASE_ROOTFS,
                                                CRYO_PHASE_TASK_CREATE, CRYO_PHASE_RESTORE,
                                                CRYO_PHASE_LAZY_PAGES};
        uint64_t sum = 0;
        for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
                sum += s->phase[parts[i]].usec;
        return sum;
}

int containerd_restore_container(const struct cryo_request *req, struct cryo_checkpoint *ck,
                                 json_object *result, struct cryo_error **err) {
        uint64_t start = cryo_now_usec(), measured = measured_usec(&ck->stats);
        json_object *source = cryo_json_get(ck->manifest, "source");
        json_object *config = NULL, *saved_spec = NULL;
        struct restore rs = {0};
        struct containerd_image image = {0};
        struct ctrd_mounts mounts = {0};
        struct ctrd_runc_options runc = {0};
        _cleanup_json_ json_object *spec = NULL;
        _cleanup_free_ char *criu_conf = NULL, *log_uri = NULL, *gate_hook = NULL;
        _cleanup_ctrd_client_ struct ctrd_client *client = NULL;
        /* Post-copy: fetches the pages while the restored task runs. */
        _cleanup_lazy_pages_ struct engine_lazy_pages *daemon = NULL;
        const char *address = containerd_address(req);
        int r;

        /* A --rootfs-only checkpoint holds no processes: the container
         * starts fresh on its saved filesystem. */
        bool fresh = json_object_get_boolean(cryo_json_get(ck->manifest, "rootfs_only"));
        rs.ns = req->ns ? req->ns : cryo_json_str(source, "namespace", CONTAINERD_DEFAULT_NAMESPACE);
        rs.id = req->new_id ? req->new_id : cryo_json_str(source, "id", NULL);
        if (!rs.id)
                return cryo_error_set(err, EINVAL, "checkpoint %s names no container id: give --id",
                                      ck->path);
        r = ctrd_open(address, rs.ns, &client, err);
        if (r < 0)
                return r;
        rs.client = client;

        struct ctrd_container existing = {0};
        r = ctrd_container_get(client, rs.id, &existing, NULL);
        ctrd_container_clear(&existing);
        if (r >= 0)
                return cryo_error_set(
                        err, EEXIST,
                        "container '%s' already exists in containerd namespace '%s': restore under "
                        "another id with --id NEW-ID, or remove it first",
                        rs.id, rs.ns);

        r = cryo_json_read_file(ck->dirfd, CRYO_SPEC_DUMP, 16u << 20, &saved_spec, err);
        if (r >= 0)
                r = cryo_json_read_file(ck->dirfd, CRYO_CONFIG_DUMP, 64u << 20, &config, err);
        if (r >= 0)
                r = check_image(&rs, cryo_json_get(ck->manifest, "image"), &image, err);
        if (r < 0)
                goto out;

        const char *snapshotter = cryo_json_str(cryo_json_get(config, "containerd"), "snapshotter", "");
        rs.snapshotter = strdup(*snapshotter ? snapshotter : "overlayfs");
        runc.root = (char *) req->runtime_root;
        rs.runc_root =
                req->runtime_root && *req->runtime_root ? req->runtime_root : CONTAINERD_DEFAULT_RUNC_ROOT;
        /* The checksums, when still being computed, go on until runc's CRIU
         * is about to resume the tree, which cryo-criu-hook holds for them;
         * without the hook, or without a tree (a fresh start), they are
         * awaited first. */
        if (ckpt_verify_pending(ck) && (fresh || !(gate_hook = fs_sibling_program("cryo-criu-hook")))) {
                r = ckpt_verify_end(ck, err);
                if (r < 0)
                        goto out;
        }
        r = make_dirs(&rs, address, err);
        if (r < 0)
                goto out;
        if (req->lazy && !fresh) {
                r = start_lazy_pages(ck, req, rs.state_dir, &daemon, err);
                if (r < 0)
                        goto fail;
        }
        criu_conf = write_criu_conf(&rs, ck, &req->criu, spec_private_netns(saved_spec), req->lazy != NULL,
                                    container_restore_cgroup_mode(ck, &req->criu), gate_hook, err);
        if (!criu_conf && err && *err) {
                r = -(*err)->code;
                goto fail;
        }
        r = build_spec(&rs, saved_spec, criu_conf, &spec, err);
        if (r >= 0)
                r = check_bind_sources(&rs, ck, spec, err);
        if (r < 0)
                goto fail;

        struct ctrd_container rec = {
                .id = (char *) rs.id,
                .image = image.name,
                .runtime_name = (char *) "io.containerd.runc.v2",
                .snapshotter = rs.snapshotter,
                .snapshot_key = (char *) rs.id,
        };
        const char *spec_text = json_object_to_json_string_ext(spec, JSON_C_TO_STRING_PLAIN);
        rec.spec.value = (uint8_t *) spec_text;
        rec.spec.len = strlen(spec_text);
        ctrd_labels_set(&rec.labels, CONTAINERD_RESTORED_LABEL, cryo_json_str(ck->manifest, "name", ""));
        if (runc.root) {
                r = ctrd_runc_options_encode(&runc, &rec.runtime_options, err);
                if (r < 0) {
                        ctrd_labels_clear(&rec.labels);
                        goto fail;
                }
        }
        r = ctrd_container_create(client, &rec, err);
        ctrd_labels_clear(&rec.labels);
        ctrd_any_clear(&rec.runtime_options);
        if (r < 0) {
                r = cryo_error_prefix(err, "creating container %s", rs.id);
                goto fail;
        }
        rs.container_created = true;
        /* The container comes first and names its snapshot, which keeps the
         * snapshot from containerd's garbage collector from the moment it
         * is prepared: no lease needed (two metadata writes, ~4 ms). */
        r = prepare_rootfs(&rs, ck, image.chain_id, &mounts, err);
        if (r < 0)
                goto fail;

        uint32_t pid = 0;
        const char *verified = NULL;
        r = create_and_start(&rs, ck, req, &mounts, &runc, fresh, gate_hook != NULL, &daemon, &pid, &log_uri,
                             &verified, err);
        if (r < 0)
                goto fail;
        if (daemon) {
                /* The task runs; its memory is complete only once every page
                 * has arrived (the daemon kills the tree if not). */
                uint64_t fetch_start = cryo_now_usec();
                r = engine_lazy_pages_wait(daemon, (pid_t) pid, err);
                cryo_stats_add(&ck->stats, CRYO_PHASE_LAZY_PAGES, cryo_now_usec() - fetch_start, 0);
                if (r < 0)
                        goto fail;
        }
        struct ctrd_process task = {0};
        r = ctrd_task_get(client, rs.id, &task, err);
        if (r >= 0 && task.status != CTRD_TASK_RUNNING)
                r = cryo_error_set(err, ESRCH, "the restored task is %s, not running",
                                   ctrd_task_status_name(task.status));
        ctrd_process_clear(&task);
        if (r < 0)
                goto fail;
        if (req->lazy) {
                /* Last: once the source hears this, it ends its copy, and this
                 * one is the only one left.  Any failure before unwinds it. */
                bool maybe_delivered = false;
                r = cryo_lazy_send_done(
                        req->lazy->page_server.address, req->lazy->page_server.port,
                        cryo_json_str(cryo_json_get(ck->manifest, "lazy_pages"), "token", ""), 30,
                        &maybe_delivered, err);
                if (r < 0 && !maybe_delivered) {
                        /* The source resumes when it hears nothing: one copy only. */
                        (void) cryo_error_prefix(
                                err, "the restored container %s was removed, the source resumes", rs.id);
                        goto fail;
                }
                if (r < 0) {
                        (void) cryo_error_prefix(
                                err, "the source may have ended: the restored container %s (pid %u) runs on",
                                rs.id, pid);
                        goto out;
                }
        }

        json_object_object_add(result, "id", json_object_new_string(rs.id));
        json_object_object_add(result, "namespace", json_object_new_string(rs.ns));
        json_object_object_add(result, "address", json_object_new_string(address));
        json_object_object_add(result, "pid", json_object_new_int((int) pid));
        json_object_object_add(result, "image", json_object_new_string(image.name));
        json_object_object_add(result, "log", json_object_new_string(log_uri + strlen("file://")));
        if (verified)
                json_object_object_add(result, "verified", json_object_new_string(verified));
        if (!fresh)
                keep_restore_log(&rs, result);
        unsigned pruned = 0;
        (void) containerd_data_dirs_prune(client, address, rs.ns, &pruned);
        if (pruned)
                json_object_object_add(result, "pruned_data_dirs", json_object_new_int((int) pruned));
        restore_clear(&rs);
        /* The rest: containerd calls other than the measured ones, the spec. */
        cryo_stats_add(&ck->stats, CRYO_PHASE_RPC,
                       cryo_now_usec() - start - (measured_usec(&ck->stats) - measured), 0);
        goto out;
fail:
        restore_unwind(&rs);
        if (ckpt_verify_pending(ck)) {
                /* Whatever failed may have been a bad image: say so then. */
                _cleanup_error_ struct cryo_error *bad = NULL;
                if (ckpt_verify_end(ck, &bad) < 0)
                        r = cryo_error_replace(err, &bad);
        }
out:
        restore_clear(&rs);
        containerd_image_clear(&image);
        ctrd_mounts_clear(&mounts);
        json_object_put(saved_spec);
        json_object_put(config);
        return r;
}
