/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * wl-pipes: pipes between a parent and its child survive with their data.
 *
 * Pipe A (child -> parent) is enlarged to 256 KiB and the child writes
 * 100000 bytes into it that nobody reads: they sit in the pipe buffer across
 * the checkpoint.  Pipe B (parent -> child) carries requests.
 *
 * Verify (parent): pipe A still holds exactly the bytes (FIONREAD) and its
 * size; then the parent asks the child over B for a reply, which the child
 * appends to A: reading A must give the original bytes followed by the reply
 * (child pid/ppid), proving both ends are still the same pipes shared by
 * both processes.  The parent then puts the bytes back (it holds a write end
 * of A too), so verification can be repeated.
 */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define PIPE_SIZE (256 * 1024)
#define DATA_LEN  100000
#define SEED      0x919e

struct reply {
        char magic[8];
        int32_t pid, ppid;
};

static int a[2], b[2];
static pid_t child;
static unsigned char buf[DATA_LEN + sizeof(struct reply)];

static _Noreturn void child_main(void) {
        wl_child_reset();
        close(a[0]);
        close(b[1]);
        static unsigned char data[DATA_LEN];
        wl_fill(data, DATA_LEN, SEED);
        if (wl_write_full(a[1], data, DATA_LEN))
                _exit(2);
        for (;;) {
                char req;
                ssize_t n = read(b[0], &req, 1);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        _exit(0); /* parent gone */
                if (req == 'p') {
                        struct reply r = {.magic = "wlpipes", .pid = getpid(), .ppid = getppid()};
                        if (wl_write_full(a[1], &r, sizeof(r)))
                                _exit(3);
                }
        }
}

static int pending(int fd) {
        int n = -1;
        if (ioctl(fd, FIONREAD, &n))
                return -1;
        return n;
}

static void setup(void) {
        if (pipe(a) || pipe(b))
                wl_die_errno("pipe");
        if (fcntl(a[0], F_SETPIPE_SZ, PIPE_SIZE) < PIPE_SIZE)
                wl_die_errno("F_SETPIPE_SZ");
        child = fork();
        if (child < 0)
                wl_die_errno("fork");
        if (child == 0)
                child_main();
        close(b[0]);
        /* Keep a[1] too: verification puts the data back. */
        for (int i = 0; i < 100 && pending(a[0]) < DATA_LEN; i++)
                wl_sleep_ms(50);
        if (pending(a[0]) != DATA_LEN)
                wl_die("child did not fill the pipe (%d bytes)", pending(a[0]));
}

static int verify(struct wl_verdict *v) {
        int waiting = pending(a[0]);
        if (waiting != DATA_LEN)
                return wl_fail(v, "pipe A holds %d bytes, want %d", waiting, DATA_LEN);
        int size = fcntl(a[0], F_GETPIPE_SZ);
        if (size != PIPE_SIZE)
                return wl_fail(v, "pipe A size is %d, want %d", size, PIPE_SIZE);
        if (waitpid(child, NULL, WNOHANG) != 0)
                return wl_fail(v, "child %d is gone", (int) child);

        if (wl_write_full(b[1], "p", 1))
                return wl_fail(v, "write request to child: %m");
        ssize_t n = wl_read_full(a[0], buf, sizeof(buf), 5000);
        if (n < 0)
                return wl_fail(v, "read pipe A: %m");
        /* From here on, put back whatever we took before failing. */
        int rc = 0;
        size_t off;
        struct reply r;
        if ((size_t) n != sizeof(buf)) {
                rc = wl_fail(v, "pipe A gave %zd bytes, want %zu (child reply missing?)", n, sizeof(buf));
        } else if ((off = wl_check_fill(buf, DATA_LEN, SEED)) != (size_t) -1) {
                rc = wl_fail(v, "pipe A data differs at byte %zu", off);
        } else {
                memcpy(&r, buf + DATA_LEN, sizeof(r));
                if (memcmp(r.magic, "wlpipes", 8))
                        rc = wl_fail(v, "child reply is garbage");
                else if (r.pid != child || r.ppid != getpid())
                        rc = wl_fail(v, "child says pid %d ppid %d, want %d %d", r.pid, r.ppid, (int) child,
                                     (int) getpid());
        }
        if (wl_write_full(a[1], buf, (size_t) n < DATA_LEN ? (size_t) n : DATA_LEN))
                return wl_fail(v, "cannot refill pipe A: %m");
        if (rc == 0)
                wl_note(v, "child=%d buffered=%d", (int) child, DATA_LEN);
        return rc;
}

static void corrupt(void) {
        /* Rotate the buffered data by one byte. */
        char c;
        if (read(a[0], &c, 1) == 1)
                wl_write_full(a[1], &c, 1);
}

static void shutdown_child(void) {
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
}

int main(int argc, char **argv) {
        wl_init(argc, argv);
        setup();
        pid_t pids[2] = {getpid(), child};
        wl_ready(pids, 2, NULL);
        static const struct wl_ops ops = {.verify = verify, .corrupt = corrupt, .shutdown = shutdown_child};
        wl_run(&ops);
}
