/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Post-copy (lazy-pages) migration.  See docs/migration.md.
 *
 * Why the `criu` command here, when the rest of the engine uses libcriu:
 *
 *  - A lazy dump does not end when the images are written: CRIU goes on
 *    serving the pages until the target has fetched them all, which is the
 *    whole migration.  criu_local_dump() would block for all of it, while
 *    cryo must commit the checkpoint and tell the user it is ready as soon
 *    as the images are complete, and must be able to give up on a target
 *    that never comes.  Run as a command, CRIU says "images complete,
 *    page server listening" through --status-fd, and cryo owns its pid: it
 *    can wait, time out and stop it.  (libcriu's notify callback has no
 *    user data, and cryo would not know the swrk pid to stop it.)
 *  - The target's `criu lazy-pages` daemon has no RPC request type at all.
 *  - libcriu has no setter for lazy-pages or the page server address of a
 *    lazy dump.
 *
 * The restore itself still goes through libcriu (criu.c), with lazy-pages
 * set through its configuration file, as leave-stopped is.
 *
 * Every CRIU run is given its directories as /proc/<cryo>/fd/<n>, so that
 * the paths stay right even once the checkpoint is renamed into place.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine/internal.h"
#include "format/layout.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/proc.h"

#define LAZY_PAGES_LOG    ENGINE_LAZY_PAGES_LOG
#define DEFAULT_LOG_LEVEL 4
/* The lazy dump's log is written while the tree stands still, and at 4
 * CRIU lists every page pipe: ~10,000 lines for 2 GiB, ~40 ms of the
 * downtime here.  At 3 it still has every step and error. */
#define LAZY_DUMP_LOG_LEVEL 3

/* CRIU's lazy page server sizes its pipes to PIPE_MAX_SIZE pages, which
 * the kernel rounds up to 1024 pages.  Without CAP_SYS_RESOURCE that needs
 * fs.pipe-max-size >= 4 MiB; criu 4.2.1 ignores the failed F_SETPIPE_SZ and
 * the transfer then fails with "splice: Bad file descriptor", after the
 * target already started.  So cryo checks it before it freezes anything. */
#define LAZY_PIPE_BYTES (1024ull * 4096)

struct engine_lazy_dump {
        pid_t pid;
        int work_fd;
        int log_fd;
        uint64_t log_off;
        bool connected;
        char *freeze_cgroup; /* a container's freezer cgroup, or NULL */
        /* It was running when the dump started: whatever freezer state
         * CRIU leaves behind (FROZEN, if cryo froze it first), thaw it. */
        bool thaw_at_end;
        uint64_t started_usec; /* when CRIU was started */
};

struct engine_lazy_pages {
        pid_t pid;
        int work_fd;
        /* Until it is ready: its status pipe, and the images directory it
         * opens by /proc/<cryo>/fd path while it starts. */
        int status_fd;
        int images_fd;
};

/* argv of at most this many entries, each owned.  A Docker container on
 * cgroup v1 has some 40 external mounts, one entry each. */
enum { ARGV_MAX = 1024 };
struct argv {
        char *v[ARGV_MAX + 1];
        size_t n;
        bool oom;
        bool full;
};

static void argv_free(struct argv *a) {
        for (size_t i = 0; i < a->n; i++)
                free(a->v[i]);
        a->n = 0;
}

