/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>

#include "cli.h"
#include "cryo.h"
#include "util/cleanup.h"
#include "util/json.h"

static void usage(FILE *out) {
        fprintf(out, "Usage: cryo list [--dir DIR] [--json]\n"
                     "\n"
                     "Lists the checkpoints under DIR (default " CRYO_DEFAULT_ROOT ").\n"
                     "\n"
                     "  -d, --dir DIR  checkpoint root\n"
                     "  -j, --json     as a JSON array\n"
                     "  -h, --help     this text\n");
}

int cli_list(int argc, char **argv) {
        static const struct option longopts[] = {
                {"dir", required_argument, NULL, 'd'},
                {"json", no_argument, NULL, 'j'},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        const char *root = CRYO_DEFAULT_ROOT;
        bool json = false;
        int opt;
        while ((opt = getopt_long(argc, argv, "d:jh", longopts, NULL)) != -1) {
                switch (opt) {
                case 'd':
                        root = optarg;
                        break;
                case 'j':
                        json = true;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        return cli_usage_error("list", "unknown option");
                }
        }
        if (optind != argc)
                return cli_usage_error("list", "unexpected argument '%s'", argv[optind]);

        _cleanup_json_ json_object *list = NULL;
        _cleanup_error_ struct cryo_error *err = NULL;
        if (ckpt_list(root, &list, &err) < 0)
                return cli_report("list", err);
        if (json) {
                cli_print_json(list);
                return 0;
        }
        size_t n = json_object_array_length(list);
        if (n == 0) {
                fprintf(stderr, "no checkpoints under %s\n", root);
                return 0;
        }
        printf("%-12s %-24s %-21s %10s  %s\n", "TYPE", "ID", "CREATED", "SIZE", "PATH");
        for (size_t i = 0; i < n; i++) {
                json_object *o = json_object_array_get_idx(list, i);
                char buf[32];
                printf("%-12s %-24.24s %-21s %10s  %s\n", cryo_json_str(o, "type", "?"),
                       cryo_json_str(o, "id", "?"), cryo_json_str(o, "created", "?"),
                       cli_format_bytes((unsigned long long) cryo_json_int(o, "size", 0), buf),
                       cryo_json_str(o, "path", "?"));
        }
        return 0;
}
