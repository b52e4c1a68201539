/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The post-copy hand-over (migrate.h) over loopback: only the right token
 * ends the source, and a target that reaches nobody knows it. */
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "migrate.h"
#include "util/cleanup.h"

static int free_port(void) {
        _cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof(a);
        assert_int_equal(bind(fd, (struct sockaddr *) &a, sizeof(a)), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *) &a, &len), 0);
        return ntohs(a.sin_port);
}

/* A source in a child: exits 0 if it got the confirmation for `token`. */
static pid_t source(int port, const char *token, unsigned timeout) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
                _exit(cryo_lazy_await_done("127.0.0.1", port, token, timeout, NULL, NULL) == 0 ? 0 : 1);
        return pid;
}

static int exit_code(pid_t pid) {
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_token(void **state) {
        (void) state;
        char a[CRYO_LAZY_TOKEN_LEN + 1], b[CRYO_LAZY_TOKEN_LEN + 1];
        assert_int_equal(cryo_lazy_token(a, NULL), 0);
        assert_int_equal(cryo_lazy_token(b, NULL), 0);
        assert_int_equal(strlen(a), CRYO_LAZY_TOKEN_LEN);
        assert_int_equal(strspn(a, "0123456789abcdef"), CRYO_LAZY_TOKEN_LEN);
        assert_string_not_equal(a, b);
}

static void test_right_token_ends_the_source(void **state) {
        (void) state;
        int port = free_port();
        pid_t src = source(port, "0123456789abcdef0123456789abcdef", 20);
        bool maybe = false;
        _cleanup_error_ struct cryo_error *err = NULL;
        /* The target retries until the source listens. */
        assert_int_equal(
                cryo_lazy_send_done("127.0.0.1", port, "0123456789abcdef0123456789abcdef", 20, &maybe, &err),
                0);
        assert_int_equal(exit_code(src), 0);
}

static void test_wrong_token_is_refused(void **state) {
        (void) state;
        int port = free_port();
        pid_t src = source(port, "0123456789abcdef0123456789abcdef", 3);
        bool maybe = true;
        _cleanup_error_ struct cryo_error *err = NULL;
        assert_int_equal(
                cryo_lazy_send_done("127.0.0.1", port, "ffffffffffffffffffffffffffffffff", 20, &maybe, &err),
                -EPROTO);
        assert_false(maybe);
        assert_non_null(strstr(err->message, "refused"));
        /* ... and the source, hearing no right token, gives up (resumes). */
        assert_int_equal(exit_code(src), 1);
}

static void test_nobody_listening(void **state) {
        (void) state;
        bool maybe = true;
        _cleanup_error_ struct cryo_error *err = NULL;
        int r = cryo_lazy_send_done("127.0.0.1", free_port(), "0123456789abcdef0123456789abcdef", 1, &maybe,
                                    &err);
        assert_int_equal(r, -ECONNREFUSED);
        assert_false(maybe);
        assert_non_null(strstr(err->message, "cannot confirm the migration"));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_token),
                cmocka_unit_test(test_right_token_ends_the_source),
                cmocka_unit_test(test_wrong_token_is_refused),
                cmocka_unit_test(test_nobody_listening),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
