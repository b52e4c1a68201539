/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "stats.h"

#include <errno.h>
#include <string.h>
#include <time.h>

static const char *const phase_names[_CRYO_PHASE_MAX] = {
        [CRYO_PHASE_PREPARE] = "prepare",   [CRYO_PHASE_FREEZE] = "freeze",
        [CRYO_PHASE_FROZEN] = "frozen",     [CRYO_PHASE_MEMORY_DUMP] = "memory_dump",
        [CRYO_PHASE_DUMP] = "criu_dump",    [CRYO_PHASE_ROOTFS] = "rootfs",
        [CRYO_PHASE_METADATA] = "metadata", [CRYO_PHASE_WRITE] = "write",
        [CRYO_PHASE_VERIFY] = "verify",     [CRYO_PHASE_RESTORE] = "restore",
        [CRYO_PHASE_ARCHIVE] = "archive",   [CRYO_PHASE_IMPORT] = "import",
        [CRYO_PHASE_SNAPSHOT] = "snapshot", [CRYO_PHASE_TASK_CREATE] = "task_create",
        [CRYO_PHASE_RPC] = "rpc",           [CRYO_PHASE_LAZY_PAGES] = "lazy_pages",
        [CRYO_PHASE_TOTAL] = "total",
};

uint64_t cryo_now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

const char *cryo_phase_name(enum cryo_phase p) {
        return p < _CRYO_PHASE_MAX ? phase_names[p] : "unknown";
}

void cryo_stats_add(struct cryo_stats *s, enum cryo_phase p, uint64_t usec, uint64_t bytes) {
        if (!s || p >= _CRYO_PHASE_MAX)
                return;
        s->phase[p].set = true;
        s->phase[p].usec += usec;
        s->phase[p].bytes += bytes;
}

json_object *cryo_stats_to_json(const struct cryo_stats *s) {
        json_object *root = json_object_new_object();
        json_object *phases = json_object_new_object();
        if (!root || !phases) {
                json_object_put(root);
                json_object_put(phases);
                return NULL;
        }
        for (int p = 0; p < _CRYO_PHASE_MAX; p++) {
                if (!s->phase[p].set)
                        continue;
                json_object *o = json_object_new_object();
                json_object_object_add(o, "usec", json_object_new_uint64(s->phase[p].usec));
                json_object_object_add(o, "bytes", json_object_new_uint64(s->phase[p].bytes));
                json_object_object_add(phases, phase_names[p], o);
        }
        json_object_object_add(root, "phases", phases);
        return root;
}

int cryo_stats_from_json(json_object *obj, struct cryo_stats *s) {
        memset(s, 0, sizeof(*s));
        json_object *phases;
        if (!obj || !json_object_object_get_ex(obj, "phases", &phases) ||
            !json_object_is_type(phases, json_type_object))
                return -EINVAL;
        for (int p = 0; p < _CRYO_PHASE_MAX; p++) {
                json_object *o, *v;
                if (!json_object_object_get_ex(phases, phase_names[p], &o))
                        continue;
                s->phase[p].set = true;
                if (json_object_object_get_ex(o, "usec", &v))
                        s->phase[p].usec = json_object_get_uint64(v);
                if (json_object_object_get_ex(o, "bytes", &v))
                        s->phase[p].bytes = json_object_get_uint64(v);
        }
        return 0;
}
