/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * OCI hooks that cryo puts into the spec of a container it restores.  runc
 * runs prestart hooks at CRIU's "setup-namespaces" notification, with the
 * container state (and the restored pid) on stdin, before CRIU rebinds the
 * tree's sockets: the moment to bring up the fresh network namespace.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "plugins/container/container.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/json.h"

int cli_hook(int argc, char **argv) {
        if (argc != 2 || strcmp(argv[1], "netns-up") != 0) {
                fprintf(argc == 2 && !strcmp(argv[1], "--help") ? stdout : stderr,
                        "Usage: cryo hook netns-up < OCI-STATE\n"
                        "\n"
                        "OCI prestart hook used by containers cryo restores: brings up the loopback\n"
                        "interface in the network namespace of the state's pid.\n");
                return argc == 2 && !strcmp(argv[1], "--help") ? 0 : CLI_EXIT_USAGE;
        }
        _cleanup_free_ char *text = NULL;
        _cleanup_error_ struct cryo_error *err = NULL;
        if (fs_read_fd(STDIN_FILENO, 1 << 20, &text, NULL, &err) < 0)
                return cli_report("hook: reading the container state", err);
        _cleanup_json_ json_object *state = json_tokener_parse(text);
        pid_t pid = (pid_t) cryo_json_int(state, "pid", 0);
        if (pid <= 0) {
                fprintf(stderr, "cryo: hook: no pid in the container state\n");
                return CLI_EXIT_FAILURE;
        }
        if (container_netns_up(pid, &err) < 0)
                return cli_report("hook netns-up", err);
        return 0;
}
