/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * A small typed containerd (v1.6 API) client over rpc/grpc.h.
 *
 * Returned structs own all their memory; release them with the matching
 * *_clear() (for structs the caller embeds or declares on the stack) and
 * never touch protobuf types.  String fields of returned structs are never
 * NULL ("" when containerd left them empty).  Input structs and strings are
 * only borrowed for the duration of a call.
 *
 * Every call carries the client's namespace (containerd-namespace) and, if
 * set, its lease (containerd-lease): content and snapshots created while a
 * lease is set are protected from containerd's garbage collector until the
 * lease is deleted.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rpc/grpc.h"
#include "util/cleanup.h"
#include "util/error.h"

#define CTRD_DEFAULT_ADDRESS     "/run/containerd/containerd.sock"
#define CTRD_DEFAULT_NAMESPACE   "default"
#define CTRD_DEFAULT_SNAPSHOTTER "overlayfs"
#define CTRD_DEFAULT_TIMEOUT_MS  30000
/* type_url values containerd uses for the Any payloads we deal with. */
#define CTRD_TYPE_OCI_SPEC        "types.containerd.io/opencontainers/runtime-spec/1/Spec"
#define CTRD_TYPE_RUNC_OPTIONS    "containerd.runc.v1.Options"
#define CTRD_TYPE_RUNC_CHECKPOINT "containerd.runc.v1.CheckpointOptions"
/* Label that makes containerd's GC drop a lease after this RFC 3339 time. */
#define CTRD_LABEL_GC_EXPIRE "containerd.io/gc.expire"

struct ctrd_client;

/* address NULL: CTRD_DEFAULT_ADDRESS; namespace NULL: "default".  Fails
 * with a message naming the socket when containerd is not there. */
int ctrd_open(const char *address, const char *namespace_, struct ctrd_client **ret,
              struct cryo_error **err);
void ctrd_close(struct ctrd_client *c);
static inline void ctrd_closep(struct ctrd_client **c) {
        if (*c)
                ctrd_close(*c);
}
#define _cleanup_ctrd_client_ _cleanup_(ctrd_closep)

int ctrd_set_namespace(struct ctrd_client *c, const char *namespace_, struct cryo_error **err);
const char *ctrd_namespace(const struct ctrd_client *c);
/* NULL clears the lease. */
int ctrd_set_lease(struct ctrd_client *c, const char *lease_id, struct cryo_error **err);
/* Per-call timeout (ms, GRPC_NO_TIMEOUT for none).  Default 30 s. */
void ctrd_set_timeout(struct ctrd_client *c, int timeout_ms);
/* For raw calls: the connection and the metadata list to pass along. */
struct grpc_conn *ctrd_conn(struct ctrd_client *c);
const char *const *ctrd_metadata(const struct ctrd_client *c);

/* ---- common value types ---- */

struct ctrd_label {
        char *key, *value;
};
struct ctrd_labels {
        size_t n;
        struct ctrd_label *items;
};
const char *ctrd_labels_get(const struct ctrd_labels *l, const char *key);
/* Adds or replaces (copies both strings). */
int ctrd_labels_set(struct ctrd_labels *l, const char *key, const char *value);
void ctrd_labels_clear(struct ctrd_labels *l);

/* google.protobuf.Any: a type URL and the packed bytes of that type. */
struct ctrd_any {
        char *type_url;
        uint8_t *value;
        size_t len;
};
void ctrd_any_clear(struct ctrd_any *a);

struct ctrd_mount {
        char *type, *source, *target;
        char **options; /* NULL-terminated, never NULL */
};
struct ctrd_mounts {
        size_t n;
        struct ctrd_mount *items;
};
void ctrd_mounts_clear(struct ctrd_mounts *m);

struct ctrd_descriptor {
        char *media_type;
        char *digest; /* "sha256:<hex>" */
        int64_t size;
        struct ctrd_labels annotations;
};
struct ctrd_descriptors {
        size_t n;
        struct ctrd_descriptor *items;
};
void ctrd_descriptor_clear(struct ctrd_descriptor *d);
void ctrd_descriptors_clear(struct ctrd_descriptors *d);

