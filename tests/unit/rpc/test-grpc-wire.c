/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "containerd_version.pb-c.h"
#include "rpc/grpc-wire.h"
#include "util/cleanup.h"

static void test_status_to_errno(void **state) {
        assert_int_equal(grpc_status_to_errno(GRPC_STATUS_OK), 0);
        assert_int_equal(grpc_status_to_errno(GRPC_STATUS_NOT_FOUND), ENOENT);
        assert_int_equal(grpc_status_to_errno(GRPC_STATUS_ALREADY_EXISTS), EEXIST);
        assert_int_equal(grpc_status_to_errno(GRPC_STATUS_INVALID_ARGUMENT), EINVAL);
        assert_int_equal(grpc_status_to_errno(GRPC_STATUS_FAILED_PRECONDITION), EBUSY);
        assert_int_equal(grpc_status_to_errno(GRPC_STATUS_UNAVAILABLE), ECONNREFUSED);
        assert_int_equal(grpc_status_to_errno(GRPC_STATUS_DEADLINE_EXCEEDED), ETIMEDOUT);
        assert_int_equal(grpc_status_to_errno(GRPC_STATUS_UNIMPLEMENTED), EOPNOTSUPP);
        assert_int_equal(grpc_status_to_errno(GRPC_STATUS_PERMISSION_DENIED), EACCES);
        assert_int_equal(grpc_status_to_errno(GRPC_STATUS_RESOURCE_EXHAUSTED), EMSGSIZE);
        assert_int_equal(grpc_status_to_errno(GRPC_STATUS_CANCELLED), ECANCELED);
        assert_int_equal(grpc_status_to_errno(GRPC_STATUS_UNKNOWN), EIO);
        assert_int_equal(grpc_status_to_errno(GRPC_STATUS_INTERNAL), EIO);
        assert_int_equal(grpc_status_to_errno(GRPC_STATUS_DATA_LOSS), EIO);
        assert_int_equal(grpc_status_to_errno(77), EIO);
        assert_string_equal(grpc_status_name(GRPC_STATUS_NOT_FOUND), "NOT_FOUND");
        assert_string_equal(grpc_status_name(16), "UNAUTHENTICATED");
        assert_string_equal(grpc_status_name(17), "UNKNOWN_STATUS");
        assert_string_equal(grpc_status_name(-1), "UNKNOWN_STATUS");
}

static void test_status_from_transport(void **state) {
        assert_int_equal(grpc_status_from_http(404), GRPC_STATUS_UNIMPLEMENTED);
        assert_int_equal(grpc_status_from_http(503), GRPC_STATUS_UNAVAILABLE);
        assert_int_equal(grpc_status_from_http(400), GRPC_STATUS_INTERNAL);
        assert_int_equal(grpc_status_from_http(418), GRPC_STATUS_UNKNOWN);
        assert_int_equal(grpc_status_from_h2_error(0x7), GRPC_STATUS_UNAVAILABLE);
        assert_int_equal(grpc_status_from_h2_error(0x8), GRPC_STATUS_CANCELLED);
        assert_int_equal(grpc_status_from_h2_error(0x1), GRPC_STATUS_INTERNAL);
        assert_int_equal(grpc_status_from_h2_error(0x0), GRPC_STATUS_INTERNAL);
}

static void check_decode(const char *in, const char *want) {
        char *out = grpc_percent_decode(in, strlen(in));
        assert_non_null(out);
        assert_string_equal(out, want);
        free(out);
}

static void test_percent_decode(void **state) {
        check_decode("", "");
        check_decode("plain text", "plain text");
        check_decode("container%20%22x%22%3A not found", "container \"x\": not found");
        check_decode("%E2%82%AC%e2%82%ac", "\xe2\x82\xac\xe2\x82\xac");
        /* Malformed escapes stay as they are. */
        check_decode("100%", "100%");
        check_decode("%4", "%4");
        check_decode("%zz%4g", "%zz%4g");
        check_decode("a%25b", "a%b");
        /* Only `len` bytes are read. */
        char *out = grpc_percent_decode("ab%41cd", 5);
        assert_string_equal(out, "abA");
        free(out);
}

