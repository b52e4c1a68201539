# Post-copy (lazy-pages) migration of a containerd container on this host:
# `cryo dump --type containerd --lazy-pages` leaves the source frozen and
# serves its memory; `cryo restore --type containerd --lazy-pages --id NEW`
# runs the copy as a containerd task (runc's CRIU restores it, cryo's
# lazy-pages daemon fetches the pages).  Source and target are the same
# containerd, so the copy gets a new id.  See docs/migration.md.

source "$CRYO_TOP/tests/lib/images.sh"
source "${CRYO_TOP:-$(dirname "${BASH_SOURCE[0]}")/../..}/tests/lib/lazy.sh"
source "$CRYO_TOP/tests/lib/containerd.sh"

# Our own namespace: other containerd tests may run on this machine.
CTR_NS=cryo-it-lazy

_need_lazy_ctr() {
        need_containerd
        need_cmd criu python3
        criu check --feature uffd-noncoop >/dev/null 2>&1 || skip "the kernel lacks non-cooperative userfaultfd"
}

# _status_is ID STATUS: evaluated anew on each try of wait_for.
_status_is() {
        [ "$(ctr_task_status "$1")" = "$2" ]
}

_assert_err() {
        grep -qiE -- "$1" "$TEST_SCRATCH/err" || fail "stderr does not match /$1/: $(cat "$TEST_SCRATCH/err")"
        echo "ok /$1/: $(cat "$TEST_SCRATCH/err")"
}

# _mem_start ID SIZE_MB: wl-memory as the container's init.
_mem_start() {
        ctr_run "$1" /usr/local/bin/wl-memory --status /status --result /result --size-mb "$2"
        WAIT_TIMEOUT=60 wait_for test -s "/proc/$(ctr_task_pid "$1")/root/status" ||
                fail "wl-memory did not start in $1"
}

# _mem_verify ID: SIGUSR2 to the container's init; its verdict must be PASS.
_mem_verify() {
        local pid
        pid=$(ctr_task_pid "$1")
        [ -n "$pid" ] || fail "container $1 has no task"
        rm -f "/proc/$pid/root/result"
        kill -USR2 "$pid" || fail "the init of $1 (pid $pid) is not running"
        WAIT_TIMEOUT=60 wait_for test -s "/proc/$pid/root/result" || fail "$1 wrote no verdict"
        grep -q '^PASS' "/proc/$pid/root/result" || fail "memory of $1: $(cat "/proc/$pid/root/result")"
        echo "$1 (pid $pid): $(cat "/proc/$pid/root/result")"
}

# _not_stopped PID: neither frozen by its cgroup nor stopped by a signal.
_not_stopped() {
        local state
        state=$(awk '{print $3}' "/proc/$1/stat")
        [ "$state" != T ] && [ "$state" != t ] || fail "pid $1 was left stopped ($state)"
        local cg
        cg=$(awk -F: '$2 == "freezer" { print $3 }' "/proc/$1/cgroup")
        if [ -n "$cg" ] && [ -r "/sys/fs/cgroup/freezer$cg/freezer.state" ]; then
                assert_eq "$(cat "/sys/fs/cgroup/freezer$cg/freezer.state")" THAWED "freezer of pid $1"
        fi
}

# _lazy_dump_bg ID PORT [FLAGS...]: the lazy dump of container ID, in the background.
_lazy_dump_bg() {
        local id=$1 port=$2
        shift 2
        lazy_dump_bg "$port" --type containerd --namespace "$CTR_NS" --id "$id" --dir "$TEST_SCRATCH/ck" "$@"
}

cleanup() {
        local p
        lazy_stop_dump_jobs
        for p in $(cat "$TEST_SCRATCH/.docker" 2>/dev/null); do
                docker rm -f "$p" >/dev/null 2>&1 || true
        done
        ctr_cleanup
}

