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

#include "migrate.h"
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
        /* A lazy dump's tree stays frozen by CRIU until its pages have moved;
         * cryo_dump() then ends or resumes it (migrate.h).  Only CRIU can
         * take established TCP connections out of repair mode and unlock the
         * network, and only for a tree it resumes itself: with
         * --leave-running --tcp-established it does (the filesystem is then
         * captured from the running tree). */
        dump->leave_stopped = !dump->lazy && !(dump->opts->leave_running && dump->opts->tcp_established);
        dump->timerfds_fixed = &timerfds_fixed;
        int r = engine_dump(dump, &ck->stats, err);
        if (r < 0) {
                /* Harmless if CRIU already resumed it. */
                signal_tree(dump->pid, SIGCONT);
                return r;
        }
        if (dump->lazy) {
                ck->lazy_root = dump->pid;
                /* So that a plain restore refuses it, and inspect shows it. */
                json_object *lazy = json_object_new_object();
                json_object_object_add(lazy, "pages_included", json_object_new_boolean(false));
                json_object_object_add(lazy, "page_server_port", json_object_new_int(dump->lazy->port));
                cryo_json_add_str(lazy, "page_server_address", dump->lazy->address);
                json_object_object_add(ck->manifest, "lazy_pages", lazy);
        } else if (dump->leave_stopped) {
                ck->stopped_root = dump->pid;
        }
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

static int verify_before_resume(void *arg, struct cryo_error **err) {
        return ckpt_verify_end(arg, err);
}

/* A private directory under CRYO_WORK_DIR, removed with what it holds. */
struct work_dir {
        char *path;
        int fd;
};

static void work_dir_done(struct work_dir *w) {
        cryo_closep(&w->fd);
        if (w->path)
                (void) fs_rm_work_dir(w->path);
        free(w->path);
}

/* What cryo makes under CRYO_WORK_DIR for one run: CRIU work directories
 * and the scratch copy `inspect` extracts an archive into. */
static bool work_entry(const char *name) {
        return fs_mkdtemp_name(name, "dump-", true) || fs_mkdtemp_name(name, "restore-", true) ||
               fs_mkdtemp_name(name, ".restore-", true);
}

