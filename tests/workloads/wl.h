/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A tiny framework for checkpoint/restore test workloads.
 *
 * Each workload builds some state, announces itself in a status file and
 * then sits in wl_run():
 *
 *   SIGUSR2  verify the state; write "PASS[ info]" or "FAIL: <why>" to the
 *            result file (created only for the write, never held open)
 *   SIGUSR1  corrupt the state on purpose, so that tests can prove the
 *            verifier bites
 *   SIGTERM  clean up (children included) and exit 0
 *
 * Common command line:
 *   --status FILE   "ready PID [PID...]" plus "key value" lines (default: stdout)
 *   --result FILE   verdict (default: stdout)
 *   --dir DIR       working directory for files/sockets (workload specific)
 *   --port N        TCP port (0: pick one, reported as "port N")
 *   --size-mb N     size of the large memory region
 *   --file-locks    take file locks too (wl-files)
 *   --timerfd-unread  leave the timerfd expired and unread between checks (wl-timers)
 * Anything else is a positional argument.
 */
#ifndef CRYO_TESTS_WL_H
#define CRYO_TESTS_WL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define WL_MAX_ARGS 8

struct wl_opts {
        const char *name;
        const char *status;
        const char *result;
        const char *dir;
        int port;
        long size_mb;
        bool file_locks;
        bool timerfd_unread;
        int nargs;
        const char *args[WL_MAX_ARGS];
};

extern struct wl_opts wl_opt;

/* Filled by a verifier: why it failed, or extra facts for the PASS line. */
struct wl_verdict {
        char why[512];
        char info[512];
};

struct wl_ops {
        /* Returns 0 when the state is intact, else fills v->why (wl_fail). */
        int (*verify)(struct wl_verdict *v);
        /* Damages the state so that the next verify fails. */
        void (*corrupt)(void);
        /* Called about every tick_ms milliseconds when set. */
        void (*tick)(void);
        int tick_ms;
        /* Called on SIGTERM/SIGINT before exit(0): stop children here. */
        void (*shutdown)(void);
};

#define WL_PRINTF(a, b) __attribute__((format(printf, a, b)))

/* Parses the common options and installs the signal handlers. */
void wl_init(int argc, char **argv);

/* Setup errors: print and exit(1). */
_Noreturn void wl_die(const char *fmt, ...) WL_PRINTF(1, 2);
_Noreturn void wl_die_errno(const char *fmt, ...) WL_PRINTF(1, 2);

/* Verifier helpers: wl_fail records the first failure and returns -1. */
int wl_fail(struct wl_verdict *v, const char *fmt, ...) WL_PRINTF(2, 3);
void wl_note(struct wl_verdict *v, const char *fmt, ...) WL_PRINTF(2, 3);

/* Announces readiness: "ready PID..." then the extra "key value" lines. */
void wl_ready(const pid_t *pids, int npids, const char *extra_fmt, ...) WL_PRINTF(3, 4);

/* Watch an fd in the main loop. */
void wl_watch(int fd, short events, void (*cb)(int fd, short revents));

/* The main loop; never returns. */
_Noreturn void wl_run(const struct wl_ops *ops);

/* In a forked child that runs its own loop: default signal handling back. */
void wl_child_reset(void);

/* Deterministic patterns: word i of a buffer filled with seed s. */
uint64_t wl_mix(uint64_t x);
void wl_fill(void *buf, size_t len, uint64_t seed);
/* Returns the offset of the first differing byte, or (size_t)-1. */
size_t wl_check_fill(const void *buf, size_t len, uint64_t seed);
uint64_t wl_hash(const void *buf, size_t len);

/* Writes a whole file through a temporary name and rename(2). */
int wl_write_file_atomic(const char *path, const char *data, size_t len);

/* Full read/write on blocking or non-blocking fds (EINTR-safe). */
ssize_t wl_read_full(int fd, void *buf, size_t len, int timeout_ms);
int wl_write_full(int fd, const void *buf, size_t len);

/* A listener that answers every connection with one line,
 * "NAME token=TOKEN served=N\n" (N counts answers). */
void wl_token_answer(int listener, const char *name, uint64_t token, unsigned *served);
/* Checks that client `c`, connected to `listener`, is answered with TOKEN:
 * answers queued connections itself meanwhile (the workload is inside its
 * verify callback, not in its event loop).  Closes c. */
int wl_token_check(struct wl_verdict *v, int c, int listener, const char *name, uint64_t token,
                   unsigned *served);

/* Sleep that survives EINTR (signals, checkpoint/restore). */
void wl_sleep_ms(long ms);
uint64_t wl_now_ms(void);

#endif
