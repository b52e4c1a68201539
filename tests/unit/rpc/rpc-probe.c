/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * rpc-probe: drives src/lib/rpc against real daemons for
 * tests/integration/rpc.sh.  Prints key=value lines; on failure prints
 * "error: <message>" and exits with the errno (ENOENT -> 2, ...).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cri_runtime.pb-c.h"
#include "rpc/containerd.h"
#include "rpc/cri.h"
#include "rpc/docker.h"

static const char *address = CTRD_DEFAULT_ADDRESS, *namespace_ = CTRD_DEFAULT_NAMESPACE, *lease = NULL;
static const char *docker_socket = DOCKER_DEFAULT_SOCKET;
static int timeout_ms = CTRD_DEFAULT_TIMEOUT_MS;

static int fail(struct cryo_error *err, int r) {
        fprintf(stderr, "error: %s\n", err ? err->message : strerror(-r));
        if (err && err->detail)
                fprintf(stderr, "detail: %s\n", err->detail);
        fprintf(stderr, "errno: %s\n", strerrorname_np(-r) ? strerrorname_np(-r) : "?");
        cryo_error_free(err);
        return -r > 0 && -r < 126 ? -r : 1;
}

static double ms_since(const struct timespec *a) {
        struct timespec b;
        clock_gettime(CLOCK_MONOTONIC, &b);
        return (double) (b.tv_sec - a->tv_sec) * 1e3 + (double) (b.tv_nsec - a->tv_nsec) / 1e6;
}

static void print_labels(const char *prefix, const struct ctrd_labels *l) {
        for (size_t i = 0; i < l->n; i++)
                printf("%s.%s=%s\n", prefix, l->items[i].key, l->items[i].value);
}

static void print_container(const struct ctrd_container *ct) {
        printf("id=%s\nimage=%s\nruntime=%s\nruntime_options_type=%s\nsnapshotter=%s\nsnapshot_key=%s\n"
               "spec_type=%s\nspec_bytes=%zu\n",
               ct->id, ct->image, ct->runtime_name, ct->runtime_options.type_url, ct->snapshotter,
               ct->snapshot_key, ct->spec.type_url, ct->spec.len);
        print_labels("label", &ct->labels);
}

