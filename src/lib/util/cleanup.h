/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Scope-bound ownership.  A variable declared with one of these attributes
 * owns its resource until the scope ends; to hand it on, use
 * steal_pointer()/steal_fd(), which make the transfer explicit at the call
 * site.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static inline void cryo_freep(void *p) {
        free(*(void **) p);
}
static inline void cryo_closep(int *fd) {
        if (*fd >= 0) {
                int saved = errno;
                close(*fd);
                errno = saved;
        }
}
static inline void cryo_fclosep(FILE **f) {
        if (*f)
                fclose(*f);
}
static inline void cryo_closedirp(DIR **d) {
        if (*d)
                closedir(*d);
}
static inline void cryo_strv_free(char **v) {
        if (!v)
                return;
        for (char **p = v; *p; p++)
                free(*p);
        free(v);
}
static inline void cryo_strv_freep(char ***v) {
        cryo_strv_free(*v);
}

/* A child process this scope started and still owns: killed and reaped
 * if the scope ends before it was waited for (set it to 0 once reaped). */
static inline void cryo_child_killp(pid_t *pid) {
        if (*pid > 0) {
                int saved = errno;
                (void) kill(*pid, SIGKILL);
                while (waitpid(*pid, NULL, 0) < 0 && errno == EINTR)
                        ;
                errno = saved;
        }
}

#define _cleanup_(f)       __attribute__((cleanup(f)))
#define _cleanup_free_     _cleanup_(cryo_freep)
#define _cleanup_close_    _cleanup_(cryo_closep)
#define _cleanup_fclose_   _cleanup_(cryo_fclosep)
#define _cleanup_closedir_ _cleanup_(cryo_closedirp)
#define _cleanup_strv_     _cleanup_(cryo_strv_freep)
#define _cleanup_child_    _cleanup_(cryo_child_killp)

#define steal_pointer(pp)                        \
        ({                                       \
                __typeof__(*(pp)) _tmp_ = *(pp); \
                *(pp) = NULL;                    \
                _tmp_;                           \
        })
#define steal_fd(fdp)               \
        ({                          \
                int _tmp_ = *(fdp); \
                *(fdp) = -1;        \
                _tmp_;              \
        })

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
