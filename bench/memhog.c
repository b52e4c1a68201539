/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * memhog: allocate N MiB of private anonymous memory, fill it, then sleep.
 * A benchmark workload for checkpoint/restore (bench/run).
 *
 *   memhog SIZE_MIB random|typical [READY_FILE]
 *
 *   random   every byte from a counter-based generator (incompressible)
 *   typical  compressible, with structure, per 4 KiB page (index p):
 *              p % 8 in {0,1}  log-like text lines
 *              p % 8 == 2      an array of 64-byte records (ids, flags,
 *                              doubles, pointer-like values)
 *              otherwise       a 16-byte header, the rest zero (touched,
 *                              so the page is resident and CRIU dumps it)
 *
 * Once filled it writes "ready PID SIZE_MIB MODE" to READY_FILE (default
 * /tmp/memhog.ready, relative to its own root: inside a container that is
 * the container's /tmp) and sleeps.  SIGUSR1 re-generates the expected
 * contents and compares them with memory; the verdict ("PASS ..." or
 * "FAIL ...") goes to READY_FILE.verify.  SIGTERM/SIGINT exit at once (as
 * PID 1 of a container, the default action would be ignored).
 *
 * With MEMHOG_HEARTBEAT=FILE in the environment it also appends its
 * CLOCK_REALTIME time in ns, one line about every millisecond, to FILE
 * (O_APPEND, which CRIU restores without a size check): the largest gap is
 * how long the process did not run, e.g. the downtime of a migration
 * (bench/lazy-migration).  Not CLOCK_MONOTONIC: CRIU restores a tree into a
 * new time namespace whose monotonic clock goes on from the value it had at
 * the dump, which hides part of the downtime from the process itself.
 *
 * Everything is deterministic, so a restored process can verify that its
 * memory survived.  Built statically (bench/run does it) so it runs in a
 * busybox image.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096u

enum mode { MODE_RANDOM, MODE_TYPICAL };

static volatile sig_atomic_t want_verify;

static void on_usr1(int sig) {
        (void) sig;
        want_verify = 1;
}

static void on_term(int sig) {
        (void) sig;
        _exit(0);
}

static inline uint64_t mix64(uint64_t x) {
        /* splitmix64 finaliser: a good counter-based generator */
        x += 0x9e3779b97f4a7c15ull;
        x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
        x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
        return x ^ (x >> 31);
}

static const char *const words[] = {
        "GET",      "POST",           "PUT",        "DELETE",     "/api/v1/items", "/api/v1/users",
        "/healthz", "/static/app.js", "status=200", "status=404", "status=500",    "user=alice",
        "user=bob", "user=carol",     "cache=hit",  "cache=miss", "INFO",          "WARN",
        "DEBUG",
};
#define NWORDS (sizeof(words) / sizeof(words[0]))

static void fill_text(unsigned char *pg, uint64_t p) {
        size_t off = 0;
        uint64_t line = p * 64;
        while (off < PAGE) {
                char buf[256];
                uint64_t h = mix64(line);
                int n = snprintf(
                        buf, sizeof(buf), "2026-11-29T18:%02u:%02u.%03uZ %s %s %s id=%08x %s %s bytes=%u\n",
                        (unsigned) (line / 60000 % 60), (unsigned) (line / 1000 % 60),
                        (unsigned) (line % 1000), words[16 + h % 3], words[h % 4], words[4 + (h >> 8) % 4],
                        (unsigned) (line & 0xffffffffu), words[8 + (h >> 16) % 3], words[11 + (h >> 24) % 5],
                        (unsigned) ((h >> 32) % 65536));
                size_t len = (size_t) n;
                if (len > PAGE - off)
                        len = PAGE - off;
                memcpy(pg + off, buf, len);
                off += len;
                line++;
        }
}

struct record {
        uint64_t id;
        uint32_t flags;
        uint32_t refcount;
        double value;
        uint64_t next;
        uint64_t created;
        char tag[24];
};

static void fill_records(unsigned char *pg, uint64_t p) {
        struct record *r = (struct record *) pg;
        memset(pg, 0, PAGE);
        for (unsigned k = 0; k < PAGE / sizeof(*r); k++) {
                uint64_t id = p * (PAGE / sizeof(*r)) + k;
                r[k].id = id;
                r[k].flags = (uint32_t) (id % 7 == 0 ? 3 : 1);
                r[k].refcount = (uint32_t) (1 + id % 3);
                r[k].value = (double) (id % 1000) * 0.5;
                r[k].next = 0x7f0000000000ull + (id + 1) * sizeof(*r);
                r[k].created = 1796000000ull + id / 16;
                snprintf(r[k].tag, sizeof(r[k].tag), "item-%llu", (unsigned long long) (id % 100000));
        }
}

static void fill_page(unsigned char *pg, uint64_t p, enum mode m) {
        if (m == MODE_RANDOM) {
                uint64_t *w = (uint64_t *) pg;
                uint64_t base = p * (PAGE / 8);
                for (unsigned i = 0; i < PAGE / 8; i++)
                        w[i] = mix64(base + i);
                return;
        }
        switch (p % 8) {
        case 0:
        case 1:
                fill_text(pg, p);
                break;
        case 2:
                fill_records(pg, p);
                break;
        default: {
                uint64_t hdr[2] = {0x474f484d454d0001ull, p};
                memset(pg, 0, PAGE);
                memcpy(pg, hdr, sizeof(hdr));
                break;
        }
        }
}

static void write_file(const char *path, const char *text) {
        char tmp[4096];
        snprintf(tmp, sizeof(tmp), "%s.tmp", path);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                return;
        ssize_t n = write(fd, text, strlen(text));
        close(fd);
        if (n == (ssize_t) strlen(text))
                rename(tmp, path);
}

int main(int argc, char **argv) {
        if (argc < 3) {
                fprintf(stderr, "usage: %s SIZE_MIB random|typical [READY_FILE]\n", argv[0]);
                return 2;
        }
        char *end;
        unsigned long mib = strtoul(argv[1], &end, 10);
        if (*end || mib > (1ul << 20)) {
                fprintf(stderr, "memhog: bad size '%s'\n", argv[1]);
                return 2;
        }
        enum mode m;
        if (!strcmp(argv[2], "random"))
                m = MODE_RANDOM;
        else if (!strcmp(argv[2], "typical"))
                m = MODE_TYPICAL;
        else {
                fprintf(stderr, "memhog: mode must be random or typical\n");
                return 2;
        }
        const char *ready = argc > 3 ? argv[3] : "/tmp/memhog.ready";

        signal(SIGTERM, on_term);
        signal(SIGINT, on_term);
        struct sigaction sa = {.sa_handler = on_usr1};
        sigemptyset(&sa.sa_mask);
        sigaction(SIGUSR1, &sa, NULL);

        size_t size = (size_t) mib << 20;
        unsigned char *mem = NULL;
        if (size) {
                mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
                if (mem == MAP_FAILED) {
                        fprintf(stderr, "memhog: mmap %lu MiB: %s\n", mib, strerror(errno));
                        return 1;
                }
                for (uint64_t p = 0; p < size / PAGE; p++)
                        fill_page(mem + p * PAGE, p, m);
        }

        char line[256];
        snprintf(line, sizeof(line), "ready %d %lu %s\n", (int) getpid(), mib, argv[2]);
        write_file(ready, line);

        char vpath[4096];
        snprintf(vpath, sizeof(vpath), "%s.verify", ready);
        const char *hb_path = getenv("MEMHOG_HEARTBEAT");
        int hb = hb_path ? open(hb_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644) : -1;
        sigset_t block, old;
        sigemptyset(&block);
        sigaddset(&block, SIGUSR1);
        sigprocmask(SIG_BLOCK, &block, &old);
        for (;;) {
                while (!want_verify && hb < 0)
                        sigsuspend(&old);
                while (!want_verify && hb >= 0) {
                        struct timespec now, tick = {0, 1000 * 1000};
                        clock_gettime(CLOCK_REALTIME, &now);
                        char b[32];
                        int n = snprintf(b, sizeof(b), "%lld\n",
                                         (long long) now.tv_sec * 1000000000ll + now.tv_nsec);
                        if (write(hb, b, (size_t) n) != n) {
                                close(hb);
                                hb = -1;
                                break;
                        }
                        /* SIGUSR1 may arrive only while sleeping. */
                        sigprocmask(SIG_SETMASK, &old, NULL);
                        nanosleep(&tick, NULL);
                        sigprocmask(SIG_BLOCK, &block, NULL);
                }
                want_verify = 0;
                static unsigned char expect[PAGE];
                uint64_t bad = 0, first = 0;
                for (uint64_t p = 0; p < size / PAGE; p++) {
                        fill_page(expect, p, m);
                        if (memcmp(expect, mem + p * PAGE, PAGE)) {
                                if (!bad)
                                        first = p;
                                bad++;
                        }
                }
                if (bad)
                        snprintf(line, sizeof(line), "FAIL %llu of %llu pages differ (first %llu)\n",
                                 (unsigned long long) bad, (unsigned long long) (size / PAGE),
                                 (unsigned long long) first);
                else
                        snprintf(line, sizeof(line), "PASS %lu MiB %s\n", mib, argv[2]);
                write_file(vpath, line);
        }
}
