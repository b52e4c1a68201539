/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "cri.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cri_runtime.pb-c.h"
#include "pb-internal.h"

#define SVC_CRI "/runtime.v1.RuntimeService/"
#define R(x)    Runtime__V1__##x
#define R_D(x)  runtime__v1__##x##__descriptor

#define PB_REQ(type, desc, var) \
        type var;               \
        protobuf_c_message_init(&(desc), &var)

static int call(struct grpc_conn *conn, const char *path, const void *req,
                const ProtobufCMessageDescriptor *d, void *resp, struct cryo_error **err) {
        return grpc_unary(conn, path, NULL, req, d, resp, CTRD_DEFAULT_TIMEOUT_MS, err);
}

static int oom(struct cryo_error **err) {
        return cryo_error_errno(err, ENOMEM, "CRI client");
}

/* strdup that accepts NULL (unset message fields) as "". */
static char *dup0(const char *s) {
        return strdup(s ? s : "");
}

void cri_container_clear(struct cri_container *c) {
        free(c->id);
        free(c->pod_sandbox_id);
        free(c->name);
        free(c->image);
        free(c->image_ref);
        ctrd_labels_clear(&c->labels);
        ctrd_labels_clear(&c->annotations);
        *c = (struct cri_container){0};
}

void cri_containers_clear(struct cri_containers *l) {
        for (size_t i = 0; i < l->n; i++)
                cri_container_clear(&l->items[i]);
        free(l->items);
        *l = (struct cri_containers){0};
}

static int container_fill(struct cri_container *out, const char *id, const char *pod,
                          const R(ContainerMetadata) * md, const R(ImageSpec) * img, const char *image_ref,
                          int state, int64_t created_at) {
        *out = (struct cri_container){
                .id = dup0(id),
                .pod_sandbox_id = dup0(pod),
                .name = dup0(md ? md->name : NULL),
                .attempt = md ? md->attempt : 0,
                .image = dup0(img ? img->image : NULL),
                .image_ref = dup0(image_ref),
                .state = (enum cri_container_state) state,
                .created_at = created_at,
        };
        return out->id && out->pod_sandbox_id && out->name && out->image && out->image_ref ? 0 : -ENOMEM;
}

int cri_version(struct grpc_conn *conn, char **ret_runtime_name, char **ret_runtime_version,
                struct cryo_error **err) {
        PB_REQ(R(VersionRequest), R_D(version_request), req);
        req.version = "v1";
        _cleanup_pb_ R(VersionResponse) *resp = NULL;
        int r = call(conn, SVC_CRI "Version", &req, &R_D(version_response), &resp, err);
        if (r < 0)
                return r;
        _cleanup_free_ char *name = dup0(resp->runtime_name), *version = dup0(resp->runtime_version);
        if (!name || !version)
                return oom(err);
        if (ret_runtime_name)
                *ret_runtime_name = steal_pointer(&name);
        if (ret_runtime_version)
                *ret_runtime_version = steal_pointer(&version);
        return 0;
}

int cri_list_containers(struct grpc_conn *conn, const char *pod_sandbox_id,
                        const struct ctrd_labels *label_selector, struct cri_containers *ret,
                        struct cryo_error **err) {
        PB_REQ(R(ContainerFilter), R_D(container_filter), filter);
        filter.pod_sandbox_id = (char *) (pod_sandbox_id ? pod_sandbox_id : "");
        _cleanup_free_ void *sel = NULL;
        if (rpc_labels_to_pb(label_selector, &R_D(container_filter__label_selector_entry),
                             &filter.n_label_selector, &sel) < 0)
                return oom(err);
        filter.label_selector = sel;
        PB_REQ(R(ListContainersRequest), R_D(list_containers_request), req);
        req.filter = &filter;
        _cleanup_pb_ R(ListContainersResponse) *resp = NULL;
        int r = call(conn, SVC_CRI "ListContainers", &req, &R_D(list_containers_response), &resp, err);
        if (r < 0)
                return r;
        *ret = (struct cri_containers){0};
        if (resp->n_containers == 0)
                return 0;
        if (!(ret->items = calloc(resp->n_containers, sizeof(*ret->items))))
                return oom(err);
        for (size_t i = 0; i < resp->n_containers; i++) {
                const R(Container) *c = resp->containers[i];
                struct cri_container *o = &ret->items[ret->n++];
                if (container_fill(o, c->id, c->pod_sandbox_id, c->metadata, c->image, c->image_ref,
                                   c->state, c->created_at) < 0 ||
                    rpc_labels_from_pb(&o->labels, c->n_labels, c->labels) < 0 ||
                    rpc_labels_from_pb(&o->annotations, c->n_annotations, c->annotations) < 0) {
                        cri_containers_clear(ret);
                        return oom(err);
                }
        }
        return 0;
}

