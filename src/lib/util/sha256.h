/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

#define SHA256_HEX_LEN 64

/* Hashes dirfd/name into a lowercase hex string; reports its size. */
int sha256_file(int dirfd, const char *name, char hex[SHA256_HEX_LEN + 1], uint64_t *size,
                struct cryo_error **err);

/* Hashes a buffer into a lowercase hex string. */
void sha256_buf(const void *data, size_t len, char hex[SHA256_HEX_LEN + 1]);
