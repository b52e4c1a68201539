/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "containerd.h"
#include "pb-internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "containerd_containers.pb-c.h"
#include "containerd_content.pb-c.h"
#include "containerd_events.pb-c.h"
#include "containerd_images.pb-c.h"
#include "containerd_leases.pb-c.h"
#include "containerd_namespaces.pb-c.h"
#include "containerd_snapshots.pb-c.h"
#include "containerd_tasks.pb-c.h"
#include "containerd_version.pb-c.h"
#include "google_protobuf.pb-c.h"
#include "runc_options.pb-c.h"
#include "util/fs.h"
#include "util/sha256.h"

#define CONNECT_TIMEOUT_MS 5000
/* Content.Write chunk: well under containerd's 16 MiB message cap. */
#define WRITE_CHUNK (1 << 20)
/* Content.Write answers every request; this many may be in flight. */
#define WRITE_WINDOW 4

#define SVC_VERSION    "/containerd.services.version.v1.Version/"
#define SVC_NAMESPACES "/containerd.services.namespaces.v1.Namespaces/"
#define SVC_CONTAINERS "/containerd.services.containers.v1.Containers/"
#define SVC_TASKS      "/containerd.services.tasks.v1.Tasks/"
#define SVC_IMAGES     "/containerd.services.images.v1.Images/"
#define SVC_CONTENT    "/containerd.services.content.v1.Content/"
#define SVC_SNAPSHOTS  "/containerd.services.snapshots.v1.Snapshots/"
#define SVC_LEASES     "/containerd.services.leases.v1.Leases/"
#define SVC_EVENTS     "/containerd.services.events.v1.Events/"

/* Shorter names for the generated types and descriptors. */
#define CT(x)   Containerd__Services__Containers__V1__##x
#define CT_D(x) containerd__services__containers__v1__##x##__descriptor
#define TK(x)   Containerd__Services__Tasks__V1__##x
#define TK_D(x) containerd__services__tasks__v1__##x##__descriptor
#define IM(x)   Containerd__Services__Images__V1__##x
#define IM_D(x) containerd__services__images__v1__##x##__descriptor
#define CN(x)   Containerd__Services__Content__V1__##x
#define CN_D(x) containerd__services__content__v1__##x##__descriptor
#define SN(x)   Containerd__Services__Snapshots__V1__##x
#define SN_D(x) containerd__services__snapshots__v1__##x##__descriptor
#define LS(x)   Containerd__Services__Leases__V1__##x
#define LS_D(x) containerd__services__leases__v1__##x##__descriptor
#define NS(x)   Containerd__Services__Namespaces__V1__##x
#define NS_D(x) containerd__services__namespaces__v1__##x##__descriptor
#define EMPTY_D google__protobuf__empty__descriptor

/* Declares a request message initialised from its descriptor. */
#define PB_REQ(type, desc, var) \
        type var;               \
        protobuf_c_message_init(&(desc), &var)

struct ctrd_client {
        struct grpc_conn *conn;
        char *namespace_;
        char *lease;
        int timeout_ms;
        const char *md[5];
};

static char *S(const char *s) {
        /* protobuf-c wants "" rather than NULL for unset strings. */
        return (char *) (s ? s : "");
}

static void update_metadata(struct ctrd_client *c) {
        size_t n = 0;
        c->md[n++] = "containerd-namespace";
        c->md[n++] = c->namespace_;
        if (c->lease) {
                c->md[n++] = "containerd-lease";
                c->md[n++] = c->lease;
        }
        c->md[n] = NULL;
}

static int oom(struct cryo_error **err) {
        return cryo_error_errno(err, ENOMEM, "containerd client");
}

static int call(struct ctrd_client *c, const char *path, const void *req,
                const ProtobufCMessageDescriptor *d, void *resp, struct cryo_error **err) {
        return grpc_unary(c->conn, path, c->md, req, d, resp, c->timeout_ms, err);
}

/* For methods returning google.protobuf.Empty. */
static int call_empty(struct ctrd_client *c, const char *path, const void *req, struct cryo_error **err) {
        _cleanup_pb_ Google__Protobuf__Empty *e = NULL;
        return call(c, path, req, &EMPTY_D, &e, err);
}

int ctrd_open(const char *address, const char *namespace_, struct ctrd_client **ret,
              struct cryo_error **err) {
        _cleanup_ctrd_client_ struct ctrd_client *c = calloc(1, sizeof(*c));
        if (!c)
                return oom(err);
        c->timeout_ms = CTRD_DEFAULT_TIMEOUT_MS;
        c->namespace_ = strdup(namespace_ ? namespace_ : CTRD_DEFAULT_NAMESPACE);
        if (!c->namespace_)
                return oom(err);
        update_metadata(c);
        int r = grpc_connect(address ? address : CTRD_DEFAULT_ADDRESS, "containerd", CONNECT_TIMEOUT_MS,
                             &c->conn, err);
        if (r < 0)
                return r;
        *ret = steal_pointer(&c);
        return 0;
}

void ctrd_close(struct ctrd_client *c) {
        if (!c)
                return;
        grpc_conn_free(c->conn);
        free(c->namespace_);
        free(c->lease);
        free(c);
}

int ctrd_set_namespace(struct ctrd_client *c, const char *namespace_, struct cryo_error **err) {
        if (!namespace_ || !*namespace_)
                return cryo_error_set(err, EINVAL, "empty containerd namespace");
        char *ns = strdup(namespace_);
        if (!ns)
                return oom(err);
        free(c->namespace_);
        c->namespace_ = ns;
        update_metadata(c);
        return 0;
}

const char *ctrd_namespace(const struct ctrd_client *c) {
        return c->namespace_;
}

int ctrd_set_lease(struct ctrd_client *c, const char *lease_id, struct cryo_error **err) {
        char *l = NULL;
        if (lease_id && !(l = strdup(lease_id)))
                return oom(err);
        free(c->lease);
        c->lease = l;
        update_metadata(c);
        return 0;
}

void ctrd_set_timeout(struct ctrd_client *c, int timeout_ms) {
        c->timeout_ms = timeout_ms;
}

struct grpc_conn *ctrd_conn(struct ctrd_client *c) {
        return c->conn;
}

const char *const *ctrd_metadata(const struct ctrd_client *c) {
        return c->md;
}

/* ---- value types: ours <-> protobuf ---- */

const char *ctrd_labels_get(const struct ctrd_labels *l, const char *key) {
        for (size_t i = 0; l && i < l->n; i++)
                if (strcmp(l->items[i].key, key) == 0)
                        return l->items[i].value;
        return NULL;
}

int ctrd_labels_set(struct ctrd_labels *l, const char *key, const char *value) {
        char *v = strdup(value);
        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < l->n; i++)
                if (strcmp(l->items[i].key, key) == 0) {
                        free(l->items[i].value);
                        l->items[i].value = v;
                        return 0;
                }
        char *k = strdup(key);
        struct ctrd_label *items = k ? realloc(l->items, (l->n + 1) * sizeof(*items)) : NULL;
        if (!items) {
                free(k);
                free(v);
                return -ENOMEM;
        }
        items[l->n++] = (struct ctrd_label){k, v};
        l->items = items;
        return 0;
}

void ctrd_labels_clear(struct ctrd_labels *l) {
        for (size_t i = 0; i < l->n; i++) {
                free(l->items[i].key);
                free(l->items[i].value);
        }
        free(l->items);
        *l = (struct ctrd_labels){0};
}

