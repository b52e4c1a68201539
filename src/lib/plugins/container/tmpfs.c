/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A container's own tmpfs mounts (/dev, /dev/shm, /run, the masked
 * /proc/acpi and /sys/firmware), saved by cryo instead of CRIU.
 *
 * CRIU saves each tmpfs by running `tar --create --gzip` on it, and
 * restores it with `tar --extract --gzip`: two programs started per mount,
 * ~6 ms each on this VM, five mounts in a containerd container, all of it
 * with the container frozen at the dump, and gzip at ~50 MB/s for a /dev/shm
 * holding data.  cryo marks these mounts external for CRIU instead, archives
 * their contents itself (libarchive, in-process, uncompressed) while the
 * tree stands stopped after CRIU, and at restore mounts a tmpfs with the same
 * options, fills it, and has CRIU bind it in place (ext-mount-map); CRIU
 * gives the bind the mount's own flags (read-only, nosuid, ...).
 *
 * Only a checkpoint restored by cryo itself can do without CRIU's copy: a
 * Docker-native restore, or a plain `runc restore`, passes CRIU no such
 * mapping.  So only containerd containers outside namespace "moby" get it
 * (struct container.own_tmpfs), and their checkpoints are format version 3,
 * which an older cryo refuses instead of failing in CRIU.  Left to CRIU:
 * a tmpfs shared with another mount (a bind of part of it, a propagation
 * peer), one in a user namespace (its owner would change), one whose path
 * CRIU's configuration file cannot carry, one holding more than 16 MiB
 * (TMPFS_OWN_MAX_BYTES).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "format/layout.h"
#include "plugins/container/container.h"
#include "rootfs/tar.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/json.h"

#define TMPFS_DIR "tmpfs"
/* A restore fills cryo's copy from cryo's own cgroup, where its pages stay
 * charged, while CRIU's tar runs in the container's (runc moves CRIU there
 * first): beyond a few MiB the container's memory limit would no longer
 * cover its tmpfs contents, so a fuller tmpfs is left to CRIU. */
#define TMPFS_OWN_MAX_BYTES (16ull << 20)

/* The archive of container.tmpfs[i], relative to the checkpoint. */
static void archive_name(size_t i, char name[48]) {
        snprintf(name, 48, TMPFS_DIR "/%zu.tar", i);
}

/* What CRIU's configuration file (whitespace-separated) and its key:value
 * mapping (split at ':') can carry. */
static bool path_fits_config(const char *path) {
        size_t n = strlen(path);
        if (path[0] != '/' || n < 2 || path[n - 1] == '/' || strstr(path, "//") || strstr(path, "/../") ||
            strstr(path, "/./") || (n >= 3 && !strcmp(path + n - 3, "/..")) ||
            (n >= 2 && !strcmp(path + n - 2, "/.")))
                return false;
        for (const char *p = path; *p; p++)
                if (*p <= ' ' || *p == ':' || *p == ',' || *p == '\\' || *p == 0x7f)
                        return false;
        return true;
}

static bool is_ext_mount(const struct container_criu_config *cfg, const char *point) {
        for (size_t i = 0; i < cfg->n_ext_mounts; i++)
                if (!strcmp(cfg->ext_mounts[i].key, point))
                        return true;
        return false;
}

/* tmpfs's own options, without rw/ro (the mount's flags, which CRIU
 * restores on its bind) and SELinux's "seclabel" (shown, not an option). */
