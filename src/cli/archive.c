/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cryo.h"
#include "util/cleanup.h"
#include "util/json.h"

static void export_usage(FILE *out) {
        fprintf(out, "Usage: cryo export DIR [-o FILE] [--level N] [--threads N] [--json]\n"
                     "\n"
                     "Writes checkpoint DIR as one zstd-compressed tar (default DIR.tar.zst),\n"
                     "root-only, for moving it to another host or keeping it as a backup.\n"
                     "'cryo import FILE' or 'cryo restore --checkpoint-dir FILE' take it back.\n"
                     "\n"
                     "  -o, --output FILE   archive to write\n"
                     "      --level N       zstd level (default 1: fast; up to 19)\n"
                     "      --threads N     compression threads (default: one per CPU)\n"
                     "  -j, --json          print the result as JSON\n");
}

static int parse_int(const char *cmd, const char *what, const char *arg, int lo, int hi, int *out) {
        char *end = NULL;
        long v = strtol(arg, &end, 10);
        if (!end || *end || v < lo || v > hi)
                return cli_usage_error(cmd, "bad %s '%s' (%d-%d)", what, arg, lo, hi);
        *out = (int) v;
        return 0;
}

int cli_export(int argc, char **argv) {
        static const struct option longopts[] = {
                {"output", required_argument, NULL, 'o'},  {"level", required_argument, NULL, 'l'},
                {"threads", required_argument, NULL, 'T'}, {"json", no_argument, NULL, 'j'},
                {"help", no_argument, NULL, 'h'},          {},
        };
        const char *out = NULL;
        int level = 1, threads = -1, opt;
        bool json = false;
        while ((opt = getopt_long(argc, argv, "o:jh", longopts, NULL)) != -1) {
                switch (opt) {
                case 'o':
                        out = optarg;
                        break;
                case 'l':
                        if (parse_int("export", "--level", optarg, -7, 19, &level))
                                return CLI_EXIT_USAGE;
                        break;
                case 'T':
                        if (parse_int("export", "--threads", optarg, 0, 256, &threads))
                                return CLI_EXIT_USAGE;
                        break;
                case 'j':
                        json = true;
                        break;
                case 'h':
                        export_usage(stdout);
                        return 0;
                default:
                        return cli_usage_error("export", "unknown option");
                }
        }
        if (optind != argc - 1)
                return cli_usage_error("export", "give exactly one checkpoint directory");
        const char *dir = argv[optind];
        _cleanup_free_ char *def = NULL;
        if (!out) {
                size_t n = strlen(dir);
                while (n > 1 && dir[n - 1] == '/')
                        n--;
                if (asprintf(&def, "%.*s.tar.zst", (int) n, dir) < 0)
                        return CLI_EXIT_FAILURE;
                out = def;
        }
        _cleanup_json_ json_object *res = NULL;
        _cleanup_error_ struct cryo_error *err = NULL;
        if (cryo_export(dir, out, level, threads, &res, &err) < 0)
                return cli_report("export", err);
        if (json)
                cli_print_json(res);
        else
                printf("%s\n", out);
        return 0;
}

int cli_import(int argc, char **argv) {
        static const struct option longopts[] = {
                {"dir", required_argument, NULL, 'd'},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        const char *root = CRYO_DEFAULT_ROOT;
        int opt;
        while ((opt = getopt_long(argc, argv, "d:h", longopts, NULL)) != -1) {
                if (opt == 'd') {
                        root = optarg;
                } else if (opt == 'h') {
                        printf("Usage: cryo import FILE [--dir ROOT]\n"
                               "\n"
                               "Extracts an exported checkpoint under ROOT (default " CRYO_DEFAULT_ROOT
                               "),\n"
                               "verifies every checksum, and prints its path.\n");
                        return 0;
                } else {
                        return cli_usage_error("import", "unknown option");
                }
        }
        if (optind != argc - 1)
                return cli_usage_error("import", "give exactly one archive");
        _cleanup_free_ char *path = NULL;
        _cleanup_error_ struct cryo_error *err = NULL;
        if (cryo_import(argv[optind], root, &path, &err) < 0)
                return cli_report("import", err);
        printf("%s\n", path);
        return 0;
}
