/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "grpc.h"

#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define READ_CHUNK (128 * 1024)
/* Large receive windows: the default 64 KiB would stall Content.Read every
 * 64 KiB for a WINDOW_UPDATE round trip.  Memory stays bounded anyway
 * because we only read the socket when a caller waits for a message. */
#define STREAM_WINDOW (8 << 20)
#define CONN_WINDOW   (32 << 20)
#define MAX_METADATA  16

struct grpc_conn {
        int fd;
        nghttp2_session *session;
        char *path;
        char *label;
        size_t max_message;
        bool got_settings;
        bool write_blocked; /* last write hit EAGAIN: poll for POLLOUT */
        int dead;           /* positive errno once the connection is unusable */
        char *dead_reason;
        char *h2_error_text; /* last text from nghttp2's error callback */
        uint8_t rbuf[READ_CHUNK];
};

struct grpc_stream {
        struct grpc_conn *conn;
        int32_t id;
        char *method;     /* "Containers.Get", for messages */
        int64_t deadline; /* CLOCK_MONOTONIC ms, -1 for none */
        int timeout_ms;
        int idle_ms; /* max wait without any input from the socket, -1 for none */

        struct grpc_buf out; /* framed messages not yet taken by nghttp2 */
        bool out_eof;        /* close_send() called */
        bool deferred;       /* data provider returned NGHTTP2_ERR_DEFERRED */

        struct grpc_buf in; /* DATA payload not yet returned as messages */
        int http_status;
        char *content_type;
        int status;    /* grpc-status, -1 until seen */
        char *message; /* decoded grpc-message */
        bool remote_done;
        bool closed;
        uint32_t h2_error;
        int local_error; /* positive errno of a client-side failure */
};

static int64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t deadline_from(int timeout_ms) {
        return timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
}

static int conn_set_dead(struct grpc_conn *c, int code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static int conn_set_dead(struct grpc_conn *c, int code, const char *fmt, ...) {
        if (c->dead)
                return -c->dead;
        c->dead = code;
        va_list ap;
        va_start(ap, fmt);
        if (vasprintf(&c->dead_reason, fmt, ap) < 0)
                c->dead_reason = NULL;
        va_end(ap);
        return -code;
}

/* ---- nghttp2 callbacks ---- */

static ssize_t on_send(nghttp2_session *session, const uint8_t *data, size_t length, int flags,
                       void *user_data) {
        struct grpc_conn *c = user_data;
        for (;;) {
                /* MSG_NOSIGNAL: a daemon that went away must give EPIPE,
                 * not kill us with SIGPIPE. */
                ssize_t n = send(c->fd, data, length, MSG_NOSIGNAL);
                if (n >= 0)
                        return n;
                if (errno == EINTR)
                        continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK) {
                        c->write_blocked = true;
                        return NGHTTP2_ERR_WOULDBLOCK;
                }
                conn_set_dead(c, errno, "write to %s failed: %s", c->path, strerror(errno));
                return NGHTTP2_ERR_CALLBACK_FAILURE;
        }
}

static struct grpc_stream *stream_of(nghttp2_session *session, int32_t id) {
        return id > 0 ? nghttp2_session_get_stream_user_data(session, id) : NULL;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *user_data) {
        if (frame->hd.type != NGHTTP2_HEADERS)
                return 0;
        struct grpc_stream *s = stream_of(session, frame->hd.stream_id);
        if (!s)
                return 0;
        const char *n = (const char *) name, *v = (const char *) value;
        /* Headers and trailers are recorded alike: an error often comes as
         * a single "trailers-only" block carrying :status and grpc-status. */
        if (namelen == 7 && memcmp(n, ":status", 7) == 0) {
                s->http_status = atoi(v);
        } else if (namelen == 12 && memcmp(n, "content-type", 12) == 0) {
                free(s->content_type);
                s->content_type = strndup(v, valuelen);
        } else if (namelen == 11 && memcmp(n, "grpc-status", 11) == 0) {
                char *end = NULL;
                long st = strtol(v, &end, 10);
                s->status = (valuelen > 0 && end == v + valuelen && st >= 0 && st < 1000)
                                    ? (int) st
                                    : GRPC_STATUS_UNKNOWN;
        } else if (namelen == 12 && memcmp(n, "grpc-message", 12) == 0) {
                free(s->message);
                s->message = grpc_percent_decode(v, valuelen);
        }
        return 0;
}

