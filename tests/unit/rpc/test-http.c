/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rpc/http.h"

static int parse(const char *s, struct http_response *r) {
        struct cryo_error *err = NULL;
        int ret = http_parse_response(s, strlen(s), r, &err);
        assert_true((ret < 0) == (err != NULL));
        cryo_error_free(err);
        return ret;
}

static void test_content_length(void **state) {
        struct http_response r = {0};
        assert_int_equal(parse("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                               "content-length: 12\r\n\r\n{\"Id\":\"abc\"}trailing-garbage",
                               &r),
                         0);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.content_type, "application/json");
        assert_int_equal(r.body_len, 12);
        assert_string_equal(r.body, "{\"Id\":\"abc\"}");
        http_response_clear(&r);
}

static void test_chunked(void **state) {
        struct http_response r = {0};
        /* Docker's inspect answers are chunked: Go's net/http picks chunked
         * coding when a handler streams JSON without a length. */
        assert_int_equal(parse("HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n"
                               "5\r\n{\"mes\r\n"
                               "1b;ext=1\r\nsage\":\"No such container: x\r\n"
                               "2\r\n\"}\r\n"
                               "0\r\n\r\n",
                               &r),
                         0);
        assert_int_equal(r.status, 404);
        assert_null(r.content_type);
        assert_string_equal(r.body, "{\"message\":\"No such container: x\"}");
        http_response_clear(&r);

        /* Upper-case hex sizes and trailers after the last chunk. */
        assert_int_equal(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                               "A\r\n0123456789\r\n0\r\nX-Trailer: y\r\n\r\n",
                               &r),
                         0);
        assert_int_equal(r.body_len, 10);
        assert_string_equal(r.body, "0123456789");
        http_response_clear(&r);
}

static void test_until_close(void **state) {
        struct http_response r = {0};
        assert_int_equal(parse("HTTP/1.0 204 No Content\r\n\r\n", &r), 0);
        assert_int_equal(r.status, 204);
        assert_int_equal(r.body_len, 0);
        assert_string_equal(r.body, "");
        http_response_clear(&r);

        assert_int_equal(parse("HTTP/1.1 200 OK\r\nServer: Docker\r\n\r\nbody to the end", &r), 0);
        assert_string_equal(r.body, "body to the end");
        http_response_clear(&r);

        /* A status line without a reason phrase is legal. */
        assert_int_equal(parse("HTTP/1.1 500\r\n\r\n", &r), 0);
        assert_int_equal(r.status, 500);
        http_response_clear(&r);
}

static void test_malformed(void **state) {
        struct http_response r = {0};
        assert_int_equal(parse("", &r), -EPROTO);
        assert_int_equal(parse("SSH-2.0-OpenSSH\r\n\r\n", &r), -EPROTO);
        assert_int_equal(parse("HTTP/2 200\r\n\r\n", &r), -EPROTO);
        assert_int_equal(parse("HTTP/1.1 20 OK\r\n\r\n", &r), -EPROTO);
        assert_int_equal(parse("HTTP/1.1 200x OK\r\n\r\n", &r), -EPROTO);
        /* Headers that never end. */
        assert_int_equal(parse("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n", &r), -EPROTO);
        /* Body shorter than announced. */
        assert_int_equal(parse("HTTP/1.1 200 OK\r\nContent-Length: 30\r\n\r\nshort", &r), -EPROTO);
        assert_int_equal(parse("HTTP/1.1 200 OK\r\nContent-Length: 3x\r\n\r\nabc", &r), -EPROTO);
        /* Chunked body cut in the middle, or without the final chunk. */
        assert_int_equal(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc", &r),
                         -EPROTO);
        assert_int_equal(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n", &r),
                         -EPROTO);
        assert_int_equal(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", &r), -EPROTO);
        assert_int_equal(
                parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXY0\r\n\r\n", &r),
                -EPROTO);
}

/* The parser must not read past `len`: feed an unterminated copy. */
static void test_unterminated_input(void **state) {
        const char *s = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        size_t n = strlen(s);
        char *copy = malloc(n);
        memcpy(copy, s, n);
        struct http_response r = {0};
        assert_int_equal(http_parse_response(copy, n, &r, NULL), 0);
        assert_string_equal(r.body, "ok");
        http_response_clear(&r);
        for (size_t cut = 0; cut < n - 2; cut++)
                assert_int_equal(http_parse_response(copy, cut, &r, NULL), -EPROTO);
        free(copy);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_content_length),     cmocka_unit_test(test_chunked),
                cmocka_unit_test(test_until_close),        cmocka_unit_test(test_malformed),
                cmocka_unit_test(test_unterminated_input),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
