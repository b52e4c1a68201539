/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <stdarg.h>
#include <stddef.h>

/*
 * The error contract (docs/errors.md): every fallible function returns a
 * negative errno and, when `err` is non-NULL, fills *err with a message that
 * explains the failure.  Library code never prints.  Callers that add
 * context use cryo_error_prefix() so the user reads one line from the
 * outermost operation down to the cause.
 */
struct cryo_error {
        int code;      /* positive errno */
        char *message; /* heap-allocated, never NULL once set */
        char *detail;  /* optional extra lines (e.g. CRIU log excerpt), may be NULL */
};

/* Sets *err (if err != NULL and *err is NULL) and returns -abs(code). */
int cryo_error_set(struct cryo_error **err, int code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
int cryo_error_setv(struct cryo_error **err, int code, const char *fmt, va_list ap)
        __attribute__((format(printf, 3, 0)));
/* Like cryo_error_set() with strerror(code) appended: "msg: No such file". */
int cryo_error_errno(struct cryo_error **err, int code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
/* Prepends "context: " to an existing error; returns -(*err)->code or -EIO. */
int cryo_error_prefix(struct cryo_error **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Attaches (replaces) a multi-line detail text; takes a copy. */
void cryo_error_set_detail(struct cryo_error **err, const char *detail);
/* Puts `cause` (taken, *cause becomes NULL) in place of *err, for a cause
 * that explains more than the failure it led to; returns -cause's code. */
int cryo_error_replace(struct cryo_error **err, struct cryo_error **cause);
void cryo_error_free(struct cryo_error *e);
static inline void cryo_error_freep(struct cryo_error **e) {
        if (*e)
                cryo_error_free(*e);
        *e = NULL;
}
#define _cleanup_error_ __attribute__((cleanup(cryo_error_freep)))
