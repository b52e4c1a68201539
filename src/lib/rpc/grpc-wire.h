/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The pure (I/O-free) parts of gRPC over HTTP/2: message framing and
 * reassembly, status codes, grpc-message decoding, grpc-timeout encoding.
 * Split out of grpc.c so that unit tests can drive them byte by byte.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

/* Every gRPC message on the wire: 1 byte "compressed" flag, 4 bytes
 * big-endian length, then the protobuf bytes. */
#define GRPC_PREFIX_LEN 5

enum grpc_status {
        GRPC_STATUS_OK = 0,
        GRPC_STATUS_CANCELLED = 1,
        GRPC_STATUS_UNKNOWN = 2,
        GRPC_STATUS_INVALID_ARGUMENT = 3,
        GRPC_STATUS_DEADLINE_EXCEEDED = 4,
        GRPC_STATUS_NOT_FOUND = 5,
        GRPC_STATUS_ALREADY_EXISTS = 6,
        GRPC_STATUS_PERMISSION_DENIED = 7,
        GRPC_STATUS_RESOURCE_EXHAUSTED = 8,
        GRPC_STATUS_FAILED_PRECONDITION = 9,
        GRPC_STATUS_ABORTED = 10,
        GRPC_STATUS_OUT_OF_RANGE = 11,
        GRPC_STATUS_UNIMPLEMENTED = 12,
        GRPC_STATUS_INTERNAL = 13,
        GRPC_STATUS_UNAVAILABLE = 14,
        GRPC_STATUS_DATA_LOSS = 15,
        GRPC_STATUS_UNAUTHENTICATED = 16,
};

/* "NOT_FOUND", ...; "UNKNOWN_STATUS" for codes outside 0..16. */
const char *grpc_status_name(int status);
/* Positive errno for a non-OK status (0 for OK). */
int grpc_status_to_errno(int status);
/* Status for a response without grpc-status, from its HTTP :status
 * (the mapping of the gRPC HTTP/2 spec). */
int grpc_status_from_http(int http_status);
/* Status for a stream reset with an HTTP/2 error code (RST_STREAM). */
int grpc_status_from_h2_error(uint32_t h2_error);

/* Decodes grpc-message ("%XX" escapes of UTF-8).  Malformed escapes are
 * kept verbatim, as the spec asks.  Returns a malloc'd NUL-terminated
 * string, NULL on ENOMEM. */
char *grpc_percent_decode(const char *s, size_t len);

/* The grpc-timeout header value: at most 8 digits plus a unit. */
void grpc_format_timeout(char buf[static 16], int64_t timeout_ms);

/* "application/grpc" or "application/grpc+<anything>". */
bool grpc_content_type_ok(const char *value, size_t len);

/* A growable byte queue: bytes are appended at the end and consumed from
 * `off`; storage is compacted lazily. */
struct grpc_buf {
        uint8_t *data;
        size_t off, len, cap; /* pending bytes are data[off .. len) */
};

static inline size_t grpc_buf_pending(const struct grpc_buf *b) {
        return b->len - b->off;
}
int grpc_buf_append(struct grpc_buf *b, const void *p, size_t n);
void grpc_buf_consume(struct grpc_buf *b, size_t n);
void grpc_buf_clear(struct grpc_buf *b);

/* Appends one framed message (prefix + payload) to b. */
int grpc_buf_append_message(struct grpc_buf *b, const void *payload, size_t n);

/*
 * Message reassembly.  Returns 1 and sets *msg and *len to the first complete
 * message in b (valid until b is modified; consume GRPC_PREFIX_LEN + *len
 * afterwards), 0 when more bytes are needed, -EMSGSIZE when the announced
 * length exceeds max_len, -EPROTO for a compressed message (we never
 * advertise an encoding, so a compressed one is a server bug).
 */
int grpc_buf_peek_message(const struct grpc_buf *b, size_t max_len, const uint8_t **msg, size_t *len,
                          struct cryo_error **err);
