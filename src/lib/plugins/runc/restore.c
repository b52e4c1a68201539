/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Restore of a runc container: `runc restore --detach` on the bundle the
 * container was dumped from, so that runc knows the result as its own
 * container (runc list/kill/delete), under the old id or a new one.
 *
 *  - The bundle is the saved one and must still exist: runc reads its
 *    config.json again.  cryo does not rewrite the user's bundle.
 *  - The root: a plain directory is used as it is.  An overlay whose upper
 *    layer is empty is a fresh one over the image: the checkpoint's
 *    filesystem changes are applied to it first.  An overlay whose upper
 *    layer has content is taken to be the container's own (same host,
 *    after `runc delete`) and left alone.
 *  - stdio: see stdio.c.  Options runc restore has no flag for reach CRIU
 *    through a configuration file named in CRIU_CONFIG_FILE.
 *  - A private network namespace comes back empty (runc restores none),
 *    with loopback down; cryo brings loopback up once the tree is back.
 *
 * A failure leaves no runc container behind (runc delete -f) and explains
 * itself from CRIU's restore log, kept under /var/log/cryo.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cryo.h"
#include "engine/engine.h"
#include "plugins/container/container.h"
#include "plugins/runc/runc.h"
#include "rootfs/rootfs.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/proc.h"

int runc_exec(const char *const *args, const int *stdio, const char *criu_conf, int *status,
              struct cryo_error **err) {
        size_t n = 0;
        while (args[n])
                n++;
        _cleanup_free_ const char **argv = calloc(n + 2, sizeof(char *));
        if (!argv)
                return cryo_error_set(err, ENOMEM, "out of memory");
        argv[0] = "runc";
        memcpy(argv + 1, args, n * sizeof(char *));

        /* The child reports a failed exec through a close-on-exec pipe. */
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return cryo_error_errno(err, errno, "pipe");
        _cleanup_close_ int rd = p[0];
        pid_t child = fork();
        if (child < 0) {
                close(p[1]);
                return cryo_error_errno(err, errno, "fork");
        }
        if (child == 0) {
                int fds[3];
                for (int i = 0; i < 3; i++) {
                        int src = stdio ? stdio[i] : open("/dev/null", O_RDWR);
                        fds[i] = src < 0 ? -1 : fcntl(src, F_DUPFD, 10);
                }
                for (int i = 0; i < 3; i++)
                        if (fds[i] < 0 || dup2(fds[i], i) < 0)
                                _exit(127);
                for (int fd = 3; fd < 1024; fd++)
                        if (fd != p[1])
                                (void) close(fd);
                if (criu_conf)
                        setenv("CRIU_CONFIG_FILE", criu_conf, 1);
                else
                        unsetenv("CRIU_CONFIG_FILE");
                execvp("runc", (char *const *) argv);
                int e = errno;
                (void) !write(p[1], &e, sizeof(e));
                _exit(127);
        }
        close(p[1]);
        int exec_errno = 0;
        ssize_t got = read(rd, &exec_errno, sizeof(exec_errno));
        int st = 0;
        while (waitpid(child, &st, 0) < 0 && errno == EINTR)
                ;
        if (got == (ssize_t) sizeof(exec_errno))
                return exec_errno == ENOENT
                               ? cryo_error_set(err, ENOENT, "runc is not installed (apt install runc)")
                               : cryo_error_errno(err, exec_errno, "cannot run runc");
        *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        return 0;
}

struct runc_rs {
        const char *root;
        const char *id;
        const char *bundle;
        char *state_dir; /* <root>/<id> */
        char *work;      /* private: runc's --work-path, its log, CRIU's configuration */
        char *data_dir;  /* RUNC_CONTAINERS_DIR/<id>: the fallback output log */
        bool data_dir_existed;
};

static void rs_clear(struct runc_rs *rs) {
        if (rs->work)
                (void) fs_rm_work_dir(rs->work);
        free(rs->state_dir);
        free(rs->work);
        free(rs->data_dir);
}

