/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Checksums of checkpoint files.
 *
 * A file's digest is XXH3-128 over the XXH3-128 digests (16 bytes each,
 * canonical big-endian) of its 64 MiB chunks, in order; an empty file has
 * no chunk.  Chunks make one big memory image hashable on every core, on
 * dump and on restore.  XXH3 runs at memory speed (~0.1 s per GiB here,
 * against ~0.7 s for SHA-256 with SHA-NI), which matters because the
 * checksum pass is the largest cost cryo adds to CRIU's own.
 *
 * A checksum, not a signature: it finds a disk, a copy or a transfer that
 * damaged or truncated a file, not a deliberate change (which would also
 * rewrite the manifest).  Sign the exported archive for that.
 */
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

#define DIGEST_ALGORITHM  "xxh128-64m"
#define DIGEST_CHUNK_SIZE (64u << 20)
#define DIGEST_HEX_LEN    32

struct digest_file {
        char *rel;                    /* in: path below the directory fd; owned by the caller */
        uint64_t size;                /* out: bytes hashed (the size at the time of opening) */
        char hex[DIGEST_HEX_LEN + 1]; /* out */
};

/*
 * Digests of the complete leading chunks of files that grow by appending
 * only (CRIU's page images while CRIU writes them), taken while they are
 * written, so that digest_files() is left with the rest.  Keyed by the
 * path below the checkpoint and the inode: a file replaced since is hashed
 * whole again.
 */
struct digest_cache;
struct digest_cache *digest_cache_new(void);
void digest_cache_free(struct digest_cache *c);
static inline void digest_cache_freep(struct digest_cache **c) {
        digest_cache_free(*c);
        *c = NULL;
}
/* Hashes the chunks of `fd` (the file at `rel`) that are complete now and
 * not hashed yet.  A negative errno on failure; the cache stays usable. */
int digest_cache_update(struct digest_cache *c, int fd, const char *rel);

/*
 * Digests files[0..n) below dirfd, spreading their chunks over up to
 * `threads` threads (0: one per online CPU), taking what `cache` (may be
 * NULL) already holds.  A file that shrinks while it is read is an error
 * (-EIO), one that grows is hashed up to its size at opening.
 */
int digest_files(int dirfd, struct digest_file *files, size_t n, unsigned threads,
                 const struct digest_cache *cache, struct cryo_error **err);

/* The digest of a buffer, as if it were a file. */
void digest_buffer(const void *data, size_t len, char hex[DIGEST_HEX_LEN + 1]);
