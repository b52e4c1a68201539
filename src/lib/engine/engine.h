/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <signal.h>

#include <json-c/json.h>
#include <stdbool.h>
#include <sys/types.h>

#include "util/error.h"
#include "util/stats.h"

/*
 * The CRIU engine.  cryo drives CRIU through libcriu (CRIU's RPC service,
 * "criu swrk", behind a C API): one process per dump or restore, options
 * passed as a protobuf message instead of a command line, and the images
 * directory passed as a file descriptor.  See docs/engine.md.
 */

/* Options a user chooses; recorded in the manifest and reused on restore. */
struct engine_options {
        bool leave_running;
        bool tcp_established;
        bool tcp_close; /* restore only: drop established connections */
        bool tcp_skip_in_flight;
        bool file_locks;
        bool shell_job;
        bool ext_unix_sk;
        bool link_remap;
        unsigned ghost_limit; /* bytes; 0 = CRIU's default (1 MiB) */
        char *cgroup_mode;    /* "soft", "full", "strict", "ignore"; NULL = CRIU default */
        char **externals;     /* --external KEY, NULL-terminated */
        int log_level;        /* 0-4; 0 = engine default */
};

void engine_options_clear(struct engine_options *o);
json_object *engine_options_to_json(const struct engine_options *o);
int engine_options_from_json(json_object *j, struct engine_options *o, struct cryo_error **err);
/* Appends to o->externals. */
int engine_options_add_external(struct engine_options *o, const char *key);

struct engine_pair {
        const char *key;
        const char *value;
};

struct engine_inherit_fd {
        int fd;
        const char *key;
};

/*
 * Post-copy ("lazy") migration through CRIU's page server (lazy.c,
 * docs/migration.md).  On the source, CRIU dumps everything but the memory
 * pages and then serves them; on the target a lazy-pages daemon fetches
 * them through userfaultfd while the restored tree already runs.
 */
struct engine_lazy_dump;
#define ENGINE_LAZY_PAGES_LOG "lazy-pages.log" /* the target daemon's, beside restore.log */
struct engine_lazy_request {
        const char *address; /* dump: address to listen on (NULL = all); restore: the source */
        int port;
        /* Dump: where CRIU writes dump.log and stats-dump.  Not the checkpoint:
         * CRIU writes to them after the checkpoint is committed. */
        int work_fd;
        /* Dump, out: the CRIU process that still serves the pages. */
        struct engine_lazy_dump *serving;
};

struct engine_dump_request {
        pid_t pid;
        int images_fd;    /* CRIU images */
        int work_fd;      /* dump.log and stats-dump land here */
        const char *root; /* container root, or NULL */
        const struct engine_options *opts;
        const struct engine_pair *ext_mounts; /* {mountpoint, key}, ends with {NULL} */
        const char *const *externals;         /* plugin-provided, e.g. "net[4026531840]:extRootNetNS" */
        const char *freeze_cgroup;
        bool manage_cgroups;
        bool orphan_pts_master;
        int empty_ns; /* CLONE_NEW* namespaces not to dump */
        /* Leave the tree stopped (SIGSTOP) after a successful dump instead
         * of killing or resuming it, so the caller can kill it only once the
         * checkpoint is safely on disk (or resume it: leave_running, or a
         * failure), and capture the filesystem in the same state.  A failed
         * engine_dump() may also leave it stopped (a failure after CRIU's
         * part): the caller resumes it then too. */
        bool leave_stopped;
        /* No iptables lock of the tree's network namespace (CRIU's
         * --network-lock skip): the lock matters for established TCP
         * connections only, and with leave_stopped CRIU would leave it in
         * place (it unlocks only a tree it resumes itself). */
        bool network_lock_skip;
        /* Optional: called at CRIU's "pre-dump" notification, after its
         * start-up (kernel probing) and just before it seizes the tree; its
         * return value is ignored.  For a caller that freezes the tree itself
         * and wants it frozen no longer than CRIU would. */
        void (*before_seize)(void *arg);
        void *before_seize_arg;
        /* Out, optional: how many expired periodic timerfds the images
         * needed fixed (engine_fix_expired_timerfds()). */
        unsigned *timerfds_fixed;
        /* Post-copy: engine_dump() returns once the images (all but the
         * pages) are complete and the page server listens, with
         * lazy->serving set; engine_lazy_dump_wait() waits for the target. */
        struct engine_lazy_request *lazy;
};

struct engine_restore_request {
        int images_fd;
        int work_fd; /* restore.log lands here */
        const char *root;
        const struct engine_options *opts;
        const struct engine_pair *ext_mounts;        /* {key, host path}, ends with {NULL} */
        const struct engine_inherit_fd *inherit_fds; /* ends with {-1, NULL} */
        const struct engine_pair *cg_roots;          /* {controller or NULL, path} */
        bool restore_detached;                       /* true: the tree is reparented away from us */
        /* Optional: called at CRIU's pre-resume, the tree restored but in
         * ptrace stop, not one instruction run.  Negative: it must never
         * run; the engine ends it and CRIU (engine_end_held_tree) and
         * fails with this error.  *resumed_after tells the caller it ran. */
        int (*before_resume)(void *arg, struct cryo_error **err);
        void *before_resume_arg;
        bool *resumed_after; /* out, optional: before_resume returned 0 */
        /* Post-copy: fetch the pages from the source's page server; returns
         * once all are fetched (the tree runs meanwhile), or kills the tree
         * if the transfer fails. */
        const struct engine_lazy_request *lazy;
};

