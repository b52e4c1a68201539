/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "migrate.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "util/cleanup.h"
#include "util/stats.h"

#define DONE_PREFIX "CRYO-LAZY-DONE "
#define LINE_MAX_   128
#define IO_TIMEOUT  5000 /* ms, for one line either way */

int cryo_lazy_token(char out[CRYO_LAZY_TOKEN_LEN + 1], struct cryo_error **err) {
        unsigned char raw[CRYO_LAZY_TOKEN_LEN / 2];
        if (getrandom(raw, sizeof(raw), 0) != (ssize_t) sizeof(raw))
                return cryo_error_errno(err, errno ? errno : EIO, "getrandom");
        for (size_t i = 0; i < sizeof(raw); i++)
                snprintf(out + 2 * i, 3, "%02x", raw[i]);
        return 0;
}

static void cryo_freeaddrinfop(struct addrinfo **ai) {
        if (*ai)
                freeaddrinfo(*ai);
}

static int resolve(const char *address, int port, bool passive, struct addrinfo **out,
                   struct cryo_error **err) {
        char service[16];
        snprintf(service, sizeof(service), "%d", port);
        struct addrinfo hints = {
                .ai_family = AF_UNSPEC,
                .ai_socktype = SOCK_STREAM,
                .ai_flags = passive ? AI_PASSIVE : 0,
        };
        int r = getaddrinfo(address, service, &hints, out);
        if (r != 0)
                return cryo_error_set(err, EHOSTUNREACH, "cannot resolve %s: %s", address ? address : "*",
                                      gai_strerror(r));
        return 0;
}

/* Reads one line (without its '\n') within IO_TIMEOUT. */
static int read_line(int fd, char *buf, size_t size) {
        size_t n = 0;
        while (n + 1 < size) {
                struct pollfd p = {.fd = fd, .events = POLLIN};
                int r = poll(&p, 1, IO_TIMEOUT);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0)
                        return -ETIMEDOUT;
                ssize_t got = read(fd, buf + n, 1);
                if (got < 0 && errno == EINTR)
                        continue;
                if (got <= 0)
                        return -ECONNRESET;
                if (buf[n] == '\n') {
                        buf[n] = '\0';
                        return 0;
                }
                n++;
        }
        return -EPROTO;
}

static int write_all(int fd, const char *s) {
        size_t len = strlen(s);
        while (len > 0) {
                ssize_t w = send(fd, s, len, MSG_NOSIGNAL);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w <= 0)
                        return -errno;
                s += w;
                len -= (size_t) w;
        }
        return 0;
}

static int remaining_ms(uint64_t deadline) {
        uint64_t now = cryo_now_usec();
        return now >= deadline ? 0 : (int) ((deadline - now) / 1000);
}

int cryo_lazy_await_done(const char *address, int port, const char *token, unsigned timeout_sec,
                         const volatile sig_atomic_t *cancel, struct cryo_error **err) {
        _cleanup_(cryo_freeaddrinfop) struct addrinfo *ai = NULL;
        int r = resolve(address, port, true, &ai, err);
        if (r < 0)
                return r;
        _cleanup_close_ int sk = -1;
        int last_errno = 0;
        /* With no address, prefer the IPv6 wildcard: it takes IPv4 too. */
        for (int pass = 0; pass < 2 && sk < 0; pass++)
                for (struct addrinfo *a = ai; a && sk < 0; a = a->ai_next) {
                        if ((pass == 0) != (a->ai_family == AF_INET6))
                                continue;
                        int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
                        if (fd < 0)
                                continue;
                        int one = 1, zero = 0;
                        (void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
                        if (a->ai_family == AF_INET6)
                                (void) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
                        if (bind(fd, a->ai_addr, a->ai_addrlen) == 0 && listen(fd, 4) == 0) {
                                sk = fd;
                        } else {
                                last_errno = errno;
                                close(fd);
                        }
                }
        if (sk < 0)
                return cryo_error_errno(err, last_errno ? last_errno : EADDRNOTAVAIL,
                                        "cannot listen on port %d for the target's confirmation", port);

        uint64_t deadline = cryo_now_usec() + (uint64_t) timeout_sec * 1000000;
        char want[sizeof(DONE_PREFIX) + CRYO_LAZY_TOKEN_LEN + 1];
        snprintf(want, sizeof(want), DONE_PREFIX "%s", token);
        for (;;) {
                if (cancel && *cancel)
                        return cryo_error_set(err, EINTR, "interrupted while waiting for the target's word");
                /* Short waits: a deferred signal does not interrupt poll() for good. */
                int left = remaining_ms(deadline);
                if (left > 200)
                        left = 200;
                if (left == 0)
                        return cryo_error_set(err, ETIMEDOUT, "the target did not confirm within %u s",
                                              timeout_sec);
                struct pollfd p = {.fd = sk, .events = POLLIN};
                int pr = poll(&p, 1, left);
                if (pr <= 0)
                        continue;
                _cleanup_close_ int c = accept4(sk, NULL, NULL, SOCK_CLOEXEC);
                if (c < 0)
                        continue;
                char line[LINE_MAX_];
                if (read_line(c, line, sizeof(line)) < 0)
                        continue;
                if (strcmp(line, want) != 0) {
                        (void) write_all(c, "NO\n");
                        continue;
                }
                (void) write_all(c, "OK\n");
                return 0;
        }
}

int cryo_lazy_send_done(const char *address, int port, const char *token, unsigned timeout_sec,
                        bool *maybe_delivered, struct cryo_error **err) {
        *maybe_delivered = false;
        _cleanup_(cryo_freeaddrinfop) struct addrinfo *ai = NULL;
        int r = resolve(address, port, false, &ai, err);
        if (r < 0)
                return r;
        char msg[sizeof(DONE_PREFIX) + CRYO_LAZY_TOKEN_LEN + 2];
        snprintf(msg, sizeof(msg), DONE_PREFIX "%s\n", token);
        uint64_t deadline = cryo_now_usec() + (uint64_t) timeout_sec * 1000000;
        int last = ECONNREFUSED;
        /* The source listens again only once its CRIU has ended: retry. */
        while (remaining_ms(deadline) > 0) {
                for (struct addrinfo *a = ai; a; a = a->ai_next) {
                        _cleanup_close_ int fd =
                                socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
                        if (fd < 0)
                                continue;
                        if (connect(fd, a->ai_addr, a->ai_addrlen) < 0) {
                                last = errno;
                                continue;
                        }
                        if (write_all(fd, msg) < 0) {
                                last = errno;
                                continue;
                        }
                        char line[LINE_MAX_];
                        int rl = read_line(fd, line, sizeof(line));
                        /* A reset or end without an answer: that was not the
                         * source's cryo (a connection CRIU's page server had
                         * queued, say).  Silence: it may have acted. */
                        if (rl == -ETIMEDOUT)
                                *maybe_delivered = true;
                        if (rl == 0 && !strcmp(line, "OK"))
                                return 0;
                        if (rl == 0) {
                                *maybe_delivered = false; /* it said no: it did nothing */
                                return cryo_error_set(err, EPROTO,
                                                      "the source refused the confirmation ('%s'): not the "
                                                      "source of this checkpoint?",
                                                      line);
                        }
                        last = -rl;
                }
                struct timespec ts = {0, 100 * 1000 * 1000};
                nanosleep(&ts, NULL);
        }
        return cryo_error_errno(err, last, "cannot confirm the migration to the source at %s:%d", address,
                                port);
}
