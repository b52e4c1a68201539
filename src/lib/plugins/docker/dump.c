/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Dump of a Docker container: the name or ID prefix is resolved by dockerd,
 * then the container is dumped exactly as the containerd plugin dumps any
 * container of namespace "moby" (runc-compatible CRIU images, spec,
 * filesystem diff).  What only Docker knows (name, image, configuration,
 * published ports, volumes) goes into config.dump (the whole inspect
 * object, which a restore recreates the container from) and, in short,
 * into the manifest's "docker" section.
 *
 * A restart policy would make dockerd start the container afresh as soon
 * as the dump ends it, so it is suspended for the dump and given back by
 * the restore (or right away if the dump fails).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plugins/containerd/containerd.h"
#include "plugins/docker/docker.h"
#include "rpc/docker.h"
#include "util/cleanup.h"
#include "util/json.h"

static void copy_key(json_object *to, json_object *from, const char *key) {
        json_object *v = cryo_json_get(from, key);
        if (v)
                json_object_object_add(to, key, json_object_get(v));
}

/* keys: space-separated. */
static void copy_keys(json_object *to, json_object *from, const char *keys) {
        char key[64];
        for (const char *k = keys; *k;) {
                size_t n = strcspn(k, " ");
                if (n > 0 && n < sizeof(key)) {
                        memcpy(key, k, n);
                        key[n] = '\0';
                        copy_key(to, from, key);
                }
                k += n;
                k += strspn(k, " ");
        }
}

json_object *dk_facts(json_object *inspect) {
        static const char config_keys[] =
                "Image Hostname Domainname User Env Cmd Entrypoint WorkingDir Labels "
                "Tty OpenStdin ExposedPorts Volumes StopSignal";
        static const char host_keys[] =
                "Memory MemoryReservation MemorySwap NanoCpus CpuShares CpuQuota "
                "CpuPeriod CpusetCpus CpusetMems PidsLimit BlkioWeight CapAdd CapDrop "
                "Privileged SecurityOpt ReadonlyRootfs NetworkMode PortBindings "
                "RestartPolicy AutoRemove Binds IpcMode PidMode UTSMode UsernsMode "
                "CgroupParent Runtime ShmSize Devices Ulimits";
        static const char net_keys[] = "IPAddress IPPrefixLen Gateway MacAddress GlobalIPv6Address Ports";
        static const char endpoint_keys[] = "NetworkID IPAddress IPPrefixLen Gateway MacAddress "
                                            "GlobalIPv6Address Aliases IPAMConfig";
        json_object *o = json_object_new_object();
        copy_key(o, inspect, "Id");
        const char *name = cryo_json_str(inspect, "Name", "");
        json_object_object_add(o, "name", json_object_new_string(name[0] == '/' ? name + 1 : name));
        json_object *img = json_object_new_object();
        cryo_json_add_str(img, "id", cryo_json_str(inspect, "Image", NULL));
        cryo_json_add_str(img, "name", cryo_json_str(cryo_json_get(inspect, "Config"), "Image", NULL));
        json_object_object_add(o, "image", img);

        json_object *config = json_object_new_object();
        copy_keys(config, cryo_json_get(inspect, "Config"), config_keys);
        json_object_object_add(o, "config", config);
        json_object *host = json_object_new_object();
        copy_keys(host, cryo_json_get(inspect, "HostConfig"), host_keys);
        json_object_object_add(o, "host_config", host);

        json_object *ns = cryo_json_get(inspect, "NetworkSettings");
        json_object *net = json_object_new_object();
        copy_keys(net, ns, net_keys);
        json_object *networks = json_object_new_object();
        json_object *saved_networks = cryo_json_get(ns, "Networks");
        if (saved_networks && json_object_is_type(saved_networks, json_type_object)) {
                json_object_object_foreach (saved_networks, netname, ep) {
                        json_object *e = json_object_new_object();
                        copy_keys(e, ep, endpoint_keys);
                        json_object_object_add(networks, netname, e);
                }
        }
        json_object_object_add(net, "Networks", networks);
        json_object_object_add(o, "network", net);
        copy_key(o, inspect, "Mounts");
        json_object *gd = cryo_json_get(inspect, "GraphDriver");
        cryo_json_add_str(o, "graph_driver", cryo_json_str(gd, "Name", NULL));
        return o;
}

static int docker_source_id(const struct cryo_request *req, char **id, struct cryo_error **err) {
        if (!req->id || !*req->id)
                return cryo_error_set(err, EINVAL,
                                      "a docker dump needs --id NAME (a container name or ID prefix)");
        int r = docker_inspect_container(dk_socket(req), req->id, id, NULL, err);
        if (r == -ENOENT) {
                cryo_error_freep(err);
                return cryo_error_set(err, ENOENT, "Docker at %s has no container '%s' (see docker ps -a)",
                                      dk_socket(req), req->id);
        }
        return r;
}

static bool restarts_on_exit(json_object *inspect) {
        const char *policy = cryo_json_str(cryo_json_path(inspect, "HostConfig/RestartPolicy"), "Name", "");
        return *policy && strcmp(policy, "no") != 0;
}

static int set_restart_policy(const char *sock, const char *id, json_object *policy,
                              struct cryo_error **err) {
        char path[128];
        snprintf(path, sizeof(path), "/containers/%s/update", id);
        _cleanup_json_ json_object *body = json_object_new_object();
        if (policy) {
                json_object_object_add(body, "RestartPolicy", json_object_get(policy));
        } else {
                json_object *no = json_object_new_object();
                json_object_object_add(no, "Name", json_object_new_string("no"));
                json_object_object_add(no, "MaximumRetryCount", json_object_new_int(0));
                json_object_object_add(body, "RestartPolicy", no);
        }
        return dk_call(sock, "POST", path, body, DK_API_TIMEOUT_MS, NULL, err);
}