/* ---- version, namespaces ---- */

int ctrd_version(struct ctrd_client *c, char **ret_version, char **ret_revision, struct cryo_error **err);
/* 1 if the namespace exists, 0 if not, <0 on error. */
int ctrd_namespace_exists(struct ctrd_client *c, const char *name, struct cryo_error **err);
/* NULL-terminated list (free with cryo_strv_free). */
int ctrd_namespace_list(struct ctrd_client *c, char ***ret_names, struct cryo_error **err);

/* ---- containers ---- */

struct ctrd_container {
        char *id;
        struct ctrd_labels labels;
        char *image;
        char *runtime_name;              /* "io.containerd.runc.v2" */
        struct ctrd_any runtime_options; /* CTRD_TYPE_RUNC_OPTIONS for runc */
        struct ctrd_any spec;            /* value: the OCI runtime spec as JSON */
        char *snapshotter;
        char *snapshot_key;
};
struct ctrd_containers {
        size_t n;
        struct ctrd_container *items;
};
void ctrd_container_clear(struct ctrd_container *ct);
void ctrd_containers_clear(struct ctrd_containers *l);

int ctrd_container_get(struct ctrd_client *c, const char *id, struct ctrd_container *ret,
                       struct cryo_error **err);
/* filter: containerd filter syntax ("labels.\"a\"==b"), NULL for all. */
int ctrd_container_list(struct ctrd_client *c, const char *filter, struct ctrd_containers *ret,
                        struct cryo_error **err);
/* spec.type_url NULL means CTRD_TYPE_OCI_SPEC; runtime_options may be
 * empty.  -EEXIST if the id is taken. */
int ctrd_container_create(struct ctrd_client *c, const struct ctrd_container *ct, struct cryo_error **err);
int ctrd_container_delete(struct ctrd_client *c, const char *id, struct cryo_error **err);

/* ---- tasks ---- */

enum ctrd_task_status {
        CTRD_TASK_UNKNOWN = 0,
        CTRD_TASK_CREATED = 1,
        CTRD_TASK_RUNNING = 2,
        CTRD_TASK_STOPPED = 3,
        CTRD_TASK_PAUSED = 4,
        CTRD_TASK_PAUSING = 5,
};
const char *ctrd_task_status_name(enum ctrd_task_status s);

struct ctrd_process {
        char *container_id;
        char *exec_id; /* "" for the init process */
        uint32_t pid;
        enum ctrd_task_status status;
        char *stdin_path, *stdout_path, *stderr_path;
        bool terminal;
        uint32_t exit_status;
};
struct ctrd_processes {
        size_t n;
        struct ctrd_process *items;
};
void ctrd_process_clear(struct ctrd_process *p);
void ctrd_processes_clear(struct ctrd_processes *l);

struct ctrd_task_opts {
        const char *container_id;
        const struct ctrd_mount *rootfs; /* pre-chroot mounts done by the shim */
        size_t n_rootfs;
        const char *stdin_path, *stdout_path, *stderr_path; /* FIFOs or files, may be NULL */
        bool terminal;
        const struct ctrd_descriptor *checkpoint; /* restore from this checkpoint, may be NULL */
        const struct ctrd_any *options;           /* runtime options, may be NULL */
        const char *runtime_path;
};

int ctrd_task_get(struct ctrd_client *c, const char *container_id, struct ctrd_process *ret,
                  struct cryo_error **err);
/* The init processes of all tasks in the namespace.  (containerd puts the
 * container ID into `id` there; we copy it into container_id.) */
int ctrd_task_list(struct ctrd_client *c, struct ctrd_processes *ret, struct cryo_error **err);
int ctrd_task_create(struct ctrd_client *c, const struct ctrd_task_opts *o, uint32_t *ret_pid,
                     struct cryo_error **err);
int ctrd_task_start(struct ctrd_client *c, const char *container_id, uint32_t *ret_pid,
                    struct cryo_error **err);
int ctrd_task_kill(struct ctrd_client *c, const char *container_id, int signal, bool all,
                   struct cryo_error **err);
int ctrd_task_delete(struct ctrd_client *c, const char *container_id, uint32_t *ret_exit_status,
                     struct cryo_error **err);
