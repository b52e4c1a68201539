/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "util/json.h"
#include "util/stats.h"

int cli_report(const char *what, struct cryo_error *err) {
        if (!err) {
                fprintf(stderr, "cryo: %s failed\n", what);
                return CLI_EXIT_FAILURE;
        }
        fprintf(stderr, "cryo: %s: %s\n", what, err->message);
        if (err->detail) {
                const char *p = err->detail;
                while (*p) {
                        const char *nl = strchr(p, '\n');
                        int len = nl ? (int) (nl - p) : (int) strlen(p);
                        fprintf(stderr, "  | %.*s\n", len, p);
                        p += len + (nl ? 1 : 0);
                }
        }
        return CLI_EXIT_FAILURE;
}

int cli_usage_error(const char *cmd, const char *fmt, ...) {
        va_list ap;
        fprintf(stderr, "cryo %s: ", cmd);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fprintf(stderr, "\nTry 'cryo %s --help'.\n", cmd);
        return CLI_EXIT_USAGE;
}

void cli_print_json(json_object *o) {
        puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
}

void cli_progress(const char *fmt, ...) {
        if (!isatty(STDERR_FILENO))
                return;
        va_list ap;
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
}

char *cli_format_bytes(unsigned long long bytes, char buf[32]) {
        static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
        double v = (double) bytes;
        size_t u = 0;
        while (v >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
                v /= 1024;
                u++;
        }
        snprintf(buf, 32, u ? "%.1f %s" : "%.0f %s", v, units[u]);
        return buf;
}

void cli_print_stats(FILE *out, json_object *stats) {
        json_object *phases = cryo_json_get(stats, "phases");
        if (!phases)
                return;
        json_object_object_foreach (phases, name, val) {
                char buf[32];
                long long usec = (long long) cryo_json_int(val, "usec", 0);
                long long bytes = (long long) cryo_json_int(val, "bytes", 0);
                fprintf(out, "  %-12s %10.3f ms", name, (double) usec / 1000.0);
                if (bytes)
                        fprintf(out, "  %s", cli_format_bytes((unsigned long long) bytes, buf));
                fprintf(out, "\n");
        }
}

int cli_parse_common(const char *cmd, int opt, const char *arg, struct cli_common *c) {
        struct cryo_request *req = &c->req;
        char *end = NULL;
        switch (opt) {
        case 't':
                req->type = arg;
                return 1;
        case 'n':
                req->ns = arg;
                return 1;
        case 'a':
                req->address = arg;
                return 1;
        case 'j':
                c->json = true;
                return 1;
        case 1000:
                req->criu.tcp_established = true;
                return 1;
        case 1001:
                req->criu.file_locks = true;
                return 1;
        case 1002:
                req->criu.shell_job = true;
                return 1;
        case 1003:
                req->criu.ext_unix_sk = true;
                return 1;
        case 1004:
                req->criu.link_remap = true;
                return 1;
        case 1005: {
                errno = 0;
                unsigned long long v = strtoull(arg, &end, 10);
                if (errno || !end || (*end && strcmp(end, "M") && strcmp(end, "K")) || v == 0)
                        return cli_usage_error(cmd, "bad --ghost-limit '%s' (bytes, or NK / NM)", arg),
                               -EINVAL;
                v *= *end == 'M' ? 1u << 20 : *end == 'K' ? 1u << 10 : 1;
                if (v > 0xffffffffull)
                        return cli_usage_error(cmd, "--ghost-limit too large"), -EINVAL;
                req->criu.ghost_limit = (unsigned) v;
                return 1;
        }
        case 1006:
                if (strcmp(arg, "soft") && strcmp(arg, "full") && strcmp(arg, "strict") &&
                    strcmp(arg, "ignore") && strcmp(arg, "props"))
                        return cli_usage_error(
                                       cmd, "bad --manage-cgroups-mode '%s' (soft|full|strict|ignore|props)",
                                       arg),
                               -EINVAL;
                free(req->criu.cgroup_mode);
                req->criu.cgroup_mode = strdup(arg);
                return 1;
        case 1007:
                if (engine_options_add_external(&req->criu, arg) < 0)
                        return -ENOMEM;
                return 1;
        case 1008: {
                long v = strtol(arg, &end, 10);
                if (!end || *end || v < 0 || v > 4)
                        return cli_usage_error(cmd, "bad --log-level '%s' (0-4)", arg), -EINVAL;
                req->criu.log_level = (int) v;
                return 1;
        }
        case 1009:
                req->runtime_root = arg;
                return 1;
        default:
                return 0;
        }
}

static volatile sig_atomic_t deferred_signal;

static void on_deferred_signal(int sig) {
        if (!deferred_signal)
                deferred_signal = sig;
}

static void on_sigpipe(int sig) {
        (void) sig;
}

void cli_defer_signals(void) {
        struct sigaction sa = {.sa_handler = on_deferred_signal, .sa_flags = SA_RESTART};
        sigemptyset(&sa.sa_mask);
        static const int deferred[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
        for (size_t i = 0; i < sizeof(deferred) / sizeof(deferred[0]); i++)
                (void) sigaction(deferred[i], &sa, NULL);
        sa.sa_handler = on_sigpipe;
        (void) sigaction(SIGPIPE, &sa, NULL);
}

const volatile sig_atomic_t *cli_interrupt_flag(void) {
        return &deferred_signal;
}

int cli_interrupted(const char *what) {
        int sig = deferred_signal;
        if (!sig)
                return 0;
        fprintf(stderr, "cryo: %s: interrupted by %s; it was completed or rolled back first\n", what,
                strsignal(sig));
        return 128 + sig;
}

int cli_parse_page_server(const char *arg, char **address, int *port) {
        /* PORT, :PORT, HOST:PORT or [IPV6]:PORT */
        const char *colon = strrchr(arg, ':');
        const char *num = colon ? colon + 1 : arg;
        char *end;
        errno = 0;
        long p = strtol(num, &end, 10);
        if (errno || *end || end == num || p <= 0 || p > 65535)
                return -EINVAL;
        *port = (int) p;
        *address = NULL;
        if (colon && colon > arg) {
                const char *a = arg;
                size_t len = (size_t) (colon - arg);
                if (a[0] == '[' && len >= 2 && a[len - 1] == ']') {
                        a++;
                        len -= 2;
                }
                *address = strndup(a, len);
                if (!*address)
                        return -ENOMEM;
        }
        return 0;
}
