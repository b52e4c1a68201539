# The rpc area (src/lib/rpc) against the real containerd and dockerd,
# driven through tests/unit/rpc/rpc-probe.  Everything lives in containerd
# namespace $RPC_NS and Docker objects named cryo-rpc-*; cleanup removes
# them all.

PROBE=${PROBE:-$CRYO_BUILD_DIR/tests/unit/rpc/rpc-probe}
RPC_NS=cryo-rpc-test
RPC_IMAGE=docker.io/cryo-test/rpc-busybox:latest
CTRD_SOCK=/run/containerd/containerd.sock
DOCKER_SOCK=/var/run/docker.sock

need_containerd() {
        need_root
        [ -x "$PROBE" ] || fail "rpc-probe not built: $PROBE"
        [ -S "$CTRD_SOCK" ] || skip "containerd is not running ($CTRD_SOCK)"
        need_cmd ctr
}

probe() {
        "$PROBE" -n "$RPC_NS" "$@"
}

# A one-layer image holding a static busybox, as a docker-archive that
# `ctr images import` accepts (no registry here).
rpc_image_archive() {
        local dir=$TEST_SCRATCH/img root=$TEST_SCRATCH/img-root
        [ -x /bin/busybox ] && file -L /bin/busybox | grep -q 'statically linked' ||
                skip "needs a static /bin/busybox (busybox-static)"
        mkdir -p "$dir" "$root/bin"
        cp /bin/busybox "$root/bin/"
        for a in sh sleep cat echo; do ln -s busybox "$root/bin/$a"; done
        tar -C "$root" --owner=0 --group=0 -cf "$TEST_SCRATCH/layer.tar" .
        local diff cfg
        diff=$(sha256sum "$TEST_SCRATCH/layer.tar" | cut -d' ' -f1)
        mkdir -p "$dir/$diff"
        mv "$TEST_SCRATCH/layer.tar" "$dir/$diff/layer.tar"
        printf '{"architecture":"amd64","os":"linux","config":{"Cmd":["/bin/sh"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
                "$diff" >"$dir/config.json"
        cfg=$(sha256sum "$dir/config.json" | cut -d' ' -f1)
        mv "$dir/config.json" "$dir/$cfg.json"
        printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["%s/layer.tar"]}]' "$cfg" "$RPC_IMAGE" "$diff" \
                >"$dir/manifest.json"
        tar -C "$dir" -cf "$TEST_SCRATCH/image.tar" .
        echo "$TEST_SCRATCH/image.tar"
}

rpc_import_image() {
        ctr -n "$RPC_NS" images ls -q | grep -qx "$RPC_IMAGE" && return 0
        ctr -n "$RPC_NS" images import "$(rpc_image_archive)" >/dev/null
}

# ctr_run ID ARGS...: a running container from the test image.
ctr_run() {
        local id=$1
        shift
        rpc_import_image
        ctr -n "$RPC_NS" run -d --label cryo.test=rpc "$RPC_IMAGE" "$id" "$@" >/dev/null
}

field() {
        grep -m1 "^$1=" "$TEST_SCRATCH/out" | cut -d= -f2-
}

test_version_and_latency() {
        need_containerd
        probe version >"$TEST_SCRATCH/out"
        local want
        want=$(ctr version | awk '/^Server:/{s=1} s && /Version:/{print $2; exit}')
        assert_eq "$(field version)" "$want" "containerd version"
        probe bench 500 >"$TEST_SCRATCH/out"
        echo "Version: $(field ms_per_call) ms per unary call (500 calls, one connection)"
        awk -v v="$(field ms_per_call)" 'BEGIN { exit !(v < 20) }' || fail "unary calls too slow: $(field ms_per_call) ms"
        RPC_PROBE_TIMING=1 probe version 2>"$TEST_SCRATCH/err" >/dev/null
        echo "connect + HTTP/2 handshake: $(grep connect_ms "$TEST_SCRATCH/err")"
}