/* Blocks until the task exits or timeout_ms passes (-ETIMEDOUT). */
int ctrd_task_wait(struct ctrd_client *c, const char *container_id, int timeout_ms,
                   uint32_t *ret_exit_status, struct cryo_error **err);
int ctrd_task_pause(struct ctrd_client *c, const char *container_id, struct cryo_error **err);
int ctrd_task_resume(struct ctrd_client *c, const char *container_id, struct cryo_error **err);
/* options: e.g. from ctrd_runc_checkpoint_options(); may be NULL.  Returns
 * the descriptors of what containerd stored in its content store. */
int ctrd_task_checkpoint(struct ctrd_client *c, const char *container_id, const struct ctrd_any *options,
                         struct ctrd_descriptors *ret, struct cryo_error **err);

/* ---- runc shim options (the Any payloads above) ---- */

struct ctrd_runc_options {
        char *binary_name; /* "" means "runc" */
        char *root;        /* runc --root; "" means the shim default /run/containerd/runc */
        char *criu_path;
        char *criu_image_path;
        char *criu_work_path;
        char *shim_cgroup;
        bool systemd_cgroup;
        bool no_pivot_root;
        bool no_new_keyring;
        uint32_t io_uid, io_gid;
};
void ctrd_runc_options_clear(struct ctrd_runc_options *o);
/* An empty Any (no bytes) decodes to all defaults. */
int ctrd_runc_options_decode(const struct ctrd_any *any, struct ctrd_runc_options *ret,
                             struct cryo_error **err);
int ctrd_runc_options_encode(const struct ctrd_runc_options *o, struct ctrd_any *ret,
                             struct cryo_error **err);

struct ctrd_runc_checkpoint_opts {
        bool exit; /* stop the task after the checkpoint */
        bool open_tcp;
        bool external_unix_sockets;
        bool terminal;
        bool file_locks;
        const char *const *empty_namespaces; /* NULL-terminated, may be NULL */
        const char *cgroups_mode;            /* "soft", "full", "strict", "ignore" or NULL */
        const char *image_path;              /* leave CRIU images here instead of the content store */
        const char *work_path;
};
int ctrd_runc_checkpoint_options(const struct ctrd_runc_checkpoint_opts *o, struct ctrd_any *ret,
                                 struct cryo_error **err);

/* ---- images ---- */

struct ctrd_image {
        char *name;
        struct ctrd_labels labels;
        struct ctrd_descriptor target;
};
struct ctrd_images {
        size_t n;
        struct ctrd_image *items;
};
void ctrd_image_clear(struct ctrd_image *img);
void ctrd_images_clear(struct ctrd_images *l);

int ctrd_image_get(struct ctrd_client *c, const char *name, struct ctrd_image *ret, struct cryo_error **err);
int ctrd_image_list(struct ctrd_client *c, const char *filter, struct ctrd_images *ret,
                    struct cryo_error **err);
int ctrd_image_create(struct ctrd_client *c, const struct ctrd_image *img, struct cryo_error **err);
int ctrd_image_delete(struct ctrd_client *c, const char *name, bool sync, struct cryo_error **err);

/* ---- content store ---- */

struct ctrd_content_info {
        char *digest;
        int64_t size;
        struct ctrd_labels labels;
};
void ctrd_content_info_clear(struct ctrd_content_info *i);

int ctrd_content_info(struct ctrd_client *c, const char *digest, struct ctrd_content_info *ret,
                      struct cryo_error **err);
/* Streams the blob into fd (written sequentially) and checks its sha256
 * against the digest.  *ret_size (optional) gets the byte count. */
int ctrd_content_read_to_fd(struct ctrd_client *c, const char *digest, int fd, int64_t *ret_size,
                            struct cryo_error **err);
/*
 * Uploads `size` bytes read sequentially from fd (size < 0: until EOF)
 * under the ingest reference `ref` and commits them with `labels`.
 * expected_digest may be NULL (we compute the sha256 anyway and the server
 * checks it).  When the blob already exists, succeeds and -- if a lease is
 * set -- adds the blob to the lease so that it is protected as well.
 * *ret_digest (optional) gets "sha256:<hex>".  On failure the ingest is
 * aborted; where fd was left is unspecified.
 */