test_lazy_container_migration() {
        _need_lazy_ctr
        _mem_start lm1 128
        _mem_verify lm1
        local port src
        src=$(ctr_task_pid lm1)
        port=$(lazy_free_port)
        _lazy_dump_bg lm1 "$port" --lazy-timeout 120 --json

        "$CRYO" inspect --verify "$CK" >"$TEST_SCRATCH/inspect.out"
        assert_contains "$TEST_SCRATCH/inspect.out" "Memory: +not included: post-copy"
        python3 - "$CK/cryo.json" <<'EOF' || fail "manifest"
import json, sys
m = json.load(open(sys.argv[1]))
assert m["lazy_pages"]["pages_included"] is False, m.get("lazy_pages")
assert len(m["lazy_pages"]["token"]) == 32
# cryo froze the cgroup itself at CRIU's pre-dump notification (through
# cryo-criu-hook), instead of CRIU's 100 ms freezer steps.
assert "freeze" in m["stats"]["phases"], m["stats"]["phases"]
EOF
        # The source is held until the target confirms.
        pid_alive "$src" || fail "the source died before the target fetched its pages"

        # A plain restore of it is refused, and leaves nothing.
        expect_fail "plain restore of a lazy checkpoint" "$CRYO" restore --type containerd \
                --namespace "$CTR_NS" --checkpoint-dir "$CK" --id lm1-plain
        _assert_err "holds no memory pages"
        ! ctr_container_exists lm1-plain || fail "a refused restore created lm1-plain"

        "$CRYO" restore --type containerd --namespace "$CTR_NS" --checkpoint-dir "$CK" --id lm1-copy \
                --lazy-pages --page-server "127.0.0.1:$port" \
                >"$TEST_SCRATCH/restore.out" 2>"$TEST_SCRATCH/restore.err" ||
                fail "lazy restore failed: $(cat "$TEST_SCRATCH/restore.err")"
        assert_contains "$TEST_SCRATCH/restore.out" '^lm1-copy$'
        wait "$DUMP_JOB" || fail "the lazy dump failed: $(cat "$TEST_SCRATCH/dump.err")"
        # The dump's statistics: the pages served after the copy resumed,
        # and no CRIU timing longer than the whole dump (CRIU reports one
        # it never started as the time since 1970, truncated).
        tail -n +2 "$TEST_SCRATCH/dump.out" | python3 -c '
import json, sys
p = json.load(sys.stdin)["stats"]["phases"]
assert p["lazy_pages"]["usec"] > 0, p
assert all(v["usec"] <= p["total"]["usec"] for v in p.values()), p
' || fail "dump statistics: $(tail -n +2 "$TEST_SCRATCH/dump.out")"

        # The source container ended as after a plain dump; the copy runs
        # under the shim with all of its memory.
        wait_for _status_is lm1 STOPPED || fail "source task is $(ctr_task_status lm1)"
        ctr_task_running lm1-copy || fail "the copy is $(ctr_task_status lm1-copy)"
        assert_shim_parent "$(ctr_task_pid lm1-copy)"
        _mem_verify lm1-copy
        # And it stays a normal task: containerd kills it.
        ctr -n "$CTR_NS" tasks kill -s KILL lm1-copy
        wait_for _status_is lm1-copy STOPPED || fail "kill did not stop the copy"
}

# Nobody fetches: the source runs on, thawed, with its memory; the target
# that then finds no source fails and leaves no container behind.
test_lazy_container_no_target_source_runs_on() {
        _need_lazy_ctr
        _mem_start lm2 32
        local port src
        src=$(ctr_task_pid lm2)
        port=$(lazy_free_port)
        _lazy_dump_bg lm2 "$port" --lazy-timeout 5
        cp -a "$CK" "$TEST_SCRATCH/copy"
        if wait "$DUMP_JOB"; then
                fail "the lazy dump succeeded without a target: $(cat "$TEST_SCRATCH/dump.out")"
        fi
        cp "$TEST_SCRATCH/dump.err" "$TEST_SCRATCH/err"
        _assert_err "no target fetched the pages"
        [ ! -e "$CK" ] || fail "the lazy checkpoint without a page server was left behind"
        ctr_task_running lm2 || fail "the source is $(ctr_task_status lm2)"
        assert_eq "$(ctr_task_pid lm2)" "$src" "source pid"
        _not_stopped "$src"
        _mem_verify lm2

        # A filesystem-only dump has no memory to serve.
        expect_fail "lazy rootfs-only dump" "$CRYO" dump --type containerd --namespace "$CTR_NS" --id lm2 \
                --dir "$TEST_SCRATCH/ck" --lazy-pages --page-server "127.0.0.1:$port" --rootfs-only
        _assert_err "do not combine"
        ctr_task_running lm2 || fail "the source is $(ctr_task_status lm2)"

        # Nothing serves the pages now: the restore fails and unwinds.
        expect_fail "lazy restore with no page server" "$CRYO" restore --type containerd \
                --namespace "$CTR_NS" --checkpoint-dir "$TEST_SCRATCH/copy" --id lm2-copy \
                --lazy-pages --page-server "127.0.0.1:$port"
        _assert_err "connect"
        ! ctr_container_exists lm2-copy || fail "the failed restore left container lm2-copy"
        ! ctr -n "$CTR_NS" snapshots ls 2>/dev/null | awk '{print $1}' | grep -qx lm2-copy ||
                fail "the failed restore left snapshot lm2-copy"
        ctr_task_running lm2 || fail "the source is $(ctr_task_status lm2)"
        _mem_verify lm2
}