test_namespaces() {
        need_containerd
        rpc_import_image
        probe namespaces >"$TEST_SCRATCH/out"
        assert_contains "$TEST_SCRATCH/out" "^namespace=$RPC_NS\$"
        probe ns-exists "$RPC_NS" >"$TEST_SCRATCH/out"
        assert_eq "$(field exists)" 1 "namespace exists"
        probe ns-exists cryo-no-such-namespace >"$TEST_SCRATCH/out"
        assert_eq "$(field exists)" 0 "unknown namespace"
}

test_container_and_task_fields() {
        need_containerd
        ctr_run cryo-rpc-c1 /bin/sleep 600
        probe container-get cryo-rpc-c1 >"$TEST_SCRATCH/out"
        cat "$TEST_SCRATCH/out"
        assert_eq "$(field id)" cryo-rpc-c1
        assert_eq "$(field image)" "$RPC_IMAGE"
        assert_eq "$(field runtime)" io.containerd.runc.v2
        assert_eq "$(field runtime_options_type)" containerd.runc.v1.Options
        assert_eq "$(field snapshotter)" overlayfs
        assert_eq "$(field snapshot_key)" cryo-rpc-c1
        assert_eq "$(field spec_type)" types.containerd.io/opencontainers/runtime-spec/1/Spec
        assert_eq "$(field label.cryo.test)" rpc
        probe container-spec cryo-rpc-c1 >"$TEST_SCRATCH/spec.json"
        assert_eq "$(jq -c .process.args "$TEST_SCRATCH/spec.json")" '["/bin/sleep","600"]' "spec args"

        local pid
        pid=$(ctr -n "$RPC_NS" task ls | awk '$1 == "cryo-rpc-c1" {print $2}')
        probe task-get cryo-rpc-c1 >"$TEST_SCRATCH/out"
        assert_eq "$(field pid)" "$pid" "task pid"
        assert_eq "$(field status)" running
        assert_eq "$(field container_id)" cryo-rpc-c1
        assert_eq "$(field exec_id)" ""
        # Tasks.List leaves container_id empty upstream; we fill it.
        probe task-list >"$TEST_SCRATCH/out"
        assert_contains "$TEST_SCRATCH/out" "^task=cryo-rpc-c1 pid=$pid status=running\$"

        # Create through our client: a copy of c1 under a new id.
        probe container-clone cryo-rpc-c1 cryo-rpc-c2
        probe container-get cryo-rpc-c2 >"$TEST_SCRATCH/out"
        assert_eq "$(field label.cryo.test)" clone
        assert_eq "$(field runtime_options_type)" containerd.runc.v1.Options
        probe container-spec cryo-rpc-c2 | cmp - "$TEST_SCRATCH/spec.json" || fail "spec changed by create"
        ctr -n "$RPC_NS" containers info cryo-rpc-c2 | jq -e '.Spec.process.args == ["/bin/sleep","600"]' >/dev/null ||
                fail "ctr does not see our spec"
        probe container-delete cryo-rpc-c2
        probe image-get "$RPC_IMAGE" >"$TEST_SCRATCH/out"
        assert_eq "$(field target.digest)" "$(ctr -n "$RPC_NS" images ls | awk -v i="$RPC_IMAGE" '$1 == i {print $3}')"

        probe task-pause cryo-rpc-c1
        assert_eq "$(ctr -n "$RPC_NS" task ls | awk '$1 == "cryo-rpc-c1" {print $3}')" PAUSED
        probe task-resume cryo-rpc-c1
        probe task-kill cryo-rpc-c1 9
        probe task-wait cryo-rpc-c1 10000 >"$TEST_SCRATCH/out"
        assert_eq "$(field exit_status)" 137
        probe task-delete cryo-rpc-c1 >/dev/null
        probe container-delete cryo-rpc-c1
        expect_fail "deleted container" probe container-get cryo-rpc-c1
}

