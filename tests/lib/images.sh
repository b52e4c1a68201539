# Local test images, built without any registry.  Sourced by integration
# tests (after tests/lib/common.sh).
#
# The image is a busybox rootfs: /bin/busybox from Debian's busybox-static
# with a symlink per applet (sh, sleep, cat, ...), and the static test
# workloads as /usr/local/bin/wl-NAME.  The same deterministic layer tar is
#   - imported into Docker as  cryo-test/busybox:1  (docker import)
#   - imported into containerd as  docker.io/cryo-test/busybox:1  from an OCI
#     image archive written here (ctr images import), in any namespace.
# Imports are skipped when the image is present with the same content, and
# redone when the layer changed (e.g. rebuilt workloads).
#
#   img_ensure [NS...]          Docker + containerd namespaces (default: default)
#   img_ensure_docker
#   img_ensure_containerd [NS...]
#   img_remove_docker
#   img_remove_containerd [NS...]
#   img_build                   just (re)build the archives; sets IMG_* below

CRYO_TEST_IMAGE=${CRYO_TEST_IMAGE:-docker.io/cryo-test/busybox:1}
CRYO_TEST_IMAGE_DOCKER=${CRYO_TEST_IMAGE_DOCKER:-cryo-test/busybox:1}
IMG_BUSYBOX=${IMG_BUSYBOX:-/bin/busybox}
IMG_CACHE=${IMG_CACHE:-${CRYO_BUILD_DIR:-/tmp}/test-images}
IMG_PATH_ENV="PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

_img_log() {
        echo "images: $*" >&2
}

_img_sha() {
        sha256sum "$1" | cut -d' ' -f1
}

# _img_rootfs DIR: populate a busybox rootfs in DIR.
_img_rootfs() {
        local root=$1 a w
        file -L "$IMG_BUSYBOX" 2>/dev/null | grep -q 'statically linked' ||
                ldd "$IMG_BUSYBOX" 2>&1 | grep -q 'not a dynamic executable' ||
                { _img_log "$IMG_BUSYBOX is not static (install busybox-static)"; return 1; }
        mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,usr/local/bin,etc,root,dev,proc,sys,run,var/tmp,tmp}
        chmod 1777 "$root/tmp" "$root/var/tmp"
        chmod 700 "$root/root"
        install -m 755 "$IMG_BUSYBOX" "$root/bin/busybox"
        for a in $("$IMG_BUSYBOX" --list); do
                [ "$a" = busybox ] || ln -sf busybox "$root/bin/$a"
        done
        ln -sf ../../bin/busybox "$root/usr/bin/env"
        printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' \
                >"$root/etc/passwd"
        printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
        local n=0
        for w in "$WORKLOADS"/wl-*.static; do
                [ -x "$w" ] || continue
                install -m 755 "$w" "$root/usr/local/bin/$(basename "$w" .static)"
                n=$((n + 1))
        done
        [ $n -gt 0 ] || { _img_log "no static workloads in $WORKLOADS (build tests/workloads)"; return 1; }
}

# img_build: write $IMG_CACHE/{layer.tar,oci.tar}; sets IMG_LAYER, IMG_OCI,
# IMG_LAYER_DIGEST and IMG_MANIFEST_DIGEST (both "sha256:...").
img_build() {
        local tmp
        mkdir -p "$IMG_CACHE"
        tmp=$(mktemp -d "$IMG_CACHE/build.XXXXXX")
        if ! _img_build_in "$tmp"; then
                rm -rf "$tmp"
                return 1
        fi
        mv -f "$tmp/layer.tar" "$IMG_CACHE/layer.tar"
        mv -f "$tmp/oci.tar" "$IMG_CACHE/oci.tar"
        rm -rf "$tmp"
        IMG_LAYER=$IMG_CACHE/layer.tar
        IMG_OCI=$IMG_CACHE/oci.tar
}

