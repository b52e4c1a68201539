# The test workloads themselves, checked with the raw criu CLI (no cryo):
# each must survive a real dump + restore with PASS, and each verifier must
# be able to say FAIL, so that the process/container tests that build on
# them are known to bite.

source "${CRYO_TOP:-$(dirname "${BASH_SOURCE[0]}")/../..}/tests/lib/workloads.sh"
source "${CRYO_TOP:-$(dirname "${BASH_SOURCE[0]}")/../..}/tests/lib/images.sh"

# A containerd namespace and a Docker tag of our own for the image test.
WL_IMG_NS=cryo-test-workloads
WL_IMG_DOCKER=cryo-test/busybox:wl-idempotency

cleanup() {
        wl_cleanup
}

cleanup_test_test_image() {
        ctr -n "$WL_IMG_NS" tasks kill -s KILL wl-img-t1 >/dev/null 2>&1 || true
        ctr -n "$WL_IMG_NS" containers rm wl-img-t1 >/dev/null 2>&1 || true
        img_remove_containerd "$WL_IMG_NS"
        ctr namespaces rm "$WL_IMG_NS" >/dev/null 2>&1 || true
        docker rm -f wl-img-t2 >/dev/null 2>&1 || true
        docker image rm -f "$WL_IMG_DOCKER" >/dev/null 2>&1 || true
}

_need_criu() {
        need_root
        need_cmd criu setsid python3
}

# criu_dump NAME [CRIU FLAGS...]: dump the instance into $(wl_dir NAME)/ck.
criu_dump() {
        local name=$1
        shift
        local ck
        ck=$(wl_dir "$name")/ck
        mkdir -p "$ck"
        criu dump -t "$(wl_pid "$name")" -D "$ck" -o dump.log -v4 "$@" ||
                fail "criu dump of wl-$name failed: $(grep -E 'Error|Warn' "$ck/dump.log" | tail -n 20)"
}

# criu_restore NAME [CRIU FLAGS...]: restore it detached.
criu_restore() {
        local name=$1
        shift
        local ck
        ck=$(wl_dir "$name")/ck
        criu restore -d -D "$ck" -o restore.log -v4 "$@" ||
                fail "criu restore of wl-$name failed: $(grep -E 'Error|Warn' "$ck/restore.log" | tail -n 20)"
}

# The common round trip: PASS before, dump (the tree is gone), restore (the
# same pids are back), PASS after.  Extra criu flags go to both commands.
roundtrip() {
        local name=$1
        shift
        criu_dump "$name" "$@"
        wl_reap "$name"
        wl_assert_gone "$name"
        criu_restore "$name" "$@"
        wl_assert_running "$name"
        wl_expect_pass "$name"
}

test_memory_roundtrip() {
        _need_criu
        wl_start memory
        wl_expect_pass memory
        roundtrip memory
        # The check after restore is not vacuous: damage is still detected.
        wl_corrupt memory
        wl_expect_fail memory 'large region page [0-9]+ differs'
}

# CRIU does not checksum page images: damage one on disk and the restore
# succeeds, but the memory verifier catches it.  The byte is found by
# searching the images for the pattern of page 5 of the large region.
test_memory_detects_corrupted_image() {
        _need_criu
        wl_start memory --size-mb 8
        wl_expect_pass memory
        criu_dump memory
        wl_reap memory
        python3 - "$(wl_dir memory)/ck" <<'EOF' || fail "could not find the large region in the page images"
import glob, struct, sys
M = (1 << 64) - 1
def mix(x):
    x = (x + 0x9e3779b97f4a7c15) & M
    x = ((x ^ (x >> 30)) * 0xbf58476d1ce4e5b9) & M
    x = ((x ^ (x >> 27)) * 0x94d049bb133111eb) & M
    return x ^ (x >> 31)
needle = struct.pack("<Q", mix(0xb16000 + 5))  # page 5, word 0 (wl_fill)
for path in glob.glob(sys.argv[1] + "/pages-*.img"):
    data = bytearray(open(path, "rb").read())
    at = data.find(needle)
    if at >= 0 and at % 4096 == 0:
        data[at + 3] ^= 0xff
        open(path, "wb").write(data)
        sys.exit(0)
sys.exit(1)
EOF
        criu_restore memory
        wl_expect_fail memory 'large region page 5 differs at byte 3'
}