int rpc_labels_from_pb(struct ctrd_labels *out, size_t n, void *entries) {
        struct pb_map_entry **e = entries;
        *out = (struct ctrd_labels){0};
        for (size_t i = 0; i < n; i++)
                if (ctrd_labels_set(out, S(e[i]->key), S(e[i]->value)) < 0)
                        return -ENOMEM;
        return 0;
}

int rpc_labels_to_pb(const struct ctrd_labels *l, const ProtobufCMessageDescriptor *entry_desc,
                     size_t *ret_n, void *ret) {
        *ret_n = 0;
        *(void **) ret = NULL;
        if (!l || l->n == 0)
                return 0;
        void **ptrs = calloc(1, l->n * (sizeof(void *) + sizeof(struct pb_map_entry)));
        if (!ptrs)
                return -ENOMEM;
        struct pb_map_entry *e = (struct pb_map_entry *) (ptrs + l->n);
        for (size_t i = 0; i < l->n; i++) {
                protobuf_c_message_init(entry_desc, &e[i]);
                e[i].key = S(l->items[i].key);
                e[i].value = S(l->items[i].value);
                ptrs[i] = &e[i];
        }
        *ret_n = l->n;
        *(void **) ret = ptrs;
        return 0;
}

void ctrd_any_clear(struct ctrd_any *a) {
        free(a->type_url);
        free(a->value);
        *a = (struct ctrd_any){0};
}

static int any_from_pb(struct ctrd_any *out, const Google__Protobuf__Any *a) {
        *out = (struct ctrd_any){0};
        out->type_url = strdup(a ? S(a->type_url) : "");
        out->value = malloc(a && a->value.len ? a->value.len : 1);
        if (!out->type_url || !out->value)
                return -ENOMEM;
        if (a && a->value.len)
                memcpy(out->value, a->value.data, a->value.len);
        out->len = a ? a->value.len : 0;
        return 0;
}

/* Fills an Any pointing at the caller's bytes. */
static Google__Protobuf__Any *any_to_pb(Google__Protobuf__Any *dst, const struct ctrd_any *src,
                                        const char *default_type) {
        if (!src || (!src->type_url && src->len == 0 && !default_type))
                return NULL;
        protobuf_c_message_init(&google__protobuf__any__descriptor, dst);
        dst->type_url = S(src && src->type_url ? src->type_url : default_type);
        dst->value.data = src ? src->value : NULL;
        dst->value.len = src ? src->len : 0;
        return dst;
}

void ctrd_mounts_clear(struct ctrd_mounts *m) {
        for (size_t i = 0; i < m->n; i++) {
                free(m->items[i].type);
                free(m->items[i].source);
                free(m->items[i].target);
                cryo_strv_free(m->items[i].options);
        }
        free(m->items);
        *m = (struct ctrd_mounts){0};
}

static int mounts_from_pb(struct ctrd_mounts *out, size_t n, Containerd__Types__Mount **m) {
        *out = (struct ctrd_mounts){0};
        if (n == 0)
                return 0;
        out->items = calloc(n, sizeof(*out->items));
        if (!out->items)
                return -ENOMEM;
        out->n = n;
        for (size_t i = 0; i < n; i++) {
                struct ctrd_mount *d = &out->items[i];
                d->type = strdup(S(m[i]->type));
                d->source = strdup(S(m[i]->source));
                d->target = strdup(S(m[i]->target));
                d->options = calloc(m[i]->n_options + 1, sizeof(char *));
                if (!d->type || !d->source || !d->target || !d->options)
                        return -ENOMEM;
                for (size_t j = 0; j < m[i]->n_options; j++)
                        if (!(d->options[j] = strdup(S(m[i]->options[j]))))
                                return -ENOMEM;
        }
        return 0;
}

/* One allocation holding the pointer array and the messages; the strings
 * stay the caller's. */
static Containerd__Types__Mount **mounts_to_pb(const struct ctrd_mount *m, size_t n) {
        if (n == 0)
                return NULL;
        Containerd__Types__Mount **ptrs = calloc(1, n * (sizeof(void *) + sizeof(Containerd__Types__Mount)));
        if (!ptrs)
                return NULL;
        Containerd__Types__Mount *pm = (Containerd__Types__Mount *) (ptrs + n);
        for (size_t i = 0; i < n; i++) {
                protobuf_c_message_init(&containerd__types__mount__descriptor, &pm[i]);
                pm[i].type = S(m[i].type);
                pm[i].source = S(m[i].source);
                pm[i].target = S(m[i].target);
                pm[i].options = m[i].options;
                for (char **o = m[i].options; o && *o; o++)
                        pm[i].n_options++;
                ptrs[i] = &pm[i];
        }
        return ptrs;
}

void ctrd_descriptor_clear(struct ctrd_descriptor *d) {
        free(d->media_type);
        free(d->digest);
        ctrd_labels_clear(&d->annotations);
        *d = (struct ctrd_descriptor){0};
}

void ctrd_descriptors_clear(struct ctrd_descriptors *d) {
        for (size_t i = 0; i < d->n; i++)
                ctrd_descriptor_clear(&d->items[i]);
        free(d->items);
        *d = (struct ctrd_descriptors){0};
}

static int descriptor_from_pb(struct ctrd_descriptor *out, const Containerd__Types__Descriptor *d) {
        *out = (struct ctrd_descriptor){0};
        out->media_type = strdup(d ? S(d->media_type) : "");
        out->digest = strdup(d ? S(d->digest) : "");
        if (!out->media_type || !out->digest)
                return -ENOMEM;
        if (!d)
                return 0;
        out->size = d->size;
        return rpc_labels_from_pb(&out->annotations, d->n_annotations, d->annotations);
}

/* On success the caller frees dst->annotations (the entry array). */
static int descriptor_to_pb(Containerd__Types__Descriptor *dst, const struct ctrd_descriptor *src) {
        protobuf_c_message_init(&containerd__types__descriptor__descriptor, dst);
        dst->media_type = S(src->media_type);
        dst->digest = S(src->digest);
        dst->size = src->size;
        return rpc_labels_to_pb(&src->annotations,
                                &containerd__types__descriptor__annotations_entry__descriptor,
                                &dst->n_annotations, &dst->annotations);
}

/* ---- version, namespaces ---- */

int ctrd_version(struct ctrd_client *c, char **ret_version, char **ret_revision, struct cryo_error **err) {
        PB_REQ(Google__Protobuf__Empty, google__protobuf__empty__descriptor, req);
        _cleanup_pb_ Containerd__Services__Version__V1__VersionResponse *resp = NULL;
        int r = call(c, SVC_VERSION "Version", &req,
                     &containerd__services__version__v1__version_response__descriptor, &resp, err);
        if (r < 0)
                return r;
        _cleanup_free_ char *v = strdup(S(resp->version)), *rev = strdup(S(resp->revision));
        if (!v || !rev)
                return oom(err);
        if (ret_version)
                *ret_version = steal_pointer(&v);
        if (ret_revision)
                *ret_revision = steal_pointer(&rev);
        return 0;
}

int ctrd_namespace_exists(struct ctrd_client *c, const char *name, struct cryo_error **err) {
        /* Not Namespaces.Get: containerd 1.6 answers it with empty labels
         * instead of NOT_FOUND for a namespace that does not exist. */
        _cleanup_strv_ char **names = NULL;
        int r = ctrd_namespace_list(c, &names, err);
        if (r < 0)
                return r;
        for (char **n = names; *n; n++)
                if (strcmp(*n, name) == 0)
                        return 1;
        return 0;
}

