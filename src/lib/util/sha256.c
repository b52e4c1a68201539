/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "sha256.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cleanup.h"

void cryo_sha256_begin(struct cryo_sha256 *s) {
        sha256_init(&s->ctx);
}

void cryo_sha256_feed(struct cryo_sha256 *s, const void *data, size_t len) {
        sha256_update(&s->ctx, len, data);
}

void cryo_sha256_hex(struct cryo_sha256 *s, char hex[SHA256_HEX_LEN + 1]) {
        uint8_t md[SHA256_DIGEST_SIZE];
        sha256_digest(&s->ctx, sizeof(md), md);
        for (size_t i = 0; i < sizeof(md); i++)
                snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

int cryo_sha256_file(int dirfd, const char *name, char hex[SHA256_HEX_LEN + 1], uint64_t *size,
                     struct cryo_error **err) {
        enum { BUF_SIZE = 1 << 20 };
        _cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return cryo_error_errno(err, errno, "cannot open %s", name);
        (void) posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
        _cleanup_free_ unsigned char *buf = malloc(BUF_SIZE);
        if (!buf)
                return cryo_error_set(err, ENOMEM, "out of memory");
        struct cryo_sha256 s;
        cryo_sha256_begin(&s);
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
                cryo_sha256_feed(&s, buf, (size_t) n);
                total += (uint64_t) n;
        }
        cryo_sha256_hex(&s, hex);
        if (size)
                *size = total;
        return 0;
}

void cryo_sha256_buf(const void *data, size_t len, char hex[SHA256_HEX_LEN + 1]) {
        struct cryo_sha256 s;
        cryo_sha256_begin(&s);
        cryo_sha256_feed(&s, data, len);
        cryo_sha256_hex(&s, hex);
}