static bool dir_is_empty(const char *path) {
        _cleanup_closedir_ DIR *d = opendir(path);
        struct dirent *de;
        while (d && (de = readdir(d)))
                if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
                        return false;
        return d != NULL;
}

/* The root as runc will use it, and the checkpoint's changes on it. */
static int prepare_rootfs(struct runc_rs *rs, struct cryo_checkpoint *ck, json_object *spec,
                          const char **what, struct cryo_error **err) {
        const char *path = cryo_json_str(cryo_json_get(spec, "root"), "path", "rootfs");
        _cleanup_free_ char *rootfs = path[0] == '/' ? strdup(path) : fs_path_join(rs->bundle, path);
        if (!rootfs)
                return cryo_error_set(err, ENOMEM, "out of memory");
        if (!fs_is_dir(rootfs))
                return cryo_error_set(err, ENOENT, "the root filesystem %s of bundle %s does not exist",
                                      rootfs, rs->bundle);
        if (dir_is_empty(rootfs))
                return cryo_error_set(
                        err, ENOENT,
                        "the root filesystem %s is empty: mount the container's filesystem there "
                        "first (for an overlay, a fresh one over the container's image: cryo "
                        "applies the checkpoint's changes to it)",
                        rootfs);
        const char *kind =
                cryo_json_str(cryo_json_path(ck->manifest, RUNC_SECTION "/rootfs"), "kind", "overlay");
        if (!strcmp(kind, "directory")) {
                *what = "none (a plain directory, used as it is)";
                return 0;
        }
        _cleanup_free_ char *upper = NULL;
        _cleanup_error_ struct cryo_error *why = NULL;
        int r = rootfs_find_upperdir_at(rootfs, &upper, &why);
        if (r < 0)
                return cryo_error_set(
                        err, EINVAL,
                        "the container was dumped with an overlay root and its filesystem "
                        "changes, but %s is not a writable overlay now (%s): mount a fresh "
                        "overlay of the container's image there, cryo applies the changes to it",
                        rootfs, why ? why->message : "unknown");
        if (!dir_is_empty(upper)) {
                *what = "kept (the overlay's upper layer already has content: taken as the container's own)";
                return 0;
        }
        uint64_t start = cryo_now_usec();
        _cleanup_free_ char *tar = fs_path_join(ck->path, CRYO_ROOTFS_DIFF);
        _cleanup_free_ char *deleted = fs_path_join(ck->path, CRYO_DELETED_FILES);
        if (!tar || !deleted)
                return cryo_error_set(err, ENOMEM, "out of memory");
        struct tar_stats st = {0};
        r = rootfs_diff_apply(rootfs, tar, deleted, &st, err);
        cryo_stats_add(&ck->stats, CRYO_PHASE_ROOTFS, cryo_now_usec() - start, st.bytes);
        if (r < 0)
                return cryo_error_prefix(err, "applying the filesystem changes to %s", rootfs);
        *what = "applied (onto a fresh overlay)";
        return 0;
}

/* runc takes the cgroup from linux.cgroupsPath when the spec sets one, so
 * two containers from one bundle would share it. */
static int check_cgroup(struct runc_rs *rs, json_object *spec, struct cryo_error **err) {
        const char *cg = cryo_json_str(cryo_json_get(spec, "linux"), "cgroupsPath", NULL);
        if (!cg || cg[0] != '/')
                return 0; /* none: runc uses one named after the id */
        static const char *const hierarchies[] = {"freezer", "pids",    "memory", "cpu",
                                                  "devices", "unified", ""};
        for (size_t i = 0; i < ARRAY_SIZE(hierarchies); i++) {
                char path[4096];
                _cleanup_free_ char *procs = NULL;
                snprintf(path, sizeof(path), "/sys/fs/cgroup%s%s%s/cgroup.procs",
                         hierarchies[i][0] ? "/" : "", hierarchies[i], cg);
                if (fs_read_file(AT_FDCWD, path, 1 << 20, &procs, NULL, NULL) < 0 || !procs[0])
                        continue;
                int n = 0;
                for (const char *p = procs; *p; p++)
                        n += *p == '\n';
                return cryo_error_set(
                        err, EBUSY,
                        "cgroup %s (linux.cgroupsPath in %s/config.json) already holds %d "
                        "process(es), first pid %d: the restored container would share it with "
                        "them; stop that container (`runc list`) or give the bundle another "
                        "cgroupsPath",
                        cg, rs->bundle, n, atoi(procs));
        }
        return 0;
}

