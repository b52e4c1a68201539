/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

/*
 * Per-phase statistics.  Every dump and restore records how long each phase
 * took and how many bytes it moved; the numbers go into the manifest and to
 * `--json` output, so a slow phase is visible without a profiler.
 */
enum cryo_phase {
        CRYO_PHASE_PREPARE,     /* resolving the source, checks */
        CRYO_PHASE_FREEZE,      /* CRIU: time to freeze the tree */
        CRYO_PHASE_FROZEN,      /* CRIU: time the tree stood still */
        CRYO_PHASE_MEMORY_DUMP, /* CRIU: memory dump (pages written) */
        CRYO_PHASE_DUMP,        /* whole CRIU dump call */
        CRYO_PHASE_ROOTFS,      /* filesystem diff capture or apply */
        CRYO_PHASE_METADATA,    /* spec, config, network, limits */
        CRYO_PHASE_WRITE,       /* checksums, fsync, atomic rename */
        CRYO_PHASE_ARCHIVE,     /* compression into one archive file, its fsync (bytes: archive size) */
        CRYO_PHASE_IMPORT,      /* extraction of an archive before a restore */
        CRYO_PHASE_VERIFY,      /* checkpoint verification before restore */
        CRYO_PHASE_RESTORE,     /* whole CRIU/runtime restore call */
        CRYO_PHASE_SNAPSHOT,    /* containerd: new snapshot, mounted and unmounted around the diff */
        CRYO_PHASE_TASK_CREATE, /* containerd: Tasks.Create (shim start, runc create of the bundle) */
        CRYO_PHASE_RPC,         /* containerd: the other calls (lookups, records) and their files */
        CRYO_PHASE_LAZY_PAGES,  /* post-copy: the pages moving after the copy resumed (both sides) */
        CRYO_PHASE_TOTAL,
        _CRYO_PHASE_MAX,
};

struct cryo_phase_stat {
        bool set;
        uint64_t usec;
        uint64_t bytes;
};

struct cryo_stats {
        struct cryo_phase_stat phase[_CRYO_PHASE_MAX];
};

uint64_t cryo_now_usec(void);
const char *cryo_phase_name(enum cryo_phase p);
/* Adds time and bytes to a phase (phases may be measured in several pieces). */
void cryo_stats_add(struct cryo_stats *s, enum cryo_phase p, uint64_t usec, uint64_t bytes);
/* {"phases": {"freeze": {"usec": N, "bytes": N}, ...}} for set phases. */
json_object *cryo_stats_to_json(const struct cryo_stats *s);
int cryo_stats_from_json(json_object *obj, struct cryo_stats *s);
