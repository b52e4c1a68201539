/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cryo-criu-hook: the action script cryo gives a `criu dump` command (the
 * post-copy dump, which cannot use libcriu's notifications: see
 * src/lib/engine/lazy.c).  CRIU runs it at every action with
 * CRTOOLS_SCRIPT_ACTION set; at "pre-dump", just before CRIU freezes the
 * tree, it tells cryo through the FIFO "pre-dump" in $CRYO_HOOK_DIR and
 * waits for cryo's byte on "pre-dump.done": cryo freezes the container in
 * between, polling every millisecond instead of CRIU's 100 ms steps.
 *
 * It never fails the dump: a non-zero exit would make CRIU abort, and if
 * cryo is not listening CRIU simply freezes the tree itself.  Links libc
 * only, since CRIU waits for it.
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

int main(int argc, char **argv) {
        (void) argv;
        const char *action = getenv("CRTOOLS_SCRIPT_ACTION");
        const char *dir = getenv("CRYO_HOOK_DIR");
        if (argc > 1 || !action) {
                fputs("Usage: cryo-criu-hook (run by CRIU as an --action-script, with "
                      "CRTOOLS_SCRIPT_ACTION and CRYO_HOOK_DIR set)\n",
                      stderr);
                return argc > 1 ? 2 : 0;
        }
        if (!dir || strcmp(action, "pre-dump") != 0)
                return 0;
        /* Opened before asking, so that cryo's answer cannot be missed; no
         * writer (cryo gone) reads as end of file, not as a hang. */
        int done = open_fifo(dir, "pre-dump.done", O_RDONLY);
        int ask = open_fifo(dir, "pre-dump", O_WRONLY);
        if (done < 0 || ask < 0)
                return 0;
        if (write(ask, "f", 1) != 1 || fcntl(done, F_SETFL, 0) < 0)
                return 0;
        char c;
        while (read(done, &c, 1) < 0 && errno == EINTR)
                ;
        return 0;
}