static int on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t stream_id, const uint8_t *data,
                         size_t len, void *user_data) {
        struct grpc_conn *c = user_data;
        struct grpc_stream *s = stream_of(session, stream_id);
        if (!s || s->local_error)
                return 0;
        if (grpc_buf_append(&s->in, data, len) < 0) {
                s->local_error = ENOMEM;
                nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_CANCEL);
                return 0;
        }
        /* Enforce the size cap as soon as the length prefix arrives rather
         * than buffering a huge message first. */
        const uint8_t *m;
        size_t n;
        if (grpc_buf_peek_message(&s->in, c->max_message, &m, &n, NULL) < 0) {
                s->local_error = EMSGSIZE;
                nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_CANCEL);
        }
        return 0;
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data) {
        struct grpc_conn *c = user_data;
        switch (frame->hd.type) {
        case NGHTTP2_SETTINGS:
                if (!(frame->hd.flags & NGHTTP2_FLAG_ACK))
                        c->got_settings = true;
                break;
        case NGHTTP2_HEADERS:
        case NGHTTP2_DATA:
                if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
                        struct grpc_stream *s = stream_of(session, frame->hd.stream_id);
                        if (s)
                                s->remote_done = true;
                }
                break;
        case NGHTTP2_GOAWAY:
                /* nghttp2 closes the affected streams itself (they get
                 * REFUSED_STREAM); just keep the reason for messages. */
                if (frame->goaway.error_code != NGHTTP2_NO_ERROR) {
                        free(c->h2_error_text);
                        if (asprintf(&c->h2_error_text, "server sent GOAWAY: %s",
                                     nghttp2_http2_strerror(frame->goaway.error_code)) < 0)
                                c->h2_error_text = NULL;
                }
                break;
        default:
                break;
        }
        return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                           void *user_data) {
        struct grpc_stream *s = stream_of(session, stream_id);
        if (s) {
                s->closed = s->remote_done = true;
                s->h2_error = error_code;
        }
        return 0;
}

static int on_error(nghttp2_session *session, int lib_error_code, const char *msg, size_t len,
                    void *user_data) {
        struct grpc_conn *c = user_data;
        free(c->h2_error_text);
        c->h2_error_text = strndup(msg, len);
        return 0;
}

static ssize_t on_data_read(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length,
                            uint32_t *data_flags, nghttp2_data_source *source, void *user_data) {
        /* Look the stream up instead of trusting source->ptr: a freed
         * stream clears its user data, and nghttp2 may still ask. */
        struct grpc_stream *s = stream_of(session, stream_id);
        if (!s)
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        size_t n = grpc_buf_pending(&s->out);
        if (n > length)
                n = length;
        /* An empty request body has no buffer at all. */
        if (n > 0)
                memcpy(buf, s->out.data + s->out.off, n);
        grpc_buf_consume(&s->out, n);
        if (grpc_buf_pending(&s->out) == 0) {
                if (s->out_eof) {
                        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
                } else if (n == 0) {
                        /* Nothing to send yet on a stream still open for
                         * sending: park it until grpc_stream_send(). */
                        s->deferred = true;
                        return NGHTTP2_ERR_DEFERRED;
                }
        }
        return (ssize_t) n;
}

/* ---- I/O pump ---- */

static int conn_flush(struct grpc_conn *c) {
        if (c->dead)
                return -c->dead;
        c->write_blocked = false;
        int rv = nghttp2_session_send(c->session);
        if (rv != 0)
                return conn_set_dead(c, c->dead ? c->dead : EPROTO, "HTTP/2 send failed: %s",
                                     nghttp2_strerror(rv));
        return 0;
}

static int conn_check_alive(struct grpc_conn *c) {
        if (c->dead)
                return -c->dead;
        if (!nghttp2_session_want_read(c->session) && !nghttp2_session_want_write(c->session))
                return conn_set_dead(c, ECONNRESET, "HTTP/2 session ended%s%s", c->h2_error_text ? ": " : "",
                                     c->h2_error_text ? c->h2_error_text : "");
        return 0;
}

/*
 * One round of I/O: flush what nghttp2 has queued, wait for the socket
 * until `until` (monotonic ms, -1 = forever), feed what arrived.  Returns 0
 * after progress, -ETIMEDOUT when `until` passed, or -errno when the
 * connection died (reason in c->dead_reason).
 */
