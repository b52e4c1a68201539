/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "sha256.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "util/cleanup.h"

static void md_ctx_freep(EVP_MD_CTX **c) {
        if (*c)
                EVP_MD_CTX_free(*c);
}

int sha256_file(int dirfd, const char *name, char hex[SHA256_HEX_LEN + 1], uint64_t *size,
                struct cryo_error **err) {
        enum { BUF_SIZE = 1 << 20 };
        _cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return cryo_error_errno(err, errno, "cannot open %s", name);
        (void) posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);

        _cleanup_(md_ctx_freep) EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        _cleanup_free_ unsigned char *buf = malloc(BUF_SIZE);
        if (!ctx || !buf || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
                return cryo_error_set(err, ENOMEM, "cannot set up SHA-256");

        uint64_t total = 0;
        for (;;) {
                ssize_t n = read(fd, buf, BUF_SIZE);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return cryo_error_errno(err, errno, "cannot read %s", name);
                }
                if (n == 0)
                        break;
                EVP_DigestUpdate(ctx, buf, (size_t) n);
                total += (uint64_t) n;
        }
        unsigned char md[32];
        unsigned int mdlen = 0;
        if (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 32)
                return cryo_error_set(err, EIO, "SHA-256 of %s failed", name);
        for (unsigned i = 0; i < 32; i++)
                snprintf(hex + 2 * i, 3, "%02x", md[i]);
        if (size)
                *size = total;
        return 0;
}

void sha256_buf(const void *data, size_t len, char hex[SHA256_HEX_LEN + 1]) {
        unsigned char md[32];
        unsigned int mdlen = 0;
        EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
        for (unsigned i = 0; i < 32; i++)
                snprintf(hex + 2 * i, 3, "%02x", md[i]);
}
