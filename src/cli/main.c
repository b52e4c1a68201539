/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

static const struct cli_command commands[] = {
        {"dump", "checkpoint a process tree or a container", cli_dump},
        {"restore", "bring a checkpoint back to life", cli_restore},
        {"inspect", "show what a checkpoint holds", cli_inspect},
        {"list", "list checkpoints", cli_list},
        {"export", "write a checkpoint as one .tar.zst file", cli_export},
        {"import", "unpack and verify an exported checkpoint", cli_import},
        {"check", "tell whether this host can checkpoint and restore", cli_check},
};

static void usage(FILE *out) {
        fprintf(out, "Usage: cryo COMMAND [OPTIONS]\n"
                     "\n"
                     "Checkpoint running containers and processes with CRIU, and restore them\n"
                     "here or on another host.\n"
                     "\n"
                     "Commands:\n");
        for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
                fprintf(out, "  %-9s %s\n", commands[i].name, commands[i].summary);
        fprintf(out, "\n"
                     "Examples:\n"
                     "  cryo dump --type containerd --namespace moby --id <container-id>\n"
                     "  cryo restore --type containerd --checkpoint-dir <path>\n"
                     "  cryo dump --type process --pid 1234\n"
                     "\n"
                     "Run 'cryo COMMAND --help' for a command's options.  --version prints the version.\n");
}

int main(int argc, char **argv) {
        /* Checkpoints hold process memory: everything cryo and CRIU create is
         * private to root, whatever the caller's umask. */
        umask(077);

        if (argc < 2) {
                usage(stderr);
                return CLI_EXIT_USAGE;
        }
        const char *cmd = argv[1];
        if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
                usage(stdout);
                return 0;
        }
        if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
                printf("cryo %s\n", CRYO_VERSION);
                return 0;
        }
        /* Not listed: runc runs it, users do not. */
        if (!strcmp(cmd, "hook"))
                return cli_hook(argc - 1, argv + 1);
        for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
                if (!strcmp(commands[i].name, cmd))
                        return commands[i].run(argc - 1, argv + 1);
        fprintf(stderr, "cryo: unknown command '%s'\n", cmd);
        usage(stderr);
        return CLI_EXIT_USAGE;
}