test_files_roundtrip() {
        _need_criu
        need_cmd flock
        wl_start files --file-locks
        local work
        work=$(wl_dir files)/work
        wl_expect_pass files
        ! flock -n "$work/flock" true || fail "the workload's flock is not held before the dump"
        roundtrip files --file-locks
        ! flock -n "$work/flock" true || fail "the workload's flock is not held after restore"
        [ ! -e "$work/ghost" ] || fail "the unlinked file reappeared on disk after restore"
}

# CRIU refuses to dump held file locks unless asked: that is why cryo has
# --file-locks.  A failed dump leaves the process running and intact.
test_files_locks_need_flag() {
        _need_criu
        wl_start files --file-locks
        local ck
        ck=$(wl_dir files)/ck
        mkdir -p "$ck"
        expect_fail "criu dump without --file-locks" criu dump -t "$WL_PID" -D "$ck" -o dump.log
        assert_contains "$ck/dump.log" '[Ff]ile locks'
        wl_assert_running files
        wl_expect_pass files
}

# A file changed behind the checkpoint's back is caught after restore.
test_files_detect_changed_data() {
        _need_criu
        wl_start files
        wl_expect_pass files
        criu_dump files
        wl_reap files
        # Same size (CRIU checks sizes), different bytes.
        printf 'XXXXXXXX' | dd of="$(wl_dir files)/work/data" bs=1 seek=5000 conv=notrunc status=none
        criu_restore files
        wl_expect_fail files 'data: content differs at byte 5000'
}

test_pipes_roundtrip() {
        _need_criu
        wl_start pipes
        [ "$(wl_pids pipes | wc -l)" = 2 ] || fail "wl-pipes should be a parent and a child"
        wl_expect_pass pipes
        roundtrip pipes
        # Twice: verification puts the buffered data back.
        wl_expect_pass pipes
}

test_unix_roundtrip() {
        _need_criu
        wl_start unix
        local sock token line
        sock=$(wl_status unix socket)
        token=$(wl_status unix token)
        line=$(wl_unix_get "$sock")
        assert_eq "$line" "wl-unix token=$token served=1" "client before dump"
        wl_expect_pass unix # served=2 (it connects to itself)
        roundtrip unix      # served=3
        line=$(wl_unix_get "$sock")
        assert_eq "$line" "wl-unix token=$token served=4" "client after restore"
}

test_tcp_listen_roundtrip() {
        _need_criu
        wl_start tcp-listen
        local port token line
        port=$(wl_status tcp-listen port)
        token=$(wl_status tcp-listen token)
        [ -n "$port" ] && [ "$port" -gt 0 ] || fail "no port in status"
        line=$(wl_tcp_get "$port")
        assert_eq "$line" "wl-tcp token=$token served=1" "client before dump"
        wl_expect_pass tcp-listen # served=2
        criu_dump tcp-listen
        wl_reap tcp-listen
        # Nobody listens while the process is checkpointed.
        if wl_tcp_get "$port" 2>/dev/null | grep -q token; then
                fail "port $port still answers after the dump"
        fi
        criu_restore tcp-listen
        line=$(wl_tcp_get "$port")
        assert_eq "$line" "wl-tcp token=$token served=3" "client after restore"
        wl_expect_pass tcp-listen
}

test_tree_roundtrip() {
        _need_criu
        wl_start tree
        local pids p before after
        pids=$(wl_pids tree)
        [ "$(echo "$pids" | wc -l)" = 7 ] || fail "wl-tree should have 7 processes: $pids"
        wl_expect_pass tree
        # ppid/pgid/sid of every process except the top (whose parent changes).
        before=$(for p in $(echo "$pids" | tail -n +2); do echo "$p $(wl_ids "$p")"; done)
        roundtrip tree
        after=$(for p in $(echo "$pids" | tail -n +2); do echo "$p $(wl_ids "$p")"; done)
        assert_eq "$after" "$before" "process ids after restore"
        # The top kept its own session and group.
        assert_eq "$(wl_ids "$WL_PID" | cut -d' ' -f2-)" "$WL_PID $WL_PID" "top pgid/sid"
}

