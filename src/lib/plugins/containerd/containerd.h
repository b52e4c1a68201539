/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include "plugins/container/container.h"
#include "plugins/plugin.h"
#include "rpc/containerd.h"

#define CONTAINERD_DEFAULT_ADDRESS   "/run/containerd/containerd.sock"
#define CONTAINERD_DEFAULT_NAMESPACE "default"
#define CONTAINERD_DEFAULT_RUNC_ROOT "/run/containerd/runc"
#define CONTAINERD_DEFAULT_STATE     "/run/containerd"
#define DOCKER_DEFAULT_SOCKET        "/var/run/docker.sock"
#define DOCKER_NAMESPACE             "moby"
/* What a restored task keeps beside it: <root>/<ns>/<id> (data-dir.c). */
#define CONTAINERD_DATA_ROOT      "/var/lib/cryo/containers"
#define CONTAINERD_RESTORED_LABEL "io.cryo.restored-from"

/* An image as a restore needs it: present, the same content, unpacked. */
struct containerd_image {
        char *name;
        char *target_digest; /* what the name points to (index or manifest) */
        char *config_digest; /* the image id: equal across Docker and containerd */
        char *chain_id;      /* the snapshot its layers unpack to */
};
void containerd_image_clear(struct containerd_image *img);
int containerd_image_resolve(struct ctrd_client *c, const char *name, struct containerd_image *out,
                             struct cryo_error **err);
/* The snapshot name of a layer stack: containerd's chain id of diff ids. */
char *containerd_chain_id(json_object *diff_ids);
/* "busybox" -> "docker.io/library/busybox:latest", as Docker names it. */
char *containerd_normalize_image_name(const char *name);

/* --address, else $CONTAINERD_ADDRESS, else the default socket. */
const char *containerd_address(const struct cryo_request *req);
const char *containerd_namespace(const struct cryo_request *req);

/* Connects and checks that the namespace exists, with errors that name
 * the socket and list the namespaces there are. */
int containerd_connect(const char *address, const char *ns, struct ctrd_client **out,
                       struct cryo_error **err);

/* Dumps container `id` of namespace `ns` (shared with the docker plugin). */
int containerd_dump_container(const struct cryo_request *req, const char *id, struct cryo_checkpoint *ck,
                              struct cryo_error **err);
/* Creates <CONTAINERD_DATA_ROOT>/<ns>/<id>, marked as belonging to the
 * containerd at `address`. */
int containerd_data_dir_create(const char *address, const char *ns, const char *id, char **path_out,
                               struct cryo_error **err);
/* Removes the namespace's data directories of that containerd whose
 * container is gone (and untouched for an hour); best effort. */
int containerd_data_dirs_prune(struct ctrd_client *client, const char *address, const char *ns,
                               unsigned *removed);
int containerd_restore_container(const struct cryo_request *req, struct cryo_checkpoint *ck,
                                 json_object *result, struct cryo_error **err);
