/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Engine API calls that send a body or change state (create, start,
 * update, delete, network connect), over rpc/http.c like the read-only
 * client in rpc/docker.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "plugins/docker/docker.h"
#include "rpc/docker.h"
#include "rpc/http.h"
#include "util/cleanup.h"
#include "util/json.h"

#define DK_CONTAINERD_SYSTEM  "/run/containerd/containerd.sock"
#define DK_CONTAINERD_MANAGED "/var/run/docker/containerd/containerd.sock"

const char *dk_socket(const struct cryo_request *req) {
        if (req && req->address && *req->address)
                return req->address;
        const char *env = getenv("DOCKER_HOST");
        if (env && !strncmp(env, "unix://", 7) && env[7])
                return env + 7;
        return DOCKER_DEFAULT_SOCKET;
}

const char *dk_containerd_address(void) {
        const char *env = getenv("CONTAINERD_ADDRESS");
        if (env && *env)
                return env;
        if (access(DK_CONTAINERD_SYSTEM, F_OK) < 0 && access(DK_CONTAINERD_MANAGED, F_OK) == 0)
                return DK_CONTAINERD_MANAGED;
        return DK_CONTAINERD_SYSTEM;
}

char *dk_url_escape(const char *s) {
        static const char hex[] = "0123456789ABCDEF";
        char *out = malloc(strlen(s) * 3 + 1), *o = out;
        if (!out)
                return NULL;
        for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
                if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                    strchr("-_.~/:@", *p)) {
                        *o++ = (char) *p;
                } else {
                        *o++ = '%';
                        *o++ = hex[*p >> 4];
                        *o++ = hex[*p & 15];
                }
        }
        *o = '\0';
        return out;
}

static int status_errno(int status) {
        switch (status) {
        case 304:
                return EALREADY;
        case 400:
                return EINVAL;
        case 403:
                return EPERM;
        case 404:
                return ENOENT;
        case 409:
                return EEXIST;
        default:
                return EIO;
        }
}

/* "a\nb\n" -> "a; b": one line for an error message.  NULL on ENOMEM. */
static char *one_line(const char *s) {
        char *out = malloc(2 * strlen(s) + 1), *o = out;
        for (const char *p = s; out && *p; p++) {
                if (*p != '\r' && *p != '\n') {
                        *o++ = *p;
                } else if (o > out && p[1] && p[1] != '\n' && p[1] != '\r') {
                        *o++ = ';';
                        *o++ = ' ';
                }
        }
        if (out)
                *o = '\0';
        return out;
}

int dk_call(const char *sock, const char *method, const char *path, json_object *body, int timeout_ms,
            json_object **ret, struct cryo_error **err) {
        const char *text = body ? json_object_to_json_string_ext(
                                          body, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
                                : NULL;
        __attribute__((cleanup(http_response_clear))) struct http_response resp = {0};
        int r = http_unix_request(sock, "Docker", method, path, text, timeout_ms, &resp, err);
        if (r < 0)
                return r;
        _cleanup_json_ json_object *o = resp.body_len ? json_tokener_parse(resp.body) : NULL;
        if (resp.status < 200 || resp.status > 299) {
                /* dockerd says {"message": ...}; some errors come as text. */
                _cleanup_free_ char *msg =
                        one_line(cryo_json_str(o, "message", resp.body_len ? resp.body : ""));
                if (!msg)
                        return cryo_error_set(err, ENOMEM, "out of memory");
                return cryo_error_set(err, status_errno(resp.status), "Docker: %s (HTTP %d for %s %s)",
                                      *msg                 ? msg
                                      : resp.status == 304 ? "nothing to do"
                                                           : "request failed",
                                      resp.status, method, path);
        }
        if (resp.body_len && !o)
                return cryo_error_set(err, EPROTO, "Docker: invalid JSON in the answer to %s %s", method,
                                      path);
        if (ret)
                *ret = steal_pointer(&o);
        return 0;
}
