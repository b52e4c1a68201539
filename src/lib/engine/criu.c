/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <criu/criu.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "criu-stats.pb-c.h"
#include "engine/engine.h"
#include "engine/internal.h"
#include "format/layout.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/proc.h"

#define DEFAULT_LOG_LEVEL 4

static void criu_opts_freep(criu_opts **o) {
        if (*o)
                criu_local_free_opts(*o);
}
#define _cleanup_criu_opts_ __attribute__((cleanup(criu_opts_freep)))

static int set_common(criu_opts *c, const struct engine_options *o, const char *log_name,
                      struct cryo_error **err) {
        criu_local_set_log_level(c, o->log_level > 0 ? o->log_level : DEFAULT_LOG_LEVEL);
        if (criu_local_set_log_file(c, log_name) < 0)
                return cryo_error_set(err, ENOMEM, "out of memory");
        criu_local_set_tcp_established(c, o->tcp_established);
        criu_local_set_tcp_skip_in_flight(c, o->tcp_skip_in_flight);
        criu_local_set_file_locks(c, o->file_locks);
        criu_local_set_shell_job(c, o->shell_job);
        criu_local_set_ext_unix_sk(c, o->ext_unix_sk);
        criu_local_set_link_remap(c, o->link_remap);
        if (o->ghost_limit)
                criu_local_set_ghost_limit(c, o->ghost_limit);
        if (o->cgroup_mode) {
                static const struct {
                        const char *name;
                        enum criu_cg_mode mode;
                } modes[] = {
                        {"soft", CRIU_CG_MODE_SOFT},     {"full", CRIU_CG_MODE_FULL},
                        {"strict", CRIU_CG_MODE_STRICT}, {"ignore", CRIU_CG_MODE_IGNORE},
                        {"props", CRIU_CG_MODE_PROPS},
                };
                bool found = false;
                for (size_t i = 0; i < ARRAY_SIZE(modes); i++)
                        if (!strcmp(modes[i].name, o->cgroup_mode)) {
                                criu_local_set_manage_cgroups(c, true);
                                criu_local_set_manage_cgroups_mode(c, modes[i].mode);
                                found = true;
                        }
                if (!found)
                        return cryo_error_set(err, EINVAL, "unknown cgroup mode '%s'", o->cgroup_mode);
        }
        for (char **e = o->externals; e && *e; e++)
                if (criu_local_add_external(c, *e) < 0)
                        return cryo_error_set(err, ENOMEM, "out of memory");
        return 0;
}

/* Where CRIU handles cgroups, the host's own mounts of them (cgroup-yard.c):
 * not one mount per hierarchy per run, the container frozen meanwhile. */
static int set_cgroup_yard(criu_opts *c, bool cgroups_handled, pid_t pid, struct cryo_error **err) {
        const char *yard = cgroups_handled ? engine_cgroup_yard(pid) : NULL;
        if (yard && criu_local_add_cg_yard(c, yard) < 0)
                return cryo_error_set(err, ENOMEM, "out of memory");
        return 0;
}

/* Turns a failed CRIU run into an error whose message names the cause
 * found in CRIU's own log, with the last error lines as detail. */
int engine_criu_failure(struct cryo_error **err, int rc, const char *what, int work_fd,
                        const char *log_name) {
        _cleanup_free_ char *cause = NULL, *excerpt = NULL;
        int code = rc < 0 ? -rc : EIO;
        /* libcriu reports RPC-level failures as EBADE/ECOMM, not the cause. */
        if (code == EBADE || code == ECOMM || code == EBADMSG)
                code = EIO;
        if (engine_log_explain(work_fd, log_name, &cause, &excerpt) == 0) {
                int r = cryo_error_set(err, code, "CRIU %s failed: %s", what, cause);
                cryo_error_set_detail(err, excerpt);
                return r;
        }
        return cryo_error_set(err, code, "CRIU %s failed (libcriu returned %d) and left no error in %s",
                              what, rc, log_name);
}

static uint64_t page_size(void) {
        long p = sysconf(_SC_PAGESIZE);
        return p > 0 ? (uint64_t) p : 4096;
}

/* CRIU measures the phases it owns (freeze, frozen time, memory dump)
 * itself and writes them to stats-dump; those are the numbers to record, as
 * only CRIU knows when the tree stopped.  Except a timer CRIU never started,
 * which reads as the time since 1970 truncated to 32 bits (a post-copy
 * dump's frozen time, 40 minutes and more): what exceeds `bound_usec`, the
 * time CRIU ran, is left out. */
