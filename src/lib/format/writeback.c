/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "writeback.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/cleanup.h"
#include "util/fs.h"

/* Short enough that at most ~30 MiB (CRIU's write rate here) is dirty and
 * unsubmitted when the dump ends; long enough that walking a tree of a few
 * hundred images costs nothing measurable. */
#define INTERVAL_MSEC 20

struct writeback {
        int dirfd;
        bool submit_io;
        struct digest_cache *digests; /* NULL if it could not be allocated */
        pthread_t thread;
        pthread_mutex_t lock;
        pthread_cond_t wake;
        bool stop;
};

/* CRIU's page images: written front to back, never rewritten. */
static bool append_only_image(const char *name) {
        size_t len = strlen(name);
        return !strncmp(name, "pages-", 6) && len > 10 && !strcmp(name + len - 4, ".img");
}

static void submit_tree(struct writeback *wb, int dirfd, const char *prefix, int depth) {
        if (depth > 8)
                return;
        _cleanup_closedir_ DIR *d = fs_opendir_at(dirfd);
        if (!d)
                return;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.' && (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2])))
                        continue;
                /* The path as ckpt_seal() lists it. */
                char rel[512];
                if (snprintf(rel, sizeof(rel), "%s%s%s", prefix, *prefix ? "/" : "", de->d_name) >=
                    (int) sizeof(rel))
                        continue;
                if (de->d_type == DT_DIR) {
                        _cleanup_close_ int sub =
                                openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
                        if (sub >= 0)
                                submit_tree(wb, sub, rel, depth + 1);
                } else if (de->d_type == DT_REG) {
                        _cleanup_close_ int fd =
                                openat(dirfd, de->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
                        if (fd < 0)
                                continue;
                        /* Pages already on their way or clean are skipped by
                         * the kernel: calling it again on the whole file is cheap. */
                        if (wb->submit_io)
                                (void) sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
                        /* Best effort: what is not hashed now is at the commit. */
                        if (wb->digests && append_only_image(de->d_name))
                                (void) digest_cache_update(wb->digests, fd, rel);
                }
        }
}

static void *run(void *userdata) {
        struct writeback *wb = userdata;
        pthread_mutex_lock(&wb->lock);
        while (!wb->stop) {
                pthread_mutex_unlock(&wb->lock);
                submit_tree(wb, wb->dirfd, "", 0);
                pthread_mutex_lock(&wb->lock);
                struct timespec until;
                clock_gettime(CLOCK_MONOTONIC, &until);
                uint64_t ns = (uint64_t) until.tv_nsec + INTERVAL_MSEC * 1000000ull;
                until.tv_sec += (time_t) (ns / 1000000000u);
                until.tv_nsec = (long) (ns % 1000000000u);
                /* One wait per round: a wake-up, a timeout or an error all
                 * mean "look again" (or stop). */
                if (!wb->stop)
                        (void) pthread_cond_timedwait(&wb->wake, &wb->lock, &until);
        }
        pthread_mutex_unlock(&wb->lock);
        return NULL;
}

int writeback_start(int dirfd, bool submit_io, struct writeback **out, struct cryo_error **err) {
        _cleanup_free_ struct writeback *wb = calloc(1, sizeof(*wb));
        if (!wb)
                return cryo_error_set(err, ENOMEM, "out of memory");
        wb->dirfd = dirfd;
        wb->submit_io = submit_io;
        wb->digests = digest_cache_new();
        pthread_condattr_t attr;
        pthread_condattr_init(&attr);
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        pthread_cond_init(&wb->wake, &attr);
        pthread_condattr_destroy(&attr);
        pthread_mutex_init(&wb->lock, NULL);
        int r = pthread_create(&wb->thread, NULL, run, wb);
        if (r != 0) {
                pthread_cond_destroy(&wb->wake);
                pthread_mutex_destroy(&wb->lock);
                digest_cache_free(wb->digests);
                return cryo_error_errno(err, r, "cannot start the write-back thread");
        }
        *out = steal_pointer(&wb);
        return 0;
}

struct digest_cache *writeback_stop(struct writeback *wb) {
        if (!wb)
                return NULL;
        pthread_mutex_lock(&wb->lock);
        wb->stop = true;
        pthread_cond_signal(&wb->wake);
        pthread_mutex_unlock(&wb->lock);
        pthread_join(wb->thread, NULL);
        pthread_cond_destroy(&wb->wake);
        pthread_mutex_destroy(&wb->lock);
        struct digest_cache *digests = wb->digests;
        free(wb);
        return digests;
}