static void test_timeout(void **state) {
        char b[16];
        grpc_format_timeout(b, 0);
        assert_string_equal(b, "0m");
        grpc_format_timeout(b, 30000);
        assert_string_equal(b, "30000m");
        grpc_format_timeout(b, 99999999);
        assert_string_equal(b, "99999999m");
        grpc_format_timeout(b, 100000000);
        assert_string_equal(b, "100000S");
        grpc_format_timeout(b, INT64_MAX);
        assert_true(strlen(b) <= 9);
        assert_int_equal(b[strlen(b) - 1], 'H');
        grpc_format_timeout(b, -5);
        assert_string_equal(b, "0m");
}

static void test_content_type(void **state) {
        assert_true(grpc_content_type_ok("application/grpc", 16));
        assert_true(grpc_content_type_ok("application/grpc+proto", 22));
        assert_true(grpc_content_type_ok("Application/GRPC", 16));
        assert_false(grpc_content_type_ok("application/grpcx", 17));
        assert_false(grpc_content_type_ok("text/plain", 10));
        assert_false(grpc_content_type_ok("application/json", 16));
}

static void test_frame_prefix(void **state) {
        struct grpc_buf b = {0};
        uint8_t payload[300];
        memset(payload, 0xab, sizeof(payload));
        assert_int_equal(grpc_buf_append_message(&b, payload, sizeof(payload)), 0);
        assert_int_equal(grpc_buf_pending(&b), 305);
        const uint8_t want[5] = {0, 0, 0, 1, 44};
        assert_memory_equal(b.data, want, 5);
        /* An empty message is just the prefix. */
        assert_int_equal(grpc_buf_append_message(&b, NULL, 0), 0);
        assert_int_equal(grpc_buf_pending(&b), 310);

        const uint8_t *m;
        size_t n;
        assert_int_equal(grpc_buf_peek_message(&b, 1000, &m, &n, NULL), 1);
        assert_int_equal(n, 300);
        assert_memory_equal(m, payload, 300);
        grpc_buf_consume(&b, GRPC_PREFIX_LEN + n);
        assert_int_equal(grpc_buf_peek_message(&b, 1000, &m, &n, NULL), 1);
        assert_int_equal(n, 0);
        grpc_buf_consume(&b, GRPC_PREFIX_LEN);
        assert_int_equal(grpc_buf_pending(&b), 0);
        assert_int_equal(grpc_buf_peek_message(&b, 1000, &m, &n, NULL), 0);
        grpc_buf_clear(&b);
}

/* Three messages arriving one byte at a time, as DATA frames may split
 * them anywhere (even inside the 5-byte prefix). */
static void test_reassembly_bytewise(void **state) {
        struct grpc_buf wire = {0}, rx = {0};
        const char *msgs[] = {"first", "", "a somewhat longer third message"};
        for (size_t i = 0; i < 3; i++)
                assert_int_equal(grpc_buf_append_message(&wire, msgs[i], strlen(msgs[i])), 0);

        size_t got = 0;
        for (size_t i = 0; i < wire.len; i++) {
                assert_int_equal(grpc_buf_append(&rx, wire.data + i, 1), 0);
                const uint8_t *m;
                size_t n;
                int r;
                while ((r = grpc_buf_peek_message(&rx, 1 << 20, &m, &n, NULL)) == 1) {
                        assert_true(got < 3);
                        assert_int_equal(n, strlen(msgs[got]));
                        assert_memory_equal(m, msgs[got], n);
                        grpc_buf_consume(&rx, GRPC_PREFIX_LEN + n);
                        got++;
                }
                assert_int_equal(r, 0);
        }
        assert_int_equal(got, 3);
        assert_int_equal(grpc_buf_pending(&rx), 0);
        grpc_buf_clear(&wire);
        grpc_buf_clear(&rx);
}

