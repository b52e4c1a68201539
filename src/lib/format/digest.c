/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "digest.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
/* for XXH3_state_t on the stack: no allocation that could fail */
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "util/cleanup.h"

/* 1 MiB stays in L2 while XXH3 runs over it; page-aligned because the
 * kernel's copy to user space is several times faster into an aligned
 * buffer on this hardware (see rootfs/tar-internal.h). */
#define READ_BUF (1u << 20)

struct chunk_task {
        size_t file;
        uint64_t offset;
        uint64_t len;
        XXH128_hash_t *out;
};

struct digest_run {
        int dirfd;
        struct digest_file *files;
        struct chunk_task *tasks;
        size_t n_tasks;
        atomic_size_t next;
        /* The first failure wins; the others stop at their next task. */
        atomic_int error; /* positive errno */
        atomic_size_t error_file;
        atomic_bool shrank;
};

static void run_fail(struct digest_run *run, size_t file, int code, bool shrank) {
        int none = 0;
        if (atomic_compare_exchange_strong(&run->error, &none, code)) {
                atomic_store(&run->error_file, file);
                atomic_store(&run->shrank, shrank);
        }
}

static int hash_chunk(int fd, const struct chunk_task *t, XXH3_state_t *state, uint8_t *buf, bool *shrank) {
        if (XXH3_128bits_reset(state) != XXH_OK)
                return ENOMEM;
        uint64_t done = 0;
        while (done < t->len) {
                size_t want = t->len - done < READ_BUF ? (size_t) (t->len - done) : READ_BUF;
                ssize_t n = pread(fd, buf, want, (off_t) (t->offset + done));
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return errno;
                }
                if (n == 0) {
                        *shrank = true;
                        return EIO;
                }
                (void) XXH3_128bits_update(state, buf, (size_t) n);
                done += (uint64_t) n;
        }
        *t->out = XXH3_128bits_digest(state);
        return 0;
}

