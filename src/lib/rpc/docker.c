/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "docker.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc/http.h"
#include "util/cleanup.h"

static void json_putp(struct json_object **o) {
        if (*o)
                json_object_put(*o);
}
#define _cleanup_json_ _cleanup_(json_putp)

static int status_to_errno(int status) {
        switch (status) {
        case 400:
                return EINVAL;
        case 404:
                return ENOENT;
        case 409:
                return EBUSY;
        default:
                return EIO;
        }
}

int docker_get_json(const char *socket_path, const char *path, struct json_object **ret,
                    struct cryo_error **err) {
        if (!socket_path)
                socket_path = DOCKER_DEFAULT_SOCKET;
        __attribute__((cleanup(http_response_clear))) struct http_response resp = {0};
        int r = http_unix_request(socket_path, "Docker", "GET", path, NULL, DOCKER_DEFAULT_TIMEOUT_MS, &resp,
                                  err);
        if (r < 0)
                return r;

        _cleanup_json_ struct json_object *o = NULL;
        enum json_tokener_error jerr = json_tokener_success;
        if (resp.body_len > 0)
                o = json_tokener_parse_verbose(resp.body, &jerr);
        if (resp.status < 200 || resp.status > 299) {
                /* dockerd explains errors as {"message": "..."}. */
                struct json_object *m = NULL;
                const char *msg =
                        o && json_object_object_get_ex(o, "message", &m) ? json_object_get_string(m) : NULL;
                return cryo_error_set(err, status_to_errno(resp.status), "Docker: %s (HTTP %d for GET %s)",
                                      msg ? msg : "request failed", resp.status, path);
        }
        if (!o)
                return cryo_error_set(err, EPROTO, "Docker: invalid JSON in the answer to GET %s: %s", path,
                                      json_tokener_error_desc(jerr));
        *ret = steal_pointer(&o);
        return 0;
}

static bool valid_ref(const char *s) {
        /* Names are [a-zA-Z0-9][a-zA-Z0-9_.-]*, IDs hex: anything else
         * would change the meaning of the URL path. */
        if (!*s)
                return false;
        for (; *s; s++)
                if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
                      *s == '_' || *s == '.' || *s == '-'))
                        return false;
        return true;
}

int docker_inspect_container(const char *socket_path, const char *name_or_id, char **ret_id,
                             struct json_object **ret_inspect, struct cryo_error **err) {
        const char *ref = name_or_id && name_or_id[0] == '/' ? name_or_id + 1 : name_or_id;
        if (!ref || !valid_ref(ref) || strlen(ref) > 256)
                return cryo_error_set(err, EINVAL, "invalid Docker container name or ID \"%s\"",
                                      name_or_id ? name_or_id : "");
        char path[300];
        snprintf(path, sizeof(path), "/containers/%s/json", ref);
        _cleanup_json_ struct json_object *o = NULL;
        int r = docker_get_json(socket_path, path, &o, err);
        if (r < 0)
                return r;

        struct json_object *id = NULL;
        const char *s = json_object_object_get_ex(o, "Id", &id) ? json_object_get_string(id) : NULL;
        if (!s || strlen(s) != 64 || strspn(s, "0123456789abcdef") != 64)
                return cryo_error_set(err, EPROTO, "Docker: inspect of %s has no valid \"Id\"", ref);
        if (ret_id && !(*ret_id = strdup(s)))
                return cryo_error_errno(err, ENOMEM, "Docker");
        if (ret_inspect)
                *ret_inspect = steal_pointer(&o);
        return 0;
}