static int conn_pump(struct grpc_conn *c, int64_t until) {
        int r = conn_flush(c);
        if (r < 0)
                return r;
        r = conn_check_alive(c);
        if (r < 0)
                return r;

        int timeout = -1;
        if (until >= 0) {
                int64_t left = until - now_ms();
                if (left <= 0)
                        return -ETIMEDOUT;
                timeout = left > INT32_MAX ? INT32_MAX : (int) left;
        }
        struct pollfd p = {.fd = c->fd, .events = POLLIN | (c->write_blocked ? POLLOUT : 0)};
        r = poll(&p, 1, timeout);
        if (r < 0)
                return errno == EINTR ? 0 : conn_set_dead(c, errno, "poll failed: %s", strerror(errno));
        if (r == 0)
                return -ETIMEDOUT;

        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
                ssize_t n = read(c->fd, c->rbuf, sizeof(c->rbuf));
                if (n == 0)
                        return conn_set_dead(c, ECONNRESET, "connection closed by %s%s%s", c->label,
                                             c->h2_error_text ? ": " : "",
                                             c->h2_error_text ? c->h2_error_text : "");
                if (n < 0 && errno != EAGAIN && errno != EINTR)
                        return conn_set_dead(c, errno, "read from %s failed: %s", c->path, strerror(errno));
                if (n > 0) {
                        ssize_t rv = nghttp2_session_mem_recv(c->session, c->rbuf, (size_t) n);
                        if (rv < 0)
                                return conn_set_dead(c, EPROTO, "HTTP/2 protocol error: %s",
                                                     nghttp2_strerror((int) rv));
                }
        }
        r = conn_flush(c);
        if (r < 0)
                return r;
        return conn_check_alive(c);
}

/* ---- connection ---- */

static int connect_error(struct cryo_error **err, int code, const char *label, const char *path) {
        const char *hint = "";
        if (code == ENOENT || code == ECONNREFUSED)
                hint = " (is it running?)";
        else if (code == EACCES)
                hint = " (the socket is usually root-only)";
        return cryo_error_set(err, code, "cannot connect to %s at %s: %s%s", label, path, strerror(code),
                              hint);
}

static int unix_connect(const char *path, int64_t deadline, int *ret_fd) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);

        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        for (;;) {
                if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) == 0)
                        break;
                if (errno == EINTR)
                        continue;
                if (errno == EAGAIN) {
                        /* Unix sockets say EAGAIN when the listen backlog
                         * is full: a busy daemon, worth waiting for. */
                        if (deadline >= 0 && now_ms() >= deadline)
                                return -ETIMEDOUT;
                        poll(NULL, 0, 5);
                        continue;
                }
                if (errno != EINPROGRESS)
                        return -errno;
                int64_t left = deadline < 0 ? -1 : deadline - now_ms();
                struct pollfd p = {.fd = fd, .events = POLLOUT};
                int r = poll(&p, 1, left < 0 ? -1 : (int) left);
                if (r == 0)
                        return -ETIMEDOUT;
                int soerr = 0;
                socklen_t sl = sizeof(soerr);
                if (r < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
                        return -errno;
                if (soerr)
                        return -soerr;
                break;
        }
        *ret_fd = steal_fd(&fd);
        return 0;
}

void grpc_conn_free(struct grpc_conn *c) {
        if (!c)
                return;
        if (c->session) {
                /* Polite GOAWAY, best effort and non-blocking. */
                if (!c->dead) {
                        nghttp2_session_terminate_session(c->session, NGHTTP2_NO_ERROR);
                        nghttp2_session_send(c->session);
                }
                nghttp2_session_del(c->session);
        }
        if (c->fd >= 0)
                close(c->fd);
        free(c->path);
        free(c->label);
        free(c->dead_reason);
        free(c->h2_error_text);
        free(c);
}

void grpc_conn_set_max_message(struct grpc_conn *conn, size_t max_bytes) {
        conn->max_message = max_bytes;
}

const char *grpc_conn_address(const struct grpc_conn *conn) {
        return conn->path;
}

