/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Docker-native restore: dockerd itself starts the container from the
 * checkpoint (POST /containers/{id}/start?checkpoint=NAME), so the result
 * is an ordinary Docker container: docker ps shows it, logs, exec, stop and
 * its restart policy work, and its network is set up by Docker's prestart
 * hook as for any start.
 *
 * Docker 20.10 refuses a checkpoint directory of the caller's choice (403
 * "custom checkpointdir is not supported"); it only takes checkpoints by
 * name from <DockerRootDir>/containers/<id>/checkpoints/<name>/.  So the
 * CRIU images are linked there for the duration of the start and removed
 * afterwards.
 *
 *  - Same container: the dumped container still exists (stopped, as a dump
 *    leaves it) and is started from the checkpoint.  Its writable layer is
 *    the one that was dumped; if it was started again since the dump, the
 *    dump's filesystem diff is applied again first.
 *  - New container (--id NEW-NAME, or the old one is gone, or another host):
 *    created from the saved configuration (same image, by id; same
 *    hostname, since the UTS name comes back from the images), the diff
 *    applied to its writable layer, then started from the checkpoint.
 *
 * Any failure removes what this restore made (the staged images, a created
 * container with its anonymous volumes); the checkpoint is only read.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cryo.h"
#include "engine/engine.h"
#include "plugins/docker/docker.h"
#include "rpc/docker.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/proc.h"

struct dk_restore {
        const struct cryo_request *req;
        struct cryo_checkpoint *ck;
        const char *sock;
        json_object *saved; /* the dump-time inspect object (borrowed) */
        const char *old_id;
        char *old_name;
        char *root_dir; /* DockerRootDir */
        char *id;       /* the container that is started */
        char *name;
        bool created;    /* by this restore: removed on failure */
        char *staged;    /* images under the container's checkpoints/ */
        int tmp_removed; /* containerd's leaked extraction directories */
};

static void dk_restore_clear(struct dk_restore *s) {
        free(s->old_name);
        free(s->root_dir);
        free(s->id);
        free(s->name);
        free(s->staged);
}

static const char *strip_slash(const char *name) {
        return name && name[0] == '/' ? name + 1 : name;
}

/* config.dump's "docker" part: the whole inspect object of the container
 * as it was dumped (written by the docker plugin and, for moby containers,
 * by the containerd plugin). */
static int load_saved(struct cryo_checkpoint *ck, json_object **config, struct cryo_error **err) {
        int r = cryo_json_read_file(ck->dirfd, CRYO_CONFIG_DUMP, 64u << 20, config, err);
        if (r < 0)
                return r;
        json_object *d = cryo_json_get(*config, DK_DOCKER_SECTION);
        if (!d || !cryo_json_get(d, "Config") || !cryo_json_get(d, "HostConfig") ||
            strlen(cryo_json_str(d, "Id", "")) != 64)
                return cryo_error_set(
                        err, ENOENT,
                        "%s has no Docker configuration: it was not dumped from a Docker container "
                        "(restore it with --type containerd)",
                        CRYO_CONFIG_DUMP);
        return 0;
}

static int engine_facts(struct dk_restore *s, struct cryo_error **err) {
        _cleanup_json_ json_object *info = NULL;
        int r = dk_call(s->sock, "GET", "/info", NULL, DK_API_TIMEOUT_MS, &info, err);
        if (r < 0)
                return r;
        if (!json_object_get_boolean(cryo_json_get(info, "ExperimentalBuild")))
                return cryo_error_set(
                        err, EOPNOTSUPP,
                        "dockerd at %s runs without experimental features, and Docker restores "
                        "checkpoints only with them: start dockerd with --experimental (or "
                        "\"experimental\": true in /etc/docker/daemon.json), or restore with "
                        "--type containerd",
                        s->sock);
        const char *root = cryo_json_str(info, "DockerRootDir", NULL);
        if (!root || root[0] != '/')
                return cryo_error_set(err, EPROTO, "dockerd at %s reports no DockerRootDir", s->sock);
        s->root_dir = strdup(root);
        return s->root_dir ? 0 : cryo_error_set(err, ENOMEM, "out of memory");
}