int ctrd_namespace_list(struct ctrd_client *c, char ***ret_names, struct cryo_error **err) {
        PB_REQ(NS(ListNamespacesRequest), NS_D(list_namespaces_request), req);
        _cleanup_pb_ NS(ListNamespacesResponse) *resp = NULL;
        int r = call(c, SVC_NAMESPACES "List", &req, &NS_D(list_namespaces_response), &resp, err);
        if (r < 0)
                return r;
        _cleanup_strv_ char **names = calloc(resp->n_namespaces + 1, sizeof(char *));
        if (!names)
                return oom(err);
        for (size_t i = 0; i < resp->n_namespaces; i++)
                if (!(names[i] = strdup(S(resp->namespaces[i]->name))))
                        return oom(err);
        *ret_names = steal_pointer(&names);
        return 0;
}

/* ---- containers ---- */

void ctrd_container_clear(struct ctrd_container *ct) {
        free(ct->id);
        ctrd_labels_clear(&ct->labels);
        free(ct->image);
        free(ct->runtime_name);
        ctrd_any_clear(&ct->runtime_options);
        ctrd_any_clear(&ct->spec);
        free(ct->snapshotter);
        free(ct->snapshot_key);
        *ct = (struct ctrd_container){0};
}

void ctrd_containers_clear(struct ctrd_containers *l) {
        for (size_t i = 0; i < l->n; i++)
                ctrd_container_clear(&l->items[i]);
        free(l->items);
        *l = (struct ctrd_containers){0};
}

static int container_from_pb(struct ctrd_container *out, const CT(Container) * p) {
        *out = (struct ctrd_container){0};
        out->id = strdup(S(p->id));
        out->image = strdup(S(p->image));
        out->runtime_name = strdup(p->runtime ? S(p->runtime->name) : "");
        out->snapshotter = strdup(S(p->snapshotter));
        out->snapshot_key = strdup(S(p->snapshot_key));
        if (!out->id || !out->image || !out->runtime_name || !out->snapshotter || !out->snapshot_key)
                return -ENOMEM;
        if (rpc_labels_from_pb(&out->labels, p->n_labels, p->labels) < 0 ||
            any_from_pb(&out->runtime_options, p->runtime ? p->runtime->options : NULL) < 0 ||
            any_from_pb(&out->spec, p->spec) < 0)
                return -ENOMEM;
        return 0;
}

int ctrd_container_get(struct ctrd_client *c, const char *id, struct ctrd_container *ret,
                       struct cryo_error **err) {
        PB_REQ(CT(GetContainerRequest), CT_D(get_container_request), req);
        req.id = S(id);
        _cleanup_pb_ CT(GetContainerResponse) *resp = NULL;
        int r = call(c, SVC_CONTAINERS "Get", &req, &CT_D(get_container_response), &resp, err);
        if (r < 0)
                return r;
        if (!resp->container)
                return cryo_error_set(err, EPROTO, "containerd Containers.Get: empty answer for %s", id);
        if (container_from_pb(ret, resp->container) < 0) {
                ctrd_container_clear(ret);
                return oom(err);
        }
        return 0;
}

int ctrd_container_list(struct ctrd_client *c, const char *filter, struct ctrd_containers *ret,
                        struct cryo_error **err) {
        PB_REQ(CT(ListContainersRequest), CT_D(list_containers_request), req);
        char *filters[1] = {(char *) filter};
        if (filter) {
                req.n_filters = 1;
                req.filters = filters;
        }
        _cleanup_pb_ CT(ListContainersResponse) *resp = NULL;
        int r = call(c, SVC_CONTAINERS "List", &req, &CT_D(list_containers_response), &resp, err);
        if (r < 0)
                return r;
        *ret = (struct ctrd_containers){0};
        if (resp->n_containers == 0)
                return 0;
        ret->items = calloc(resp->n_containers, sizeof(*ret->items));
        if (!ret->items)
                return oom(err);
        for (size_t i = 0; i < resp->n_containers; i++) {
                ret->n++;
                if (container_from_pb(&ret->items[i], resp->containers[i]) < 0) {
                        ctrd_containers_clear(ret);
                        return oom(err);
                }
        }
        return 0;
}

int ctrd_container_create(struct ctrd_client *c, const struct ctrd_container *ct, struct cryo_error **err) {
        PB_REQ(CT(Container), CT_D(container), pc);
        PB_REQ(CT(Container__Runtime), CT_D(container__runtime), rt);
        Google__Protobuf__Any spec, ropts;
        pc.id = S(ct->id);
        pc.image = S(ct->image);
        pc.snapshotter = S(ct->snapshotter);
        pc.snapshot_key = S(ct->snapshot_key);
        rt.name = S(ct->runtime_name);
        rt.options = any_to_pb(&ropts, &ct->runtime_options, NULL);
        pc.runtime = &rt;
        pc.spec = any_to_pb(&spec, &ct->spec, CTRD_TYPE_OCI_SPEC);
        _cleanup_free_ void *labels = NULL;
        if (rpc_labels_to_pb(&ct->labels, &CT_D(container__labels_entry), &pc.n_labels, &labels) < 0)
                return oom(err);
        pc.labels = labels;

        PB_REQ(CT(CreateContainerRequest), CT_D(create_container_request), req);
        req.container = &pc;
        _cleanup_pb_ CT(CreateContainerResponse) *resp = NULL;
        return call(c, SVC_CONTAINERS "Create", &req, &CT_D(create_container_response), &resp, err);
}

int ctrd_container_delete(struct ctrd_client *c, const char *id, struct cryo_error **err) {
        PB_REQ(CT(DeleteContainerRequest), CT_D(delete_container_request), req);
        req.id = S(id);
        return call_empty(c, SVC_CONTAINERS "Delete", &req, err);
}

/* ---- tasks ---- */

const char *ctrd_task_status_name(enum ctrd_task_status s) {
        static const char *const names[] = {"unknown", "created", "running", "stopped", "paused", "pausing"};
        return (unsigned) s < ARRAY_SIZE(names) ? names[s] : "unknown";
}

void ctrd_process_clear(struct ctrd_process *p) {
        free(p->container_id);
        free(p->exec_id);
        free(p->stdin_path);
        free(p->stdout_path);
        free(p->stderr_path);
        *p = (struct ctrd_process){0};
}

void ctrd_processes_clear(struct ctrd_processes *l) {
        for (size_t i = 0; i < l->n; i++)
                ctrd_process_clear(&l->items[i]);
        free(l->items);
        *l = (struct ctrd_processes){0};
}

static int process_from_pb(struct ctrd_process *out, const Containerd__V1__Types__Process *p) {
        *out = (struct ctrd_process){0};
        out->container_id = strdup(S(p->container_id));
        out->exec_id = strdup(S(p->id));
        out->stdin_path = strdup(S(p->stdin));
        out->stdout_path = strdup(S(p->stdout));
        out->stderr_path = strdup(S(p->stderr));
        if (!out->container_id || !out->exec_id || !out->stdin_path || !out->stdout_path ||
            !out->stderr_path)
                return -ENOMEM;
        out->pid = p->pid;
        out->status = (enum ctrd_task_status) p->status;
        out->terminal = p->terminal;
        out->exit_status = p->exit_status;
        return 0;
}

/* Quirk: for an init process, Tasks.Get and Tasks.List put the container
 * ID into `id` (the process id) and leave container_id empty. */
