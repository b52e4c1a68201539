/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * wl-counter [--status F] [--result F] OUT: an in-memory counter.
 *
 * Every 100 ms the counter goes up by one; its value is written to OUT
 * (through a temporary file and rename, so OUT always holds a whole number)
 * and printed as "counter N" on stdout.  After a restore it continues from
 * where it was, not from 0.  Made for containers too: the .static build runs
 * in a busybox image, and without --status/--result everything goes to
 * stdout.
 *
 * Verify: the counter matches its shadow copy (~counter), OUT holds the last
 * value written, and the counter never went backwards since the last
 * verification.
 */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *out;
static uint64_t counter, shadow = ~(uint64_t) 0, last_verified;

static void tick(void) {
        /* Keep the shadow in step by itself, so that damage to it persists. */
        counter++;
        shadow--;
        char line[32];
        int n = snprintf(line, sizeof(line), "%llu\n", (unsigned long long) counter);
        if (wl_write_file_atomic(out, line, (size_t) n) < 0)
                fprintf(stderr, "wl-counter: write %s: %s\n", out, strerror(errno));
        printf("counter %llu\n", (unsigned long long) counter);
}

static int verify(struct wl_verdict *v) {
        if (shadow != ~counter)
                return wl_fail(v, "counter %llu does not match its shadow copy",
                               (unsigned long long) counter);
        if (counter < last_verified)
                return wl_fail(v, "counter went back from %llu to %llu", (unsigned long long) last_verified,
                               (unsigned long long) counter);
        char buf[32] = "";
        int fd = open(out, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return wl_fail(v, "open %s: %m", out);
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n < 0)
                return wl_fail(v, "read %s: %m", out);
        buf[n] = '\0';
        unsigned long long in_file = strtoull(buf, NULL, 10);
        if (in_file != counter)
                return wl_fail(v, "%s holds %llu, counter is %llu", out, in_file,
                               (unsigned long long) counter);
        last_verified = counter;
        wl_note(v, "counter=%llu", (unsigned long long) counter);
        return 0;
}

static void corrupt(void) {
        shadow ^= 1;
}

int main(int argc, char **argv) {
        wl_init(argc, argv);
        if (wl_opt.nargs != 1)
                wl_die("usage: wl-counter [--status FILE] [--result FILE] OUTPUT");
        out = wl_opt.args[0];
        tick();
        pid_t me = getpid();
        wl_ready(&me, 1, "out %s\n", out);
        static const struct wl_ops ops = {
                .verify = verify, .corrupt = corrupt, .tick = tick, .tick_ms = 100};
        wl_run(&ops);
}
