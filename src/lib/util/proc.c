/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "proc.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "fs.h"

int proc_read_stat(pid_t pid, pid_t *ppid, char *comm, size_t comm_len, char *state) {
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/stat", pid);
        _cleanup_free_ char *text = NULL;
        if (fs_read_file(AT_FDCWD, path, 4096, &text, NULL, NULL) < 0)
                return -ESRCH;
        /* comm may contain spaces and parentheses: it ends at the last ')'. */
        char *open = strchr(text, '('), *close_paren = strrchr(text, ')');
        if (!open || !close_paren || close_paren < open)
                return -EBADMSG;
        if (comm && comm_len) {
                size_t len = (size_t) (close_paren - open - 1);
                if (len >= comm_len)
                        len = comm_len - 1;
                memcpy(comm, open + 1, len);
                comm[len] = '\0';
        }
        char st = 0;
        int pp = 0;
        if (sscanf(close_paren + 1, " %c %d", &st, &pp) != 2)
                return -EBADMSG;
        if (state)
                *state = st;
        if (ppid)
                *ppid = pp;
        return 0;
}

bool proc_alive(pid_t pid) {
        char state = 0;
        if (pid <= 0 || proc_read_stat(pid, NULL, NULL, 0, &state) < 0)
                return false;
        return state != 'Z' && state != 'X';
}

int proc_tree_collect(pid_t root, struct cryo_proc **out, size_t *n, struct cryo_error **err) {
        _cleanup_closedir_ DIR *d = opendir("/proc");
        if (!d)
                return cryo_error_errno(err, errno, "cannot read /proc");

        size_t cap = 64, count = 0;
        _cleanup_free_ struct cryo_proc *all = calloc(cap, sizeof(*all));
        if (!all)
                return cryo_error_set(err, ENOMEM, "out of memory");
        struct dirent *de;
        while ((de = readdir(d))) {
                if (!isdigit((unsigned char) de->d_name[0]))
                        continue;
                struct cryo_proc p = {.pid = atoi(de->d_name)};
                if (proc_read_stat(p.pid, &p.ppid, p.comm, sizeof(p.comm), NULL) < 0)
                        continue;
                if (count == cap) {
                        struct cryo_proc *bigger = realloc(all, 2 * cap * sizeof(*all));
                        if (!bigger)
                                return cryo_error_set(err, ENOMEM, "out of memory");
                        all = bigger;
                        cap *= 2;
                }
                all[count++] = p;
        }

        _cleanup_free_ struct cryo_proc *tree = calloc(count + 1, sizeof(*tree));
        if (!tree)
                return cryo_error_set(err, ENOMEM, "out of memory");
        size_t nt = 0;
        for (size_t i = 0; i < count; i++)
                if (all[i].pid == root)
                        tree[nt++] = all[i];
        if (nt == 0)
                return cryo_error_set(err, ESRCH, "no process with pid %d", root);
        /* Breadth-first: every member's children join the list after it. */
        for (size_t head = 0; head < nt; head++)
                for (size_t i = 0; i < count; i++)
                        if (all[i].ppid == tree[head].pid && all[i].pid != root && nt < count)
                                tree[nt++] = all[i];
        *out = steal_pointer(&tree);
        *n = nt;
        return 0;
}

/* Appends the pids listed in a children file ("12 13 ") to the queue. */
static int queue_children(const char *text, pid_t **queue, size_t *n, size_t *cap) {
        for (const char *p = text; *p;) {
                char *end;
                long pid = strtol(p, &end, 10);
                if (end == p)
                        break;
                if (*n == *cap) {
                        pid_t *bigger = realloc(*queue, 2 * *cap * sizeof(**queue));
                        if (!bigger)
                                return -ENOMEM;
                        *queue = bigger;
                        *cap *= 2;
                }
                (*queue)[(*n)++] = (pid_t) pid;
                p = end;
                while (*p == ' ' || *p == '\n')
                        p++;
        }
        return 0;
}