int grpc_connect(const char *socket_path, const char *label, int timeout_ms, struct grpc_conn **ret,
                 struct cryo_error **err) {
        if (!label)
                label = "gRPC server";
        int64_t deadline = deadline_from(timeout_ms);

        _cleanup_(grpc_conn_freep) struct grpc_conn *c = calloc(1, sizeof(*c));
        if (!c)
                return cryo_error_errno(err, ENOMEM, "cannot allocate a gRPC connection");
        c->fd = -1;
        c->max_message = GRPC_DEFAULT_MAX_MESSAGE;
        c->path = strdup(socket_path);
        c->label = strdup(label);
        if (!c->path || !c->label)
                return cryo_error_errno(err, ENOMEM, "cannot allocate a gRPC connection");

        int r = unix_connect(socket_path, deadline, &c->fd);
        if (r == -ETIMEDOUT)
                return cryo_error_set(err, ETIMEDOUT, "cannot connect to %s at %s: timed out after %d ms",
                                      label, socket_path, timeout_ms);
        if (r < 0)
                return connect_error(err, -r, label, socket_path);

        nghttp2_session_callbacks *cbs;
        if (nghttp2_session_callbacks_new(&cbs) != 0)
                return cryo_error_errno(err, ENOMEM, "cannot allocate an HTTP/2 session");
        nghttp2_session_callbacks_set_send_callback(cbs, on_send);
        nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
        nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
        nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
        nghttp2_session_callbacks_set_error_callback2(cbs, on_error);
        r = nghttp2_session_client_new(&c->session, cbs, c);
        nghttp2_session_callbacks_del(cbs);
        if (r != 0)
                return cryo_error_set(err, ENOMEM, "cannot create an HTTP/2 session: %s",
                                      nghttp2_strerror(r));

        /* The client preface is queued by nghttp2 but SETTINGS is ours to
         * submit; without it the server waits and we hang. */
        const nghttp2_settings_entry settings[] = {
                {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
                {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100},
                {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW},
        };
        r = nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, settings, ARRAY_SIZE(settings));
        if (r == 0)
                r = nghttp2_session_set_local_window_size(c->session, NGHTTP2_FLAG_NONE, 0, CONN_WINDOW);
        if (r != 0)
                return cryo_error_set(err, EPROTO, "cannot start the HTTP/2 session: %s",
                                      nghttp2_strerror(r));

        /* Wait for the server's SETTINGS: this is what tells a gRPC server
         * from some other listener (dockerd answers HTTP/1.1 400). */
        while (!c->got_settings) {
                r = conn_pump(c, deadline);
                if (r == -ETIMEDOUT)
                        return cryo_error_set(err, ETIMEDOUT,
                                              "cannot connect to %s at %s: no HTTP/2 handshake within %d ms",
                                              label, socket_path, timeout_ms);
                if (r < 0)
                        return cryo_error_set(
                                err, -r,
                                "cannot connect to %s at %s: HTTP/2 handshake failed (not a gRPC "
                                "server?): %s",
                                label, socket_path, c->dead_reason ? c->dead_reason : strerror(-r));
        }
        *ret = steal_pointer(&c);
        return 0;
}

/* ---- streams ---- */

/* "/containerd.services.containers.v1.Containers/Get" -> "Containers.Get" */
static char *short_method(const char *path) {
        const char *slash = strrchr(path, '/');
        if (!slash || slash == path)
                return strdup(path);
        const char *svc = slash;
        while (svc > path && svc[-1] != '.' && svc[-1] != '/')
                svc--;
        char *out = NULL;
        if (asprintf(&out, "%.*s.%s", (int) (slash - svc), svc, slash + 1) < 0)
                return NULL;
        return out;
}

