/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The stdio of a runc container across a checkpoint.
 *
 * `runc run -d` gives the container's init the caller's fds 0-2.  runc's
 * own checkpoint copes only with pipes (descriptors.json: runc restore
 * hands its own stdio to CRIU in place of each "pipe:[N]"); a host file
 * such as /dev/null or a log file is on a mount the container does not
 * have, and CRIU's dump fails ("Can't lookup mount=N for fd=1").
 *
 * So cryo marks such files external (CRIU's "file[MNT_ID:INODE]", both in
 * hex), and on restore opens the same paths again and tells CRIU, through
 * a configuration file named in CRIU_CONFIG_FILE (runc's criu swrk inherits
 * runc's environment), which of runc's fds stands for which key.  A log
 * file thus goes on growing after a restore.  Pipes whose other end is gone
 * are replaced by /dev/null (input) or a log file (output).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "plugins/runc/runc.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/json.h"

/* The mount ids of pid's mount namespace (first field of mountinfo). */
static int mount_ids(pid_t pid, int **out, size_t *n) {
        char path[64], line[4096];
        snprintf(path, sizeof(path), "/proc/%d/mountinfo", pid);
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        if (!f)
                return -errno;
        size_t cap = 0;
        *n = 0;
        while (fgets(line, sizeof(line), f)) {
                int id;
                if (sscanf(line, "%d ", &id) != 1)
                        continue;
                if (*n == cap) {
                        cap = cap ? 2 * cap : 64;
                        int *v = realloc(*out, cap * sizeof(int));
                        if (!v)
                                return -ENOMEM;
                        *out = v;
                }
                (*out)[(*n)++] = id;
        }
        return 0;
}

static int fdinfo(pid_t pid, int fd, int *mnt_id, int *flags) {
        char path[64], line[256];
        snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", pid, fd);
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        if (!f)
                return -errno;
        *mnt_id = -1;
        *flags = O_RDWR;
        while (fgets(line, sizeof(line), f)) {
                if (sscanf(line, "flags: %o", (unsigned *) flags) == 1)
                        continue;
                (void) sscanf(line, "mnt_id: %d", mnt_id);
        }
        return *mnt_id >= 0 ? 0 : -ENODATA;
}

/* Consoles, virtual terminals, pseudo-terminals. */
static bool is_terminal(const struct stat *st) {
        if (!S_ISCHR(st->st_mode))
                return false;
        unsigned maj = major(st->st_rdev);
        return maj == 4 || maj == 5 || (maj >= 136 && maj <= 143);
}

static bool has_prefix(const char *s, const char *p) {
        return strncmp(s, p, strlen(p)) == 0;
}

int runc_stdio_dump(pid_t pid, json_object **out, char ***externals, struct cryo_error **err) {
        _cleanup_free_ int *ids = NULL;
        size_t n_ids = 0;
        int r = mount_ids(pid, &ids, &n_ids);
        if (r < 0)
                return cryo_error_errno(err, -r, "cannot read the mounts of the container's init (pid %d)",
                                        pid);
        _cleanup_json_ json_object *arr = json_object_new_array();
        _cleanup_strv_ char **ext = calloc(4, sizeof(char *));
        size_t n_ext = 0;
        if (!arr || !ext)
                return cryo_error_set(err, ENOMEM, "out of memory");

        for (int fd = 0; fd < 3; fd++) {
                char link[64], target[4096];
                snprintf(link, sizeof(link), "/proc/%d/fd/%d", pid, fd);
                ssize_t len = readlink(link, target, sizeof(target) - 1);
                json_object *e = json_object_new_object();
                json_object_array_add(arr, e);
                json_object_object_add(e, "fd", json_object_new_int(fd));
                if (len < 0) {
                        json_object_object_add(e, "kind", json_object_new_string("closed"));
                        continue;
                }
                target[len] = '\0';
                json_object_object_add(e, "target", json_object_new_string(target));
                const char *kind = "other";
                if (has_prefix(target, "pipe:"))
                        kind = "pipe";
                else if (has_prefix(target, "socket:"))
                        kind = "socket";
                else if (target[0] == '/') {
                        struct stat st;
                        int mnt_id = -1, flags = 0;
                        if (stat(link, &st) < 0 || fdinfo(pid, fd, &mnt_id, &flags) < 0)
                                return cryo_error_errno(err, errno ? errno : EIO,
                                                        "cannot inspect fd %d of the container's init (%s)",
                                                        fd, target);
                        bool inside = false;
                        for (size_t i = 0; i < n_ids && !inside; i++)
                                inside = ids[i] == mnt_id;
                        if (inside) {
                                kind = "inside";
                        } else if (is_terminal(&st)) {
                                return cryo_error_set(
                                        err, EOPNOTSUPP,
                                        "fd %d of the container's init is the host terminal %s, which CRIU "
                                        "cannot checkpoint: start the container with its stdio redirected, "
                                        "e.g. `runc run -d ... </dev/null >LOG 2>&1`",
                                        fd, target);
                        } else {
                                char key[64];
                                snprintf(key, sizeof(key), "file[%x:%llx]", (unsigned) mnt_id,
                                         (unsigned long long) st.st_ino);
                                kind = "file";
                                json_object_object_add(e, "path", json_object_new_string(target));
                                json_object_object_add(e, "flags", json_object_new_int(flags));
                                if (S_ISREG(st.st_mode))
                                        json_object_object_add(e, "size", json_object_new_int64(st.st_size));
                                json_object_object_add(e, "key", json_object_new_string(key));
                                bool seen = false;
                                for (size_t i = 0; i < n_ext && !seen; i++)
                                        seen = !strcmp(ext[i], key);
                                if (!seen && !(ext[n_ext++] = strdup(key)))
                                        return cryo_error_set(err, ENOMEM, "out of memory");
                        }
                }
                json_object_object_add(e, "kind", json_object_new_string(kind));
        }
        *out = steal_pointer(&arr);
        *externals = steal_pointer(&ext);
        return 0;
}

void runc_stdio_dumped(pid_t pid, json_object *stdio, bool running) {
        for (size_t i = 0; stdio && i < json_object_array_length(stdio); i++) {
                json_object *e = json_object_array_get_idx(stdio, i);
                char link[64];
                struct stat st;
                if (!cryo_json_get(e, "size"))
                        continue;
                snprintf(link, sizeof(link), "/proc/%d/fd/%d", pid, (int) cryo_json_int(e, "fd", -1));
                if (!running && stat(link, &st) == 0)
                        json_object_object_add(e, "size", json_object_new_int64(st.st_size));
                else
                        json_object_object_del(e, "size");
        }
}

void runc_stdio_clear(struct runc_stdio *s) {
        for (int i = 0; i < 3; i++)
                if (s->fd[i] >= 0)
                        close(s->fd[i]);
        free(s->criu_conf);
        free(s->created_log);
        json_object_put(s->report);
        memset(s, 0, sizeof(*s));
        s->fd[0] = s->fd[1] = s->fd[2] = -1;
}

static int open_fallback(struct runc_stdio *s, bool write, const char *log, const char **path,
                         struct cryo_error **err) {
        if (!write) {
                *path = "/dev/null";
                int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                return fd >= 0 ? fd : cryo_error_errno(err, errno, "cannot open /dev/null");
        }
        _cleanup_free_ char *dir = strdup(log);
        char *slash = dir ? strrchr(dir, '/') : NULL;
        if (!slash)
                return cryo_error_set(err, ENOMEM, "out of memory");
        *slash = '\0';
        int r = fs_mkdir_p(dir, 0700, err);
        if (r < 0)
                return r;
        bool existed = access(log, F_OK) == 0;
        int fd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
        if (fd < 0)
                return cryo_error_errno(err, errno, "cannot open %s for the container's output", log);
        if (!existed && !s->created_log && !(s->created_log = strdup(log))) {
                close(fd);
                return cryo_error_set(err, ENOMEM, "out of memory");
        }
        *path = log;
        return fd;
}

static int add_conf_line(struct runc_stdio *s, int fd, const char *key) {
        char *joined = NULL;
        if (asprintf(&joined, "%sinherit-fd fd[%d]:%s\n", s->criu_conf ? s->criu_conf : "", fd, key) < 0)
                return -ENOMEM;
        free(s->criu_conf);
        s->criu_conf = joined;
        return 0;
}

static json_object *saved_entry(json_object *saved, int fd) {
        for (size_t k = 0; saved && k < json_object_array_length(saved); k++)
                if (cryo_json_int(json_object_array_get_idx(saved, k), "fd", -1) == fd)
                        return json_object_array_get_idx(saved, k);
        return NULL;
}

/* O_WRONLY|O_APPEND: the only open files CRIU restores whatever their size. */
static bool append_only(int flags) {
        return (flags & O_ACCMODE) == O_WRONLY && (flags & O_APPEND);
}

/*
 * Opens the host file behind one external key again.  CRIU restores the
 * offset of a file and refuses one whose size changed since the dump,
 * unless it was opened for appending only: say so before CRIU does.
 */
static int reopen_file(struct runc_stdio *s, json_object *e, const char *fallback_log, const char **path,
                       struct cryo_error **err) {
        const char *want = cryo_json_str(e, "path", "");
        int flags = (int) cryo_json_int(e, "flags", O_RDONLY), fdno = (int) cryo_json_int(e, "fd", 0);
        bool append = append_only(flags);
        int fd = open(want, (flags & (O_ACCMODE | O_APPEND)) | O_CLOEXEC | O_NOCTTY | (append ? O_CREAT : 0),
                      0640);
        *path = want;
        if (fd < 0 && append)
                return open_fallback(s, true, fallback_log, path, err);
        if (fd < 0)
                return cryo_error_errno(
                        err, errno,
                        "cannot open %s again, fd %d of the container's init at the dump (CRIU "
                        "gives the restored process the same file at the same offset)",
                        want, fdno);
        struct stat st;
        int64_t size = cryo_json_int(e, "size", -1);
        if (!append && size >= 0 && fstat(fd, &st) == 0 && st.st_size != size) {
                close(fd);
                return cryo_error_set(
                        err, ESTALE,
                        "%s, fd %d of the container's init, had %lld bytes at the dump and has "
                        "%lld now: CRIU restores such a file at its old offset only if its size is "
                        "unchanged (output opened for appending, `>>FILE`, is exempt); put the "
                        "file back as it was",
                        want, fdno, (long long) size, (long long) st.st_size);
        }
        return fd;
}

/*
 * runc restore hands its own fd i to CRIU for a "pipe:[N]" at fd i of
 * descriptors.json, so those slots are fixed.  The host files go to the
 * free slots, stdin first: runc writes its own errors to its stderr, which
 * must not land in a file CRIU checks the size of.
 */
int runc_stdio_open(json_object *saved, const char *fallback_log, struct runc_stdio *s,
                    struct cryo_error **err) {
        memset(s, 0, sizeof(*s));
        s->fd[0] = s->fd[1] = s->fd[2] = -1;
        s->report = json_object_new_array();
        if (!s->report)
                return cryo_error_set(err, ENOMEM, "out of memory");
        /* What each fd of the restored init is: by default what it was. */
        const char *paths[3];
        for (int i = 0; i < 3; i++)
                paths[i] = cryo_json_str(saved_entry(saved, i), "target", "/dev/null");

        for (int i = 0; i < 3; i++) {
                json_object *e = saved_entry(saved, i);
                if (strcmp(cryo_json_str(e, "kind", ""), "pipe"))
                        continue;
                int fd = open_fallback(s, i > 0, fallback_log, &paths[i], err);
                if (fd < 0)
                        return fd;
                s->fd[i] = fd;
        }
        for (int i = 0; i < 3; i++) {
                json_object *e = saved_entry(saved, i);
                const char *key = cryo_json_str(e, "key", NULL);
                if (strcmp(cryo_json_str(e, "kind", ""), "file") || !key)
                        continue;
                bool done = false;
                for (int j = 0; j < i && !done; j++)
                        if (!strcmp(cryo_json_str(saved_entry(saved, j), "key", ""), key)) {
                                paths[i] = paths[j];
                                done = true;
                        }
                if (done)
                        continue;
                int slot = 0;
                while (slot < 3 && s->fd[slot] >= 0)
                        slot++;
                if (slot == 3)
                        return cryo_error_set(err, EINVAL,
                                              "the checkpoint's stdio needs more than three fds");
                int fd = reopen_file(s, e, fallback_log, &paths[i], err);
                if (fd < 0)
                        return fd;
                s->fd[slot] = fd;
                if (add_conf_line(s, slot, key) < 0)
                        return cryo_error_set(err, ENOMEM, "out of memory");
        }
        for (int i = 0; i < 3; i++) {
                if (s->fd[i] < 0 && (s->fd[i] = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0)
                        return cryo_error_errno(err, errno, "cannot open /dev/null");
                json_object *e = saved_entry(saved, i);
                json_object *r = json_object_new_object();
                json_object_object_add(r, "fd", json_object_new_int(i));
                json_object_object_add(r, "kind", json_object_new_string(cryo_json_str(e, "kind", "other")));
                json_object_object_add(r, "path", json_object_new_string(paths[i]));
                json_object_array_add(s->report, r);
        }
        return 0;
}