static int fix_init_process(struct ctrd_process *p, const char *container_id) {
        if (!*p->container_id) {
                char *id = strdup(container_id ? container_id : p->exec_id);
                if (!id)
                        return -ENOMEM;
                free(p->container_id);
                p->container_id = id;
        }
        if (strcmp(p->exec_id, p->container_id) == 0)
                p->exec_id[0] = '\0';
        return 0;
}

int ctrd_task_get(struct ctrd_client *c, const char *container_id, struct ctrd_process *ret,
                  struct cryo_error **err) {
        PB_REQ(TK(GetRequest), TK_D(get_request), req);
        req.container_id = S(container_id);
        _cleanup_pb_ TK(GetResponse) *resp = NULL;
        int r = call(c, SVC_TASKS "Get", &req, &TK_D(get_response), &resp, err);
        if (r < 0)
                return r;
        if (!resp->process)
                return cryo_error_set(err, EPROTO, "containerd Tasks.Get: empty answer for %s",
                                      container_id);
        if (process_from_pb(ret, resp->process) < 0 || fix_init_process(ret, container_id) < 0) {
                ctrd_process_clear(ret);
                return oom(err);
        }
        return 0;
}

int ctrd_task_list(struct ctrd_client *c, struct ctrd_processes *ret, struct cryo_error **err) {
        PB_REQ(TK(ListTasksRequest), TK_D(list_tasks_request), req);
        _cleanup_pb_ TK(ListTasksResponse) *resp = NULL;
        int r = call(c, SVC_TASKS "List", &req, &TK_D(list_tasks_response), &resp, err);
        if (r < 0)
                return r;
        *ret = (struct ctrd_processes){0};
        if (resp->n_tasks == 0)
                return 0;
        ret->items = calloc(resp->n_tasks, sizeof(*ret->items));
        if (!ret->items)
                return oom(err);
        for (size_t i = 0; i < resp->n_tasks; i++) {
                struct ctrd_process *p = &ret->items[i];
                ret->n++;
                if (process_from_pb(p, resp->tasks[i]) < 0 || fix_init_process(p, NULL) < 0) {
                        ctrd_processes_clear(ret);
                        return oom(err);
                }
        }
        return 0;
}

int ctrd_task_create(struct ctrd_client *c, const struct ctrd_task_opts *o, uint32_t *ret_pid,
                     struct cryo_error **err) {
        PB_REQ(TK(CreateTaskRequest), TK_D(create_task_request), req);
        Containerd__Types__Descriptor ckpt;
        Google__Protobuf__Any opts;
        req.container_id = S(o->container_id);
        req.stdin = S(o->stdin_path);
        req.stdout = S(o->stdout_path);
        req.stderr = S(o->stderr_path);
        req.terminal = o->terminal;
        req.runtime_path = S(o->runtime_path);
        req.options = any_to_pb(&opts, o->options, NULL);

        _cleanup_free_ Containerd__Types__Mount **rootfs = mounts_to_pb(o->rootfs, o->n_rootfs);
        if (o->n_rootfs && !rootfs)
                return oom(err);
        req.n_rootfs = o->n_rootfs;
        req.rootfs = rootfs;
        _cleanup_free_ void *annotations = NULL;
        if (o->checkpoint) {
                if (descriptor_to_pb(&ckpt, o->checkpoint) < 0)
                        return oom(err);
                annotations = ckpt.annotations;
                req.checkpoint = &ckpt;
        }
        _cleanup_pb_ TK(CreateTaskResponse) *resp = NULL;
        int r = call(c, SVC_TASKS "Create", &req, &TK_D(create_task_response), &resp, err);
        if (r < 0)
                return r;
        if (ret_pid)
                *ret_pid = resp->pid;
        return 0;
}

int ctrd_task_start(struct ctrd_client *c, const char *container_id, uint32_t *ret_pid,
                    struct cryo_error **err) {
        PB_REQ(TK(StartRequest), TK_D(start_request), req);
        req.container_id = S(container_id);
        _cleanup_pb_ TK(StartResponse) *resp = NULL;
        int r = call(c, SVC_TASKS "Start", &req, &TK_D(start_response), &resp, err);
        if (r < 0)
                return r;
        if (ret_pid)
                *ret_pid = resp->pid;
        return 0;
}

int ctrd_task_kill(struct ctrd_client *c, const char *container_id, int signal, bool all,
                   struct cryo_error **err) {
        PB_REQ(TK(KillRequest), TK_D(kill_request), req);
        req.container_id = S(container_id);
        req.signal = (uint32_t) signal;
        req.all = all;
        return call_empty(c, SVC_TASKS "Kill", &req, err);
}

int ctrd_task_delete(struct ctrd_client *c, const char *container_id, uint32_t *ret_exit_status,
                     struct cryo_error **err) {
        PB_REQ(TK(DeleteTaskRequest), TK_D(delete_task_request), req);
        req.container_id = S(container_id);
        _cleanup_pb_ TK(DeleteResponse) *resp = NULL;
        int r = call(c, SVC_TASKS "Delete", &req, &TK_D(delete_response), &resp, err);
        if (r < 0)
                return r;
        if (ret_exit_status)
                *ret_exit_status = resp->exit_status;
        return 0;
}

int ctrd_task_wait(struct ctrd_client *c, const char *container_id, int timeout_ms,
                   uint32_t *ret_exit_status, struct cryo_error **err) {
        PB_REQ(TK(WaitRequest), TK_D(wait_request), req);
        req.container_id = S(container_id);
        _cleanup_pb_ TK(WaitResponse) *resp = NULL;
        int r = grpc_unary(c->conn, SVC_TASKS "Wait", c->md, &req.base, &TK_D(wait_response),
                           (ProtobufCMessage **) &resp, timeout_ms, err);
        if (r < 0)
                return r;
        if (ret_exit_status)
                *ret_exit_status = resp->exit_status;
        return 0;
}

int ctrd_task_pause(struct ctrd_client *c, const char *container_id, struct cryo_error **err) {
        PB_REQ(TK(PauseTaskRequest), TK_D(pause_task_request), req);
        req.container_id = S(container_id);
        return call_empty(c, SVC_TASKS "Pause", &req, err);
}

int ctrd_task_resume(struct ctrd_client *c, const char *container_id, struct cryo_error **err) {
        PB_REQ(TK(ResumeTaskRequest), TK_D(resume_task_request), req);
        req.container_id = S(container_id);
        return call_empty(c, SVC_TASKS "Resume", &req, err);
}

int ctrd_task_checkpoint(struct ctrd_client *c, const char *container_id, const struct ctrd_any *options,
                         struct ctrd_descriptors *ret, struct cryo_error **err) {
        PB_REQ(TK(CheckpointTaskRequest), TK_D(checkpoint_task_request), req);
        Google__Protobuf__Any opts;
        req.container_id = S(container_id);
        req.options = any_to_pb(&opts, options, NULL);
        _cleanup_pb_ TK(CheckpointTaskResponse) *resp = NULL;
        int r = call(c, SVC_TASKS "Checkpoint", &req, &TK_D(checkpoint_task_response), &resp, err);
        if (r < 0)
                return r;
        *ret = (struct ctrd_descriptors){0};
        if (resp->n_descriptors == 0)
                return 0;
        ret->items = calloc(resp->n_descriptors, sizeof(*ret->items));
        if (!ret->items)
                return oom(err);
        for (size_t i = 0; i < resp->n_descriptors; i++) {
                ret->n++;
                if (descriptor_from_pb(&ret->items[i], resp->descriptors[i]) < 0) {
                        ctrd_descriptors_clear(ret);
                        return oom(err);
                }
        }
        return 0;
}