test_not_found_is_enoent() {
        need_containerd
        local rc=0
        probe container-get cryo-rpc-missing >"$TEST_SCRATCH/out" 2>"$TEST_SCRATCH/err" || rc=$?
        assert_eq "$rc" 2 "exit code (ENOENT)"
        assert_contains "$TEST_SCRATCH/err" "^error: containerd Containers.Get: container \"cryo-rpc-missing\" in namespace \"$RPC_NS\": not found\$"
        assert_contains "$TEST_SCRATCH/err" "NOT_FOUND \(5\)"
        rc=0
        probe task-get cryo-rpc-missing 2>"$TEST_SCRATCH/err" || rc=$?
        assert_eq "$rc" 2 "task of a missing container"
        rc=0
        probe content-info sha256:0000000000000000000000000000000000000000000000000000000000000000 \
                2>"$TEST_SCRATCH/err" || rc=$?
        assert_eq "$rc" 2 "missing blob"
}

test_wrong_namespace() {
        need_containerd
        ctr_run cryo-rpc-ns /bin/sleep 600
        probe container-get cryo-rpc-ns >/dev/null
        local rc=0
        "$PROBE" -n cryo-rpc-other container-get cryo-rpc-ns 2>"$TEST_SCRATCH/err" || rc=$?
        assert_eq "$rc" 2 "exit code"
        assert_contains "$TEST_SCRATCH/err" 'in namespace "cryo-rpc-other": not found'
}

test_daemon_missing_or_wrong() {
        need_containerd
        local rc=0 sock=$TEST_SCRATCH/nonexistent.sock
        "$PROBE" -a "$sock" version 2>"$TEST_SCRATCH/err" || rc=$?
        assert_eq "$rc" 2 "exit code (ENOENT)"
        assert_contains "$TEST_SCRATCH/err" "^error: cannot connect to containerd at $sock: No such file or directory"

        # A socket file left by a daemon that died: connection refused.
        need_cmd python3
        python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$TEST_SCRATCH/stale.sock"
        rc=0
        "$PROBE" -a "$TEST_SCRATCH/stale.sock" version 2>"$TEST_SCRATCH/err" || rc=$?
        assert_eq "$rc" 111 "exit code (ECONNREFUSED)"
        assert_contains "$TEST_SCRATCH/err" "cannot connect to containerd at $TEST_SCRATCH/stale.sock: Connection refused"

        # Something that is not a gRPC server.
        if [ -S "$DOCKER_SOCK" ]; then
                rc=0
                "$PROBE" -a "$DOCKER_SOCK" -t 3000 version 2>"$TEST_SCRATCH/err" || rc=$?
                [ "$rc" != 0 ] || fail "dockerd's socket accepted as containerd"
                assert_contains "$TEST_SCRATCH/err" "HTTP/2 handshake failed"
        fi
}

