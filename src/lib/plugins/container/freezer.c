/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Freezing the container's cgroup before CRIU runs.
 *
 * CRIU (criu/seize.c, freeze_processes) writes FROZEN to --freeze-cgroup
 * and then checks the state in 100 ms steps: the freezer is rarely done at
 * the first check, so nearly every container dump sleeps 100 ms.  When CRIU
 * finds the cgroup already FROZEN it skips that loop (it only notes the
 * "origin" state), seizes the tasks, thaws the cgroup (ptrace holds them),
 * and writes FROZEN back when it lets them go, after a failure as after a
 * dump that leaves them stopped or running.  So cryo freezes first, polling
 * every millisecond, and thaws again itself as soon as CRIU returns: the
 * tree is then stopped by SIGSTOP (leave-stopped) or running, as without
 * the freezer.
 *
 * The origin state also goes into the images (cgroup.c, add_freezer_state:
 * the freezer.state property): FROZEN there would freeze the restored
 * container under --manage-cgroups-mode full/props, so container_freezer_
 * fix_image() puts back the state the container really had.
 *
 * cgroup v2: cgroup.freeze / cgroup.events ("frozen 1"); CRIU takes the
 * same path there (no freezer.state property is recorded on v2).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "plugins/container/container.h"
#include "util/cleanup.h"
#include "util/fs.h"

#define POLL_USEC      1000
#define REFREEZE_EVERY 100     /* v1 can stall in FREEZING: ask again, as CRIU does */
#define GIVE_UP_USEC   2000000 /* then CRIU's own freezing (with its v1 kludges) takes over */

static int read_at(int fd, char *buf, size_t size) {
        ssize_t n = pread(fd, buf, size - 1, 0);
        if (n < 0)
                return -errno;
        buf[n] = '\0';
        return 0;
}

static int write_state(const struct container_freezer *f, bool frozen) {
        const char *s = f->v2 ? (frozen ? "1" : "0") : (frozen ? "FROZEN" : "THAWED");
        if (pwrite(f->state_fd, s, strlen(s), 0) < 0)
                return -errno;
        return 0;
}

/* 1 frozen, 0 thawed, 2 in between (v1 FREEZING, v2 freeze requested). */
static int read_state(const struct container_freezer *f) {
        char buf[512];
        if (f->v2) {
                int r = read_at(f->events_fd, buf, sizeof(buf));
                if (r < 0)
                        return r;
                if (strstr(buf, "frozen 1"))
                        return 1;
                r = read_at(f->state_fd, buf, sizeof(buf));
                if (r < 0)
                        return r;
                return buf[0] == '1' ? 2 : 0;
        }
        int r = read_at(f->state_fd, buf, sizeof(buf));
        if (r < 0)
                return r;
        if (!strncmp(buf, "FROZEN", 6))
                return 1;
        if (!strncmp(buf, "THAWED", 6))
                return 0;
        return 2;
}

int container_freeze(const char *cgroup, struct container_freezer *f, struct cryo_error **err) {
        char path[PATH_MAX_LEN];
        snprintf(path, sizeof(path), "%s/freezer.state", cgroup);
        _cleanup_close_ int fd = open(path, O_RDWR | O_CLOEXEC);
        _cleanup_close_ int events = -1;
        bool v2 = false;
        if (fd < 0 && errno == ENOENT) {
                v2 = true;
                snprintf(path, sizeof(path), "%s/cgroup.freeze", cgroup);
                fd = open(path, O_RDWR | O_CLOEXEC);
                if (fd >= 0) {
                        snprintf(path, sizeof(path), "%s/cgroup.events", cgroup);
                        events = open(path, O_RDONLY | O_CLOEXEC);
                        if (events < 0)
                                return cryo_error_errno(err, errno, "cannot open %s", path);
                }
        }
        if (fd < 0)
                return cryo_error_errno(err, errno, "cannot open the freezer of cgroup %s", cgroup);
        struct container_freezer t = {.state_fd = fd, .events_fd = events, .v2 = v2};
        int s = read_state(&t);
        if (s < 0)
                return cryo_error_errno(err, -s, "cannot read the freezer state of cgroup %s", cgroup);
        if (s != 0)
                /* Frozen (paused) by someone else: CRIU keeps it as it is. */
                return 0;
        int r = write_state(&t, true);
        if (r < 0)
                return cryo_error_errno(err, -r, "cannot freeze cgroup %s", cgroup);
        t.frozen_by_us = true;
        uint64_t start = cryo_now_usec();
        for (unsigned i = 1;; i++) {
                s = read_state(&t);
                if (s == 1)
                        break;
                if (s < 0 || cryo_now_usec() - start > GIVE_UP_USEC) {
                        (void) write_state(&t, false);
                        return cryo_error_set(err, s < 0 ? -s : ETIMEDOUT,
                                              "cgroup %s did not freeze within %d ms", cgroup,
                                              GIVE_UP_USEC / 1000);
                }
                if (!v2 && i % REFREEZE_EVERY == 0)
                        (void) write_state(&t, true);
                struct timespec ts = {0, POLL_USEC * 1000};
                nanosleep(&ts, NULL);
        }
        container_freezer_release(f);
        *f = t;
        f->state_fd = steal_fd(&fd);
        f->events_fd = steal_fd(&events);
        f->usec = cryo_now_usec() - start;
        return 0;
}

int container_thaw(struct container_freezer *f, struct cryo_error **err) {
        if (!f->frozen_by_us)
                return 0;
        int r = write_state(f, false);
        if (r < 0)
                return cryo_error_errno(err, -r, "cannot thaw the container's cgroup");
        f->frozen_by_us = false;
        return 0;
}

void container_freezer_release(struct container_freezer *f) {
        (void) container_thaw(f, NULL);
        cryo_closep(&f->state_fd);
        cryo_closep(&f->events_fd);
        *f = (struct container_freezer) CONTAINER_FREEZER_INIT;
}

/* CgroupPropEntry {name = 1: "freezer.state", value = 2: "FROZEN"} as
 * protobuf encodes it; "THAWED" has the same length, so the image is
 * patched in place. */
int container_freezer_fix_image(int images_fd, struct cryo_error **err) {
        static const char frozen[] = "\x0a\x0d"
                                     "freezer.state"
                                     "\x12\x06"
                                     "FROZEN";
        static const size_t len = sizeof(frozen) - 1;
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        int r = fs_read_file(images_fd, "cgroup.img", 64u << 20, &buf, &size, NULL);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return cryo_error_errno(err, -r, "cannot read cgroup.img");
        _cleanup_close_ int fd = openat(images_fd, "cgroup.img", O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return cryo_error_errno(err, errno, "cannot open cgroup.img");
        for (char *p = buf; (p = memmem(p, (size_t) (buf + size - p), frozen, len)); p += len)
                if (pwrite(fd, "THAWED", 6, (off_t) (p - buf) + (off_t) len - 6) != 6)
                        return cryo_error_errno(err, errno ? errno : EIO, "cannot write cgroup.img");
        return 0;
}
