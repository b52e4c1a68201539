/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cryo-netns-up: the OCI prestart hook of the containers cryo restores
 * through containerd (what `cryo hook netns-up` does), as a program of its
 * own.  runc runs it at CRIU's "setup-namespaces" notification while the
 * restore waits; the cryo binary takes ~6 ms just to start (libarchive and
 * what it links: libxml2, ICU, libstdc++), this one links json-c only.
 *
 * Reads the OCI state on stdin and brings up "lo" in the network namespace
 * of its pid.
 */
#include <fcntl.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "plugins/container/lo-up.h"
#include "util/cleanup.h"

static void json_putp(json_object **o) {
        json_object_put(*o);
}

int main(int argc, char **argv) {
        if (argc > 1) {
                bool help = !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h");
                fprintf(help ? stdout : stderr,
                        "Usage: cryo-netns-up < OCI-STATE\n"
                        "\n"
                        "OCI prestart hook used by containers cryo restores: brings up the loopback\n"
                        "interface in the network namespace of the state's pid.\n");
                return help ? 0 : 2;
        }
        size_t len = 0, cap = 0;
        _cleanup_free_ char *text = NULL;
        for (;;) {
                if (len + 4096 > cap) {
                        char *t = realloc(text, cap = cap ? cap * 2 : 8192);
                        if (!t || cap > (1u << 20)) {
                                fprintf(stderr, "cryo-netns-up: container state too large\n");
                                return 1;
                        }
                        text = t;
                }
                ssize_t n = read(STDIN_FILENO, text + len, cap - len - 1);
                if (n < 0) {
                        perror("cryo-netns-up: reading the container state");
                        return 1;
                }
                if (n == 0)
                        break;
                len += (size_t) n;
        }
        text[len] = '\0';
        __attribute__((cleanup(json_putp))) json_object *state = json_tokener_parse(text);
        json_object *pid = NULL;
        if (!json_object_object_get_ex(state, "pid", &pid) || json_object_get_int(pid) <= 0) {
                fprintf(stderr, "cryo-netns-up: no pid in the container state\n");
                return 1;
        }
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/ns/net", json_object_get_int(pid));
        _cleanup_close_ int netns = open(path, O_RDONLY | O_CLOEXEC);
        if (netns < 0) {
                perror("cryo-netns-up: opening the network namespace");
                return 1;
        }
        int r = lo_up_in_netns(netns);
        if (r < 0) {
                fprintf(stderr, "cryo-netns-up: cannot bring up lo in %s: %s\n", path, strerror(-r));
                return 1;
        }
        return 0;
}
