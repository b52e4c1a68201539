/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>

#include "cli.h"
#include "cryo.h"
#include "util/cleanup.h"
#include "util/json.h"

static void usage(FILE *out) {
        fprintf(out, "Usage: cryo check [--json]\n"
                     "\n"
                     "Tells whether this host can checkpoint and restore: CRIU version and\n"
                     "features, kernel features, and which container runtimes answer.\n"
                     "Exits 0 when the host is ready.\n");
}

static const char *yes(json_object *o, const char *key) {
        return json_object_get_boolean(cryo_json_get(o, key)) ? "yes" : "no";
}

int cli_check(int argc, char **argv) {
        static const struct option longopts[] = {
                {"json", no_argument, NULL, 'j'},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        bool json = false;
        int opt;
        while ((opt = getopt_long(argc, argv, "jh", longopts, NULL)) != -1) {
                if (opt == 'j') {
                        json = true;
                } else if (opt == 'h') {
                        usage(stdout);
                        return 0;
                } else {
                        return cli_usage_error("check", "unknown option");
                }
        }
        _cleanup_json_ json_object *rep = NULL;
        _cleanup_error_ struct cryo_error *err = NULL;
        if (cryo_host_check(&rep, &err) < 0)
                return cli_report("check", err);
        bool ready = json_object_get_boolean(cryo_json_get(rep, "ready"));
        if (json) {
                cli_print_json(rep);
                return ready ? 0 : CLI_EXIT_FAILURE;
        }
        json_object *criu = cryo_json_get(rep, "criu"), *k = cryo_json_get(rep, "kernel");
        if (cryo_json_get(criu, "error"))
                printf("CRIU:                %s\n", cryo_json_str(criu, "error", ""));
        else
                printf("CRIU:                %s (%s)\n", cryo_json_str(criu, "version", "?"),
                       json_object_get_boolean(cryo_json_get(criu, "version_ok")) ? "ok"
                                                                                  : "too old: need >= 4.2");
        json_object *f = cryo_json_get(criu, "features");
        if (f)
                printf("  memory tracking:   %s\n  lazy pages:        %s\n  pidfd store:       %s\n",
                       yes(f, "mem_track"), yes(f, "lazy_pages"), yes(f, "pidfd_store"));
        if (cryo_json_get(criu, "kdat_cache"))
                printf("  kdat cache:        %s\n",
                       json_object_get_boolean(cryo_json_get(criu, "kdat_cache"))
                               ? "yes (/run/criu.kdat)"
                               : "no: /run is not a tmpfs, so every CRIU run probes the kernel again (~40 "
                                 "ms)");
        printf("Kernel:              %s %s\n", cryo_json_str(k, "kernel", "?"),
               cryo_json_str(k, "arch", "?"));
        printf("  checkpoint/restore: %s\n  overlayfs:         %s\n  userfaultfd:       %s\n"
               "  time namespace:    %s\n  cgroups:           %s\n",
               yes(k, "checkpoint_restore"), yes(k, "overlayfs"), yes(k, "userfaultfd"),
               yes(k, "time_namespace"), cryo_json_str(k, "cgroups", "?"));
        printf("  cgroup yard:       %s\n",
               cryo_json_get(k, "cgroup_yard")
                       ? cryo_json_str(k, "cgroup_yard", "")
                       : "none: CRIU mounts every cgroup hierarchy it handles afresh for each run");
        printf("Runtimes:\n");
        json_object_object_foreach (cryo_json_get(rep, "runtimes"), name, rt) {
                if (cryo_json_get(rt, "version"))
                        printf("  %-18s %s (%s, %s)\n", name, yes(rt, "answers"),
                               cryo_json_str(rt, "socket", ""), cryo_json_str(rt, "version", ""));
                else if (cryo_json_get(rt, "socket"))
                        printf("  %-18s %s (%s)\n", name, yes(rt, "answers"),
                               cryo_json_str(rt, "socket", ""));
                else
                        printf("  %-18s %s\n", name, yes(rt, "installed"));
        }
        printf("Running as root:     %s\n", yes(rep, "root"));
        printf("Ready:               %s\n", ready ? "yes" : "no");
        return ready ? 0 : CLI_EXIT_FAILURE;
}