/* The last error runc logged (--log-format json), or NULL. */
static char *runc_log_error(const char *work) {
        _cleanup_free_ char *path = fs_path_join(work, "runc.log"), *text = NULL;
        if (!path || fs_read_file(AT_FDCWD, path, 1 << 20, &text, NULL, NULL) < 0)
                return NULL;
        char *msg = NULL;
        for (char *save = NULL, *line = strtok_r(text, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save)) {
                _cleanup_json_ json_object *o = json_tokener_parse(line);
                const char *m = cryo_json_str(o, "msg", NULL);
                if (!m || strcmp(cryo_json_str(o, "level", ""), "error"))
                        continue;
                free(msg);
                msg = strdup(m);
        }
        return msg;
}

/* The work directory is removed; CRIU's log goes where cryo keeps logs. */
static void keep_restore_log(struct runc_rs *rs, struct cryo_checkpoint *ck, struct cryo_error **err) {
        _cleanup_free_ char *src = fs_path_join(rs->work, CRYO_RESTORE_LOG), *data = NULL, *dest = NULL,
                            *detail = NULL;
        size_t len = 0;
        if (!src || fs_read_file(AT_FDCWD, src, 64u << 20, &data, &len, NULL) < 0)
                return;
        if (fs_mkdir_p(CRYO_LOG_DIR, 0700, NULL) < 0 ||
            asprintf(&dest, CRYO_LOG_DIR "/%s." CRYO_RESTORE_LOG,
                     cryo_json_str(ck->manifest, "name", "runc")) < 0)
                return;
        if (fs_write_file(AT_FDCWD, dest, data, len, 0600, NULL) < 0)
                return;
        if (err && *err &&
            asprintf(&detail, "%sCRIU log: %s\n", (*err)->detail ? (*err)->detail : "", dest) >= 0)
                cryo_error_set_detail(err, detail);
}

static bool private_netns(json_object *spec) {
        json_object *nss = cryo_json_path(spec, "linux/namespaces");
        for (size_t i = 0; nss && i < json_object_array_length(nss); i++) {
                json_object *ns = json_object_array_get_idx(nss, i);
                if (!strcmp(cryo_json_str(ns, "type", ""), "network") && !cryo_json_str(ns, "path", NULL))
                        return true;
        }
        return false;
}

/* runc restores a private network namespace empty, loopback down, and
 * brings nothing up before CRIU reconnects the sockets: only a prestart
 * hook in the bundle can (runc runs those at that moment). */
static char *netns_hint(json_object *spec, const char *cause) {
        char self[4096];
        char *hint = NULL;
        if (!private_netns(spec) ||
            (!strstr(cause, "Network is unreachable") && !strstr(cause, "Cannot assign requested address")))
                return strdup("");
        ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        self[n > 0 ? n : 0] = '\0';
        if (asprintf(&hint,
                     " (runc restores the container's network namespace empty, loopback down, while CRIU "
                     "reconnects its sockets: add the prestart hook {\"path\": \"%s\", \"args\": [\"cryo\", "
                     "\"hook\", \"netns-up\"]} to hooks.prestart in the bundle's config.json and restore "
                     "again)",
                     n > 0 ? self : "/usr/bin/cryo") < 0)
                return NULL;
        return hint;
}

/* CRIU's "File fd/N has bad size": an inherited host file, known to the
 * user by its path, not by the fd CRIU got it on. */