static char *fs_options(const char *super) {
        _cleanup_free_ char *copy = strdup(super);
        char *out = calloc(1, strlen(super) + 1), *save = NULL;
        if (!copy || !out) {
                free(out);
                return NULL;
        }
        for (char *o = strtok_r(copy, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
                if (!strcmp(o, "rw") || !strcmp(o, "ro") || !strcmp(o, "seclabel"))
                        continue;
                if (*out)
                        strcat(out, ",");
                strcat(out, o);
        }
        return out;
}

static bool has_user_namespace(const struct container *c) {
        json_object *nss = cryo_json_path(c->runc_state, "config/namespaces");
        for (size_t i = 0; nss && i < json_object_array_length(nss); i++)
                if (!strcmp(cryo_json_str(json_object_array_get_idx(nss, i), "type", ""), "NEWUSER"))
                        return true;
        return false;
}

static json_object *select_entry(const struct fs_mountinfo_line *m) {
        _cleanup_free_ char *options = fs_options(m->super_options);
        if (!options)
                return NULL;
        json_object *e = json_object_new_object();
        json_object_object_add(e, "path", json_object_new_string(m->mount_point));
        json_object_object_add(e, "source", json_object_new_string(m->source));
        json_object_object_add(e, "options", json_object_new_string(options));
        if (!strncmp(m->super_options, "ro", 2) && (m->super_options[2] == ',' || !m->super_options[2]))
                json_object_object_add(e, "read_only", json_object_new_boolean(true));
        return e;
}

int container_tmpfs_select(char *mountinfo, const struct container_criu_config *cfg, json_object **out) {
        *out = NULL;
        size_t n = 0;
        for (const char *p = mountinfo; *p; p++)
                n += *p == '\n';
        _cleanup_free_ struct fs_mountinfo_line *lines = calloc(n + 1, sizeof(*lines));
        _cleanup_json_ json_object *found = json_object_new_array();
        if (!lines || !found)
                return -ENOMEM;
        size_t k = 0;
        char *save = NULL;
        for (char *line = strtok_r(mountinfo, "\n", &save); line && k < n + 1;
             line = strtok_r(NULL, "\n", &save))
                if (fs_mountinfo_split(line, &lines[k]))
                        k++;
        for (size_t i = 0; i < k; i++) {
                const struct fs_mountinfo_line *m = &lines[i];
                if (strcmp(m->fstype, "tmpfs") || strcmp(m->root, "/") || m->propagates ||
                    !path_fits_config(m->mount_point) || is_ext_mount(cfg, m->mount_point))
                        continue;
                /* Another mount of the same tmpfs (a bind of part of it)
                 * would be restored from CRIU's idea of it, not this copy;
                 * the binds of masked files are external already. */
                bool shared = false;
                for (size_t j = 0; j < k && !shared; j++)
                        shared = j != i && !strcmp(lines[j].devid, m->devid) &&
                                 !is_ext_mount(cfg, lines[j].mount_point);
                if (shared)
                        continue;
                json_object *e = select_entry(m);
                if (!e)
                        return -ENOMEM;
                json_object_array_add(found, e);
        }
        *out = steal_pointer(&found);
        return 0;
}

int container_tmpfs_plan(const struct container *c, struct container_criu_config *cfg, json_object **plan,
                         struct cryo_error **err) {
        *plan = NULL;
        if (!c->own_tmpfs || has_user_namespace(c))
                return 0;
        char path[PATH_MAX_LEN + 64];
        snprintf(path, sizeof(path), "/proc/%d/mountinfo", c->init_pid);
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        int r = fs_read_file(AT_FDCWD, path, 1 << 22, &text, &len, err);
        if (r < 0)
                return cryo_error_prefix(err, "container %s", c->id);
        _cleanup_json_ json_object *found = NULL;
        if (container_tmpfs_select(text, cfg, &found) < 0)
                return cryo_error_set(err, ENOMEM, "out of memory");

        _cleanup_json_ json_object *out = json_object_new_array();
        for (size_t i = 0; i < json_object_array_length(found); i++) {
                json_object *e = json_object_array_get_idx(found, i);
                const char *point = cryo_json_str(e, "path", "");
                struct stat st;
                struct statfs fs;
                snprintf(path, sizeof(path), "/proc/%d/root%s", c->init_pid, point);
                if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode) || statfs(path, &fs) < 0 ||
                    (uint64_t) (fs.f_blocks - fs.f_bfree) * (uint64_t) fs.f_bsize > TMPFS_OWN_MAX_BYTES)
                        continue;
                /* The root's own: mountinfo shows the mode given at mount time. */
                json_object_object_add(e, "mode", json_object_new_int((int) (st.st_mode & 07777)));
                json_object_object_add(e, "uid", json_object_new_int64(st.st_uid));
                json_object_object_add(e, "gid", json_object_new_int64(st.st_gid));
                if (container_criu_config_add_ext_mount(cfg, point) < 0)
                        return cryo_error_set(err, ENOMEM, "out of memory");
                json_object_array_add(out, json_object_get(e));
        }
        if (json_object_array_length(out) > 0)
                *plan = steal_pointer(&out);
        return 0;
}