/* The container to restore into, if it exists: *live = its inspect. */
static int find_container(struct dk_restore *s, const char *ref, json_object **live,
                          struct cryo_error **err) {
        _cleanup_error_ struct cryo_error *e = NULL;
        int r = docker_inspect_container(s->sock, ref, NULL, live, &e);
        if (r == -ENOENT)
                return 0;
        if (r < 0) {
                if (err && !*err)
                        *err = steal_pointer(&e);
                return r;
        }
        return 1;
}

/* Docker says running, but its init process is gone or a zombie. */
static bool still_exiting(json_object *live) {
        json_object *state = cryo_json_get(live, "State");
        if (!json_object_get_boolean(cryo_json_get(state, "Running")))
                return false;
        pid_t pid = (pid_t) cryo_json_int(state, "Pid", 0);
        return pid > 0 && !proc_alive(pid);
}

/*
 * Same container or a new one?  --id names the container; without it, the
 * dumped container if it is still there, else a new one under its name.
 */
static int choose_target(struct dk_restore *s, json_object **live, struct cryo_error **err) {
        const char *want = s->req->new_id;
        bool same_name = !want || !strcmp(want, s->old_name) || !strcmp(want, s->old_id);
        int r = find_container(s, same_name ? s->old_id : want, live, err);
        if (r < 0)
                return r;
        if (r > 0) {
                const char *id = cryo_json_str(*live, "Id", "");
                const char *name = strip_slash(cryo_json_str(*live, "Name", ""));
                if (!same_name && strcmp(id, s->old_id) != 0 && strcmp(name, want) != 0) {
                        /* `want` only matched another container's id prefix. */
                        json_object_put(*live);
                        *live = NULL;
                } else if (!same_name && strcmp(id, s->old_id) != 0) {
                        return cryo_error_set(err, EEXIST,
                                              "a Docker container named '%s' already exists (%.12s): choose "
                                              "another --id or remove it (docker rm %s)",
                                              want, id, want);
                }
        }
        if (*live && still_exiting(*live)) {
                /* Right after a dump: the tree is gone, dockerd has not
                 * seen the exit yet. */
                for (int i = 0; i < 100 && *live && still_exiting(*live); i++) {
                        usleep(100 * 1000);
                        json_object_put(*live);
                        *live = NULL;
                        r = find_container(s, s->old_id, live, err);
                        if (r < 0)
                                return r;
                }
        }
        if (*live) {
                json_object *state = cryo_json_get(*live, "State");
                const char *name = strip_slash(cryo_json_str(*live, "Name", ""));
                if (json_object_get_boolean(cryo_json_get(state, "Running")))
                        return cryo_error_set(
                                err, EBUSY,
                                "Docker container %s (%.12s) is running: stop it (docker stop %s) "
                                "to restore the checkpoint into it, or restore a copy under a "
                                "new name with --id NEW-NAME",
                                name, s->old_id, name);
                s->id = strdup(s->old_id);
                s->name = strdup(name);
        } else {
                s->name = strdup(want && !same_name ? want : s->old_name);
        }
        return s->name && (!*live || s->id) ? 0 : cryo_error_set(err, ENOMEM, "out of memory");
}

/* The image, by id: the diff applies to exactly that content.  *ref gets
 * the name to create the container with (the saved one if it still
 * points to that image, else the id). */