test_content_roundtrip() {
        need_containerd
        local blob=$TEST_SCRATCH/blob digest lease
        head -c 5000000 /dev/urandom >"$blob"
        digest=sha256:$(sha256sum "$blob" | cut -d' ' -f1)
        probe lease-create >"$TEST_SCRATCH/out"
        lease=$(field lease)
        echo "$lease" >"$TEST_SCRATCH/lease"

        probe -l "$lease" content-put cryo-rpc-ref-1 "$blob" "" cryo.test=rpc >"$TEST_SCRATCH/out"
        assert_eq "$(field digest)" "$digest" "digest of the upload"
        echo "upload of 5 MB: $(field ms) ms"
        probe content-info "$digest" >"$TEST_SCRATCH/out"
        assert_eq "$(field size)" 5000000
        assert_eq "$(field label.cryo.test)" rpc
        probe content-get "$digest" "$TEST_SCRATCH/back" >"$TEST_SCRATCH/out"
        echo "download of 5 MB: $(field ms) ms"
        cmp "$blob" "$TEST_SCRATCH/back" || fail "blob read back differs"

        # Uploading what is already there succeeds (ALREADY_EXISTS handled).
        probe -l "$lease" content-put cryo-rpc-ref-2 "$blob" "$digest" >"$TEST_SCRATCH/out"
        assert_eq "$(field digest)" "$digest"
        # A wrong expected digest is refused and leaves nothing behind.
        local rc=0
        probe -l "$lease" content-put cryo-rpc-ref-3 "$blob" \
                sha256:1111111111111111111111111111111111111111111111111111111111111111 2>"$TEST_SCRATCH/err" || rc=$?
        assert_eq "$rc" 22 "exit code (EINVAL)"
        assert_contains "$TEST_SCRATCH/err" "expected sha256:1111"
        # An empty blob.
        : >"$TEST_SCRATCH/empty"
        probe -l "$lease" content-put cryo-rpc-ref-4 "$TEST_SCRATCH/empty" >"$TEST_SCRATCH/out"
        assert_eq "$(field digest)" sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855

        # Without the lease, containerd's GC takes the blob.
        probe lease-delete "$lease"
        rm -f "$TEST_SCRATCH/lease"
        WAIT_TIMEOUT=10 wait_for bash -c "! '$PROBE' -n '$RPC_NS' content-info '$digest' 2>/dev/null" ||
                fail "blob still present after its lease was deleted"
}

cleanup_test_content_roundtrip() {
        [ -f "$TEST_SCRATCH/lease" ] && "$PROBE" -n "$RPC_NS" lease-delete "$(cat "$TEST_SCRATCH/lease")" || true
}

test_snapshots() {
        need_containerd
        local lease
        lease=$(probe lease-create | cut -d= -f2)
        echo "$lease" >"$TEST_SCRATCH/lease"
        # Snapshots made under a lease survive containerd's GC.
        probe -l "$lease" snapshot-prepare cryo-rpc-snap-a ""
        probe snapshot-stat cryo-rpc-snap-a >"$TEST_SCRATCH/out"
        assert_eq "$(field kind)" 2 "active"
        probe snapshot-mounts cryo-rpc-snap-a >"$TEST_SCRATCH/out"
        assert_contains "$TEST_SCRATCH/out" "^mount=bind "
        probe -l "$lease" snapshot-commit cryo-rpc-snap-c cryo-rpc-snap-a
        probe snapshot-stat cryo-rpc-snap-c >"$TEST_SCRATCH/out"
        assert_eq "$(field kind)" 3 "committed"
        assert_eq "$(field label.cryo.test)" commit
        expect_fail "committed key is gone" probe snapshot-stat cryo-rpc-snap-a
        probe -l "$lease" snapshot-view cryo-rpc-snap-v cryo-rpc-snap-c >"$TEST_SCRATCH/out"
        probe snapshot-stat cryo-rpc-snap-v >"$TEST_SCRATCH/out"
        assert_eq "$(field kind)" 1 "view"
        assert_eq "$(field parent)" cryo-rpc-snap-c
        probe snapshot-remove cryo-rpc-snap-v
        probe snapshot-remove cryo-rpc-snap-c
        local rc=0
        probe snapshot-stat cryo-rpc-snap-c 2>"$TEST_SCRATCH/err" || rc=$?
        assert_eq "$rc" 2 "removed snapshot"
}

cleanup_test_snapshots() {
        [ -f "$TEST_SCRATCH/lease" ] && "$PROBE" -n "$RPC_NS" lease-delete "$(cat "$TEST_SCRATCH/lease")" || true
}

test_events_subscribe() {
        need_containerd
        rpc_import_image
        probe events 1 10000 "namespace==$RPC_NS,topic==\"/containers/create\"" >"$TEST_SCRATCH/ev" 2>&1 &
        local pid=$!
        wait_for grep -q subscribed "$TEST_SCRATCH/ev"
        ctr -n "$RPC_NS" containers create "$RPC_IMAGE" cryo-rpc-ev /bin/true
        wait "$pid" || fail "event subscription failed: $(cat "$TEST_SCRATCH/ev")"
        assert_contains "$TEST_SCRATCH/ev" "^event=/containers/create namespace=$RPC_NS type=containerd.events.ContainerCreate\$"
}