static void add_criu_time(struct cryo_stats *stats, enum cryo_phase p, uint64_t usec, uint64_t bytes,
                          uint64_t bound_usec) {
        if (usec <= bound_usec)
                cryo_stats_add(stats, p, usec, bytes);
}

void engine_read_dump_stats(int dirfd, uint64_t bound_usec, struct cryo_stats *stats) {
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        if (fs_read_file(dirfd, CRYO_STATS_DUMP, 1 << 16, &buf, &len, NULL) < 0 || len < 12)
                return;
        /* Layout: service magic, stats magic, u32 size, StatsEntry. */
        uint32_t size;
        memcpy(&size, buf + 8, sizeof(size));
        if (size > len - 12)
                return;
        StatsEntry *e = stats_entry__unpack(NULL, size, (const uint8_t *) buf + 12);
        if (!e)
                return;
        if (e->dump) {
                DumpStatsEntry *d = e->dump;
                add_criu_time(stats, CRYO_PHASE_FREEZE, d->freezing_time, 0, bound_usec);
                add_criu_time(stats, CRYO_PHASE_FROZEN, d->frozen_time, 0, bound_usec);
                add_criu_time(stats, CRYO_PHASE_MEMORY_DUMP, (uint64_t) d->memdump_time + d->memwrite_time,
                              d->pages_written * page_size(), bound_usec);
        }
        stats_entry__free_unpacked(e, NULL);
}

/* libcriu has no setter for leave-stopped or lazy-pages, but CRIU reads a
 * configuration file named in the RPC request; a memfd holds it so nothing
 * touches disk. */
static int set_config(criu_opts *c, const char *conf, int *memfd, struct cryo_error **err) {
        int fd = memfd_create("cryo-criu.conf", MFD_CLOEXEC);
        if (fd < 0)
                return cryo_error_errno(err, errno, "memfd_create");
        *memfd = fd;
        if (write(fd, conf, strlen(conf)) != (ssize_t) strlen(conf))
                return cryo_error_errno(err, errno, "cannot write CRIU configuration");
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/fd/%d", getpid(), fd);
        if (criu_local_set_config_file(c, path) < 0)
                return cryo_error_set(err, ENOMEM, "out of memory");
        return 0;
}

/* libcriu's notification callback has no argument of the caller's: the
 * request of the dump in progress on this thread. */
static _Thread_local const struct engine_dump_request *notify_req;

static int dump_notify(char *action, criu_notify_arg_t na) {
        (void) na;
        if (notify_req && notify_req->before_seize && !strcmp(action, "pre-dump"))
                notify_req->before_seize(notify_req->before_seize_arg);
        return 0;
}

int engine_dump(const struct engine_dump_request *req, struct cryo_stats *stats, struct cryo_error **err) {
        if (req->lazy)
                /* libcriu would block for the whole page transfer: see lazy.c. */
                return engine_lazy_dump_start(req, stats, err);
        _cleanup_criu_opts_ criu_opts *c = NULL;
        if (criu_local_init_opts(&c) < 0)
                return cryo_error_set(err, ENOMEM, "cannot set up libcriu");

        criu_local_set_pid(c, req->pid);
        criu_local_set_images_dir_fd(c, req->images_fd);
        criu_local_set_work_dir_fd(c, req->work_fd);
        /* With leave_stopped, "running" is the caller's SIGCONT after the
         * rest of the checkpoint (the filesystem) is taken from the same
         * stopped state. */
        criu_local_set_leave_running(c, req->opts->leave_running && !req->leave_stopped);
        criu_local_set_orphan_pts_master(c, req->orphan_pts_master);
        int r = set_common(c, req->opts, CRYO_DUMP_LOG, err);
        if (r < 0)
                return r;
        _cleanup_close_ int conf_fd = -1;
        if (req->leave_stopped) {
                r = set_config(c, "leave-stopped\n", &conf_fd, err);
                if (r < 0)
                        return r;
        }
        if (req->root && criu_local_set_root(c, req->root) < 0)
                return cryo_error_set(err, ENOMEM, "out of memory");
        if (req->manage_cgroups)
                criu_local_set_manage_cgroups(c, true);
        r = set_cgroup_yard(c, req->manage_cgroups || req->opts->cgroup_mode, req->pid, err);
        if (r < 0)
                return r;
        if (req->empty_ns)
                criu_local_set_empty_ns(c, req->empty_ns);
        if (req->network_lock_skip)
                criu_local_set_network_lock(c, CRIU_NETWORK_LOCK_SKIP);
        if (req->freeze_cgroup && criu_local_set_freeze_cgroup(c, req->freeze_cgroup) < 0)
                return cryo_error_set(err, ENOMEM, "out of memory");
        for (const struct engine_pair *m = req->ext_mounts; m && m->key; m++)
                if (criu_local_add_ext_mount(c, m->key, m->value) < 0)
                        return cryo_error_set(err, ENOMEM, "out of memory");
        for (const char *const *e = req->externals; e && *e; e++)
                if (criu_local_add_external(c, *e) < 0)
                        return cryo_error_set(err, ENOMEM, "out of memory");

        if (req->before_seize)
                criu_local_set_notify_cb(c, dump_notify);
        uint64_t start = cryo_now_usec();
        notify_req = req;
        r = criu_local_dump(c);
        notify_req = NULL;
        uint64_t elapsed = cryo_now_usec() - start;
        if (r < 0)
                return engine_criu_failure(err, r, "dump", req->work_fd, CRYO_DUMP_LOG);

        unsigned timerfds_fixed = 0;
        r = engine_fix_expired_timerfds(req->images_fd, &timerfds_fixed, err);
        if (r < 0)
                /* The tree may be left stopped: the caller resumes it. */
                return cryo_error_prefix(err, "cannot fix expired timerfds in the CRIU images");
        if (req->timerfds_fixed)
                *req->timerfds_fixed = timerfds_fixed;

        uint64_t bytes = 0;
        (void) fs_tree_size(req->images_fd, &bytes);
        cryo_stats_add(stats, CRYO_PHASE_DUMP, elapsed, bytes);
        /* CRIU writes stats-dump into its work directory, which is where
         * the de-facto layout keeps it: beside the images, not among them. */
        engine_read_dump_stats(req->work_fd, elapsed, stats);
        return 0;
}

