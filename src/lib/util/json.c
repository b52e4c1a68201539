/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "json.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "cleanup.h"
#include "fs.h"

static void tokener_freep(json_tokener **t) {
        if (*t)
                json_tokener_free(*t);
}

json_object *cryo_json_get(json_object *o, const char *key) {
        json_object *v = NULL;
        if (!o || !json_object_is_type(o, json_type_object))
                return NULL;
        return json_object_object_get_ex(o, key, &v) ? v : NULL;
}

json_object *cryo_json_path(json_object *o, const char *path) {
        _cleanup_free_ char *copy = strdup(path);
        if (!copy)
                return NULL;
        char *save = NULL;
        for (char *tok = strtok_r(copy, "/", &save); tok && o; tok = strtok_r(NULL, "/", &save))
                o = cryo_json_get(o, tok);
        return o;
}

const char *cryo_json_str(json_object *o, const char *key, const char *fallback) {
        json_object *v = cryo_json_get(o, key);
        return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : fallback;
}

int64_t cryo_json_int(json_object *o, const char *key, int64_t fallback) {
        json_object *v = cryo_json_get(o, key);
        return v && json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : fallback;
}

void cryo_json_add_str(json_object *o, const char *key, const char *val) {
        if (val)
                json_object_object_add(o, key, json_object_new_string(val));
}

json_object *cryo_json_parse_buf(const void *data, size_t len) {
        if (!data || len > INT32_MAX)
                return NULL;
        _cleanup_(tokener_freep) json_tokener *tok = json_tokener_new();
        if (!tok)
                return NULL;
        json_object *o = json_tokener_parse_ex(tok, data, (int) len);
        if (json_tokener_get_error(tok) != json_tokener_success) {
                json_object_put(o);
                return NULL;
        }
        return o;
}

int cryo_json_read_file(int dirfd, const char *name, size_t max, json_object **out,
                        struct cryo_error **err) {
        _cleanup_free_ char *text = NULL;
        int r = fs_read_file(dirfd, name, max, &text, NULL, err);
        if (r < 0)
                return r;

        _cleanup_(tokener_freep) json_tokener *tok = json_tokener_new();
        if (!tok)
                return cryo_error_set(err, ENOMEM, "out of memory");
        json_object *o = json_tokener_parse_ex(tok, text, (int) strlen(text));
        enum json_tokener_error jerr = json_tokener_get_error(tok);
        if (!o || jerr != json_tokener_success) {
                json_object_put(o);
                return cryo_error_set(err, EBADMSG, "%s is not valid JSON: %s", name,
                                      json_tokener_error_desc(jerr == json_tokener_continue
                                                                      ? json_tokener_error_parse_eof
                                                                      : jerr));
        }
        *out = o;
        return 0;
}

static int write_json(int dirfd, const char *name, json_object *o, int mode, bool sync,
                      struct cryo_error **err) {
        const char *text =
                json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!text)
                return cryo_error_set(err, ENOMEM, "cannot serialize %s", name);
        size_t len = strlen(text);
        _cleanup_free_ char *withnl = malloc(len + 2);
        if (!withnl)
                return cryo_error_set(err, ENOMEM, "out of memory");
        memcpy(withnl, text, len);
        withnl[len] = '\n';
        return sync ? fs_write_file(dirfd, name, withnl, len + 1, (mode_t) mode, err)
                    : fs_write_file_unsynced(dirfd, name, withnl, len + 1, (mode_t) mode, err);
}

int cryo_json_write_file(int dirfd, const char *name, json_object *o, int mode, struct cryo_error **err) {
        return write_json(dirfd, name, o, mode, true, err);
}

int cryo_json_write_file_unsynced(int dirfd, const char *name, json_object *o, int mode,
                                  struct cryo_error **err) {
        return write_json(dirfd, name, o, mode, false, err);
}