/* config.dump: the containerd dump writes {"containerd": ..., "docker":
 * ...}; the Docker part must be the inspect taken before the restart
 * policy was suspended, as it is what a restore recreates. */
static int write_config(struct cryo_checkpoint *ck, json_object *inspect, struct cryo_error **err) {
        _cleanup_json_ json_object *config = NULL;
        int r = cryo_json_read_file(ck->dirfd, CRYO_CONFIG_DUMP, 64u << 20, &config, NULL);
        if (r < 0 || !json_object_is_type(config, json_type_object)) {
                json_object_put(config);
                config = json_object_new_object();
        }
        json_object_object_add(config, DK_DOCKER_SECTION, json_object_get(inspect));
        return cryo_json_write_file_unsynced(ck->dirfd, CRYO_CONFIG_DUMP, config, 0600, err);
}

static int docker_dump(const struct cryo_request *req, struct cryo_checkpoint *ck, struct cryo_error **err) {
        const char *sock = dk_socket(req);
        _cleanup_free_ char *id = NULL;
        _cleanup_json_ json_object *inspect = NULL;
        int r = docker_inspect_container(sock, req->id, &id, &inspect, err);
        if (r < 0)
                return r;
        const char *name = cryo_json_str(inspect, "Name", req->id);
        if (name[0] == '/')
                name++;
        json_object *state = cryo_json_get(inspect, "State");
        if (!json_object_get_boolean(cryo_json_get(state, "Running")))
                return cryo_error_set(err, ESRCH, "Docker container %s (%.12s) is %s, not running", name, id,
                                      cryo_json_str(state, "Status", "not running"));
        if (json_object_get_boolean(cryo_json_get(state, "Paused")))
                return cryo_error_set(err, EBUSY, "Docker container %s (%.12s) is paused: unpause it first",
                                      name, id);
        json_object *graph = cryo_json_get(inspect, "GraphDriver");
        if (strcmp(cryo_json_str(graph, "Name", ""), "overlay2") != 0)
                return cryo_error_set(
                        err, EOPNOTSUPP,
                        "Docker container %s uses storage driver '%s': only overlay2 is supported", name,
                        cryo_json_str(graph, "Name", "?"));

        json_object *facts = dk_facts(inspect);
        json_object_object_add(ck->manifest, DK_DOCKER_SECTION, facts);
        _cleanup_json_ json_object *info = NULL;
        if (dk_call(sock, "GET", "/info", NULL, DK_API_TIMEOUT_MS, &info, NULL) == 0) {
                json_object *engine = json_object_new_object();
                cryo_json_add_str(engine, "version", cryo_json_str(info, "ServerVersion", NULL));
                cryo_json_add_str(engine, "root_dir", cryo_json_str(info, "DockerRootDir", NULL));
                cryo_json_add_str(engine, "cgroup_driver", cryo_json_str(info, "CgroupDriver", NULL));
                cryo_json_add_str(engine, "socket", sock);
                json_object_object_add(facts, "engine", engine);
        }

        /* Docker restarts a container whose policy says so the moment the
         * dump ends it; the restore gives the policy back. */
        bool suspend = !req->criu.leave_running && !req->rootfs_only && restarts_on_exit(inspect);
        if (suspend) {
                r = set_restart_policy(sock, id, NULL, err);
                if (r < 0)
                        return cryo_error_prefix(err, "cannot suspend the restart policy of %s for the dump",
                                                 name);
                json_object_object_add(facts, "restart_policy_suspended", json_object_new_boolean(true));
        }

        struct cryo_request creq = *req;
        creq.ns = DOCKER_NAMESPACE;
        creq.address = dk_containerd_address();
        r = containerd_dump_container(&creq, id, ck, err);
        if (r >= 0)
                r = write_config(ck, inspect, err);
        if (r < 0 && suspend)
                (void) set_restart_policy(sock, id, cryo_json_path(inspect, "HostConfig/RestartPolicy"),
                                          NULL);
        return r;
}

/* The commit failed after the dump: the container goes on, and gets back
 * the restart policy the dump suspended (kept in config.dump). */
static void docker_dump_aborted(const struct cryo_request *req, struct cryo_checkpoint *ck) {
        json_object *facts = cryo_json_get(ck->manifest, DK_DOCKER_SECTION);
        if (!json_object_get_boolean(cryo_json_get(facts, "restart_policy_suspended")))
                return;
        _cleanup_json_ json_object *config = NULL;
        if (cryo_json_read_file(ck->dirfd, CRYO_CONFIG_DUMP, 64u << 20, &config, NULL) < 0)
                return;
        json_object *policy = cryo_json_path(config, DK_DOCKER_SECTION "/HostConfig/RestartPolicy");
        const char *id = cryo_json_str(ck->manifest, "id", NULL);
        if (policy && id)
                (void) set_restart_policy(dk_socket(req), id, policy, NULL);
}

static int docker_inspect(struct cryo_checkpoint *ck, json_object *report, struct cryo_error **err) {
        static const char *const keys[] = {"processes", "container", DK_DOCKER_SECTION, NULL};
        for (const char *const *k = keys; *k; k++) {
                json_object *v = cryo_json_get(ck->manifest, *k);
                if (v)
                        json_object_object_add(report, *k, json_object_get(v));
        }
        return 0;
}

const struct cryo_plugin cryo_plugin_docker = {
        .name = "docker",
        .summary = "a Docker container (by name or ID), restored by dockerd so that docker "
                   "ps/logs/exec/stop work",
        .source_id = docker_source_id,
        .dump = docker_dump,
        .dump_aborted = docker_dump_aborted,
        .restore = dk_restore,
        .inspect = docker_inspect,
};