static void argv_add(struct argv *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void argv_add(struct argv *a, const char *fmt, ...) {
        if (a->n >= ARGV_MAX) {
                a->full = true;
                return;
        }
        va_list ap;
        va_start(ap, fmt);
        if (vasprintf(&a->v[a->n], fmt, ap) < 0)
                a->oom = true;
        else
                a->n++;
        va_end(ap);
        a->v[a->n] = NULL;
}

static bool has_cap_sys_resource(void) {
        _cleanup_free_ char *text = NULL;
        if (fs_read_file(AT_FDCWD, "/proc/self/status", 1 << 16, &text, NULL, NULL) < 0)
                return false;
        const char *p = strstr(text, "\nCapEff:");
        unsigned long long caps = 0;
        return p && sscanf(p + 8, "%llx", &caps) == 1 && (caps & (1ull << 24 /* CAP_SYS_RESOURCE */));
}

static int check_pipe_max_size(struct cryo_error **err) {
        if (has_cap_sys_resource())
                return 0;
        _cleanup_free_ char *text = NULL;
        if (fs_read_file(AT_FDCWD, "/proc/sys/fs/pipe-max-size", 64, &text, NULL, NULL) < 0)
                return 0;
        unsigned long long max = strtoull(text, NULL, 10);
        if (max >= LAZY_PIPE_BYTES)
                return 0;
        return cryo_error_set(err, EPERM,
                              "CRIU's lazy page server needs fs.pipe-max-size >= %llu without "
                              "CAP_SYS_RESOURCE (it is %llu): run 'sysctl -w fs.pipe-max-size=%llu'",
                              LAZY_PIPE_BYTES, max, LAZY_PIPE_BYTES);
}

/* A failed `criu` command: the cause from its log, else how it ended. */
static int command_failure(struct cryo_error **err, const char *what, int status, int work_fd,
                           const char *log_name) {
        _cleanup_free_ char *cause = NULL, *excerpt = NULL;
        if (engine_log_explain(work_fd, log_name, &cause, &excerpt) == 0)
                return engine_criu_failure(err, -EIO, what, work_fd, log_name);
        if (WIFSIGNALED(status))
                return cryo_error_set(err, EIO, "CRIU %s was killed by signal %d", what, WTERMSIG(status));
        return cryo_error_set(err, EIO, "CRIU %s failed (exit status %d) and left no error in %s", what,
                              WIFEXITED(status) ? WEXITSTATUS(status) : -1, log_name);
}

/*
 * Starts `criu ARGV... --status-fd N`; *status_fd is the reading end, where
 * a byte says it is ready.  Nothing waits here: the caller may do other
 * work while CRIU starts up (its kernel probing alone takes tens of ms).
 */
static int spawn_criu(struct argv *a, char *const *envp, const char *what, pid_t *out, int *status_fd,
                      struct cryo_error **err) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return cryo_error_errno(err, errno, "pipe");
        _cleanup_close_ int rfd = p[0], wfd = p[1];
        argv_add(a, "--status-fd");
        argv_add(a, "%d", wfd);
        if (a->oom)
                return cryo_error_set(err, ENOMEM, "out of memory");
        if (a->full)
                return cryo_error_set(err, E2BIG, "more than %d arguments for criu %s", ARGV_MAX, what);

        pid_t pid = fork();
        if (pid < 0)
                return cryo_error_errno(err, errno, "cannot start criu");
        if (pid == 0) {
                /* Only async-signal-safe calls from here on. */
                int null = open("/dev/null", O_RDWR);
                if (null >= 0) {
                        dup2(null, STDIN_FILENO);
                        dup2(null, STDOUT_FILENO);
                        dup2(null, STDERR_FILENO);
                }
                fcntl(wfd, F_SETFD, 0);
                execvpe("criu", a->v, envp ? envp : environ);
                _exit(127);
        }
        *out = pid;
        *status_fd = steal_fd(&rfd);
        return 0;
}

/* Waits for the ready byte of spawn_criu()'s child *pid.  If it exits
 * first, it is reaped (*pid = 0) and the failure explained from its log. */
static int await_ready(pid_t *pid, int status_fd, const char *what, int work_fd, const char *log_name,
                       struct cryo_error **err) {
        char c;
        ssize_t n;
        while ((n = read(status_fd, &c, 1)) < 0 && errno == EINTR)
                ;
        if (n == 1)
                return 0;
        /* It closed the pipe without a word: it failed (or could not run). */
        int status = 0;
        while (waitpid(*pid, &status, 0) < 0 && errno == EINTR)
                ;
        *pid = 0;
        if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
                return cryo_error_set(err, ENOENT, "cannot run criu: is it installed?");
        return command_failure(err, what, status, work_fd, log_name);
}

