# Helpers for tests against the real containerd.  Sourced after common.sh
# and images.sh.  Every test uses its own namespace, removed by ctr_cleanup.

CTR_NS=${CTR_NS:-cryo-it}

need_containerd() {
        need_root
        need_cmd ctr
        ctr version >/dev/null 2>&1 || skip "containerd is not running"
        img_ensure_containerd "$CTR_NS" || fail "cannot import the test image into namespace $CTR_NS"
}

# ctr_run ID CMD...: a detached task of the test image.
ctr_run() {
        local id=$1
        shift
        ctr -n "$CTR_NS" run -d "$CRYO_TEST_IMAGE" "$id" "$@" >/dev/null
        wait_for ctr_task_running "$id" || fail "task $id did not start"
}

ctr_task_status() {
        ctr -n "$CTR_NS" tasks ls 2>/dev/null | awk -v id="$1" '$1 == id { print $3 }'
}

ctr_task_pid() {
        ctr -n "$CTR_NS" tasks ls 2>/dev/null | awk -v id="$1" '$1 == id { print $2 }'
}

ctr_task_running() {
        [ "$(ctr_task_status "$1")" = RUNNING ]
}

ctr_container_exists() {
        ctr -n "$CTR_NS" containers ls -q 2>/dev/null | grep -qx "$1"
}

# ctr_file ID PATH: a file inside the running task's root.
ctr_file() {
        cat "/proc/$(ctr_task_pid "$1")/root$2"
}

# The counter loop every container test runs: COUNT in /count, 10 per second.
# Written through a rename so a reader never sees the file empty.
COUNTER_SH='i=0; while :; do i=$((i+1)); echo $i > /count.new; mv /count.new /count; sleep 0.1; done'

# ctr_freezer_state ID: THAWED/FREEZING/FROZEN of the task's freezer cgroup
# (cgroup v1), or 0/1 from cgroup.freeze (cgroup v2).
ctr_freezer_state() {
        local pid cg
        pid=$(ctr_task_pid "$1")
        cg=$(awk -F: '$2 == "freezer" { print $3 }' "/proc/$pid/cgroup")
        if [ -n "$cg" ]; then
                cat "/sys/fs/cgroup/freezer$cg/freezer.state"
                return
        fi
        cg=$(awk -F: '$1 == "0" { print $3 }' "/proc/$pid/cgroup")
        if [ -f "/sys/fs/cgroup$cg/cgroup.freeze" ]; then
                cat "/sys/fs/cgroup$cg/cgroup.freeze"
        else
                cat "/sys/fs/cgroup/unified$cg/cgroup.freeze"
        fi
}

# assert_goes_on ID: after a dump that must leave the task running (a
# failed one, --leave-running), it is RUNNING, its cgroup is thawed, none of
# its processes is stopped, its network is not locked by CRIU's iptables
# rules, and the counter of COUNTER_SH goes on.
assert_goes_on() {
        local id=$1 pid p state a b
        ctr_task_running "$id" || fail "task $id is $(ctr_task_status "$id"), not RUNNING"
        state=$(ctr_freezer_state "$id")
        [ "$state" = THAWED ] || [ "$state" = 0 ] || fail "the cgroup of $id is left $state"
        pid=$(ctr_task_pid "$id")
        for p in $pid $(cat "/proc/$pid/task/"*/children 2>/dev/null); do
                state=$(awk '{ print $3 }' "/proc/$p/stat" 2>/dev/null || true)
                [ "$state" != T ] || fail "process $p of $id is left stopped"
        done
        if command -v iptables >/dev/null 2>&1; then
                ! nsenter -t "$pid" -n iptables -S 2>/dev/null | grep -q CRIU ||
                        fail "the network of $id is left locked: $(nsenter -t "$pid" -n iptables -S 2>&1)"
        fi
        a=$(ctr_file "$id" /count)
        sleep 0.5
        b=$(ctr_file "$id" /count)
        [ "$b" -gt "$a" ] || fail "$id does not run on: count $a, then $b"
}

ctr_remove() {
        local id
        for id in "$@"; do
                ctr -n "$CTR_NS" tasks kill -s KILL "$id" >/dev/null 2>&1 || true
                for _ in $(seq 1 50); do
                        ctr -n "$CTR_NS" tasks rm -f "$id" >/dev/null 2>&1 || true
                        ctr_task_status "$id" | grep -q . || break
                        sleep 0.1
                done
                ctr -n "$CTR_NS" containers rm "$id" >/dev/null 2>&1 || true
                ctr -n "$CTR_NS" snapshots rm "$id" >/dev/null 2>&1 || true
        done
}

ctr_cleanup() {
        local ids
        ids=$(ctr -n "$CTR_NS" containers ls -q 2>/dev/null || true)
        # shellcheck disable=SC2086
        [ -z "$ids" ] || ctr_remove $ids
}

# The shim is the parent of a containerd-managed task.
assert_shim_parent() {
        local pid=$1 ppid
        ppid=$(awk '{print $4}' "/proc/$pid/stat")
        grep -q containerd-shim "/proc/$ppid/cmdline" || fail "parent of $pid is not a containerd shim: $(tr '\0' ' ' <"/proc/$ppid/cmdline")"
}

# Host B: a second containerd with its own root, state and sockets, as the
# target of a migration.  Same machine, so the restore uses another
# namespace (cgroup paths and runc state are keyed by namespace).
HOSTB_DIR=/run/cryo-test-hostb
HOSTB_ROOT=/var/lib/cryo-test-hostb
HOSTB_SOCK=$HOSTB_DIR/containerd.sock

hostb_start() {
        mkdir -p "$HOSTB_DIR" "$HOSTB_ROOT"
        cat >"$HOSTB_DIR/config.toml" <<TOML
version = 2
root = "$HOSTB_ROOT"
state = "$HOSTB_DIR/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$HOSTB_SOCK"
[ttrpc]
  address = "$HOSTB_SOCK.ttrpc"
[debug]
  address = "$HOSTB_DIR/debug.sock"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$HOSTB_ROOT/opt"
TOML
        setsid containerd --config "$HOSTB_DIR/config.toml" >"$HOSTB_DIR/containerd.log" 2>&1 </dev/null &
        echo $! >"$HOSTB_DIR/pid"
        WAIT_TIMEOUT=20 wait_for ctr --address "$HOSTB_SOCK" version >/dev/null 2>&1 ||
                fail "host B containerd did not start: $(tail -5 "$HOSTB_DIR/containerd.log")"
}

hostb_stop() {
        local pid ns id
        [ -f "$HOSTB_DIR/pid" ] || return 0
        for ns in $(ctr --address "$HOSTB_SOCK" namespaces ls -q 2>/dev/null); do
                for id in $(ctr --address "$HOSTB_SOCK" -n "$ns" containers ls -q 2>/dev/null); do
                        ctr --address "$HOSTB_SOCK" -n "$ns" tasks kill -s KILL "$id" >/dev/null 2>&1 || true
                        sleep 0.3
                        ctr --address "$HOSTB_SOCK" -n "$ns" tasks rm -f "$id" >/dev/null 2>&1 || true
                        ctr --address "$HOSTB_SOCK" -n "$ns" containers rm "$id" >/dev/null 2>&1 || true
                done
        done
        pid=$(cat "$HOSTB_DIR/pid")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        umount -R "$HOSTB_ROOT" 2>/dev/null || true
        rm -rf "$HOSTB_DIR" "$HOSTB_ROOT"
}