/* ---- runc options ---- */

void ctrd_runc_options_clear(struct ctrd_runc_options *o) {
        free(o->binary_name);
        free(o->root);
        free(o->criu_path);
        free(o->criu_image_path);
        free(o->criu_work_path);
        free(o->shim_cgroup);
        *o = (struct ctrd_runc_options){0};
}

int ctrd_runc_options_decode(const struct ctrd_any *any, struct ctrd_runc_options *ret,
                             struct cryo_error **err) {
        if (any->type_url && *any->type_url && strcmp(any->type_url, CTRD_TYPE_RUNC_OPTIONS) != 0)
                return cryo_error_set(err, EINVAL, "runtime options of type %s are not runc options",
                                      any->type_url);
        _cleanup_pb_ Containerd__Runc__V1__Options *o =
                containerd__runc__v1__options__unpack(NULL, any->len, any->value);
        if (!o)
                return cryo_error_set(err, EPROTO, "cannot decode runc options (%zu bytes)", any->len);
        *ret = (struct ctrd_runc_options){
                .binary_name = strdup(S(o->binary_name)),
                .root = strdup(S(o->root)),
                .criu_path = strdup(S(o->criu_path)),
                .criu_image_path = strdup(S(o->criu_image_path)),
                .criu_work_path = strdup(S(o->criu_work_path)),
                .shim_cgroup = strdup(S(o->shim_cgroup)),
                .systemd_cgroup = o->systemd_cgroup,
                .no_pivot_root = o->no_pivot_root,
                .no_new_keyring = o->no_new_keyring,
                .io_uid = o->io_uid,
                .io_gid = o->io_gid,
        };
        if (!ret->binary_name || !ret->root || !ret->criu_path || !ret->criu_image_path ||
            !ret->criu_work_path || !ret->shim_cgroup) {
                ctrd_runc_options_clear(ret);
                return oom(err);
        }
        return 0;
}

static int any_pack(const ProtobufCMessage *m, const char *type_url, struct ctrd_any *ret,
                    struct cryo_error **err) {
        size_t n = protobuf_c_message_get_packed_size(m);
        *ret = (struct ctrd_any){.type_url = strdup(type_url), .value = malloc(n ? n : 1), .len = n};
        if (!ret->type_url || !ret->value) {
                ctrd_any_clear(ret);
                return oom(err);
        }
        protobuf_c_message_pack(m, ret->value);
        return 0;
}

int ctrd_runc_options_encode(const struct ctrd_runc_options *o, struct ctrd_any *ret,
                             struct cryo_error **err) {
        PB_REQ(Containerd__Runc__V1__Options, containerd__runc__v1__options__descriptor, m);
        m.binary_name = S(o->binary_name);
        m.root = S(o->root);
        m.criu_path = S(o->criu_path);
        m.criu_image_path = S(o->criu_image_path);
        m.criu_work_path = S(o->criu_work_path);
        m.shim_cgroup = S(o->shim_cgroup);
        m.systemd_cgroup = o->systemd_cgroup;
        m.no_pivot_root = o->no_pivot_root;
        m.no_new_keyring = o->no_new_keyring;
        m.io_uid = o->io_uid;
        m.io_gid = o->io_gid;
        return any_pack(&m.base, CTRD_TYPE_RUNC_OPTIONS, ret, err);
}

int ctrd_runc_checkpoint_options(const struct ctrd_runc_checkpoint_opts *o, struct ctrd_any *ret,
                                 struct cryo_error **err) {
        PB_REQ(Containerd__Runc__V1__CheckpointOptions, containerd__runc__v1__checkpoint_options__descriptor,
               m);
        m.exit = o->exit;
        m.open_tcp = o->open_tcp;
        m.external_unix_sockets = o->external_unix_sockets;
        m.terminal = o->terminal;
        m.file_locks = o->file_locks;
        m.cgroups_mode = S(o->cgroups_mode);
        m.image_path = S(o->image_path);
        m.work_path = S(o->work_path);
        m.empty_namespaces = (char **) o->empty_namespaces;
        for (const char *const *p = o->empty_namespaces; p && *p; p++)
                m.n_empty_namespaces++;
        return any_pack(&m.base, CTRD_TYPE_RUNC_CHECKPOINT, ret, err);
}

/* ---- images ---- */

void ctrd_image_clear(struct ctrd_image *img) {
        free(img->name);
        ctrd_labels_clear(&img->labels);
        ctrd_descriptor_clear(&img->target);
        *img = (struct ctrd_image){0};
}

void ctrd_images_clear(struct ctrd_images *l) {
        for (size_t i = 0; i < l->n; i++)
                ctrd_image_clear(&l->items[i]);
        free(l->items);
        *l = (struct ctrd_images){0};
}

static int image_from_pb(struct ctrd_image *out, const IM(Image) * p) {
        *out = (struct ctrd_image){0};
        if (!(out->name = strdup(S(p->name))))
                return -ENOMEM;
        if (rpc_labels_from_pb(&out->labels, p->n_labels, p->labels) < 0 ||
            descriptor_from_pb(&out->target, p->target) < 0)
                return -ENOMEM;
        return 0;
}

int ctrd_image_get(struct ctrd_client *c, const char *name, struct ctrd_image *ret,
                   struct cryo_error **err) {
        PB_REQ(IM(GetImageRequest), IM_D(get_image_request), req);
        req.name = S(name);
        _cleanup_pb_ IM(GetImageResponse) *resp = NULL;
        int r = call(c, SVC_IMAGES "Get", &req, &IM_D(get_image_response), &resp, err);
        if (r < 0)
                return r;
        if (!resp->image)
                return cryo_error_set(err, EPROTO, "containerd Images.Get: empty answer for %s", name);
        if (image_from_pb(ret, resp->image) < 0) {
                ctrd_image_clear(ret);
                return oom(err);
        }
        return 0;
}

int ctrd_image_list(struct ctrd_client *c, const char *filter, struct ctrd_images *ret,
                    struct cryo_error **err) {
        PB_REQ(IM(ListImagesRequest), IM_D(list_images_request), req);
        char *filters[1] = {(char *) filter};
        if (filter) {
                req.n_filters = 1;
                req.filters = filters;
        }
        _cleanup_pb_ IM(ListImagesResponse) *resp = NULL;
        int r = call(c, SVC_IMAGES "List", &req, &IM_D(list_images_response), &resp, err);
        if (r < 0)
                return r;
        *ret = (struct ctrd_images){0};
        if (resp->n_images == 0)
                return 0;
        ret->items = calloc(resp->n_images, sizeof(*ret->items));
        if (!ret->items)
                return oom(err);
        for (size_t i = 0; i < resp->n_images; i++) {
                ret->n++;
                if (image_from_pb(&ret->items[i], resp->images[i]) < 0) {
                        ctrd_images_clear(ret);
                        return oom(err);
                }
        }
        return 0;
}