int ctrd_content_write_from_fd(struct ctrd_client *c, int fd, int64_t size, const char *ref,
                               const char *expected_digest, const struct ctrd_labels *labels,
                               char **ret_digest, struct cryo_error **err);
int ctrd_content_delete(struct ctrd_client *c, const char *digest, struct cryo_error **err);

/* ---- snapshots (snapshotter NULL: CTRD_DEFAULT_SNAPSHOTTER) ---- */

enum ctrd_snapshot_kind {
        CTRD_SNAPSHOT_UNKNOWN = 0,
        CTRD_SNAPSHOT_VIEW = 1,
        CTRD_SNAPSHOT_ACTIVE = 2,
        CTRD_SNAPSHOT_COMMITTED = 3,
};
struct ctrd_snapshot_info {
        char *name;
        char *parent;
        enum ctrd_snapshot_kind kind;
        struct ctrd_labels labels;
};
void ctrd_snapshot_info_clear(struct ctrd_snapshot_info *i);

/* parent may be NULL or "" (an empty snapshot); ret may be NULL. */
int ctrd_snapshot_prepare(struct ctrd_client *c, const char *snapshotter, const char *key,
                          const char *parent, const struct ctrd_labels *labels, struct ctrd_mounts *ret,
                          struct cryo_error **err);
int ctrd_snapshot_view(struct ctrd_client *c, const char *snapshotter, const char *key, const char *parent,
                       const struct ctrd_labels *labels, struct ctrd_mounts *ret, struct cryo_error **err);
int ctrd_snapshot_mounts(struct ctrd_client *c, const char *snapshotter, const char *key,
                         struct ctrd_mounts *ret, struct cryo_error **err);
int ctrd_snapshot_commit(struct ctrd_client *c, const char *snapshotter, const char *name, const char *key,
                         const struct ctrd_labels *labels, struct cryo_error **err);
int ctrd_snapshot_remove(struct ctrd_client *c, const char *snapshotter, const char *key,
                         struct cryo_error **err);
int ctrd_snapshot_stat(struct ctrd_client *c, const char *snapshotter, const char *key,
                       struct ctrd_snapshot_info *ret, struct cryo_error **err);

/* ---- leases ---- */

/* id NULL: a unique "cryo-<time>-<random>" id.  *ret_id optional. */
int ctrd_lease_create(struct ctrd_client *c, const char *id, const struct ctrd_labels *labels, char **ret_id,
                      struct cryo_error **err);
/* sync: wait for the garbage collection the deletion triggers. */
int ctrd_lease_delete(struct ctrd_client *c, const char *id, bool sync, struct cryo_error **err);
/* type: "content" (id = digest) or "snapshots/<snapshotter>" (id = key). */
int ctrd_lease_add_resource(struct ctrd_client *c, const char *lease_id, const char *type, const char *id,
                            struct cryo_error **err);

/* ---- events ---- */

struct ctrd_event {
        int64_t timestamp_ns;
        char *namespace_;
        char *topic; /* "/tasks/exit", ... */
        struct ctrd_any event;
};
void ctrd_event_clear(struct ctrd_event *e);

struct ctrd_events;
/* filters: NULL-terminated containerd event filters, e.g.
 * "namespace==default,topic~=/tasks/"; NULL for everything (all
 * namespaces!).  The subscription uses the client's connection: free it
 * before the client. */
int ctrd_events_subscribe(struct ctrd_client *c, const char *const *filters, struct ctrd_events **ret,
                          struct cryo_error **err);
/* 1 with an event, -EAGAIN after wait_ms without one (err untouched),
 * other <0 on failure. */
int ctrd_events_next(struct ctrd_events *ev, int wait_ms, struct ctrd_event *ret, struct cryo_error **err);
void ctrd_events_free(struct ctrd_events *ev);
static inline void ctrd_events_freep(struct ctrd_events **e) {
        if (*e)
                ctrd_events_free(*e);
}
#define _cleanup_ctrd_events_ _cleanup_(ctrd_events_freep)