static void *worker(void *userdata) {
        struct digest_run *run = userdata;
        XXH3_state_t state;
        XXH3_INITSTATE(&state);
        _cleanup_free_ uint8_t *buf = NULL;
        if (posix_memalign((void **) &buf, 4096, READ_BUF) != 0) {
                run_fail(run, 0, ENOMEM, false);
                return NULL;
        }
        /* Consecutive tasks are mostly chunks of the same file: keep it open. */
        size_t open_file = SIZE_MAX;
        _cleanup_close_ int fd = -1;
        for (;;) {
                size_t i = atomic_fetch_add(&run->next, 1);
                if (i >= run->n_tasks || atomic_load(&run->error))
                        break;
                const struct chunk_task *t = &run->tasks[i];
                if (t->file != open_file) {
                        if (fd >= 0)
                                close(fd);
                        fd = openat(run->dirfd, run->files[t->file].rel, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
                        if (fd < 0) {
                                run_fail(run, t->file, errno, false);
                                break;
                        }
                        open_file = t->file;
                }
                bool shrank = false;
                int e = hash_chunk(fd, t, &state, buf, &shrank);
                if (e) {
                        run_fail(run, t->file, e, shrank);
                        break;
                }
        }
        return NULL;
}

static void to_hex(XXH128_hash_t h, char hex[DIGEST_HEX_LEN + 1]) {
        XXH128_canonical_t c;
        XXH128_canonicalFromHash(&c, h);
        for (size_t i = 0; i < sizeof(c.digest); i++)
                snprintf(hex + 2 * i, 3, "%02x", c.digest[i]);
}

static XXH128_hash_t combine(const XXH128_hash_t *chunks, size_t n) {
        XXH3_state_t state;
        XXH3_INITSTATE(&state);
        (void) XXH3_128bits_reset(&state);
        for (size_t i = 0; i < n; i++) {
                XXH128_canonical_t c;
                XXH128_canonicalFromHash(&c, chunks[i]);
                (void) XXH3_128bits_update(&state, c.digest, sizeof(c.digest));
        }
        return XXH3_128bits_digest(&state);
}

void digest_buffer(const void *data, size_t len, char hex[DIGEST_HEX_LEN + 1]) {
        size_t n = (len + DIGEST_CHUNK_SIZE - 1) / DIGEST_CHUNK_SIZE;
        _cleanup_free_ XXH128_hash_t *chunks = calloc(n ? n : 1, sizeof(*chunks));
        if (!chunks) {
                hex[0] = '\0';
                return;
        }
        for (size_t i = 0; i < n; i++) {
                size_t off = i * (size_t) DIGEST_CHUNK_SIZE;
                size_t l = len - off < DIGEST_CHUNK_SIZE ? len - off : DIGEST_CHUNK_SIZE;
                chunks[i] = XXH3_128bits((const uint8_t *) data + off, l);
        }
        to_hex(combine(chunks, n), hex);
}

struct cache_entry {
        char *rel;
        dev_t dev;
        ino_t ino;
        size_t n; /* complete chunks hashed, from the start */
        size_t cap;
        XXH128_hash_t *chunks;
};

struct digest_cache {
        struct cache_entry *v;
        size_t n;
        XXH3_state_t state;
        uint8_t *buf;
};

struct digest_cache *digest_cache_new(void) {
        struct digest_cache *c = calloc(1, sizeof(*c));
        if (!c)
                return NULL;
        XXH3_INITSTATE(&c->state);
        if (posix_memalign((void **) &c->buf, 4096, READ_BUF) != 0) {
                free(c);
                return NULL;
        }
        return c;
}

void digest_cache_free(struct digest_cache *c) {
        if (!c)
                return;
        for (size_t i = 0; i < c->n; i++) {
                free(c->v[i].rel);
                free(c->v[i].chunks);
        }
        free(c->v);
        free(c->buf);
        free(c);
}

static const struct cache_entry *cache_find(const struct digest_cache *c, const char *rel) {
        for (size_t i = 0; c && i < c->n; i++)
                if (!strcmp(c->v[i].rel, rel))
                        return &c->v[i];
        return NULL;
}

int digest_cache_update(struct digest_cache *c, int fd, const char *rel) {
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        struct cache_entry *e = (struct cache_entry *) cache_find(c, rel);
        if (!e) {
                struct cache_entry *v = realloc(c->v, (c->n + 1) * sizeof(*v));
                if (!v)
                        return -ENOMEM;
                c->v = v;
                e = &c->v[c->n];
                *e = (struct cache_entry){.rel = strdup(rel), .dev = st.st_dev, .ino = st.st_ino};
                if (!e->rel)
                        return -ENOMEM;
                c->n++;
        }
        if (e->dev != st.st_dev || e->ino != st.st_ino) {
                e->dev = st.st_dev;
                e->ino = st.st_ino;
                e->n = 0;
        }
        while ((uint64_t) (e->n + 1) * DIGEST_CHUNK_SIZE <= (uint64_t) st.st_size) {
                if (e->n == e->cap) {
                        size_t cap = e->cap ? 2 * e->cap : 16;
                        XXH128_hash_t *chunks = realloc(e->chunks, cap * sizeof(*chunks));
                        if (!chunks)
                                return -ENOMEM;
                        e->chunks = chunks;
                        e->cap = cap;
                }
                struct chunk_task t = {.offset = (uint64_t) e->n * DIGEST_CHUNK_SIZE,
                                       .len = DIGEST_CHUNK_SIZE,
                                       .out = &e->chunks[e->n]};
                bool shrank = false;
                int r = hash_chunk(fd, &t, &c->state, c->buf, &shrank);
                if (r)
                        return -r;
                e->n++;
        }
        return 0;
}

int digest_files(int dirfd, struct digest_file *files, size_t n, unsigned threads,
                 const struct digest_cache *cache, struct cryo_error **err) {
        /* Sizes first: they fix the chunk list, and a missing file fails
         * before any work is done. */
        size_t n_chunks = 0;
        _cleanup_free_ const struct cache_entry **cached = calloc(n + 1, sizeof(*cached));
        if (!cached)
                return cryo_error_set(err, ENOMEM, "out of memory");
        for (size_t i = 0; i < n; i++) {
                struct stat st;
                if (fstatat(dirfd, files[i].rel, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        return cryo_error_errno(err, errno, "cannot stat %s", files[i].rel);
                if (!S_ISREG(st.st_mode))
                        return cryo_error_set(err, EINVAL, "%s is not a regular file", files[i].rel);
                files[i].size = (uint64_t) st.st_size;
                n_chunks += (size_t) ((files[i].size + DIGEST_CHUNK_SIZE - 1) / DIGEST_CHUNK_SIZE);
                const struct cache_entry *e = cache_find(cache, files[i].rel);
                /* The same file, not shorter than what was hashed. */
                if (e && e->dev == st.st_dev && e->ino == st.st_ino &&
                    (uint64_t) e->n * DIGEST_CHUNK_SIZE <= files[i].size)
                        cached[i] = e;
        }
        _cleanup_free_ struct chunk_task *tasks = calloc(n_chunks ? n_chunks : 1, sizeof(*tasks));
        _cleanup_free_ XXH128_hash_t *digests = calloc(n_chunks ? n_chunks : 1, sizeof(*digests));
        _cleanup_free_ size_t *first = calloc(n + 1, sizeof(*first));
        if (!tasks || !digests || !first)
                return cryo_error_set(err, ENOMEM, "out of memory");
        size_t k = 0, n_tasks = 0;
        for (size_t i = 0; i < n; i++) {
                first[i] = k;
                size_t have = cached[i] ? cached[i]->n : 0;
                for (uint64_t off = 0; off < files[i].size; off += DIGEST_CHUNK_SIZE, k++) {
                        if (have) {
                                digests[k] = cached[i]->chunks[k - first[i]];
                                have--;
                                continue;
                        }
                        uint64_t left = files[i].size - off;
                        tasks[n_tasks++] = (struct chunk_task){
                                .file = i,
                                .offset = off,
                                .len = left < DIGEST_CHUNK_SIZE ? left : DIGEST_CHUNK_SIZE,
                                .out = &digests[k],
                        };
                }
        }
        first[n] = k;

        struct digest_run run = {.dirfd = dirfd, .files = files, .tasks = tasks, .n_tasks = n_tasks};
        if (threads == 0) {
                long cpus = sysconf(_SC_NPROCESSORS_ONLN);
                threads = cpus > 0 ? (unsigned) cpus : 1;
        }
        if (threads > 16)
                threads = 16;
        if (threads > n_tasks)
                threads = n_tasks ? (unsigned) n_tasks : 1;
        pthread_t tids[16];
        unsigned started = 0;
        /* The calling thread works too: one thread means no thread at all. */
        for (; started + 1 < threads; started++)
                if (pthread_create(&tids[started], NULL, worker, &run) != 0)
                        break;
        worker(&run);
        for (unsigned i = 0; i < started; i++)
                pthread_join(tids[i], NULL);

        int e = atomic_load(&run.error);
        if (e) {
                const char *rel = files[atomic_load(&run.error_file)].rel;
                if (atomic_load(&run.shrank))
                        return cryo_error_set(err, EIO, "%s shrank while it was being checksummed", rel);
                return cryo_error_errno(err, e, "cannot checksum %s", rel);
        }
        for (size_t i = 0; i < n; i++)
                to_hex(combine(&digests[first[i]], first[i + 1] - first[i]), files[i].hex);
        return 0;
}
