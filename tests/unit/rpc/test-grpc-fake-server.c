/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * grpc.c against a scripted HTTP/2 server (nghttp2, in a child process on
 * a unix socket): the paths real daemons rarely take -- trailers-only
 * errors, resets, HTTP errors, hangs, oversized messages, messages split
 * across tiny DATA frames.
 */
#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "containerd_version.pb-c.h"
#include "rpc/grpc.h"

/* ---- the fake server (child process) ---- */

struct fake_stream {
        char path[128];
        bool has_md, grpc_ct, te_trailers;
        struct grpc_buf body; /* request bytes */
        struct grpc_buf resp; /* response DATA still to send */
        int trailer_status;
        size_t frame_max; /* cut DATA frames this small */
};

static int srv_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nl,
                      const uint8_t *value, size_t vl, uint8_t flags, void *ud) {
        struct fake_stream *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
        if (!st)
                return 0;
        if (nl == 5 && memcmp(name, ":path", 5) == 0)
                snprintf(st->path, sizeof(st->path), "%.*s", (int) vl, value);
        if (nl == 6 && memcmp(name, "x-test", 6) == 0 && vl == 3 && memcmp(value, "yes", 3) == 0)
                st->has_md = true;
        if (nl == 12 && memcmp(name, "content-type", 12) == 0 && vl == 16 &&
            memcmp(value, "application/grpc", 16) == 0)
                st->grpc_ct = true;
        if (nl == 2 && memcmp(name, "te", 2) == 0 && vl == 8 && memcmp(value, "trailers", 8) == 0)
                st->te_trailers = true;
        return 0;
}

static int srv_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *ud) {
        if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST) {
                struct fake_stream *st = calloc(1, sizeof(*st));
                st->frame_max = 16384;
                nghttp2_session_set_stream_user_data(s, f->hd.stream_id, st);
        }
        return 0;
}

static int srv_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *d, size_t len, void *ud) {
        struct fake_stream *st = nghttp2_session_get_stream_user_data(s, id);
        if (st)
                grpc_buf_append(&st->body, d, len);
        return 0;
}

static ssize_t srv_read(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                        nghttp2_data_source *src, void *ud) {
        struct fake_stream *st = src->ptr;
        size_t n = grpc_buf_pending(&st->resp);
        if (n > len)
                n = len;
        if (n > st->frame_max)
                n = st->frame_max;
        memcpy(buf, st->resp.data + st->resp.off, n);
        grpc_buf_consume(&st->resp, n);
        if (grpc_buf_pending(&st->resp) == 0) {
                /* End the DATA without END_STREAM and send the status in
                 * trailers, as gRPC servers do. */
                *flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
                char code[8];
                snprintf(code, sizeof(code), "%d", st->trailer_status);
                nghttp2_nv tr[] = {
                        {(uint8_t *) "grpc-status", (uint8_t *) code, 11, strlen(code), 0},
                        {(uint8_t *) "grpc-message", (uint8_t *) "busy%21", 12, 7, 0},
                };
                nghttp2_submit_trailer(s, id, tr, st->trailer_status ? 2 : 1);
        }
        return (ssize_t) n;
}

#define HDR(n, v) \
        { (uint8_t *) (n), (uint8_t *) (v), sizeof(n) - 1, sizeof(v) - 1, 0 }

