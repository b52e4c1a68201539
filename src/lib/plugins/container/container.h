/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * What every container plugin shares (runc, containerd, docker): the
 * container as the OCI runtime sees it, and the steps of a container dump
 * that do not depend on who manages it: metadata (spec, network, limits,
 * security), the filesystem diff and the CRIU dump configured from the
 * OCI spec.
 */
#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "format/checkpoint.h"
#include "plugins/plugin.h"
#include "util/error.h"

struct container {
        char *id;
        char *ns; /* containerd namespace, or NULL */
        pid_t init_pid;
        json_object *spec;       /* OCI runtime spec */
        char *bundle;            /* OCI bundle directory, or NULL */
        char *rootfs;            /* host path of the container's root */
        char *runtime_root;      /* the runtime's --root (runc state lives in <root>/<id>) */
        json_object *runc_state; /* <runtime_root>/<id>/state.json */
        bool rootfs_plain;       /* the root is a plain directory, not an overlay: no diff to capture */
        /* Its tmpfs mounts may be saved by cryo rather than CRIU (tmpfs.c):
         * only cryo will restore it, not dockerd or a plain runc. */
        bool own_tmpfs;
};

void container_free(struct container *c);
static inline void container_freep(struct container **c) {
        container_free(*c);
        *c = NULL;
}
#define _cleanup_container_ __attribute__((cleanup(container_freep)))

/* Interfaces (MAC, MTU, addresses) and routes inside pid's network namespace. */
int container_read_network(pid_t pid, json_object **out, struct cryo_error **err);
/* Brings up "lo" in pid's network namespace: what a fresh namespace needs
 * before CRIU rebinds sockets to 127.0.0.1 (run as an OCI prestart hook). */
int container_netns_up(pid_t pid, struct cryo_error **err);
/* Resource limits from the spec, with the live cgroup values of pid. */
json_object *container_limits(json_object *spec, pid_t pid);
/* Capabilities, no_new_privs, seccomp, LSM labels, user namespace maps:
 * from the spec and from /proc/<pid>/status. */
json_object *container_security(json_object *spec, pid_t pid);

/* CRIU options that make a container's images restorable by runc. */
struct container_criu_config {
        struct engine_pair *ext_mounts; /* owned; ends with {NULL} */
        size_t n_ext_mounts;
        char **externals; /* owned, NULL-terminated */
        char *freeze_cgroup;
        int empty_ns;
};
#define PATH_MAX_LEN 4096
int container_criu_config(const struct container *c, struct container_criu_config *cfg,
                          struct cryo_error **err);
void container_criu_config_clear(struct container_criu_config *cfg);
/* One more mount point CRIU leaves to its restorer, keyed by its path. */
int container_criu_config_add_ext_mount(struct container_criu_config *cfg, const char *mountpoint);

/*
 * The container's own tmpfs mounts, saved by cryo instead of CRIU (tmpfs.c).
 * Dump: container_tmpfs_plan() marks them external in `cfg` and lists them
 * in *plan (NULL when none, or c->own_tmpfs is false); once CRIU is done,
 * with the tree stopped, container_tmpfs_capture() archives each into the
 * checkpoint (tmpfs/N.tar) and records the list as container.tmpfs.
 * Restore: container_tmpfs_prepare() mounts and fills a tmpfs for each,
 * under `dir` (the caller detaches them once the restore is over: the
 * container's binds keep them), and writes the ext-mount-map lines of the
 * CRIU configuration to `conf`.
 */
int container_tmpfs_plan(const struct container *c, struct container_criu_config *cfg, json_object **plan,
                         struct cryo_error **err);
/* The pure part of the plan: the tmpfs mounts of a mountinfo text (parsed
 * in place) cryo may save itself, as [{path, source, options, read_only}]
 * in *out; -ENOMEM. */
int container_tmpfs_select(char *mountinfo, const struct container_criu_config *cfg, json_object **out);
int container_tmpfs_capture(const struct container *c, struct cryo_checkpoint *ck, json_object *plan,
                            struct cryo_error **err);