static int work_dir_make(const char *kind, struct work_dir *w, struct cryo_error **err) {
        int r = fs_mkdir_p(CRYO_WORK_DIR, 0700, err);
        if (r < 0)
                return r;
        /* A cryo killed mid-way left its own: nobody holds those. */
        (void) fs_sweep_unheld(CRYO_WORK_DIR, work_entry, 60);
        if (asprintf(&w->path, CRYO_WORK_DIR "/%s-XXXXXX", kind) < 0) {
                w->path = NULL;
                return cryo_error_set(err, ENOMEM, "out of memory");
        }
        if (!mkdtemp(w->path)) {
                r = cryo_error_errno(err, errno, "cannot create a work directory in %s", CRYO_WORK_DIR);
                free(steal_pointer(&w->path));
                return r;
        }
        w->fd = open(w->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (w->fd < 0)
                return cryo_error_errno(err, errno, "cannot open %s", w->path);
        (void) fs_hold(w->fd);
        return 0;
}

int cryo_restore_tree(struct engine_restore_request *restore, struct cryo_checkpoint *ck, pid_t *pid,
                      struct cryo_error **err) {
        _cleanup_(work_dir_done) struct work_dir work = {.fd = -1};
        int r = work_dir_make("restore", &work, err);
        if (r < 0)
                return r;
        restore->work_fd = work.fd;
        /* Checksums still being computed: CRIU holds the tree for them
         * (restore->resumed_after, if the caller asks, says it did). */
        if (ckpt_verify_pending(ck)) {
                restore->before_resume = verify_before_resume;
                restore->before_resume_arg = ck;
        }
        r = engine_restore(restore, pid, &ck->stats, err);
        if (ckpt_verify_pending(ck)) {
                /* CRIU never reached pre-resume: a bad image explains more
                 * than its failure; a tree that ran unverified is ended. */
                _cleanup_error_ struct cryo_error *bad = NULL;
                if (ckpt_verify_end(ck, &bad) < 0) {
                        if (r >= 0)
                                signal_tree(*pid, SIGKILL);
                        r = cryo_error_replace(err, &bad);
                }
        }
        if (r < 0) {
                keep_log(work.fd, CRYO_RESTORE_LOG, cryo_json_str(ck->manifest, "name", "checkpoint"), err);
                if (restore->lazy)
                        keep_log(work.fd, ENGINE_LAZY_PAGES_LOG,
                                 cryo_json_str(ck->manifest, "name", "checkpoint"), err);
        }
        return r;
}

static void lazy_dump_stop(struct engine_lazy_dump **l) {
        engine_lazy_dump_free(*l);
}

int cryo_dump(const struct cryo_request *req, json_object **result, struct cryo_error **err) {
        uint64_t start = cryo_now_usec();
        const struct cryo_plugin *plugin = plugin_for(req->type, err);
        if (!plugin)
                return -EINVAL;
        _cleanup_(work_dir_done) struct work_dir lazy_work = {.fd = -1};
        char token[CRYO_LAZY_TOKEN_LEN + 1] = "";
        if (req->lazy) {
                if (!plugin->lazy_pages)
                        return cryo_error_set(err, EOPNOTSUPP,
                                              "post-copy migration (--lazy-pages) is not supported for %s "
                                              "checkpoints",
                                              plugin->name);
                if (req->archive)
                        return cryo_error_set(
                                err, EINVAL,
                                "--lazy-pages and --archive do not combine: the target restores "
                                "from the directory while the source serves its pages");
                if (req->rootfs_only)
                        return cryo_error_set(
                                err, EINVAL,
                                "--lazy-pages and --rootfs-only do not combine: a filesystem-only "
                                "checkpoint has no memory to serve");
                int r = work_dir_make("dump", &lazy_work, err);
                if (r < 0)
                        return r;
                req->lazy->page_server.work_fd = lazy_work.fd;
                req->lazy->page_server.serving = NULL;
                r = cryo_lazy_token(token, err);
                if (r < 0)
                        return r;
        }

        _cleanup_free_ char *id = NULL, *name = NULL;
        int r = plugin->source_id(req, &id, err);
        if (r < 0)
                return r;
        name = req->name ? strdup(req->name) : ckpt_default_name(plugin->name, id);
        if (!name)
                return cryo_error_set(err, ENOMEM, "out of memory");

        _cleanup_ckpt_ struct cryo_checkpoint *ck = NULL;
        _cleanup_free_ char *archive_dir = NULL;
        const char *root = req->checkpoint_root ? req->checkpoint_root : CRYO_DEFAULT_ROOT;
        unsigned flags = 0;
        if (req->archive) {
                /* The checkpoint is written next to the archive, on the same
                 * file system, and removed once the archive is complete. */
                r = cryo_archive_prepare(req->archive, root, &archive_dir, err);
                if (r < 0)
                        return r;
                root = archive_dir;
                flags |= CKPT_CREATE_SCRATCH;
        }
        if (req->lazy)
                /* Without its source's page server it restores nothing: a
                 * crash loses the source, and so the checkpoint, whatever
                 * was synced.  Not syncing keeps the fsyncs out of the
                 * downtime. */
                flags |= CKPT_CREATE_VOLATILE;
        (void) ckpt_sweep(root);
        r = ckpt_create(root, name, plugin->name, flags, &ck, err);
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
                r = ckpt_create(root, name, plugin->name, flags, &ck, err);
        }
        if (r < 0)
                return r;
        json_object_object_add(ck->manifest, "id", json_object_new_string(id));
        json_object_object_add(ck->manifest, "options", engine_options_to_json(&req->criu));
        cryo_stats_add(&ck->stats, CRYO_PHASE_PREPARE, cryo_now_usec() - start, 0);

        r = plugin->dump(req, ck, err);
        bool plugin_done = r >= 0;
        /* Stopping a CRIU that still serves pages resumes the source. */
        _cleanup_(lazy_dump_stop) struct engine_lazy_dump *serving =
                req->lazy ? steal_pointer(&req->lazy->page_server.serving) : NULL;
        if (serving)
                /* Only a holder of the checkpoint can end the source. */
                cryo_json_add_str(cryo_json_get(ck->manifest, "lazy_pages"), "token", token);
        if (ck->stopped_root > 0 && (r < 0 || req->criu.leave_running)) {
                /* Memory and filesystem are captured: a source that goes on
                 * may go on now, before the checksums and fsyncs. */
                signal_tree(ck->stopped_root, SIGCONT);
                ck->stopped_root = 0;
        }
        if (r >= 0) {
                /* CRIU's log names its version: no CRIU run just to ask. */
                _cleanup_free_ char *criu_version = NULL;
                /* A lazy dump's log is in its work directory. */
                if (engine_log_criu_version(req->lazy ? lazy_work.fd : ck->dirfd, CRYO_DUMP_LOG,
                                            &criu_version) == 0 ||
                    engine_criu_version(&criu_version, NULL) == 0)
                        json_object_object_add(cryo_json_get(ck->manifest, "host"), "criu_version",
                                               json_object_new_string(criu_version));
                cryo_stats_add(&ck->stats, CRYO_PHASE_TOTAL, cryo_now_usec() - start, 0);
                r = req->archive ? cryo_archive_commit(ck, req->archive, err) : ckpt_commit(ck, err);
        }
        if (ck->stopped_root > 0)
                /* Only now is it safe to end the source: the checkpoint is
                 * complete and durable.  If that failed, the source goes on. */
                signal_tree(ck->stopped_root, r >= 0 ? SIGKILL : SIGCONT);
        if (r < 0) {
                if (plugin_done && plugin->dump_aborted)
                        plugin->dump_aborted(req, ck);
                keep_log(req->lazy ? lazy_work.fd : ck->dirfd, CRYO_DUMP_LOG, name, err);
                return r;
        }
        if (serving) {
                /* The target restores from the committed checkpoint while
                 * CRIU serves the pages; the source is gone once they moved. */
                const struct cryo_lazy *lz = req->lazy;
                if (lz->ready)
                        lz->ready(ck->path, lz->data);
                uint64_t serve_start = cryo_now_usec();
                r = engine_lazy_dump_wait(serving, lz->timeout_sec, lz->cancel, &ck->stats, err);
                cryo_stats_add(&ck->stats, CRYO_PHASE_LAZY_PAGES, cryo_now_usec() - serve_start, 0);
                if (r == 0) {
                        /* The tree is stopped: the page server ended the
                         * same way whether the target has every page or its
                         * restore failed.  Only its word ends the source. */
                        r = cryo_lazy_await_done(lz->page_server.address, lz->page_server.port, token,
                                                 lz->timeout_sec ? lz->timeout_sec : 600, lz->cancel, err);
                        if (r < 0)
                                (void) cryo_error_prefix(err, "the source was resumed");
                }
                /* Resumes it if CRIU left it stopped (harmless otherwise).
                 * A container's tree ends with its init: its task exits as
                 * after a plain dump. */
                signal_tree(ck->lazy_root, r == 0 ? SIGKILL : SIGCONT);
                if (r < 0) {
                        keep_log(lazy_work.fd, CRYO_DUMP_LOG, name, err);
                        /* Without its page server it restores nothing. */
                        (void) fs_rm_rf(ck->path);
                        return r;
                }
        }

        /* The manifest's total ends before the commit; the caller's includes it. */
        ck->stats.phase[CRYO_PHASE_TOTAL].usec = cryo_now_usec() - start;
        json_object *res = json_object_new_object();
        json_object_object_add(res, "path", json_object_new_string(req->archive ? req->archive : ck->path));
        json_object_object_add(res, "name", json_object_new_string(name));
        json_object_object_add(res, "type", json_object_new_string(plugin->name));
        json_object_object_add(res, "id", json_object_new_string(id));
        json_object_object_add(res, "stats", cryo_stats_to_json(&ck->stats));
        if (serving)
                json_object_object_add(res, "pages_served", json_object_new_boolean(true));
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

/* Below this many bytes of images, the checksums take a few milliseconds
 * and are done before the restore starts: overlapping them costs more (a
 * thread, CRIU running cryo-criu-hook at each of its seven restore
 * actions) than it hides. */
#define CRYO_VERIFY_OVERLAP_MIN (32ull << 20)

int cryo_restore(struct cryo_request *req, const char *path, json_object **result, struct cryo_error **err) {
        uint64_t start = cryo_now_usec(), import_usec = 0;
        const char *source = path;
        /* Declared before the checkpoint: removed after it is closed, and
         * held (against ckpt_sweep()) until it is removed. */
        _cleanup_close_ int imported_hold = -1;
        _cleanup_(fs_rm_rf_freep) char *imported = NULL;
        _cleanup_ckpt_ struct cryo_checkpoint *ck = NULL;
        struct stat st = {0};
        /* An archive is extracted into a scratch directory for this
         * restore only (`cryo import` keeps one), and then verified like
         * a directory: restoring the same archive again, as test
         * environments do, just works. */
        bool from_stdin = cryo_archive_is_stdio(path);
        if (from_stdin || (stat(path, &st) == 0 && S_ISREG(st.st_mode))) {
                /* containerd and dockerd fsync their metadata on this file
                 * system during the restore, and would wait for the
                 * whole scratch copy; a process restore reads it from
                 * the page cache and waits on no sync. */
                bool write_back =
                        req->type && (!strcmp(req->type, "containerd") || !strcmp(req->type, "docker"));
                int r = cryo_extract_for_restore(
                        path, req->checkpoint_root ? req->checkpoint_root : CRYO_DEFAULT_ROOT, write_back,
                        &imported, &imported_hold, err);
                if (r < 0)
                        return r;
                path = imported;
                import_usec = cryo_now_usec() - start;
        }
        /* Verified below, once the plugin is known. */
        int r = ckpt_open(path, CKPT_VERIFY_NONE, &ck, err);
        if (r < 0)
                return r;
        /* The dump-time stats stay in the manifest; these are the restore's. */
        memset(&ck->stats, 0, sizeof(ck->stats));
        if (imported)
                cryo_stats_add(&ck->stats, CRYO_PHASE_IMPORT, import_usec,
                               from_stdin ? 0 : (uint64_t) st.st_size);
        r = ckpt_check_arch(ck, err);
        if (r < 0)
                return r;

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
        bool lazy = cryo_json_get(ck->manifest, "lazy_pages") != NULL;
        if (lazy && !req->lazy)
                return cryo_error_set(err, EINVAL,
                                      "%s holds no memory pages: it is the first half of a post-copy "
                                      "migration (dumped with --lazy-pages); restore it with --lazy-pages "
                                      "--page-server ADDRESS:PORT while its source serves the pages",
                                      path);
        if (!lazy && req->lazy)
                return cryo_error_set(err, EINVAL,
                                      "%s is a complete checkpoint, not a post-copy one: restore it "
                                      "without --lazy-pages",
                                      path);
        if (lazy && !plugin->lazy_pages)
                return cryo_error_set(err, EOPNOTSUPP, "post-copy restore is not supported for %s", type);
        /* An extracted archive is checked like a directory: zstd's frame
         * checksums covered the stream, these cover its files. */
        if (req->no_verify)
                r = ckpt_verify(ck, CKPT_VERIFY_SIZES, err);
        else if (plugin->verifies_before_resume)
                r = ckpt_verify_begin(ck, CRYO_VERIFY_OVERLAP_MIN, err);
        else
                r = ckpt_verify(ck, CKPT_VERIFY_FULL, err);
        if (r < 0)
                return r;

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
        if (ckpt_verify_pending(ck))
                return cryo_error_set(err, EFAULT,
                                      "internal error: plugin %s restored %s without verifying it",
                                      plugin->name, path);
        /* When the checksums were checked: the plugin says if it overlapped them. */
        if (!cryo_json_get(res, "verified"))
                json_object_object_add(
                        res, "verified",
                        json_object_new_string(req->no_verify ? "sizes-only" : "before-restore"));
        if (lazy && !plugin->lazy_confirms) {
                /* Every page is here: the source may end now. */
                bool maybe_delivered = false;
                r = cryo_lazy_send_done(
                        req->lazy->page_server.address, req->lazy->page_server.port,
                        cryo_json_str(cryo_json_get(ck->manifest, "lazy_pages"), "token", ""), 30,
                        &maybe_delivered, err);
                pid_t pid = (pid_t) cryo_json_int(res, "pid", 0);
                if (r < 0 && !maybe_delivered && pid > 0) {
                        /* The source resumes when it hears nothing: one copy only. */
                        signal_tree(pid, SIGKILL);
                        return cryo_error_prefix(err, "the restored copy was killed, the source resumes");
                }
                if (r < 0)
                        return cryo_error_prefix(
                                err, "the source may have ended: the restored copy (pid %d) runs on", pid);
        }
        cryo_stats_add(&ck->stats, CRYO_PHASE_TOTAL, cryo_now_usec() - start, 0);
        json_object_object_add(res, "checkpoint", json_object_new_string(imported ? source : ck->path));
        json_object_object_add(res, "type", json_object_new_string(type));
        json_object_object_add(res, "stats", cryo_stats_to_json(&ck->stats));
        *result = steal_pointer(&res);
        return 0;
}

int cryo_inspect(const char *path, bool verify, json_object **report, struct cryo_error **err) {
        /* An archive is looked at through a scratch copy, verified in full. */
        _cleanup_close_ int extracted_hold = -1;
        _cleanup_(fs_rm_rf_freep) char *extracted = NULL;
        struct stat st;
        bool archive = cryo_archive_is_stdio(path) || (stat(path, &st) == 0 && S_ISREG(st.st_mode));
        if (archive) {
                int r = cryo_extract_for_restore(path, CRYO_WORK_DIR, false, &extracted, &extracted_hold,
                                                 err);
                if (r < 0)
                        return r;
                verify = true;
        }
        _cleanup_ckpt_ struct cryo_checkpoint *ck = NULL;
        int r = ckpt_open(extracted ? extracted : path, verify ? CKPT_VERIFY_FULL : CKPT_VERIFY_SIZES, &ck,
                          err);
        if (r < 0)
                return r;
        _cleanup_json_ json_object *rep = json_object_new_object();
        json_object_object_add(rep, "path", json_object_new_string(archive ? path : ck->path));
        json_object_object_add(rep, "manifest", json_object_get(ck->manifest));
        json_object_object_add(rep, "verified", json_object_new_string(verify ? "checksums" : "sizes"));
        const struct cryo_plugin *plugin = cryo_plugin_find(ckpt_type(ck));
        if (plugin && plugin->inspect) {
                r = plugin->inspect(ck, rep, err);
                if (r < 0)
                        return r;
        }
        *report = steal_pointer(&rep);
        return 0;
}