int proc_tree_in_one_cgroup(pid_t root, bool *one, struct cryo_error **err) {
        char path[96];
        snprintf(path, sizeof(path), "/proc/%d/cgroup", root);
        _cleanup_free_ char *want = NULL;
        if (fs_read_file(AT_FDCWD, path, 64u << 10, &want, NULL, NULL) < 0)
                return cryo_error_set(err, ESRCH, "cannot read the cgroups of pid %d", root);
        size_t n = 1, cap = 16;
        _cleanup_free_ pid_t *queue = malloc(cap * sizeof(*queue));
        if (!queue)
                return cryo_error_set(err, ENOMEM, "out of memory");
        queue[0] = root;
        *one = true;
        for (size_t head = 0; head < n && *one; head++) {
                snprintf(path, sizeof(path), "/proc/%d/task", queue[head]);
                _cleanup_closedir_ DIR *d = opendir(path);
                /* Gone since its parent listed it: the tree was not frozen. */
                if (!d) {
                        *one = false;
                        break;
                }
                struct dirent *de;
                while (*one && (de = readdir(d))) {
                        if (!isdigit((unsigned char) de->d_name[0]))
                                continue;
                        _cleanup_free_ char *got = NULL, *children = NULL;
                        int tid = atoi(de->d_name);
                        snprintf(path, sizeof(path), "/proc/%d/task/%d/cgroup", queue[head], tid);
                        if (fs_read_file(AT_FDCWD, path, 64u << 10, &got, NULL, NULL) < 0 ||
                            strcmp(got, want)) {
                                *one = false;
                                break;
                        }
                        snprintf(path, sizeof(path), "/proc/%d/task/%d/children", queue[head], tid);
                        if (fs_read_file(AT_FDCWD, path, 1u << 20, &children, NULL, NULL) < 0) {
                                *one = false;
                                break;
                        }
                        if (queue_children(children, &queue, &n, &cap) < 0)
                                return cryo_error_set(err, ENOMEM, "out of memory");
                }
        }
        return 0;
}

bool proc_in_our_ns(pid_t pid, const char *kind) {
        char theirs[64], ours[64];
        struct stat a, b;
        snprintf(theirs, sizeof(theirs), "/proc/%d/ns/%s", pid, kind);
        snprintf(ours, sizeof(ours), "/proc/self/ns/%s", kind);
        return stat(theirs, &a) == 0 && stat(ours, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev;
}

json_object *proc_tree_to_json(const struct cryo_proc *procs, size_t n) {
        json_object *arr = json_object_new_array();
        for (size_t i = 0; arr && i < n; i++) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "pid", json_object_new_int(procs[i].pid));
                json_object_object_add(o, "ppid", json_object_new_int(procs[i].ppid));
                json_object_object_add(o, "comm", json_object_new_string(procs[i].comm));
                json_object_array_add(arr, o);
        }
        return arr;
}

int proc_wait_gone(pid_t pid, int timeout_ms) {
        for (int waited = 0; waited < timeout_ms; waited += 10) {
                if (kill(pid, 0) < 0 && errno == ESRCH)
                        return 0;
                struct timespec ts = {0, 10 * 1000 * 1000};
                nanosleep(&ts, NULL);
        }
        return -ETIMEDOUT;
}

bool proc_is_pidns_init(pid_t pid) {
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/status", pid);
        _cleanup_free_ char *text = NULL;
        if (fs_read_file(AT_FDCWD, path, 1 << 16, &text, NULL, NULL) < 0)
                return false;
        /* "NSpid:\t4242\t1": the pid in each namespace, ours first. */
        const char *line = strstr(text, "\nNSpid:");
        if (!line)
                return false;
        const char *end = strchr(line + 1, '\n');
        const char *last = NULL;
        int fields = 0;
        for (const char *p = line + 7; *p && p != end; p++)
                if (*p == '\t') {
                        last = p + 1;
                        fields++;
                }
        return fields > 1 && last && atoi(last) == 1;
}

pid_t proc_tracer(pid_t pid) {
        char path[64], line[256];
        snprintf(path, sizeof(path), "/proc/%d/status", pid);
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        while (f && fgets(line, sizeof(line), f))
                if (!strncmp(line, "TracerPid:", 10))
                        return (pid_t) strtol(line + 10, NULL, 10);
        return 0;
}
