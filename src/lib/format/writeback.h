/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Early write-back of a checkpoint being written.
 *
 * The kernel starts writing dirty pages to disk only past
 * dirty_background_ratio (10% of RAM: 2.3 GiB on a 24 GiB host) or after
 * 30 s, so without help a 1 GiB dump reaches the disk only when the commit
 * fsyncs it, and the fsync waits for all of it (0.45 s per GiB here).  A
 * thread asks for write-back (sync_file_range, which does not wait) of every
 * file below the checkpoint every few milliseconds while CRIU and the
 * plugins fill it, so the disk writes while CRIU works and the fsync finds
 * little left.  It costs next to no CPU: the copying is the disk's.
 *
 * The same thread checksums CRIU's page images (pages-*.img, which CRIU
 * writes front to back and never rewrites) 64 MiB chunk by 64 MiB chunk
 * as they fill, on a core CRIU leaves idle, so that the commit only hashes
 * the tails and the small files (digest.h).
 */
#include <stdbool.h>

#include "format/digest.h"
#include "util/error.h"

struct writeback;

/* Watches the tree below dirfd (which must stay open until the stop);
 * without `submit_io` it only checksums (a checkpoint that is never synced). */
int writeback_start(int dirfd, bool submit_io, struct writeback **out, struct cryo_error **err);
/* Stops and joins the thread, and hands over what it hashed (NULL: nothing,
 * or wb was NULL). */
struct digest_cache *writeback_stop(struct writeback *wb);
