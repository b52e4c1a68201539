/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * wl-tree: a process tree keeps its shape, ids and memory.
 *
 *   0 top (started by the test, a session leader through setsid(1))
 *   ├─ 1 child, setsid(): its own session and group
 *   │   └─ 2 grandchild (in 1's session and group)
 *   ├─ 3 child, setpgid(0, 0): its own group in top's session
 *   │   └─ 4 grandchild (in 3's group)
 *   └─ 5 child in top's group
 *       └─ 6 grandchild, setpgid(0, 0): its own group
 *
 * Every node keeps 256 KiB of private memory with a node-specific pattern
 * and talks to the top over its own pair of pipes.  Verify asks each node
 * for its pid, ppid, pgid, sid and whether its memory is intact, and compares
 * them with what the node reported at start.  The status file lists all 7
 * pids, top first.
 */
#include "wl.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define NNODES    7
#define MEM_BYTES (256 * 1024)

enum { GRP_OWN_SESSION = 1, GRP_OWN_GROUP = 2 };

static const int parent_of[NNODES] = {-1, 0, 1, 0, 3, 0, 5};
static const int grouping[NNODES] = {0, GRP_OWN_SESSION, 0, GRP_OWN_GROUP, 0, 0, GRP_OWN_GROUP};

struct msg {
        int32_t idx, pid, ppid, pgid, sid;
        uint32_t mem_ok;
};

static int req[NNODES][2], resp[NNODES][2];
static struct msg expect[NNODES];

/* ---- node side ---- */

static void close_others(int self) {
        for (int i = 1; i < NNODES; i++) {
                if (i != self) {
                        close(req[i][0]);
                        close(resp[i][1]);
                }
                close(req[i][1]);
                close(resp[i][0]);
        }
}

static struct msg describe(int idx, const unsigned char *mem) {
        return (struct msg){.idx = idx,
                            .pid = getpid(),
                            .ppid = getppid(),
                            .pgid = getpgid(0),
                            .sid = getsid(0),
                            .mem_ok = mem &&
                                      wl_check_fill(mem, MEM_BYTES, 0x7ee0 + (uint64_t) idx) == (size_t) -1};
}

static _Noreturn void node_main(int idx, pid_t child) {
        close_others(idx);
        unsigned char *mem = malloc(MEM_BYTES);
        if (!mem)
                _exit(2);
        wl_fill(mem, MEM_BYTES, 0x7ee0 + (uint64_t) idx);
        struct msg m = describe(idx, mem);
        if (wl_write_full(resp[idx][1], &m, sizeof(m)))
                _exit(3);
        for (;;) {
                char c;
                ssize_t n = read(req[idx][0], &c, 1);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break; /* the top is gone or shutting down */
                if (c == 'v') {
                        m = describe(idx, mem);
                        if (wl_write_full(resp[idx][1], &m, sizeof(m)))
                                break;
                } else if (c == 'c') {
                        mem[MEM_BYTES / 3] ^= 0x10;
                }
        }
        if (child > 0)
                while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
                        ;
        _exit(0);
}

static void apply_grouping(int idx) {
        if (grouping[idx] == GRP_OWN_SESSION && setsid() < 0)
                _exit(4);
        if (grouping[idx] == GRP_OWN_GROUP && setpgid(0, 0))
                _exit(5);
}

/* Forks child node idx and, below it, grandchild node idx + 1. */
static pid_t spawn_branch(int idx) {
        pid_t pid = fork();
        if (pid < 0)
                wl_die_errno("fork");
        if (pid)
                return pid;
        wl_child_reset();
        apply_grouping(idx);
        pid_t g = fork();
        if (g < 0)
                _exit(6);
        if (g == 0) {
                apply_grouping(idx + 1);
                node_main(idx + 1, 0);
        }
        node_main(idx, g);
}

/* ---- top side ---- */

static pid_t children[3];

static void setup(void) {
        for (int i = 1; i < NNODES; i++)
                if (pipe(req[i]) || pipe(resp[i]))
                        wl_die_errno("pipe");
        children[0] = spawn_branch(1);
        children[1] = spawn_branch(3);
        children[2] = spawn_branch(5);
        for (int i = 1; i < NNODES; i++) {
                close(req[i][0]);
                close(resp[i][1]);
        }

        expect[0] = describe(0, NULL);
        for (int i = 1; i < NNODES; i++) {
                if (wl_read_full(resp[i][0], &expect[i], sizeof(expect[i]), 10000) != sizeof(expect[i]))
                        wl_die("node %d did not report", i);
                if (!expect[i].mem_ok)
                        wl_die("node %d memory broken at start", i);
        }
        /* Sanity: the tree has the intended shape before anyone checkpoints it. */
        for (int i = 1; i < NNODES; i++) {
                const struct msg *m = &expect[i], *p = &expect[parent_of[i]];
                if (m->ppid != p->pid)
                        wl_die("node %d: ppid %d, want %d", i, m->ppid, p->pid);
                int32_t want_pgid = grouping[i] ? m->pid : p->pgid;
                int32_t want_sid = grouping[i] == GRP_OWN_SESSION ? m->pid : p->sid;
                if (m->pgid != want_pgid || m->sid != want_sid)
                        wl_die("node %d: pgid/sid %d/%d, want %d/%d", i, m->pgid, m->sid, want_pgid,
                               want_sid);
        }
}

static int verify(struct wl_verdict *v) {
        struct msg now = describe(0, NULL);
        now.mem_ok = 0;
        if (now.pid != expect[0].pid || now.pgid != expect[0].pgid || now.sid != expect[0].sid)
                return wl_fail(v, "top: pid/pgid/sid %d/%d/%d, want %d/%d/%d", now.pid, now.pgid, now.sid,
                               expect[0].pid, expect[0].pgid, expect[0].sid);
        for (int c = 0; c < 3; c++) {
                pid_t r = waitpid(children[c], NULL, WNOHANG);
                if (r != 0)
                        return wl_fail(v, "child %d has exited", (int) children[c]);
        }
        for (int i = 1; i < NNODES; i++) {
                const struct msg *e = &expect[i];
                struct msg m;
                if (wl_write_full(req[i][1], "v", 1))
                        return wl_fail(v, "node %d (pid %d): cannot send request: %m", i, e->pid);
                ssize_t n = wl_read_full(resp[i][0], &m, sizeof(m), 5000);
                if (n != sizeof(m))
                        return wl_fail(v, "node %d (pid %d) did not answer (dead?)", i, e->pid);
                if (m.idx != i || m.pid != e->pid || m.ppid != e->ppid)
                        return wl_fail(v, "node %d: pid/ppid %d/%d, want %d/%d", i, m.pid, m.ppid, e->pid,
                                       e->ppid);
                if (m.pgid != e->pgid || m.sid != e->sid)
                        return wl_fail(v, "node %d (pid %d): pgid/sid %d/%d, want %d/%d", i, m.pid, m.pgid,
                                       m.sid, e->pgid, e->sid);
                if (!m.mem_ok)
                        return wl_fail(v, "node %d (pid %d): memory differs", i, m.pid);
        }
        wl_note(v, "nodes=%d", NNODES);
        return 0;
}

static void corrupt(void) {
        wl_write_full(req[6][1], "c", 1);
}

static void shutdown_tree(void) {
        for (int i = 1; i < NNODES; i++)
                close(req[i][1]);
        for (int c = 0; c < 3; c++)
                while (waitpid(children[c], NULL, 0) < 0 && errno == EINTR)
                        ;
}

int main(int argc, char **argv) {
        wl_init(argc, argv);
        setup();
        pid_t pids[NNODES];
        for (int i = 0; i < NNODES; i++)
                pids[i] = expect[i].pid;
        wl_ready(pids, NNODES, NULL);
        static const struct wl_ops ops = {.verify = verify, .corrupt = corrupt, .shutdown = shutdown_tree};
        wl_run(&ops);
}
