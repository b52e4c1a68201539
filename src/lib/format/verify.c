/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Verifying a checkpoint against its manifest: every listed file present
 * with its size, then its checksum.
 *
 * The checksum pass reads every byte (~0.1 s per GiB), and a restore must
 * not let the tree run on images that fail it.  But nothing needs it
 * before then: a container restore spends that time creating the snapshot,
 * the container, the shim and the restored tree itself.  So the checksums
 * can run on a thread of their own (ckpt_verify_begin) while the caller
 * prepares, and the caller collects the outcome (ckpt_verify_end) at the
 * last moment before the tree resumes, e.g. from CRIU's pre-resume hook.
 * Sizes are always checked first, synchronously: a truncated checkpoint
 * fails before anything is created.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "format/checkpoint.h"
#include "format/digest.h"
#include "util/cleanup.h"
#include "util/json.h"
#include "util/sha256.h"

struct ckpt_verification {
        pthread_t thread;
        int dirfd; /* its own: the checkpoint may be closed first */
        struct digest_file *files;
        char **want; /* xxh128 hex of files[i]: copies, the manifest may change meanwhile */
        size_t n;
        unsigned threads;
        uint64_t bytes;
        /* The thread's own id, and whether someone waits for it now. */
        _Atomic pid_t tid;
        atomic_bool urgent;
        /* Written by the thread, read after joining it. */
        uint64_t usec;
        int result;
        struct cryo_error *err;
};

static void verification_free(struct ckpt_verification *v) {
        if (!v)
                return;
        for (size_t i = 0; i < v->n; i++) {
                free(v->files[i].rel);
                free(v->want[i]);
        }
        free(v->files);
        free(v->want);
        if (v->dirfd >= 0)
                close(v->dirfd);
        cryo_error_free(v->err);
        free(v);
}

static inline void verification_freep(struct ckpt_verification **v) {
        verification_free(*v);
        *v = NULL;
}

