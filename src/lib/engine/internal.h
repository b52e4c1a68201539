/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Shared by the engine's own files (criu.c, lazy.c); not part of its API. */
#include <criu/criu.h>

#include "engine/engine.h"

/* A failed CRIU run as an error naming the cause found in CRIU's log. */
int engine_criu_failure(struct cryo_error **err, int rc, const char *what, int work_fd,
                        const char *log_name);
/* CRIU's own dump statistics (stats-dump in `dirfd`) into `stats`. */
void engine_read_dump_stats(int dirfd, uint64_t bound_usec, struct cryo_stats *stats);
/* Lazy dump (criu dump --lazy-pages, run as a command): see lazy.c. */
int engine_lazy_dump_start(const struct engine_dump_request *req, struct cryo_stats *stats,
                           struct cryo_error **err);