void cri_container_status_clear(struct cri_container_status *s) {
        cri_container_clear(&s->container);
        free(s->reason);
        free(s->message);
        free(s->log_path);
        for (size_t i = 0; i < s->n_mounts; i++) {
                free(s->mounts[i].container_path);
                free(s->mounts[i].host_path);
        }
        free(s->mounts);
        *s = (struct cri_container_status){0};
}

static int container_status_from_pb(struct cri_container_status *out, const R(ContainerStatus) * st) {
        *out = (struct cri_container_status){0};
        if (container_fill(&out->container, st->id, NULL, st->metadata, st->image, st->image_ref, st->state,
                           st->created_at) < 0 ||
            rpc_labels_from_pb(&out->container.labels, st->n_labels, st->labels) < 0 ||
            rpc_labels_from_pb(&out->container.annotations, st->n_annotations, st->annotations) < 0)
                return -ENOMEM;
        out->started_at = st->started_at;
        out->finished_at = st->finished_at;
        out->exit_code = st->exit_code;
        out->reason = dup0(st->reason);
        out->message = dup0(st->message);
        out->log_path = dup0(st->log_path);
        if (!out->reason || !out->message || !out->log_path)
                return -ENOMEM;
        if (st->n_mounts && !(out->mounts = calloc(st->n_mounts, sizeof(*out->mounts))))
                return -ENOMEM;
        for (size_t i = 0; i < st->n_mounts; i++) {
                struct cri_mount *m = &out->mounts[out->n_mounts++];
                m->container_path = dup0(st->mounts[i]->container_path);
                m->host_path = dup0(st->mounts[i]->host_path);
                m->readonly = st->mounts[i]->readonly;
                if (!m->container_path || !m->host_path)
                        return -ENOMEM;
        }
        return 0;
}

int cri_container_status(struct grpc_conn *conn, const char *id, struct cri_container_status *ret,
                         struct cryo_error **err) {
        PB_REQ(R(ContainerStatusRequest), R_D(container_status_request), req);
        req.container_id = (char *) id;
        _cleanup_pb_ R(ContainerStatusResponse) *resp = NULL;
        int r = call(conn, SVC_CRI "ContainerStatus", &req, &R_D(container_status_response), &resp, err);
        if (r < 0)
                return r;
        if (!resp->status)
                return cryo_error_set(err, EPROTO, "CRI ContainerStatus: empty answer for %s", id);
        if (container_status_from_pb(ret, resp->status) < 0) {
                cri_container_status_clear(ret);
                return oom(err);
        }
        return 0;
}

void cri_pod_clear(struct cri_pod *p) {
        free(p->id);
        free(p->name);
        free(p->uid);
        free(p->namespace_);
        free(p->runtime_handler);
        ctrd_labels_clear(&p->labels);
        ctrd_labels_clear(&p->annotations);
        *p = (struct cri_pod){0};
}

void cri_pods_clear(struct cri_pods *l) {
        for (size_t i = 0; i < l->n; i++)
                cri_pod_clear(&l->items[i]);
        free(l->items);
        *l = (struct cri_pods){0};
}

static int pod_fill(struct cri_pod *out, const char *id, const R(PodSandboxMetadata) * md, int state,
                    int64_t created_at, const char *handler) {
        *out = (struct cri_pod){
                .id = dup0(id),
                .name = dup0(md ? md->name : NULL),
                .uid = dup0(md ? md->uid : NULL),
                .namespace_ = dup0(md ? md->namespace_ : NULL),
                .attempt = md ? md->attempt : 0,
                .ready = state == RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_READY,
                .created_at = created_at,
                .runtime_handler = dup0(handler),
        };
        return out->id && out->name && out->uid && out->namespace_ && out->runtime_handler ? 0 : -ENOMEM;
}