int ctrd_image_create(struct ctrd_client *c, const struct ctrd_image *img, struct cryo_error **err) {
        PB_REQ(IM(Image), IM_D(image), pi);
        Containerd__Types__Descriptor target;
        pi.name = S(img->name);
        _cleanup_free_ void *labels = NULL, *annotations = NULL;
        if (rpc_labels_to_pb(&img->labels, &IM_D(image__labels_entry), &pi.n_labels, &labels) < 0 ||
            descriptor_to_pb(&target, &img->target) < 0)
                return oom(err);
        pi.labels = labels;
        annotations = target.annotations;
        pi.target = &target;
        PB_REQ(IM(CreateImageRequest), IM_D(create_image_request), req);
        req.image = &pi;
        _cleanup_pb_ IM(CreateImageResponse) *resp = NULL;
        return call(c, SVC_IMAGES "Create", &req, &IM_D(create_image_response), &resp, err);
}

int ctrd_image_delete(struct ctrd_client *c, const char *name, bool sync, struct cryo_error **err) {
        PB_REQ(IM(DeleteImageRequest), IM_D(delete_image_request), req);
        req.name = S(name);
        req.sync = sync;
        return call_empty(c, SVC_IMAGES "Delete", &req, err);
}

/* ---- content ---- */

void ctrd_content_info_clear(struct ctrd_content_info *i) {
        free(i->digest);
        ctrd_labels_clear(&i->labels);
        *i = (struct ctrd_content_info){0};
}

int ctrd_content_info(struct ctrd_client *c, const char *digest, struct ctrd_content_info *ret,
                      struct cryo_error **err) {
        PB_REQ(CN(InfoRequest), CN_D(info_request), req);
        req.digest = S(digest);
        _cleanup_pb_ CN(InfoResponse) *resp = NULL;
        int r = call(c, SVC_CONTENT "Info", &req, &CN_D(info_response), &resp, err);
        if (r < 0)
                return r;
        if (!resp->info)
                return cryo_error_set(err, EPROTO, "containerd Content.Info: empty answer for %s", digest);
        *ret = (struct ctrd_content_info){.digest = strdup(S(resp->info->digest)), .size = resp->info->size};
        if (!ret->digest || rpc_labels_from_pb(&ret->labels, resp->info->n_labels, resp->info->labels) < 0) {
                ctrd_content_info_clear(ret);
                return oom(err);
        }
        return 0;
}

int ctrd_content_delete(struct ctrd_client *c, const char *digest, struct cryo_error **err) {
        PB_REQ(CN(DeleteContentRequest), CN_D(delete_content_request), req);
        req.digest = S(digest);
        return call_empty(c, SVC_CONTENT "Delete", &req, err);
}

/* "sha256:<64 lowercase hex>" */
static void sha256_digest_name(struct cryo_sha256 *sha, char out[static 72]) {
        strcpy(out, "sha256:");
        cryo_sha256_hex(sha, out + 7);
}

int ctrd_content_read_to_fd(struct ctrd_client *c, const char *digest, int fd, int64_t *ret_size,
                            struct cryo_error **err) {
        struct cryo_sha256 sha;
        bool verify = strncmp(digest, "sha256:", 7) == 0;
        cryo_sha256_begin(&sha);

        /* No overall deadline (blobs may be large) but an idle limit:
         * a call that stops moving for timeout_ms fails. */
        _cleanup_grpc_stream_ struct grpc_stream *s = NULL;
        int r = grpc_stream_open(c->conn, SVC_CONTENT "Read", c->md, GRPC_NO_TIMEOUT, &s, err);
        if (r < 0)
                return r;
        grpc_stream_set_idle_timeout(s, c->timeout_ms);
        PB_REQ(CN(ReadContentRequest), CN_D(read_content_request), req);
        req.digest = S(digest);
        r = grpc_stream_send(s, &req.base, err);
        if (r >= 0)
                r = grpc_stream_close_send(s, err);
        if (r < 0)
                return r;

        int64_t total = 0;
        for (;;) {
                _cleanup_pb_ CN(ReadContentResponse) *m = NULL;
                r = grpc_stream_recv(s, &CN_D(read_content_response), (ProtobufCMessage **) &m, err);
                if (r < 0)
                        return r;
                if (r == 0)
                        break;
                if (m->offset != total)
                        return cryo_error_set(err, EPROTO,
                                              "containerd Content.Read %s: chunk at offset %" PRId64
                                              ", expected %" PRId64,
                                              digest, m->offset, total);
                r = fs_write_all(fd, m->data.data, m->data.len);
                if (r < 0)
                        return cryo_error_errno(err, r, "cannot write content %s", digest);
                if (verify)
                        cryo_sha256_feed(&sha, m->data.data, m->data.len);
                total += (int64_t) m->data.len;
        }
        if (verify) {
                char got[72];
                sha256_digest_name(&sha, got);
                if (strcmp(got, digest) != 0)
                        return cryo_error_set(err, EIO, "content %s read from containerd has digest %s",
                                              digest, got);
        }
        if (ret_size)
                *ret_size = total;
        return 0;
}

static void content_abort(struct ctrd_client *c, const char *ref) {
        PB_REQ(CN(AbortRequest), CN_D(abort_request), req);
        req.ref = S(ref);
        call_empty(c, SVC_CONTENT "Abort", &req, NULL);
}

/* Reads up to n bytes, short only at EOF. */
static ssize_t read_full(int fd, uint8_t *buf, size_t n) {
        size_t got = 0;
        while (got < n) {
                ssize_t r = read(fd, buf + got, n - got);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (r == 0)
                        break;
                got += (size_t) r;
        }
        return (ssize_t) got;
}

/* Takes one Write answer and checks the server's offset. */
static int write_recv(struct grpc_stream *s, int64_t want_offset, char **ret_digest,
                      struct cryo_error **err) {
        _cleanup_pb_ CN(WriteContentResponse) *m = NULL;
        int r = grpc_stream_recv(s, &CN_D(write_content_response), (ProtobufCMessage **) &m, err);
        if (r < 0)
                return r;
        if (r == 0)
                return cryo_error_set(err, EPROTO, "containerd Content.Write: call ended early");
        if (want_offset >= 0 && m->offset != want_offset)
                return cryo_error_set(err, EPROTO,
                                      "containerd Content.Write: server at offset %" PRId64
                                      ", expected %" PRId64,
                                      m->offset, want_offset);
        if (ret_digest && m->action == CONTAINERD__SERVICES__CONTENT__V1__WRITE_ACTION__COMMIT) {
                free(*ret_digest);
                if (!(*ret_digest = strdup(S(m->digest))))
                        return -ENOMEM;
        }
        return 0;
}