static int check_size(struct cryo_checkpoint *ck, const char *rel, json_object *entry,
                      struct cryo_error **err) {
        if (strstr(rel, "..") || rel[0] == '/')
                return cryo_error_set(err, EBADMSG, "manifest lists a path outside the checkpoint: %s", rel);
        struct stat st;
        if (fstatat(ck->dirfd, rel, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                if (errno == ENOENT)
                        return cryo_error_set(err, ENOENT, "checkpoint is incomplete: %s is missing", rel);
                return cryo_error_errno(err, errno, "cannot stat %s", rel);
        }
        int64_t want = cryo_json_int(entry, "size", -1);
        if (!S_ISREG(st.st_mode) || want < 0)
                return cryo_error_set(err, EBADMSG, "checkpoint file %s is not what the manifest describes",
                                      rel);
        if (st.st_size != want)
                return cryo_error_set(err, EBADMSG,
                                      "checkpoint file %s is %s: %lld bytes, the manifest says %lld", rel,
                                      st.st_size < want ? "truncated" : "longer than recorded",
                                      (long long) st.st_size, (long long) want);
        return 0;
}

static int corrupted(struct cryo_error **err, const char *rel, const char *what) {
        return cryo_error_set(err, EBADMSG,
                              "checkpoint file %s is corrupted: its %s does not match the manifest", rel,
                              what);
}

/* Checkpoints of format version 1 (cryo 0.1) list SHA-256 sums: few and
 * small, checked at once. */
static int verify_sha256(struct cryo_checkpoint *ck, const char *rel, const char *want,
                         struct cryo_error **err) {
        char hex[SHA256_HEX_LEN + 1];
        int r = cryo_sha256_file(ck->dirfd, rel, hex, NULL, err);
        if (r < 0)
                return r;
        return strcmp(hex, want) == 0 ? 0 : corrupted(err, rel, "SHA-256");
}

/* Checks sizes (and, for CKPT_VERIFY_FULL, legacy SHA-256 sums) now, and
 * lists the files whose XXH3 digests are left to compute. */
static int plan(struct cryo_checkpoint *ck, enum ckpt_verify verify, struct ckpt_verification **out,
                struct cryo_error **err) {
        json_object *files = cryo_json_get(ck->manifest, "files");
        if (!files || !json_object_is_type(files, json_type_object))
                return cryo_error_set(err, EBADMSG, "manifest of %s has no file list", ck->path);
        _cleanup_(verification_freep) struct ckpt_verification *v = calloc(1, sizeof(*v));
        size_t max = (size_t) json_object_object_length(files);
        if (!v)
                return cryo_error_set(err, ENOMEM, "out of memory");
        v->dirfd = -1;
        v->files = calloc(max + 1, sizeof(*v->files));
        v->want = calloc(max + 1, sizeof(*v->want));
        if (!v->files || !v->want)
                return cryo_error_set(err, ENOMEM, "out of memory");
        json_object_object_foreach (files, rel, entry) {
                int r = check_size(ck, rel, entry, err);
                if (r < 0)
                        return r;
                v->bytes += (uint64_t) cryo_json_int(entry, "size", 0);
                if (verify < CKPT_VERIFY_FULL)
                        continue;
                const char *sha = cryo_json_str(entry, "sha256", NULL);
                const char *xxh = cryo_json_str(entry, "xxh128", NULL);
                if (sha) {
                        r = verify_sha256(ck, rel, sha, err);
                        if (r < 0)
                                return r;
                } else if (!xxh) {
                        return cryo_error_set(err, EBADMSG, "manifest lists no checksum for %s", rel);
                } else {
                        /* Counted first, so that verification_free() frees both. */
                        size_t i = v->n++;
                        v->files[i].rel = strdup(rel);
                        v->want[i] = strdup(xxh);
                        if (!v->files[i].rel || !v->want[i])
                                return cryo_error_set(err, ENOMEM, "out of memory");
                }
        }
        *out = steal_pointer(&v);
        return 0;
}

static int check_digests(struct ckpt_verification *v, int dirfd, struct cryo_error **err) {
        if (v->n == 0)
                return 0;
        int r = digest_files(dirfd, v->files, v->n, v->threads, NULL, err);
        if (r < 0)
                return r;
        for (size_t i = 0; i < v->n; i++)
                if (strcmp(v->files[i].hex, v->want[i]) != 0)
                        return corrupted(err, v->files[i].rel, "checksum");
        return 0;
}

/* The digests of a plan, on the calling thread; `start`: when plan() began. */
static int verify_now(struct cryo_checkpoint *ck, struct ckpt_verification *v, uint64_t start,
                      struct cryo_error **err) {
        int r = check_digests(v, ck->dirfd, err);
        if (r < 0)
                return cryo_error_prefix(err, "checkpoint %s", ck->path);
        cryo_stats_add(&ck->stats, CRYO_PHASE_VERIFY, cryo_now_usec() - start, v->bytes);
        return 0;
}

int ckpt_verify(struct cryo_checkpoint *ck, enum ckpt_verify verify, struct cryo_error **err) {
        if (verify == CKPT_VERIFY_NONE)
                return 0;
        uint64_t start = cryo_now_usec();
        _cleanup_(verification_freep) struct ckpt_verification *v = NULL;
        int r = plan(ck, verify, &v, err);
        if (r < 0)
                return cryo_error_prefix(err, "checkpoint %s", ck->path);
        return verify_now(ck, v, start, err);
}

/*
 * While it only overlaps, the thread yields to the restore it overlaps
 * (nice 10: CRIU and containerd want both cores of a small machine), and
 * gets its full share back once the restore waits for it.  Each side
 * publishes before it looks at the other, so either order ends at 0 when
 * urgent.
 */
#define VERIFY_NICE 10

static void *verify_thread(void *arg) {
        struct ckpt_verification *v = arg;
        uint64_t start = cryo_now_usec();
        pid_t tid = gettid();
        atomic_store(&v->tid, tid);
        if (!atomic_load(&v->urgent)) {
                (void) setpriority(PRIO_PROCESS, (id_t) tid, VERIFY_NICE);
                if (atomic_load(&v->urgent))
                        (void) setpriority(PRIO_PROCESS, (id_t) tid, 0);
        }
        v->result = check_digests(v, v->dirfd, &v->err);
        v->usec = cryo_now_usec() - start;
        return NULL;
}

int ckpt_verify_begin(struct cryo_checkpoint *ck, uint64_t min_bytes, struct cryo_error **err) {
        if (ck->verification)
                return cryo_error_set(err, EBUSY, "checkpoint %s is already being verified", ck->path);
        uint64_t start = cryo_now_usec();
        _cleanup_(verification_freep) struct ckpt_verification *v = NULL;
        int r = plan(ck, CKPT_VERIFY_FULL, &v, err);
        if (r < 0)
                return cryo_error_prefix(err, "checkpoint %s", ck->path);
        if (v->bytes < min_bytes)
                return verify_now(ck, v, start, err);
        v->dirfd = fcntl(ck->dirfd, F_DUPFD_CLOEXEC, 3);
        if (v->dirfd < 0)
                return cryo_error_errno(err, errno, "cannot verify %s", ck->path);
        /* One thread: the other cores belong to the restore it overlaps. */
        v->threads = 1;
        r = pthread_create(&v->thread, NULL, verify_thread, v);
        if (r != 0)
                return cryo_error_errno(err, r, "cannot start verifying %s", ck->path);
        ck->verification = steal_pointer(&v);
        return 0;
}

/* Someone waits for the thread now: its full share of the CPU again. */
static void join_urgently(struct ckpt_verification *v) {
        atomic_store(&v->urgent, true);
        pid_t tid = atomic_load(&v->tid);
        if (tid > 0)
                (void) setpriority(PRIO_PROCESS, (id_t) tid, 0);
        pthread_join(v->thread, NULL);
}

int ckpt_verify_end(struct cryo_checkpoint *ck, struct cryo_error **err) {
        _cleanup_(verification_freep) struct ckpt_verification *v = steal_pointer(&ck->verification);
        if (!v)
                return 0;
        join_urgently(v);
        if (v->result < 0) {
                if (!err || *err)
                        return v->result;
                *err = steal_pointer(&v->err);
                return cryo_error_prefix(err, "checkpoint %s", ck->path);
        }
        cryo_stats_add(&ck->stats, CRYO_PHASE_VERIFY, v->usec, v->bytes);
        return 0;
}

bool ckpt_verify_pending(const struct cryo_checkpoint *ck) {
        return ck->verification != NULL;
}

void ckpt_verify_cancel(struct cryo_checkpoint *ck) {
        _cleanup_(verification_freep) struct ckpt_verification *v = steal_pointer(&ck->verification);
        if (v)
                join_urgently(v);
}
