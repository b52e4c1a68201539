/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cryo.h"
#include "util/cleanup.h"
#include "util/json.h"

static void usage(FILE *out) {
        fprintf(out,
                "Usage: cryo dump --type TYPE (--pid PID | --id ID) [OPTIONS]\n"
                "       cryo dump TYPE (PID | ID) [OPTIONS]\n"
                "\n"
                "Checkpoints a source into a new directory under --dir (default " CRYO_DEFAULT_ROOT ")\n"
                "and prints its path.  The source is stopped once the checkpoint is safely\n"
                "written (unless --leave-running) and keeps running if the dump fails.\n"
                "\n"
                "Source:\n"
                "  -t, --type TYPE           process, runc, containerd, docker\n"
                "  -p, --pid PID             process: root of the tree\n"
                "  -i, --id ID               container id (or name, for docker)\n"
                "  -n, --namespace NS        containerd namespace (default 'default'; Docker: moby)\n"
                "  -a, --address SOCKET      daemon socket\n"
                "      --runtime-root DIR    runc state root\n"
                "Checkpoint:\n"
                "  -d, --dir DIR             checkpoint root directory\n"
                "      --name NAME           checkpoint directory name (default TYPE-ID-TIME)\n"
                "  -o, --archive FILE        write one zstd-compressed archive (FILE.tar.zst), not a\n"
                "                            directory: dump, checksums and compression in one pass;\n"
                "                            '-' streams it to standard output (e.g. into ssh)\n"
                "      --leave-running       keep the source running after the dump\n"
                "      --rootfs-only         filesystem and metadata only, no processes\n"
                "      --with-volumes        include bind mount and volume contents\n"
                "Post-copy migration (process only, see docs/migration.md):\n"
                "      --lazy-pages          leave the memory pages out and serve them to\n"
                "                            'cryo restore --lazy-pages' on the target; the\n"
                "                            path is printed as soon as the target may start,\n"
                "                            the command ends when the pages have moved\n"
                "      --page-server [ADDR:]PORT  where to serve them (default port %d)\n"
                "      --lazy-timeout SEC    give up (the source runs on) if no target\n"
                "                            connects, or confirms after the transfer, in\n"
                "                            time (default 600; 0: wait for a target)\n"
                "CRIU:\n"
                "      --tcp-established     checkpoint established TCP connections\n"
                "      --tcp-skip-in-flight  skip half-open connections (alias --skip-in-flight)\n"
                "      --file-locks          checkpoint file locks\n"
                "      --shell-job           the tree is attached to a terminal session\n"
                "      --ext-unix-sk         allow unix sockets connected outside the tree\n"
                "      --link-remap          allow unlinked-but-open files by linking them\n"
                "      --ghost-limit SIZE    largest unlinked file to copy (bytes, NK, NM)\n"
                "      --manage-cgroups-mode soft|full|strict|ignore|props\n"
                "      --external KEY        mark a resource as external (repeatable)\n"
                "      --log-level N         CRIU log level 0-4 (default 4)\n"
                "Output:\n"
                "  -j, --json                print the result (path, per-phase stats) as JSON\n"
                "  -h, --help                this text\n",
                CLI_DEFAULT_PAGE_SERVER_PORT);
}

/* The target may start: the checkpoint is committed and CRIU listens. */
static void lazy_ready(const char *path, void *data) {
        const struct cryo_lazy *lazy = data;
        printf("%s\n", path);
        fflush(stdout);
        cli_progress("cryo: serving the memory pages on %s:%d until the target has them\n",
                     lazy->page_server.address ? lazy->page_server.address : "*", lazy->page_server.port);
}