static int content_write(struct ctrd_client *c, int fd, int64_t size, const char *ref, const char *expected,
                         const struct ctrd_labels *labels, char **ret_digest, char computed[static 72],
                         struct cryo_error **err) {
        struct cryo_sha256 sha;
        cryo_sha256_begin(&sha);
        _cleanup_free_ uint8_t *buf = malloc(WRITE_CHUNK);
        if (!buf)
                return oom(err);
        _cleanup_grpc_stream_ struct grpc_stream *s = NULL;
        int r = grpc_stream_open(c->conn, SVC_CONTENT "Write", c->md, GRPC_NO_TIMEOUT, &s, err);
        if (r < 0)
                return r;
        grpc_stream_set_idle_timeout(s, c->timeout_ms);

        /* The server answers every request with its offset; offsets of
         * requests in flight, to check those answers. */
        int64_t sent = 0, inflight[WRITE_WINDOW + 1];
        size_t n_inflight = 0, first = 0;
        bool first_msg = true;
        for (;;) {
                size_t want = WRITE_CHUNK;
                if (size >= 0 && (int64_t) want > size - sent)
                        want = (size_t) (size - sent);
                ssize_t n = want ? read_full(fd, buf, want) : 0;
                if (n < 0)
                        return cryo_error_errno(err, (int) n, "cannot read the blob for %s", ref);
                if (n == 0 && size >= 0 && sent < size)
                        return cryo_error_set(err, EIO,
                                              "blob for %s ended after %" PRId64 " of %" PRId64 " bytes",
                                              ref, sent, size);
                if (n == 0)
                        break;
                cryo_sha256_feed(&sha, buf, (size_t) n);

                PB_REQ(CN(WriteContentRequest), CN_D(write_content_request), req);
                req.action = CONTAINERD__SERVICES__CONTENT__V1__WRITE_ACTION__WRITE;
                req.ref = S(ref);
                req.offset = sent;
                req.data.data = buf;
                req.data.len = (size_t) n;
                if (first_msg) {
                        /* Declaring size and digest up front makes the server
                         * refuse (ALREADY_EXISTS) before we send any data. */
                        req.total = size > 0 ? size : 0;
                        req.expected = S(expected);
                        first_msg = false;
                }
                r = grpc_stream_send(s, &req.base, err);
                if (r < 0)
                        return r;
                sent += n;
                inflight[(first + n_inflight++) % ARRAY_SIZE(inflight)] = sent;
                if (n_inflight >= WRITE_WINDOW) {
                        r = write_recv(s, inflight[first], NULL, err);
                        if (r < 0)
                                return r;
                        first = (first + 1) % ARRAY_SIZE(inflight);
                        n_inflight--;
                }
        }
        sha256_digest_name(&sha, computed);
        if (expected && strcmp(expected, computed) != 0)
                return cryo_error_set(err, EINVAL, "blob for %s has digest %s, expected %s", ref, computed,
                                      expected);

        PB_REQ(CN(WriteContentRequest), CN_D(write_content_request), req);
        req.action = CONTAINERD__SERVICES__CONTENT__V1__WRITE_ACTION__COMMIT;
        req.ref = S(ref);
        req.offset = sent;
        req.total = sent;
        req.expected = computed;
        _cleanup_free_ void *pb_labels = NULL;
        if (rpc_labels_to_pb(labels, &CN_D(write_content_request__labels_entry), &req.n_labels, &pb_labels) <
            0)
                return oom(err);
        req.labels = pb_labels;
        r = grpc_stream_send(s, &req.base, err);
        if (r >= 0)
                r = grpc_stream_close_send(s, err);
        if (r < 0)
                return r;
        inflight[(first + n_inflight++) % ARRAY_SIZE(inflight)] = sent;
        while (n_inflight > 0) {
                r = write_recv(s, inflight[first], n_inflight == 1 ? ret_digest : NULL, err);
                if (r < 0)
                        return r;
                first = (first + 1) % ARRAY_SIZE(inflight);
                n_inflight--;
        }
        /* Quirk: containerd's Write handler sends its last answer again
         * from a deferred function when it returns, so the commit answer
         * arrives twice.  Drain to the final status. */
        for (;;) {
                _cleanup_pb_ ProtobufCMessage *extra = NULL;
                r = grpc_stream_recv(s, &CN_D(write_content_response), &extra, err);
                if (r <= 0)
                        return r;
        }
}

int ctrd_content_write_from_fd(struct ctrd_client *c, int fd, int64_t size, const char *ref,
                               const char *expected_digest, const struct ctrd_labels *labels,
                               char **ret_digest, struct cryo_error **err) {
        if (!ref || !*ref)
                return cryo_error_set(err, EINVAL, "content upload needs an ingest reference");
        char computed[72] = "";
        _cleanup_free_ char *digest = NULL;
        _cleanup_error_ struct cryo_error *e = NULL;
        int r = content_write(c, fd, size, ref, expected_digest, labels, &digest, computed, &e);
        if (r == -EEXIST) {
                /* Already in the store: fine, but the existing blob is not
                 * covered by our lease unless we add it. */
                const char *known = expected_digest ? expected_digest : computed;
                if (!*known)
                        goto fail;
                if (c->lease) {
                        r = ctrd_lease_add_resource(c, c->lease, "content", known, err);
                        if (r < 0)
                                return r;
                }
                free(digest);
                if (!(digest = strdup(known)))
                        return oom(err);
                r = 0;
        }
        if (r < 0)
                goto fail;
        if (ret_digest)
                *ret_digest = digest && *digest ? steal_pointer(&digest) : strdup(computed);
        if (ret_digest && !*ret_digest)
                return oom(err);
        return 0;
fail:
        /* Release the ingest so that a retry with the same ref is not
         * told "ref locked" and no partial data lingers. */
        content_abort(c, ref);
        if (err && !*err)
                *err = steal_pointer(&e);
        return r;
}

/* ---- snapshots ---- */

void ctrd_snapshot_info_clear(struct ctrd_snapshot_info *i) {
        free(i->name);
        free(i->parent);
        ctrd_labels_clear(&i->labels);
        *i = (struct ctrd_snapshot_info){0};
}

static const char *snapshotter_or_default(const char *s) {
        return s && *s ? s : CTRD_DEFAULT_SNAPSHOTTER;
}

static int mounts_result(size_t n, Containerd__Types__Mount **m, struct ctrd_mounts *ret,
                         struct cryo_error **err) {
        if (!ret)
                return 0;
        if (mounts_from_pb(ret, n, m) < 0) {
                ctrd_mounts_clear(ret);
                return oom(err);
        }
        return 0;
}

int ctrd_snapshot_prepare(struct ctrd_client *c, const char *snapshotter, const char *key,
                          const char *parent, const struct ctrd_labels *labels, struct ctrd_mounts *ret,
                          struct cryo_error **err) {
        PB_REQ(SN(PrepareSnapshotRequest), SN_D(prepare_snapshot_request), req);
        req.snapshotter = S(snapshotter_or_default(snapshotter));
        req.key = S(key);
        req.parent = S(parent);
        _cleanup_free_ void *pl = NULL;
        if (rpc_labels_to_pb(labels, &SN_D(prepare_snapshot_request__labels_entry), &req.n_labels, &pl) < 0)
                return oom(err);
        req.labels = pl;
        _cleanup_pb_ SN(PrepareSnapshotResponse) *resp = NULL;
        int r = call(c, SVC_SNAPSHOTS "Prepare", &req, &SN_D(prepare_snapshot_response), &resp, err);
        if (r < 0)
                return r;
        return mounts_result(resp->n_mounts, resp->mounts, ret, err);
}

int ctrd_snapshot_view(struct ctrd_client *c, const char *snapshotter, const char *key, const char *parent,
                       const struct ctrd_labels *labels, struct ctrd_mounts *ret, struct cryo_error **err) {
        PB_REQ(SN(ViewSnapshotRequest), SN_D(view_snapshot_request), req);
        req.snapshotter = S(snapshotter_or_default(snapshotter));
        req.key = S(key);
        req.parent = S(parent);
        _cleanup_free_ void *pl = NULL;
        if (rpc_labels_to_pb(labels, &SN_D(view_snapshot_request__labels_entry), &req.n_labels, &pl) < 0)
                return oom(err);
        req.labels = pl;
        _cleanup_pb_ SN(ViewSnapshotResponse) *resp = NULL;
        int r = call(c, SVC_SNAPSHOTS "View", &req, &SN_D(view_snapshot_response), &resp, err);
        if (r < 0)
                return r;
        return mounts_result(resp->n_mounts, resp->mounts, ret, err);
}