static void add_options(struct argv *a, const struct engine_options *o, const char *log_name) {
        int level = o->log_level > 0 ? o->log_level : LAZY_DUMP_LOG_LEVEL;
        argv_add(a, "-o");
        argv_add(a, "%s", log_name);
        /* Level 3 at least: "Accepted connection" (info) is how cryo knows
         * a target is fetching, and must not be timed out any more. */
        argv_add(a, "-v%d", level < 3 ? 3 : level);
        if (o->tcp_established)
                argv_add(a, "--tcp-established");
        if (o->tcp_skip_in_flight)
                argv_add(a, "--skip-in-flight");
        if (o->file_locks)
                argv_add(a, "--file-locks");
        if (o->shell_job)
                argv_add(a, "--shell-job");
        if (o->ext_unix_sk)
                argv_add(a, "--ext-unix-sk");
        if (o->link_remap)
                argv_add(a, "--link-remap");
        if (o->ghost_limit)
                argv_add(a, "--ghost-limit=%u", o->ghost_limit);
        if (o->cgroup_mode)
                argv_add(a, "--manage-cgroups=%s", o->cgroup_mode);
        for (char **e = o->externals; e && *e; e++)
                argv_add(a, "--external=%s", *e);
}

/*
 * What a container dump adds (engine_dump_request), as the command-line
 * options that give CRIU what criu.c sets through libcriu, so that both
 * paths dump a container the same way (and runc restores either):
 *   criu_local_set_root             --root
 *   criu_local_add_ext_mount(k, v)  --ext-mount-map k:v (CRIU splits at the
 *                                   first ':', as the RPC pair is split)
 *   criu_local_add_external         --external
 *   criu_local_set_freeze_cgroup    --freeze-cgroup
 *   criu_local_set_manage_cgroups   --manage-cgroups (soft, CRIU's default
 *                                   for both), or =MODE from the options
 *   criu_local_add_cg_yard          --cgroup-yard (engine_cgroup_yard())
 *   criu_local_set_empty_ns         --empty-ns net (the only one the
 *                                   command line has; others are refused)
 *   criu_local_set_network_lock     --network-lock skip
 *   notify callback (before_seize)  --action-script cryo-criu-hook, which
 *                                   tells cryo at "pre-dump" through a FIFO
 *                                   and waits (pre_dump_hook below).
 *                                   Without the helper, CRIU freezes the
 *                                   cgroup itself, in its 100 ms steps.
 *   criu_local_set_orphan_pts_master  none: CRIU 4.2.1 has it in RPC only.
 *                                   It concerns a pty whose master is
 *                                   outside (a container started with a
 *                                   terminal, untested here); if CRIU needs
 *                                   it, its own error surfaces.
 */
static int add_container_options(struct argv *a, const struct engine_dump_request *req,
                                 struct cryo_error **err) {
        if (req->empty_ns & ~CLONE_NEWNET)
                return cryo_error_set(err, EOPNOTSUPP,
                                      "post-copy migration: the criu command line can leave only the "
                                      "network namespace empty (empty-ns 0x%x)",
                                      (unsigned) req->empty_ns);
        if (req->root) {
                argv_add(a, "--root");
                argv_add(a, "%s", req->root);
        }
        for (const struct engine_pair *m = req->ext_mounts; m && m->key; m++) {
                if (strchr(m->key, ':'))
                        return cryo_error_set(err, EOPNOTSUPP,
                                              "post-copy migration: mount point %s has a ':', which the "
                                              "criu command line cannot name",
                                              m->key);
                argv_add(a, "--ext-mount-map=%s:%s", m->key, m->value);
        }
        for (const char *const *e = req->externals; e && *e; e++)
                argv_add(a, "--external=%s", *e);
        if (req->freeze_cgroup) {
                argv_add(a, "--freeze-cgroup=%s", req->freeze_cgroup);
        }
        /* add_options() already gave an explicit mode. */
        if (req->manage_cgroups && !req->opts->cgroup_mode)
                argv_add(a, "--manage-cgroups");
        const char *yard =
                req->manage_cgroups || req->opts->cgroup_mode ? engine_cgroup_yard(req->pid) : NULL;
        if (yard)
                argv_add(a, "--cgroup-yard=%s", yard);
        if (req->empty_ns & CLONE_NEWNET) {
                argv_add(a, "--empty-ns");
                argv_add(a, "net");
        }
        if (req->network_lock_skip) {
                argv_add(a, "--network-lock");
                argv_add(a, "skip");
        }
        return 0;
}

