/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct wl_opts wl_opt = {.port = -1};

static volatile sig_atomic_t got_verify, got_corrupt, got_term;
static sigset_t orig_mask;

#define WL_MAX_WATCH 16
static struct pollfd watch_fds[WL_MAX_WATCH];
static void (*watch_cbs[WL_MAX_WATCH])(int, short);
static int nwatch;

static void vlog(const char *prefix, const char *fmt, va_list ap, int err) {
        char buf[1024];
        int n = snprintf(buf, sizeof(buf), "%s: %s", wl_opt.name ? wl_opt.name : "wl", prefix);
        if (n < 0)
                n = 0;
        if ((size_t) n < sizeof(buf))
                vsnprintf(buf + n, sizeof(buf) - n, fmt, ap);
        if (err)
                fprintf(stderr, "%s: %s\n", buf, strerror(err));
        else
                fprintf(stderr, "%s\n", buf);
}

void wl_die(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vlog("error: ", fmt, ap, 0);
        va_end(ap);
        exit(1);
}

void wl_die_errno(const char *fmt, ...) {
        int err = errno;
        va_list ap;
        va_start(ap, fmt);
        vlog("error: ", fmt, ap, err);
        va_end(ap);
        exit(1);
}

int wl_fail(struct wl_verdict *v, const char *fmt, ...) {
        if (v->why[0] == '\0') {
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(v->why, sizeof(v->why), fmt, ap);
                va_end(ap);
        }
        return -1;
}

void wl_note(struct wl_verdict *v, const char *fmt, ...) {
        size_t used = strlen(v->info);
        if (used + 2 >= sizeof(v->info))
                return;
        if (used)
                v->info[used++] = ' ';
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(v->info + used, sizeof(v->info) - used, fmt, ap);
        va_end(ap);
}

static void on_signal(int sig) {
        switch (sig) {
        case SIGUSR2:
                got_verify = 1;
                break;
        case SIGUSR1:
                got_corrupt = 1;
                break;
        default:
                got_term = 1;
                break;
        }
}

static long parse_long(const char *opt, const char *s, long min, long max) {
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (errno || end == s || *end || v < min || v > max)
                wl_die("bad value for %s: '%s'", opt, s);
        return v;
}

static const char *absolute(const char *path) {
        if (!path || path[0] == '/')
                return path;
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof(cwd)))
                wl_die_errno("getcwd");
        char *abs;
        if (asprintf(&abs, "%s/%s", cwd, path) < 0)
                wl_die("out of memory");
        return abs;
}

void wl_init(int argc, char **argv) {
        const char *slash = strrchr(argv[0], '/');
        wl_opt.name = slash ? slash + 1 : argv[0];

        for (int i = 1; i < argc; i++) {
                const char *a = argv[i];
                const char *val = i + 1 < argc ? argv[i + 1] : NULL;
                bool takes = true;

                if (!strcmp(a, "--status"))
                        wl_opt.status = val;
                else if (!strcmp(a, "--result"))
                        wl_opt.result = val;
                else if (!strcmp(a, "--dir"))
                        wl_opt.dir = val;
                else if (!strcmp(a, "--port"))
                        wl_opt.port = val ? (int) parse_long(a, val, 0, 65535) : 0;
                else if (!strcmp(a, "--size-mb"))
                        wl_opt.size_mb = val ? parse_long(a, val, 1, 1L << 20) : 0;
                else {
                        takes = false;
                        if (!strcmp(a, "--file-locks"))
                                wl_opt.file_locks = true;
                        else if (!strcmp(a, "--timerfd-unread"))
                                wl_opt.timerfd_unread = true;
                        else if (a[0] == '-' && a[1] == '-')
                                wl_die("unknown option %s", a);
                        else if (wl_opt.nargs < WL_MAX_ARGS)
                                wl_opt.args[wl_opt.nargs++] = a;
                        else
                                wl_die("too many arguments");
                }
                if (takes) {
                        if (!val)
                                wl_die("%s needs a value", a);
                        i++;
                }
        }

        /* Workloads may chdir(): make the file names absolute now. */
        wl_opt.status = absolute(wl_opt.status);
        wl_opt.result = absolute(wl_opt.result);

        /* Logs go to files in tests: keep them line by line. */
        setvbuf(stdout, NULL, _IOLBF, 0);

        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        int sigs[] = {SIGUSR1, SIGUSR2, SIGTERM, SIGINT};
        sigset_t block;
        sigemptyset(&block);
        for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
                if (sigaction(sigs[i], &sa, NULL))
                        wl_die_errno("sigaction");
                sigaddset(&block, sigs[i]);
        }
        signal(SIGPIPE, SIG_IGN);
        /* Our signals are only delivered inside ppoll() in wl_run(). */
        if (sigprocmask(SIG_BLOCK, &block, &orig_mask))
                wl_die_errno("sigprocmask");
}