int ctrd_snapshot_mounts(struct ctrd_client *c, const char *snapshotter, const char *key,
                         struct ctrd_mounts *ret, struct cryo_error **err) {
        PB_REQ(SN(MountsRequest), SN_D(mounts_request), req);
        req.snapshotter = S(snapshotter_or_default(snapshotter));
        req.key = S(key);
        _cleanup_pb_ SN(MountsResponse) *resp = NULL;
        int r = call(c, SVC_SNAPSHOTS "Mounts", &req, &SN_D(mounts_response), &resp, err);
        if (r < 0)
                return r;
        return mounts_result(resp->n_mounts, resp->mounts, ret, err);
}

int ctrd_snapshot_commit(struct ctrd_client *c, const char *snapshotter, const char *name, const char *key,
                         const struct ctrd_labels *labels, struct cryo_error **err) {
        PB_REQ(SN(CommitSnapshotRequest), SN_D(commit_snapshot_request), req);
        req.snapshotter = S(snapshotter_or_default(snapshotter));
        req.name = S(name);
        req.key = S(key);
        _cleanup_free_ void *pl = NULL;
        if (rpc_labels_to_pb(labels, &SN_D(commit_snapshot_request__labels_entry), &req.n_labels, &pl) < 0)
                return oom(err);
        req.labels = pl;
        return call_empty(c, SVC_SNAPSHOTS "Commit", &req, err);
}

int ctrd_snapshot_remove(struct ctrd_client *c, const char *snapshotter, const char *key,
                         struct cryo_error **err) {
        PB_REQ(SN(RemoveSnapshotRequest), SN_D(remove_snapshot_request), req);
        req.snapshotter = S(snapshotter_or_default(snapshotter));
        req.key = S(key);
        return call_empty(c, SVC_SNAPSHOTS "Remove", &req, err);
}

int ctrd_snapshot_stat(struct ctrd_client *c, const char *snapshotter, const char *key,
                       struct ctrd_snapshot_info *ret, struct cryo_error **err) {
        PB_REQ(SN(StatSnapshotRequest), SN_D(stat_snapshot_request), req);
        req.snapshotter = S(snapshotter_or_default(snapshotter));
        req.key = S(key);
        _cleanup_pb_ SN(StatSnapshotResponse) *resp = NULL;
        int r = call(c, SVC_SNAPSHOTS "Stat", &req, &SN_D(stat_snapshot_response), &resp, err);
        if (r < 0)
                return r;
        if (!resp->info)
                return cryo_error_set(err, EPROTO, "containerd Snapshots.Stat: empty answer for %s", key);
        *ret = (struct ctrd_snapshot_info){.name = strdup(S(resp->info->name)),
                                           .parent = strdup(S(resp->info->parent)),
                                           .kind = (enum ctrd_snapshot_kind) resp->info->kind};
        if (!ret->name || !ret->parent ||
            rpc_labels_from_pb(&ret->labels, resp->info->n_labels, resp->info->labels) < 0) {
                ctrd_snapshot_info_clear(ret);
                return oom(err);
        }
        return 0;
}

/* ---- leases ---- */

int ctrd_lease_create(struct ctrd_client *c, const char *id, const struct ctrd_labels *labels, char **ret_id,
                      struct cryo_error **err) {
        char gen[64];
        if (!id) {
                /* containerd requires the client to choose the id. */
                uint32_t rnd = 0;
                if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
                        rnd = (uint32_t) getpid();
                snprintf(gen, sizeof(gen), "cryo-%lld-%08" PRIx32, (long long) time(NULL), rnd);
                id = gen;
        }
        PB_REQ(LS(CreateRequest), LS_D(create_request), req);
        req.id = S(id);
        _cleanup_free_ void *pl = NULL;
        if (rpc_labels_to_pb(labels, &LS_D(create_request__labels_entry), &req.n_labels, &pl) < 0)
                return oom(err);
        req.labels = pl;
        _cleanup_pb_ LS(CreateResponse) *resp = NULL;
        int r = call(c, SVC_LEASES "Create", &req, &LS_D(create_response), &resp, err);
        if (r < 0)
                return r;
        if (ret_id && !(*ret_id = strdup(resp->lease && *resp->lease->id ? resp->lease->id : id)))
                return oom(err);
        return 0;
}

int ctrd_lease_delete(struct ctrd_client *c, const char *id, bool sync, struct cryo_error **err) {
        PB_REQ(LS(DeleteRequest), LS_D(delete_request), req);
        req.id = S(id);
        req.sync = sync;
        return call_empty(c, SVC_LEASES "Delete", &req, err);
}

int ctrd_lease_add_resource(struct ctrd_client *c, const char *lease_id, const char *type, const char *id,
                            struct cryo_error **err) {
        PB_REQ(LS(Resource), LS_D(resource), res);
        res.id = S(id);
        res.type = S(type);
        PB_REQ(LS(AddResourceRequest), LS_D(add_resource_request), req);
        req.id = S(lease_id);
        req.resource = &res;
        return call_empty(c, SVC_LEASES "AddResource", &req, err);
}

/* ---- events ---- */

struct ctrd_events {
        struct grpc_stream *stream;
};

void ctrd_event_clear(struct ctrd_event *e) {
        free(e->namespace_);
        free(e->topic);
        ctrd_any_clear(&e->event);
        *e = (struct ctrd_event){0};
}

void ctrd_events_free(struct ctrd_events *ev) {
        if (!ev)
                return;
        grpc_stream_free(ev->stream);
        free(ev);
}

int ctrd_events_subscribe(struct ctrd_client *c, const char *const *filters, struct ctrd_events **ret,
                          struct cryo_error **err) {
        _cleanup_ctrd_events_ struct ctrd_events *ev = calloc(1, sizeof(*ev));
        if (!ev)
                return oom(err);
        int r = grpc_stream_open(c->conn, SVC_EVENTS "Subscribe", c->md, GRPC_NO_TIMEOUT, &ev->stream, err);
        if (r < 0)
                return r;
        PB_REQ(Containerd__Services__Events__V1__SubscribeRequest,
               containerd__services__events__v1__subscribe_request__descriptor, req);
        req.filters = (char **) filters;
        for (const char *const *f = filters; f && *f; f++)
                req.n_filters++;
        r = grpc_stream_send(ev->stream, &req.base, err);
        if (r >= 0)
                r = grpc_stream_close_send(ev->stream, err);
        if (r < 0)
                return r;
        *ret = steal_pointer(&ev);
        return 0;
}

int ctrd_events_next(struct ctrd_events *ev, int wait_ms, struct ctrd_event *ret, struct cryo_error **err) {
        _cleanup_pb_ Containerd__Services__Events__V1__Envelope *m = NULL;
        int r = grpc_stream_recv_wait(ev->stream, &containerd__services__events__v1__envelope__descriptor,
                                      (ProtobufCMessage **) &m, wait_ms, err);
        if (r <= 0)
                return r == 0 ? cryo_error_set(err, ECONNRESET, "containerd ended the event subscription")
                              : r;
        *ret = (struct ctrd_event){.namespace_ = strdup(S(m->namespace_)), .topic = strdup(S(m->topic))};
        if (m->timestamp)
                ret->timestamp_ns = m->timestamp->seconds * 1000000000LL + m->timestamp->nanos;
        if (!ret->namespace_ || !ret->topic || any_from_pb(&ret->event, m->event) < 0) {
                ctrd_event_clear(ret);
                return oom(err);
        }
        return 1;
}