# A target whose restore fails after its daemon connected (here: a fake one
# that connects and leaves, then a wrong token): CRIU cannot tell, the
# source waits for a confirmation that never comes and resumes.
test_lazy_container_target_gone_source_resumes() {
        _need_lazy_ctr
        _mem_start lm3 32
        local port src
        src=$(ctr_task_pid lm3)
        port=$(lazy_free_port)
        _lazy_dump_bg lm3 "$port" --lazy-timeout 5
        lazy_fake_target "$port"
        if wait "$DUMP_JOB"; then
                fail "the lazy dump succeeded without a target: $(cat "$TEST_SCRATCH/dump.out")"
        fi
        cp "$TEST_SCRATCH/dump.err" "$TEST_SCRATCH/err"
        _assert_err "the source was resumed"
        ctr_task_running lm3 || fail "the source is $(ctr_task_status lm3)"
        _not_stopped "$src"
        _mem_verify lm3
}

# Ctrl-C while the source waits: it runs on, thawed.
test_lazy_container_interrupted_source_runs_on() {
        _need_lazy_ctr
        _mem_start lm4 32
        local port rc=0 src
        src=$(ctr_task_pid lm4)
        port=$(lazy_free_port)
        _lazy_dump_bg lm4 "$port" --lazy-timeout 300
        kill -INT "$DUMP_JOB"
        WAIT_TIMEOUT=20 wait_for sh -c "! kill -0 $DUMP_JOB 2>/dev/null" || fail "cryo did not stop on SIGINT"
        wait "$DUMP_JOB" || rc=$?
        assert_eq "$rc" 130 "exit code"
        ctr_task_running lm4 || fail "the source is $(ctr_task_status lm4)"
        _not_stopped "$src"
        _mem_verify lm4
}

# A Docker container is a containerd container in namespace moby: migrated
# post-copy as one, and restored as a containerd task (dockerd is not
# involved in the restore, so --type docker stays refused).
test_lazy_docker_container_into_containerd() {
        _need_lazy_ctr
        need_cmd docker
        docker info >/dev/null 2>&1 || skip "dockerd is not running"
        img_ensure_docker || fail "cannot import the Docker test image"
        docker rm -f cryo-it-lazy-d1 >/dev/null 2>&1 || true
        echo cryo-it-lazy-d1 >>"$TEST_SCRATCH/.docker"
        docker run -d --name cryo-it-lazy-d1 "$CRYO_TEST_IMAGE_DOCKER" /usr/local/bin/wl-memory \
                --status /status --result /result --size-mb 64 >/dev/null
        local id port src
        id=$(docker inspect -f '{{.Id}}' cryo-it-lazy-d1)
        src=$(docker inspect -f '{{.State.Pid}}' cryo-it-lazy-d1)
        WAIT_TIMEOUT=60 wait_for test -s "/proc/$src/root/status" || fail "wl-memory did not start"
        port=$(lazy_free_port)

        expect_fail "lazy dump as --type docker" "$CRYO" dump --type docker --id cryo-it-lazy-d1 \
                --dir "$TEST_SCRATCH/ck" --lazy-pages --page-server "127.0.0.1:$port"
        _assert_err "not supported for docker"

        lazy_dump_bg "$port" --type containerd --namespace moby --id "$id" --dir "$TEST_SCRATCH/ck" \
                --lazy-timeout 120
        "$CRYO" restore --type containerd --checkpoint-dir "$CK" --namespace "$CTR_NS" --id ld1 \
                --lazy-pages --page-server "127.0.0.1:$port" >/dev/null 2>"$TEST_SCRATCH/restore.err" ||
                fail "lazy restore failed: $(cat "$TEST_SCRATCH/restore.err")"
        wait "$DUMP_JOB" || fail "the lazy dump failed: $(cat "$TEST_SCRATCH/dump.err")"
        wait_for _docker_stopped cryo-it-lazy-d1 || fail "the Docker source still runs"
        ctr_task_running ld1 || fail "the copy is $(ctr_task_status ld1)"
        assert_shim_parent "$(ctr_task_pid ld1)"
        _mem_verify ld1
}

_docker_stopped() {
        [ "$(docker inspect -f '{{.State.Running}}' "$1")" = false ]
}