int container_tmpfs_prepare(const struct cryo_checkpoint *ck, const char *dir, FILE *conf,
                            struct cryo_error **err);
/* CRIU's manage-cgroups mode for restoring the checkpoint under runc: the
 * user's, else "ignore" for a tree the dump found in one set of cgroups
 * (container/dump.c), else NULL (CRIU's default). */
const char *container_restore_cgroup_mode(const struct cryo_checkpoint *ck, const struct engine_options *o);

/* The container's freezer cgroup, frozen by cryo before CRIU so that CRIU
 * skips its 100 ms freezer polling (freezer.c). */
struct container_freezer {
        int state_fd;  /* freezer.state (v1) or cgroup.freeze (v2) */
        int events_fd; /* cgroup.events (v2) */
        bool v2;
        bool frozen_by_us; /* to thaw again: it was THAWED before */
        uint64_t usec;     /* how long freezing took */
};
#define CONTAINER_FREEZER_INIT \
        { .state_fd = -1, .events_fd = -1 }
/* Freezes `cgroup` (its path under /sys/fs/cgroup) unless it is frozen
 * already, waiting for it in 1 ms steps.  On failure it is left thawed. */
int container_freeze(const char *cgroup, struct container_freezer *f, struct cryo_error **err);
/* Thaws what container_freeze() froze; nothing otherwise. */
int container_thaw(struct container_freezer *f, struct cryo_error **err);
/* Thaws (if frozen by us) and closes. */
void container_freezer_release(struct container_freezer *f);
#define _cleanup_container_freezer_ __attribute__((cleanup(container_freezer_release)))
/* CRIU records the state it found the freezer in (FROZEN, as cryo froze
 * it) in cgroup.img: puts back THAWED, the state the container had. */
int container_freezer_fix_image(int images_fd, struct cryo_error **err);

/* Reads <runtime_root>/<id>/state.json into c->runc_state (and c->rootfs). */
int container_load_runc_state(struct container *c, struct cryo_error **err);
/* The whole container dump: metadata, CRIU (unless req->rootfs_only),
 * filesystem diff.  The tree is left stopped for cryo_dump() to end. */
int container_dump(const struct container *c, const struct cryo_request *req, struct cryo_checkpoint *ck,
                   struct cryo_error **err);

/* An OCI spec mount that binds a host path. */
bool container_mount_is_bind(json_object *m);
/* Records bind mounts in the manifest; copies small files, and directories
 * with req->with_volumes, into the checkpoint. */
int container_save_binds(const struct container *c, const struct cryo_request *req,
                         struct cryo_checkpoint *ck, struct cryo_error **err);
/* Recreates a saved bind source under data_dir; *out is its new path. */
int container_restore_saved_bind(struct cryo_checkpoint *ck, const char *saved, const char *data_dir,
                                 char **out, struct cryo_error **err);

/* Writes spec.dump and network.status, and the "container" manifest
 * section (id, namespace, limits, security). */
int container_save_metadata(const struct container *c, struct cryo_checkpoint *ck, struct cryo_error **err);

/* Holds a container restored by runc at CRIU's pre-resume until the
 * checkpoint's checksums, still being computed (ckpt_verify_begin), pass;
 * if they fail, kills it and that CRIU before it runs (resume-gate.c).  CRIU must list cryo-criu-hook as an
 * action script, with `work_dir` as its work directory. */
struct resume_gate;
int resume_gate_open(const char *work_dir, struct cryo_checkpoint *ck, struct resume_gate **out,
                     struct cryo_error **err);
/* After the restore returned: 0 if the checksums passed, else their error.
 * *held: the tree was held until then (false: the hook never asked, e.g.
 * because CRIU failed before; the checksums were awaited here). */
int resume_gate_close(struct resume_gate *g, bool *held, struct cryo_error **err);
void resume_gate_free(struct resume_gate *g);
static inline void resume_gate_freep(struct resume_gate **g) {
        resume_gate_free(*g);
        *g = NULL;
}