static int cmd_containerd(struct ctrd_client *c, int argc, char **argv) {
        struct cryo_error *err = NULL;
        const char *cmd = argv[0];
        int r = 0;

        if (strcmp(cmd, "version") == 0) {
                _cleanup_free_ char *v = NULL, *rev = NULL;
                r = ctrd_version(c, &v, &rev, &err);
                if (r >= 0)
                        printf("version=%s\nrevision=%s\n", v, rev);
        } else if (strcmp(cmd, "bench") == 0 && argc == 2) {
                int n = atoi(argv[1]);
                struct timespec t0;
                clock_gettime(CLOCK_MONOTONIC, &t0);
                for (int i = 0; i < n && r >= 0; i++) {
                        _cleanup_free_ char *v = NULL;
                        r = ctrd_version(c, &v, NULL, &err);
                }
                if (r >= 0)
                        printf("calls=%d\nms_per_call=%.3f\n", n, ms_since(&t0) / n);
        } else if (strcmp(cmd, "namespaces") == 0) {
                _cleanup_strv_ char **names = NULL;
                r = ctrd_namespace_list(c, &names, &err);
                for (char **p = names; r >= 0 && *p; p++)
                        printf("namespace=%s\n", *p);
        } else if (strcmp(cmd, "ns-exists") == 0 && argc == 2) {
                r = ctrd_namespace_exists(c, argv[1], &err);
                if (r >= 0)
                        printf("exists=%d\n", r);
        } else if (strcmp(cmd, "container-get") == 0 && argc == 2) {
                struct ctrd_container ct = {0};
                r = ctrd_container_get(c, argv[1], &ct, &err);
                if (r >= 0) {
                        print_container(&ct);
                        struct ctrd_runc_options o = {0};
                        if (ctrd_runc_options_decode(&ct.runtime_options, &o, NULL) >= 0)
                                printf("runc.binary_name=%s\nrunc.root=%s\nrunc.systemd_cgroup=%d\n",
                                       o.binary_name, o.root, o.systemd_cgroup);
                        ctrd_runc_options_clear(&o);
                }
                ctrd_container_clear(&ct);
        } else if (strcmp(cmd, "container-spec") == 0 && argc == 2) {
                struct ctrd_container ct = {0};
                r = ctrd_container_get(c, argv[1], &ct, &err);
                if (r >= 0)
                        fwrite(ct.spec.value, 1, ct.spec.len, stdout);
                ctrd_container_clear(&ct);
        } else if (strcmp(cmd, "container-list") == 0) {
                struct ctrd_containers l = {0};
                r = ctrd_container_list(c, argc > 1 ? argv[1] : NULL, &l, &err);
                for (size_t i = 0; r >= 0 && i < l.n; i++)
                        printf("container=%s image=%s\n", l.items[i].id, l.items[i].image);
                ctrd_containers_clear(&l);
        } else if (strcmp(cmd, "container-clone") == 0 && argc == 3) {
                /* Create a (task-less) copy of a container under a new id. */
                struct ctrd_container ct = {0};
                r = ctrd_container_get(c, argv[1], &ct, &err);
                if (r >= 0) {
                        free(ct.id);
                        ct.id = strdup(argv[2]);
                        free(ct.snapshot_key);
                        ct.snapshot_key = strdup("");
                        ctrd_labels_set(&ct.labels, "cryo.test", "clone");
                        r = ctrd_container_create(c, &ct, &err);
                }
                ctrd_container_clear(&ct);
        } else if (strcmp(cmd, "container-delete") == 0 && argc == 2) {
                r = ctrd_container_delete(c, argv[1], &err);
        } else if (strcmp(cmd, "task-get") == 0 && argc == 2) {
                struct ctrd_process p = {0};
                r = ctrd_task_get(c, argv[1], &p, &err);
                if (r >= 0)
                        printf("container_id=%s\nexec_id=%s\npid=%u\nstatus=%s\n", p.container_id, p.exec_id,
                               p.pid, ctrd_task_status_name(p.status));
                ctrd_process_clear(&p);
        } else if (strcmp(cmd, "task-list") == 0) {
                struct ctrd_processes l = {0};
                r = ctrd_task_list(c, &l, &err);
                for (size_t i = 0; r >= 0 && i < l.n; i++)
                        printf("task=%s pid=%u status=%s\n", l.items[i].container_id, l.items[i].pid,
                               ctrd_task_status_name(l.items[i].status));
                ctrd_processes_clear(&l);
        } else if (strcmp(cmd, "task-checkpoint") == 0 && argc >= 2) {
                /* task-checkpoint ID [exit]: print what containerd stored */
                struct ctrd_runc_checkpoint_opts o = {.exit = argc > 2 && strcmp(argv[2], "exit") == 0};
                struct ctrd_any opts = {0};
                struct ctrd_descriptors d = {0};
                r = ctrd_runc_checkpoint_options(&o, &opts, &err);
                if (r >= 0)
                        r = ctrd_task_checkpoint(c, argv[1], &opts, &d, &err);
                for (size_t i = 0; r >= 0 && i < d.n; i++)
                        printf("descriptor=%s %s %lld\n", d.items[i].media_type, d.items[i].digest,
                               (long long) d.items[i].size);
                ctrd_descriptors_clear(&d);
                ctrd_any_clear(&opts);
        } else if (strcmp(cmd, "task-create") == 0 && (argc == 2 || argc == 5)) {
                /* task-create ID [MEDIA_TYPE DIGEST SIZE]: with the
                 * container's snapshot as rootfs, optionally restoring. */
                struct ctrd_container ct = {0};
                struct ctrd_mounts m = {0};
                r = ctrd_container_get(c, argv[1], &ct, &err);
                if (r >= 0)
                        r = ctrd_snapshot_mounts(c, ct.snapshotter, ct.snapshot_key, &m, &err);
                struct ctrd_descriptor ckpt = {0};
                if (argc == 5) {
                        ckpt.media_type = argv[2];
                        ckpt.digest = argv[3];
                        ckpt.size = atoll(argv[4]);
                }
                struct ctrd_task_opts o = {.container_id = argv[1],
                                           .rootfs = m.items,
                                           .n_rootfs = m.n,
                                           .checkpoint = argc == 5 ? &ckpt : NULL};
                uint32_t pid = 0;
                struct timespec t0;
                clock_gettime(CLOCK_MONOTONIC, &t0);
                if (r >= 0)
                        r = ctrd_task_create(c, &o, &pid, &err);
                if (r >= 0)
                        printf("pid=%u\nms=%.1f\n", pid, ms_since(&t0));
                ctrd_mounts_clear(&m);
                ctrd_container_clear(&ct);
        } else if (strcmp(cmd, "task-start") == 0 && argc == 2) {
                uint32_t pid = 0;
                r = ctrd_task_start(c, argv[1], &pid, &err);
                if (r >= 0)
                        printf("pid=%u\n", pid);
        } else if (strcmp(cmd, "task-pause") == 0 && argc == 2) {
                r = ctrd_task_pause(c, argv[1], &err);
        } else if (strcmp(cmd, "task-resume") == 0 && argc == 2) {
                r = ctrd_task_resume(c, argv[1], &err);
        } else if (strcmp(cmd, "task-kill") == 0 && argc == 3) {
                r = ctrd_task_kill(c, argv[1], atoi(argv[2]), false, &err);
        } else if (strcmp(cmd, "task-wait") == 0 && argc == 3) {
                uint32_t st = 0;
                r = ctrd_task_wait(c, argv[1], atoi(argv[2]), &st, &err);
                if (r >= 0)
                        printf("exit_status=%u\n", st);
        } else if (strcmp(cmd, "task-delete") == 0 && argc == 2) {
                uint32_t st = 0;
                r = ctrd_task_delete(c, argv[1], &st, &err);
                if (r >= 0)
                        printf("exit_status=%u\n", st);
        } else if (strcmp(cmd, "image-get") == 0 && argc == 2) {
                struct ctrd_image img = {0};
                r = ctrd_image_get(c, argv[1], &img, &err);
                if (r >= 0)
                        printf("name=%s\ntarget.media_type=%s\ntarget.digest=%s\ntarget.size=%lld\n",
                               img.name, img.target.media_type, img.target.digest,
                               (long long) img.target.size);
                ctrd_image_clear(&img);
        } else if (strcmp(cmd, "image-list") == 0) {
                struct ctrd_images l = {0};
                r = ctrd_image_list(c, argc > 1 ? argv[1] : NULL, &l, &err);
                for (size_t i = 0; r >= 0 && i < l.n; i++)
                        printf("image=%s digest=%s\n", l.items[i].name, l.items[i].target.digest);
                ctrd_images_clear(&l);
        } else if (strcmp(cmd, "content-put") == 0 && argc >= 3) {
                _cleanup_close_ int fd = open(argv[2], O_RDONLY | O_CLOEXEC);
                if (fd < 0)
                        return fail(NULL, -errno);
                struct ctrd_labels labels = {0};
                for (int i = 4; i < argc; i++) {
                        char *eq = strchr(argv[i], '=');
                        if (eq) {
                                *eq = '\0';
                                ctrd_labels_set(&labels, argv[i], eq + 1);
                        }
                }
                _cleanup_free_ char *digest = NULL;
                struct timespec t0;
                clock_gettime(CLOCK_MONOTONIC, &t0);
                off_t size = lseek(fd, 0, SEEK_END);
                lseek(fd, 0, SEEK_SET);
                r = ctrd_content_write_from_fd(c, fd, size, argv[1], argc > 3 && *argv[3] ? argv[3] : NULL,
                                               &labels, &digest, &err);
                if (r >= 0)
                        printf("digest=%s\nms=%.1f\n", digest, ms_since(&t0));
                ctrd_labels_clear(&labels);
        } else if (strcmp(cmd, "content-get") == 0 && argc == 3) {
                _cleanup_close_ int fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
                if (fd < 0)
                        return fail(NULL, -errno);
                int64_t size = 0;
                struct timespec t0;
                clock_gettime(CLOCK_MONOTONIC, &t0);
                r = ctrd_content_read_to_fd(c, argv[1], fd, &size, &err);
                if (r >= 0)
                        printf("size=%lld\nms=%.1f\n", (long long) size, ms_since(&t0));
        } else if (strcmp(cmd, "content-info") == 0 && argc == 2) {
                struct ctrd_content_info i = {0};
                r = ctrd_content_info(c, argv[1], &i, &err);
                if (r >= 0) {
                        printf("digest=%s\nsize=%lld\n", i.digest, (long long) i.size);
                        print_labels("label", &i.labels);
                }
                ctrd_content_info_clear(&i);
        } else if (strcmp(cmd, "content-delete") == 0 && argc == 2) {
                r = ctrd_content_delete(c, argv[1], &err);
        } else if (strcmp(cmd, "lease-create") == 0) {
                _cleanup_free_ char *id = NULL;
                r = ctrd_lease_create(c, argc > 1 ? argv[1] : NULL, NULL, &id, &err);
                if (r >= 0)
                        printf("lease=%s\n", id);
        } else if (strcmp(cmd, "lease-delete") == 0 && argc == 2) {
                r = ctrd_lease_delete(c, argv[1], true, &err);
        } else if (strcmp(cmd, "snapshot-stat") == 0 && argc == 2) {
                struct ctrd_snapshot_info i = {0};
                r = ctrd_snapshot_stat(c, NULL, argv[1], &i, &err);
                if (r >= 0) {
                        printf("name=%s\nparent=%s\nkind=%d\n", i.name, i.parent, i.kind);
                        print_labels("label", &i.labels);
                }
                ctrd_snapshot_info_clear(&i);
        } else if (strcmp(cmd, "snapshot-mounts") == 0 && argc == 2) {
                struct ctrd_mounts m = {0};
                r = ctrd_snapshot_mounts(c, NULL, argv[1], &m, &err);
                for (size_t i = 0; r >= 0 && i < m.n; i++) {
                        printf("mount=%s %s", m.items[i].type, m.items[i].source);
                        for (char **o = m.items[i].options; *o; o++)
                                printf(" %s", *o);
                        printf("\n");
                }
                ctrd_mounts_clear(&m);
        } else if (strcmp(cmd, "snapshot-prepare") == 0 && argc == 3) {
                r = ctrd_snapshot_prepare(c, NULL, argv[1], argv[2], NULL, NULL, &err);
        } else if (strcmp(cmd, "snapshot-view") == 0 && argc == 3) {
                struct ctrd_mounts m = {0};
                r = ctrd_snapshot_view(c, NULL, argv[1], argv[2], NULL, &m, &err);
                for (size_t i = 0; r >= 0 && i < m.n; i++)
                        printf("mount=%s %s\n", m.items[i].type, m.items[i].source);
                ctrd_mounts_clear(&m);
        } else if (strcmp(cmd, "snapshot-commit") == 0 && argc == 3) {
                struct ctrd_labels l = {0};
                ctrd_labels_set(&l, "cryo.test", "commit");
                r = ctrd_snapshot_commit(c, NULL, argv[1], argv[2], &l, &err);
                ctrd_labels_clear(&l);
        } else if (strcmp(cmd, "snapshot-remove") == 0 && argc == 2) {
                r = ctrd_snapshot_remove(c, NULL, argv[1], &err);
        } else if (strcmp(cmd, "events") == 0 && argc >= 3) {
                /* events N WAIT_MS [filter...]: print up to N topics */
                struct ctrd_events *ev = NULL;
                r = ctrd_events_subscribe(c, (const char *const *) (argc > 3 ? argv + 3 : NULL), &ev, &err);
                printf("subscribed\n");
                fflush(stdout);
                for (int i = 0; r >= 0 && i < atoi(argv[1]); i++) {
                        struct ctrd_event e = {0};
                        r = ctrd_events_next(ev, atoi(argv[2]), &e, &err);
                        if (r > 0)
                                printf("event=%s namespace=%s type=%s\n", e.topic, e.namespace_,
                                       e.event.type_url);
                        fflush(stdout);
                        ctrd_event_clear(&e);
                }
                ctrd_events_free(ev);
        } else if (strcmp(cmd, "cri-version-raw") == 0) {
                /* Raw use of grpc.h with generated types. */
                Runtime__V1__VersionRequest req = RUNTIME__V1__VERSION_REQUEST__INIT;
                req.version = "v1";
                _cleanup_pb_ Runtime__V1__VersionResponse *resp = NULL;
                r = grpc_unary(ctrd_conn(c), "/runtime.v1.RuntimeService/Version", NULL, &req.base,
                               &runtime__v1__version_response__descriptor, (ProtobufCMessage **) &resp,
                               timeout_ms, &err);
                if (r >= 0)
                        printf("runtime_name=%s\nruntime_version=%s\nruntime_api_version=%s\n",
                               resp->runtime_name, resp->runtime_version, resp->runtime_api_version);
        } else if (strcmp(cmd, "cri-version") == 0) {
                _cleanup_free_ char *name = NULL, *version = NULL;
                r = cri_version(ctrd_conn(c), &name, &version, &err);
                if (r >= 0)
                        printf("runtime_name=%s\nruntime_version=%s\n", name, version);
        } else if (strcmp(cmd, "cri-pods") == 0) {
                struct cri_pods l = {0};
                r = cri_list_pods(ctrd_conn(c), NULL, &l, &err);
                for (size_t i = 0; r >= 0 && i < l.n; i++)
                        printf("pod=%s name=%s/%s ready=%d\n", l.items[i].id, l.items[i].namespace_,
                               l.items[i].name, l.items[i].ready);
                if (r >= 0)
                        printf("pods=%zu\n", l.n);
                cri_pods_clear(&l);
        } else if (strcmp(cmd, "cri-containers") == 0) {
                struct cri_containers l = {0};
                r = cri_list_containers(ctrd_conn(c), argc > 1 ? argv[1] : NULL, NULL, &l, &err);
                for (size_t i = 0; r >= 0 && i < l.n; i++)
                        printf("container=%s pod=%s name=%s state=%d\n", l.items[i].id,
                               l.items[i].pod_sandbox_id, l.items[i].name, l.items[i].state);
                if (r >= 0)
                        printf("containers=%zu\n", l.n);
                cri_containers_clear(&l);
        } else if (strcmp(cmd, "cri-container-status") == 0 && argc == 2) {
                struct cri_container_status st = {0};
                r = cri_container_status(ctrd_conn(c), argv[1], &st, &err);
                if (r >= 0)
                        printf("id=%s\nname=%s\nstate=%d\nlog_path=%s\n", st.container.id, st.container.name,
                               st.container.state, st.log_path);
                cri_container_status_clear(&st);
        } else if (strcmp(cmd, "cri-pod-status") == 0 && argc == 2) {
                struct cri_pod_status st = {0};
                r = cri_pod_status(ctrd_conn(c), argv[1], &st, &err);
                if (r >= 0)
                        printf("id=%s\nname=%s\nip=%s\nnetwork_mode=%d\n", st.pod.id, st.pod.name, st.ip,
                               st.network);
                cri_pod_status_clear(&st);
        } else {
                fprintf(stderr, "unknown command or wrong arguments: %s\n", cmd);
                return 64;
        }
        return r < 0 ? fail(err, r) : 0;
}

