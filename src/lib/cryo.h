/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * libcryo's entry points.  The CLI (src/cli/) is a thin layer over these:
 * it fills a cryo_request, calls one function, and prints the JSON result
 * or the error.
 */
#include <json-c/json.h>
#include <stdbool.h>

#include "engine/engine.h"
#include "format/checkpoint.h"
#include "plugins/plugin.h"
#include "util/error.h"

#define CRYO_LOG_DIR  "/var/log/cryo"
#define CRYO_WORK_DIR "/run/cryo"

/* Dumps the source named by `req`; *result = {"path", "name", "type", "id", "stats"}.
 * With req->lazy (post-copy, docs/migration.md): calls req->lazy->ready once
 * the checkpoint, without the memory, is committed, then serves the pages
 * and returns once the target confirmed (the source is gone) or failed (the
 * source runs on, the checkpoint is removed). */
int cryo_dump(const struct cryo_request *req, json_object **result, struct cryo_error **err);
/* Restores the checkpoint at `path`; *result = plugin facts + {"stats"}.
 * With req->lazy: fetches the pages from the source's page server, returns
 * once all are in and the source confirmed the hand-over. */
int cryo_restore(struct cryo_request *req, const char *path, json_object **result, struct cryo_error **err);
/* Manifest, plugin facts, sizes; `verify` also checks every file. */
int cryo_inspect(const char *path, bool verify, json_object **report, struct cryo_error **err);

/* Writes checkpoint `path` as one zstd-compressed tar (level: zstd's, 0 =
 * default; threads: < 0 = one per CPU). */
int cryo_export(const char *path, const char *out_file, int level, int threads, json_object **result,
                struct cryo_error **err);
/* "-" as an archive name: standard output (dump) or input (restore). */
static inline bool cryo_archive_is_stdio(const char *name) {
        return name && name[0] == '-' && !name[1];
}
/* For cryo_dump(): checks that out_file can be created (not there yet, its
 * directory exists) and returns that directory, for the scratch checkpoint
 * ("-": `root`). */
int cryo_archive_prepare(const char *out_file, const char *root, char **dir_out, struct cryo_error **err);
/* For cryo_dump(): seals a scratch checkpoint and writes it as out_file. */
int cryo_archive_commit(struct cryo_checkpoint *ck, const char *out_file, struct cryo_error **err);
/* Extracts an archive into a hidden scratch directory under `root`, for
 * one restore, checking sizes (the restore checks the checksums): the
 * caller removes it afterwards, and holds it until then by keeping
 * *hold_out open (ckpt_sweep() leaves it alone).  `write_back` writes it to
 * disk meanwhile, for a restore whose daemon fsyncs on the same file
 * system. */
int cryo_extract_for_restore(const char *archive, const char *root, bool write_back, char **dir_out,
                             int *hold_out, struct cryo_error **err);
/* Extracts and verifies an exported checkpoint into `root`. */
int cryo_import(const char *archive, const char *root, char **path_out, struct cryo_error **err);

/* Is this host ready?  {"criu", "kernel", "runtimes", "root", "ready"}. */
int cryo_host_check(json_object **report, struct cryo_error **err);

/*
 * For plugins: run CRIU's dump for `dump` into checkpoint `ck` so that the
 * tree is left stopped (SIGSTOP): the rest of the checkpoint (filesystem)
 * is taken from the same state, then cryo_dump() kills it once the
 * checkpoint is committed, or resumes it (--leave-running, or a failure).
 * Records stats in ck.
 */
int cryo_dump_tree(struct engine_dump_request *dump, struct cryo_checkpoint *ck, struct cryo_error **err);
/* For plugins: run CRIU's restore in a private work directory; on failure
 * its log is kept under CRYO_LOG_DIR and named in the error. */
int cryo_restore_tree(struct engine_restore_request *restore, struct cryo_checkpoint *ck, pid_t *pid,
                      struct cryo_error **err);