test_timers_roundtrip() {
        _need_criu
        wl_start timers
        wl_expect_pass timers
        local a1 p1 t1
        a1=$(wl_result_field timers alarms)
        p1=$(wl_result_field timers posix)
        t1=$(wl_result_field timers timerfd)
        criu_dump timers
        wl_reap timers
        criu_restore timers
        wl_assert_running timers
        local verdict
        if ! verdict=$(wl_verify timers); then
                # The timerfd expired while frozen: a known CRIU bug, hit by
                # chance here and on purpose in test_timerfd_expired_at_dump.
                # The itimer and POSIX timer were checked (and fire) first.
                [[ $verdict == *"criu issue #3162"* ]] || fail "wl-timers after restore: $verdict"
                echo "known CRIU bug hit: $verdict"
                return 0
        fi
        echo "wl-timers: $verdict"
        local a2 p2 t2
        a2=$(wl_result_field timers alarms)
        p2=$(wl_result_field timers posix)
        t2=$(wl_result_field timers timerfd)
        # Counting continued from the checkpointed values (the verifier
        # already proved every timer fires after restore).
        [ "$a2" -gt "$a1" ] && [ "$p2" -gt "$p1" ] && [ "$t2" -gt "$t1" ] ||
                fail "counters did not continue: alarms $a1->$a2 posix $p1->$p2 timerfd $t1->$t2"
}

# Pins CRIU 4.2.1's behaviour (criu issue #3162): a periodic timerfd that
# expired but was not read when the process was frozen is dumped with
# it_value 0 and restored disarmed, so it never fires again.  --timerfd-unread
# makes that state certain at dump time.  cryo works around it when it dumps
# (src/lib/engine/timerfd-fix.c, process.sh); when CRIU fixes it this test
# says so.
test_timerfd_expired_at_dump() {
        _need_criu
        wl_start timers --timerfd-unread
        wl_expect_pass timers
        criu_dump timers
        wl_reap timers
        criu_restore timers
        local verdict
        if verdict=$(wl_verify timers); then
                fail "$(criu --version | head -n 1) restored an expired periodic timerfd armed:" \
                        "criu issue #3162 looks fixed; drop this pin and cryo's workaround"
        fi
        [[ $verdict == *"timerfd disarmed: it_value 0"* ]] || fail "unexpected verdict: $verdict"
        echo "as pinned: $verdict"
        # Everything else about the process is fine: only the timerfd is dead.
        wl_assert_running timers
}

_counter_value() {
        cat "$1"
}

_counter_above() {
        [ "$(cat "$1")" -gt "$2" ]
}

test_counter_roundtrip() {
        _need_criu
        wl_start counter
        local out n_dump
        out=$(wl_dir counter)/work/out
        wait_for _counter_above "$out" 3 || fail "counter does not count: $(cat "$out")"
        wl_expect_pass counter
        criu_dump counter
        wl_reap counter
        n_dump=$(_counter_value "$out")
        criu_restore counter
        wait_for _counter_above "$out" "$n_dump" || fail "counter did not move after restore"
        wl_expect_pass counter
        [ "$(wl_result_field counter counter)" -gt "$n_dump" ] || fail "verifier saw an old value"
        # It continued from the checkpoint, not from 1: stdout has one
        # unbroken sequence across the restore.
        local last
        last=$(wl_counter_continuous counter) || fail "counter restarted: $last"
        [ "$last" -gt "$n_dump" ] || fail "nothing printed after the restore"
}

# Every verifier can fail: corrupt the state on purpose, expect FAIL.
test_verifiers_can_fail() {
        _need_criu
        local name why
        for name in memory files pipes unix tcp-listen tree timers counter; do
                wl_start "$name"
                wl_expect_pass "$name"
                wl_corrupt "$name"
                case $name in
                memory) why='large region page' ;;
                files) why='ghost: offset is 778' ;;
                pipes) why='pipe A data differs' ;;
                unix) why='holds 4 datagrams' ;;
                tcp-listen) why='SO_REUSEADDR' ;;
                tree) why='node 6 .*memory differs' ;;
                timers) why='itimer interval' ;;
                counter) why='shadow copy' ;;
                esac
                wl_expect_fail "$name" "$why"
                wl_kill "$name"
        done
}

