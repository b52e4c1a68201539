/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Read-only CRI lookups (runtime.v1.RuntimeService) on containerd's socket:
 * find the pods and containers Kubernetes created.  CRI objects live in
 * containerd namespace "k8s.io"; CRI container IDs are containerd
 * container IDs there.  Calls take a connection (e.g. ctrd_conn(client)).
 * Returned structs own their memory (free with the *_clear() functions);
 * string fields are never NULL.
 */
#include <stdbool.h>
#include <stdint.h>

#include "rpc/containerd.h"

#define CRI_CONTAINERD_NS "k8s.io"

enum cri_container_state {
        CRI_CONTAINER_CREATED = 0,
        CRI_CONTAINER_RUNNING = 1,
        CRI_CONTAINER_EXITED = 2,
        CRI_CONTAINER_UNKNOWN = 3,
};

struct cri_container {
        char *id;
        char *pod_sandbox_id;
        char *name; /* metadata.name: the container name in the pod spec */
        uint32_t attempt;
        char *image;
        char *image_ref;
        enum cri_container_state state;
        int64_t created_at; /* ns since the epoch */
        struct ctrd_labels labels, annotations;
};
struct cri_containers {
        size_t n;
        struct cri_container *items;
};
void cri_container_clear(struct cri_container *c);
void cri_containers_clear(struct cri_containers *l);

struct cri_mount {
        char *container_path, *host_path;
        bool readonly;
};
struct cri_container_status {
        struct cri_container container; /* pod_sandbox_id is not part of a status: "" */
        int64_t started_at, finished_at;
        int32_t exit_code;
        char *reason, *message, *log_path;
        size_t n_mounts;
        struct cri_mount *mounts;
};
void cri_container_status_clear(struct cri_container_status *s);

struct cri_pod {
        char *id;
        char *name, *uid, *namespace_; /* Kubernetes pod metadata */
        uint32_t attempt;
        bool ready;
        int64_t created_at;
        struct ctrd_labels labels, annotations;
        char *runtime_handler;
};
struct cri_pods {
        size_t n;
        struct cri_pod *items;
};
void cri_pod_clear(struct cri_pod *p);
void cri_pods_clear(struct cri_pods *l);

enum cri_namespace_mode { CRI_NS_POD = 0, CRI_NS_CONTAINER = 1, CRI_NS_NODE = 2, CRI_NS_TARGET = 3 };
struct cri_pod_status {
        struct cri_pod pod;
        char *ip;
        char **additional_ips; /* NULL-terminated, never NULL */
        enum cri_namespace_mode network, pid, ipc;
};
void cri_pod_status_clear(struct cri_pod_status *s);

int cri_version(struct grpc_conn *conn, char **ret_runtime_name, char **ret_runtime_version,
                struct cryo_error **err);
/* pod_sandbox_id and label_selector (all must match) may be NULL. */
int cri_list_containers(struct grpc_conn *conn, const char *pod_sandbox_id,
                        const struct ctrd_labels *label_selector, struct cri_containers *ret,
                        struct cryo_error **err);
int cri_container_status(struct grpc_conn *conn, const char *id, struct cri_container_status *ret,
                         struct cryo_error **err);
int cri_list_pods(struct grpc_conn *conn, const struct ctrd_labels *label_selector, struct cri_pods *ret,
                  struct cryo_error **err);
int cri_pod_status(struct grpc_conn *conn, const char *id, struct cri_pod_status *ret,
                   struct cryo_error **err);
