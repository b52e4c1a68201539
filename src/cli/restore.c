/* SPDX-License-Identifier: LGPL-2.1-or-later */
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
                "Usage: cryo restore [--type TYPE] --checkpoint-dir DIR [OPTIONS]\n"
                "       cryo restore TYPE --path DIR [--id NEW-ID] [OPTIONS]\n"
                "       cryo restore DIR\n"
                "\n"
                "Verifies the checkpoint (every file's checksum) and restores it.  The type is\n"
                "read from the checkpoint; --type only asserts it.  A failed restore leaves the\n"
                "checkpoint intact and nothing half-created behind.\n"
                "\n"
                "  -c, --checkpoint-dir DIR  the checkpoint (alias --path), or an archive from\n"
                "                            'cryo dump --archive' or 'cryo export': extracted and\n"
                "                            verified into a scratch directory, removed afterwards;\n"
                "                            '-' reads the archive from standard input\n"
                "  -d, --dir ROOT            where that scratch directory goes (default " CRYO_DEFAULT_ROOT
                ")\n"
                "  -t, --type TYPE           expected checkpoint type\n"
                "  -i, --id ID               restore the container under this new id\n"
                "  -n, --namespace NS        containerd namespace to restore into\n"
                "  -a, --address SOCKET      daemon socket\n"
                "      --runtime-root DIR    runc state root\n"
                "      --no-verify           check sizes only, not checksums\n"
                "      --lazy-pages          post-copy: the checkpoint was dumped with\n"
                "                            --lazy-pages; its pages come from the source\n"
                "      --page-server ADDR:PORT  the source's page server (implies --lazy-pages);\n"
                "                            returns once every page has arrived\n"
                "      --tcp-established     restore established TCP connections\n"
                "      --tcp-close           restore them closed\n"
                "      --file-locks, --shell-job, --ext-unix-sk, --link-remap,\n"
                "      --manage-cgroups-mode MODE, --external KEY, --log-level N\n"
                "                            as for dump (the dump's choices apply again)\n"
                "  -j, --json                print the result as JSON\n"
                "  -h, --help                this text\n");
}

int cli_restore(int argc, char **argv) {
        static const struct option longopts[] = {
                CLI_COMMON_LONG_OPTIONS,
                {"checkpoint-dir", required_argument, NULL, 'c'},
                {"path", required_argument, NULL, 'c'},
                {"id", required_argument, NULL, 'i'},
                {"no-verify", no_argument, NULL, 2000},
                {"dir", required_argument, NULL, 'd'},
                {"tcp-close", no_argument, NULL, 2001},
                {"lazy-pages", no_argument, NULL, 2002},
                {"page-server", required_argument, NULL, 2003},
                {},
        };
        struct cli_common c = {0};
        struct cryo_request *req = &c.req;
        const char *path = NULL;
        int opt;
        bool lazy_pages = false;
        _cleanup_free_ char *ps_address = NULL;
        struct cryo_lazy lazy = {.page_server = {.work_fd = -1}};

        while ((opt = getopt_long(argc, argv, "t:n:a:jhc:i:d:", longopts, NULL)) != -1) {
                int r = cli_parse_common("restore", opt, optarg, &c);
                if (r < 0)
                        return CLI_EXIT_USAGE;
                if (r > 0)
                        continue;
                switch (opt) {
                case 'h':
                        usage(stdout);
                        return 0;
                case 'c':
                        path = optarg;
                        break;
                case 'i':
                        req->new_id = optarg;
                        break;
                case 2000:
                        req->no_verify = true;
                        break;
                case 'd':
                        req->checkpoint_root = optarg;
                        break;
                case 2001:
                        req->criu.tcp_close = true;
                        break;
                case 2002:
                        lazy_pages = true;
                        break;
                case 2003:
                        free(ps_address);
                        if (cli_parse_page_server(optarg, &ps_address, &lazy.page_server.port) < 0 ||
                            !ps_address)
                                return cli_usage_error("restore",
                                                       "bad --page-server '%s' (want ADDRESS:PORT)", optarg);
                        lazy.page_server.address = ps_address;
                        lazy_pages = true;
                        break;
                default:
                        return cli_usage_error("restore", "unknown option");
                }
        }
        /* Positionals: [TYPE] [DIR], in the reference CLI's order. */
        for (; optind < argc; optind++) {
                const char *arg = argv[optind];
                if (!req->type && !strchr(arg, '/') && cryo_plugin_find(arg))
                        req->type = arg;
                else if (!path)
                        path = arg;
                else
                        return cli_usage_error("restore", "unexpected argument '%s'", arg);
        }
        if (!path)
                return cli_usage_error("restore", "which checkpoint? give --checkpoint-dir DIR");

        if (lazy_pages && !ps_address)
                return cli_usage_error("restore",
                                       "--lazy-pages needs --page-server ADDRESS:PORT (the source)");
        if (lazy_pages)
                req->lazy = &lazy;
        cli_progress("cryo: restoring %s...\n", path);
        _cleanup_json_ json_object *result = NULL;
        _cleanup_error_ struct cryo_error *err = NULL;
        cli_defer_signals();
        int r = cryo_restore(req, path, &result, &err);
        engine_options_clear(&req->criu);
        int interrupted = cli_interrupted("restore");
        if (r < 0) {
                cli_report("restore", err);
                return interrupted ? interrupted : CLI_EXIT_FAILURE;
        }

        if (c.json) {
                cli_print_json(result);
                return interrupted;
        }
        if (isatty(STDERR_FILENO))
                cli_print_stats(stderr, cryo_json_get(result, "stats"));
        const char *id = cryo_json_str(result, "id", NULL);
        if (id)
                printf("%s\n", id);
        else
                printf("%lld\n", (long long) cryo_json_int(result, "pid", 0));
        return interrupted;
}