void wl_child_reset(void) {
        int sigs[] = {SIGUSR1, SIGUSR2, SIGTERM, SIGINT};
        for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
                signal(sigs[i], SIG_DFL);
        sigprocmask(SIG_SETMASK, &orig_mask, NULL);
        nwatch = 0;
}

int wl_write_file_atomic(const char *path, const char *data, size_t len) {
        char tmp[PATH_MAX];
        if (snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int) getpid()) >= (int) sizeof(tmp)) {
                errno = ENAMETOOLONG;
                return -1;
        }
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                return -1;
        if (wl_write_full(fd, data, len) < 0) {
                int err = errno;
                close(fd);
                unlink(tmp);
                errno = err;
                return -1;
        }
        if (close(fd) < 0 || rename(tmp, path) < 0) {
                int err = errno;
                unlink(tmp);
                errno = err;
                return -1;
        }
        return 0;
}

static void emit(const char *path, const char *text) {
        if (!path) {
                fputs(text, stdout);
                fflush(stdout);
                return;
        }
        if (wl_write_file_atomic(path, text, strlen(text)) < 0)
                fprintf(stderr, "%s: cannot write %s: %s\n", wl_opt.name, path, strerror(errno));
}

void wl_ready(const pid_t *pids, int npids, const char *extra_fmt, ...) {
        char buf[4096];
        size_t n = 0;
        n += snprintf(buf + n, sizeof(buf) - n, "ready");
        for (int i = 0; i < npids && n < sizeof(buf); i++)
                n += snprintf(buf + n, sizeof(buf) - n, " %d", (int) pids[i]);
        if (n < sizeof(buf))
                n += snprintf(buf + n, sizeof(buf) - n, "\n");
        if (extra_fmt && n < sizeof(buf)) {
                va_list ap;
                va_start(ap, extra_fmt);
                n += vsnprintf(buf + n, sizeof(buf) - n, extra_fmt, ap);
                va_end(ap);
        }
        if (n >= sizeof(buf))
                wl_die("status too long");
        if (wl_opt.status)
                printf("%s: %s", wl_opt.name, buf);
        emit(wl_opt.status, buf);
}

void wl_watch(int fd, short events, void (*cb)(int fd, short revents)) {
        if (nwatch == WL_MAX_WATCH)
                wl_die("too many watched fds");
        watch_fds[nwatch] = (struct pollfd){.fd = fd, .events = events};
        watch_cbs[nwatch++] = cb;
}

uint64_t wl_now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

void wl_sleep_ms(long ms) {
        uint64_t end = wl_now_ms() + (uint64_t) ms;
        for (;;) {
                uint64_t now = wl_now_ms();
                if (now >= end)
                        return;
                uint64_t left = end - now;
                struct timespec ts = {.tv_sec = (time_t) (left / 1000),
                                      .tv_nsec = (long) (left % 1000) * 1000000L};
                nanosleep(&ts, NULL);
        }
}

static void do_verify(const struct wl_ops *ops) {
        struct wl_verdict v;
        memset(&v, 0, sizeof(v));
        int rc = ops->verify(&v);
        char out[1200];
        if (rc == 0 && v.why[0] == '\0')
                snprintf(out, sizeof(out), "PASS%s%s\n", v.info[0] ? " " : "", v.info);
        else
                snprintf(out, sizeof(out), "FAIL: %s\n", v.why[0] ? v.why : "verifier failed");
        if (wl_opt.result)
                printf("%s: verify: %s", wl_opt.name, out);
        emit(wl_opt.result, out);
}

void wl_run(const struct wl_ops *ops) {
        uint64_t next_tick = ops->tick ? wl_now_ms() + (uint64_t) ops->tick_ms : 0;

        for (;;) {
                if (got_term) {
                        if (ops->shutdown)
                                ops->shutdown();
                        printf("%s: exiting\n", wl_opt.name);
                        exit(0);
                }
                if (got_corrupt) {
                        got_corrupt = 0;
                        printf("%s: corrupting state on request\n", wl_opt.name);
                        if (ops->corrupt)
                                ops->corrupt();
                }
                if (got_verify) {
                        got_verify = 0;
                        do_verify(ops);
                }

                struct timespec ts, *tsp = NULL;
                if (ops->tick) {
                        uint64_t now = wl_now_ms();
                        if (now >= next_tick) {
                                ops->tick();
                                /* No catching up after a checkpoint gap. */
                                next_tick = now + (uint64_t) ops->tick_ms;
                        }
                        uint64_t left = next_tick > now ? next_tick - now : 0;
                        ts.tv_sec = (time_t) (left / 1000);
                        ts.tv_nsec = (long) (left % 1000) * 1000000L;
                        tsp = &ts;
                }

                /* Our signals are unblocked only while we wait here. */
                int n = ppoll(watch_fds, (nfds_t) nwatch, tsp, &orig_mask);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        wl_die_errno("ppoll");
                }
                for (int i = 0; i < nwatch && n > 0; i++) {
                        if (watch_fds[i].revents) {
                                n--;
                                watch_cbs[i](watch_fds[i].fd, watch_fds[i].revents);
                        }
                }
        }
}

