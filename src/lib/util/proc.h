/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "error.h"

struct cryo_proc {
        pid_t pid;
        pid_t ppid;
        char comm[32];
};

bool proc_alive(pid_t pid);
/* The tree rooted at `root` (root first, then descendants), read from /proc. */
int proc_tree_collect(pid_t root, struct cryo_proc **out, size_t *n, struct cryo_error **err);
/* Whether every thread of the tree rooted at `root` is in root's cgroups
 * (the same /proc/PID/cgroup lines).  The tree is walked through the
 * children files: frozen, it cannot fork or move meanwhile. */
int proc_tree_in_one_cgroup(pid_t root, bool *one, struct cryo_error **err);
/* Whether `pid` is in our own namespace of that kind ("cgroup", "net"...). */
bool proc_in_our_ns(pid_t pid, const char *kind);
json_object *proc_tree_to_json(const struct cryo_proc *procs, size_t n);
/* Reads /proc/<pid>/stat fields. */
int proc_read_stat(pid_t pid, pid_t *ppid, char *comm, size_t comm_len, char *state);

/* The pid of the process ptrace-attached to `pid`, or 0. */
pid_t proc_tracer(pid_t pid);

/* Is `pid` the init (pid 1) of a pid namespace below ours? */
bool proc_is_pidns_init(pid_t pid);

/* Waits for `pid` to leave the process table (zombie reaped or gone). */
int proc_wait_gone(pid_t pid, int timeout_ms);