static int stream_error(const struct grpc_stream *s, struct cryo_error **err, int code, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
static int stream_error(const struct grpc_stream *s, struct cryo_error **err, int code, const char *fmt,
                        ...) {
        if (!err || *err)
                return -abs(code);
        _cleanup_free_ char *text = NULL;
        va_list ap;
        va_start(ap, fmt);
        int n = vasprintf(&text, fmt, ap);
        va_end(ap);
        if (n < 0)
                return -abs(code);
        return cryo_error_set(err, code, "%s %s: %s", s->conn->label, s->method, text);
}

static void stream_cancel(struct grpc_stream *s) {
        if (s->closed || s->conn->dead)
                return;
        nghttp2_submit_rst_stream(s->conn->session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_CANCEL);
        conn_flush(s->conn);
        s->closed = s->remote_done = true;
}

enum limit { LIMIT_NONE, LIMIT_DEADLINE, LIMIT_IDLE, LIMIT_WAIT };

/* The earliest of the call deadline, the idle limit and the caller's own
 * wait limit, and which one it is. */
static int64_t next_limit(const struct grpc_stream *s, int64_t wait_until, enum limit *which) {
        int64_t until = -1;
        *which = LIMIT_NONE;
        if (s->deadline >= 0) {
                until = s->deadline;
                *which = LIMIT_DEADLINE;
        }
        if (s->idle_ms >= 0 && (until < 0 || now_ms() + s->idle_ms < until)) {
                until = now_ms() + s->idle_ms;
                *which = LIMIT_IDLE;
        }
        if (wait_until >= 0 && (until < 0 || wait_until < until)) {
                until = wait_until;
                *which = LIMIT_WAIT;
        }
        return until;
}

static int stream_conn_error(struct grpc_stream *s, struct cryo_error **err, int r, enum limit which) {
        if (r == -ETIMEDOUT) {
                stream_cancel(s);
                if (which == LIMIT_IDLE)
                        return stream_error(s, err, ETIMEDOUT, "no progress for %d ms", s->idle_ms);
                return stream_error(s, err, ETIMEDOUT, "no answer within the deadline of %d ms",
                                    s->timeout_ms);
        }
        return stream_error(s, err, -r, "connection to %s lost: %s", s->conn->path,
                            s->conn->dead_reason ? s->conn->dead_reason : strerror(-r));
}

/* The outcome of a stream whose remote side has ended. */
static int stream_finish(struct grpc_stream *s, struct cryo_error **err) {
        if (s->local_error == EMSGSIZE)
                return stream_error(s, err, EMSGSIZE, "response message larger than the limit of %zu bytes",
                                    s->conn->max_message);
        if (s->local_error)
                return stream_error(s, err, s->local_error, "%s", strerror(s->local_error));
        int status;
        if (s->status >= 0) {
                if (s->status == GRPC_STATUS_OK)
                        return 0;
                status = s->status;
                stream_error(s, err, grpc_status_to_errno(status), "%s",
                             s->message && *s->message ? s->message : grpc_status_name(status));
        } else if (s->http_status != 0 && s->http_status != 200) {
                status = grpc_status_from_http(s->http_status);
                stream_error(s, err, grpc_status_to_errno(status), "HTTP status %d without gRPC status",
                             s->http_status);
        } else if (s->closed && s->h2_error != NGHTTP2_NO_ERROR) {
                /* e.g. a wrong content-type: grpc-go resets the stream
                 * without any gRPC status. */
                status = grpc_status_from_h2_error(s->h2_error);
                stream_error(s, err, grpc_status_to_errno(status), "stream reset by the server (%s)",
                             nghttp2_http2_strerror(s->h2_error));
        } else if (s->content_type && !grpc_content_type_ok(s->content_type, strlen(s->content_type))) {
                return stream_error(s, err, EPROTO, "unexpected content-type \"%s\"", s->content_type);
        } else {
                return stream_error(s, err, EPROTO, "call ended without a gRPC status");
        }
        if (err && *err) {
                char detail[64];
                snprintf(detail, sizeof(detail), "gRPC status %s (%d)", grpc_status_name(status), status);
                cryo_error_set_detail(err, detail);
        }
        return -grpc_status_to_errno(status);
}

void grpc_stream_free(struct grpc_stream *s) {
        if (!s)
                return;
        if (s->id > 0) {
                stream_cancel(s);
                /* nghttp2 may still mention the stream (late frames, its
                 * own teardown): make it find no user data. */
                nghttp2_session_set_stream_user_data(s->conn->session, s->id, NULL);
        }
        grpc_buf_clear(&s->out);
        grpc_buf_clear(&s->in);
        free(s->method);
        free(s->content_type);
        free(s->message);
        free(s);
}

static bool valid_metadata_name(const char *n) {
        if (!*n || *n == ':')
                return false;
        for (; *n; n++)
                if (!((*n >= 'a' && *n <= 'z') || (*n >= '0' && *n <= '9') || *n == '-' || *n == '_' ||
                      *n == '.'))
                        return false;
        return true;
}

/* A control character would make the server kill the whole connection
 * with a protocol error, not just fail this call. */
static bool valid_metadata_value(const char *v) {
        for (; *v; v++)
                if ((unsigned char) *v < 0x20 || *v == 0x7f)
                        return false;
        return true;
}

#define NV(n, v)                                                                             \
        (nghttp2_nv) {                                                                       \
                (uint8_t *) (n), (uint8_t *) (v), strlen(n), strlen(v), NGHTTP2_NV_FLAG_NONE \
        }

int grpc_stream_open(struct grpc_conn *conn, const char *path, const char *const *metadata, int timeout_ms,
                     struct grpc_stream **ret, struct cryo_error **err) {
        _cleanup_grpc_stream_ struct grpc_stream *s = calloc(1, sizeof(*s));
        if (!s || !(s->method = short_method(path)))
                return cryo_error_errno(err, ENOMEM, "cannot allocate a gRPC stream");
        s->conn = conn;
        s->status = -1;
        s->timeout_ms = timeout_ms;
        s->idle_ms = -1;
        s->deadline = deadline_from(timeout_ms);
        if (conn->dead)
                return stream_error(s, err, conn->dead, "connection to %s lost: %s", conn->path,
                                    conn->dead_reason ? conn->dead_reason : strerror(conn->dead));

        size_t n_md = 0;
        for (const char *const *m = metadata; m && m[0]; m += 2) {
                if (!m[1] || !valid_metadata_name(m[0]) || !valid_metadata_value(m[1]))
                        return stream_error(s, err, EINVAL, "invalid metadata \"%s\"", m[0]);
                if (++n_md > MAX_METADATA)
                        return stream_error(s, err, E2BIG, "more than %d metadata entries", MAX_METADATA);
        }
        char timeout[16];
        nghttp2_nv nva[8 + MAX_METADATA];
        size_t n = 0;
        nva[n++] = NV(":method", "POST");
        nva[n++] = NV(":scheme", "http");
        nva[n++] = NV(":path", path);
        /* grpc-go ignores :authority on unix sockets, but HTTP/2 wants one. */
        nva[n++] = NV(":authority", "localhost");
        /* Anything but application/grpc makes grpc-go reset the stream
         * without a status; te: trailers is required by the spec. */
        nva[n++] = NV("content-type", "application/grpc");
        nva[n++] = NV("te", "trailers");
        nva[n++] = NV("user-agent", "cryo/" CRYO_VERSION);
        if (timeout_ms >= 0) {
                grpc_format_timeout(timeout, timeout_ms);
                nva[n++] = NV("grpc-timeout", timeout);
        }
        for (const char *const *m = metadata; m && m[0]; m += 2)
                nva[n++] = NV(m[0], m[1]);

        nghttp2_data_provider prd = {.source.ptr = s, .read_callback = on_data_read};
        int32_t id = nghttp2_submit_request(conn->session, NULL, nva, n, &prd, s);
        if (id < 0)
                return stream_error(s, err, EIO, "cannot start the call: %s", nghttp2_strerror(id));
        s->id = id;
        int r = conn_flush(conn);
        if (r < 0)
                return stream_conn_error(s, err, r, LIMIT_NONE);
        *ret = steal_pointer(&s);
        return 0;
}

static void stream_resume(struct grpc_stream *s) {
        if (s->deferred) {
                s->deferred = false;
                nghttp2_session_resume_data(s->conn->session, s->id);
        }
}

int grpc_stream_send(struct grpc_stream *s, const ProtobufCMessage *msg, struct cryo_error **err) {
        if (s->out_eof)
                return stream_error(s, err, EINVAL, "send after close_send");
        if (s->remote_done) {
                int r = stream_finish(s, err);
                return r < 0 ? r : stream_error(s, err, EPIPE, "the server ended the call early");
        }
        size_t len = protobuf_c_message_get_packed_size(msg);
        _cleanup_free_ uint8_t *tmp = malloc(len ? len : 1);
        if (!tmp)
                return stream_error(s, err, ENOMEM, "cannot allocate %zu bytes", len);
        protobuf_c_message_pack(msg, tmp);
        if (grpc_buf_append_message(&s->out, tmp, len) < 0)
                return stream_error(s, err, ENOMEM, "cannot queue a message of %zu bytes", len);
        stream_resume(s);

        /* Block until nghttp2 has taken all of it, so a caller streaming a
         * large file never buffers more than one message.  Flush before
         * each check: conn_pump() would wait for input, and a server
         * waiting for the rest of our request sends none. */
        for (;;) {
                int r = conn_flush(s->conn);
                if (r < 0)
                        return stream_conn_error(s, err, r, LIMIT_NONE);
                if (grpc_buf_pending(&s->out) == 0 || s->remote_done)
                        break;
                enum limit which;
                r = conn_pump(s->conn, next_limit(s, -1, &which));
                if (r < 0)
                        return stream_conn_error(s, err, r, which);
        }
        if (grpc_buf_pending(&s->out) > 0) {
                int r = stream_finish(s, err);
                return r < 0 ? r : stream_error(s, err, EPIPE, "the server ended the call early");
        }
        return 0;
}

int grpc_stream_close_send(struct grpc_stream *s, struct cryo_error **err) {
        if (s->out_eof)
                return 0;
        s->out_eof = true;
        if (s->remote_done)
                return 0;
        stream_resume(s);
        int r = conn_flush(s->conn);
        return r < 0 ? stream_conn_error(s, err, r, LIMIT_NONE) : 0;
}

int grpc_stream_recv_wait(struct grpc_stream *s, const ProtobufCMessageDescriptor *desc,
                          ProtobufCMessage **msg, int wait_ms, struct cryo_error **err) {
        int64_t wait_until = deadline_from(wait_ms);
        for (;;) {
                if (s->local_error)
                        return stream_finish(s, err);
                const uint8_t *p;
                size_t n;
                int r = grpc_buf_peek_message(&s->in, s->conn->max_message, &p, &n, NULL);
                if (r < 0) {
                        s->local_error = -r;
                        stream_cancel(s);
                        return stream_finish(s, err);
                }
                if (r > 0) {
                        ProtobufCMessage *m = protobuf_c_message_unpack(desc, NULL, n, p);
                        grpc_buf_consume(&s->in, GRPC_PREFIX_LEN + n);
                        if (!m)
                                return stream_error(s, err, EPROTO,
                                                    "cannot decode a %s message of %zu bytes", desc->name,
                                                    n);
                        *msg = m;
                        return 1;
                }
                if (s->remote_done) {
                        if (grpc_buf_pending(&s->in) > 0 && s->status == GRPC_STATUS_OK)
                                return stream_error(s, err, EPROTO, "stream ended inside a message");
                        return stream_finish(s, err);
                }

                enum limit which;
                r = conn_pump(s->conn, next_limit(s, wait_until, &which));
                if (r == -ETIMEDOUT && which == LIMIT_WAIT)
                        return -EAGAIN;
                if (r < 0)
                        return stream_conn_error(s, err, r, which);
        }
}

int grpc_stream_recv(struct grpc_stream *s, const ProtobufCMessageDescriptor *desc, ProtobufCMessage **msg,
                     struct cryo_error **err) {
        return grpc_stream_recv_wait(s, desc, msg, -1, err);
}

void grpc_stream_set_idle_timeout(struct grpc_stream *s, int idle_ms) {
        s->idle_ms = idle_ms;
}

int grpc_stream_status(const struct grpc_stream *s) {
        return s->status;
}

int grpc_unary(struct grpc_conn *conn, const char *path, const char *const *metadata,
               const ProtobufCMessage *req, const ProtobufCMessageDescriptor *resp_desc,
               ProtobufCMessage **resp, int timeout_ms, struct cryo_error **err) {
        _cleanup_grpc_stream_ struct grpc_stream *s = NULL;
        int r = grpc_stream_open(conn, path, metadata, timeout_ms, &s, err);
        if (r < 0)
                return r;
        r = grpc_stream_send(s, req, err);
        if (r < 0)
                return r;
        r = grpc_stream_close_send(s, err);
        if (r < 0)
                return r;

        _cleanup_pb_ ProtobufCMessage *m = NULL;
        r = grpc_stream_recv(s, resp_desc, &m, err);
        if (r < 0)
                return r;
        if (r == 0)
                return stream_error(s, err, EPROTO, "status OK but no response message");
        /* Wait for the trailers: only they say whether the call succeeded. */
        _cleanup_pb_ ProtobufCMessage *extra = NULL;
        r = grpc_stream_recv(s, resp_desc, &extra, err);
        if (r < 0)
                return r;
        if (r > 0)
                return stream_error(s, err, EPROTO, "unary call returned more than one message");
        *resp = steal_pointer(&m);
        return 0;
}
