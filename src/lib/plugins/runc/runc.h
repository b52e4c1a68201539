/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The runc plugin: a container run by runc directly (`runc run -d`), with
 * no daemon above it.  Dump reads runc's state (<root>/<id>/state.json)
 * and the bundle's config.json and dumps the container with the options
 * `runc restore` expects (plugins/container/); restore runs `runc restore`
 * on the same bundle, so the result is an ordinary runc container again:
 * `runc list`, `runc kill`, `runc delete` work on it.
 *
 * What runc does not carry through a checkpoint is the container's stdio:
 * `runc run -d </dev/null >log` leaves the container's init holding host
 * files, which CRIU cannot open again from inside the container.  cryo
 * dumps them as external files and hands runc restore the same files
 * reopened (stdio.c).
 *
 * Limits, each refused or explained when met:
 *  - restore uses the bundle the container was dumped from (runc reads its
 *    config.json again); cryo never edits it;
 *  - a private network namespace comes back empty (runc's empty_ns): cryo
 *    brings loopback up after the restore, which serves listeners, but an
 *    established loopback connection needs loopback up before CRIU
 *    reconnects it, i.e. the prestart hook `cryo hook netns-up` in the
 *    bundle's config.json;
 *  - a host file the container writes without O_APPEND (`>LOG`) must keep
 *    its dump-time size (CRIU's check), so --leave-running dumps of such
 *    containers do not restore; `>>LOG` has no such limit;
 *  - no terminal containers (no console socket), no paused ones.
 */
#include <json-c/json.h>
#include <stdbool.h>
#include <sys/types.h>

#include "format/checkpoint.h"
#include "plugins/plugin.h"
#include "util/error.h"

#define RUNC_DEFAULT_ROOT   "/run/runc"
#define RUNC_SECTION        "runc" /* the manifest's plugin section */
#define RUNC_CONTAINERS_DIR "/var/lib/cryo/containers/runc"

/* --runtime-root, else runc's own default. */
const char *runc_root(const struct cryo_request *req);

/* A container id runc accepts, and that is safe as a file name. */
bool runc_id_valid(const char *id);

/* Runs `runc ARGS...` with fds 0-2 taken from `stdio` (NULL: /dev/null
 * for all three) and, when criu_conf is set, CRIU_CONFIG_FILE=criu_conf in
 * its environment; *status gets the exit status (-1 if it did not exit). */
int runc_exec(const char *const *args, const int *stdio, const char *criu_conf, int *status,
              struct cryo_error **err);

/*
 * Dump side of stdio: looks at fds 0-2 of the container's init.  Returns
 * a JSON array of {"fd", "target", "kind"} (kind "pipe", "file", "inside",
 * "socket", "other"; a "file" is a host file outside the container, with
 * "path", "flags" and its CRIU "key"), and in *externals the CRIU external
 * keys that let CRIU dump the host files.  A terminal is refused.
 */
int runc_stdio_dump(pid_t pid, json_object **out, char ***externals, struct cryo_error **err);

/* After the dump: the sizes CRIU saw (the tree is stopped now and writes no
 * more), or none if it runs on (--leave-running) and they keep changing. */
void runc_stdio_dumped(pid_t pid, json_object *stdio, bool running);

/* Restore side of stdio: what runc restore gets as fds 0-2. */
struct runc_stdio {
        int fd[3];
        char *criu_conf;     /* "inherit-fd fd[N]:KEY" lines, or NULL */
        char *created_log;   /* a log file this restore created */
        json_object *report; /* [{"fd", "path"}] for the result */
};
/* Reopens the files the checkpoint's stdio pointed to (`saved` is the
 * array runc_stdio_dump made); a pipe, or a file that cannot be opened
 * again, becomes /dev/null (read) or `fallback_log` (write). */
int runc_stdio_open(json_object *saved, const char *fallback_log, struct runc_stdio *s,
                    struct cryo_error **err);
void runc_stdio_clear(struct runc_stdio *s);

int runc_restore(const struct cryo_request *req, struct cryo_checkpoint *ck, json_object *result,
                 struct cryo_error **err);