static int check_image(struct dk_restore *s, char **ref, struct cryo_error **err) {
        const char *image_id = cryo_json_str(s->saved, "Image", "");
        if (strncmp(image_id, "sha256:", 7) != 0)
                return cryo_error_set(err, EINVAL,
                                      "the checkpoint does not record the container's image id");
        const char *image_name = cryo_json_str(cryo_json_get(s->saved, "Config"), "Image", image_id);
        _cleanup_free_ char *id_path = NULL, *name_esc = dk_url_escape(image_name), *name_path = NULL;
        if (!name_esc || asprintf(&id_path, "/images/%s/json", image_id) < 0 ||
            asprintf(&name_path, "/images/%s/json", name_esc) < 0)
                return cryo_error_set(err, ENOMEM, "out of memory");
        _cleanup_json_ json_object *by_id = NULL, *by_name = NULL;
        _cleanup_error_ struct cryo_error *e = NULL;
        int r = dk_call(s->sock, "GET", id_path, NULL, DK_API_TIMEOUT_MS, &by_id, &e);
        if (r < 0 && r != -ENOENT) {
                if (err && !*err)
                        *err = steal_pointer(&e);
                return r;
        }
        (void) dk_call(s->sock, "GET", name_path, NULL, DK_API_TIMEOUT_MS, &by_name, NULL);
        const char *name_id = cryo_json_str(by_name, "Id", NULL);
        if (r == -ENOENT) {
                char other[160] = "";
                if (name_id)
                        snprintf(other, sizeof(other),
                                 " (the image named %s here is a different one, %.19s)", image_name,
                                 name_id);
                return cryo_error_set(
                        err, ENOENT,
                        "image %s (%.19s) is not on this host%s: the container must be recreated "
                        "from the image it was dumped from. Provide it with 'docker load -i FILE' "
                        "(FILE from 'docker save %s' on the source host) or 'docker pull %s', then "
                        "restore again",
                        image_name, image_id, other, image_name, image_name);
        }
        *ref = strdup(name_id && !strcmp(name_id, image_id) ? image_name : image_id);
        return *ref ? 0 : cryo_error_set(err, ENOMEM, "out of memory");
}

/* "/db:/web/db" (as inspect shows links) -> "db:db" (as create takes them). */
static json_object *convert_links(json_object *links) {
        json_object *out = json_object_new_array();
        for (size_t i = 0; links && i < json_object_array_length(links); i++) {
                const char *l = json_object_get_string(json_object_array_get_idx(links, i));
                const char *colon = l ? strchr(l, ':') : NULL;
                if (!colon)
                        continue;
                const char *alias = strrchr(colon + 1, '/');
                alias = alias ? alias + 1 : colon + 1;
                const char *src = strip_slash(l);
                char buf[512];
                snprintf(buf, sizeof(buf), "%.*s:%s", (int) (colon - src), src, alias);
                json_object_array_add(out, json_object_new_string(buf));
        }
        return out;
}

static bool mounted_at(json_object *host_config, const char *dest) {
        json_object *binds = cryo_json_get(host_config, "Binds");
        for (size_t i = 0; binds && i < json_object_array_length(binds); i++) {
                const char *b = json_object_get_string(json_object_array_get_idx(binds, i));
                const char *d = b ? strchr(b, ':') : NULL;
                if (d && !strncmp(d + 1, dest, strlen(dest)) &&
                    (d[1 + strlen(dest)] == '\0' || d[1 + strlen(dest)] == ':'))
                        return true;
        }
        json_object *mounts = cryo_json_get(host_config, "Mounts");
        for (size_t i = 0; mounts && i < json_object_array_length(mounts); i++)
                if (!strcmp(cryo_json_str(json_object_array_get_idx(mounts, i), "Target", ""), dest))
                        return true;
        return false;
}

/* Anonymous volumes (an image VOLUME, `-v /data`): on the same host the
 * new container takes over the dumped one's volume, whose files the
 * restored processes may hold open; elsewhere it gets a fresh one. */
static int reuse_anonymous_volumes(struct dk_restore *s, json_object *host_config) {
        json_object *mounts = cryo_json_get(s->saved, "Mounts");
        for (size_t i = 0; mounts && i < json_object_array_length(mounts); i++) {
                json_object *m = json_object_array_get_idx(mounts, i);
                const char *vol = cryo_json_str(m, "Name", NULL),
                           *dest = cryo_json_str(m, "Destination", NULL);
                if (strcmp(cryo_json_str(m, "Type", ""), "volume") || !vol || !dest ||
                    mounted_at(host_config, dest))
                        continue;
                _cleanup_free_ char *path = NULL, *bind = NULL;
                if (asprintf(&path, "/volumes/%s", vol) < 0)
                        return -ENOMEM;
                if (dk_call(s->sock, "GET", path, NULL, DK_API_TIMEOUT_MS, NULL, NULL) < 0)
                        continue;
                bool rw = json_object_get_boolean(cryo_json_get(m, "RW"));
                if (asprintf(&bind, "%s:%s%s", vol, dest, rw ? "" : ":ro") < 0)
                        return -ENOMEM;
                json_object *binds = cryo_json_get(host_config, "Binds");
                if (!binds || !json_object_is_type(binds, json_type_array)) {
                        binds = json_object_new_array();
                        json_object_object_add(host_config, "Binds", binds);
                }
                json_object_array_add(binds, json_object_new_string(bind));
        }
        return 0;
}