static void srv_respond(nghttp2_session *s, int32_t id, struct fake_stream *st) {
        nghttp2_nv ok[] = {HDR(":status", "200"), HDR("content-type", "application/grpc")};
        nghttp2_data_provider prd = {.source.ptr = st, .read_callback = srv_read};
        const char *m = strrchr(st->path, '/') + 1;

        if (!st->grpc_ct || !st->te_trailers) {
                nghttp2_nv h[] = {HDR(":status", "200"), HDR("content-type", "application/grpc"),
                                  HDR("grpc-status", "3"), HDR("grpc-message", "bad request headers")};
                nghttp2_submit_response(s, id, h, 4, NULL);
        } else if (strcmp(m, "Echo") == 0) {
                if (!st->has_md) {
                        nghttp2_nv h[] = {HDR(":status", "200"), HDR("content-type", "application/grpc"),
                                          HDR("grpc-status", "3"), HDR("grpc-message", "metadata missing")};
                        nghttp2_submit_response(s, id, h, 4, NULL);
                        return;
                }
                grpc_buf_append(&st->resp, st->body.data + st->body.off, grpc_buf_pending(&st->body));
                st->frame_max = 3; /* split every message across DATA frames */
                nghttp2_submit_response(s, id, ok, 2, &prd);
        } else if (strcmp(m, "TrailersOnly") == 0) {
                nghttp2_nv h[] = {HDR(":status", "200"), HDR("content-type", "application/grpc"),
                                  HDR("grpc-status", "5"),
                                  HDR("grpc-message", "thing%20%22x%22%3A not found")};
                nghttp2_submit_response(s, id, h, 4, NULL);
        } else if (strcmp(m, "ErrorAfterData") == 0) {
                grpc_buf_append(&st->resp, st->body.data + st->body.off, grpc_buf_pending(&st->body));
                st->trailer_status = 9;
                nghttp2_submit_response(s, id, ok, 2, &prd);
        } else if (strcmp(m, "Reset") == 0) {
                nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, id, NGHTTP2_INTERNAL_ERROR);
        } else if (strcmp(m, "Http503") == 0) {
                nghttp2_nv h[] = {HDR(":status", "503"), HDR("content-type", "text/plain")};
                nghttp2_submit_response(s, id, h, 2, NULL);
        } else if (strcmp(m, "Huge") == 0) {
                const uint8_t prefix[5] = {0, 0x02, 0, 0, 0}; /* 32 MiB announced */
                uint8_t filler[4096] = {0};
                grpc_buf_append(&st->resp, prefix, 5);
                grpc_buf_append(&st->resp, filler, sizeof(filler));
                nghttp2_submit_response(s, id, ok, 2, &prd);
        } else if (strcmp(m, "Stream") == 0) {
                Containerd__Services__Version__V1__VersionResponse v =
                        CONTAINERD__SERVICES__VERSION__V1__VERSION_RESPONSE__INIT;
                for (int i = 0; i < 100; i++) {
                        char num[16];
                        uint8_t packed[64];
                        snprintf(num, sizeof(num), "%d", i);
                        v.version = num;
                        size_t n = containerd__services__version__v1__version_response__pack(&v, packed);
                        grpc_buf_append_message(&st->resp, packed, n);
                }
                st->frame_max = 50;
                nghttp2_submit_response(s, id, ok, 2, &prd);
        }
        /* "Hang": never answer. */
}

static int srv_frame(nghttp2_session *s, const nghttp2_frame *f, void *ud) {
        if ((f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA) &&
            (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
                struct fake_stream *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
                if (st)
                        srv_respond(s, f->hd.stream_id, st);
        }
        return 0;
}

static int srv_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud) {
        struct fake_stream *st = nghttp2_session_get_stream_user_data(s, id);
        if (st) {
                grpc_buf_clear(&st->body);
                grpc_buf_clear(&st->resp);
                free(st);
        }
        return 0;
}

static ssize_t srv_send(nghttp2_session *s, const uint8_t *d, size_t len, int flags, void *ud) {
        ssize_t n = send(*(int *) ud, d, len, MSG_NOSIGNAL);
        return n < 0 ? NGHTTP2_ERR_CALLBACK_FAILURE : n;
}

static void serve_h2(int fd) {
        nghttp2_session_callbacks *cb;
        nghttp2_session_callbacks_new(&cb);
        nghttp2_session_callbacks_set_send_callback(cb, srv_send);
        nghttp2_session_callbacks_set_on_begin_headers_callback(cb, srv_begin_headers);
        nghttp2_session_callbacks_set_on_header_callback(cb, srv_header);
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, srv_data);
        nghttp2_session_callbacks_set_on_frame_recv_callback(cb, srv_frame);
        nghttp2_session_callbacks_set_on_stream_close_callback(cb, srv_close);
        nghttp2_session *s;
        nghttp2_session_server_new(&s, cb, &fd);
        nghttp2_session_callbacks_del(cb);
        nghttp2_submit_settings(s, NGHTTP2_FLAG_NONE, NULL, 0);
        uint8_t buf[65536];
        while (nghttp2_session_want_read(s) || nghttp2_session_want_write(s)) {
                if (nghttp2_session_send(s) != 0)
                        break;
                ssize_t n = read(fd, buf, sizeof(buf));
                if (n <= 0 || nghttp2_session_mem_recv(s, buf, (size_t) n) < 0)
                        break;
        }
        nghttp2_session_del(s);
}

