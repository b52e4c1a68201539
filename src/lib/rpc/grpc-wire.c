/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "grpc-wire.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const status_names[] = {
        [GRPC_STATUS_OK] = "OK",
        [GRPC_STATUS_CANCELLED] = "CANCELLED",
        [GRPC_STATUS_UNKNOWN] = "UNKNOWN",
        [GRPC_STATUS_INVALID_ARGUMENT] = "INVALID_ARGUMENT",
        [GRPC_STATUS_DEADLINE_EXCEEDED] = "DEADLINE_EXCEEDED",
        [GRPC_STATUS_NOT_FOUND] = "NOT_FOUND",
        [GRPC_STATUS_ALREADY_EXISTS] = "ALREADY_EXISTS",
        [GRPC_STATUS_PERMISSION_DENIED] = "PERMISSION_DENIED",
        [GRPC_STATUS_RESOURCE_EXHAUSTED] = "RESOURCE_EXHAUSTED",
        [GRPC_STATUS_FAILED_PRECONDITION] = "FAILED_PRECONDITION",
        [GRPC_STATUS_ABORTED] = "ABORTED",
        [GRPC_STATUS_OUT_OF_RANGE] = "OUT_OF_RANGE",
        [GRPC_STATUS_UNIMPLEMENTED] = "UNIMPLEMENTED",
        [GRPC_STATUS_INTERNAL] = "INTERNAL",
        [GRPC_STATUS_UNAVAILABLE] = "UNAVAILABLE",
        [GRPC_STATUS_DATA_LOSS] = "DATA_LOSS",
        [GRPC_STATUS_UNAUTHENTICATED] = "UNAUTHENTICATED",
};

const char *grpc_status_name(int status) {
        if (status < 0 || (size_t) status >= sizeof(status_names) / sizeof(status_names[0]))
                return "UNKNOWN_STATUS";
        return status_names[status];
}

int grpc_status_to_errno(int status) {
        switch (status) {
        case GRPC_STATUS_OK:
                return 0;
        case GRPC_STATUS_CANCELLED:
                return ECANCELED;
        case GRPC_STATUS_INVALID_ARGUMENT:
                return EINVAL;
        case GRPC_STATUS_DEADLINE_EXCEEDED:
                return ETIMEDOUT;
        case GRPC_STATUS_NOT_FOUND:
                return ENOENT;
        case GRPC_STATUS_ALREADY_EXISTS:
                return EEXIST;
        case GRPC_STATUS_PERMISSION_DENIED:
        case GRPC_STATUS_UNAUTHENTICATED:
                return EACCES;
        /* What gRPC servers say about a message over their size limit. */
        case GRPC_STATUS_RESOURCE_EXHAUSTED:
                return EMSGSIZE;
        /* containerd uses FAILED_PRECONDITION for "task must be stopped",
         * "container has a task", "image in use": the object is busy. */
        case GRPC_STATUS_FAILED_PRECONDITION:
                return EBUSY;
        case GRPC_STATUS_OUT_OF_RANGE:
                return ERANGE;
        case GRPC_STATUS_UNIMPLEMENTED:
                return EOPNOTSUPP;
        case GRPC_STATUS_UNAVAILABLE:
                return ECONNREFUSED;
        default:
                return EIO;
        }
}

int grpc_status_from_http(int http_status) {
        switch (http_status) {
        case 400:
                return GRPC_STATUS_INTERNAL;
        case 401:
                return GRPC_STATUS_UNAUTHENTICATED;
        case 403:
                return GRPC_STATUS_PERMISSION_DENIED;
        case 404:
                return GRPC_STATUS_UNIMPLEMENTED;
        case 429:
        case 502:
        case 503:
        case 504:
                return GRPC_STATUS_UNAVAILABLE;
        default:
                return GRPC_STATUS_UNKNOWN;
        }
}

int grpc_status_from_h2_error(uint32_t h2_error) {
        switch (h2_error) {
        case 0x7: /* REFUSED_STREAM: not processed, safe to retry */
                return GRPC_STATUS_UNAVAILABLE;
        case 0x8: /* CANCEL */
                return GRPC_STATUS_CANCELLED;
        case 0xb: /* ENHANCE_YOUR_CALM */
                return GRPC_STATUS_RESOURCE_EXHAUSTED;
        case 0xc: /* INADEQUATE_SECURITY */
                return GRPC_STATUS_PERMISSION_DENIED;
        default:
                return GRPC_STATUS_INTERNAL;
        }
}

