/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-c/json.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/types.h>

#include "engine/engine.h"
#include "format/checkpoint.h"
#include "util/error.h"

/*
 * One plugin per kind of source (a process tree, a runc container, a
 * containerd container, ...).  All share the same small interface and are
 * registered in one static table (registry.c).  The generic parts of a dump
 * (temporary directory, manifest, checksums, atomic commit) and of a
 * restore (verification) are done by the caller, src/lib/cryo.c; a plugin
 * only fills in or reads back what is specific to its source.
 */

/* Post-copy migration (--lazy-pages, docs/migration.md). */
struct cryo_lazy {
        /* Dump: where CRIU's page server listens (address NULL = all);
         * restore: the source's page server. */
        struct engine_lazy_request page_server;
        unsigned timeout_sec; /* dump: give up if no target connects by then; 0 = wait */
        /* Dump: called once the checkpoint (all but the pages) is committed
         * at `path` and the page server listens: the target may start. */
        void (*ready)(const char *path, void *data);
        void *data;
        /* Dump: polled while the pages move; non-zero abandons the
         * migration (the source resumes).  May be NULL. */
        const volatile sig_atomic_t *cancel;
};

/* What the user asked for.  Plugins read the fields that concern them. */
struct cryo_request {
        const char *type;
        pid_t pid;                   /* process */
        const char *id;              /* containerd/runc/docker container id or name */
        const char *new_id;          /* restore under another id */
        const char *ns;              /* containerd namespace */
        const char *address;         /* daemon socket */
        const char *runtime_root;    /* runc --root */
        const char *checkpoint_root; /* where new checkpoints go */
        const char *name;            /* checkpoint directory name */
        const char *archive;         /* dump: write one zstd archive here instead of a directory */
        struct engine_options criu;
        bool rootfs_only;
        bool with_volumes;
        bool no_verify;
        struct cryo_lazy *lazy; /* NULL: a plain dump or restore */
};

struct cryo_plugin {
        const char *name;
        const char *summary;
        /* The id used to name the checkpoint ("1234", a container id). */
        int (*source_id)(const struct cryo_request *req, char **id, struct cryo_error **err);
        int (*dump)(const struct cryo_request *req, struct cryo_checkpoint *ck, struct cryo_error **err);
        /* Optional: dump() succeeded but the checkpoint could not be
         * committed (disk full, archive not writable): undo what dump()
         * changed on the source, which goes on running.  Best effort. */
        void (*dump_aborted)(const struct cryo_request *req, struct cryo_checkpoint *ck);
        /* On success, fills `result` (e.g. {"pid": N} or {"id": "..."}). */
        int (*restore)(const struct cryo_request *req, struct cryo_checkpoint *ck, json_object *result,
                       struct cryo_error **err);
        /* Adds plugin-specific facts to an inspect report. */
        int (*inspect)(struct cryo_checkpoint *ck, json_object *report, struct cryo_error **err);
        /* restore() is handed a checkpoint whose checksums are still being
         * computed (ckpt_verify_begin) and calls ckpt_verify_end() before the
         * restored tree runs; otherwise cryo_restore() verifies first. */
        bool verifies_before_resume;
        /* Passes req->lazy on to CRIU (post-copy migration). */
        bool lazy_pages;
        /* Post-copy: restore() itself confirms to the source (cryo_lazy_send_done)
         * as its last step, so that it can undo everything it created if that
         * fails; otherwise cryo_restore() confirms and kills result's "pid". */
        bool lazy_confirms;
};

const struct cryo_plugin *cryo_plugin_find(const char *name);
/* NULL-terminated table, in registration order. */
const struct cryo_plugin *const *cryo_plugins(void);

extern const struct cryo_plugin cryo_plugin_process;
extern const struct cryo_plugin cryo_plugin_containerd;
extern const struct cryo_plugin cryo_plugin_docker;
extern const struct cryo_plugin cryo_plugin_runc;
