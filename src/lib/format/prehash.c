/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "prehash.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "format/sha256.h"
#include "util/cleanup.h"
#include "util/fs.h"

#define PREHASH_BUF (4u << 20)
#define PREHASH_MAX_FILES 64

struct followed {
        char name[256];
        int fd;
        EVP_MD_CTX *ctx;
        uint64_t off;
};

struct ckpt_prehash {
        pthread_t thread;
        bool started;
        int dirfd;
        atomic_bool stop;
        bool failed;
        struct followed files[PREHASH_MAX_FILES];
        size_t n;
};

static bool is_memory_image(const char *name) {
        size_t len = strlen(name);
        return !strncmp(name, "pages-", 6) && len > 10 && !strcmp(name + len - 4, ".img");
}

static void pick_up_new_files(struct ckpt_prehash *p) {
        _cleanup_closedir_ DIR *d = fs_opendir_at(p->dirfd);
        if (!d)
                return;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (!is_memory_image(de->d_name) || strlen(de->d_name) >= sizeof(p->files[0].name))
                        continue;
                bool known = false;
                for (size_t i = 0; i < p->n && !known; i++)
                        known = !strcmp(p->files[i].name, de->d_name);
                if (known)
                        continue;
                if (p->n == PREHASH_MAX_FILES) {
                        p->failed = true;
                        return;
                }
                struct followed *f = &p->files[p->n];
                f->fd = openat(p->dirfd, de->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
                f->ctx = EVP_MD_CTX_new();
                if (f->fd < 0 || !f->ctx || EVP_DigestInit_ex(f->ctx, EVP_sha256(), NULL) != 1) {
                        if (f->fd >= 0)
                                close(f->fd);
                        EVP_MD_CTX_free(f->ctx);
                        p->failed = true;
                        return;
                }
                strcpy(f->name, de->d_name);
                f->off = 0;
                p->n++;
        }
}

/* Hashes what has been written of each file; true if anything was. */
static bool catch_up(struct ckpt_prehash *p, unsigned char *buf) {
        bool progressed = false;
        for (size_t i = 0; i < p->n && !p->failed; i++) {
                struct followed *f = &p->files[i];
                for (;;) {
                        ssize_t got = pread(f->fd, buf, PREHASH_BUF, (off_t) f->off);
                        if (got < 0 && errno == EINTR)
                                continue;
                        if (got < 0) {
                                p->failed = true;
                                break;
                        }
                        if (got == 0)
                                break;
                        EVP_DigestUpdate(f->ctx, buf, (size_t) got);
                        f->off += (uint64_t) got;
                        progressed = true;
                }
        }
        return progressed;
}

static void *follow(void *arg) {
        struct ckpt_prehash *p = arg;
        unsigned char *buf = malloc(PREHASH_BUF);
        if (!buf) {
                p->failed = true;
                return NULL;
        }
        for (;;) {
                /* Read the flag first: the pass after it was seen covers
                 * everything CRIU wrote. */
                bool last = atomic_load(&p->stop);
                pick_up_new_files(p);
                bool progressed = catch_up(p, buf);
                if (last || p->failed)
                        break;
                if (!progressed) {
                        struct timespec ts = {0, 1000 * 1000};
                        nanosleep(&ts, NULL);
                }
        }
        free(buf);
        return NULL;
}

int ckpt_prehash_start(int dirfd, struct ckpt_prehash **out, struct cryo_error **err) {
        struct ckpt_prehash *p = calloc(1, sizeof(*p));
        if (!p)
                return cryo_error_set(err, ENOMEM, "out of memory");
        p->dirfd = dirfd;
        atomic_init(&p->stop, false);
        int r = pthread_create(&p->thread, NULL, follow, p);
        if (r != 0) {
                free(p);
                return cryo_error_errno(err, r, "cannot start the checksum thread");
        }
        p->started = true;
        *out = p;
        return 0;
}

static void stop_thread(struct ckpt_prehash *p) {
        if (!p->started)
                return;
        atomic_store(&p->stop, true);
        pthread_join(p->thread, NULL);
        p->started = false;
}

json_object *ckpt_prehash_finish(struct ckpt_prehash *p) {
        stop_thread(p);
        if (p->failed)
                return NULL;
        json_object *o = json_object_new_object();
        for (size_t i = 0; o && i < p->n; i++) {
                struct followed *f = &p->files[i];
                unsigned char md[32];
                unsigned int mdlen = 0;
                struct stat st;
                char hex[SHA256_HEX_LEN + 1];
                if (EVP_DigestFinal_ex(f->ctx, md, &mdlen) != 1 || fstat(f->fd, &st) < 0 ||
                    (uint64_t) st.st_size != f->off) {
                        json_object_put(o);
                        return NULL;
                }
                for (unsigned k = 0; k < 32; k++)
                        snprintf(hex + 2 * k, 3, "%02x", md[k]);
                json_object *e = json_object_new_object();
                json_object_object_add(e, "sha256", json_object_new_string(hex));
                json_object_object_add(e, "size", json_object_new_uint64(f->off));
                json_object_object_add(e, "ino", json_object_new_uint64(st.st_ino));
                json_object_object_add(e, "mtime_ns", json_object_new_int64((int64_t) st.st_mtim.tv_sec * 1000000000 +
                                                                           st.st_mtim.tv_nsec));
                json_object_object_add(o, f->name, e);
        }
        return o;
}

void ckpt_prehash_free(struct ckpt_prehash *p) {
        if (!p)
                return;
        stop_thread(p);
        for (size_t i = 0; i < p->n; i++) {
                close(p->files[i].fd);
                EVP_MD_CTX_free(p->files[i].ctx);
        }
        free(p);
}