static json_object *endpoint_config(json_object *saved_ep, const char *old_id, bool user_network) {
        json_object *ep = json_object_new_object();
        json_object *ipam = cryo_json_get(saved_ep, "IPAMConfig");
        if (ipam && json_object_is_type(ipam, json_type_object))
                json_object_object_add(ep, "IPAMConfig", json_object_get(ipam));
        json_object *links = cryo_json_get(saved_ep, "Links");
        if (links && json_object_is_type(links, json_type_array))
                json_object_object_add(ep, "Links", convert_links(links));
        json_object *aliases = cryo_json_get(saved_ep, "Aliases");
        if (user_network && aliases && json_object_is_type(aliases, json_type_array)) {
                /* Docker adds the short id itself; the old one would be stale. */
                json_object *keep = json_object_new_array();
                for (size_t i = 0; i < json_object_array_length(aliases); i++) {
                        const char *a = json_object_get_string(json_object_array_get_idx(aliases, i));
                        if (a && strncmp(a, old_id, strlen(a) < 12 ? 12 : strlen(a)) != 0)
                                json_object_array_add(keep, json_object_new_string(a));
                }
                json_object_object_add(ep, "Aliases", keep);
        }
        return ep;
}

static const char *primary_network(json_object *host_config) {
        const char *mode = cryo_json_str(host_config, "NetworkMode", "default");
        if (!strcmp(mode, "default") || !*mode)
                return "bridge";
        if (!strcmp(mode, "host") || !strcmp(mode, "none") || !strncmp(mode, "container:", 10))
                return NULL;
        return mode;
}

static bool is_builtin_network(const char *name) {
        return !strcmp(name, "bridge") || !strcmp(name, "host") || !strcmp(name, "none");
}

/* Docker 20.10 (API < 1.44) takes one network at create; the others are
 * connected before the start. */
static int connect_networks(struct dk_restore *s, const char *primary, struct cryo_error **err) {
        json_object *networks = cryo_json_path(s->saved, "NetworkSettings/Networks");
        /* host, none and container:X take no other network. */
        if (!primary || !networks || !json_object_is_type(networks, json_type_object))
                return 0;
        json_object_object_foreach (networks, net, saved_ep) {
                if (primary && !strcmp(net, primary))
                        continue;
                _cleanup_free_ char *esc = dk_url_escape(net), *path = NULL;
                if (!esc || asprintf(&path, "/networks/%s/connect", esc) < 0)
                        return cryo_error_set(err, ENOMEM, "out of memory");
                _cleanup_json_ json_object *body = json_object_new_object();
                json_object_object_add(body, "Container", json_object_new_string(s->id));
                json_object_object_add(body, "EndpointConfig",
                                       endpoint_config(saved_ep, s->old_id, !is_builtin_network(net)));
                int r = dk_call(s->sock, "POST", path, body, DK_API_TIMEOUT_MS, NULL, err);
                if (r < 0)
                        return cryo_error_prefix(err, "cannot connect the new container to network %s", net);
        }
        return 0;
}