static int listen_unix(const char *path) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        assert_int_equal(listen(fd, 8), 0);
        return fd;
}

/* mode 'h': HTTP/2 fake; mode '1': answers like an HTTP/1.1 server. */
static pid_t start_server(const char *path, char mode) {
        int lfd = listen_unix(path);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                for (;;) {
                        int c = accept(lfd, NULL, NULL);
                        if (c < 0)
                                _exit(0);
                        if (mode == '1') {
                                char junk[256];
                                (void) !read(c, junk, sizeof(junk));
                                const char resp[] = "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n";
                                (void) !write(c, resp, sizeof(resp) - 1);
                        } else {
                                serve_h2(c);
                        }
                        close(c);
                }
        }
        close(lfd);
        return pid;
}

struct fixture {
        char dir[64];
        char sock[128];
        pid_t server;
        struct grpc_conn *conn;
};

static int setup(void **state) {
        struct fixture *f = calloc(1, sizeof(*f));
        snprintf(f->dir, sizeof(f->dir), "/tmp/cryo-grpc-test.XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        snprintf(f->sock, sizeof(f->sock), "%s/fake.sock", f->dir);
        f->server = start_server(f->sock, 'h');
        struct cryo_error *err = NULL;
        int r = grpc_connect(f->sock, "fake", 2000, &f->conn, &err);
        if (r < 0)
                fail_msg("connect: %s", err->message);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        struct fixture *f = *state;
        grpc_conn_free(f->conn);
        kill(f->server, SIGKILL);
        waitpid(f->server, NULL, 0);
        unlink(f->sock);
        rmdir(f->dir);
        free(f);
        return 0;
}

typedef Containerd__Services__Version__V1__VersionResponse Msg;
#define MSG_D containerd__services__version__v1__version_response__descriptor

static const char *const md[] = {"x-test", "yes", NULL};

static int call(struct fixture *f, const char *method, const char *payload, int timeout_ms, Msg **resp,
                struct cryo_error **err) {
        char path[128];
        snprintf(path, sizeof(path), "/test.v1.Svc/%s", method);
        Msg req = CONTAINERD__SERVICES__VERSION__V1__VERSION_RESPONSE__INIT;
        req.version = (char *) payload;
        return grpc_unary(f->conn, path, md, &req.base, &MSG_D, (ProtobufCMessage **) resp, timeout_ms, err);
}

static void test_echo_split_frames(void **state) {
        struct fixture *f = *state;
        char big[20000];
        memset(big, 'z', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        for (int i = 0; i < 3; i++) {
                _cleanup_pb_ Msg *resp = NULL;
                struct cryo_error *err = NULL;
                int r = call(f, "Echo", i == 1 ? big : "hello", 5000, &resp, &err);
                if (r < 0)
                        fail_msg("echo: %s", err->message);
                assert_string_equal(resp->version, i == 1 ? big : "hello");
        }
}

static void test_trailers_only_error(void **state) {
        struct fixture *f = *state;
        Msg *resp = NULL;
        struct cryo_error *err = NULL;
        assert_int_equal(call(f, "TrailersOnly", "x", 5000, &resp, &err), -ENOENT);
        assert_null(resp);
        assert_string_equal(err->message, "fake Svc.TrailersOnly: thing \"x\": not found");
        assert_string_equal(err->detail, "gRPC status NOT_FOUND (5)");
        cryo_error_free(err);
}

static void test_status_after_message(void **state) {
        struct fixture *f = *state;
        Msg *resp = NULL;
        struct cryo_error *err = NULL;
        /* A message followed by a non-OK status is a failure. */
        assert_int_equal(call(f, "ErrorAfterData", "x", 5000, &resp, &err), -EBUSY);
        assert_null(resp);
        assert_non_null(strstr(err->message, "busy!"));
        cryo_error_free(err);
}

static void test_reset_and_http_error(void **state) {
        struct fixture *f = *state;
        Msg *resp = NULL;
        struct cryo_error *err = NULL;
        assert_int_equal(call(f, "Reset", "x", 5000, &resp, &err), -EIO);
        assert_non_null(strstr(err->message, "stream reset by the server"));
        cryo_error_free(err);
        err = NULL;
        assert_int_equal(call(f, "Http503", "x", 5000, &resp, &err), -ECONNREFUSED);
        assert_non_null(strstr(err->message, "HTTP status 503"));
        cryo_error_free(err);
}

static int64_t mono_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_deadline(void **state) {
        struct fixture *f = *state;
        Msg *resp = NULL;
        struct cryo_error *err = NULL;
        int64_t t0 = mono_ms();
        assert_int_equal(call(f, "Hang", "x", 200, &resp, &err), -ETIMEDOUT);
        int64_t took = mono_ms() - t0;
        assert_true(took >= 190 && took < 1500);
        assert_non_null(strstr(err->message, "deadline of 200 ms"));
        cryo_error_free(err);
        /* The connection survives a cancelled call. */
        _cleanup_pb_ Msg *ok = NULL;
        assert_int_equal(call(f, "Echo", "after", 5000, &ok, NULL), 0);
        assert_string_equal(ok->version, "after");
}

static void test_size_cap(void **state) {
        struct fixture *f = *state;
        grpc_conn_set_max_message(f->conn, 1 << 20);
        Msg *resp = NULL;
        struct cryo_error *err = NULL;
        assert_int_equal(call(f, "Huge", "x", 5000, &resp, &err), -EMSGSIZE);
        assert_non_null(strstr(err->message, "larger than the limit"));
        cryo_error_free(err);
        _cleanup_pb_ Msg *ok = NULL;
        assert_int_equal(call(f, "Echo", "still fine", 5000, &ok, NULL), 0);
}

static void test_missing_metadata(void **state) {
        struct fixture *f = *state;
        Msg req = CONTAINERD__SERVICES__VERSION__V1__VERSION_RESPONSE__INIT;
        ProtobufCMessage *resp = NULL;
        struct cryo_error *err = NULL;
        assert_int_equal(
                grpc_unary(f->conn, "/test.v1.Svc/Echo", NULL, &req.base, &MSG_D, &resp, 5000, &err),
                -EINVAL);
        assert_non_null(strstr(err->message, "metadata missing"));
        cryo_error_free(err);
        err = NULL;
        /* Upper-case names are invalid in HTTP/2: refused locally. */
        const char *const bad[] = {"X-Test", "yes", NULL};
        assert_int_equal(grpc_unary(f->conn, "/test.v1.Svc/Echo", bad, &req.base, &MSG_D, &resp, 5000, &err),
                         -EINVAL);
        cryo_error_free(err);
        err = NULL;
        /* So are control characters in values: sent, they would make the
         * server drop the whole connection. */
        const char *const bad_value[] = {"x-test", "yes\r\nx-evil: 1", NULL};
        assert_int_equal(
                grpc_unary(f->conn, "/test.v1.Svc/Echo", bad_value, &req.base, &MSG_D, &resp, 5000, &err),
                -EINVAL);
        cryo_error_free(err);
        _cleanup_pb_ Msg *ok = NULL;
        assert_int_equal(call(f, "Echo", "still connected", 5000, &ok, NULL), 0);
}

static void test_server_streaming(void **state) {
        struct fixture *f = *state;
        struct grpc_stream *s = NULL;
        assert_int_equal(grpc_stream_open(f->conn, "/test.v1.Svc/Stream", md, 5000, &s, NULL), 0);
        Msg req = CONTAINERD__SERVICES__VERSION__V1__VERSION_RESPONSE__INIT;
        assert_int_equal(grpc_stream_send(s, &req.base, NULL), 0);
        assert_int_equal(grpc_stream_close_send(s, NULL), 0);
        int n = 0, r;
        Msg *m = NULL;
        while ((r = grpc_stream_recv(s, &MSG_D, (ProtobufCMessage **) &m, NULL)) == 1) {
                char want[16];
                snprintf(want, sizeof(want), "%d", n++);
                assert_string_equal(m->version, want);
                protobuf_c_message_free_unpacked(&m->base, NULL);
        }
        assert_int_equal(r, 0);
        assert_int_equal(n, 100);
        assert_int_equal(grpc_stream_status(s), 0);
        grpc_stream_free(s);
}

static void test_bidi_echo(void **state) {
        struct fixture *f = *state;
        struct grpc_stream *s = NULL;
        assert_int_equal(grpc_stream_open(f->conn, "/test.v1.Svc/Echo", md, 5000, &s, NULL), 0);
        const char *words[] = {"one", "two", "three"};
        for (int i = 0; i < 3; i++) {
                Msg req = CONTAINERD__SERVICES__VERSION__V1__VERSION_RESPONSE__INIT;
                req.version = (char *) words[i];
                assert_int_equal(grpc_stream_send(s, &req.base, NULL), 0);
        }
        assert_int_equal(grpc_stream_close_send(s, NULL), 0);
        for (int i = 0; i < 3; i++) {
                Msg *m = NULL;
                assert_int_equal(grpc_stream_recv(s, &MSG_D, (ProtobufCMessage **) &m, NULL), 1);
                assert_string_equal(m->version, words[i]);
                protobuf_c_message_free_unpacked(&m->base, NULL);
        }
        Msg *m = NULL;
        assert_int_equal(grpc_stream_recv(s, &MSG_D, (ProtobufCMessage **) &m, NULL), 0);
        grpc_stream_free(s);
}

static void test_recv_wait_keeps_stream(void **state) {
        struct fixture *f = *state;
        struct grpc_stream *s = NULL;
        assert_int_equal(grpc_stream_open(f->conn, "/test.v1.Svc/Hang", md, GRPC_NO_TIMEOUT, &s, NULL), 0);
        Msg req = CONTAINERD__SERVICES__VERSION__V1__VERSION_RESPONSE__INIT;
        assert_int_equal(grpc_stream_send(s, &req.base, NULL), 0);
        assert_int_equal(grpc_stream_close_send(s, NULL), 0);
        Msg *m = NULL;
        struct cryo_error *err = NULL;
        for (int i = 0; i < 2; i++) {
                assert_int_equal(grpc_stream_recv_wait(s, &MSG_D, (ProtobufCMessage **) &m, 30, &err),
                                 -EAGAIN);
                assert_null(err);
        }
        /* The idle limit cancels. */
        grpc_stream_set_idle_timeout(s, 50);
        assert_int_equal(grpc_stream_recv(s, &MSG_D, (ProtobufCMessage **) &m, &err), -ETIMEDOUT);
        assert_non_null(strstr(err->message, "no progress for 50 ms"));
        cryo_error_free(err);
        grpc_stream_free(s);
}

static void test_connect_errors(void **state) {
        struct cryo_error *err = NULL;
        struct grpc_conn *c = NULL;
        assert_int_equal(grpc_connect("/nonexistent/cryo.sock", "containerd", 1000, &c, &err), -ENOENT);
        assert_string_equal(err->message,
                            "cannot connect to containerd at /nonexistent/cryo.sock: No such file or "
                            "directory (is it running?)");
        cryo_error_free(err);
        err = NULL;

        char dir[] = "/tmp/cryo-grpc-test.XXXXXX";
        assert_non_null(mkdtemp(dir));
        char path[128];
        snprintf(path, sizeof(path), "%s/dead.sock", dir);
        /* A socket file nobody listens on any more: what a crashed daemon leaves. */
        close(listen_unix(path));
        assert_int_equal(grpc_connect(path, "containerd", 1000, &c, &err), -ECONNREFUSED);
        assert_non_null(strstr(err->message, "Connection refused"));
        cryo_error_free(err);
        err = NULL;
        unlink(path);

        /* Something that is not an HTTP/2 server (e.g. dockerd's socket). */
        pid_t pid = start_server(path, '1');
        int r = grpc_connect(path, "containerd", 1000, &c, &err);
        assert_true(r < 0);
        assert_non_null(strstr(err->message, "HTTP/2 handshake failed"));
        cryo_error_free(err);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        unlink(path);
        rmdir(dir);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_echo_split_frames, setup, teardown),
                cmocka_unit_test_setup_teardown(test_trailers_only_error, setup, teardown),
                cmocka_unit_test_setup_teardown(test_status_after_message, setup, teardown),
                cmocka_unit_test_setup_teardown(test_reset_and_http_error, setup, teardown),
                cmocka_unit_test_setup_teardown(test_deadline, setup, teardown),
                cmocka_unit_test_setup_teardown(test_size_cap, setup, teardown),
                cmocka_unit_test_setup_teardown(test_missing_metadata, setup, teardown),
                cmocka_unit_test_setup_teardown(test_server_streaming, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bidi_echo, setup, teardown),
                cmocka_unit_test_setup_teardown(test_recv_wait_keeps_stream, setup, teardown),
                cmocka_unit_test(test_connect_errors),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