uint64_t wl_mix(uint64_t x) {
        /* splitmix64 finaliser */
        x += 0x9e3779b97f4a7c15ULL;
        x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
        x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
        return x ^ (x >> 31);
}

void wl_fill(void *buf, size_t len, uint64_t seed) {
        unsigned char *p = buf;
        size_t words = len / 8;
        for (size_t i = 0; i < words; i++) {
                uint64_t w = wl_mix(seed ^ (i * 0x100000001b3ULL));
                memcpy(p + i * 8, &w, 8);
        }
        for (size_t i = words * 8; i < len; i++)
                p[i] = (unsigned char) wl_mix(seed + i);
}

size_t wl_check_fill(const void *buf, size_t len, uint64_t seed) {
        const unsigned char *p = buf;
        size_t words = len / 8;
        for (size_t i = 0; i < words; i++) {
                uint64_t w = wl_mix(seed ^ (i * 0x100000001b3ULL));
                if (memcmp(p + i * 8, &w, 8)) {
                        for (size_t b = 0; b < 8; b++)
                                if (p[i * 8 + b] != ((unsigned char *) &w)[b])
                                        return i * 8 + b;
                }
        }
        for (size_t i = words * 8; i < len; i++)
                if (p[i] != (unsigned char) wl_mix(seed + i))
                        return i;
        return (size_t) -1;
}

uint64_t wl_hash(const void *buf, size_t len) {
        /* FNV-1a, 64 bit */
        const unsigned char *p = buf;
        uint64_t h = 0xcbf29ce484222325ULL;
        for (size_t i = 0; i < len; i++) {
                h ^= p[i];
                h *= 0x100000001b3ULL;
        }
        return h;
}

void wl_token_answer(int listener, const char *name, uint64_t token, unsigned *served) {
        int c = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0)
                return;
        char line[128];
        int n = snprintf(line, sizeof(line), "%s token=%016llx served=%u\n", name,
                         (unsigned long long) token, ++*served);
        wl_write_full(c, line, (size_t) n);
        close(c);
}

int wl_token_check(struct wl_verdict *v, int c, int listener, const char *name, uint64_t token,
                   unsigned *served) {
        struct pollfd p = {.fd = c, .events = POLLIN};
        for (int i = 0; i < 20 && poll(&p, 1, 0) <= 0; i++) {
                wl_token_answer(listener, name, token, served);
                poll(&p, 1, 100);
        }
        char line[128] = "";
        ssize_t n = wl_read_full(c, line, sizeof(line) - 1, 5000);
        close(c);
        if (n < 0)
                return wl_fail(v, "read from listener: %m");
        line[n] = '\0';
        char want[64];
        snprintf(want, sizeof(want), "token=%016llx ", (unsigned long long) token);
        if (!strstr(line, want))
                return wl_fail(v, "listener answered '%.*s', want %s", (int) strcspn(line, "\n"), line,
                               want);
        return 0;
}

ssize_t wl_read_full(int fd, void *buf, size_t len, int timeout_ms) {
        size_t got = 0;
        uint64_t end = wl_now_ms() + (uint64_t) (timeout_ms < 0 ? 0 : timeout_ms);
        while (got < len) {
                if (timeout_ms >= 0) {
                        uint64_t now = wl_now_ms();
                        if (now >= end)
                                break;
                        struct pollfd p = {.fd = fd, .events = POLLIN};
                        int r = poll(&p, 1, (int) (end - now));
                        if (r < 0 && errno == EINTR)
                                continue;
                        if (r < 0)
                                return -1;
                        if (r == 0)
                                break;
                }
                ssize_t n = read(fd, (char *) buf + got, len - got);
                if (n < 0 && (errno == EINTR || errno == EAGAIN))
                        continue;
                if (n < 0)
                        return -1;
                if (n == 0)
                        break;
                got += (size_t) n;
        }
        return (ssize_t) got;
}

int wl_write_full(int fd, const void *buf, size_t len) {
        size_t done = 0;
        while (done < len) {
                ssize_t n = write(fd, (const char *) buf + done, len - done);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN) {
                        struct pollfd p = {.fd = fd, .events = POLLOUT};
                        poll(&p, 1, 1000);
                        continue;
                }
                if (n < 0)
                        return -1;
                done += (size_t) n;
        }
        return 0;
}