static int create_container(struct dk_restore *s, struct cryo_error **err) {
        _cleanup_free_ char *image = NULL;
        int r = check_image(s, &image, err);
        if (r < 0)
                return r;
        _cleanup_json_ json_object *body = NULL;
        if (json_object_deep_copy(cryo_json_get(s->saved, "Config"), &body, NULL) < 0)
                return cryo_error_set(err, ENOMEM, "out of memory");
        json_object_object_add(body, "Image", json_object_new_string(image));
        json_object *host_config = NULL;
        if (json_object_deep_copy(cryo_json_get(s->saved, "HostConfig"), &host_config, NULL) < 0)
                return cryo_error_set(err, ENOMEM, "out of memory");
        json_object_object_add(body, "HostConfig", host_config);
        json_object_object_del(host_config, "ContainerIDFile");
        json_object *links = cryo_json_get(host_config, "Links");
        if (links && json_object_is_type(links, json_type_array))
                json_object_object_add(host_config, "Links", convert_links(links));
        if (reuse_anonymous_volumes(s, host_config) < 0)
                return cryo_error_set(err, ENOMEM, "out of memory");

        const char *primary = primary_network(host_config);
        json_object *saved_ep =
                primary ? cryo_json_get(cryo_json_path(s->saved, "NetworkSettings/Networks"), primary)
                        : NULL;
        if (saved_ep) {
                json_object *nc = json_object_new_object(), *eps = json_object_new_object();
                json_object_object_add(eps, primary,
                                       endpoint_config(saved_ep, s->old_id, !is_builtin_network(primary)));
                json_object_object_add(nc, "EndpointsConfig", eps);
                json_object_object_add(body, "NetworkingConfig", nc);
        }

        _cleanup_free_ char *esc = dk_url_escape(s->name), *path = NULL;
        if (!esc || asprintf(&path, "/containers/create?name=%s", esc) < 0)
                return cryo_error_set(err, ENOMEM, "out of memory");
        _cleanup_json_ json_object *created = NULL;
        r = dk_call(s->sock, "POST", path, body, DK_API_TIMEOUT_MS, &created, err);
        if (r < 0)
                return cryo_error_prefix(err, "cannot create container %s from image %s", s->name, image);
        const char *id = cryo_json_str(created, "Id", NULL);
        if (!id || strlen(id) != 64)
                return cryo_error_set(err, EPROTO, "Docker created container %s but returned no id",
                                      s->name);
        if (!(s->id = strdup(id)))
                return cryo_error_set(err, ENOMEM, "out of memory");
        s->created = true;
        return connect_networks(s, primary, err);
}

/* Did the container run on after the dump (--leave-running) or was it
 * started again since?  Then its writable layer may differ from the dumped
 * one, and the dump's diff is applied again. */
static bool ran_since_dump(json_object *live, json_object *manifest) {
        if (json_object_get_boolean(cryo_json_get(cryo_json_get(manifest, "options"), "leave_running")))
                return true;
        const char *started = cryo_json_str(cryo_json_get(live, "State"), "StartedAt", "");
        const char *dumped = cryo_json_str(manifest, "created", "");
        return strlen(started) >= 19 && strlen(dumped) >= 19 && strncmp(started, dumped, 19) >= 0;
}

static int apply_layer(struct dk_restore *s, struct cryo_error **err) {
        uint64_t start = cryo_now_usec();
        _cleanup_json_ json_object *live = NULL;
        int r = docker_inspect_container(s->sock, s->id, NULL, &live, err);
        if (r < 0)
                return r;
        r = dk_apply_rootfs_diff(s->ck, cryo_json_get(live, "GraphDriver"), err);
        if (r < 0)
                return cryo_error_prefix(err, "container %s", s->name);
        cryo_stats_add(&s->ck->stats, CRYO_PHASE_ROOTFS, cryo_now_usec() - start, 0);
        return 0;
}

static char *hints(const struct dk_restore *s) {
        char *out = NULL;
        const struct engine_options *o = &s->req->criu;
        size_t len = 0;
        FILE *f = open_memstream(&out, &len);
        if (!f)
                return NULL;
        if (o->tcp_established)
                fputs("hint: the checkpoint holds established TCP connections, and dockerd passes no CRIU "
                      "options: runc reads them from /etc/criu/runc.conf ('tcp-established' on a line), "
                      "host-wide; or restore with --type containerd\n",
                      f);
        if (o->file_locks)
                fputs("note: file locks are restored only with 'file-locks' in /etc/criu/runc.conf\n", f);
        fclose(f);
        if (out && !*out) {
                free(out);
                out = NULL;
        }
        return out;
}

