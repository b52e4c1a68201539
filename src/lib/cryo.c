/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "cryo.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/cleanup.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/proc.h"

static const struct cryo_plugin *plugin_for(const char *type, struct cryo_error **err) {
        const struct cryo_plugin *p = cryo_plugin_find(type);
        if (!p) {
                char known[256] = "";
                for (const struct cryo_plugin *const *q = cryo_plugins(); *q; q++) {
                        if (known[0])
                                strncat(known, ", ", sizeof(known) - strlen(known) - 1);
                        strncat(known, (*q)->name, sizeof(known) - strlen(known) - 1);
                }
                cryo_error_set(err, EINVAL, "unknown checkpoint type '%s' (known: %s)", type ? type : "",
                               known);
        }
        return p;
}

/* Keeps a CRIU log that explains a failure where the user can read it, as
 * the directory it was written in is about to be removed. */
static void keep_log(int dirfd, const char *log_name, const char *name, struct cryo_error **err) {
        if (!err || !*err || faccessat(dirfd, log_name, R_OK, 0) < 0)
                return;
        if (fs_mkdir_p(CRYO_LOG_DIR, 0700, NULL) < 0)
                return;
        _cleanup_free_ char *dest = NULL, *detail = NULL;
        if (asprintf(&dest, CRYO_LOG_DIR "/%s.%s", name, log_name) < 0)
                return;
        if (renameat(dirfd, log_name, AT_FDCWD, dest) < 0) {
                /* Different file systems: leave it; the excerpt is in the error. */
                return;
        }
        if (asprintf(&detail, "%sCRIU log: %s\n", (*err)->detail ? (*err)->detail : "", dest) >= 0)
                cryo_error_set_detail(err, detail);
}

/* Signals every member of a stopped tree; children first on SIGKILL does
 * not matter, the tree cannot run in between. */
static void signal_tree(pid_t root, int sig) {
        _cleanup_free_ struct cryo_proc *procs = NULL;
        size_t n = 0;
        if (proc_tree_collect(root, &procs, &n, NULL) < 0)
                return;
        for (size_t i = 0; i < n; i++)
                (void) kill(procs[i].pid, sig);
}

int cryo_dump_tree(struct engine_dump_request *dump, struct cryo_checkpoint *ck, struct cryo_error **err) {
        unsigned timerfds_fixed = 0;
        /* Only CRIU can take established TCP connections out of repair mode
         * and unlock the network, and only for a tree it resumes itself: with
         * --leave-running --tcp-established it does (the filesystem is then
         * captured from the running tree). */
        dump->leave_stopped = !(dump->opts->leave_running && dump->opts->tcp_established);
        dump->timerfds_fixed = &timerfds_fixed;
        int r = engine_dump(dump, &ck->stats, err);
        if (r < 0) {
                /* Harmless if CRIU already resumed it. */
                signal_tree(dump->pid, SIGCONT);
                return r;
        }
        if (dump->leave_stopped)
                ck->stopped_root = dump->pid;
        if (timerfds_fixed) {
                /* Recorded so that a reader of the images knows they differ
                 * from what CRIU wrote (criu issue #3162). */
                json_object *notes = json_object_new_object();
                json_object_object_add(notes, "expired_timerfds_rearmed",
                                       json_object_new_int((int) timerfds_fixed));
                json_object_object_add(ck->manifest, "engine_notes", notes);
        }
        return 0;
}