/*
 * CRIU freezes a container's tree with its freezer cgroup, seizes it and
 * thaws the cgroup again (the tree is then held by ptrace).  Killed inside
 * that window, it would leave the container frozen: whenever cryo stops a
 * lazy dump it thaws the cgroup, which a dump of a running container
 * found thawed.  Best effort: cgroup v1 freezer.state, v2 cgroup.freeze.
 */
static bool write_control(int dir, const char *name, const char *value) {
        /* No O_CREAT, no fsync: a cgroup control file, or nothing. */
        _cleanup_close_ int fd = openat(dir, name, O_WRONLY | O_CLOEXEC);
        return fd >= 0 && write(fd, value, strlen(value)) == (ssize_t) strlen(value);
}

static void thaw_cgroup(const char *path) {
        if (!path)
                return;
        _cleanup_close_ int dir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir >= 0 && !write_control(dir, "freezer.state", "THAWED"))
                (void) write_control(dir, "cgroup.freeze", "0");
}

static void stop_criu(struct engine_lazy_dump *l) {
        if (l->pid > 0) {
                (void) kill(l->pid, SIGKILL);
                while (waitpid(l->pid, NULL, 0) < 0 && errno == EINTR)
                        ;
                l->pid = 0;
                thaw_cgroup(l->freeze_cgroup);
        }
}

/*
 * The "pre-dump" notification of a `criu dump` command: CRIU runs its
 * action script (cryo-criu-hook) there, which writes a byte to the FIFO
 * "pre-dump" in the work directory and waits for one on "pre-dump.done".
 * cryo holds both FIFOs open for reading and writing, so that the helper's
 * non-blocking opens find the other end, and its read sees end of file
 * rather than hanging if cryo is gone.
 */
struct pre_dump_hook {
        int ask_fd;
        int done_fd;
        char *env[2];
};

static void pre_dump_hook_clear(struct pre_dump_hook *h) {
        cryo_closep(&h->ask_fd);
        cryo_closep(&h->done_fd);
        free(h->env[0]);
        h->env[0] = NULL;
}

/* 0 and h->env set up, or 0 with no hook (no helper installed). */
static int pre_dump_hook_prepare(struct pre_dump_hook *h, int work_fd, struct argv *a,
                                 struct cryo_error **err) {
        _cleanup_free_ char *helper = fs_sibling_program("cryo-criu-hook");
        if (!helper)
                return 0;
        if (mkfifoat(work_fd, "pre-dump", 0600) < 0 || mkfifoat(work_fd, "pre-dump.done", 0600) < 0)
                return cryo_error_errno(err, errno, "cannot create the pre-dump FIFOs");
        /* O_RDWR on a FIFO does not wait for a peer (Linux). */
        h->ask_fd = openat(work_fd, "pre-dump", O_RDWR | O_NONBLOCK | O_CLOEXEC);
        h->done_fd = openat(work_fd, "pre-dump.done", O_RDWR | O_CLOEXEC);
        if (h->ask_fd < 0 || h->done_fd < 0)
                return cryo_error_errno(err, errno, "cannot open the pre-dump FIFOs");
        if (asprintf(&h->env[0], "CRYO_HOOK_DIR=/proc/%d/fd/%d", getpid(), work_fd) < 0) {
                h->env[0] = NULL;
                return cryo_error_set(err, ENOMEM, "out of memory");
        }
        argv_add(a, "--action-script");
        argv_add(a, "%s", helper);
        return 0;
}

