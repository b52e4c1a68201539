/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * wl-timers: armed periodic timers keep ticking after restore.
 *
 *  - setitimer(ITIMER_REAL) every 50 ms -> SIGALRM counter
 *  - a timerfd (CLOCK_MONOTONIC) every 50 ms -> expirations counter
 *  - a POSIX timer (timer_create, CLOCK_MONOTONIC, SIGRTMIN) every 50 ms
 * Verify checks each timer is still armed with its interval and that each
 * counter increases while we wait (for up to 5 s).  The PASS line reports
 * the counts so that a test can check they continued across a restore
 * instead of starting again from zero.
 *
 * A periodic timerfd re-arms only when it is read.  If it expired while the
 * process was frozen for a dump, /proc's fdinfo shows it_value 0 and CRIU
 * 4.2.1 restores it disarmed (it_value 0, interval kept): it delivers the
 * pending ticks once and never fires again (criu issue #3162).  By default
 * the main loop reads the timerfd at once, so a dump hits that window only
 * by chance; with --timerfd-unread the timerfd is read only by the verifier,
 * which returns after the next expiry, so every dump finds it expired and
 * unread.  The verdict names the symptom when it sees it.
 */
#include "wl.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define PERIOD_MS 50

static volatile sig_atomic_t alarms, posix_ticks;
static uint64_t tfd_ticks;
static int tfd;
static timer_t ptimer;

static void on_alarm(int sig) {
        alarms++;
}

static void on_rt(int sig) {
        posix_ticks++;
}

static void drain_tfd(int fd, short revents) {
        uint64_t n;
        while (read(fd, &n, sizeof(n)) == sizeof(n))
                tfd_ticks += n;
}

/* Returns once the timerfd has expired, without reading it. */
static void wait_expired(void) {
        struct pollfd p = {.fd = tfd, .events = POLLIN};
        uint64_t deadline = wl_now_ms() + 5000;
        while (wl_now_ms() < deadline && poll(&p, 1, 100) <= 0)
                ;
}

static void setup(void) {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_flags = SA_RESTART;
        sa.sa_handler = on_alarm;
        if (sigaction(SIGALRM, &sa, NULL))
                wl_die_errno("sigaction");
        sa.sa_handler = on_rt;
        if (sigaction(SIGRTMIN, &sa, NULL))
                wl_die_errno("sigaction");

        struct itimerval it = {.it_interval = {0, PERIOD_MS * 1000}, .it_value = {0, PERIOD_MS * 1000}};
        if (setitimer(ITIMER_REAL, &it, NULL))
                wl_die_errno("setitimer");

        struct itimerspec its = {.it_interval = {0, PERIOD_MS * 1000000L},
                                 .it_value = {0, PERIOD_MS * 1000000L}};
        tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        if (tfd < 0 || timerfd_settime(tfd, 0, &its, NULL))
                wl_die_errno("timerfd");
        if (wl_opt.timerfd_unread)
                wait_expired();
        else
                wl_watch(tfd, POLLIN, drain_tfd);

        struct sigevent sev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGRTMIN};
        if (timer_create(CLOCK_MONOTONIC, &sev, &ptimer) || timer_settime(ptimer, 0, &its, NULL))
                wl_die_errno("timer_create");
}

static int verify(struct wl_verdict *v) {
        struct itimerval it;
        if (getitimer(ITIMER_REAL, &it))
                return wl_fail(v, "getitimer: %m");
        if (it.it_interval.tv_sec != 0 || it.it_interval.tv_usec != PERIOD_MS * 1000)
                return wl_fail(v, "itimer interval is %ld.%06ld s, want 0.%06d s",
                               (long) it.it_interval.tv_sec, (long) it.it_interval.tv_usec,
                               PERIOD_MS * 1000);
        struct itimerspec its;
        if (timerfd_gettime(tfd, &its))
                return wl_fail(v, "timerfd_gettime: %m");
        if (its.it_interval.tv_sec != 0 || its.it_interval.tv_nsec != PERIOD_MS * 1000000L)
                return wl_fail(v, "timerfd interval is %ld.%09ld s", (long) its.it_interval.tv_sec,
                               its.it_interval.tv_nsec);
        if (timer_gettime(ptimer, &its))
                return wl_fail(v, "timer_gettime: %m");
        if (its.it_interval.tv_sec != 0 || its.it_interval.tv_nsec != PERIOD_MS * 1000000L)
                return wl_fail(v, "POSIX timer interval is %ld.%09ld s", (long) its.it_interval.tv_sec,
                               its.it_interval.tv_nsec);

        /* Liveness, not speed: every counter must move within 5 s. */
        long a0 = alarms, p0 = posix_ticks;
        drain_tfd(tfd, POLLIN);
        uint64_t t0 = tfd_ticks, deadline = wl_now_ms() + 5000;
        while (wl_now_ms() < deadline) {
                struct pollfd p = {.fd = tfd, .events = POLLIN};
                poll(&p, 1, PERIOD_MS);
                drain_tfd(tfd, POLLIN);
                if (alarms >= a0 + 2 && posix_ticks >= p0 + 2 && tfd_ticks >= t0 + 2)
                        break;
        }
        if (alarms < a0 + 2)
                return wl_fail(v, "SIGALRM count stuck at %ld (itimer not firing)", (long) alarms);
        if (posix_ticks < p0 + 2)
                return wl_fail(v, "POSIX timer count stuck at %ld", (long) posix_ticks);
        if (tfd_ticks < t0 + 2) {
                timerfd_gettime(tfd, &its);
                if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0)
                        return wl_fail(
                                v,
                                "timerfd disarmed: it_value 0 with a %d ms interval, count stuck at %llu "
                                "(criu issue #3162)",
                                PERIOD_MS, (unsigned long long) tfd_ticks);
                return wl_fail(v, "timerfd count stuck at %llu (next expiry in %ld.%09ld s)",
                               (unsigned long long) tfd_ticks, (long) its.it_value.tv_sec,
                               its.it_value.tv_nsec);
        }
        wl_note(v, "alarms=%ld posix=%ld timerfd=%llu", (long) alarms, (long) posix_ticks,
                (unsigned long long) tfd_ticks);
        if (wl_opt.timerfd_unread)
                wait_expired();
        return 0;
}

static void corrupt(void) {
        struct itimerval off = {{0, 0}, {0, 0}};
        setitimer(ITIMER_REAL, &off, NULL);
}

int main(int argc, char **argv) {
        wl_init(argc, argv);
        setup();
        pid_t me = getpid();
        wl_ready(&me, 1, NULL);
        static const struct wl_ops ops = {.verify = verify, .corrupt = corrupt};
        wl_run(&ops);
}