/* A protobuf message split over uneven "DATA frames" unpacks intact. */
static void test_reassembly_protobuf(void **state) {
        Containerd__Services__Version__V1__VersionResponse v =
                CONTAINERD__SERVICES__VERSION__V1__VERSION_RESPONSE__INIT;
        char big[5000];
        memset(big, 'r', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        v.version = "1.6.20";
        v.revision = big;
        size_t len = containerd__services__version__v1__version_response__get_packed_size(&v);
        uint8_t *packed = malloc(len);
        containerd__services__version__v1__version_response__pack(&v, packed);

        struct grpc_buf wire = {0}, rx = {0};
        for (int i = 0; i < 4; i++)
                assert_int_equal(grpc_buf_append_message(&wire, packed, len), 0);
        const size_t chunks[] = {3, 1, 16384, 7, 999, 2, 16384, 16384};
        size_t off = 0, k = 0, got = 0;
        while (off < wire.len) {
                size_t n = chunks[k++ % ARRAY_SIZE(chunks)];
                if (n > wire.len - off)
                        n = wire.len - off;
                assert_int_equal(grpc_buf_append(&rx, wire.data + off, n), 0);
                off += n;
                const uint8_t *m;
                size_t mlen;
                while (grpc_buf_peek_message(&rx, 1 << 20, &m, &mlen, NULL) == 1) {
                        Containerd__Services__Version__V1__VersionResponse *u =
                                containerd__services__version__v1__version_response__unpack(NULL, mlen, m);
                        assert_non_null(u);
                        assert_string_equal(u->version, "1.6.20");
                        assert_string_equal(u->revision, big);
                        containerd__services__version__v1__version_response__free_unpacked(u, NULL);
                        grpc_buf_consume(&rx, GRPC_PREFIX_LEN + mlen);
                        got++;
                }
        }
        assert_int_equal(got, 4);
        /* Consumed space is reused, not accumulated. */
        assert_true(rx.cap <= 2 * (wire.len + 16384));
        free(packed);
        grpc_buf_clear(&wire);
        grpc_buf_clear(&rx);
}

static void test_size_cap_and_compression(void **state) {
        struct grpc_buf b = {0};
        const uint8_t huge[5] = {0, 0x7f, 0xff, 0xff, 0xff};
        assert_int_equal(grpc_buf_append(&b, huge, 5), 0);
        const uint8_t *m;
        size_t n;
        struct cryo_error *err = NULL;
        /* Refused from the prefix alone, before the payload arrives. */
        assert_int_equal(grpc_buf_peek_message(&b, 16 << 20, &m, &n, &err), -EMSGSIZE);
        assert_non_null(err);
        assert_non_null(strstr(err->message, "exceeds the limit"));
        cryo_error_free(err);
        err = NULL;
        grpc_buf_clear(&b);

        const uint8_t compressed[6] = {1, 0, 0, 0, 1, 'x'};
        assert_int_equal(grpc_buf_append(&b, compressed, 6), 0);
        assert_int_equal(grpc_buf_peek_message(&b, 100, &m, &n, &err), -EPROTO);
        assert_non_null(err);
        cryo_error_free(err);
        grpc_buf_clear(&b);

        /* Exactly at the limit is fine. */
        uint8_t payload[64] = {0};
        assert_int_equal(grpc_buf_append_message(&b, payload, 64), 0);
        assert_int_equal(grpc_buf_peek_message(&b, 64, &m, &n, NULL), 1);
        assert_int_equal(grpc_buf_peek_message(&b, 63, &m, &n, NULL), -EMSGSIZE);
        grpc_buf_clear(&b);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_status_to_errno),
                cmocka_unit_test(test_status_from_transport),
                cmocka_unit_test(test_percent_decode),
                cmocka_unit_test(test_timeout),
                cmocka_unit_test(test_content_type),
                cmocka_unit_test(test_frame_prefix),
                cmocka_unit_test(test_reassembly_bytewise),
                cmocka_unit_test(test_reassembly_protobuf),
                cmocka_unit_test(test_size_cap_and_compression),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