/* dockerd's message, CRIU's cause from the kept log, and where it is. */
static int start_failed(struct dk_restore *s, struct cryo_error *docker_err, const char *log_path,
                        bool log_kept, struct cryo_error **err) {
        const char *msg = docker_err && docker_err->message ? docker_err->message : "the start failed";
        int code = docker_err ? docker_err->code : EIO;
        _cleanup_free_ char *cause = NULL, *excerpt = NULL, *detail = NULL, *hint = hints(s);
        if (log_kept) {
                _cleanup_free_ char *dir = strdup(log_path);
                char *slash = dir ? strrchr(dir, '/') : NULL;
                if (slash) {
                        *slash = '\0';
                        _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                        if (dfd >= 0)
                                (void) engine_log_explain(dfd, slash + 1, &cause, &excerpt);
                }
        }
        if (asprintf(&detail, "%s%s%s%s%s", excerpt ? excerpt : "", log_kept ? "CRIU log: " : "",
                     log_kept ? log_path : "", log_kept ? "\n" : "", hint ? hint : "") < 0)
                detail = NULL;
        int r;
        if (cause)
                r = cryo_error_set(err, code,
                                   "Docker could not start container %s from the checkpoint: CRIU restore "
                                   "failed: %s (%s)",
                                   s->name, cause, msg);
        else
                r = cryo_error_set(err, code,
                                   "Docker could not start container %s from the checkpoint: %s%s", s->name,
                                   msg,
                                   !log_kept && (strstr(msg, "criu") || strstr(msg, "restore"))
                                           ? " (CRIU's log was not kept: dockerd removes it with the bundle)"
                                           : "");
        if (detail && *detail)
                cryo_error_set_detail(err, detail);
        return r;
}

static int start_from_checkpoint(struct dk_restore *s, struct cryo_error **err) {
        char cp_name[64];
        snprintf(cp_name, sizeof(cp_name), "cryo-%d-%llx", (int) getpid(),
                 (unsigned long long) cryo_now_usec());
        _cleanup_free_ char *cp_dir = NULL;
        if (asprintf(&cp_dir, "%s/containers/%s/checkpoints", s->root_dir, s->id) < 0 ||
            asprintf(&s->staged, "%s/%s", cp_dir, cp_name) < 0)
                return cryo_error_set(err, ENOMEM, "out of memory");
        int r = fs_mkdir_p(cp_dir, 0700, err);
        if (r < 0)
                return r;
        r = dk_stage_images(s->ck, s->staged, err);
        if (r < 0) {
                free(s->staged);
                s->staged = NULL;
                return r;
        }

        _cleanup_free_ char *path = NULL, *log_path = NULL;
        if (asprintf(&path, "/containers/%s/start?checkpoint=%s", s->id, cp_name) < 0 ||
            asprintf(&log_path, CRYO_LOG_DIR "/%s.%s", cryo_json_str(s->ck->manifest, "name", "checkpoint"),
                     CRYO_RESTORE_LOG) < 0)
                return cryo_error_set(err, ENOMEM, "out of memory");
        _cleanup_strv_ char **tmp_before = dk_ctrd_tmp_list();
        struct dk_log_watch watch;
        bool watching = dk_log_watch_start(&watch, s->id, log_path) == 0;
        uint64_t start = cryo_now_usec();
        _cleanup_error_ struct cryo_error *derr = NULL;
        r = dk_call(s->sock, "POST", path, NULL, DK_START_TIMEOUT_MS, NULL, &derr);
        cryo_stats_add(&s->ck->stats, CRYO_PHASE_RESTORE, cryo_now_usec() - start, 0);
        bool kept = watching ? dk_log_watch_finish(&watch, r < 0) : false;
        s->tmp_removed = tmp_before ? dk_ctrd_tmp_cleanup(s->ck, tmp_before) : 0;
        (void) fs_rm_rf(s->staged);
        free(s->staged);
        s->staged = NULL;
        if (r < 0) {
                (void) dk_ctrd_bundle_cleanup(s->id);
                return start_failed(s, derr, log_path, kept, err);
        }
        return 0;
}