void engine_end_held_tree(pid_t root) {
        /* Read before the kills: a dead task has no tracer. */
        pid_t criu = proc_tracer(root);
        _cleanup_free_ struct cryo_proc *procs = NULL;
        size_t n = 0;
        /* In ptrace stop: the tree cannot fork meanwhile. */
        if (proc_tree_collect(root, &procs, &n, NULL) >= 0)
                for (size_t i = 0; i < n; i++)
                        (void) kill(procs[i].pid, SIGKILL);
        (void) kill(root, SIGKILL);
        if (criu > 1)
                (void) kill(criu, SIGKILL);
}

/* The restore in progress on this thread, for restore_notify(). */
struct restore_notify {
        const struct engine_restore_request *req;
        pid_t root;
        bool asked;
        int result;
        struct cryo_error *err;
};
static _Thread_local struct restore_notify *restore_state;

static int restore_notify(char *action, criu_notify_arg_t na) {
        struct restore_notify *n = restore_state;
        if (!n)
                return 0;
        /* setup-namespaces and post-restore carry the root's pid. */
        if (criu_notify_pid(na) > 0)
                n->root = criu_notify_pid(na);
        if (strcmp(action, "pre-resume") != 0)
                return 0;
        n->asked = true;
        n->result = n->req->before_resume(n->req->before_resume_arg, &n->err);
        if (n->result < 0 && n->root > 0)
                engine_end_held_tree(n->root);
        return 0;
}

