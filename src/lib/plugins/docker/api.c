/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Engine API calls that send a body or change state (create, start,
 * update, delete, network connect).  One request per connection, as the
 * read-only client in rpc/docker.c does; the answer is parsed by
 * rpc/http.c.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "plugins/docker/docker.h"
#include "rpc/docker.h"
#include "rpc/http.h"
#include "util/cleanup.h"
#include "util/json.h"

#define DK_CONTAINERD_SYSTEM  "/run/containerd/containerd.sock"
#define DK_CONTAINERD_MANAGED "/var/run/docker/containerd/containerd.sock"

const char *dk_socket(const struct cryo_request *req) {
        if (req && req->address && *req->address)
                return req->address;
        const char *env = getenv("DOCKER_HOST");
        if (env && !strncmp(env, "unix://", 7) && env[7])
                return env + 7;
        return DOCKER_DEFAULT_SOCKET;
}

const char *dk_containerd_address(void) {
        const char *env = getenv("CONTAINERD_ADDRESS");
        if (env && *env)
                return env;
        if (access(DK_CONTAINERD_SYSTEM, F_OK) < 0 && access(DK_CONTAINERD_MANAGED, F_OK) == 0)
                return DK_CONTAINERD_MANAGED;
        return DK_CONTAINERD_SYSTEM;
}

char *dk_url_escape(const char *s) {
        static const char hex[] = "0123456789ABCDEF";
        char *out = malloc(strlen(s) * 3 + 1), *o = out;
        if (!out)
                return NULL;
        for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
                if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                    strchr("-_.~/:@", *p)) {
                        *o++ = (char) *p;
                } else {
                        *o++ = '%';
                        *o++ = hex[*p >> 4];
                        *o++ = hex[*p & 15];
                }
        }
        *o = '\0';
        return out;
}

static int64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int wait_fd(int fd, short events, int64_t deadline) {
        for (;;) {
                int64_t left = deadline - now_ms();
                if (left <= 0)
                        return -ETIMEDOUT;
                struct pollfd p = {.fd = fd, .events = events};
                int n = poll(&p, 1, left > 1000000 ? 1000000 : (int) left);
                if (n > 0)
                        return 0;
                if (n < 0 && errno != EINTR)
                        return -errno;
        }
}

static int send_all(int fd, const char *buf, size_t len, int64_t deadline) {
        for (size_t off = 0; off < len;) {
                ssize_t w = send(fd, buf + off, len - off, MSG_NOSIGNAL);
                if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
                        int r = wait_fd(fd, POLLOUT, deadline);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (w < 0)
                        return -errno;
                off += (size_t) w;
        }
        return 0;
}

