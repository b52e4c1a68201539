/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "plugins/containerd/containerd.h"
#include "rpc/docker.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/json.h"

const char *containerd_address(const struct cryo_request *req) {
        if (req->address)
                return req->address;
        const char *env = getenv("CONTAINERD_ADDRESS");
        return env && *env ? env : CONTAINERD_DEFAULT_ADDRESS;
}

const char *containerd_namespace(const struct cryo_request *req) {
        if (req->ns)
                return req->ns;
        const char *env = getenv("CONTAINERD_NAMESPACE");
        return env && *env ? env : CONTAINERD_DEFAULT_NAMESPACE;
}

int containerd_connect(const char *address, const char *ns, struct ctrd_client **out,
                       struct cryo_error **err) {
        _cleanup_ctrd_client_ struct ctrd_client *c = NULL;
        int r = ctrd_open(address, ns, &c, err);
        if (r < 0)
                return r;
        r = ctrd_namespace_exists(c, ns, err);
        if (r < 0)
                return r;
        if (r == 0) {
                _cleanup_strv_ char **names = NULL;
                char list[512] = "";
                if (ctrd_namespace_list(c, &names, NULL) >= 0)
                        for (char **n = names; n && *n; n++) {
                                strncat(list, list[0] ? ", " : "", sizeof(list) - strlen(list) - 1);
                                strncat(list, *n, sizeof(list) - strlen(list) - 1);
                        }
                return cryo_error_set(err, ENOENT, "containerd at %s has no namespace '%s' (it has: %s)",
                                      address, ns, list[0] ? list : "none");
        }
        *out = steal_pointer(&c);
        return 0;
}

/* Where runc keeps this container's state: the runtime options say, on the
 * container record or, for tasks whose options came with Tasks.Create
 * (Docker's), in the shim's bundle. */
static char *runc_root_of(const struct ctrd_container *rec, const char *ns) {
        _cleanup_free_ char *root = NULL;
        struct ctrd_runc_options opts = {0};
        if (rec->runtime_options.type_url && strstr(rec->runtime_options.type_url, CTRD_TYPE_RUNC_OPTIONS) &&
            ctrd_runc_options_decode(&rec->runtime_options, &opts, NULL) == 0 && opts.root && *opts.root)
                root = strdup(opts.root);
        ctrd_runc_options_clear(&opts);
        if (!root) {
                char path[512];
                _cleanup_free_ char *text = NULL;
                snprintf(path, sizeof(path),
                         CONTAINERD_DEFAULT_STATE "/io.containerd.runtime.v2.task/%s/%s/options.json", ns,
                         rec->id);
                if (fs_read_file(AT_FDCWD, path, 1 << 16, &text, NULL, NULL) == 0) {
                        _cleanup_json_ json_object *o = json_tokener_parse(text);
                        const char *r = cryo_json_str(o, "root", NULL);
                        if (r && *r)
                                root = strdup(r);
                }
        }
        char *out = NULL;
        if (asprintf(&out, "%s/%s", root ? root : CONTAINERD_DEFAULT_RUNC_ROOT, ns) < 0)
                return NULL;
        return out;
}

static json_object *container_record_json(const struct ctrd_container *rec, const char *ns) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "id", json_object_new_string(rec->id));
        json_object_object_add(o, "namespace", json_object_new_string(ns));
        json_object_object_add(o, "image", json_object_new_string(rec->image));
        json_object_object_add(o, "runtime", json_object_new_string(rec->runtime_name));
        json_object_object_add(o, "snapshotter", json_object_new_string(rec->snapshotter));
        json_object_object_add(o, "snapshot_key", json_object_new_string(rec->snapshot_key));
        json_object *labels = json_object_new_object();
        for (size_t i = 0; i < rec->labels.n; i++)
                json_object_object_add(labels, rec->labels.items[i].key,
                                       json_object_new_string(rec->labels.items[i].value));
        json_object_object_add(o, "labels", labels);
        struct ctrd_runc_options opts = {0};
        if (rec->runtime_options.type_url && strstr(rec->runtime_options.type_url, CTRD_TYPE_RUNC_OPTIONS) &&
            ctrd_runc_options_decode(&rec->runtime_options, &opts, NULL) == 0) {
                json_object *ro = json_object_new_object();
                json_object_object_add(ro, "binary_name", json_object_new_string(opts.binary_name));
                json_object_object_add(ro, "root", json_object_new_string(opts.root));
                json_object_object_add(ro, "systemd_cgroup", json_object_new_boolean(opts.systemd_cgroup));
                json_object_object_add(o, "runtime_options", ro);
        }
        ctrd_runc_options_clear(&opts);
        return o;
}

