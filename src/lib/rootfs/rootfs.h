/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Container root file system changes: overlay upperdir -> rootfs-diff.tar +
 * deleted.files, and back onto a fresh copy of the image (Podman/CRI-O/
 * checkpointctl compatible names and formats).
 *
 * rootfs-diff.tar
 *      An uncompressed POSIX pax tar of everything present in the upperdir
 *      (added and modified files, directories, symlinks, device nodes,
 *      fifos), member names relative to the container root ("etc/motd", no
 *      leading "/" or "./"), sorted per directory, parents before children.
 *      Regular files, owners (numeric), modes incl. setuid/setgid/sticky,
 *      nanosecond mtimes, xattrs (user.*, security.* such as
 *      security.capability, system.posix_acl_*) are kept; overlay-private
 *      xattrs (trusted.overlay.*, user.overlay.*) are dropped.  Hard links
 *      between upper files are stored as tar hard links.  Sockets are
 *      skipped.  The root directory itself is not stored.
 *
 * deleted.files
 *      A JSON array of absolute container paths, e.g. ["/etc/motd","/var/cache/x"],
 *      the format Podman writes (checkpointctl's DeletedFilesFile).  It lists:
 *        - every whiteout (a 0:0 character device; also an empty file with
 *          the *.overlay.whiteout xattr) -> the path it hides;
 *        - every opaque directory (trusted.overlay.opaque=y or
 *          user.overlay.opaque=y) -> the directory itself.  Apply deletes
 *          first and extracts second, so the lower directory goes away with
 *          all its content and is re-created from the tar with only the
 *          upper content, which is what opacity means.  Podman's diff
 *          (containers/storage) reports opaque directories as deleted the
 *          same way: with Podman 5.4 a container that ran
 *          `rm /etc/motd; rm -rf /data; mkdir /data; echo x > /data/new` produced
 *          deleted.files ["/data","/etc/motd"] here, as cryo does.
 *          Podman's restore, however, untars first and deletes afterwards
 *          (os.RemoveAll), so it loses such a re-created directory, with its
 *          own archives as with cryo's; cryo's apply restores both right.
 *        - every redirected directory (overlay redirect_dir, a renamed
 *          directory): listed like an opaque one, and its full content is
 *          archived from the merged view (opts->merged_dir).
 *      The file is always written (possibly "[]"); apply treats a missing
 *      file as empty.
 *
 * Excludes are container paths of mount points ("/proc", "/dev/shm",
 * "/etc/hosts", bind mounts, tmpfs): the entry at that path and everything
 * below it in the upperdir are left out (what a process saw there was the
 * mount, not the upper content).  Callers pass every mount destination of
 * the OCI spec.
 */
#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

#include "rootfs/tar.h"
#include "util/error.h"

#define ROOTFS_DIFF_TAR      "rootfs-diff.tar"
#define ROOTFS_DELETED_FILES "deleted.files"

struct rootfs_capture_opts {
        /* NULL-terminated container paths of mount points; may be NULL */
        const char *const *excludes;
        /* The merged view of the overlay (e.g. "/proc/<pid>/root" of a
         * container process, or the host mount point).  Only needed when the
         * upperdir uses metacopy=on (file data in a lower layer) or
         * redirect_dir=on (renamed directories); without it those fail with
         * -EOPNOTSUPP.  May be NULL. */
        const char *merged_dir;
};

/*
 * Captures the upperdir into out_dir_fd/rootfs-diff.tar and
 * out_dir_fd/deleted.files (written under temporary names and renamed into
 * place; not fsynced: the checkpoint commit does that).  opts and stats may
 * be NULL.  stats: entries/files/bytes of the tar, deleted = number of
 * deleted.files entries, opaque_dirs, skipped (sockets, excluded paths).
 */
int rootfs_diff_capture(const char *upperdir, int out_dir_fd, const struct rootfs_capture_opts *opts,
                        struct tar_stats *stats, struct cryo_error **err);

/*
 * The streaming form: writes the tar to tar_fd (pipe, socket or file) and
 * returns the deleted paths as a NULL-terminated array in *deleted (free
 * with cryo_strv_free()).
 */
int rootfs_diff_write(const char *upperdir, int tar_fd, const struct rootfs_capture_opts *opts,
                      char ***deleted, struct tar_stats *stats, struct cryo_error **err);

/* deleted.files I/O.  Writing: compact JSON, temporary name + rename.
 * Reading: at most 64 MiB, every element must be a string. */
int rootfs_deleted_files_write(int dirfd, const char *name, char *const *paths, struct cryo_error **err);
int rootfs_deleted_files_read(const char *path, char ***paths, struct cryo_error **err);

/*
 * Applies a captured diff onto rootfs_dir (typically a fresh overlay mount
 * or snapshot of the container's image): first removes every path listed in
 * deleted_path (recursively, never following symlinks, never leaving the
 * root; paths under a symlink or already absent are skipped), then extracts
 * tar_path safely (see tar.h: unsafe members abort with -EINVAL/-ELOOP).
 * Either path may be NULL or name a missing file (nothing to do for it).
 * A gzip-compressed tar_path is taken for an OCI image layer, which is what
 * containerd's CRI stores as rootfs-diff.tar (with no deleted.files): its
 * whiteouts are applied (".wh.NAME" removes NAME, ".wh..wh..opq" removes
 * what the layer did not create in that directory).  In an uncompressed tar
 * (Podman, CRI-O, cryo) such names are ordinary files.
 * stats: as tar_extract_dir() plus deleted = paths processed (deleted.files
 * entries and OCI whiteouts), opaque_dirs = OCI opaque markers.
 */
int rootfs_diff_apply(const char *rootfs_dir, const char *tar_path, const char *deleted_path,
                      struct tar_stats *stats, struct cryo_error **err);

/*
 * True when applying this diff would change nothing: the tar is missing,
 * empty or only its end-of-archive marker (a first header block of zeros),
 * and deleted.files is missing or lists nothing.  What cannot be read or
 * parsed counts as not empty, so that rootfs_diff_apply() reports it.
 */
bool rootfs_diff_is_empty(const char *tar_path, const char *deleted_path);

/*
 * Finds the overlay upperdir of a running container: the topmost mount at
 * "/" in /proc/<pid>/mountinfo (the process's root) must be an overlay; its
 * upperdir= super option is returned unescaped (\040 and friends).  When
 * the option holds a relative path (Docker and containers/storage mount
 * with relative paths when the option string gets long) it is resolved
 * through the host mount point of the same superblock.
 */
int rootfs_find_upperdir(pid_t pid, char **upperdir, struct cryo_error **err);

/* The same for a host mount point (e.g. /var/lib/docker/overlay2/<id>/merged),
 * looked up in /proc/self/mountinfo. */
int rootfs_find_upperdir_at(const char *mountpoint, char **upperdir, struct cryo_error **err);

/*
 * The parser behind both, for tests: the topmost mount at `mountpoint` in a
 * mountinfo stream.  *upperdir is returned as written in the options (may be
 * relative); *devid ("major:minor") identifies the superblock.  -ENOENT:
 * no such mount point; -EINVAL: not an overlay; -ENODATA: overlay without
 * upperdir (read-only).
 */
int rootfs_mountinfo_upperdir(FILE *mountinfo, const char *mountpoint, char **upperdir, char **devid,
                              struct cryo_error **err);
