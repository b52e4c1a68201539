/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* SHA-256 for what other tools name by it (containerd's content digests,
 * image chain ids, checkpoints of format version 1), on nettle: libarchive
 * loads it anyway, and OpenSSL's libcrypto cost every cryo run ~1.4 ms of
 * start-up on its own. */
#include <nettle/sha2.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define SHA256_HEX_LEN 64

struct cryo_sha256 {
        struct sha256_ctx ctx;
};

void cryo_sha256_begin(struct cryo_sha256 *s);
void cryo_sha256_feed(struct cryo_sha256 *s, const void *data, size_t len);
/* Ends the hash: lowercase hex. */
void cryo_sha256_hex(struct cryo_sha256 *s, char hex[SHA256_HEX_LEN + 1]);

/* Hashes dirfd/name; reports its size. */
int cryo_sha256_file(int dirfd, const char *name, char hex[SHA256_HEX_LEN + 1], uint64_t *size,
                     struct cryo_error **err);
/* Hashes a buffer. */
void cryo_sha256_buf(const void *data, size_t len, char hex[SHA256_HEX_LEN + 1]);