_img_build_in() {
        local t=$1
        _img_rootfs "$t/rootfs" || return 1
        # Deterministic: same inputs, same digest, so re-imports are no-ops.
        tar -C "$t/rootfs" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
                --format=gnu \
                -cf "$t/layer.tar" . || return 1

        local layer_sha layer_size
        layer_sha=$(_img_sha "$t/layer.tar")
        layer_size=$(stat -c %s "$t/layer.tar")
        IMG_LAYER_DIGEST=sha256:$layer_sha

        local oci=$t/oci blobs=$t/oci/blobs/sha256
        mkdir -p "$blobs"
        cp "$t/layer.tar" "$blobs/$layer_sha"
        printf '{"imageLayoutVersion":"1.0.0"}' >"$oci/oci-layout"
        printf '{"architecture":"amd64","os":"linux","config":{"Env":["%s"],"Cmd":["/bin/sh"],"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created_by":"cryo tests/lib/images.sh"}]}' \
                "$IMG_PATH_ENV" "$layer_sha" >"$t/config.json"
        local cfg_sha cfg_size
        cfg_sha=$(_img_sha "$t/config.json")
        cfg_size=$(stat -c %s "$t/config.json")
        mv "$t/config.json" "$blobs/$cfg_sha"
        printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' \
                "$cfg_sha" "$cfg_size" "$layer_sha" "$layer_size" >"$t/manifest.json"
        local man_sha man_size
        man_sha=$(_img_sha "$t/manifest.json")
        man_size=$(stat -c %s "$t/manifest.json")
        mv "$t/manifest.json" "$blobs/$man_sha"
        IMG_MANIFEST_DIGEST=sha256:$man_sha
        printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"architecture":"amd64","os":"linux"},"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
                "$man_sha" "$man_size" "$CRYO_TEST_IMAGE" "${CRYO_TEST_IMAGE##*:}" >"$oci/index.json"
        tar -C "$oci" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf "$t/oci.tar" . || return 1
}

img_ensure_docker() {
        command -v docker >/dev/null && docker info >/dev/null 2>&1 || { _img_log "docker is not running"; return 1; }
        [ -n "${IMG_LAYER_DIGEST:-}" ] || img_build || return 1
        local have
        have=$(docker image inspect -f '{{index .Config.Labels "cryo.test.layer"}}' "$CRYO_TEST_IMAGE_DOCKER" \
                2>/dev/null || true)
        if [ "$have" = "$IMG_LAYER_DIGEST" ]; then
                return 0
        fi
        _img_log "importing $CRYO_TEST_IMAGE_DOCKER into Docker"
        docker import \
                --change "ENV $IMG_PATH_ENV" \
                --change 'CMD ["/bin/sh"]' \
                --change "LABEL cryo.test.layer=$IMG_LAYER_DIGEST" \
                "$IMG_LAYER" "$CRYO_TEST_IMAGE_DOCKER" >/dev/null
}

# _img_ctr_digest NS: the manifest digest of the image in NS, or nothing.
_img_ctr_digest() {
        ctr -n "$1" images ls 2>/dev/null | awk -v r="$CRYO_TEST_IMAGE" '$1 == r { print $3 }'
}

img_ensure_containerd() {
        local ns
        command -v ctr >/dev/null && ctr version >/dev/null 2>&1 || { _img_log "containerd is not running"; return 1; }
        [ -n "${IMG_MANIFEST_DIGEST:-}" ] || img_build || return 1
        for ns in "${@:-default}"; do
                if [ "$(_img_ctr_digest "$ns")" = "$IMG_MANIFEST_DIGEST" ] &&
                        ctr -n "$ns" images check "name==$CRYO_TEST_IMAGE" 2>/dev/null | grep -q complete; then
                        continue
                fi
                _img_log "importing $CRYO_TEST_IMAGE into containerd namespace $ns"
                ctr -n "$ns" images import --base-name "${CRYO_TEST_IMAGE%:*}" "$IMG_OCI" >/dev/null || return 1
                [ "$(_img_ctr_digest "$ns")" = "$IMG_MANIFEST_DIGEST" ] ||
                        { _img_log "import into $ns did not produce $CRYO_TEST_IMAGE"; return 1; }
        done
}

img_ensure() {
        img_ensure_docker && img_ensure_containerd "$@"
}

img_remove_docker() {
        docker image rm -f "$CRYO_TEST_IMAGE_DOCKER" >/dev/null 2>&1 || true
}

img_remove_containerd() {
        local ns
        for ns in "${@:-default}"; do
                ctr -n "$ns" images rm "$CRYO_TEST_IMAGE" >/dev/null 2>&1 || true
        done
}