/* environ plus the hook's variable, for the criu command; NULL = environ. */
static char **pre_dump_hook_environ(const struct pre_dump_hook *h) {
        if (!h->env[0])
                return NULL;
        size_t n = 0;
        while (environ[n])
                n++;
        char **envp = calloc(n + 2, sizeof(char *));
        if (!envp)
                return NULL;
        for (size_t i = 0; i < n; i++)
                envp[i] = environ[i];
        envp[n] = h->env[0];
        return envp;
}

/* Until CRIU reports ready (or ends): answers its pre-dump notification by
 * calling before_seize() first.  Then the ready byte is next on status_fd. */
static void serve_pre_dump(const struct pre_dump_hook *h, int status_fd,
                           const struct engine_dump_request *req) {
        if (h->ask_fd < 0)
                return;
        struct pollfd p[2] = {{.fd = status_fd, .events = POLLIN}, {.fd = h->ask_fd, .events = POLLIN}};
        for (;;) {
                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return;
                }
                if (p[1].revents & POLLIN) {
                        char c;
                        if (read(h->ask_fd, &c, 1) == 1) {
                                if (req->before_seize)
                                        req->before_seize(req->before_seize_arg);
                                (void) !write(h->done_fd, "d", 1);
                        }
                }
                if (p[0].revents)
                        return;
        }
}

/* Is the freezer of cgroup `path` thawed (a running container)? */
static bool cgroup_thawed(const char *path) {
        char buf[32] = "";
        _cleanup_close_ int dir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir < 0)
                return false;
        _cleanup_close_ int fd = openat(dir, "freezer.state", O_RDONLY | O_CLOEXEC);
        bool v2 = fd < 0;
        if (v2)
                fd = openat(dir, "cgroup.freeze", O_RDONLY | O_CLOEXEC);
        if (fd < 0 || read(fd, buf, sizeof(buf) - 1) <= 0)
                return false;
        return v2 ? buf[0] == '0' : !strncmp(buf, "THAWED", 6);
}

