/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Shared by the engine's own files (criu.c, lazy.c); not part of its API. */
#include <criu/criu.h>

#include "engine/engine.h"

/* A failed CRIU run as an error naming the cause found in CRIU's log. */
int engine_criu_failure(struct cryo_error **err, int rc, const char *what, int work_fd,
                        const char *log_name);
/* CRIU's own dump statistics (stats-dump in `dirfd`) into `stats`. */
void engine_read_dump_stats(int dirfd, struct cryo_stats *stats);
/* Lazy dump (criu dump --lazy-pages, run as a command): see lazy.c. */
int engine_lazy_dump_start(const struct engine_dump_request *req, struct cryo_stats *stats,
                           struct cryo_error **err);

/* The target's lazy-pages daemon, started before the restore. */
struct engine_lazy_pages;
int engine_lazy_pages_start(const struct engine_restore_request *req, struct engine_lazy_pages **out,
                            struct cryo_error **err);
/* Waits for every page to arrive; on failure kills the restored tree `pid`. */
int engine_lazy_pages_wait(struct engine_lazy_pages *d, pid_t pid, struct cryo_error **err);
/* After a failed restore: if the daemon failed too, its cause (it could not
 * reach the source, say) explains more; returns < 0 with *err set then. */
int engine_lazy_pages_explain(struct engine_lazy_pages *d, struct cryo_error **err);
void engine_lazy_pages_free(struct engine_lazy_pages *d);
static inline void engine_lazy_pages_freep(struct engine_lazy_pages **d) {
        engine_lazy_pages_free(*d);
        *d = NULL;
}
#define _cleanup_lazy_pages_ __attribute__((cleanup(engine_lazy_pages_freep)))
