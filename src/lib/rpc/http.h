/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Just enough HTTP/1.1 for the Docker Engine API on a unix socket: one
 * request per connection ("Connection: close"), the whole response read
 * into memory and parsed here (pure, unit-tested).
 */
#include <stddef.h>

#include "util/error.h"

/* Larger answers are refused (a container's inspect JSON is ~10 KiB). */
#define HTTP_MAX_RESPONSE (16u << 20)

struct http_response {
        int status;
        char *content_type; /* NULL if absent */
        char *body;         /* NUL-terminated (the NUL is not counted) */
        size_t body_len;
};
void http_response_clear(struct http_response *r);

/*
 * Parses a complete response (status line, headers, body by
 * Content-Length, chunked transfer coding, or up to the end).  -EPROTO for
 * malformed or truncated input.
 */
int http_parse_response(const char *buf, size_t len, struct http_response *ret, struct cryo_error **err);

/*
 * Sends `method path` on a fresh connection to the unix socket and reads
 * the whole response, within timeout_ms.  `label` names the server in
 * errors ("Docker").  Only transport failures are errors; any HTTP status
 * is returned in ret->status.
 */
int http_unix_request(const char *socket_path, const char *label, const char *method, const char *path,
                      const char *json_body, int timeout_ms, struct http_response *ret,
                      struct cryo_error **err);
