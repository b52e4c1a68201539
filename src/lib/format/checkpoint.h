/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <sys/types.h>

#include "format/layout.h"
#include "util/error.h"
#include "util/stats.h"

/*
 * A checkpoint directory, being written or read.
 *
 * Writing: ckpt_create() makes a hidden temporary directory next to the
 * final one; the dump fills it through `dirfd` (while a thread has the disk
 * write it, see writeback.h); ckpt_commit() checksums every file into the
 * manifest, fsyncs the tree and renames it into place.
 * Until then nothing looks like a valid checkpoint, and freeing an
 * uncommitted checkpoint removes the temporary directory.
 */
struct cryo_checkpoint {
        char *path;       /* where the files are now (temporary while writing) */
        char *final_path; /* writer only: the name it gets on commit */
        int dirfd;
        json_object *manifest;
        struct cryo_stats stats;
        bool writing;
        bool committed;
        /* Writer only: root of a tree a dump left stopped, to be killed
         * once the checkpoint is committed or resumed if it is not. */
        pid_t stopped_root;
        /* Writer only: root of the tree a lazy dump serves (a process, a
         * container's init), ended or resumed once the pages have moved. */
        pid_t lazy_root;
        struct writeback *writeback;            /* writer only: early checksums, write-back if durable */
        bool durable;                           /* writer only: commit fsyncs it */
        struct ckpt_verification *verification; /* reader only: checksums on their way (verify.c) */
};

enum {
        /* A scratch checkpoint is never committed in place: it is sealed
         * (checksums, manifest) and then copied elsewhere, e.g. into an
         * archive, and removed.  No write-back, no fsync (the checksums
         * of its page images are still taken while CRIU writes them). */
        CKPT_CREATE_SCRATCH = 1u << 0,
        /* Committed in place but never synced: a checkpoint that is worth
         * nothing after a crash anyway, e.g. a post-copy checkpoint, whose
         * pages only its source's page server holds. */
        CKPT_CREATE_VOLATILE = 1u << 1,
};

enum ckpt_verify {
        CKPT_VERIFY_NONE,  /* manifest only */
        CKPT_VERIFY_SIZES, /* every listed file present with its size */
        CKPT_VERIFY_FULL,  /* and its checksum */
};

int ckpt_create(const char *root, const char *name, const char *type, unsigned flags,
                struct cryo_checkpoint **out, struct cryo_error **err);
/* Checksums every file into the manifest and writes it; `durable` also
 * fsyncs the tree.  The checkpoint stays where it is. */
int ckpt_seal(struct cryo_checkpoint *ck, bool durable, struct cryo_error **err);
/* Seals (durably unless CKPT_CREATE_VOLATILE) and renames the checkpoint
 * into place. */
int ckpt_commit(struct cryo_checkpoint *ck, struct cryo_error **err);
int ckpt_open(const char *path, enum ckpt_verify verify, struct cryo_checkpoint **out,
              struct cryo_error **err);
int ckpt_verify(struct cryo_checkpoint *ck, enum ckpt_verify verify, struct cryo_error **err);
/*
 * CKPT_VERIFY_FULL in two halves: sizes now, checksums on a thread, so that
 * a restore prepares meanwhile.  Below `min_bytes` of files, all is done
 * now (a thread would cost more than it hides).  ckpt_verify_end() joins
 * it and returns its outcome; it must have returned 0 before the restored
 * tree runs a single instruction.  Both return 0 when nothing is pending.
 */
int ckpt_verify_begin(struct cryo_checkpoint *ck, uint64_t min_bytes, struct cryo_error **err);
int ckpt_verify_end(struct cryo_checkpoint *ck, struct cryo_error **err);
bool ckpt_verify_pending(const struct cryo_checkpoint *ck);
/* Joins a pending verification and drops its outcome. */
void ckpt_verify_cancel(struct cryo_checkpoint *ck);
void ckpt_free(struct cryo_checkpoint *ck);
static inline void ckpt_freep(struct cryo_checkpoint **ck) {
        ckpt_free(*ck);
        *ck = NULL;
}
#define _cleanup_ckpt_ __attribute__((cleanup(ckpt_freep)))

/* Opens (creating when writing) a subdirectory, e.g. CRYO_CRIU_DIR. */
int ckpt_open_subdir(struct cryo_checkpoint *ck, const char *name, bool create, int *fd,
                     struct cryo_error **err);
const char *ckpt_type(const struct cryo_checkpoint *ck);

/* "<type>-<id>-<UTC time>", safe as a file name. */
char *ckpt_default_name(const char *type, const char *id);
/* Summaries of the valid checkpoints directly under `root`. */
int ckpt_list(const char *root, json_object **out, struct cryo_error **err);
/* Removes what interrupted dumps, imports and restores from an archive left
 * under `root` (hidden ".NAME.tmp-*", ".import.tmp-*", ".restore-*"
 * directories that their maker no longer holds, fs_sweep_unheld()): a
 * killed dump must not keep GiBs of memory images on disk, out of sight
 * of `cryo list`.  Returns how many. */
int ckpt_sweep(const char *root);

/* Host facts for the manifest and for `cryo check`. */
json_object *ckpt_host_info(void);
/* Refuses, with -ENOEXEC, a checkpoint of processes taken on another
 * architecture: CRIU's images hold registers and code of that one. */
int ckpt_check_arch(const struct cryo_checkpoint *ck, struct cryo_error **err);
