/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/engine.h"
#include "util/cleanup.h"
#include "util/fs.h"

/* CRIU prints this on machines without CAP_SYS_RESOURCE; it never explains
 * a failure, so it must not be picked as the cause. */
static const char *const harmless[] = {
        "RLIMIT_NOFILE",
        NULL,
};

static bool is_harmless(const char *line) {
        for (const char *const *h = harmless; *h; h++)
                if (strstr(line, *h))
                        return true;
        return false;
}

/* "(00.012345) Error (criu/cr-dump.c:123): Can't dump" -> "Can't dump".
 * Returns NULL for lines that are not errors. */
static const char *error_text(const char *line) {
        const char *e = strstr(line, "Error (");
        if (!e)
                return NULL;
        const char *colon = strstr(e, "): ");
        return colon ? colon + 3 : e;
}

int engine_log_explain(int dirfd, const char *log_name, char **cause, char **excerpt) {
        enum { KEEP = 12, LOG_MAX = 256u << 20 };
        *cause = NULL;
        *excerpt = NULL;
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        if (fs_read_file(dirfd, log_name, LOG_MAX, &text, &len, NULL) < 0)
                return -ENOENT;

        const char *lines[KEEP] = {0};
        size_t count = 0;
        const char *first_cause = NULL;
        for (char *save = NULL, *line = strtok_r(text, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save)) {
                const char *msg = error_text(line);
                if (!msg || is_harmless(line))
                        continue;
                lines[count % KEEP] = msg;
                count++;
                /* CRIU logs the root cause first and then each layer that
                 * unwinds ("Dumping failed", "Can't dump task"), so the first
                 * specific line explains more than the last. */
                if (!first_cause)
                        first_cause = msg;
        }
        if (count == 0)
                return -ENOENT;

        size_t start = count > KEEP ? count - KEEP : 0, size = 1;
        for (size_t i = start; i < count; i++)
                size += strlen(lines[i % KEEP]) + 1;
        char *out = malloc(size);
        if (!out)
                return -ENOMEM;
        out[0] = '\0';
        for (size_t i = start; i < count; i++) {
                strcat(out, lines[i % KEEP]);
                strcat(out, "\n");
        }
        *cause = strdup(first_cause);
        *excerpt = out;
        if (!*cause) {
                free(out);
                *excerpt = NULL;
                return -ENOMEM;
        }
        return 0;
}

int engine_log_criu_version(int dirfd, const char *log_name, char **out) {
        /* fs_read_file() refuses a longer file: the head is enough. */
        _cleanup_close_ int fd = openat(dirfd, log_name, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        char head[4096];
        ssize_t n = read(fd, head, sizeof(head) - 1);
        if (n <= 0)
                return -ENOENT;
        head[n] = '\0';
        const char *v = strstr(head, ") Version: ");
        unsigned major = 0, minor = 0, sub = 0;
        if (!v || sscanf(v + strlen(") Version: "), "%u.%u.%u", &major, &minor, &sub) < 2)
                return -ENOENT;
        return asprintf(out, "%u.%u.%u", major, minor, sub) < 0 ? -ENOMEM : 0;
}
