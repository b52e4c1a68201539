/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cryo-criu-hook: the action script cryo gives a CRIU it cannot call back
 * through libcriu.  CRIU runs it at every action with CRTOOLS_SCRIPT_ACTION
 * set; it answers two, and only when cryo made their FIFOs:
 *
 *  - "pre-dump", for the post-copy dump (a `criu dump` command, see
 *    src/lib/engine/lazy.c): just before CRIU freezes the tree, it tells
 *    cryo through the FIFO "pre-dump" in $CRYO_HOOK_DIR and waits for
 *    cryo's byte on "pre-dump.done": cryo freezes the container in
 *    between, polling every millisecond instead of CRIU's 100 ms steps.
 *  - "pre-resume", for a container restored by runc (listed in the CRIU
 *    configuration file cryo gives runc): the tree is restored but has not
 *    run yet; it sends the root's pid through "pre-resume" in CRIU's work
 *    directory (its working directory) and waits on "pre-resume.done"
 *    while cryo finishes the checksums (src/lib/plugins/container/
 *    resume-gate.c).
 *
 * It never fails CRIU: a non-zero exit would make a dump abort, and with
 * nobody listening CRIU simply goes on.  Links libc only, since CRIU waits
 * for it, at every action.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int open_fifo(const char *dir, const char *name, int flags) {
        char path[PATH_MAX];
        if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int) sizeof(path))
                return -1;
        return open(path, flags | O_NONBLOCK | O_CLOEXEC);
}

/* Knocks on `ask` with `msg` and waits for any answer on `ask`.done (end
 * of file, when cryo is gone, counts as one). */
static void knock(const char *dir, const char *ask_name, const char *msg) {
        char done_name[64];
        snprintf(done_name, sizeof(done_name), "%s.done", ask_name);
        /* Opened before asking, so that cryo's answer cannot be missed. */
        int done = open_fifo(dir, done_name, O_RDONLY);
        int ask = open_fifo(dir, ask_name, O_WRONLY);
        if (done < 0 || ask < 0)
                return;
        if (write(ask, msg, strlen(msg)) != (ssize_t) strlen(msg) || fcntl(done, F_SETFL, 0) < 0)
                return;
        char c;
        while (read(done, &c, 1) < 0 && errno == EINTR)
                ;
}

int main(int argc, char **argv) {
        (void) argv;
        const char *action = getenv("CRTOOLS_SCRIPT_ACTION");
        if (argc > 1 || !action) {
                fputs("Usage: cryo-criu-hook (run by CRIU as an action script, with "
                      "CRTOOLS_SCRIPT_ACTION set)\n",
                      stderr);
                return argc > 1 ? 2 : 0;
        }
        if (!strcmp(action, "pre-dump")) {
                const char *dir = getenv("CRYO_HOOK_DIR");
                if (dir)
                        knock(dir, "pre-dump", "f");
        } else if (!strcmp(action, "pre-resume")) {
                char msg[32];
                const char *pid = getenv("CRTOOLS_INIT_PID");
                snprintf(msg, sizeof(msg), "%s\n", pid ? pid : "0");
                knock(".", "pre-resume", msg);
        }
        return 0;
}
