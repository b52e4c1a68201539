/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The host-side steps of a Docker-native restore: the filesystem diff goes
 * into the new container's writable layer, the CRIU images go where dockerd
 * looks for checkpoints, and CRIU's log is saved from the shim's work
 * directory, which is removed when the restore fails.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cryo.h"
#include "plugins/docker/docker.h"
#include "rootfs/rootfs.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/json.h"

/* Where Docker's overlay2 driver keeps a layer: "<home>/<layer>/diff". */
static const char *relative_to(const char *path, const char *home) {
        size_t n = strlen(home);
        return !strncmp(path, home, n) && path[n] == '/' ? path + n + 1 : NULL;
}

static bool safe_option(const char *s) {
        return !strpbrk(s, ",\\\n") && *s;
}

/*
 * The overlay options Docker's overlay2 driver mounts the container with.
 * When absolute paths exceed a page (many layers), the driver mounts from
 * its home directory with relative paths; so do we (*chdir_to is set).
 */
static int overlay_options(json_object *data, char **opts, char **chdir_to, struct cryo_error **err) {
        const char *lower = cryo_json_str(data, "LowerDir", NULL),
                   *upper = cryo_json_str(data, "UpperDir", NULL),
                   *work = cryo_json_str(data, "WorkDir", NULL);
        if (!lower || !upper || !work)
                return cryo_error_set(err, EPROTO,
                                      "Docker reports no overlay2 directories for the container");
        if (!safe_option(lower) || !safe_option(upper) || !safe_option(work))
                return cryo_error_set(err, EINVAL, "unexpected characters in overlay2 paths (%s)", upper);
        const char *index = access("/sys/module/overlay/parameters/index", F_OK) == 0 ? "index=off," : "";
        if (asprintf(opts, "%slowerdir=%s,upperdir=%s,workdir=%s", index, lower, upper, work) < 0)
                return cryo_error_set(err, ENOMEM, "out of memory");
        long page = sysconf(_SC_PAGESIZE);
        if ((long) strlen(*opts) < page)
                return 0;

        /* home = the directory that holds the layer directories. */
        _cleanup_free_ char *home = strdup(upper);
        if (!home)
                return cryo_error_set(err, ENOMEM, "out of memory");
        for (int i = 0; i < 2; i++) {
                char *slash = strrchr(home, '/');
                if (!slash || slash == home)
                        return cryo_error_set(err, E2BIG, "overlay options too long for %s", upper);
                *slash = '\0';
        }
        _cleanup_free_ char *rel = malloc(strlen(lower) + 1);
        if (!rel)
                return cryo_error_set(err, ENOMEM, "out of memory");
        rel[0] = '\0';
        _cleanup_free_ char *copy = strdup(lower);
        if (!copy)
                return cryo_error_set(err, ENOMEM, "out of memory");
        for (char *save = NULL, *l = strtok_r(copy, ":", &save); l; l = strtok_r(NULL, ":", &save)) {
                const char *r = relative_to(l, home);
                if (!r)
                        return cryo_error_set(err, E2BIG, "overlay options too long and %s is not under %s",
                                              l, home);
                if (rel[0])
                        strcat(rel, ":");
                strcat(rel, r);
        }
        const char *ru = relative_to(upper, home), *rw = relative_to(work, home);
        free(*opts);
        *opts = NULL;
        if (!ru || !rw || asprintf(opts, "%slowerdir=%s,upperdir=%s,workdir=%s", index, rel, ru, rw) < 0)
                return cryo_error_set(err, ENOMEM, "out of memory");
        if ((long) strlen(*opts) >= page)
                return cryo_error_set(err, E2BIG, "the container has too many layers to mount them here");
        *chdir_to = steal_pointer(&home);
        return 0;
}

struct apply_result {
        int64_t code;
        uint64_t files, bytes, deleted;
};

struct apply_job {
        char *mnt, *opts, *chdir_to, *tar, *deleted;
};

static void apply_job_clear(struct apply_job *j) {
        free(j->mnt);
        free(j->opts);
        free(j->chdir_to);
        free(j->tar);
        free(j->deleted);
        *j = (struct apply_job){0};
}

/* In a child with its own mount namespace: nothing stays mounted, whatever
 * happens to it. */