int cli_dump(int argc, char **argv) {
        static const struct option longopts[] = {
                CLI_COMMON_LONG_OPTIONS,
                {"pid", required_argument, NULL, 'p'},
                {"id", required_argument, NULL, 'i'},
                {"dir", required_argument, NULL, 'd'},
                {"name", required_argument, NULL, 2000},
                {"leave-running", no_argument, NULL, 2001},
                {"rootfs-only", no_argument, NULL, 2002},
                {"with-volumes", no_argument, NULL, 2003},
                {"tcp-skip-in-flight", no_argument, NULL, 2004},
                {"skip-in-flight", no_argument, NULL, 2004},
                {"archive", required_argument, NULL, 'o'},
                {"lazy-pages", no_argument, NULL, 2005},
                {"page-server", required_argument, NULL, 2006},
                {"lazy-timeout", required_argument, NULL, 2007},
                {},
        };
        struct cli_common c = {0};
        struct cryo_request *req = &c.req;
        int opt;
        char *end;
        bool lazy_pages = false;
        _cleanup_free_ char *ps_address = NULL;
        struct cryo_lazy lazy = {
                .page_server = {.port = CLI_DEFAULT_PAGE_SERVER_PORT, .work_fd = -1},
                .timeout_sec = 600,
                .ready = lazy_ready,
                .data = &lazy,
                .cancel = cli_interrupt_flag(),
        };

        while ((opt = getopt_long(argc, argv, "t:n:a:jhp:i:d:o:", longopts, NULL)) != -1) {
                int r = cli_parse_common("dump", opt, optarg, &c);
                if (r < 0)
                        return CLI_EXIT_USAGE;
                if (r > 0)
                        continue;
                switch (opt) {
                case 'h':
                        usage(stdout);
                        return 0;
                case 'p':
                        errno = 0;
                        req->pid = (pid_t) strtol(optarg, &end, 10);
                        if (errno || *end || req->pid <= 0)
                                return cli_usage_error("dump", "bad --pid '%s'", optarg);
                        break;
                case 'i':
                        req->id = optarg;
                        break;
                case 'd':
                        req->checkpoint_root = optarg;
                        break;
                case 2000:
                        req->name = optarg;
                        break;
                case 'o':
                        req->archive = optarg;
                        break;
                case 2001:
                        req->criu.leave_running = true;
                        break;
                case 2002:
                        req->rootfs_only = true;
                        break;
                case 2003:
                        req->with_volumes = true;
                        break;
                case 2004:
                        req->criu.tcp_skip_in_flight = true;
                        break;
                case 2005:
                        lazy_pages = true;
                        break;
                case 2006:
                        free(ps_address);
                        if (cli_parse_page_server(optarg, &ps_address, &lazy.page_server.port) < 0)
                                return cli_usage_error(
                                        "dump", "bad --page-server '%s' (want [ADDRESS:]PORT)", optarg);
                        lazy.page_server.address = ps_address;
                        break;
                case 2007:
                        errno = 0;
                        unsigned long t = strtoul(optarg, &end, 10);
                        if (errno || *end || t > 86400 * 365)
                                return cli_usage_error("dump", "bad --lazy-timeout '%s'", optarg);
                        lazy.timeout_sec = (unsigned) t;
                        break;
                default:
                        return cli_usage_error("dump", "unknown option");
                }
        }

        /* The subcommand form: cryo dump process 1234 / cryo dump containerd ID. */
        int rest = argc - optind;
        if (rest > 0 && !req->type) {
                req->type = argv[optind++];
                rest--;
        }
        if (rest > 0) {
                const char *what = argv[optind++];
                rest--;
                if (req->type && !strcmp(req->type, "process")) {
                        errno = 0;
                        req->pid = (pid_t) strtol(what, &end, 10);
                        if (errno || *end || req->pid <= 0)
                                return cli_usage_error("dump", "bad pid '%s'", what);
                } else {
                        req->id = what;
                }
        }
        if (rest > 0)
                return cli_usage_error("dump", "unexpected argument '%s'", argv[optind]);
        if (!req->type)
                return cli_usage_error("dump", "what to dump? give --type (process, containerd, ...)");

        if (lazy_pages)
                req->lazy = &lazy;
        cli_progress("cryo: dumping %s %s...\n", req->type, req->id ? req->id : "");
        _cleanup_json_ json_object *result = NULL;
        _cleanup_error_ struct cryo_error *err = NULL;
        cli_defer_signals();
        int r = cryo_dump(req, &result, &err);
        engine_options_clear(&req->criu);
        int interrupted = cli_interrupted("dump");
        if (r < 0) {
                cli_report("dump", err);
                return interrupted ? interrupted : CLI_EXIT_FAILURE;
        }

        if (cryo_archive_is_stdio(req->archive)) {
                /* Standard output is the archive: nothing else goes there. */
                if (c.json)
                        fprintf(stderr, "%s\n",
                                json_object_to_json_string_ext(result, JSON_C_TO_STRING_PLAIN));
        } else if (c.json) {
                cli_print_json(result);
        } else {
                if (isatty(STDERR_FILENO)) {
                        fprintf(stderr, lazy_pages ? "cryo: the target has every page; the source is gone:\n"
                                                   : "cryo: checkpoint written:\n");
                        cli_print_stats(stderr, cryo_json_get(result, "stats"));
                }
                if (!lazy_pages) /* lazy_ready() printed it */
                        printf("%s\n", cryo_json_str(result, "path", ""));
        }
        return interrupted;
}