/*
 * Ends a restored tree that CRIU holds in ptrace stop (at pre-resume), and
 * that CRIU, so that the tree never runs.  The tree alone cannot be
 * killed: its tasks would die in ptrace stop, CRIU's detach would fail,
 * and CRIU's error path waits for the root alone while the other dead
 * tasks, still traced, wait for CRIU to reap them (seen: 30 s, until
 * runc's shim gave up).  With SIGKILL pending on every task first, CRIU's
 * death, which lets its tracees go, cannot let one of them run: they die
 * on their way back to user space.
 */
void engine_end_held_tree(pid_t root);

/* Fills FREEZE, FROZEN, MEMORY_DUMP and DUMP phases of `stats`. */
int engine_dump(const struct engine_dump_request *req, struct cryo_stats *stats, struct cryo_error **err);
/* Returns the pid of the restored root in *pid.  Fills RESTORE. */
int engine_restore(const struct engine_restore_request *req, pid_t *pid, struct cryo_stats *stats,
                   struct cryo_error **err);

/*
 * Waits until CRIU's page server is done: the target's daemon fetched every
 * page, or disconnected (CRIU cannot tell); the source tree is then left
 * stopped (SIGSTOP), for the caller to kill or resume.  If no target
 * connects within `timeout_sec` (0 = no limit), stops CRIU, which leaves the
 * tree running, and fails with -ETIMEDOUT.  If the transfer fails, CRIU
 * resumes the tree.  Fills FROZEN/MEMORY_DUMP from CRIU's statistics.
 */
int engine_lazy_dump_wait(struct engine_lazy_dump *l, unsigned timeout_sec,
                          const volatile sig_atomic_t *cancel, struct cryo_stats *stats,
                          struct cryo_error **err);
/* Stops a CRIU still serving pages (the source tree then runs on). */
void engine_lazy_dump_free(struct engine_lazy_dump *l);

/*
 * The host's cgroup mounts as CRIU's cgroup yard (cgroup-yard.c):
 * "/sys/fs/cgroup" when every hierarchy of `pid` (0: this process) is
 * mounted there at its root under the name CRIU looks for, else NULL (CRIU
 * then mounts its own).  engine_cgroup_yard_fits() is the test, on the
 * texts of /proc/PID/cgroup and /proc/self/mountinfo.
 */
const char *engine_cgroup_yard(pid_t pid);
bool engine_cgroup_yard_fits(const char *proc_cgroup, const char *mountinfo, const char *yard);

/*
 * The target's lazy-pages daemon, started before the restore: it listens on
 * "lazy-pages.socket" in req->work_fd, where a restoring CRIU (cryo's own
 * through libcriu, or runc's for a container: its criu_work_path) looks for
 * it, fetches the pages of req->lazy's source and exits once all are in.
 * Uses req->images_fd, work_fd, opts and lazy.
 */
struct engine_lazy_pages;
/* Starts it and returns at once; engine_lazy_pages_ready() waits until it
 * listens (or explains why it died), and must return 0 before the restore
 * starts.  CRIU's start-up (kernel probing) overlaps the caller's work. */
int engine_lazy_pages_start(const struct engine_restore_request *req, struct engine_lazy_pages **out,
                            struct cryo_error **err);
int engine_lazy_pages_ready(struct engine_lazy_pages *d, struct cryo_error **err);
/* Waits for every page to arrive; on failure kills the restored tree `pid`. */
int engine_lazy_pages_wait(struct engine_lazy_pages *d, pid_t pid, struct cryo_error **err);
/* After a failed restore: if the daemon failed too, its cause (it could not
 * reach the source, say) explains more; returns < 0 with *err set then. */
int engine_lazy_pages_explain(struct engine_lazy_pages *d, struct cryo_error **err);
void engine_lazy_pages_free(struct engine_lazy_pages *d);
static inline void engine_lazy_pages_freep(struct engine_lazy_pages **d) {
        engine_lazy_pages_free(*d);
        *d = NULL;
}
#define _cleanup_lazy_pages_ __attribute__((cleanup(engine_lazy_pages_freep)))

/*
 * Works around criu issue #3162 in a fresh dump: a periodic timerfd that had
 * expired, unread, when the tree was frozen is recorded with a next expiry
 * of 0, and CRIU would restore it disarmed.  Each such entry (in files.img,
 * or timerfd.img of older layouts) gets a next expiry of 1 ns, so it fires
 * at once on restore and re-arms with its interval when read.  The images
 * are rewritten atomically, only if something changed; *fixed (optional)
 * counts the entries changed.  engine_dump() calls it.
 */
int engine_fix_expired_timerfds(int images_fd, unsigned *fixed, struct cryo_error **err);

/* "4.2.1" */
int engine_criu_version(char **out, struct cryo_error **err);
int engine_criu_version_number(void);
/* The same, from the "Version: X.Y[.Z]" line near the top of a CRIU log (log
 * level 3 or more): no CRIU run of its own.  -ENOENT if it is not there. */
int engine_log_criu_version(int dirfd, const char *log_name, char **out);
/* CRIU feature probe for `cryo check`. */
int engine_check(json_object **out, struct cryo_error **err);

/*
 * The lines of a CRIU log that explain a failure ("Error (...)" lines, with
 * timestamps and source locations stripped), newest last; *cause is the
 * most telling single line.  Used so no failure says just "criu failed".
 */
int engine_log_explain(int dirfd, const char *log_name, char **cause, char **excerpt);