rpc_count_ge() {
        [ "$(cat "$1" 2>/dev/null || echo 0)" -ge "$2" ]
}

rpc_count_changed() {
        [ "$(cat "$1" 2>/dev/null)" != "$2" ]
}

# containerd's own restore path, through our Tasks.Create with a checkpoint
# descriptor: a counter must continue, not restart.
test_checkpoint_restore_via_tasks_create() {
        need_containerd
        need_cmd criu
        # Written aside and renamed: a reader never sees the file truncated.
        ctr_run cryo-rpc-ck /bin/sh -c 'i=0; while :; do i=$((i+1)); echo $i >/count.new; mv /count.new /count; sleep 0.05; done'
        local upper
        wait_for test -n "$(probe snapshot-mounts cryo-rpc-ck | grep -o 'upperdir=[^ ]*' | cut -d= -f2)"
        upper=$(probe snapshot-mounts cryo-rpc-ck | grep -o 'upperdir=[^ ]*' | cut -d= -f2)
        # Far enough that a restart from 0 could not pass for a restore.
        wait_for rpc_count_ge "$upper/count" 20
        probe lease-create >"$TEST_SCRATCH/out"
        local lease
        lease=$(field lease)
        echo "$lease" >"$TEST_SCRATCH/lease"
        probe -l "$lease" -t 60000 task-checkpoint cryo-rpc-ck exit >"$TEST_SCRATCH/ck"
        cat "$TEST_SCRATCH/ck"
        local before media digest size
        before=$(cat "$upper/count")
        read -r media digest size < <(grep 'criu.checkpoint.criu.tar' "$TEST_SCRATCH/ck" | cut -d= -f2)
        [ -n "$digest" ] || fail "no CRIU checkpoint descriptor"
        probe task-delete cryo-rpc-ck >/dev/null || true
        # containerd 1.6 extracts an uploaded checkpoint into
        # /tmp/ctrd-checkpoint* and never removes it: the cleanup does.
        ls -d /tmp/ctrd-checkpoint* >"$TEST_SCRATCH/ctrd-tmp-before" 2>/dev/null || true
        probe -l "$lease" -t 60000 task-create cryo-rpc-ck "$media" "$digest" "$size" >"$TEST_SCRATCH/out"
        echo "Tasks.Create with checkpoint: $(field ms) ms"
        probe task-start cryo-rpc-ck >/dev/null
        # The first value written after the start tells a restore (before+1)
        # from a restart (1).
        wait_for rpc_count_changed "$upper/count" "$before" ||
                fail "counter never moved after restore: $before at checkpoint"
        local after
        after=$(cat "$upper/count")
        echo "counter: $before at checkpoint, $after after restore"
        [ "$after" -gt "$before" ] || fail "counter restarted instead of continuing"
        probe task-get cryo-rpc-ck >"$TEST_SCRATCH/out"
        assert_eq "$(field status)" running
}

cleanup_test_checkpoint_restore_via_tasks_create() {
        [ -f "$TEST_SCRATCH/lease" ] && "$PROBE" -n "$RPC_NS" lease-delete "$(cat "$TEST_SCRATCH/lease")" || true
        local d
        if [ -f "$TEST_SCRATCH/ctrd-tmp-before" ]; then
                for d in /tmp/ctrd-checkpoint*; do
                        [ -d "$d" ] && ! grep -qx "$d" "$TEST_SCRATCH/ctrd-tmp-before" && rm -rf "$d"
                done
        fi
        return 0
}