/* The base image, by digest, so that restore can check it is there. */
static int record_image(struct ctrd_client *client, const struct ctrd_container *rec, json_object *docker,
                        struct cryo_checkpoint *ck, struct cryo_error **err) {
        json_object *img = json_object_new_object();
        json_object_object_add(ck->manifest, "image", img);
        if (*rec->image) {
                struct containerd_image image = {0};
                int r = containerd_image_resolve(client, rec->image, &image, err);
                if (r >= 0) {
                        json_object_object_add(img, "name", json_object_new_string(image.name));
                        json_object_object_add(img, "digest", json_object_new_string(image.target_digest));
                        json_object_object_add(img, "config_digest",
                                               json_object_new_string(image.config_digest));
                        json_object_object_add(img, "chain_id", json_object_new_string(image.chain_id));
                        json_object_object_add(img, "store", json_object_new_string("containerd"));
                }
                containerd_image_clear(&image);
                return r < 0 ? cryo_error_prefix(err, "image of container %s", rec->id) : 0;
        }
        if (docker) {
                /* Docker keeps images in its own store, not containerd's. */
                _cleanup_free_ char *name = containerd_normalize_image_name(
                        cryo_json_str(cryo_json_get(docker, "Config"), "Image", ""));
                cryo_json_add_str(img, "name", name);
                cryo_json_add_str(img, "config_digest", cryo_json_str(docker, "Image", NULL));
                _cleanup_json_ json_object *image = NULL;
                _cleanup_free_ char *path = NULL, *chain = NULL;
                if (asprintf(&path, "/images/%s/json", cryo_json_str(docker, "Image", "")) < 0)
                        return cryo_error_set(err, ENOMEM, "out of memory");
                int r = docker_get_json(DOCKER_DEFAULT_SOCKET, path, &image, err);
                if (r < 0)
                        return cryo_error_prefix(err, "image of Docker container %s", rec->id);
                chain = containerd_chain_id(cryo_json_path(image, "RootFS/Layers"));
                cryo_json_add_str(img, "chain_id", chain);
                json_object_object_add(img, "store", json_object_new_string("docker"));
        }
        return 0;
}

