/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdint.h>

#include "util/error.h"

#define SHA256_HEX_LEN 64

/* Hashes dirfd/name into a lowercase hex string; reports its size. */
int sha256_file(int dirfd, const char *name, char hex[SHA256_HEX_LEN + 1], uint64_t *size,
                struct cryo_error **err);
