/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Callers pass errno either sign; 0 would read as success. */
static int positive_code(int code) {
        return code < 0 ? -code : code > 0 ? code : EIO;
}

int cryo_error_setv(struct cryo_error **err, int code, const char *fmt, va_list ap) {
        code = positive_code(code);
        if (!err || *err)
                return -code;

        struct cryo_error *e = calloc(1, sizeof(*e));
        if (!e)
                return -code;
        if (vasprintf(&e->message, fmt, ap) < 0) {
                free(e);
                return -code;
        }
        e->code = code;
        *err = e;
        return -code;
}

int cryo_error_set(struct cryo_error **err, int code, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int r = cryo_error_setv(err, code, fmt, ap);
        va_end(ap);
        return r;
}

int cryo_error_errno(struct cryo_error **err, int code, const char *fmt, ...) {
        code = positive_code(code);
        if (!err || *err)
                return -code;

        char *head = NULL;
        va_list ap;
        va_start(ap, fmt);
        int n = vasprintf(&head, fmt, ap);
        va_end(ap);
        if (n < 0)
                return -code;
        int r = cryo_error_set(err, code, "%s: %s", head, strerror(code));
        free(head);
        return r;
}

int cryo_error_prefix(struct cryo_error **err, const char *fmt, ...) {
        if (!err || !*err)
                return -EIO;

        char *head = NULL, *joined = NULL;
        va_list ap;
        va_start(ap, fmt);
        int n = vasprintf(&head, fmt, ap);
        va_end(ap);
        if (n >= 0 && asprintf(&joined, "%s: %s", head, (*err)->message) >= 0) {
                free((*err)->message);
                (*err)->message = joined;
        }
        free(head);
        return -(*err)->code;
}

void cryo_error_set_detail(struct cryo_error **err, const char *detail) {
        if (!err || !*err || !detail)
                return;
        char *copy = strdup(detail);
        if (!copy)
                return;
        free((*err)->detail);
        (*err)->detail = copy;
}

int cryo_error_replace(struct cryo_error **err, struct cryo_error **cause) {
        int code = *cause ? (*cause)->code : EIO;
        if (err) {
                cryo_error_free(*err);
                *err = *cause;
        } else {
                cryo_error_free(*cause);
        }
        *cause = NULL;
        return -code;
}

void cryo_error_free(struct cryo_error *e) {
        if (!e)
                return;
        free(e->message);
        free(e->detail);
        free(e);
}
