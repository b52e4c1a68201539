/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * wl-unix --dir DIR: unix sockets survive checkpoint/restore.
 *
 *  - a SOCK_DGRAM socketpair with 5 queued datagrams of different sizes
 *    (boundaries, order and content must survive)
 *  - a SOCK_STREAM socketpair with 20000 queued bytes
 *  - a listening SOCK_STREAM socket bound to DIR/wl.sock; every client that
 *    connects gets one line "wl-unix token=<hex> served=<n>" (the token is
 *    in-memory state chosen at start, so a client can tell it reached the
 *    same process after restore)
 * Verify drains and re-queues the socketpairs and connects to the listener
 * itself.
 */
#include "wl.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define NDGRAMS    5
#define STREAM_LEN 20000

static const size_t dgram_len[NDGRAMS] = {1, 100, 1000, 4000, 60};
static int sd[2], ss[2], lsk;
static struct sockaddr_un addr;
static uint64_t token;
static unsigned served;

static void serve(int fd, short revents) {
        wl_token_answer(fd, "wl-unix", token, &served);
}

static void setup(void) {
        if (!wl_opt.dir)
                wl_die("--dir is required");
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        token = wl_mix((uint64_t) getpid() << 32 ^ (uint64_t) ts.tv_nsec ^ (uint64_t) ts.tv_sec);

        if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sd) || socketpair(AF_UNIX, SOCK_STREAM, 0, ss))
                wl_die_errno("socketpair");
        static unsigned char buf[STREAM_LEN];
        for (int i = 0; i < NDGRAMS; i++) {
                wl_fill(buf, dgram_len[i], 0xd0 + (uint64_t) i);
                if (send(sd[0], buf, dgram_len[i], 0) != (ssize_t) dgram_len[i])
                        wl_die_errno("send datagram %d", i);
        }
        wl_fill(buf, STREAM_LEN, 0x57);
        if (wl_write_full(ss[0], buf, STREAM_LEN))
                wl_die_errno("write stream");

        addr.sun_family = AF_UNIX;
        if (snprintf(addr.sun_path, sizeof(addr.sun_path), "%s/wl.sock", wl_opt.dir) >=
            (int) sizeof(addr.sun_path))
                wl_die("socket path too long");
        unlink(addr.sun_path);
        lsk = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (lsk < 0 || bind(lsk, (struct sockaddr *) &addr, sizeof(addr)) || listen(lsk, 16))
                wl_die_errno("listen on %s", addr.sun_path);
        wl_watch(lsk, POLLIN, serve);
}

static int check_dgrams(struct wl_verdict *v) {
        static unsigned char got[NDGRAMS + 1][4096];
        ssize_t len[NDGRAMS + 1];
        int n = 0;
        while (n <= NDGRAMS) {
                len[n] = recv(sd[1], got[n], sizeof(got[n]), MSG_DONTWAIT);
                if (len[n] < 0)
                        break;
                n++;
        }
        /* Put back what we took, in order, whatever we found. */
        for (int i = 0; i < n; i++)
                send(sd[0], got[i], (size_t) len[i], 0);
        if (n != NDGRAMS)
                return wl_fail(v, "datagram socket holds %d datagrams, want %d", n, NDGRAMS);
        for (int i = 0; i < NDGRAMS; i++) {
                if ((size_t) len[i] != dgram_len[i])
                        return wl_fail(v, "datagram %d has %zd bytes, want %zu", i, len[i], dgram_len[i]);
                size_t off = wl_check_fill(got[i], (size_t) len[i], 0xd0 + (uint64_t) i);
                if (off != (size_t) -1)
                        return wl_fail(v, "datagram %d differs at byte %zu", i, off);
        }
        return 0;
}

static int check_stream(struct wl_verdict *v) {
        static unsigned char got[STREAM_LEN + 1];
        size_t n = 0;
        for (;;) {
                ssize_t r = recv(ss[1], got + n, sizeof(got) - n, MSG_DONTWAIT);
                if (r <= 0)
                        break;
                n += (size_t) r;
        }
        wl_write_full(ss[0], got, n);
        if (n != STREAM_LEN)
                return wl_fail(v, "stream socketpair holds %zu bytes, want %d", n, STREAM_LEN);
        size_t off = wl_check_fill(got, n, 0x57);
        if (off != (size_t) -1)
                return wl_fail(v, "stream data differs at byte %zu", off);
        return 0;
}

static int check_listener(struct wl_verdict *v) {
        struct sockaddr_un now;
        socklen_t alen = sizeof(now);
        if (getsockname(lsk, (struct sockaddr *) &now, &alen))
                return wl_fail(v, "getsockname: %m");
        if (strcmp(now.sun_path, addr.sun_path))
                return wl_fail(v, "listener is bound to '%s', want '%s'", now.sun_path, addr.sun_path);
        int acc = 0;
        socklen_t olen = sizeof(acc);
        if (getsockopt(lsk, SOL_SOCKET, SO_ACCEPTCONN, &acc, &olen) || !acc)
                return wl_fail(v, "socket is no longer listening");

        int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c < 0)
                return wl_fail(v, "socket: %m");
        if (connect(c, (struct sockaddr *) &addr, sizeof(addr))) {
                close(c);
                return wl_fail(v, "connect to %s: %m", addr.sun_path);
        }
        if (wl_token_check(v, c, lsk, "wl-unix", token, &served))
                return -1;
        return 0;
}

static int verify(struct wl_verdict *v) {
        if (check_dgrams(v) || check_stream(v) || check_listener(v))
                return -1;
        wl_note(v, "token=%016llx served=%u", (unsigned long long) token, served);
        return 0;
}

static void corrupt(void) {
        char b[4096];
        recv(sd[1], b, sizeof(b), MSG_DONTWAIT);
}

int main(int argc, char **argv) {
        wl_init(argc, argv);
        setup();
        pid_t me = getpid();
        wl_ready(&me, 1, "socket %s\ntoken %016llx\n", addr.sun_path, (unsigned long long) token);
        static const struct wl_ops ops = {.verify = verify, .corrupt = corrupt};
        wl_run(&ops);
}