static void __attribute__((noreturn)) apply_in_child(int out_fd, struct apply_job *job) {
        struct cryo_error *e = NULL;
        struct tar_stats st = {0};
        int r = 0;
        if (unshare(CLONE_NEWNS) < 0)
                r = cryo_error_errno(&e, errno, "cannot make a private mount namespace");
        else if (mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) < 0)
                r = cryo_error_errno(&e, errno, "cannot make the mounts private");
        else if (job->chdir_to && chdir(job->chdir_to) < 0)
                r = cryo_error_errno(&e, errno, "cannot enter %s", job->chdir_to);
        else if (mount("overlay", job->mnt, "overlay", 0, job->opts) < 0)
                r = cryo_error_errno(&e, errno, "cannot mount the container's layers (overlay %s)",
                                     job->opts);
        else
                r = rootfs_diff_apply(job->mnt, job->tar, job->deleted, &st, &e);
        struct apply_result res;
        memset(&res, 0, sizeof(res));
        res.code = r < 0 ? -r : 0;
        res.files = st.files;
        res.bytes = st.bytes;
        res.deleted = st.deleted;
        const char *msg = e && e->message ? e->message : "";
        if (write(out_fd, &res, sizeof(res)) == (ssize_t) sizeof(res))
                (void) !write(out_fd, msg, strlen(msg));
        cryo_error_free(e);
        apply_job_clear(job);
        _exit(r < 0 ? 1 : 0);
}

int dk_apply_rootfs_diff(struct cryo_checkpoint *ck, json_object *graph_driver, struct cryo_error **err) {
        if (strcmp(cryo_json_str(graph_driver, "Name", ""), "overlay2") != 0)
                return cryo_error_set(err, EOPNOTSUPP,
                                      "Docker's storage driver here is '%s': only overlay2 is supported",
                                      cryo_json_str(graph_driver, "Name", "?"));
        _cleanup_(apply_job_clear) struct apply_job job = {0};
        int r = overlay_options(cryo_json_get(graph_driver, "Data"), &job.opts, &job.chdir_to, err);
        if (r < 0)
                return r;
        job.tar = fs_path_join(ck->path, CRYO_ROOTFS_DIFF);
        job.deleted = fs_path_join(ck->path, CRYO_DELETED_FILES);
        if (!job.tar || !job.deleted)
                return cryo_error_set(err, ENOMEM, "out of memory");
        r = fs_mkdir_p(CRYO_WORK_DIR, 0700, err);
        if (r < 0)
                return r;
        job.mnt = strdup(CRYO_WORK_DIR "/docker-layer-XXXXXX");
        if (!job.mnt || !mkdtemp(job.mnt))
                return cryo_error_errno(err, job.mnt ? errno : ENOMEM, "cannot create a mount point in %s",
                                        CRYO_WORK_DIR);

        int pipefd[2];
        if (pipe2(pipefd, O_CLOEXEC) < 0) {
                r = cryo_error_errno(err, errno, "pipe");
                (void) rmdir(job.mnt);
                return r;
        }
        pid_t child = fork();
        if (child == 0) {
                close(pipefd[0]);
                apply_in_child(pipefd[1], &job);
        }
        close(pipefd[1]);
        _cleanup_close_ int rd = pipefd[0];
        if (child < 0) {
                r = cryo_error_errno(err, errno, "fork");
                (void) rmdir(job.mnt);
                return r;
        }
        _cleanup_free_ char *answer = NULL;
        size_t len = 0;
        (void) fs_read_fd(rd, 1 << 20, &answer, &len, NULL);
        int status = 0;
        while (waitpid(child, &status, 0) < 0 && errno == EINTR)
                ;
        (void) rmdir(job.mnt);
        struct apply_result res = {0};
        if (!answer || len < sizeof(res))
                return cryo_error_set(err, EIO,
                                      "applying the filesystem diff: the helper process died (status %d)",
                                      status);
        memcpy(&res, answer, sizeof(res));
        if (res.code)
                return cryo_error_set(err, (int) res.code,
                                      "applying the filesystem diff to the container's layer: %s",
                                      answer + sizeof(res));
        cryo_stats_add(&ck->stats, CRYO_PHASE_ROOTFS, 0, res.bytes);
        return 0;
}

