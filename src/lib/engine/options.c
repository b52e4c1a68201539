/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "util/cleanup.h"
#include "util/json.h"

static const char *const cgroup_modes[] = {"soft", "full", "strict", "ignore", "props", NULL};

void engine_options_clear(struct engine_options *o) {
        free(o->cgroup_mode);
        cryo_strv_free(o->externals);
        memset(o, 0, sizeof(*o));
}

int engine_options_add_external(struct engine_options *o, const char *key) {
        size_t n = 0;
        while (o->externals && o->externals[n])
                n++;
        char **v = realloc(o->externals, (n + 2) * sizeof(char *));
        if (!v)
                return -ENOMEM;
        o->externals = v;
        v[n] = strdup(key);
        v[n + 1] = NULL;
        return v[n] ? 0 : -ENOMEM;
}

#define BOOL_OPTIONS(X)                             \
        X("leave_running", leave_running)           \
        X("tcp_established", tcp_established)       \
        X("tcp_close", tcp_close)                   \
        X("tcp_skip_in_flight", tcp_skip_in_flight) \
        X("file_locks", file_locks)                 \
        X("shell_job", shell_job)                   \
        X("ext_unix_sk", ext_unix_sk)               \
        X("link_remap", link_remap)

json_object *engine_options_to_json(const struct engine_options *o) {
        json_object *j = json_object_new_object();
        if (!j)
                return NULL;
#define TO_JSON(name, field) json_object_object_add(j, name, json_object_new_boolean(o->field));
        BOOL_OPTIONS(TO_JSON)
#undef TO_JSON
        json_object_object_add(j, "ghost_limit", json_object_new_int64(o->ghost_limit));
        cryo_json_add_str(j, "cgroup_mode", o->cgroup_mode);
        json_object *ext = json_object_new_array();
        for (char **p = o->externals; p && *p; p++)
                json_object_array_add(ext, json_object_new_string(*p));
        json_object_object_add(j, "external", ext);
        return j;
}

int engine_options_from_json(json_object *j, struct engine_options *o, struct cryo_error **err) {
        if (!j || !json_object_is_type(j, json_type_object))
                return cryo_error_set(err, EBADMSG, "options are not a JSON object");
#define FROM_JSON(name, field)                                                                   \
        {                                                                                        \
                json_object *v = cryo_json_get(j, name);                                         \
                if (v && !json_object_is_type(v, json_type_boolean))                             \
                        return cryo_error_set(err, EBADMSG, "option %s is not a boolean", name); \
                if (v)                                                                           \
                        o->field = json_object_get_boolean(v);                                   \
        }
        BOOL_OPTIONS(FROM_JSON)
#undef FROM_JSON
        int64_t ghost = cryo_json_int(j, "ghost_limit", 0);
        if (ghost < 0 || ghost > (int64_t) UINT32_MAX)
                return cryo_error_set(err, EBADMSG, "option ghost_limit out of range: %lld",
                                      (long long) ghost);
        o->ghost_limit = (unsigned) ghost;
        const char *mode = cryo_json_str(j, "cgroup_mode", NULL);
        if (mode) {
                bool known = false;
                for (const char *const *m = cgroup_modes; *m; m++)
                        known = known || !strcmp(*m, mode);
                if (!known)
                        return cryo_error_set(err, EINVAL, "unknown cgroup mode '%s'", mode);
                free(o->cgroup_mode);
                o->cgroup_mode = strdup(mode);
        }
        json_object *ext = cryo_json_get(j, "external");
        for (size_t i = 0;
             ext && json_object_is_type(ext, json_type_array) && i < json_object_array_length(ext); i++) {
                const char *s = json_object_get_string(json_object_array_get_idx(ext, i));
                if (s && engine_options_add_external(o, s) < 0)
                        return cryo_error_set(err, ENOMEM, "out of memory");
        }
        return 0;
}
