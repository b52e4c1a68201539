/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * wl-tcp-listen --port N: a listening TCP socket survives checkpoint/restore.
 *
 * Listens on 127.0.0.1:N (N = 0: the kernel picks; the status file says
 * "port <n>").  Every client gets one line
 *   "wl-tcp token=<hex> served=<n>"
 * where the token is chosen at start and served counts clients, so a test
 * can see that after restore it talks to the same process with its memory
 * (same token, counter continues).  Verify checks the bound address and
 * SO_REUSEADDR and connects to itself.
 */
#include "wl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int lsk;
static uint16_t port;
static uint64_t token;
static unsigned served;

static void serve(int fd, short revents) {
        wl_token_answer(fd, "wl-tcp", token, &served);
}

static void setup(void) {
        if (wl_opt.port < 0)
                wl_die("--port is required (0 picks a free one)");
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        token = wl_mix((uint64_t) getpid() << 32 ^ (uint64_t) ts.tv_nsec ^ (uint64_t) ts.tv_sec);

        lsk = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (lsk < 0)
                wl_die_errno("socket");
        int one = 1;
        if (setsockopt(lsk, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)))
                wl_die_errno("SO_REUSEADDR");
        struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t) wl_opt.port)};
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (bind(lsk, (struct sockaddr *) &sin, sizeof(sin)) || listen(lsk, 16))
                wl_die_errno("listen on 127.0.0.1:%d", wl_opt.port);
        socklen_t len = sizeof(sin);
        if (getsockname(lsk, (struct sockaddr *) &sin, &len))
                wl_die_errno("getsockname");
        port = ntohs(sin.sin_port);
        wl_watch(lsk, POLLIN, serve);
}

static int verify(struct wl_verdict *v) {
        struct sockaddr_in sin;
        socklen_t len = sizeof(sin);
        if (getsockname(lsk, (struct sockaddr *) &sin, &len))
                return wl_fail(v, "getsockname: %m");
        if (sin.sin_family != AF_INET || ntohs(sin.sin_port) != port ||
            sin.sin_addr.s_addr != htonl(INADDR_LOOPBACK))
                return wl_fail(v, "listener is bound to %s:%u, want 127.0.0.1:%u", inet_ntoa(sin.sin_addr),
                               ntohs(sin.sin_port), port);
        int val = 0;
        socklen_t olen = sizeof(val);
        if (getsockopt(lsk, SOL_SOCKET, SO_ACCEPTCONN, &val, &olen) || !val)
                return wl_fail(v, "socket is no longer listening");
        olen = sizeof(val);
        if (getsockopt(lsk, SOL_SOCKET, SO_REUSEADDR, &val, &olen) || !val)
                return wl_fail(v, "SO_REUSEADDR was lost");

        int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c < 0)
                return wl_fail(v, "socket: %m");
        if (connect(c, (struct sockaddr *) &sin, sizeof(sin))) {
                close(c);
                return wl_fail(v, "connect to 127.0.0.1:%u: %m", port);
        }
        if (wl_token_check(v, c, lsk, "wl-tcp", token, &served))
                return -1;
        wl_note(v, "port=%u token=%016llx served=%u", port, (unsigned long long) token, served);
        return 0;
}

static void corrupt(void) {
        int zero = 0;
        setsockopt(lsk, SOL_SOCKET, SO_REUSEADDR, &zero, sizeof(zero));
}

int main(int argc, char **argv) {
        wl_init(argc, argv);
        setup();
        pid_t me = getpid();
        wl_ready(&me, 1, "port %u\ntoken %016llx\n", port, (unsigned long long) token);
        static const struct wl_ops ops = {.verify = verify, .corrupt = corrupt};
        wl_run(&ops);
}