static int hexval(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

char *grpc_percent_decode(const char *s, size_t len) {
        char *out = malloc(len + 1);
        if (!out)
                return NULL;
        size_t o = 0;
        for (size_t i = 0; i < len; i++) {
                if (s[i] == '%' && i + 2 < len && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
                        out[o++] = (char) (hexval(s[i + 1]) << 4 | hexval(s[i + 2]));
                        i += 2;
                } else {
                        out[o++] = s[i];
                }
        }
        out[o] = '\0';
        return out;
}

void grpc_format_timeout(char buf[static 16], int64_t timeout_ms) {
        /* The spec allows at most 8 digits; switch to coarser units rather
         * than truncate. */
        if (timeout_ms < 0)
                timeout_ms = 0;
        if (timeout_ms <= 99999999)
                snprintf(buf, 16, "%" PRId64 "m", timeout_ms);
        else if (timeout_ms / 1000 <= 99999999)
                snprintf(buf, 16, "%" PRId64 "S", timeout_ms / 1000);
        else
                snprintf(buf, 16, "%" PRId64 "H",
                         timeout_ms / 3600000 > 99999999 ? 99999999 : timeout_ms / 3600000);
}

bool grpc_content_type_ok(const char *value, size_t len) {
        static const char base[] = "application/grpc";
        size_t n = sizeof(base) - 1;
        if (len < n || strncasecmp(value, base, n) != 0)
                return false;
        return len == n || value[n] == '+' || value[n] == ';';
}

int grpc_buf_append(struct grpc_buf *b, const void *p, size_t n) {
        if (n == 0)
                return 0;
        if (b->len + n > b->cap) {
                /* Compact first: a long stream must not grow the buffer just
                 * because old bytes were consumed. */
                if (b->off > 0) {
                        memmove(b->data, b->data + b->off, b->len - b->off);
                        b->len -= b->off;
                        b->off = 0;
                }
                if (b->len + n > b->cap) {
                        size_t cap = b->cap ? b->cap : 4096;
                        while (cap < b->len + n)
                                cap *= 2;
                        uint8_t *d = realloc(b->data, cap);
                        if (!d)
                                return -ENOMEM;
                        b->data = d;
                        b->cap = cap;
                }
        }
        memcpy(b->data + b->len, p, n);
        b->len += n;
        return 0;
}

void grpc_buf_consume(struct grpc_buf *b, size_t n) {
        if (n > grpc_buf_pending(b))
                n = grpc_buf_pending(b);
        b->off += n;
        if (b->off == b->len)
                b->off = b->len = 0;
}

void grpc_buf_clear(struct grpc_buf *b) {
        free(b->data);
        *b = (struct grpc_buf){0};
}

int grpc_buf_append_message(struct grpc_buf *b, const void *payload, size_t n) {
        if (n > UINT32_MAX)
                return -EMSGSIZE;
        uint8_t prefix[GRPC_PREFIX_LEN] = {0, (uint8_t) (n >> 24), (uint8_t) (n >> 16), (uint8_t) (n >> 8),
                                           (uint8_t) n};
        int r = grpc_buf_append(b, prefix, sizeof(prefix));
        if (r < 0)
                return r;
        r = grpc_buf_append(b, payload, n);
        if (r < 0)
                b->len -= GRPC_PREFIX_LEN;
        return r;
}

int grpc_buf_peek_message(const struct grpc_buf *b, size_t max_len, const uint8_t **msg, size_t *len,
                          struct cryo_error **err) {
        size_t avail = grpc_buf_pending(b);
        if (avail < GRPC_PREFIX_LEN)
                return 0;
        const uint8_t *p = b->data + b->off;
        uint32_t n = (uint32_t) p[1] << 24 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 8 | p[4];
        if (p[0] != 0)
                return cryo_error_set(err, EPROTO,
                                      "received a compressed gRPC message (flag %u) but no "
                                      "encoding was negotiated",
                                      p[0]);
        if (n > max_len)
                return cryo_error_set(err, EMSGSIZE,
                                      "gRPC message of %" PRIu32 " bytes exceeds the limit of %zu", n,
                                      max_len);
        if (avail - GRPC_PREFIX_LEN < n)
                return 0;
        *msg = p + GRPC_PREFIX_LEN;
        *len = n;
        return 1;
}