static int exchange(const char *sock, const char *method, const char *path, const char *body, int timeout_ms,
                    struct http_response *resp, struct cryo_error **err) {
        int64_t deadline = now_ms() + timeout_ms;
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        if (strlen(sock) >= sizeof(sa.sun_path))
                return cryo_error_set(err, ENAMETOOLONG, "Docker socket path too long: %s", sock);
        strcpy(sa.sun_path, sock);
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return cryo_error_errno(err, errno, "socket");
        while (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                if (errno == EINTR || (errno == EAGAIN && now_ms() < deadline)) {
                        poll(NULL, 0, 5);
                        continue;
                }
                int e = errno;
                return cryo_error_set(err, e, "cannot connect to Docker at %s: %s%s", sock, strerror(e),
                                      e == ENOENT || e == ECONNREFUSED ? " (is dockerd running?)"
                                      : e == EACCES                    ? " (the socket is usually root-only)"
                                                                       : "");
        }
        size_t body_len = body ? strlen(body) : 0;
        _cleanup_free_ char *head = NULL;
        int n = asprintf(
                &head,
                "%s %s HTTP/1.1\r\nHost: docker\r\nUser-Agent: cryo/" CRYO_VERSION
                "\r\nAccept: application/json\r\nConnection: close\r\n%sContent-Length: %zu\r\n\r\n",
                method, path, body ? "Content-Type: application/json\r\n" : "", body_len);
        if (n < 0)
                return cryo_error_set(err, ENOMEM, "out of memory");
        int r = send_all(fd, head, (size_t) n, deadline);
        if (r >= 0 && body_len)
                r = send_all(fd, body, body_len, deadline);
        if (r < 0)
                return cryo_error_errno(err, -r, "Docker at %s: sending %s %s", sock, method, path);

        _cleanup_free_ char *buf = NULL;
        size_t len = 0, cap = 0;
        for (;;) {
                if (cap - len < 4096) {
                        cap = cap ? cap * 2 : 16384;
                        char *nb = realloc(buf, cap);
                        if (!nb)
                                return cryo_error_set(err, ENOMEM, "out of memory");
                        buf = nb;
                }
                ssize_t got = read(fd, buf + len, cap - len - 1);
                if (got > 0) {
                        len += (size_t) got;
                        if (len > HTTP_MAX_RESPONSE)
                                return cryo_error_set(err, EMSGSIZE,
                                                      "Docker at %s: answer to %s %s too large", sock,
                                                      method, path);
                        continue;
                }
                if (got == 0)
                        break;
                if (errno != EAGAIN && errno != EINTR)
                        return cryo_error_errno(err, errno, "Docker at %s: reading the answer to %s %s",
                                                sock, method, path);
                r = wait_fd(fd, POLLIN, deadline);
                if (r == -ETIMEDOUT)
                        return cryo_error_set(err, ETIMEDOUT, "Docker at %s: no answer to %s %s within %d s",
                                              sock, method, path, timeout_ms / 1000);
                if (r < 0)
                        return cryo_error_errno(err, -r, "poll");
        }
        r = http_parse_response(buf ? buf : "", len, resp, err);
        if (r < 0)
                return cryo_error_prefix(err, "Docker at %s: answer to %s %s", sock, method, path);
        return 0;
}

static int status_errno(int status) {
        switch (status) {
        case 304:
                return EALREADY;
        case 400:
                return EINVAL;
        case 403:
                return EPERM;
        case 404:
                return ENOENT;
        case 409:
                return EEXIST;
        default:
                return EIO;
        }
}

/* "a\nb\n" -> "a; b": one line for an error message.  NULL on ENOMEM. */
static char *one_line(const char *s) {
        char *out = malloc(2 * strlen(s) + 1), *o = out;
        for (const char *p = s; out && *p; p++) {
                if (*p != '\r' && *p != '\n') {
                        *o++ = *p;
                } else if (o > out && p[1] && p[1] != '\n' && p[1] != '\r') {
                        *o++ = ';';
                        *o++ = ' ';
                }
        }
        if (out)
                *o = '\0';
        return out;
}

int dk_call(const char *sock, const char *method, const char *path, json_object *body, int timeout_ms,
            json_object **ret, struct cryo_error **err) {
        const char *text = body ? json_object_to_json_string_ext(
                                          body, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
                                : NULL;
        __attribute__((cleanup(http_response_clear))) struct http_response resp = {0};
        int r = exchange(sock, method, path, text, timeout_ms, &resp, err);
        if (r < 0)
                return r;
        _cleanup_json_ json_object *o = resp.body_len ? json_tokener_parse(resp.body) : NULL;
        if (resp.status < 200 || resp.status > 299) {
                /* dockerd says {"message": ...}; some errors come as text. */
                _cleanup_free_ char *msg =
                        one_line(cryo_json_str(o, "message", resp.body_len ? resp.body : ""));
                if (!msg)
                        return cryo_error_set(err, ENOMEM, "out of memory");
                return cryo_error_set(err, status_errno(resp.status), "Docker: %s (HTTP %d for %s %s)",
                                      *msg                 ? msg
                                      : resp.status == 304 ? "nothing to do"
                                                           : "request failed",
                                      resp.status, method, path);
        }
        if (resp.body_len && !o)
                return cryo_error_set(err, EPROTO, "Docker: invalid JSON in the answer to %s %s", method,
                                      path);
        if (ret)
                *ret = steal_pointer(&o);
        return 0;
}
