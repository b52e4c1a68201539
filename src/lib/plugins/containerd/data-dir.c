/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * /var/lib/cryo/containers/<ns>/<id>: what a restored containerd task keeps
 * for as long as its container lives (its stdio log, CRIU's restore log,
 * bind sources recreated from the checkpoint).  containerd knows nothing of
 * it, so nothing removes it with the container: each restore removes the
 * directories whose container is gone.
 *
 * Two things make that safe:
 *  - a directory names the containerd it belongs to (file "containerd"):
 *    a second daemon on the same host (Docker's own, a test "host B") has
 *    containers of the same namespace and ids that the first does not list;
 *  - only directories untouched for an hour are candidates: a younger one
 *    may belong to a restore in progress, whose container does not exist
 *    yet.  A removed container's logs stay that long for a post-mortem.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "plugins/containerd/containerd.h"
#include "util/cleanup.h"
#include "util/fs.h"

#define OWNER_FILE       "containerd"
#define STALE_AFTER_SEC  (60 * 60)
#define MAX_STALE_PER_GC 64

int containerd_data_dir_create(const char *address, const char *ns, const char *id, char **path_out,
                               struct cryo_error **err) {
        _cleanup_free_ char *path = NULL;
        if (asprintf(&path, CONTAINERD_DATA_ROOT "/%s/%s", ns, id) < 0)
                return cryo_error_set(err, ENOMEM, "out of memory");
        int r = fs_mkdir_p(path, 0700, err);
        if (r < 0)
                return r;
        _cleanup_close_ int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return cryo_error_errno(err, errno, "cannot open %s", path);
        r = fs_write_file_unsynced(fd, OWNER_FILE, address, strlen(address), 0600, err);
        if (r < 0)
                return r;
        *path_out = steal_pointer(&path);
        return 0;
}

static bool owned_by(int parent_fd, const char *name, const char *address) {
        _cleanup_close_ int fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        _cleanup_free_ char *owner = NULL;
        return fd >= 0 && fs_read_file(fd, OWNER_FILE, 4096, &owner, NULL, NULL) >= 0 &&
               !strcmp(owner, address);
}

static bool listed(const struct ctrd_containers *live, const char *id) {
        for (size_t i = 0; i < live->n; i++)
                if (!strcmp(live->items[i].id, id))
                        return true;
        return false;
}

int containerd_data_dirs_prune(struct ctrd_client *client, const char *address, const char *ns,
                               unsigned *removed) {
        *removed = 0;
        _cleanup_free_ char *parent = NULL;
        if (asprintf(&parent, CONTAINERD_DATA_ROOT "/%s", ns) < 0)
                return -ENOMEM;
        _cleanup_closedir_ DIR *d = opendir(parent);
        if (!d)
                return errno == ENOENT ? 0 : -errno;

        /* Old enough and ours first: only then is containerd asked. */
        char *stale[MAX_STALE_PER_GC];
        size_t n = 0;
        time_t now = time(NULL);
        struct dirent *de;
        while (n < MAX_STALE_PER_GC && (de = readdir(d))) {
                struct stat st;
                if (de->d_name[0] == '.' || fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
                    !S_ISDIR(st.st_mode) || now - st.st_mtime < STALE_AFTER_SEC ||
                    !owned_by(dirfd(d), de->d_name, address))
                        continue;
                if (!(stale[n] = strdup(de->d_name)))
                        break;
                n++;
        }
        int r = 0;
        if (n > 0) {
                struct ctrd_containers live = {0};
                r = ctrd_container_list(client, "labels.\"" CONTAINERD_RESTORED_LABEL "\"", &live, NULL);
                for (size_t i = 0; r >= 0 && i < n; i++) {
                        if (listed(&live, stale[i]))
                                continue;
                        _cleanup_free_ char *path = fs_path_join(parent, stale[i]);
                        if (path && fs_rm_rf(path) >= 0)
                                (*removed)++;
                }
                ctrd_containers_clear(&live);
        }
        for (size_t i = 0; i < n; i++)
                free(stale[i]);
        return r;
}
