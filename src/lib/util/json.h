/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-c/json.h>
#include <stdint.h>

#include "error.h"

static inline void cryo_json_putp(json_object **o) {
        if (*o)
                json_object_put(*o);
}
#define _cleanup_json_ __attribute__((cleanup(cryo_json_putp)))

/* Lookups that tolerate missing keys and wrong types (return the fallback). */
const char *cryo_json_str(json_object *o, const char *key, const char *fallback);
int64_t cryo_json_int(json_object *o, const char *key, int64_t fallback);
json_object *cryo_json_get(json_object *o, const char *key);
/* Follows a '/'-separated path of object keys. */
json_object *cryo_json_path(json_object *o, const char *path);

/* Adds a string only when non-NULL. */
void cryo_json_add_str(json_object *o, const char *key, const char *val);

/* Parses a buffer that need not be NUL-terminated; NULL if it is not JSON. */
json_object *cryo_json_parse_buf(const void *data, size_t len);
/* Parses a file, with the file name in the error on failure. */
int cryo_json_read_file(int dirfd, const char *name, size_t max, json_object **out, struct cryo_error **err);
/* Serializes pretty-printed JSON to dirfd/name (mode, fsync). */
int cryo_json_write_file(int dirfd, const char *name, json_object *o, int mode, struct cryo_error **err);
/* Without the fsync (fs_write_file_unsynced()): files of a checkpoint being written. */
int cryo_json_write_file_unsynced(int dirfd, const char *name, json_object *o, int mode,
                                  struct cryo_error **err);