# The busybox test image (tests/lib/images.sh) builds with no registry, runs
# under containerd and Docker, carries the static workloads, re-imports as a
# no-op, and can be removed (for "image missing" tests) and brought back.
test_test_image() {
        need_root
        need_cmd docker ctr
        docker info >/dev/null 2>&1 || skip "dockerd is not running"
        ctr version >/dev/null 2>&1 || skip "containerd is not running"
        img_ensure default "$WL_IMG_NS" || fail "could not build or import the test image"

        local out
        out=$(ctr -n default run --rm "$CRYO_TEST_IMAGE" "wl-img-$$" /bin/sh -c 'echo hi') ||
                fail "ctr run failed: $out"
        assert_eq "$out" hi "ctr run output"
        out=$(docker run --rm "$CRYO_TEST_IMAGE_DOCKER" echo hi) || fail "docker run failed: $out"
        assert_eq "$out" hi "docker run output"

        # A static workload verifies itself inside each runtime.
        out=$(ctr -n "$WL_IMG_NS" run --rm "$CRYO_TEST_IMAGE" wl-img-t1 /bin/sh -c \
                'wl-memory --size-mb 4 --status /tmp/s & until [ -s /tmp/s ]; do sleep 0.1; done
                 kill -USR2 $!; sleep 1; kill $!; wait $!') || fail "workload in containerd failed: $out"
        [[ $out == *"PASS heap_nodes"* ]] || fail "no PASS from wl-memory under containerd: $out"
        out=$(docker run --rm --name wl-img-t2 "$CRYO_TEST_IMAGE_DOCKER" /bin/sh -c \
                'wl-counter /tmp/out & sleep 1; kill -USR2 $!; sleep 0.5; kill $!; wait $!') ||
                fail "workload in docker failed: $out"
        [[ $out == *"PASS counter="* ]] || fail "no PASS from wl-counter under Docker: $out"

        # Deterministic: a rebuild gives the same digests...
        local d1 d2
        d1=$(img_build && echo "$IMG_LAYER_DIGEST $IMG_MANIFEST_DIGEST") || fail "img_build failed"
        d2=$(img_build && echo "$IMG_LAYER_DIGEST $IMG_MANIFEST_DIGEST") || fail "img_build failed"
        assert_eq "$d2" "$d1" "digests of two builds"
        # ...so a second ensure imports nothing.  Checked on names no other
        # test run uses (the shared ones may be re-imported concurrently by
        # a run from another build directory).
        local again
        again=$( (IMG_LAYER_DIGEST= IMG_MANIFEST_DIGEST= CRYO_TEST_IMAGE_DOCKER=$WL_IMG_DOCKER \
                img_ensure "$WL_IMG_NS") 2>&1) || fail "img_ensure failed: $again"
        again=$( (IMG_LAYER_DIGEST= IMG_MANIFEST_DIGEST= CRYO_TEST_IMAGE_DOCKER=$WL_IMG_DOCKER \
                img_ensure "$WL_IMG_NS") 2>&1) || fail "second img_ensure failed: $again"
        [[ $again != *importing* ]] || fail "second img_ensure imported again: $again"
        CRYO_TEST_IMAGE_DOCKER=$WL_IMG_DOCKER img_remove_docker
        ! docker image inspect "$WL_IMG_DOCKER" >/dev/null 2>&1 || fail "img_remove_docker left $WL_IMG_DOCKER"

        # Removal for "image missing" tests, then back.
        img_remove_containerd "$WL_IMG_NS"
        [ -z "$(_img_ctr_digest "$WL_IMG_NS")" ] || fail "image still present in $WL_IMG_NS"
        [ -n "$(_img_ctr_digest default)" ] || fail "removal from $WL_IMG_NS touched namespace default"
        img_ensure_containerd "$WL_IMG_NS" || fail "re-import failed"
        [ "$(_img_ctr_digest "$WL_IMG_NS")" = "$IMG_MANIFEST_DIGEST" ] || fail "re-import gave another digest"
}
