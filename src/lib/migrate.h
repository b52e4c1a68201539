/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <signal.h>

/*
 * The hand-over at the end of a post-copy migration (docs/migration.md).
 *
 * CRIU's lazy page server ends the same way whether the target fetched
 * every page or gave up after its restore failed (its daemon disconnects
 * cleanly in both cases), and would then kill the source.  So the source
 * dumps with leave-stopped and keeps its tree stopped until the target's
 * cryo, whose restore succeeded and holds every page, says so on the page
 * server's port: one line, "CRYO-LAZY-DONE <token>", answered "OK".  The
 * token is random, recorded in the checkpoint: only a holder of the
 * checkpoint can end the source.  Without that line in time, the source
 * resumes.
 */
#include <stdbool.h>

#include "util/error.h"

#define CRYO_LAZY_TOKEN_LEN 32 /* hex characters */

/* A fresh random token, CRYO_LAZY_TOKEN_LEN hex characters + NUL. */
int cryo_lazy_token(char out[CRYO_LAZY_TOKEN_LEN + 1], struct cryo_error **err);

/* Source: listens on address:port (NULL = all addresses) for the target's
 * confirmation; 0 once it came, -ETIMEDOUT if not within timeout_sec. */
int cryo_lazy_await_done(const char *address, int port, const char *token, unsigned timeout_sec,
                         const volatile sig_atomic_t *cancel, struct cryo_error **err);

/* Target: tells the source at address:port that the migration is done,
 * retrying until timeout_sec.  0 once the source answered OK.  On failure,
 * *maybe_delivered says whether the source may have got the line (so may
 * have ended the source) although its answer was lost. */
int cryo_lazy_send_done(const char *address, int port, const char *token, unsigned timeout_sec,
                        bool *maybe_delivered, struct cryo_error **err);
