/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "http.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "util/cleanup.h"

void http_response_clear(struct http_response *r) {
        free(r->content_type);
        free(r->body);
        *r = (struct http_response){0};
}

/* Finds "\r\n" in [p, end); NULL if absent. */
static const char *find_crlf(const char *p, const char *end) {
        for (; p + 1 < end; p++)
                if (p[0] == '\r' && p[1] == '\n')
                        return p;
        return NULL;
}

static bool header_is(const char *line, size_t len, const char *name, const char **value, size_t *vlen) {
        size_t n = strlen(name);
        if (len <= n || strncasecmp(line, name, n) != 0 || line[n] != ':')
                return false;
        const char *v = line + n + 1, *e = line + len;
        while (v < e && (*v == ' ' || *v == '\t'))
                v++;
        while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
                e--;
        *value = v;
        *vlen = (size_t) (e - v);
        return true;
}

static int dechunk(const char *p, const char *end, char *out, size_t *out_len, struct cryo_error **err) {
        size_t o = 0;
        for (;;) {
                const char *eol = find_crlf(p, end);
                if (!eol)
                        return cryo_error_set(err, EPROTO, "HTTP chunked body truncated in a chunk header");
                char *num_end = NULL;
                errno = 0;
                unsigned long long n = strtoull(p, &num_end, 16);
                /* Chunk extensions (";name=value") are allowed and ignored. */
                if (num_end == p || errno || num_end > eol ||
                    (num_end < eol && *num_end != ';' && *num_end != ' '))
                        return cryo_error_set(err, EPROTO, "bad HTTP chunk size");
                p = eol + 2;
                if (n == 0)
                        break; /* trailers, if any, are ignored */
                if (n > (unsigned long long) (end - p) || (size_t) (end - p) - n < 2)
                        return cryo_error_set(err, EPROTO, "HTTP chunked body truncated");
                memcpy(out + o, p, n);
                o += n;
                p += n;
                if (p[0] != '\r' || p[1] != '\n')
                        return cryo_error_set(err, EPROTO, "HTTP chunk not followed by CRLF");
                p += 2;
        }
        *out_len = o;
        return 0;
}

int http_parse_response(const char *buf, size_t len, struct http_response *ret, struct cryo_error **err) {
        const char *end = buf + len, *p = buf;
        const char *eol = find_crlf(p, end);
        /* "HTTP/1.1 404 Not Found": parse a NUL-terminated copy, the input
         * need not be terminated. */
        char line[64] = "";
        if (eol)
                snprintf(line, sizeof(line), "%.*s", (int) (eol - p), p);
        int status = 0, used = 0;
        if (!eol || strncmp(line, "HTTP/1.", 7) != 0 || sscanf(line + 8, " %3d%n", &status, &used) != 1 ||
            line[8] != ' ' || (line[8 + used] != ' ' && line[8 + used] != '\0') || status < 100)
                return cryo_error_set(err, EPROTO, "not an HTTP/1.x response");
        p = eol + 2;

        _cleanup_free_ char *content_type = NULL;
        bool chunked = false, have_length = false;
        unsigned long long length = 0;
        for (;;) {
                eol = find_crlf(p, end);
                if (!eol)
                        return cryo_error_set(err, EPROTO, "HTTP response headers truncated");
                if (eol == p) {
                        p += 2;
                        break;
                }
                const char *v;
                size_t vlen;
                size_t llen = (size_t) (eol - p);
                if (header_is(p, llen, "Content-Length", &v, &vlen)) {
                        char *e = NULL;
                        errno = 0;
                        length = strtoull(v, &e, 10);
                        if (vlen == 0 || errno || e != v + vlen)
                                return cryo_error_set(err, EPROTO, "bad HTTP Content-Length");
                        have_length = true;
                } else if (header_is(p, llen, "Transfer-Encoding", &v, &vlen)) {
                        chunked = vlen >= 7 && strncasecmp(v + vlen - 7, "chunked", 7) == 0;
                } else if (header_is(p, llen, "Content-Type", &v, &vlen)) {
                        free(content_type);
                        content_type = strndup(v, vlen);
                }
                p = eol + 2;
        }

        size_t avail = (size_t) (end - p);
        _cleanup_free_ char *body = malloc(avail + 1);
        if (!body)
                return cryo_error_errno(err, ENOMEM, "HTTP response");
        size_t body_len = 0;
        if (chunked) {
                int r = dechunk(p, end, body, &body_len, err);
                if (r < 0)
                        return r;
        } else if (have_length) {
                if (length > avail)
                        return cryo_error_set(err, EPROTO, "HTTP body truncated: %zu of %llu bytes", avail,
                                              length);
                body_len = (size_t) length;
                memcpy(body, p, body_len);
        } else {
                body_len = avail;
                memcpy(body, p, avail);
        }
        body[body_len] = '\0';
        *ret = (struct http_response){.status = status,
                                      .content_type = steal_pointer(&content_type),
                                      .body = steal_pointer(&body),
                                      .body_len = body_len};
        return 0;
}

