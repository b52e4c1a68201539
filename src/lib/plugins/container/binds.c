/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Bind mounts and volumes.  Every bind mount is recorded (destination,
 * source, file or directory).  Small files (Docker's /etc/hosts,
 * /etc/hostname, /etc/resolv.conf) are always copied into the checkpoint,
 * so a restore on a host where their source is gone can recreate them;
 * directories (volumes) are carried only with --with-volumes, as they can
 * be large and are often shared.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plugins/container/container.h"
#include "rootfs/tar.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/json.h"

#define BIND_FILE_MAX (1u << 20)

bool container_mount_is_bind(json_object *m) {
        if (!strcmp(cryo_json_str(m, "type", ""), "bind"))
                return true;
        json_object *opts = cryo_json_get(m, "options");
        for (size_t i = 0; opts && i < json_object_array_length(opts); i++) {
                const char *o = json_object_get_string(json_object_array_get_idx(opts, i));
                if (o && (!strcmp(o, "bind") || !strcmp(o, "rbind")))
                        return true;
        }
        return false;
}

static int save_file(struct cryo_checkpoint *ck, const char *src, const char *rel, struct cryo_error **err) {
        _cleanup_free_ char *data = NULL;
        size_t len = 0;
        int r = fs_read_file(AT_FDCWD, src, BIND_FILE_MAX, &data, &len, err);
        if (r < 0)
                return r;
        return fs_write_file(ck->dirfd, rel, data, len, 0600, err);
}

static int save_dir(struct cryo_checkpoint *ck, const char *src, const char *rel, uint64_t *bytes,
                    struct cryo_error **err) {
        _cleanup_close_ int fd = openat(ck->dirfd, rel, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
                return cryo_error_errno(err, errno, "cannot create %s", rel);
        struct tar_write_opts opts = {.compression = TAR_COMPRESSION_NONE};
        struct tar_stats st = {0};
        int r = tar_write_dir(src, fd, &opts, &st, err);
        *bytes += st.archive_bytes;
        return r;
}

int container_save_binds(const struct container *c, const struct cryo_request *req,
                         struct cryo_checkpoint *ck, struct cryo_error **err) {
        json_object *binds = json_object_new_array();
        json_object_object_add(cryo_json_get(ck->manifest, "container"), "binds", binds);
        json_object *mounts = cryo_json_get(c->spec, "mounts");
        uint64_t start = cryo_now_usec(), bytes = 0;
        bool dirs_made = false;
        for (size_t i = 0; mounts && i < json_object_array_length(mounts); i++) {
                json_object *m = json_object_array_get_idx(mounts, i);
                const char *src = cryo_json_str(m, "source", NULL),
                           *dest = cryo_json_str(m, "destination", NULL);
                struct stat st;
                if (!container_mount_is_bind(m) || !src || !dest || stat(src, &st) < 0)
                        continue;
                json_object *b = json_object_new_object();
                json_object_object_add(b, "destination", json_object_new_string(dest));
                json_object_object_add(b, "source", json_object_new_string(src));
                json_object_object_add(b, "kind",
                                       json_object_new_string(S_ISDIR(st.st_mode) ? "directory" : "file"));
                json_object_array_add(binds, b);

                char rel[64];
                int r = 0;
                if (!dirs_made) {
                        if (mkdirat(ck->dirfd, "binds", 0700) < 0 && errno != EEXIST)
                                return cryo_error_errno(err, errno, "cannot create binds/");
                        if (mkdirat(ck->dirfd, CRYO_VOLUMES_DIR, 0700) < 0 && errno != EEXIST)
                                return cryo_error_errno(err, errno, "cannot create volumes/");
                        dirs_made = true;
                }
                if (S_ISREG(st.st_mode) && st.st_size <= (off_t) BIND_FILE_MAX) {
                        snprintf(rel, sizeof(rel), "binds/%zu", i);
                        r = save_file(ck, src, rel, err);
                        bytes += (uint64_t) st.st_size;
                } else if (S_ISDIR(st.st_mode) && req->with_volumes) {
                        snprintf(rel, sizeof(rel), CRYO_VOLUMES_DIR "/%zu.tar", i);
                        r = save_dir(ck, src, rel, &bytes, err);
                } else {
                        continue;
                }
                if (r < 0)
                        return cryo_error_prefix(err, "saving bind mount %s", dest);
                json_object_object_add(b, "saved", json_object_new_string(rel));
        }
        cryo_stats_add(&ck->stats, CRYO_PHASE_METADATA, cryo_now_usec() - start, bytes);
        return 0;
}

int container_restore_saved_bind(struct cryo_checkpoint *ck, const char *saved, const char *data_dir,
                                 char **out, struct cryo_error **err) {
        const char *base = strrchr(saved, '/');
        base = base ? base + 1 : saved;
        _cleanup_free_ char *dir = fs_path_join(data_dir, "binds"), *dest = NULL;
        if (!dir || fs_mkdir_p(dir, 0700, err) < 0 || !(dest = fs_path_join(dir, base)))
                return cryo_error_set(err, ENOMEM, "cannot prepare %s", data_dir);
        size_t len = strlen(saved);
        if (len > 4 && !strcmp(saved + len - 4, ".tar")) {
                dest[strlen(dest) - 4] = '\0';
                if (mkdir(dest, 0755) < 0 && errno != EEXIST)
                        return cryo_error_errno(err, errno, "cannot create %s", dest);
                _cleanup_close_ int fd = openat(ck->dirfd, saved, O_RDONLY | O_CLOEXEC);
                if (fd < 0)
                        return cryo_error_errno(err, errno, "cannot open %s", saved);
                int r = tar_extract_dir(fd, dest, NULL, err);
                if (r < 0)
                        return r;
        } else {
                _cleanup_free_ char *data = NULL;
                size_t n = 0;
                int r = fs_read_file(ck->dirfd, saved, BIND_FILE_MAX, &data, &n, err);
                if (r >= 0)
                        r = fs_write_file(AT_FDCWD, dest, data, n, 0644, err);
                if (r < 0)
                        return r;
        }
        *out = steal_pointer(&dest);
        return 0;
}
