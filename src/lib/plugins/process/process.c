/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A plain process tree, restored with its original pids on this host or
 * another one (which then must have those pids free).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cryo.h"
#include "plugins/plugin.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/proc.h"

static int process_source_id(const struct cryo_request *req, char **id, struct cryo_error **err) {
        if (req->pid <= 0)
                return cryo_error_set(err, EINVAL, "a process dump needs --pid PID (a positive number)");
        if (!proc_alive(req->pid))
                return cryo_error_set(err, ESRCH, "no process with pid %d", req->pid);
        if (asprintf(id, "%d", req->pid) < 0)
                return cryo_error_set(err, ENOMEM, "out of memory");
        return 0;
}

static int process_dump(const struct cryo_request *req, struct cryo_checkpoint *ck,
                        struct cryo_error **err) {
        _cleanup_free_ struct cryo_proc *procs = NULL;
        size_t n = 0;
        int r = proc_tree_collect(req->pid, &procs, &n, err);
        if (r < 0)
                return r;
        json_object *source = json_object_new_object();
        json_object_object_add(source, "pid", json_object_new_int(req->pid));
        /* The init of its own pid namespace is restored into a new one, so
         * it does not need its host pids free (a same-host migration). */
        if (proc_is_pidns_init(req->pid))
                json_object_object_add(source, "pid_ns_init", json_object_new_boolean(true));
        json_object_object_add(ck->manifest, "source", source);

        _cleanup_close_ int images_fd = -1;
        r = ckpt_open_subdir(ck, CRYO_CRIU_DIR, true, &images_fd, err);
        if (r < 0)
                return r;
        struct engine_dump_request dump = {
                .pid = req->pid,
                .images_fd = images_fd,
                .work_fd = ck->dirfd,
                .opts = &req->criu,
                .lazy = req->lazy ? &req->lazy->page_server : NULL,
        };
        r = cryo_dump_tree(&dump, ck, err);
        if (r < 0)
                return r;
        /* The tree as CRIU froze it, for inspect and for the restore-time
         * check that its pids are free. */
        json_object_object_add(ck->manifest, "processes", proc_tree_to_json(procs, n));
        return 0;
}

/* Restoring reuses the saved pids: say which one is taken and by what,
 * rather than leave the user to decode CRIU's "File exists". */
static int check_pids_free(struct cryo_checkpoint *ck, struct cryo_error **err) {
        if (json_object_get_boolean(cryo_json_get(cryo_json_get(ck->manifest, "source"), "pid_ns_init")))
                return 0;
        json_object *procs = cryo_json_get(ck->manifest, "processes");
        for (size_t i = 0; procs && i < json_object_array_length(procs); i++) {
                json_object *p = json_object_array_get_idx(procs, i);
                pid_t pid = (pid_t) cryo_json_int(p, "pid", 0), parent = 0;
                char comm[32] = "", state = 0;
                /* The source's zombie may still wait for its parent to reap it. */
                for (int tries = 0;
                     tries < 100 && pid > 0 &&
                     proc_read_stat(pid, &parent, comm, sizeof(comm), &state) == 0 && state == 'Z';
                     tries++) {
                        struct timespec ts = {0, 20 * 1000 * 1000};
                        nanosleep(&ts, NULL);
                }
                if (state == 'Z' && proc_read_stat(pid, &parent, comm, sizeof(comm), &state) == 0 &&
                    state == 'Z')
                        return cryo_error_set(
                                err, EBUSY,
                                "pid %d is still held by a zombie that its parent (pid %d) has not "
                                "reaped; the restore needs that pid",
                                pid, parent);
                if (pid > 0 && proc_read_stat(pid, NULL, comm, sizeof(comm), NULL) == 0)
                        return cryo_error_set(
                                err, EBUSY,
                                "pid %d (%s in the checkpoint) is in use on this host by '%s'; "
                                "a process checkpoint restores with its original pids",
                                pid, cryo_json_str(p, "comm", "?"), comm);
        }
        return 0;
}

static int process_restore(const struct cryo_request *req, struct cryo_checkpoint *ck, json_object *result,
                           struct cryo_error **err) {
        int r = check_pids_free(ck, err);
        if (r < 0)
                return r;
        _cleanup_close_ int images_fd = -1;
        r = ckpt_open_subdir(ck, CRYO_CRIU_DIR, false, &images_fd, err);
        if (r < 0)
                return r;
        struct engine_restore_request restore = {
                .images_fd = images_fd,
                .opts = &req->criu,
                .restore_detached = true,
                .lazy = req->lazy ? &req->lazy->page_server : NULL,
        };
        bool held = false;
        restore.resumed_after = &held;
        pid_t pid = 0;
        r = cryo_restore_tree(&restore, ck, &pid, err);
        if (r < 0)
                return r;
        json_object_object_add(result, "pid", json_object_new_int(pid));
        if (held)
                json_object_object_add(result, "verified", json_object_new_string("pre-resume"));
        return 0;
}

static int process_inspect(struct cryo_checkpoint *ck, json_object *report, struct cryo_error **err) {
        json_object *procs = cryo_json_get(ck->manifest, "processes");
        json_object_object_add(report, "processes",
                               procs ? json_object_get(procs) : json_object_new_array());
        return 0;
}

const struct cryo_plugin cryo_plugin_process = {
        .name = "process",
        .summary = "a process tree, restored with its original pids",
        .source_id = process_source_id,
        .dump = process_dump,
        .restore = process_restore,
        .inspect = process_inspect,
        .verifies_before_resume = true,
        .lazy_pages = true,
};
