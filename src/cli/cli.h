/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <getopt.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>

#include "plugins/plugin.h"
#include "util/error.h"

/* Exit codes: 0 success, 1 the operation failed, 2 bad usage. */
enum {
        CLI_EXIT_FAILURE = 1,
        CLI_EXIT_USAGE = 2,
};

struct cli_command {
        const char *name;
        const char *summary;
        int (*run)(int argc, char **argv);
};

int cli_dump(int argc, char **argv);
int cli_restore(int argc, char **argv);
int cli_inspect(int argc, char **argv);
int cli_list(int argc, char **argv);
int cli_check(int argc, char **argv);
int cli_hook(int argc, char **argv);
int cli_export(int argc, char **argv);
int cli_import(int argc, char **argv);

/*
 * A dump or restore must end consistently (the source resumed or killed,
 * nothing half-created), so SIGINT, SIGTERM, SIGHUP and SIGQUIT only mark
 * the operation as interrupted while it runs; the command then exits with
 * cli_interrupted()'s code.  SIGPIPE turns into EPIPE (a reader that went
 * away fails the write, not the process).  Handlers, not SIG_IGN or a
 * blocked mask: CRIU and every other child start with default dispositions.
 */
void cli_defer_signals(void);
/* Non-zero once a deferred signal arrived (for long waits to give up). */
const volatile sig_atomic_t *cli_interrupt_flag(void);
/* 0, or 128 + the first deferring signal after reporting it. */
int cli_interrupted(const char *what);

/* Prints "cryo: <what>: <message>" and the error's detail, once. */
int cli_report(const char *what, struct cryo_error *err);
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cli_print_json(json_object *o);
/* Progress and notes go to stderr, and only when it is a terminal. */
void cli_progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cli_print_stats(FILE *out, json_object *stats);
char *cli_format_bytes(unsigned long long bytes, char buf[32]);
/* "[ADDRESS:]PORT" ("[v6]:PORT" too); *address NULL if none given. */
int cli_parse_page_server(const char *arg, char **address, int *port);
#define CLI_DEFAULT_PAGE_SERVER_PORT 27027

/*
 * CRIU and source-selection options shared by dump and restore.
 * cli_parse_common() handles one getopt result; returns 1 if it consumed
 * it, 0 if not, negative on a bad value.
 */
#define CLI_COMMON_LONG_OPTIONS                                                                            \
        {"type", required_argument, NULL, 't'}, {"namespace", required_argument, NULL, 'n'},               \
                {"address", required_argument, NULL, 'a'}, {"json", no_argument, NULL, 'j'},               \
                {"tcp-established", no_argument, NULL, 1000}, {"file-locks", no_argument, NULL, 1001},     \
                {"shell-job", no_argument, NULL, 1002}, {"ext-unix-sk", no_argument, NULL, 1003},          \
                {"link-remap", no_argument, NULL, 1004}, {"ghost-limit", required_argument, NULL, 1005},   \
                {"manage-cgroups-mode", required_argument, NULL, 1006},                                    \
                {"external", required_argument, NULL, 1007}, {"log-level", required_argument, NULL, 1008}, \
                {"runtime-root", required_argument, NULL, 1009}, {                                         \
                "help", no_argument, NULL, 'h'                                                             \
        }

struct cli_common {
        struct cryo_request req;
        bool json;
};

int cli_parse_common(const char *cmd, int opt, const char *arg, struct cli_common *c);