int engine_lazy_dump_start(const struct engine_dump_request *req, struct cryo_stats *stats,
                           struct cryo_error **err) {
        struct engine_lazy_request *lazy = req->lazy;
        if (req->opts->leave_running)
                return cryo_error_set(err, EINVAL,
                                      "--lazy-pages and --leave-running exclude each other: the source "
                                      "ends once its pages have moved");
        if (lazy->port <= 0 || lazy->port > 65535)
                return cryo_error_set(err, EINVAL, "post-copy migration needs a page server port");
        int r = check_pipe_max_size(err);
        if (r < 0)
                return r;

        pid_t self = getpid();
        struct argv a = {0};
        argv_add(&a, "criu");
        argv_add(&a, "dump");
        argv_add(&a, "-t");
        argv_add(&a, "%d", req->pid);
        argv_add(&a, "-D");
        argv_add(&a, "/proc/%d/fd/%d", self, req->images_fd);
        argv_add(&a, "-W");
        argv_add(&a, "/proc/%d/fd/%d", self, lazy->work_fd);
        add_options(&a, req->opts, CRYO_DUMP_LOG);
        r = add_container_options(&a, req, err);
        if (r < 0) {
                argv_free(&a);
                return r;
        }
        argv_add(&a, "--lazy-pages");
        /* CRIU would end the tree when the target's daemon disconnects,
         * whether or not that restore succeeded: cryo ends it only once
         * the target confirmed (migrate.h). */
        argv_add(&a, "--leave-stopped");
        if (lazy->address && *lazy->address) {
                argv_add(&a, "--address");
                argv_add(&a, "%s", lazy->address);
        }
        argv_add(&a, "--port");
        argv_add(&a, "%d", lazy->port);

        _cleanup_(pre_dump_hook_clear) struct pre_dump_hook hook = {.ask_fd = -1, .done_fd = -1};
        if (req->before_seize && req->freeze_cgroup) {
                r = pre_dump_hook_prepare(&hook, lazy->work_fd, &a, err);
                if (r < 0) {
                        argv_free(&a);
                        return r;
                }
        }
        _cleanup_free_ char **envp = pre_dump_hook_environ(&hook);
        bool thaw_at_end = req->freeze_cgroup && cgroup_thawed(req->freeze_cgroup);

        uint64_t start = cryo_now_usec();
        pid_t pid = 0;
        _cleanup_close_ int status_fd = -1;
        r = hook.env[0] && !envp ? cryo_error_set(err, ENOMEM, "out of memory")
                                 : spawn_criu(&a, envp, "dump", &pid, &status_fd, err);
        argv_free(&a);
        if (r >= 0) {
                serve_pre_dump(&hook, status_fd, req);
                r = await_ready(&pid, status_fd, "dump", lazy->work_fd, CRYO_DUMP_LOG, err);
        }
        if (r < 0) {
                /* A failed CRIU thaws what it froze (or puts back the
                 * FROZEN it found, when cryo froze first); one that died
                 * cannot. */
                thaw_cgroup(req->freeze_cgroup);
                return r;
        }
        _cleanup_child_ pid_t owned = pid;
        cryo_stats_add(stats, CRYO_PHASE_DUMP, cryo_now_usec() - start, 0);

        r = engine_fix_expired_timerfds(req->images_fd, req->timerfds_fixed, err);
        if (r < 0) {
                /* Stopping CRIU before any target connected resumes the tree. */
                struct engine_lazy_dump stop = {.pid = steal_fd(&owned),
                                                .freeze_cgroup = (char *) req->freeze_cgroup};
                stop_criu(&stop);
                return cryo_error_prefix(err, "cannot fix expired timerfds in the CRIU images");
        }

        struct engine_lazy_dump *l = calloc(1, sizeof(*l));
        if (!l)
                return cryo_error_set(err, ENOMEM, "out of memory");
        if (req->freeze_cgroup && !(l->freeze_cgroup = strdup(req->freeze_cgroup))) {
                free(l);
                return cryo_error_set(err, ENOMEM, "out of memory");
        }
        l->work_fd = lazy->work_fd;
        l->thaw_at_end = thaw_at_end;
        l->started_usec = start;
        l->log_fd = openat(lazy->work_fd, CRYO_DUMP_LOG, O_RDONLY | O_CLOEXEC);
        l->pid = steal_fd(&owned);
        lazy->serving = l;
        return 0;
}

/* Has CRIU accepted the target's connection?  Reads only what the log
 * gained since the last look. */
static bool log_says_connected(struct engine_lazy_dump *l) {
        static const char mark[] = "Accepted connection from";
        enum { OVERLAP = sizeof(mark) };
        char buf[65536 + 1];
        if (l->connected || l->log_fd < 0)
                return l->connected;
        for (;;) {
                ssize_t n = pread(l->log_fd, buf, sizeof(buf) - 1, (off_t) l->log_off);
                if (n <= 0)
                        return false;
                buf[n] = '\0';
                if (memmem(buf, (size_t) n, mark, sizeof(mark) - 1))
                        return l->connected = true;
                if ((size_t) n < OVERLAP)
                        return false;
                l->log_off += (uint64_t) n - OVERLAP;
                if (n < (ssize_t) sizeof(buf) - 1)
                        return false;
        }
}

