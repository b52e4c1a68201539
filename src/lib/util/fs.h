/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <dirent.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/types.h>

#include "error.h"

/* Creates `path` and missing parents with `mode`; existing dirs are fine. */
int fs_mkdir_p(const char *path, mode_t mode, struct cryo_error **err);
/* Removes a tree without following symlinks; a missing path is success. */
int fs_rm_rf(const char *path);
/* In place: mountinfo writes space, tab, newline and backslash as \ooo. */
void fs_unescape_mountinfo(char *s);
/*
 * One line of /proc/PID/mountinfo (proc(5)), split in place: the strings
 * point into `line`.  root, mount_point, fstype and source are unescaped;
 * super_options are not, since overlayfs escapes ',' and '=' in its values:
 * split them on ',' first.  Returns false for a malformed line.
 */
struct fs_mountinfo_line {
        const char *devid; /* major:minor */
        const char *root, *mount_point, *mount_options;
        const char *fstype, *source, *super_options;
        bool propagates; /* optional fields: shared, slave or unbindable */
};
bool fs_mountinfo_split(char *line, struct fs_mountinfo_line *m);
/* Detaches every mount whose mount point `match` accepts (newest first);
 * returns how many. */
int fs_umount_if(bool (*match)(const char *point, void *arg), void *arg);
/* Removes a work directory CRIU used: a CRIU killed mid-way (a restore that
 * failed its checksums at pre-resume) leaves its cgroup yard mounted there,
 * and fs_rm_rf() does not cross mounts. */
int fs_rm_work_dir(const char *path);
/*
 * Temporary directories (a dump being written, an archive being extracted,
 * CRIU's work directory) are held, with flock(2) on a descriptor of theirs,
 * for as long as their maker lives; one that a killed or crashed cryo left
 * is held by nobody.  fs_hold() takes that lock on `dirfd`.
 * fs_sweep_unheld() removes the entries of `root` that `match` accepts and
 * nobody holds, once they are `min_age_sec` old (a maker takes its lock
 * just after mkdtemp(), not at once); returns how many, or a negative errno.
 */
int fs_hold(int dirfd);
int fs_sweep_unheld(const char *root, bool (*match)(const char *name), unsigned min_age_sec);
/* Is `name` what mkdtemp() makes of `stem`XXXXXX: the whole name (`whole`)
 * or its end? */
bool fs_mkdtemp_name(const char *name, const char *stem, bool whole);
/* Writes `len` bytes to dirfd/name (created with `mode`, truncated) and fsyncs it. */
/* Writes all of buf, retrying short writes and EINTR; negative errno.
 * fs_pwrite_all() writes at `off` (a negative `off`: at the file offset). */
int fs_write_all(int fd, const void *buf, size_t len);
int fs_pwrite_all(int fd, const void *buf, size_t len, off_t off);
int fs_write_file(int dirfd, const char *name, const void *buf, size_t len, mode_t mode,
                  struct cryo_error **err);
/* The same without the fsync: for the files of a checkpoint being written,
 * which ckpt_commit() syncs all at once (fs_sync_tree()), and scratch files. */
int fs_write_file_unsynced(int dirfd, const char *name, const void *buf, size_t len, mode_t mode,
                           struct cryo_error **err);
/* Reads a whole file (at most `max` bytes, else -EFBIG); result is NUL-terminated. */
int fs_read_file(int dirfd, const char *name, size_t max, char **out, size_t *out_len,
                 struct cryo_error **err);
/* Reads an fd (a pipe, say) to its end, at most `max` bytes; NUL-terminated. */
int fs_read_fd(int fd, size_t max, char **out, size_t *out_len, struct cryo_error **err);
/* fsyncs every regular file and directory below dirfd, then dirfd itself. */
int fs_sync_tree(int dirfd, struct cryo_error **err);
/* fsyncs the directory holding `path`, so that a rename into it is durable (best effort). */
void fs_sync_parent(const char *path);
/* Total apparent size of regular files below dirfd. */
int fs_tree_size(int dirfd, uint64_t *bytes);
bool fs_is_dir(const char *path);
/* Lists dirfd from its start, through a new open file description: a
 * dup() would share the offset, so a second listing of the same fd would
 * see nothing.  NULL with errno set on failure. */
DIR *fs_opendir_at(int dirfd);
/* Joins two path components with exactly one '/'. Returns NULL on ENOMEM. */
char *fs_path_join(const char *a, const char *b);
/* The path of the executable `name` installed beside the running program
 * (cryo's small helpers), or NULL (errno set) if there is none. */
char *fs_sibling_program(const char *name);

/* For a scratch directory owned by a scope: removes the tree, frees the name.
 * To keep the tree, steal the pointer first. */
static inline void fs_rm_rf_freep(char **path) {
        if (*path) {
                (void) fs_rm_rf(*path);
                free(*path);
        }
}
