/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cryo.h"
#include "util/cleanup.h"
#include "util/json.h"

static void usage(FILE *out) {
        fprintf(out, "Usage: cryo inspect [--json] [--verify] DIR|ARCHIVE\n"
                     "\n"
                     "Shows a checkpoint's manifest: type, source, host, options, processes,\n"
                     "per-phase statistics and file sizes.  An archive ('-': standard input) is\n"
                     "extracted into a scratch directory and verified first.\n"
                     "\n"
                     "      --verify   check every file's checksum (default: sizes only)\n"
                     "  -j, --json     the whole report as JSON\n"
                     "  -h, --help     this text\n");
}

static void print_report(json_object *rep) {
        json_object *m = cryo_json_get(rep, "manifest");
        char buf[32];
        printf("Checkpoint:  %s\n", cryo_json_str(rep, "path", ""));
        printf("Type:        %s\n", cryo_json_str(m, "type", "?"));
        printf("Source id:   %s\n", cryo_json_str(m, "id", "?"));
        printf("Created:     %s\n", cryo_json_str(m, "created", "?"));
        printf("Format:      %lld (cryo %s)\n", (long long) cryo_json_int(m, "format_version", 0),
               cryo_json_str(m, "cryo_version", "?"));
        json_object *host = cryo_json_get(m, "host");
        printf("Host:        %s, kernel %s, %s, CRIU %s\n", cryo_json_str(host, "hostname", "?"),
               cryo_json_str(host, "kernel", "?"), cryo_json_str(host, "arch", "?"),
               cryo_json_str(host, "criu_version", "?"));
        printf("Size:        %s\n", cli_format_bytes((unsigned long long) cryo_json_int(m, "size", 0), buf));
        json_object *lazy = cryo_json_get(m, "lazy_pages");
        if (lazy)
                printf("Memory:      not included: post-copy migration, pages served by the source on "
                       "%s:%lld\n",
                       cryo_json_str(lazy, "page_server_address", "*"),
                       (long long) cryo_json_int(lazy, "page_server_port", 0));
        json_object *image = cryo_json_get(m, "image");
        if (image)
                printf("Image:       %s (%s)\n", cryo_json_str(image, "name", "?"),
                       cryo_json_str(image, "config_digest", cryo_json_str(image, "digest", "?")));

        json_object *c = cryo_json_get(m, "container");
        if (c) {
                printf("Container:   %s", cryo_json_str(c, "id", "?"));
                if (cryo_json_get(c, "namespace"))
                        printf(" (containerd namespace %s)", cryo_json_str(c, "namespace", ""));
                printf("\n");
                json_object *mem = cryo_json_path(c, "limits/memory/limit");
                json_object *pids = cryo_json_path(c, "limits/pids/limit");
                json_object *quota = cryo_json_path(c, "limits/cpu/quota");
                printf("Limits:      memory %s, pids %s, cpu quota %s\n",
                       mem ? cli_format_bytes((unsigned long long) json_object_get_int64(mem), buf) : "none",
                       pids ? json_object_get_string(pids) : "none",
                       quota ? json_object_get_string(quota) : "none");
                printf("Security:    CapEff %s, no_new_privs %s, seccomp %s\n",
                       cryo_json_str(cryo_json_path(c, "security/live"), "CapEff", "?"),
                       cryo_json_str(cryo_json_path(c, "security/live"), "NoNewPrivs", "?"),
                       cryo_json_str(cryo_json_path(c, "security/live"), "Seccomp", "?"));
                json_object *ifaces = cryo_json_path(c, "network/interfaces");
                if (ifaces) {
                        json_object_object_foreach (ifaces, ifname, iface) {
                                json_object *addrs = cryo_json_get(iface, "addresses");
                                printf("Network:     %s", ifname);
                                for (size_t i = 0; addrs && i < json_object_array_length(addrs); i++)
                                        printf(" %s",
                                               json_object_get_string(json_object_array_get_idx(addrs, i)));
                                if (cryo_json_get(iface, "mac"))
                                        printf(" (%s)", cryo_json_str(iface, "mac", ""));
                                printf("\n");
                        }
                }
                json_object *tmpfs = cryo_json_get(c, "tmpfs");
                for (size_t i = 0; tmpfs && i < json_object_array_length(tmpfs); i++) {
                        json_object *t = json_object_array_get_idx(tmpfs, i);
                        printf("tmpfs:       %s (%s, %s of files, saved by cryo in %s)\n",
                               cryo_json_str(t, "path", "?"),
                               *cryo_json_str(t, "options", "") ? cryo_json_str(t, "options", "")
                                                                : "defaults",
                               cli_format_bytes((unsigned long long) cryo_json_int(t, "bytes", 0), buf),
                               cryo_json_str(t, "file", "?"));
                }
        }
        json_object *docker = cryo_json_get(m, "docker");
        if (docker)
                printf("Docker:      %s\n", json_object_to_json_string_ext(docker, JSON_C_TO_STRING_PLAIN));

        json_object *procs = cryo_json_get(rep, "processes");
        if (procs && json_object_array_length(procs) > 0) {
                printf("Processes:\n  %8s %8s  %s\n", "PID", "PPID", "COMMAND");
                for (size_t i = 0; i < json_object_array_length(procs); i++) {
                        json_object *p = json_object_array_get_idx(procs, i);
                        printf("  %8lld %8lld  %s\n", (long long) cryo_json_int(p, "pid", 0),
                               (long long) cryo_json_int(p, "ppid", 0), cryo_json_str(p, "comm", "?"));
                }
        }
        printf("Statistics:\n");
        cli_print_stats(stdout, cryo_json_get(m, "stats"));
        json_object *files = cryo_json_get(m, "files");
        if (files) {
                printf("Files:\n");
                json_object_object_foreach (files, name, entry) {
                        printf("  %10s  %s\n",
                               cli_format_bytes((unsigned long long) cryo_json_int(entry, "size", 0), buf),
                               name);
                }
        }
}

int cli_inspect(int argc, char **argv) {
        static const struct option longopts[] = {
                {"json", no_argument, NULL, 'j'},
                {"verify", no_argument, NULL, 'v'},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        bool json = false, verify = false;
        int opt;
        while ((opt = getopt_long(argc, argv, "jvh", longopts, NULL)) != -1) {
                switch (opt) {
                case 'j':
                        json = true;
                        break;
                case 'v':
                        verify = true;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        return cli_usage_error("inspect", "unknown option");
                }
        }
        if (optind != argc - 1)
                return cli_usage_error("inspect", "give exactly one checkpoint directory");

        _cleanup_json_ json_object *rep = NULL;
        _cleanup_error_ struct cryo_error *err = NULL;
        if (cryo_inspect(argv[optind], verify, &rep, &err) < 0)
                return cli_report("inspect", err);
        if (json)
                cli_print_json(rep);
        else
                print_report(rep);
        return 0;
}