int containerd_dump_container(const struct cryo_request *req, const char *id, struct cryo_checkpoint *ck,
                              struct cryo_error **err) {
        uint64_t start = cryo_now_usec();
        const char *address = containerd_address(req), *ns = containerd_namespace(req);
        _cleanup_ctrd_client_ struct ctrd_client *client = NULL;
        int r = containerd_connect(address, ns, &client, err);
        if (r < 0)
                return r;

        struct ctrd_container rec = {0};
        struct ctrd_process task = {0};
        _cleanup_container_ struct container *c = calloc(1, sizeof(*c));
        _cleanup_json_ json_object *docker = NULL;
        if (!c) {
                r = cryo_error_set(err, ENOMEM, "out of memory");
                goto out;
        }
        r = ctrd_container_get(client, id, &rec, err);
        if (r == -ENOENT) {
                cryo_error_freep(err);
                r = cryo_error_set(err, ENOENT, "no container '%s' in containerd namespace '%s'", id, ns);
        }
        if (r < 0)
                goto out;
        r = ctrd_task_get(client, id, &task, err);
        if (r == -ENOENT) {
                cryo_error_freep(err);
                r = cryo_error_set(err, ESRCH,
                                   "container '%s' in namespace '%s' has no task: it is not running", id,
                                   ns);
        }
        if (r < 0)
                goto out;
        if (task.status != CTRD_TASK_RUNNING) {
                r = cryo_error_set(err, ESRCH, "the task of container '%s' is %s, not running", id,
                                   ctrd_task_status_name(task.status));
                goto out;
        }
        c->id = strdup(id);
        c->ns = strdup(ns);
        /* Docker's may be restored by dockerd, which gives CRIU no mapping
         * for tmpfs contents cryo saved itself. */
        c->own_tmpfs = strcmp(ns, DOCKER_NAMESPACE) != 0;
        c->init_pid = (pid_t) task.pid;
        c->spec = cryo_json_parse_buf(rec.spec.value, rec.spec.len);
        c->runtime_root = runc_root_of(&rec, ns);
        if (!c->id || !c->ns || !c->runtime_root) {
                r = cryo_error_set(err, ENOMEM, "out of memory");
                goto out;
        }
        if (!c->spec) {
                r = cryo_error_set(err, EBADMSG, "container '%s' has no readable OCI spec", id);
                goto out;
        }
        r = container_load_runc_state(c, err);
        if (r < 0)
                goto out;
        if (!strcmp(ns, DOCKER_NAMESPACE))
                (void) docker_inspect_container(DOCKER_DEFAULT_SOCKET, id, NULL, &docker, NULL);

        r = record_image(client, &rec, docker, ck, err);
        if (r < 0)
                goto out;
        json_object *config = json_object_new_object();
        json_object_object_add(config, "containerd", container_record_json(&rec, ns));
        if (docker)
                json_object_object_add(config, "docker", json_object_get(docker));
        r = cryo_json_write_file_unsynced(ck->dirfd, CRYO_CONFIG_DUMP, config, 0600, err);
        json_object_put(config);
        if (r < 0)
                goto out;
        json_object *status = json_object_new_object();
        json_object_object_add(status, "pid", json_object_new_int((int) task.pid));
        json_object_object_add(status, "status", json_object_new_string(ctrd_task_status_name(task.status)));
        cryo_json_add_str(status, "stdout", task.stdout_path);
        cryo_json_add_str(status, "stderr", task.stderr_path);
        json_object_object_add(status, "terminal", json_object_new_boolean(task.terminal));
        r = cryo_json_write_file_unsynced(ck->dirfd, CRYO_STATUS_DUMP, status, 0600, err);
        json_object_put(status);
        if (r < 0)
                goto out;

        json_object *source = json_object_new_object();
        json_object_object_add(source, "address", json_object_new_string(address));
        json_object_object_add(source, "namespace", json_object_new_string(ns));
        json_object_object_add(source, "id", json_object_new_string(id));
        json_object_object_add(ck->manifest, "source", source);
        /* containerd and Docker lookups, runc state, config.dump, status.dump */
        cryo_stats_add(&ck->stats, CRYO_PHASE_RPC, cryo_now_usec() - start, 0);
        r = container_dump(c, req, ck, err);
out:
        ctrd_container_clear(&rec);
        ctrd_process_clear(&task);
        return r;
}

static int containerd_source_id(const struct cryo_request *req, char **id, struct cryo_error **err) {
        if (!req->id || !*req->id)
                return cryo_error_set(err, EINVAL, "a containerd dump needs --id CONTAINER-ID");
        *id = strdup(req->id);
        return *id ? 0 : cryo_error_set(err, ENOMEM, "out of memory");
}

static int containerd_dump(const struct cryo_request *req, struct cryo_checkpoint *ck,
                           struct cryo_error **err) {
        return containerd_dump_container(req, req->id, ck, err);
}

static int containerd_inspect(struct cryo_checkpoint *ck, json_object *report, struct cryo_error **err) {
        json_object *procs = cryo_json_get(ck->manifest, "processes");
        json_object_object_add(report, "processes",
                               procs ? json_object_get(procs) : json_object_new_array());
        json_object *c = cryo_json_get(ck->manifest, "container");
        if (c)
                json_object_object_add(report, "container", json_object_get(c));
        return 0;
}

const struct cryo_plugin cryo_plugin_containerd = {
        .name = "containerd",
        .summary = "a containerd container (Docker's live in namespace moby), restored as a containerd task",
        .source_id = containerd_source_id,
        .dump = containerd_dump,
        .restore = containerd_restore_container,
        .inspect = containerd_inspect,
        .verifies_before_resume = true,
        .lazy_pages = true,
        .lazy_confirms = true,
};
