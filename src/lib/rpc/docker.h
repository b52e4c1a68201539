/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * A tiny Docker Engine API client (HTTP/1.1 over the unix socket, by hand)
 * for what cryo needs from dockerd: turning a container name or ID prefix
 * into the full ID and its inspect JSON (Config, HostConfig,
 * NetworkSettings, Image, State.Pid).  Docker's containers live in
 * containerd namespace "moby" under that full ID.
 */
#include <json-c/json.h>

#include "util/error.h"

#define DOCKER_DEFAULT_SOCKET     "/var/run/docker.sock"
#define DOCKER_CONTAINERD_NS      "moby"
#define DOCKER_DEFAULT_TIMEOUT_MS 10000

/*
 * GET `path` (e.g. "/version") and parse the JSON answer.  socket_path
 * NULL means DOCKER_DEFAULT_SOCKET.  A non-2xx status is an error carrying
 * dockerd's "message": 404 -> -ENOENT, 400 -> -EINVAL, 409 -> -EBUSY,
 * others -> -EIO.  *ret is a new reference (json_object_put()).
 */
int docker_get_json(const char *socket_path, const char *path, struct json_object **ret,
                    struct cryo_error **err);

/*
 * Resolves a container name (with or without the leading '/') or a unique
 * ID prefix.  *ret_id (optional) gets the full 64-hex ID, *ret_inspect
 * (optional) the whole inspect object.  -ENOENT with dockerd's message
 * ("No such container: x") when unknown; -EINVAL for characters no name
 * or ID can contain.
 */
int docker_inspect_container(const char *socket_path, const char *name_or_id, char **ret_id,
                             struct json_object **ret_inspect, struct cryo_error **err);