int engine_restore(const struct engine_restore_request *req, pid_t *pid, struct cryo_stats *stats,
                   struct cryo_error **err) {
        _cleanup_criu_opts_ criu_opts *c = NULL;
        if (criu_local_init_opts(&c) < 0)
                return cryo_error_set(err, ENOMEM, "cannot set up libcriu");

        criu_local_set_images_dir_fd(c, req->images_fd);
        criu_local_set_work_dir_fd(c, req->work_fd);
        int r = set_common(c, req->opts, CRYO_RESTORE_LOG, err);
        if (r < 0)
                return r;
        criu_local_set_tcp_close(c, req->opts->tcp_close);
        /* The daemon that fetches the pages must listen before the restore
         * starts; it runs until every page has arrived. */
        _cleanup_lazy_pages_ struct engine_lazy_pages *lazy = NULL;
        _cleanup_close_ int conf_fd = -1;
        if (req->lazy) {
                r = engine_lazy_pages_start(req, &lazy, err);
                if (r >= 0)
                        r = engine_lazy_pages_ready(lazy, err);
                if (r < 0)
                        return r;
                r = set_config(c, "lazy-pages\n", &conf_fd, err);
                if (r < 0)
                        return r;
        }
        if (req->root && criu_local_set_root(c, req->root) < 0)
                return cryo_error_set(err, ENOMEM, "out of memory");
        for (const struct engine_pair *m = req->ext_mounts; m && m->key; m++)
                if (criu_local_add_ext_mount(c, m->key, m->value) < 0)
                        return cryo_error_set(err, ENOMEM, "out of memory");
        for (const struct engine_inherit_fd *f = req->inherit_fds; f && f->key; f++)
                if (criu_local_add_inherit_fd(c, f->fd, f->key) < 0)
                        return cryo_error_set(err, ENOMEM, "out of memory");
        r = set_cgroup_yard(c, req->opts->cgroup_mode && strcmp(req->opts->cgroup_mode, "ignore"), 0, err);
        if (r < 0)
                return r;
        for (const struct engine_pair *g = req->cg_roots; g && g->value; g++)
                if (criu_local_add_cg_root(c, g->key, g->value) < 0)
                        return cryo_error_set(err, ENOMEM, "out of memory");

        struct restore_notify notify = {.req = req};
        if (req->before_resume)
                criu_local_set_notify_cb(c, restore_notify);
        uint64_t start = cryo_now_usec();
        restore_state = &notify;
        r = req->restore_detached ? criu_local_restore(c) : criu_local_restore_child(c);
        restore_state = NULL;
        uint64_t elapsed = cryo_now_usec() - start;
        _cleanup_error_ struct cryo_error *refused = steal_pointer(&notify.err);
        if (notify.result < 0) {
                /* The tree never ran; what refused it explains the rest. */
                if (err && !*err)
                        *err = steal_pointer(&refused);
                return notify.result;
        }
        if (req->resumed_after)
                *req->resumed_after = notify.asked;
        if (r < 0) {
                int e = lazy ? engine_lazy_pages_explain(lazy, err) : 0;
                return e < 0 ? e : engine_criu_failure(err, r, "restore", req->work_fd, CRYO_RESTORE_LOG);
        }
        cryo_stats_add(stats, CRYO_PHASE_RESTORE, elapsed, 0);
        if (lazy) {
                /* The tree runs; its memory is complete only once every page
                 * has arrived. */
                uint64_t fetch_start = cryo_now_usec();
                int w = engine_lazy_pages_wait(lazy, r, err);
                cryo_stats_add(stats, CRYO_PHASE_LAZY_PAGES, cryo_now_usec() - fetch_start, 0);
                if (w < 0)
                        return w;
        }
        *pid = r;
        return 0;
}

int engine_criu_version_number(void) {
        _cleanup_criu_opts_ criu_opts *c = NULL;
        /* criu_get_version() needs initialized options, or it crashes. */
        if (criu_local_init_opts(&c) < 0)
                return -ENOMEM;
        return criu_local_get_version(c);
}

int engine_criu_version(char **out, struct cryo_error **err) {
        int v = engine_criu_version_number();
        if (v <= 0)
                return cryo_error_set(err, ENOENT,
                                      "cannot run CRIU: is it installed (criu >= 4.2) and is this root?");
        if (asprintf(out, "%d.%d.%d", v / 10000, (v / 100) % 100, v % 100) < 0)
                return cryo_error_set(err, ENOMEM, "out of memory");
        return 0;
}

int engine_check(json_object **out, struct cryo_error **err) {
        _cleanup_free_ char *version = NULL;
        int r = engine_criu_version(&version, err);
        if (r < 0)
                return r;
        json_object *o = json_object_new_object();
        json_object_object_add(o, "version", json_object_new_string(version));
        json_object_object_add(o, "version_ok",
                               json_object_new_boolean(engine_criu_version_number() >= 40200));

        _cleanup_criu_opts_ criu_opts *c = NULL;
        struct criu_feature_check f = {.mem_track = true, .lazy_pages = true, .pidfd_store = true};
        if (criu_local_init_opts(&c) == 0 && criu_local_feature_check(c, &f, sizeof(f)) == 0) {
                json_object *feat = json_object_new_object();
                json_object_object_add(feat, "mem_track", json_object_new_boolean(f.mem_track));
                json_object_object_add(feat, "lazy_pages", json_object_new_boolean(f.lazy_pages));
                json_object_object_add(feat, "pidfd_store", json_object_new_boolean(f.pidfd_store));
                json_object_object_add(o, "features", feat);
        }
        /* CRIU keeps what it probed of the kernel (~40 ms per run here,
         * dump and restore alike) in /run/criu.kdat, but only if /run is a
         * tmpfs, which a reboot empties; systemd mounts one, some container
         * images do not. */
        struct statfs run;
        json_object_object_add(
                o, "kdat_cache",
                json_object_new_boolean(statfs("/run", &run) == 0 && run.f_type == TMPFS_MAGIC));
        *out = o;
        return 0;
}