int engine_lazy_dump_wait(struct engine_lazy_dump *l, unsigned timeout_sec,
                          const volatile sig_atomic_t *cancel, struct cryo_stats *stats,
                          struct cryo_error **err) {
        uint64_t start = cryo_now_usec();
        int status = 0;
        for (;;) {
                pid_t w = waitpid(l->pid, &status, WNOHANG);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w < 0)
                        return cryo_error_errno(err, errno, "cannot wait for criu");
                if (w == l->pid)
                        break;
                if (cancel && *cancel) {
                        /* Ending CRIU ends the transfer: the target's copy
                         * dies with it, the source runs on. */
                        stop_criu(l);
                        return cryo_error_set(
                                err, EINTR,
                                "interrupted: the page server was stopped and the source runs on");
                }
                if (!log_says_connected(l) && timeout_sec &&
                    cryo_now_usec() - start > (uint64_t) timeout_sec * 1000000) {
                        /* Nobody connected: CRIU still holds the tree frozen
                         * by ptrace only, and its end lets the tree run on. */
                        stop_criu(l);
                        return cryo_error_set(err, ETIMEDOUT,
                                              "no target fetched the pages within %u s; the page server "
                                              "was stopped and the source runs on",
                                              timeout_sec);
                }
                struct timespec ts = {0, 50 * 1000 * 1000};
                nanosleep(&ts, NULL);
        }
        l->pid = 0;
        if (l->thaw_at_end)
                /* CRIU put back the state it found: FROZEN, if cryo froze
                 * the cgroup before it (pre_dump_hook); the tree, stopped
                 * by signal now, is resumed or ended by the caller. */
                thaw_cgroup(l->freeze_cgroup);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                (void) command_failure(err, "page server", status, l->work_fd, CRYO_DUMP_LOG);
                return cryo_error_prefix(err, "post-copy migration failed, the source was resumed");
        }
        engine_read_dump_stats(l->work_fd, cryo_now_usec() - l->started_usec, stats);
        return 0;
}

void engine_lazy_dump_free(struct engine_lazy_dump *l) {
        if (!l)
                return;
        stop_criu(l);
        cryo_closep(&l->log_fd);
        free(l->freeze_cgroup);
        free(l);
}

/* The daemon logs some of its failures ("Can't connect to server ...")
 * without CRIU's "Error" marker: then its last line is the cause. */
static int lazy_pages_failure(struct cryo_error **err, int status, int work_fd) {
        _cleanup_free_ char *cause = NULL, *excerpt = NULL, *text = NULL;
        if (WIFSIGNALED(status))
                return cryo_error_set(err, EIO, "CRIU lazy-pages daemon was killed by signal %d",
                                      WTERMSIG(status));
        if (engine_log_explain(work_fd, LAZY_PAGES_LOG, &cause, &excerpt) == 0)
                return engine_criu_failure(err, -EIO, "lazy-pages daemon", work_fd, LAZY_PAGES_LOG);
        size_t len = 0;
        if (fs_read_file(work_fd, LAZY_PAGES_LOG, 64u << 20, &text, &len, NULL) < 0 || len == 0)
                return cryo_error_set(err, EIO, "CRIU lazy-pages daemon failed and left no log");
        while (len > 0 && text[len - 1] == '\n')
                text[--len] = '\0';
        char *last = strrchr(text, '\n');
        last = last ? last + 1 : text;
        /* "(02.563816) Can't connect to server ..." */
        if (last[0] == '(' && strchr(last, ')'))
                last = strchr(last, ')') + 1;
        while (*last == ' ')
                last++;
        return cryo_error_set(err, EIO, "CRIU lazy-pages daemon failed: %s", last);
}

