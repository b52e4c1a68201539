/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Image coordination: which image a container was made from, identified by
 * its config digest (the image id Docker shows, identical in Docker's and
 * containerd's stores), and the snapshot its layers unpack to (the chain
 * id of its diff ids), so that a restore can check the image is here and
 * start from the right snapshot.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "plugins/containerd/containerd.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/sha256.h"

void containerd_image_clear(struct containerd_image *img) {
        free(img->name);
        free(img->target_digest);
        free(img->config_digest);
        free(img->chain_id);
        memset(img, 0, sizeof(*img));
}

static int read_blob_json(struct ctrd_client *c, const char *digest, json_object **out,
                          struct cryo_error **err) {
        _cleanup_close_ int fd = memfd_create("cryo-blob", MFD_CLOEXEC);
        if (fd < 0)
                return cryo_error_errno(err, errno, "memfd_create");
        int r = ctrd_content_read_to_fd(c, digest, fd, NULL, err);
        if (r < 0)
                return r;
        if (lseek(fd, 0, SEEK_SET) < 0)
                return cryo_error_errno(err, errno, "lseek");
        _cleanup_free_ char *text = NULL;
        r = fs_read_fd(fd, 16u << 20, &text, NULL, err);
        if (r < 0)
                return r;
        json_object *o = json_tokener_parse(text);
        if (!o)
                return cryo_error_set(err, EBADMSG, "blob %s is not JSON", digest);
        *out = o;
        return 0;
}

static const char *oci_arch(void) {
        static struct utsname u;
        if (uname(&u) < 0)
                return "amd64";
        if (!strcmp(u.machine, "x86_64"))
                return "amd64";
        if (!strcmp(u.machine, "aarch64"))
                return "arm64";
        return u.machine;
}

/* An index lists one manifest per platform: take this host's. */
static const char *manifest_for_platform(json_object *index) {
        json_object *list = cryo_json_get(index, "manifests");
        for (size_t i = 0; list && i < json_object_array_length(list); i++) {
                json_object *m = json_object_array_get_idx(list, i);
                json_object *p = cryo_json_get(m, "platform");
                if (!p || (!strcmp(cryo_json_str(p, "os", ""), "linux") &&
                           !strcmp(cryo_json_str(p, "architecture", ""), oci_arch())))
                        return cryo_json_str(m, "digest", NULL);
        }
        return NULL;
}

int containerd_image_resolve(struct ctrd_client *c, const char *name, struct containerd_image *out,
                             struct cryo_error **err) {
        struct ctrd_image image = {0};
        int r = ctrd_image_get(c, name, &image, err);
        if (r < 0)
                return r;
        out->name = strdup(image.name);
        out->target_digest = strdup(image.target.digest);
        _cleanup_json_ json_object *top = NULL, *manifest_owned = NULL, *config = NULL;
        r = read_blob_json(c, image.target.digest, &top, err);
        ctrd_image_clear(&image);
        if (r < 0)
                return cryo_error_prefix(err, "image %s", name);

        json_object *manifest = top;
        if (cryo_json_get(top, "manifests")) {
                const char *d = manifest_for_platform(top);
                if (!d)
                        return cryo_error_set(err, ENOENT, "image %s has no manifest for linux/%s", name,
                                              oci_arch());
                r = read_blob_json(c, d, &manifest_owned, err);
                if (r < 0)
                        return cryo_error_prefix(err, "image %s", name);
                manifest = manifest_owned;
        }
        const char *config_digest = cryo_json_str(cryo_json_get(manifest, "config"), "digest", NULL);
        if (!config_digest)
                return cryo_error_set(err, EBADMSG, "image %s: manifest has no config", name);
        out->config_digest = strdup(config_digest);
        r = read_blob_json(c, config_digest, &config, err);
        if (r < 0)
                return cryo_error_prefix(err, "image %s", name);

        out->chain_id = containerd_chain_id(cryo_json_path(config, "rootfs/diff_ids"));
        if (!out->chain_id)
                return cryo_error_set(err, EBADMSG, "image %s has no layers", name);
        if (!out->name || !out->target_digest || !out->config_digest || !out->chain_id)
                return cryo_error_set(err, ENOMEM, "out of memory");
        return 0;
}

char *containerd_chain_id(json_object *diff_ids) {
        size_t n = diff_ids && json_object_is_type(diff_ids, json_type_array)
                           ? json_object_array_length(diff_ids)
                           : 0;
        if (n == 0)
                return NULL;
        /* chain(0) = diff(0); chain(n) = sha256(chain(n-1) + " " + diff(n)) */
        char *chain = strdup(json_object_get_string(json_object_array_get_idx(diff_ids, 0)));
        for (size_t i = 1; chain && i < n; i++) {
                _cleanup_free_ char *joined = NULL;
                char hex[SHA256_HEX_LEN + 1];
                if (asprintf(&joined, "%s %s", chain,
                             json_object_get_string(json_object_array_get_idx(diff_ids, i))) < 0) {
                        free(chain);
                        return NULL;
                }
                cryo_sha256_buf(joined, strlen(joined), hex);
                free(chain);
                if (asprintf(&chain, "sha256:%s", hex) < 0)
                        chain = NULL;
        }
        return chain;
}

char *containerd_normalize_image_name(const char *name) {
        char *out = NULL;
        const char *slash = strchr(name, '/');
        bool has_domain =
                slash && (memchr(name, '.', (size_t) (slash - name)) ||
                          memchr(name, ':', (size_t) (slash - name)) || !strncmp(name, "localhost/", 10));
        const char *last = strrchr(name, '/');
        bool has_tag = strchr(last ? last : name, ':') || strchr(name, '@');
        if (asprintf(&out, "%s%s%s%s", has_domain ? "" : "docker.io/", !slash ? "library/" : "", name,
                     has_tag ? "" : ":latest") < 0)
                return NULL;
        return out;
}
