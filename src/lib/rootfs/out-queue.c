/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Ordered asynchronous writes of whole buffers to one fd.
 *
 * An O_DIRECT write returns only when the disk has the data, so a writer
 * that compresses and writes in turn leaves the disk idle while it
 * compresses and the compressor idle while the disk writes (1 GiB: 0.5 s
 * of each here).  A thread that only writes lets both run at once.
 * Buffers are used round-robin and written in the order submitted.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rootfs/tar-internal.h"
#include "util/fs.h"

#define DEPTH 3

struct out_queue {
        int fd;
        uint8_t *buf[DEPTH];
        size_t len[DEPTH];
        bool pending[DEPTH];
        unsigned fill;  /* buffer the producer fills */
        unsigned write; /* next buffer the thread writes */
        int error;      /* first write error, negative errno */
        bool stop;
        bool started;
        pthread_t thread;
        pthread_mutex_t lock;
        pthread_cond_t cond;
};

static void *writer(void *userdata) {
        struct out_queue *q = userdata;
        pthread_mutex_lock(&q->lock);
        for (;;) {
                while (!q->pending[q->write] && !q->stop)
                        pthread_cond_wait(&q->cond, &q->lock);
                if (!q->pending[q->write])
                        break;
                unsigned i = q->write;
                pthread_mutex_unlock(&q->lock);
                /* After an error the data is dropped: the caller fails anyway. */
                int r = q->error ? 0 : fs_write_all(q->fd, q->buf[i], q->len[i]);
                pthread_mutex_lock(&q->lock);
                if (r < 0 && !q->error)
                        q->error = r;
                q->pending[i] = false;
                q->write = (i + 1) % DEPTH;
                pthread_cond_broadcast(&q->cond);
        }
        pthread_mutex_unlock(&q->lock);
        return NULL;
}

int out_queue_new(int fd, size_t buf_size, struct out_queue **out) {
        _cleanup_(out_queue_freep) struct out_queue *q = calloc(1, sizeof(*q));
        if (!q)
                return -ENOMEM;
        q->fd = fd;
        pthread_mutex_init(&q->lock, NULL);
        pthread_cond_init(&q->cond, NULL);
        for (unsigned i = 0; i < DEPTH; i++)
                if (!(q->buf[i] = tar_io_alloc(buf_size)))
                        return -ENOMEM;
        int r = pthread_create(&q->thread, NULL, writer, q);
        if (r != 0)
                return -r;
        q->started = true;
        *out = steal_pointer(&q);
        return 0;
}

uint8_t *out_queue_buffer(struct out_queue *q) {
        return q->buf[q->fill];
}

int out_queue_submit(struct out_queue *q, size_t len, size_t keep, uint8_t **next) {
        unsigned i = q->fill, n = (i + 1) % DEPTH;
        pthread_mutex_lock(&q->lock);
        while (q->pending[n] && !q->error)
                pthread_cond_wait(&q->cond, &q->lock);
        int r = q->error;
        if (r == 0) {
                /* The thread reads [0, len) only: the kept tail can move now. */
                memcpy(q->buf[n], q->buf[i] + len, keep);
                q->len[i] = len;
                q->pending[i] = len > 0;
                q->fill = n;
                pthread_cond_broadcast(&q->cond);
        }
        pthread_mutex_unlock(&q->lock);
        *next = q->buf[q->fill];
        return r;
}

int out_queue_drain(struct out_queue *q) {
        pthread_mutex_lock(&q->lock);
        for (;;) {
                bool busy = false;
                for (unsigned i = 0; i < DEPTH; i++)
                        busy |= q->pending[i];
                if (!busy || q->error)
                        break;
                pthread_cond_wait(&q->cond, &q->lock);
        }
        int r = q->error;
        pthread_mutex_unlock(&q->lock);
        return r;
}

void out_queue_free(struct out_queue *q) {
        if (!q)
                return;
        if (q->started) {
                pthread_mutex_lock(&q->lock);
                q->stop = true;
                pthread_cond_broadcast(&q->cond);
                pthread_mutex_unlock(&q->lock);
                pthread_join(q->thread, NULL);
        }
        pthread_cond_destroy(&q->cond);
        pthread_mutex_destroy(&q->lock);
        for (unsigned i = 0; i < DEPTH; i++)
                free(q->buf[i]);
        free(q);
}