int engine_lazy_pages_start(const struct engine_restore_request *req, struct engine_lazy_pages **out,
                            struct cryo_error **err) {
        const struct engine_lazy_request *lazy = req->lazy;
        if (!lazy->address || !*lazy->address || lazy->port <= 0 || lazy->port > 65535)
                return cryo_error_set(err, EINVAL,
                                      "a post-copy restore needs the source's page server (ADDRESS:PORT)");
        _cleanup_lazy_pages_ struct engine_lazy_pages *d = calloc(1, sizeof(*d));
        if (!d)
                return cryo_error_set(err, ENOMEM, "out of memory");
        d->status_fd = -1;
        /* Its own copies: the daemon opens them by number while it starts,
         * after this returns, and its log is read after a failure, when the
         * caller may have closed its descriptors already. */
        d->work_fd = fcntl(req->work_fd, F_DUPFD_CLOEXEC, 3);
        d->images_fd = fcntl(req->images_fd, F_DUPFD_CLOEXEC, 3);
        if (d->work_fd < 0 || d->images_fd < 0)
                return cryo_error_errno(err, errno, "cannot keep the lazy-pages directories");
        pid_t self = getpid();
        struct argv a = {0};
        argv_add(&a, "criu");
        argv_add(&a, "lazy-pages");
        argv_add(&a, "--page-server");
        argv_add(&a, "--address");
        argv_add(&a, "%s", lazy->address);
        argv_add(&a, "--port");
        argv_add(&a, "%d", lazy->port);
        argv_add(&a, "-D");
        argv_add(&a, "/proc/%d/fd/%d", self, d->images_fd);
        argv_add(&a, "-W");
        argv_add(&a, "/proc/%d/fd/%d", self, d->work_fd);
        argv_add(&a, "-o");
        argv_add(&a, LAZY_PAGES_LOG);
        argv_add(&a, "-v%d", req->opts->log_level > 0 ? req->opts->log_level : DEFAULT_LOG_LEVEL);
        int r = spawn_criu(&a, NULL, "lazy-pages daemon", &d->pid, &d->status_fd, err);
        argv_free(&a);
        if (r < 0)
                return r;
        *out = steal_pointer(&d);
        return 0;
}

int engine_lazy_pages_ready(struct engine_lazy_pages *d, struct cryo_error **err) {
        if (d->status_fd < 0)
                return d->pid > 0 ? 0 : cryo_error_set(err, ESRCH, "the lazy-pages daemon is gone");
        int r = await_ready(&d->pid, d->status_fd, "lazy-pages daemon", d->work_fd, LAZY_PAGES_LOG, err);
        cryo_closep(&d->status_fd);
        cryo_closep(&d->images_fd);
        return r;
}

static void kill_tree(pid_t root) {
        _cleanup_free_ struct cryo_proc *procs = NULL;
        size_t n = 0;
        (void) kill(root, SIGSTOP);
        if (proc_tree_collect(root, &procs, &n, NULL) == 0)
                for (size_t i = 0; i < n; i++)
                        (void) kill(procs[i].pid, SIGKILL);
        (void) kill(root, SIGKILL);
}

int engine_lazy_pages_wait(struct engine_lazy_pages *d, pid_t pid, struct cryo_error **err) {
        int status = 0;
        while (waitpid(d->pid, &status, 0) < 0) {
                if (errno != EINTR) {
                        kill_tree(pid);
                        return cryo_error_errno(err, errno, "cannot wait for the lazy-pages daemon");
                }
        }
        d->pid = 0;
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
                return 0;
        /* Pages it never got would read as zeros or hang the tree: a
         * process with part of its memory must not run on. */
        kill_tree(pid);
        (void) lazy_pages_failure(err, status, d->work_fd);
        return cryo_error_prefix(err, "the restored tree (pid %d) was killed, its memory being incomplete",
                                 pid);
}

int engine_lazy_pages_explain(struct engine_lazy_pages *d, struct cryo_error **err) {
        int status = 0;
        /* A restore fails at its end when the daemon could not reach the
         * source; give the daemon a moment to have exited. */
        for (int i = 0; i < 40 && d->pid > 0; i++) {
                pid_t w = waitpid(d->pid, &status, WNOHANG);
                if (w == d->pid) {
                        d->pid = 0;
                        break;
                }
                struct timespec ts = {0, 50 * 1000 * 1000};
                nanosleep(&ts, NULL);
        }
        if (d->pid > 0 || (WIFEXITED(status) && WEXITSTATUS(status) == 0))
                return 0;
        (void) lazy_pages_failure(err, status, d->work_fd);
        return cryo_error_prefix(err, "cannot fetch the memory pages from the source");
}

void engine_lazy_pages_free(struct engine_lazy_pages *d) {
        if (!d)
                return;
        cryo_child_killp(&d->pid);
        cryo_closep(&d->work_fd);
        cryo_closep(&d->status_fd);
        cryo_closep(&d->images_fd);
        free(d);
}