static int copy_file(int src_dir, int dst_dir, const char *name, struct cryo_error **err) {
        _cleanup_close_ int in = openat(src_dir, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (in < 0)
                return cryo_error_errno(err, errno, "cannot open %s", name);
        _cleanup_close_ int out = openat(dst_dir, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (out < 0)
                return cryo_error_errno(err, errno, "cannot create %s", name);
        for (;;) {
                ssize_t n = sendfile(out, in, NULL, 1 << 30);
                if (n == 0)
                        return 0;
                if (n < 0 && errno != EINTR)
                        return cryo_error_errno(err, errno, "cannot copy %s", name);
        }
}

int dk_stage_images(struct cryo_checkpoint *ck, const char *dest, struct cryo_error **err) {
        _cleanup_close_ int src = -1;
        int r = ckpt_open_subdir(ck, CRYO_CRIU_DIR, false, &src, err);
        if (r < 0)
                return r;
        if (mkdir(dest, 0700) < 0)
                return cryo_error_errno(err, errno, "cannot create %s", dest);
        _cleanup_close_ int dst = open(dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        _cleanup_closedir_ DIR *d = fs_opendir_at(src);
        if (dst < 0 || !d) {
                r = cryo_error_errno(err, errno, "cannot open %s", dst < 0 ? dest : CRYO_CRIU_DIR);
                goto fail;
        }
        struct dirent *de;
        while ((de = readdir(d))) {
                if (de->d_type != DT_REG)
                        continue;
                /* A hard link costs nothing; dockerd only reads the images. */
                if (linkat(src, de->d_name, dst, de->d_name, 0) == 0)
                        continue;
                if (errno != EXDEV && errno != EPERM && errno != EMLINK) {
                        r = cryo_error_errno(err, errno, "cannot link %s into %s", de->d_name, dest);
                        goto fail;
                }
                r = copy_file(src, dst, de->d_name, err);
                if (r < 0)
                        goto fail;
        }
        return 0;
fail:
        (void) fs_rm_rf(dest);
        return cryo_error_prefix(err, "staging the CRIU images for Docker");
}

/* The shim's work directory (a symlink in the task bundle), for the
 * system containerd and for the one dockerd runs itself. */
static const char *const bundle_roots[] = {
        "/run/containerd/io.containerd.runtime.v2.task/moby",
        "/var/run/docker/containerd/daemon/io.containerd.runtime.v2.task/moby",
        NULL,
};

static void __attribute__((noreturn)) watch_in_child(int ctl, const char *id, const char *keep_as) {
        _cleanup_close_ int log = -1;
        char verdict = 0;
        for (;;) {
                for (const char *const *root = bundle_roots; log < 0 && *root; root++) {
                        char path[512];
                        snprintf(path, sizeof(path), "%s/%s/work/restore.log", *root, id);
                        log = open(path, O_RDONLY | O_CLOEXEC);
                }
                struct pollfd p = {.fd = ctl, .events = POLLIN};
                int n = poll(&p, 1, log < 0 ? 2 : -1);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n != 0) {
                        if (read(ctl, &verdict, 1) != 1)
                                verdict = 0;
                        break;
                }
        }
        if (verdict != 'F' || log < 0)
                _exit(1);
        _cleanup_close_ int out = open(keep_as, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (out < 0 || lseek(log, 0, SEEK_SET) < 0)
                _exit(1);
        for (;;) {
                ssize_t n = sendfile(out, log, NULL, 1 << 30);
                if (n == 0)
                        _exit(0);
                if (n < 0 && errno != EINTR)
                        _exit(1);
        }
}

int dk_log_watch_start(struct dk_log_watch *w, const char *container_id, const char *keep_as) {
        *w = (struct dk_log_watch){.pid = -1, .ctl_fd = -1};
        if (fs_mkdir_p(CRYO_LOG_DIR, 0700, NULL) < 0 || !(w->keep_as = strdup(keep_as)))
                return -ENOMEM;
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        pid_t pid = fork();
        if (pid == 0) {
                close(p[1]);
                watch_in_child(p[0], container_id, keep_as);
        }
        close(p[0]);
        if (pid < 0) {
                close(p[1]);
                return -errno;
        }
        w->pid = pid;
        w->ctl_fd = p[1];
        return 0;
}

bool dk_log_watch_finish(struct dk_log_watch *w, bool failed) {
        bool kept = false;
        if (w->pid > 0) {
                char verdict = failed ? 'F' : 'S';
                (void) !write(w->ctl_fd, &verdict, 1);
                close(w->ctl_fd);
                int status = 0;
                while (waitpid(w->pid, &status, 0) < 0 && errno == EINTR)
                        ;
                kept = failed && WIFEXITED(status) && WEXITSTATUS(status) == 0;
        }
        free(w->keep_as);
        *w = (struct dk_log_watch){.pid = -1, .ctl_fd = -1};
        return kept;
}

/*
 * containerd 1.6 extracts the checkpoint dockerd uploads into
 * <tmp>/ctrd-checkpoint<random> and never removes it: a full copy of the
 * images per restore.  Those that appeared during our start and hold
 * exactly our images (same files, same sizes, same inventory and process
 * tree) are ours to remove.
 */
#define CTRD_TMP_DIR    "/tmp"
#define CTRD_TMP_PREFIX "ctrd-checkpoint"

char **dk_ctrd_tmp_list(void) {
        _cleanup_closedir_ DIR *d = opendir(CTRD_TMP_DIR);
        size_t n = 0, cap = 8;
        char **v = calloc(cap + 1, sizeof(char *));
        struct dirent *de;
        while (v && d && (de = readdir(d))) {
                if (strncmp(de->d_name, CTRD_TMP_PREFIX, strlen(CTRD_TMP_PREFIX)) != 0)
                        continue;
                if (n == cap) {
                        char **nv = realloc(v, (2 * cap + 1) * sizeof(char *));
                        if (!nv)
                                break;
                        v = nv;
                        cap *= 2;
                }
                if (!(v[n] = strdup(de->d_name)))
                        break;
                v[++n] = NULL;
        }
        return v;
}

static bool listed(char **names, const char *name) {
        for (; names && *names; names++)
                if (!strcmp(*names, name))
                        return true;
        return false;
}

static bool same_bytes(int a_dir, int b_dir, const char *name, off_t size) {
        if (size > (1 << 20))
                return false;
        _cleanup_free_ char *a = NULL, *b = NULL;
        size_t la = 0, lb = 0;
        return fs_read_file(a_dir, name, 1 << 20, &a, &la, NULL) == 0 &&
               fs_read_file(b_dir, name, 1 << 20, &b, &lb, NULL) == 0 && la == lb && !memcmp(a, b, la);
}

static bool holds_our_images(int ours, int dir) {
        size_t count = 0, theirs = 0;
        _cleanup_closedir_ DIR *d = fs_opendir_at(ours);
        if (!d)
                return false;
        struct dirent *de;
        while ((de = readdir(d))) {
                struct stat a, b;
                if (de->d_name[0] == '.' || fstatat(ours, de->d_name, &a, AT_SYMLINK_NOFOLLOW) < 0 ||
                    !S_ISREG(a.st_mode))
                        continue;
                count++;
                if (fstatat(dir, de->d_name, &b, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(b.st_mode) ||
                    a.st_size != b.st_size)
                        return false;
                if ((!strcmp(de->d_name, "inventory.img") || !strcmp(de->d_name, "pstree.img")) &&
                    !same_bytes(ours, dir, de->d_name, a.st_size))
                        return false;
        }
        _cleanup_closedir_ DIR *t = fs_opendir_at(dir);
        if (!t)
                return false;
        while ((de = readdir(t)))
                if (de->d_name[0] != '.')
                        theirs++;
        return count > 0 && count == theirs;
}

int dk_ctrd_tmp_cleanup(struct cryo_checkpoint *ck, char **before) {
        _cleanup_close_ int ours = -1;
        if (ckpt_open_subdir(ck, CRYO_CRIU_DIR, false, &ours, NULL) < 0)
                return 0;
        _cleanup_strv_ char **now = dk_ctrd_tmp_list();
        int removed = 0;
        for (char **n = now; n && *n; n++) {
                if (listed(before, *n))
                        continue;
                _cleanup_free_ char *path = fs_path_join(CTRD_TMP_DIR, *n);
                _cleanup_close_ int dir =
                        path ? open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) : -1;
                if (dir >= 0 && holds_our_images(ours, dir) && fs_rm_rf(path) == 0)
                        removed++;
        }
        return removed;
}

#define CTRD_TASK_DIR "/io.containerd.runtime.v2.task/moby/"

struct yard_match {
        const char *id;
        char *renamed_bundle; /* the ".<id>" directory seen, if any */
};

/* <anything>/io.containerd.runtime.v2.task/moby/[.]<id>/.criu.cgyard.<x>[/...] */
static bool criu_yard_of(const char *point, void *arg) {
        struct yard_match *m = arg;
        const char *task = strstr(point, CTRD_TASK_DIR);
        if (!task)
                return false;
        const char *bundle = task + strlen(CTRD_TASK_DIR), *id = bundle + (*bundle == '.');
        size_t len = strlen(m->id);
        if (strncmp(id, m->id, len) || strncmp(id + len, "/.criu.cgyard.", 14))
                return false;
        if (*bundle == '.' && !m->renamed_bundle)
                m->renamed_bundle = strndup(point, (size_t) (id + len - point));
        return true;
}

int dk_ctrd_bundle_cleanup(const char *id) {
        struct yard_match m = {.id = id};
        int n = fs_umount_if(criu_yard_of, &m);
        if (m.renamed_bundle)
                (void) fs_rm_rf(m.renamed_bundle);
        free(m.renamed_bundle);
        return n;
}