int cri_list_pods(struct grpc_conn *conn, const struct ctrd_labels *label_selector, struct cri_pods *ret,
                  struct cryo_error **err) {
        PB_REQ(R(PodSandboxFilter), R_D(pod_sandbox_filter), filter);
        _cleanup_free_ void *sel = NULL;
        if (rpc_labels_to_pb(label_selector, &R_D(pod_sandbox_filter__label_selector_entry),
                             &filter.n_label_selector, &sel) < 0)
                return oom(err);
        filter.label_selector = sel;
        PB_REQ(R(ListPodSandboxRequest), R_D(list_pod_sandbox_request), req);
        req.filter = &filter;
        _cleanup_pb_ R(ListPodSandboxResponse) *resp = NULL;
        int r = call(conn, SVC_CRI "ListPodSandbox", &req, &R_D(list_pod_sandbox_response), &resp, err);
        if (r < 0)
                return r;
        *ret = (struct cri_pods){0};
        if (resp->n_items == 0)
                return 0;
        if (!(ret->items = calloc(resp->n_items, sizeof(*ret->items))))
                return oom(err);
        for (size_t i = 0; i < resp->n_items; i++) {
                const R(PodSandbox) *p = resp->items[i];
                struct cri_pod *o = &ret->items[ret->n++];
                if (pod_fill(o, p->id, p->metadata, p->state, p->created_at, p->runtime_handler) < 0 ||
                    rpc_labels_from_pb(&o->labels, p->n_labels, p->labels) < 0 ||
                    rpc_labels_from_pb(&o->annotations, p->n_annotations, p->annotations) < 0) {
                        cri_pods_clear(ret);
                        return oom(err);
                }
        }
        return 0;
}

void cri_pod_status_clear(struct cri_pod_status *s) {
        cri_pod_clear(&s->pod);
        free(s->ip);
        cryo_strv_free(s->additional_ips);
        *s = (struct cri_pod_status){0};
}

static int pod_status_from_pb(struct cri_pod_status *out, const R(PodSandboxStatus) * st) {
        *out = (struct cri_pod_status){0};
        if (pod_fill(&out->pod, st->id, st->metadata, st->state, st->created_at, st->runtime_handler) < 0 ||
            rpc_labels_from_pb(&out->pod.labels, st->n_labels, st->labels) < 0 ||
            rpc_labels_from_pb(&out->pod.annotations, st->n_annotations, st->annotations) < 0)
                return -ENOMEM;
        const R(PodSandboxNetworkStatus) *net = st->network;
        out->ip = dup0(net ? net->ip : NULL);
        size_t n = net ? net->n_additional_ips : 0;
        out->additional_ips = calloc(n + 1, sizeof(char *));
        if (!out->ip || !out->additional_ips)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                if (!(out->additional_ips[i] = dup0(net->additional_ips[i]->ip)))
                        return -ENOMEM;
        const R(NamespaceOption) *ns = st->linux_status && st->linux_status->namespaces
                                               ? st->linux_status->namespaces->options
                                               : NULL;
        if (ns) {
                out->network = (enum cri_namespace_mode) ns->network;
                out->pid = (enum cri_namespace_mode) ns->pid;
                out->ipc = (enum cri_namespace_mode) ns->ipc;
        }
        return 0;
}

int cri_pod_status(struct grpc_conn *conn, const char *id, struct cri_pod_status *ret,
                   struct cryo_error **err) {
        PB_REQ(R(PodSandboxStatusRequest), R_D(pod_sandbox_status_request), req);
        req.pod_sandbox_id = (char *) id;
        _cleanup_pb_ R(PodSandboxStatusResponse) *resp = NULL;
        int r = call(conn, SVC_CRI "PodSandboxStatus", &req, &R_D(pod_sandbox_status_response), &resp, err);
        if (r < 0)
                return r;
        if (!resp->status)
                return cryo_error_set(err, EPROTO, "CRI PodSandboxStatus: empty answer for %s", id);
        if (pod_status_from_pb(ret, resp->status) < 0) {
                cri_pod_status_clear(ret);
                return oom(err);
        }
        return 0;
}
