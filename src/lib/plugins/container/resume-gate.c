/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Holding a restored container until its checkpoint's checksums pass.
 *
 * A container restore hands the images to runc, whose CRIU cryo cannot
 * call back (runc owns CRIU's notifications).  CRIU does run the action
 * scripts of its configuration file, in RPC mode too (criu/action-
 * scripts.c), and at "pre-resume" every task is restored but still held
 * in ptrace stop: not one instruction of the tree has run.  So cryo lists
 * cryo-criu-hook there, and the hook asks through the FIFO "pre-resume"
 * in CRIU's work directory (its working directory, criu/cr-service.c) and
 * waits on "pre-resume.done".  The gate's thread answers once the
 * checksums, computed meanwhile (ckpt_verify_begin), are known: go on, or
 * first kill the tree and that CRIU, so that the tree never runs
 * (engine_end_held_tree; freezing its cgroup instead would not do: runc
 * puts CRIU, and so this hook, into the container's cgroup).
 *
 * CRIU ignores the script's exit code at pre-resume, which is why a bad
 * checkpoint is killed from here rather than refused by the hook.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/engine.h"
#include "plugins/container/container.h"
#include "util/cleanup.h"

struct resume_gate {
        pthread_t thread;
        struct cryo_checkpoint *ck;
        int ask_fd;    /* "pre-resume", read end */
        int done_fd;   /* "pre-resume.done", opened read-write: the hook blocks until answered */
        int cancel_fd; /* eventfd: the restore returned without asking */
        /* Written by the thread, read after joining it. */
        bool asked;
        int result;
        struct cryo_error *err;
};

static void *gate_thread(void *arg) {
        struct resume_gate *g = arg;
        struct pollfd p[2] = {{.fd = g->ask_fd, .events = POLLIN}, {.fd = g->cancel_fd, .events = POLLIN}};
        for (;;) {
                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return NULL;
                }
                if (p[0].revents & POLLIN)
                        break;
                if (p[1].revents)
                        return NULL;
        }
        /* "<root pid>\n" */
        char buf[32] = "";
        ssize_t n = read(g->ask_fd, buf, sizeof(buf) - 1);
        pid_t root = n > 0 ? (pid_t) strtol(buf, NULL, 10) : 0;
        g->asked = true;
        g->result = ckpt_verify_end(g->ck, &g->err);
        if (g->result < 0 && root > 0)
                engine_end_held_tree(root);
        (void) !write(g->done_fd, g->result < 0 ? "k" : "g", 1);
        return NULL;
}

static int make_fifo(int dirfd, const char *name, struct cryo_error **err) {
        (void) unlinkat(dirfd, name, 0);
        if (mkfifoat(dirfd, name, 0600) < 0)
                return cryo_error_errno(err, errno, "cannot create %s", name);
        return 0;
}

int resume_gate_open(const char *work_dir, struct cryo_checkpoint *ck, struct resume_gate **out,
                     struct cryo_error **err) {
        _cleanup_close_ int dirfd = open(work_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dirfd < 0)
                return cryo_error_errno(err, errno, "cannot open %s", work_dir);
        _cleanup_(resume_gate_freep) struct resume_gate *g = calloc(1, sizeof(*g));
        if (!g)
                return cryo_error_set(err, ENOMEM, "out of memory");
        g->ck = ck;
        g->ask_fd = g->done_fd = g->cancel_fd = -1;
        int r = make_fifo(dirfd, "pre-resume", err);
        if (r >= 0)
                r = make_fifo(dirfd, "pre-resume.done", err);
        if (r < 0)
                return r;
        g->ask_fd = openat(dirfd, "pre-resume", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        g->done_fd = openat(dirfd, "pre-resume.done", O_RDWR | O_CLOEXEC);
        g->cancel_fd = eventfd(0, EFD_CLOEXEC);
        if (g->ask_fd < 0 || g->done_fd < 0 || g->cancel_fd < 0)
                return cryo_error_errno(err, errno, "cannot open the resume gate in %s", work_dir);
        r = pthread_create(&g->thread, NULL, gate_thread, g);
        if (r != 0) {
                /* No thread to stop: resume_gate_free() must not join. */
                close(steal_fd(&g->cancel_fd));
                return cryo_error_errno(err, r, "cannot start the resume gate");
        }
        *out = steal_pointer(&g);
        return 0;
}

static void stop_thread(struct resume_gate *g) {
        if (g->cancel_fd < 0)
                return;
        uint64_t one = 1;
        (void) !write(g->cancel_fd, &one, sizeof(one));
        pthread_join(g->thread, NULL);
        close(steal_fd(&g->cancel_fd));
}

int resume_gate_close(struct resume_gate *g, bool *held, struct cryo_error **err) {
        stop_thread(g);
        *held = g->asked;
        if (!g->asked)
                return ckpt_verify_end(g->ck, err);
        if (g->result < 0 && err && !*err)
                *err = steal_pointer(&g->err);
        return g->result;
}

void resume_gate_free(struct resume_gate *g) {
        if (!g)
                return;
        stop_thread(g);
        cryo_closep(&g->ask_fd);
        cryo_closep(&g->done_fd);
        cryo_error_free(g->err);
        free(g);
}