test_cri_lookups() {
        need_containerd
        local rc=0
        "$PROBE" cri-version >"$TEST_SCRATCH/out" 2>"$TEST_SCRATCH/err" || rc=$?
        [ "$rc" != 95 ] || skip "containerd's CRI plugin is disabled"
        assert_eq "$rc" 0 "cri-version: $(cat "$TEST_SCRATCH/err")"
        assert_eq "$(field runtime_name)" containerd
        "$PROBE" cri-version-raw >"$TEST_SCRATCH/out"
        assert_eq "$(field runtime_api_version)" v1
        # No kubelet here: the lists may be empty, but must answer.
        "$PROBE" cri-pods >"$TEST_SCRATCH/out"
        assert_contains "$TEST_SCRATCH/out" "^pods=[0-9]+$"
        "$PROBE" cri-containers >"$TEST_SCRATCH/out"
        assert_contains "$TEST_SCRATCH/out" "^containers=[0-9]+$"
        rc=0
        "$PROBE" cri-container-status cryo-rpc-missing 2>"$TEST_SCRATCH/err" || rc=$?
        assert_eq "$rc" 2 "unknown CRI container"
        rc=0
        "$PROBE" cri-pod-status cryo-rpc-missing 2>"$TEST_SCRATCH/err" || rc=$?
        assert_eq "$rc" 2 "unknown CRI pod"
}

# The client code paths under valgrind: no leak, no invalid access.
test_probe_valgrind_clean() {
        need_containerd
        need_cmd valgrind
        local vg=(valgrind --quiet --leak-check=full --errors-for-leak-kinds=definite,indirect,possible
                  --error-exitcode=99) rc blob=$TEST_SCRATCH/blob digest lease
        ctr_run cryo-rpc-vg /bin/sleep 600
        head -c 3000000 /dev/urandom >"$blob"
        digest=sha256:$(sha256sum "$blob" | cut -d' ' -f1)
        lease=$(probe lease-create | cut -d= -f2)
        echo "$lease" >"$TEST_SCRATCH/lease"
        local cmds=("version" "namespaces" "container-get cryo-rpc-vg" "container-list" "task-get cryo-rpc-vg"
                "task-list" "image-list" "image-get $RPC_IMAGE" "snapshot-mounts cryo-rpc-vg"
                "snapshot-stat cryo-rpc-vg" "container-get cryo-rpc-missing"
                "-l $lease content-put cryo-rpc-vg-ref $blob" "content-get $digest $TEST_SCRATCH/back"
                "-l $lease content-put cryo-rpc-vg-ref2 $blob $digest" "content-info $digest"
                "cri-pods" "cri-containers" "cri-container-status nope" "events 1 100"
                "-a $TEST_SCRATCH/none.sock version" "-d $TEST_SCRATCH/none.sock docker-inspect x")
        for args in "${cmds[@]}"; do
                rc=0
                # shellcheck disable=SC2086
                "${vg[@]}" "$PROBE" -n "$RPC_NS" $args >/dev/null 2>"$TEST_SCRATCH/err" || rc=$?
                [ "$rc" != 99 ] || fail "valgrind errors in 'rpc-probe $args': $(cat "$TEST_SCRATCH/err")"
        done
        cmp "$blob" "$TEST_SCRATCH/back" || fail "blob differs"
        if [ -S "$DOCKER_SOCK" ]; then
                rc=0
                "${vg[@]}" "$PROBE" docker-inspect cryo-rpc-nonexistent >/dev/null 2>"$TEST_SCRATCH/err" || rc=$?
                [ "$rc" != 99 ] || fail "valgrind errors in docker-inspect: $(cat "$TEST_SCRATCH/err")"
        fi
}

cleanup_test_probe_valgrind_clean() {
        [ -f "$TEST_SCRATCH/lease" ] && "$PROBE" -n "$RPC_NS" lease-delete "$(cat "$TEST_SCRATCH/lease")" || true
}