int container_tmpfs_capture(const struct container *c, struct cryo_checkpoint *ck, json_object *plan,
                            struct cryo_error **err) {
        if (!plan)
                return 0;
        uint64_t start = cryo_now_usec(), bytes = 0;
        _cleanup_close_ int dirfd = -1; /* tmpfs/, created root-only */
        int r = ckpt_open_subdir(ck, TMPFS_DIR, true, &dirfd, err);
        if (r < 0)
                return r;
        for (size_t i = 0; i < json_object_array_length(plan); i++) {
                json_object *e = json_object_array_get_idx(plan, i);
                char name[48], src[PATH_MAX_LEN + 64];
                archive_name(i, name);
                snprintf(src, sizeof(src), "/proc/%d/root%s", c->init_pid, cryo_json_str(e, "path", ""));
                _cleanup_close_ int fd =
                        openat(ck->dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
                if (fd < 0)
                        return cryo_error_errno(err, errno, "cannot create %s", name);
                struct tar_write_opts opts = {.flags = TAR_WRITE_ONE_FS};
                struct tar_stats st = {0};
                r = tar_write_dir(src, fd, &opts, &st, err);
                if (r < 0)
                        return cryo_error_prefix(err, "container %s: tmpfs %s", c->id,
                                                 cryo_json_str(e, "path", ""));
                json_object_object_add(e, "file", json_object_new_string(name));
                json_object_object_add(e, "bytes", json_object_new_uint64(st.bytes));
                bytes += st.archive_bytes;
        }
        json_object_object_add(cryo_json_get(ck->manifest, "container"), "tmpfs", json_object_get(plan));
        json_object_object_add(ck->manifest, "format_version",
                               json_object_new_int(CRYO_FORMAT_VERSION_OWN_TMPFS));
        cryo_stats_add(&ck->stats, CRYO_PHASE_ROOTFS, cryo_now_usec() - start, bytes);
        return 0;
}

static int fill_one(const struct cryo_checkpoint *ck, json_object *e, size_t i, const char *dir,
                    struct cryo_error **err) {
        const char *path = cryo_json_str(e, "path", ""), *source = cryo_json_str(e, "source", "tmpfs"),
                   *options = cryo_json_str(e, "options", "");
        if (!path_fits_config(path) || strchr(source, '\n') || strchr(options, '\n'))
                return cryo_error_set(err, EBADMSG,
                                      "the manifest lists a tmpfs at '%s' that cannot be restored", path);
        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                return cryo_error_errno(err, errno, "cannot create %s", dir);
        if (mount(source, dir, "tmpfs", 0, *options ? options : NULL) < 0)
                return cryo_error_errno(err, errno, "cannot mount a tmpfs for %s (options %s)", path,
                                        *options ? options : "none");
        /* Its own peer group: nothing of the restore propagates elsewhere.
         * ("none": ignored by the kernel here, but valgrind reads it.) */
        if (mount("none", dir, "none", MS_PRIVATE, NULL) < 0)
                return cryo_error_errno(err, errno, "cannot make the tmpfs for %s private", path);
        if (chmod(dir, (mode_t) cryo_json_int(e, "mode", 0755) & 07777) < 0 ||
            chown(dir, (uid_t) cryo_json_int(e, "uid", 0), (gid_t) cryo_json_int(e, "gid", 0)) < 0)
                return cryo_error_errno(err, errno, "cannot set the owner and mode of the tmpfs for %s",
                                        path);
        char name[48];
        archive_name(i, name);
        _cleanup_close_ int fd = openat(ck->dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return cryo_error_errno(err, errno, "cannot open %s", name);
        int r = tar_extract_dir(fd, dir, NULL, err);
        if (r < 0)
                return cryo_error_prefix(err, "tmpfs %s", path);
        /* A masking tmpfs is read-only as a whole, not only where mounted. */
        if (json_object_get_boolean(cryo_json_get(e, "read_only")) &&
            mount("none", dir, "tmpfs", MS_REMOUNT | MS_RDONLY, *options ? options : NULL) < 0)
                return cryo_error_errno(err, errno, "cannot make the tmpfs for %s read-only", path);
        return 0;
}

int container_tmpfs_prepare(const struct cryo_checkpoint *ck, const char *dir, FILE *conf,
                            struct cryo_error **err) {
        json_object *plan = cryo_json_path(ck->manifest, "container/tmpfs");
        size_t n = plan ? json_object_array_length(plan) : 0;
        if (n == 0)
                return 0;
        int r = fs_mkdir_p(dir, 0700, err);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                json_object *e = json_object_array_get_idx(plan, i);
                char sub[PATH_MAX_LEN];
                if (snprintf(sub, sizeof(sub), "%s/%zu", dir, i) >= (int) sizeof(sub))
                        return cryo_error_set(err, ENAMETOOLONG, "%s: path too long", dir);
                r = fill_one(ck, e, i, sub, err);
                if (r < 0)
                        return r;
                fprintf(conf, "ext-mount-map %s:%s\n", cryo_json_str(e, "path", ""), sub);
        }
        return 0;
}
