/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * wl-memory: memory of every common kind survives checkpoint/restore.
 *
 *  - brk heap: a linked list of small malloc()ed nodes, each with a pattern
 *  - a private anonymous mapping with a pattern
 *  - a MAP_SHARED anonymous mapping with a pattern, mapped twice (mremap
 *    alias): after restore a write through one view must show in the other
 *  - a read-only private mapping (content and protection)
 *  - a large private region (--size-mb, default 64) where every 7th page was
 *    never touched: touched pages keep their pattern, untouched stay zero
 * Every region is checked against the pattern generator itself (not only a
 * stored checksum) and against the checksum taken at start.
 */
#include "wl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define NODES      4096
#define NODE_BYTES 200
#define ANON_SIZE  (8u << 20)
#define SHM_SIZE   (4u << 20)
#define RO_SIZE    (1u << 20)

struct node {
        struct node *next;
        unsigned idx;
        unsigned char data[NODE_BYTES];
};

static struct node *list;
static unsigned char *anon, *shm, *shm_alias, *ro, *big;
static size_t big_size, page;
static uint64_t sum_anon, sum_shm, sum_ro, sum_big;

static uint64_t big_sum(void) {
        return wl_hash(big, big_size);
}

static bool page_touched(size_t i) {
        return i % 7 != 3;
}

static void setup(void) {
        page = (size_t) sysconf(_SC_PAGESIZE);
        big_size = (size_t) (wl_opt.size_mb ? wl_opt.size_mb : 64) << 20;

        struct node **tail = &list;
        for (unsigned i = 0; i < NODES; i++) {
                struct node *n = malloc(sizeof(*n));
                if (!n)
                        wl_die("malloc");
                n->next = NULL;
                n->idx = i;
                wl_fill(n->data, sizeof(n->data), 0x1000 + i);
                *tail = n;
                tail = &n->next;
        }

        anon = mmap(NULL, ANON_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        shm = mmap(NULL, SHM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        ro = mmap(NULL, RO_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        big = mmap(NULL, big_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (anon == MAP_FAILED || shm == MAP_FAILED || ro == MAP_FAILED || big == MAP_FAILED)
                wl_die_errno("mmap");
        /* A second view of the same shared memory object. */
        shm_alias = mremap(shm, 0, SHM_SIZE, MREMAP_MAYMOVE);
        if (shm_alias == MAP_FAILED)
                wl_die_errno("mremap alias");

        wl_fill(anon, ANON_SIZE, 0xa11);
        wl_fill(shm, SHM_SIZE, 0x5a5);
        wl_fill(ro, RO_SIZE, 0x707);
        if (mprotect(ro, RO_SIZE, PROT_READ))
                wl_die_errno("mprotect");
        for (size_t i = 0; i < big_size / page; i++)
                if (page_touched(i))
                        wl_fill(big + i * page, page, 0xb16000 + i);

        sum_anon = wl_hash(anon, ANON_SIZE);
        sum_shm = wl_hash(shm, SHM_SIZE);
        sum_ro = wl_hash(ro, RO_SIZE);
        sum_big = big_sum();
}

static int check_prot(struct wl_verdict *v, void *addr, const char *want) {
        FILE *f = fopen("/proc/self/maps", "re");
        if (!f)
                return wl_fail(v, "open /proc/self/maps: %m");
        char line[512], perms[5] = "";
        bool found = false;
        while (!found && fgets(line, sizeof(line), f)) {
                unsigned long lo, hi;
                if (sscanf(line, "%lx-%lx %4s", &lo, &hi, perms) == 3)
                        found = (unsigned long) addr >= lo && (unsigned long) addr < hi;
        }
        fclose(f);
        if (!found)
                return wl_fail(v, "mapping %p not found in /proc/self/maps", addr);
        if (strcmp(perms, want))
                return wl_fail(v, "mapping %p has perms %s, want %s", addr, perms, want);
        return 0;
}

static int verify(struct wl_verdict *v) {
        size_t off;
        unsigned count = 0;
        for (struct node *n = list; n; n = n->next, count++) {
                if (n->idx != count)
                        return wl_fail(v, "heap list node %u has index %u", count, n->idx);
                if ((off = wl_check_fill(n->data, sizeof(n->data), 0x1000 + count)) != (size_t) -1)
                        return wl_fail(v, "heap node %u differs at byte %zu", count, off);
        }
        if (count != NODES)
                return wl_fail(v, "heap list has %u nodes, want %u", count, NODES);

        if ((off = wl_check_fill(anon, ANON_SIZE, 0xa11)) != (size_t) -1)
                return wl_fail(v, "private anon mapping differs at byte %zu", off);
        if (wl_hash(anon, ANON_SIZE) != sum_anon)
                return wl_fail(v, "private anon checksum changed");

        if ((off = wl_check_fill(shm, SHM_SIZE, 0x5a5)) != (size_t) -1)
                return wl_fail(v, "shared anon mapping differs at byte %zu", off);
        if (wl_hash(shm_alias, SHM_SIZE) != sum_shm)
                return wl_fail(v, "shared anon alias checksum differs");
        /* Still one object? A write through one view shows in the other. */
        unsigned char old = shm[12345];
        shm[12345] = (unsigned char) ~old;
        bool shared = shm_alias[12345] == (unsigned char) ~old;
        shm[12345] = old;
        if (!shared)
                return wl_fail(v, "MAP_SHARED mapping and its alias are no longer the same memory");

        if ((off = wl_check_fill(ro, RO_SIZE, 0x707)) != (size_t) -1)
                return wl_fail(v, "read-only mapping differs at byte %zu", off);
        if (wl_hash(ro, RO_SIZE) != sum_ro)
                return wl_fail(v, "read-only mapping checksum changed");
        if (check_prot(v, ro, "r--p"))
                return -1;
        if (check_prot(v, shm, "rw-s"))
                return -1;

        static const unsigned char zero[65536];
        for (size_t i = 0; i < big_size / page; i++) {
                unsigned char *p = big + i * page;
                if (page_touched(i)) {
                        if ((off = wl_check_fill(p, page, 0xb16000 + i)) != (size_t) -1)
                                return wl_fail(v, "large region page %zu differs at byte %zu", i, off);
                } else if (memcmp(p, zero, page)) {
                        return wl_fail(v, "large region page %zu was never written but is not zero", i);
                }
        }
        if (big_sum() != sum_big)
                return wl_fail(v, "large region checksum changed");

        wl_note(v, "heap_nodes=%u big_mb=%zu sum=%016llx", count, big_size >> 20,
                (unsigned long long) (sum_anon ^ sum_shm ^ sum_ro ^ sum_big));
        return 0;
}

static void corrupt(void) {
        big[big_size / 2 + 17] ^= 0x40;
}

int main(int argc, char **argv) {
        wl_init(argc, argv);
        setup();
        pid_t me = getpid();
        wl_ready(&me, 1, NULL);
        static const struct wl_ops ops = {.verify = verify, .corrupt = corrupt};
        wl_run(&ops);
}