test_docker_resolve() {
        need_root
        [ -S "$DOCKER_SOCK" ] || skip "dockerd is not running ($DOCKER_SOCK)"
        need_cmd docker
        local root=$TEST_SCRATCH/droot id
        mkdir -p "$root/bin"
        cp /bin/busybox "$root/bin/"
        ln -s busybox "$root/bin/sleep"
        tar -C "$root" -c . | docker import - cryo-rpc-test/busybox:latest >/dev/null
        id=$(docker create --name cryo-rpc-docker cryo-rpc-test/busybox:latest /bin/sleep 600)

        "$PROBE" docker-inspect cryo-rpc-docker >"$TEST_SCRATCH/out"
        assert_eq "$(field id)" "$id" "full id from the name"
        assert_eq "$(field name)" /cryo-rpc-docker
        assert_eq "$(field pid)" 0 "pid of a created container"
        "$PROBE" docker-inspect /cryo-rpc-docker >"$TEST_SCRATCH/out"
        assert_eq "$(field id)" "$id" "full id from /name"
        "$PROBE" docker-inspect "${id:0:12}" >"$TEST_SCRATCH/out"
        assert_eq "$(field id)" "$id" "full id from a prefix"

        docker start cryo-rpc-docker >/dev/null
        "$PROBE" docker-inspect cryo-rpc-docker >"$TEST_SCRATCH/out"
        assert_eq "$(field pid)" "$(docker inspect -f '{{.State.Pid}}' cryo-rpc-docker)" "State.Pid"
        # Docker's containers are containerd containers in namespace moby.
        "$PROBE" -n moby container-get "$id" >"$TEST_SCRATCH/out"
        assert_eq "$(field id)" "$id"

        local rc=0
        "$PROBE" docker-inspect cryo-rpc-no-such 2>"$TEST_SCRATCH/err" || rc=$?
        assert_eq "$rc" 2 "unknown container"
        assert_contains "$TEST_SCRATCH/err" "No such container: cryo-rpc-no-such"
        rc=0
        "$PROBE" docker-inspect '../../info' 2>"$TEST_SCRATCH/err" || rc=$?
        assert_eq "$rc" 22 "path injection refused"
        rc=0
        "$PROBE" -d "$TEST_SCRATCH/nodocker.sock" docker-inspect cryo-rpc-docker 2>"$TEST_SCRATCH/err" || rc=$?
        assert_eq "$rc" 2 "missing docker socket"
        assert_contains "$TEST_SCRATCH/err" "cannot connect to Docker at $TEST_SCRATCH/nodocker.sock: No such file"
}

cleanup() {
        if [ -S "$DOCKER_SOCK" ] && command -v docker >/dev/null; then
                docker rm -f cryo-rpc-docker >/dev/null 2>&1 || true
                docker rmi cryo-rpc-test/busybox:latest >/dev/null 2>&1 || true
        fi
        [ -S "$CTRD_SOCK" ] && command -v ctr >/dev/null || return 0
        local c
        for c in $(ctr -n "$RPC_NS" containers ls -q 2>/dev/null); do
                ctr -n "$RPC_NS" task kill -s KILL "$c" >/dev/null 2>&1 || true
                for _ in $(seq 50); do
                        ctr -n "$RPC_NS" task delete "$c" >/dev/null 2>&1 && break
                        ctr -n "$RPC_NS" task ls -q 2>/dev/null | grep -qx "$c" || break
                        sleep 0.1
                done
                ctr -n "$RPC_NS" containers delete "$c" >/dev/null 2>&1 || true
        done
        for c in $(ctr -n "$RPC_NS" snapshots ls 2>/dev/null | awk 'NR > 1 && $1 ~ /^cryo-rpc-/ {print $1}'); do
                ctr -n "$RPC_NS" snapshots rm "$c" >/dev/null 2>&1 || true
        done
        ctr -n "$RPC_NS" images rm "$RPC_IMAGE" >/dev/null 2>&1 || true
        # The namespace goes once containerd's GC has emptied it (that can
        # take seconds after a lease is deleted).
        for _ in $(seq 100); do
                ctr namespaces ls -q | grep -qx "$RPC_NS" || break
                ctr namespaces rm "$RPC_NS" >/dev/null 2>&1 && break
                sleep 0.1
        done
}
