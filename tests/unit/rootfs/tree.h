/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Helpers for the rootfs unit tests: scratch trees, overlay mounts, tree comparison. */
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Exits with 77 (skip) unless root. */
void tu_require_root(void);

/* A fresh directory under /tmp (or $TMPDIR); caller frees. */
char *tu_mkdtemp(const char *tag);
/* printf-style path builder; caller frees. */
char *tu_path(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Creates/overwrites a file with content; returns 0 or -errno. */
int tu_write(const char *path, const void *data, size_t len, mode_t mode);
/* mkdir -p */
int tu_mkdirs(const char *path, mode_t mode);
/* rm -rf (unmounts nothing) */
void tu_rm_rf(const char *path);
/* Removes a scratch tree unless $CRYO_TEST_KEEP is set (debugging). */
void tu_scratch_remove(const char *path);
/* Mounts an overlay; extra may be NULL or ",opt=val,...". */
int tu_mount_overlay(const char *lower, const char *upper, const char *work, const char *merged,
                     const char *extra);

/*
 * Compares two trees: names, types, modes, owners, sizes, content, symlink
 * targets, device numbers, xattrs (overlay-private ones ignored), mtimes of
 * everything but symlinks, and hard-link grouping.  `ignore` is a
 * NULL-terminated list of relative paths skipped in both trees.
 * Returns true if equal; otherwise *why (malloc'ed) says where they differ.
 */
bool tu_trees_equal(const char *a, const char *b, const char *const *ignore, char **why);