int main(int argc, char **argv) {
        int opt;
        while ((opt = getopt(argc, argv, "+a:n:l:d:t:")) != -1) {
                switch (opt) {
                case 'a':
                        address = optarg;
                        break;
                case 'n':
                        namespace_ = optarg;
                        break;
                case 'l':
                        lease = optarg;
                        break;
                case 'd':
                        docker_socket = optarg;
                        break;
                case 't':
                        timeout_ms = atoi(optarg);
                        break;
                default:
                        return 64;
                }
        }
        if (optind >= argc) {
                fprintf(stderr, "usage: rpc-probe [-a address] [-n namespace] [-l lease] [-d docker-socket] "
                                "[-t timeout-ms] command [args]\n");
                return 64;
        }
        argv += optind;
        argc -= optind;

        struct cryo_error *err = NULL;
        if (strcmp(argv[0], "docker-inspect") == 0 && argc == 2) {
                _cleanup_free_ char *id = NULL;
                struct json_object *o = NULL, *v = NULL;
                int r = docker_inspect_container(docker_socket, argv[1], &id, &o, &err);
                if (r < 0)
                        return fail(err, r);
                printf("id=%s\n", id);
                if (json_object_object_get_ex(o, "Name", &v))
                        printf("name=%s\n", json_object_get_string(v));
                if (json_object_object_get_ex(o, "Image", &v))
                        printf("image=%s\n", json_object_get_string(v));
                struct json_object *state = NULL;
                if (json_object_object_get_ex(o, "State", &state) &&
                    json_object_object_get_ex(state, "Pid", &v))
                        printf("pid=%d\n", json_object_get_int(v));
                json_object_put(o);
                return 0;
        }

        struct timespec t0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        struct ctrd_client *c = NULL;
        int r = ctrd_open(address, namespace_, &c, &err);
        if (r < 0)
                return fail(err, r);
        if (getenv("RPC_PROBE_TIMING"))
                fprintf(stderr, "connect_ms=%.3f\n", ms_since(&t0));
        ctrd_set_timeout(c, timeout_ms);
        if (lease)
                ctrd_set_lease(c, lease, NULL);
        r = cmd_containerd(c, argc, argv);
        ctrd_close(c);
        return r;
}
