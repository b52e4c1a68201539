/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The docker plugin: a Docker container is a containerd container in
 * namespace "moby" whose name, configuration, network and image only
 * dockerd knows.  Dump resolves the name through the Engine API and dumps
 * it as the containerd plugin does, adding Docker's facts; restore goes
 * through dockerd itself (POST /containers/{id}/start?checkpoint=NAME) so
 * that the restored container is Docker's: docker ps, logs, exec, stop.
 */
#include <json-c/json.h>
#include <stdbool.h>

#include "format/checkpoint.h"
#include "plugins/plugin.h"
#include "util/error.h"

#define DK_API_TIMEOUT_MS 30000
/* Start with a checkpoint uploads the images to containerd and runs CRIU. */
#define DK_START_TIMEOUT_MS (15 * 60 * 1000)
#define DK_DOCKER_SECTION   "docker"

/* --address, else $DOCKER_HOST (unix://PATH), else /var/run/docker.sock. */
const char *dk_socket(const struct cryo_request *req);
/* The containerd socket dockerd uses: $CONTAINERD_ADDRESS, else the system
 * containerd's, else the one dockerd runs itself. */
const char *dk_containerd_address(void);

/*
 * One Engine API call.  `body` (may be NULL) is sent as JSON.  A 2xx answer
 * is success and *ret (optional) gets its JSON, or NULL when empty.  Any
 * other status is an error carrying dockerd's own message:
 * "Docker: <message> (HTTP <status> for <method> <path>)", with 404 ->
 * -ENOENT, 409 -> -EEXIST, 400 -> -EINVAL, 403 -> -EPERM, 304 -> -EALREADY,
 * others -> -EIO.
 */
int dk_call(const char *sock, const char *method, const char *path, json_object *body, int timeout_ms,
            json_object **ret, struct cryo_error **err);

/* Percent-encodes what may not appear raw in a URL path or query. */
char *dk_url_escape(const char *s);

/* Docker's facts worth keeping, from an inspect object (manifest section). */
json_object *dk_facts(json_object *inspect);

/* The plugin's restore (restore.c). */
int dk_restore(const struct cryo_request *req, struct cryo_checkpoint *ck, json_object *result,
               struct cryo_error **err);

/* Restore helpers (layer.c). */

/*
 * Applies rootfs-diff.tar and deleted.files of checkpoint `ck` to a
 * container's writable layer through a private overlay mount of its
 * GraphDriver data (LowerDir, UpperDir, WorkDir), so that deletions of image
 * files become whiteouts as they would have in the running container.
 */
int dk_apply_rootfs_diff(struct cryo_checkpoint *ck, json_object *graph_driver, struct cryo_error **err);

/* Links (or copies) the CRIU images of `ck` into directory `dest`, which
 * must not exist yet. */
int dk_stage_images(struct cryo_checkpoint *ck, const char *dest, struct cryo_error **err);

/*
 * Keeps CRIU's restore log of a restore dockerd runs: the shim writes it in
 * the task's work directory, which is deleted when the restore fails.  A
 * watcher process opens the log as soon as it appears and, if told the
 * restore failed, copies it to `keep_as`.
 */
struct dk_log_watch {
        int pid;
        int ctl_fd;
        char *keep_as;
};
int dk_log_watch_start(struct dk_log_watch *w, const char *container_id, const char *keep_as);
/* Returns true when the log was kept at w->keep_as. */
bool dk_log_watch_finish(struct dk_log_watch *w, bool failed);

/*
 * containerd 1.6 never removes the directory it extracts an uploaded
 * checkpoint into (<tmp>/ctrd-checkpoint*): one full copy of the images per
 * Docker restore.  List those directories before the start; afterwards,
 * remove the new ones that hold exactly this checkpoint's images.
 * Returns how many were removed.
 */
char **dk_ctrd_tmp_list(void);
int dk_ctrd_tmp_cleanup(struct cryo_checkpoint *ck, char **before);
/*
 * A CRIU that fails a Docker restore may leave its cgroup yard mounted in
 * its work directory, the task's bundle; containerd then renames the bundle
 * to ".<id>" to delete it, and fails.  Detaches CRIU's yards of container
 * `id` and removes such a renamed bundle.  Returns how many mounts.
 */
int dk_ctrd_bundle_cleanup(const char *id);
