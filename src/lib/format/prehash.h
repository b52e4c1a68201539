/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-c/json.h>

#include "util/error.h"

/*
 * Checksums computed while CRIU writes: a thread follows the memory images
 * (pages-*.img, written once, front to back) as they grow and hashes what
 * has been written, on the core CRIU does not use.  By the time the dump
 * ends, the largest files of the checkpoint are hashed already, and
 * ckpt_commit() reuses those sums for files whose size, inode and mtime
 * have not changed since.
 */
struct ckpt_prehash;

/* Follows files named pages-*.img in dirfd (not owned; must stay open). */
int ckpt_prehash_start(int dirfd, struct ckpt_prehash **out, struct cryo_error **err);
/* Stops following once everything written is hashed; returns
 * {name: {"sha256", "size", "ino", "mtime_ns"}}, or NULL on any problem
 * (the commit then hashes those files itself). */
json_object *ckpt_prehash_finish(struct ckpt_prehash *p);
void ckpt_prehash_free(struct ckpt_prehash *p);
static inline void ckpt_prehash_freep(struct ckpt_prehash **p) {
        ckpt_prehash_free(*p);
        *p = NULL;
}
#define _cleanup_prehash_ __attribute__((cleanup(ckpt_prehash_freep)))