static int64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for `events` on fd until the deadline; -ETIMEDOUT when it passes. */
static int wait_fd(int fd, short events, int64_t deadline) {
        for (;;) {
                int64_t left = deadline < 0 ? -1 : deadline - now_ms();
                if (deadline >= 0 && left <= 0)
                        return -ETIMEDOUT;
                struct pollfd p = {.fd = fd, .events = events};
                int r = poll(&p, 1, (int) left);
                if (r > 0)
                        return 0;
                if (r == 0)
                        return -ETIMEDOUT;
                if (errno != EINTR)
                        return -errno;
        }
}

int http_unix_request(const char *socket_path, const char *label, const char *method, const char *path,
                      const char *json_body, int timeout_ms, struct http_response *ret,
                      struct cryo_error **err) {
        int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        if (strlen(socket_path) >= sizeof(sa.sun_path))
                return cryo_error_set(err, ENAMETOOLONG, "socket path too long: %s", socket_path);
        strcpy(sa.sun_path, socket_path);

        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return cryo_error_errno(err, errno, "socket");
        while (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                if (errno == EINTR)
                        continue;
                if (errno == EAGAIN && (deadline < 0 || now_ms() < deadline)) {
                        poll(NULL, 0, 5); /* listen backlog full */
                        continue;
                }
                int e = errno;
                const char *hint = e == ENOENT || e == ECONNREFUSED ? " (is it running?)"
                                   : e == EACCES                    ? " (the socket is usually root-only)"
                                                                    : "";
                return cryo_error_set(err, e, "cannot connect to %s at %s: %s%s", label, socket_path,
                                      strerror(e), hint);
        }

        _cleanup_free_ char *req = NULL;
        int n = asprintf(
                &req,
                "%s %s HTTP/1.1\r\nHost: localhost\r\nUser-Agent: cryo/" CRYO_VERSION
                "\r\nAccept: application/json\r\nConnection: close\r\n%sContent-Length: %zu\r\n\r\n%s",
                method, path, json_body ? "Content-Type: application/json\r\n" : "",
                json_body ? strlen(json_body) : 0, json_body ? json_body : "");
        if (n < 0)
                return cryo_error_errno(err, ENOMEM, "HTTP request");
        for (size_t off = 0; off < (size_t) n;) {
                ssize_t w = send(fd, req + off, (size_t) n - off, MSG_NOSIGNAL);
                if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
                        int r = wait_fd(fd, POLLOUT, deadline);
                        if (r < 0)
                                return cryo_error_errno(err, r, "%s at %s: sending %s %s", label,
                                                        socket_path, method, path);
                        continue;
                }
                if (w < 0)
                        return cryo_error_errno(err, errno, "%s at %s: sending %s %s", label, socket_path,
                                                method, path);
                off += (size_t) w;
        }

        _cleanup_free_ char *buf = NULL;
        size_t len = 0, cap = 0;
        for (;;) {
                if (cap - len < 4096) {
                        cap = cap ? cap * 2 : 16384;
                        char *nb = realloc(buf, cap);
                        if (!nb)
                                return cryo_error_errno(err, ENOMEM, "HTTP response");
                        buf = nb;
                }
                ssize_t r = read(fd, buf + len, cap - len - 1);
                if (r > 0) {
                        len += (size_t) r;
                        if (len > HTTP_MAX_RESPONSE)
                                return cryo_error_set(err, EMSGSIZE,
                                                      "%s at %s: answer to %s %s exceeds %u bytes", label,
                                                      socket_path, method, path, HTTP_MAX_RESPONSE);
                        continue;
                }
                if (r == 0)
                        break;
                if (errno != EAGAIN && errno != EINTR)
                        return cryo_error_errno(err, errno, "%s at %s: reading the answer to %s %s", label,
                                                socket_path, method, path);
                int w = wait_fd(fd, POLLIN, deadline);
                if (w == -ETIMEDOUT)
                        return cryo_error_set(err, ETIMEDOUT,
                                              "%s at %s: no complete answer to %s %s within %d ms", label,
                                              socket_path, method, path, timeout_ms);
                if (w < 0)
                        return cryo_error_errno(err, w, "poll");
        }
        int r = http_parse_response(buf ? buf : "", len, ret, err);
        if (r < 0)
                return cryo_error_prefix(err, "%s at %s: answer to %s %s", label, socket_path, method, path);
        return 0;
}