int cryo_restore_tree(struct engine_restore_request *restore, struct cryo_checkpoint *ck, pid_t *pid,
                      struct cryo_error **err) {
        int r = fs_mkdir_p(CRYO_WORK_DIR, 0700, err);
        if (r < 0)
                return r;
        _cleanup_free_ char *work = strdup(CRYO_WORK_DIR "/restore-XXXXXX");
        if (!work || !mkdtemp(work))
                return cryo_error_errno(err, errno ? errno : ENOMEM, "cannot create a work directory in %s",
                                        CRYO_WORK_DIR);
        _cleanup_close_ int work_fd = open(work, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (work_fd < 0) {
                r = cryo_error_errno(err, errno, "cannot open %s", work);
                (void) fs_rm_rf(work);
                return r;
        }
        restore->work_fd = work_fd;
        r = engine_restore(restore, pid, &ck->stats, err);
        if (r < 0)
                keep_log(work_fd, CRYO_RESTORE_LOG, cryo_json_str(ck->manifest, "name", "checkpoint"), err);
        (void) fs_rm_rf(work);
        return r;
}

int cryo_dump(const struct cryo_request *req, json_object **result, struct cryo_error **err) {
        uint64_t start = cryo_now_usec();
        const struct cryo_plugin *plugin = plugin_for(req->type, err);
        if (!plugin)
                return -EINVAL;

        _cleanup_free_ char *id = NULL, *name = NULL;
        int r = plugin->source_id(req, &id, err);
        if (r < 0)
                return r;
        name = req->name ? strdup(req->name) : ckpt_default_name(plugin->name, id);
        if (!name)
                return cryo_error_set(err, ENOMEM, "out of memory");

        _cleanup_ckpt_ struct cryo_checkpoint *ck = NULL;
        const char *root = req->checkpoint_root ? req->checkpoint_root : CRYO_DEFAULT_ROOT;
        r = ckpt_create(root, name, plugin->name, &ck, err);
        /* Default names have one-second resolution: a second dump within
         * the same second gets a suffix.  A name the user gave is theirs. */
        for (int n = 2; r == -EEXIST && !req->name && n < 100; n++) {
                if (err)
                        cryo_error_freep(err);
                free(name);
                name = NULL;
                _cleanup_free_ char *base = ckpt_default_name(plugin->name, id);
                if (!base || asprintf(&name, "%s-%d", base, n) < 0)
                        return cryo_error_set(err, ENOMEM, "out of memory");
                r = ckpt_create(root, name, plugin->name, &ck, err);
        }
        if (r < 0)
                return r;
        json_object_object_add(ck->manifest, "id", json_object_new_string(id));
        json_object_object_add(ck->manifest, "options", engine_options_to_json(&req->criu));
        cryo_stats_add(&ck->stats, CRYO_PHASE_PREPARE, cryo_now_usec() - start, 0);

        r = plugin->dump(req, ck, err);
        if (ck->stopped_root > 0 && (r < 0 || req->criu.leave_running)) {
                /* Memory and filesystem are captured: a source that goes on
                 * may go on now, before the checksums and fsyncs. */
                signal_tree(ck->stopped_root, SIGCONT);
                ck->stopped_root = 0;
        }
        if (r >= 0) {
                /* CRIU's log names its version: no CRIU run just to ask. */
                _cleanup_free_ char *criu_version = NULL;
                if (engine_log_criu_version(ck->dirfd, CRYO_DUMP_LOG, &criu_version) == 0 ||
                    engine_criu_version(&criu_version, NULL) == 0)
                        json_object_object_add(cryo_json_get(ck->manifest, "host"), "criu_version",
                                               json_object_new_string(criu_version));
                cryo_stats_add(&ck->stats, CRYO_PHASE_TOTAL, cryo_now_usec() - start, 0);
                r = ckpt_commit(ck, err);
        }
        if (ck->stopped_root > 0)
                /* Only now is it safe to end the source: the checkpoint is
                 * complete and durable.  If that failed, the source goes on. */
                signal_tree(ck->stopped_root, r >= 0 ? SIGKILL : SIGCONT);
        if (r < 0) {
                keep_log(ck->dirfd, CRYO_DUMP_LOG, name, err);
                return r;
        }

        json_object *res = json_object_new_object();
        json_object_object_add(res, "path", json_object_new_string(ck->path));
        json_object_object_add(res, "name", json_object_new_string(name));
        json_object_object_add(res, "type", json_object_new_string(plugin->name));
        json_object_object_add(res, "id", json_object_new_string(id));
        json_object_object_add(res, "stats", cryo_stats_to_json(&ck->stats));
        *result = res;
        return 0;
}

/* A Docker container is a containerd container in namespace "moby": its
 * checkpoint restores either way, as a containerd task or through dockerd. */
static bool restorable_as(struct cryo_checkpoint *ck, const char *as) {
        const char *type = ckpt_type(ck);
        if (!strcmp(type, "docker") && !strcmp(as, "containerd"))
                return true;
        if (!strcmp(type, "containerd") && !strcmp(as, "docker"))
                return !strcmp(cryo_json_str(cryo_json_get(ck->manifest, "source"), "namespace", ""),
                               "moby");
        return false;
}

int cryo_restore(struct cryo_request *req, const char *path, json_object **result, struct cryo_error **err) {
        uint64_t start = cryo_now_usec();
        _cleanup_ckpt_ struct cryo_checkpoint *ck = NULL;
        _cleanup_free_ char *imported = NULL;
        struct stat st;
        /* An exported archive is imported first (verified on the way in). */
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
                int r = cryo_import(path, req->checkpoint_root ? req->checkpoint_root : CRYO_DEFAULT_ROOT,
                                    &imported, err);
                if (r < 0)
                        return r;
                path = imported;
        }
        int r = ckpt_open(path, req->no_verify || imported ? CKPT_VERIFY_SIZES : CKPT_VERIFY_FULL, &ck, err);
        if (r < 0)
                return r;
        /* The dump-time stats stay in the manifest; these are the restore's. */
        memset(&ck->stats, 0, sizeof(ck->stats));
        cryo_stats_add(&ck->stats, CRYO_PHASE_VERIFY, cryo_now_usec() - start, 0);

        const char *type = ckpt_type(ck);
        if (req->type && strcmp(req->type, type) != 0) {
                if (!restorable_as(ck, req->type))
                        return cryo_error_set(err, EINVAL, "%s is a '%s' checkpoint, not '%s'", path, type,
                                              req->type);
                type = req->type;
        }
        const struct cryo_plugin *plugin = plugin_for(type, err);
        if (!plugin)
                return -EINVAL;

        /* The dump's CRIU options apply again (tcp-established, file-locks,
         * ...); options given now add to them. */
        struct engine_options saved = {0};
        r = engine_options_from_json(cryo_json_get(ck->manifest, "options"), &saved, err);
        if (r < 0) {
                engine_options_clear(&saved);
                return cryo_error_prefix(err, "checkpoint %s", path);
        }
        req->criu.tcp_established |= saved.tcp_established;
        req->criu.file_locks |= saved.file_locks;
        req->criu.shell_job |= saved.shell_job;
        req->criu.ext_unix_sk |= saved.ext_unix_sk;
        req->criu.link_remap |= saved.link_remap;
        if (!req->criu.cgroup_mode)
                req->criu.cgroup_mode = steal_pointer(&saved.cgroup_mode);
        engine_options_clear(&saved);

        _cleanup_json_ json_object *res = json_object_new_object();
        r = plugin->restore(req, ck, res, err);
        if (r < 0)
                return r;
        cryo_stats_add(&ck->stats, CRYO_PHASE_TOTAL, cryo_now_usec() - start, 0);
        json_object_object_add(res, "checkpoint", json_object_new_string(ck->path));
        json_object_object_add(res, "type", json_object_new_string(type));
        json_object_object_add(res, "stats", cryo_stats_to_json(&ck->stats));
        *result = steal_pointer(&res);
        return 0;
}

int cryo_inspect(const char *path, bool verify, json_object **report, struct cryo_error **err) {
        _cleanup_ckpt_ struct cryo_checkpoint *ck = NULL;
        int r = ckpt_open(path, verify ? CKPT_VERIFY_FULL : CKPT_VERIFY_SIZES, &ck, err);
        if (r < 0)
                return r;
        _cleanup_json_ json_object *rep = json_object_new_object();
        json_object_object_add(rep, "path", json_object_new_string(ck->path));
        json_object_object_add(rep, "manifest", json_object_get(ck->manifest));
        json_object_object_add(rep, "verified", json_object_new_string(verify ? "sha256" : "sizes"));
        const struct cryo_plugin *plugin = cryo_plugin_find(ckpt_type(ck));
        if (plugin && plugin->inspect) {
                r = plugin->inspect(ck, rep, err);
                if (r < 0)
                        return r;
        }
        *report = steal_pointer(&rep);
        return 0;
}