static void undo(struct dk_restore *s) {
        if (s->staged)
                (void) fs_rm_rf(s->staged);
        if (s->created && s->id) {
                char path[160];
                snprintf(path, sizeof(path), "/containers/%s?force=1&v=1", s->id);
                (void) dk_call(s->sock, "DELETE", path, NULL, DK_API_TIMEOUT_MS, NULL, NULL);
        }
}

int dk_restore(const struct cryo_request *req, struct cryo_checkpoint *ck, json_object *result,
               struct cryo_error **err) {
        uint64_t start = cryo_now_usec();
        if (json_object_get_boolean(cryo_json_get(ck->manifest, "rootfs_only")) ||
            faccessat(ck->dirfd, CRYO_CRIU_DIR "/inventory.img", F_OK, 0) < 0)
                return cryo_error_set(
                        err, ENOENT,
                        "checkpoint %s has no process images (a --rootfs-only dump?): Docker can "
                        "only start a container from CRIU images",
                        ck->path);
        _cleanup_json_ json_object *config = NULL;
        int r = load_saved(ck, &config, err);
        if (r < 0)
                return cryo_error_prefix(err, "checkpoint %s", ck->path);

        _cleanup_(dk_restore_clear) struct dk_restore s = {
                .req = req,
                .ck = ck,
                .sock = dk_socket(req),
                .saved = cryo_json_get(config, DK_DOCKER_SECTION),
        };
        s.old_id = cryo_json_str(s.saved, "Id", "");
        s.old_name = strdup(strip_slash(cryo_json_str(s.saved, "Name", s.old_id)));
        if (!s.old_name)
                return cryo_error_set(err, ENOMEM, "out of memory");
        r = engine_facts(&s, err);
        if (r < 0)
                return r;
        _cleanup_json_ json_object *live = NULL;
        r = choose_target(&s, &live, err);
        if (r < 0)
                return r;
        cryo_stats_add(&ck->stats, CRYO_PHASE_PREPARE, cryo_now_usec() - start, 0);

        bool same = live != NULL;
        if (!same)
                r = create_container(&s, err);
        if (r >= 0 && (!same || ran_since_dump(live, ck->manifest)))
                r = apply_layer(&s, err);
        if (r >= 0)
                r = start_from_checkpoint(&s, err);
        if (r < 0) {
                undo(&s);
                return r;
        }

        /* The dump suspended the restart policy of this very container. */
        json_object *facts = cryo_json_get(ck->manifest, DK_DOCKER_SECTION);
        if (same && json_object_get_boolean(cryo_json_get(facts, "restart_policy_suspended"))) {
                _cleanup_json_ json_object *body = json_object_new_object();
                json_object_object_add(body, "RestartPolicy",
                                       json_object_get(cryo_json_path(s.saved, "HostConfig/RestartPolicy")));
                char path[128];
                snprintf(path, sizeof(path), "/containers/%s/update", s.id);
                if (dk_call(s.sock, "POST", path, body, DK_API_TIMEOUT_MS, NULL, NULL) < 0)
                        json_object_object_add(
                                result, "warning",
                                json_object_new_string("the restart policy could not be given back"));
        }

        _cleanup_json_ json_object *after = NULL;
        (void) docker_inspect_container(s.sock, s.id, NULL, &after, NULL);
        json_object *state = cryo_json_get(after, "State");
        json_object_object_add(result, "id", json_object_new_string(s.id));
        json_object_object_add(result, "name", json_object_new_string(s.name));
        json_object_object_add(result, "pid", json_object_new_int((int) cryo_json_int(state, "Pid", 0)));
        json_object_object_add(result, "status",
                               json_object_new_string(cryo_json_str(state, "Status", "unknown")));
        json_object_object_add(result, "container", json_object_new_string(same ? "same" : "new"));
        if (s.tmp_removed)
                json_object_object_add(result, "containerd_tmp_removed", json_object_new_int(s.tmp_removed));
        cryo_json_add_str(result, "ip",
                          cryo_json_str(cryo_json_get(after, "NetworkSettings"), "IPAddress", NULL));
        return 0;
}