static char *size_hint(const struct runc_stdio *s, const char *cause) {
        if (!strstr(cause, "has bad size"))
                return strdup("");
        char files[1024] = "";
        for (size_t i = 0; i < json_object_array_length(s->report); i++) {
                json_object *e = json_object_array_get_idx(s->report, i);
                const char *path = cryo_json_str(e, "path", "");
                if (strcmp(cryo_json_str(e, "kind", ""), "file") || strstr(files, path))
                        continue;
                strncat(files, files[0] ? ", " : "", sizeof(files) - strlen(files) - 1);
                strncat(files, path, sizeof(files) - strlen(files) - 1);
        }
        char *hint = NULL;
        if (asprintf(&hint,
                     " (%s%s changed size since the dump: CRIU gives an open file back at its old offset "
                     "only if its size is unchanged, which --leave-running cannot keep; output opened "
                     "for appending only, `>>FILE`, is exempt)",
                     files[0] ? "the container's stdio file " : "a host file the container had open",
                     files) < 0)
                return NULL;
        return hint;
}

static int explain_failure(struct runc_rs *rs, struct cryo_checkpoint *ck, json_object *spec,
                           const struct runc_stdio *s, int status, struct cryo_error **err) {
        _cleanup_free_ char *cause = NULL, *excerpt = NULL, *runc_msg = runc_log_error(rs->work);
        _cleanup_close_ int wfd = open(rs->work, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int r;
        if (wfd >= 0 && faccessat(wfd, CRYO_RESTORE_LOG, R_OK, 0) == 0 &&
            engine_log_explain(wfd, CRYO_RESTORE_LOG, &cause, &excerpt) == 0 && cause) {
                _cleanup_free_ char *hint = netns_hint(spec, cause), *hint2 = size_hint(s, cause);
                r = cryo_error_set(err, EIO, "CRIU restore failed: %s%s%s", cause, hint ? hint : "",
                                   hint2 ? hint2 : "");
                cryo_error_set_detail(err, excerpt);
                keep_restore_log(rs, ck, err);
        } else if (runc_msg) {
                r = cryo_error_set(err, EIO, "runc restore failed: %s", runc_msg);
        } else {
                r = cryo_error_set(err, EIO, "runc restore failed (exit status %d) and logged no reason",
                                   status);
        }
        return r;
}

static int delete_container(struct runc_rs *rs) {
        if (access(rs->state_dir, F_OK) < 0)
                return 0;
        const char *args[] = {"--root", rs->root, "delete", "--force", rs->id, NULL};
        int status = 0;
        return runc_exec(args, NULL, NULL, &status, NULL);
}

/* CRIU locks a network namespace it restores with iptables and unlocks it
 * at the end (~90 ms of iptables-restore runs).  The lock protects TCP
 * connections in repair only; and a private namespace that no hook of the
 * bundle can plug into a network is new and unreachable while CRIU works. */
static bool network_lock_useless(json_object *spec, const struct engine_options *o) {
        json_object *hooks = cryo_json_get(spec, "hooks");
        return !o->tcp_established && private_netns(spec) && !cryo_json_get(hooks, "prestart") &&
               !cryo_json_get(hooks, "createRuntime");
}

static int write_criu_conf(struct runc_rs *rs, const struct runc_stdio *s, const struct engine_options *o,
                           json_object *spec, char **path, struct cryo_error **err) {
        _cleanup_free_ char *text = NULL;
        if (asprintf(&text, "%s%s%s", s->criu_conf ? s->criu_conf : "", o->tcp_close ? "tcp-close\n" : "",
                     network_lock_useless(spec, o) ? "network-lock skip\n" : "") < 0)
                return cryo_error_set(err, ENOMEM, "out of memory");
        if (!text[0])
                return 0;
        _cleanup_close_ int fd = open(rs->work, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return cryo_error_errno(err, errno, "cannot open %s", rs->work);
        int r = fs_write_file(fd, "criu.conf", text, strlen(text), 0600, err);
        if (r < 0)
                return r;
        *path = fs_path_join(rs->work, "criu.conf");
        return *path ? 0 : cryo_error_set(err, ENOMEM, "out of memory");
}

static int run_restore(struct runc_rs *rs, struct cryo_checkpoint *ck, json_object *spec,
                       const struct engine_options *o, const struct runc_stdio *s, const char *criu_conf,
                       pid_t *pid, struct cryo_error **err) {
        _cleanup_free_ char *images = fs_path_join(ck->path, CRYO_CRIU_DIR);
        _cleanup_free_ char *log = fs_path_join(rs->work, "runc.log");
        _cleanup_free_ char *pid_file = fs_path_join(rs->work, "pid");
        if (!images || !log || !pid_file)
                return cryo_error_set(err, ENOMEM, "out of memory");
        const char *args[32];
        size_t n = 0;
        args[n++] = "--root";
        args[n++] = rs->root;
        args[n++] = "--log";
        args[n++] = log;
        args[n++] = "--log-format";
        args[n++] = "json";
        args[n++] = "restore";
        args[n++] = "--detach";
        args[n++] = "--image-path";
        args[n++] = images;
        args[n++] = "--work-path";
        args[n++] = rs->work;
        args[n++] = "--bundle";
        args[n++] = rs->bundle;
        args[n++] = "--pid-file";
        args[n++] = pid_file;
        if (o->tcp_established)
                args[n++] = "--tcp-established";
        if (o->file_locks)
                args[n++] = "--file-locks";
        if (o->ext_unix_sk)
                args[n++] = "--ext-unix-sk";
        if (o->shell_job)
                args[n++] = "--shell-job";
        const char *cgroup_mode = container_restore_cgroup_mode(ck, o);
        if (cgroup_mode) {
                args[n++] = "--manage-cgroups-mode";
                args[n++] = cgroup_mode;
        }
        args[n++] = rs->id;
        args[n] = NULL;

        int status = -1;
        uint64_t start = cryo_now_usec();
        int r = runc_exec(args, s->fd, criu_conf, &status, err);
        cryo_stats_add(&ck->stats, CRYO_PHASE_RESTORE, cryo_now_usec() - start, 0);
        if (r < 0)
                return r;
        if (status != 0)
                return explain_failure(rs, ck, spec, s, status, err);

        _cleanup_free_ char *text = NULL;
        r = fs_read_file(AT_FDCWD, pid_file, 64, &text, NULL, err);
        if (r < 0)
                return cryo_error_prefix(err, "runc restore succeeded but wrote no pid");
        *pid = (pid_t) atoi(text);
        if (*pid <= 0 || !proc_alive(*pid))
                return cryo_error_set(err, ESRCH, "the restored container's init (pid %d) is not running",
                                      (int) *pid);
        return 0;
}

int runc_restore(const struct cryo_request *req, struct cryo_checkpoint *ck, json_object *result,
                 struct cryo_error **err) {
        json_object *source = cryo_json_get(ck->manifest, "source");
        json_object *sec = cryo_json_get(ck->manifest, RUNC_SECTION);
        struct runc_rs rs = {0};
        struct runc_stdio stdio = {.fd = {-1, -1, -1}};
        _cleanup_json_ json_object *spec = NULL;
        _cleanup_free_ char *criu_conf = NULL, *config = NULL, *fallback_log = NULL;
        const char *rootfs_diff = NULL;
        pid_t pid = 0;
        int r;

        if (json_object_get_boolean(cryo_json_get(ck->manifest, "rootfs_only")))
                return cryo_error_set(
                        err, EOPNOTSUPP,
                        "checkpoint %s holds no processes (--rootfs-only): start a new container "
                        "on its bundle with `runc run` instead",
                        ck->path);
        rs.root = req->runtime_root && *req->runtime_root
                          ? req->runtime_root
                          : cryo_json_str(source, "runtime_root", RUNC_DEFAULT_ROOT);
        rs.id = req->new_id ? req->new_id : cryo_json_str(source, "id", NULL);
        rs.bundle = cryo_json_str(source, "bundle", cryo_json_str(sec, "bundle", NULL));
        if (!runc_id_valid(rs.id))
                return cryo_error_set(err, EINVAL, "'%s' is not a valid runc container id",
                                      rs.id ? rs.id : "");
        if (!rs.bundle)
                return cryo_error_set(err, EBADMSG, "checkpoint %s names no bundle", ck->path);

        if (!(rs.state_dir = fs_path_join(rs.root, rs.id)))
                return cryo_error_set(err, ENOMEM, "out of memory");
        if (access(rs.state_dir, F_OK) == 0) {
                r = cryo_error_set(
                        err, EEXIST,
                        "runc container '%s' already exists under %s: remove it with `runc --root %s "
                        "delete %s`, or restore under another id with --id NEW-ID",
                        rs.id, rs.root, rs.root, rs.id);
                goto out;
        }
        if (!(config = fs_path_join(rs.bundle, "config.json"))) {
                r = cryo_error_set(err, ENOMEM, "out of memory");
                goto out;
        }
        if (access(config, F_OK) < 0) {
                r = cryo_error_set(
                        err, ENOENT,
                        "the bundle the container was dumped from is gone (no %s): runc restores on "
                        "the container's bundle; recreate it at %s (its config.json and root "
                        "filesystem)",
                        config, rs.bundle);
                goto out;
        }
        r = cryo_json_read_file(AT_FDCWD, config, 16u << 20, &spec, err);
        if (r < 0)
                goto out;
        if (json_object_get_boolean(cryo_json_path(spec, "process/terminal"))) {
                r = cryo_error_set(
                        err, EOPNOTSUPP,
                        "%s now asks for a terminal (process.terminal): cryo's runc restore has no "
                        "console socket to give it",
                        config);
                goto out;
        }
        r = check_cgroup(&rs, spec, err);
        if (r < 0)
                goto out;

        r = fs_mkdir_p(CRYO_WORK_DIR, 0700, err);
        if (r < 0)
                goto out;
        rs.work = strdup(CRYO_WORK_DIR "/runc-restore-XXXXXX");
        if (!rs.work || !mkdtemp(rs.work)) {
                r = cryo_error_errno(err, rs.work ? errno : ENOMEM, "cannot create a work directory in %s",
                                     CRYO_WORK_DIR);
                free(rs.work);
                rs.work = NULL;
                goto out;
        }
        if (asprintf(&rs.data_dir, RUNC_CONTAINERS_DIR "/%s", rs.id) < 0 ||
            !(fallback_log = fs_path_join(rs.data_dir, "stdio.log"))) {
                r = cryo_error_set(err, ENOMEM, "out of memory");
                goto out;
        }
        rs.data_dir_existed = fs_is_dir(rs.data_dir);

        r = prepare_rootfs(&rs, ck, spec, &rootfs_diff, err);
        if (r < 0)
                goto out;
        r = runc_stdio_open(cryo_json_get(sec, "stdio"), fallback_log, &stdio, err);
        if (r >= 0)
                r = write_criu_conf(&rs, &stdio, &req->criu, spec, &criu_conf, err);
        if (r >= 0)
                r = run_restore(&rs, ck, spec, &req->criu, &stdio, criu_conf, &pid, err);
        if (r < 0)
                goto fail;

        json_object_object_add(result, "id", json_object_new_string(rs.id));
        json_object_object_add(result, "pid", json_object_new_int(pid));
        json_object_object_add(result, "runtime_root", json_object_new_string(rs.root));
        json_object_object_add(result, "bundle", json_object_new_string(rs.bundle));
        json_object_object_add(result, "rootfs_diff", json_object_new_string(rootfs_diff));
        json_object_object_add(result, "stdio", json_object_get(stdio.report));
        if (private_netns(spec)) {
                /* runc restored into a new, empty network namespace; the
                 * sockets are back, now let loopback carry traffic again. */
                _cleanup_error_ struct cryo_error *e = NULL;
                json_object_object_add(
                        result, "loopback",
                        json_object_new_string(container_netns_up(pid, &e) < 0 ? "down" : "up"));
        }
        goto out;
fail:
        (void) delete_container(&rs);
        if (stdio.created_log)
                (void) unlink(stdio.created_log);
        if (!rs.data_dir_existed && rs.data_dir)
                (void) rmdir(rs.data_dir);
out:
        runc_stdio_clear(&stdio);
        rs_clear(&rs);
        return r;
}
