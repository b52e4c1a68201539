# Post-copy (lazy-pages) migration of a process tree on this host: `cryo
# dump --lazy-pages` serves the memory pages while `cryo restore
# --lazy-pages` runs the tree on the "target" and fetches them.  Source and
# target are one machine here, so the workload runs as the init of its own
# pid namespace: its copy is restored into a new one while the source still
# holds the original pids.  See docs/migration.md.

source "${CRYO_TOP:-$(dirname "${BASH_SOURCE[0]}")/../..}/tests/lib/workloads.sh"
source "${CRYO_TOP:-$(dirname "${BASH_SOURCE[0]}")/../..}/tests/lib/lazy.sh"

_need_lazy() {
        need_root
        need_cmd criu unshare setsid python3
        [ -x "$CRYO" ] || skip "cryo is not built ($CRYO)"
        [ -x "$WORKLOADS/wl-memory" ] || skip "wl-memory is not built"
        criu check --feature uffd-noncoop >/dev/null 2>&1 || skip "the kernel lacks non-cooperative userfaultfd"
}

# _assert_err REGEX: the last expect_fail printed a cryo: message matching REGEX.
_assert_err() {
        grep -q '^cryo' "$TEST_SCRATCH/err" || fail "no 'cryo' message on stderr: $(cat "$TEST_SCRATCH/err")"
        grep -qiE -- "$1" "$TEST_SCRATCH/err" || fail "stderr does not match /$1/: $(cat "$TEST_SCRATCH/err")"
        echo "ok /$1/: $(cat "$TEST_SCRATCH/err")"
}

# _ck_digest DIR: the checkpoint's content, to prove a failed restore left it alone.
_ck_digest() {
        (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum) | sha256sum
}

# _ns_start SIZE_MB: wl-memory as pid 1 of a new pid namespace; sets NS_UNSHARE
# (our child, the namespace's parent outside) and NS_PID (the host pid).
_ns_start() {
        local dir=$TEST_SCRATCH/wl-ns
        mkdir -p "$dir"
        unshare --pid --fork setsid "$WORKLOADS/wl-memory" --status "$dir/status" --result "$dir/result" \
                --size-mb "$1" </dev/null >>"$dir/log" 2>&1 &
        NS_UNSHARE=$!
        echo "$NS_UNSHARE" >"$TEST_SCRATCH/.ns-unshare"
        WAIT_TIMEOUT=60 wait_for test -s "$dir/status" || fail "wl-memory did not start: $(tail "$dir/log")"
        NS_PID=$(pgrep -P "$NS_UNSHARE" | head -n 1)
        [ -n "$NS_PID" ] || fail "no namespace init under unshare $NS_UNSHARE"
        echo "$NS_PID" >>"$TEST_SCRATCH/.ns-pids"
}

# _ns_verify PID: SIGUSR2 to that host pid; the verdict must be PASS.
_ns_verify() {
        local dir=$TEST_SCRATCH/wl-ns
        rm -f "$dir/result"
        kill -USR2 "$1" || fail "pid $1 is not running"
        WAIT_TIMEOUT=60 wait_for test -s "$dir/result" || fail "pid $1 wrote no verdict: $(tail "$dir/log")"
        grep -q '^PASS' "$dir/result" || fail "memory check after migration: $(cat "$dir/result")"
        echo "pid $1: $(cat "$dir/result")"
}

# _lazy_dump_bg PORT [FLAGS...]: the lazy dump of $NS_PID, in the background.
_lazy_dump_bg() {
        local port=$1
        shift
        lazy_dump_bg "$port" --type process --pid "$NS_PID" --dir "$TEST_SCRATCH/ck" "$@"
}

cleanup() {
        local p
        lazy_stop_dump_jobs
        for p in $(cat "$TEST_SCRATCH/.ns-pids" 2>/dev/null); do
                [ "$(cat "/proc/$p/comm" 2>/dev/null)" = wl-memory ] && kill -KILL "$p" 2>/dev/null || true
        done
        wl_cleanup
}

test_lazy_migration() {
        _need_lazy
        _ns_start 128
        _ns_verify "$NS_PID"
        local port src=$NS_PID
        port=$(lazy_free_port)
        _lazy_dump_bg "$port" --lazy-timeout 120

        # The checkpoint says what it is, and holds what it lists.
        "$CRYO" inspect --verify "$CK" >"$TEST_SCRATCH/inspect.out"
        assert_contains "$TEST_SCRATCH/inspect.out" "Memory: +not included: post-copy"
        python3 - "$CK/cryo.json" <<'EOF' || fail "manifest"
import json, sys
m = json.load(open(sys.argv[1]))
assert m["lazy_pages"]["pages_included"] is False, m.get("lazy_pages")
assert m["source"]["pid_ns_init"] is True
EOF
        # CRIU still holds the source, frozen, until the pages have moved.
        pid_alive "$src" || fail "the source died before the target fetched its pages"

        "$CRYO" restore --type process --checkpoint-dir "$CK" --lazy-pages --page-server "127.0.0.1:$port" \
                >"$TEST_SCRATCH/restore.out" 2>"$TEST_SCRATCH/restore.err" ||
                fail "lazy restore failed: $(cat "$TEST_SCRATCH/restore.err")"
        local new
        new=$(tail -n 1 "$TEST_SCRATCH/restore.out")
        echo "$new" >>"$TEST_SCRATCH/.ns-pids"
        wait "$DUMP_JOB" || fail "the lazy dump failed: $(cat "$TEST_SCRATCH/dump.err")"

        # The source is gone (CRIU ended it once the target had every page);
        # the copy runs, with all of its memory.
        wait "$NS_UNSHARE" 2>/dev/null || true
        WAIT_TIMEOUT=20 wait_for _wl_all_gone "$src" || fail "the source $src still exists"
        assert_eq "$(cat "/proc/$new/comm")" wl-memory "restored process"
        _ns_verify "$new"
}

test_lazy_errors() {
        _need_lazy
        _ns_start 32
        local port src=$NS_PID
        port=$(lazy_free_port)

        # Post-copy is for process trees that end on the source.
        expect_fail "lazy dump with --leave-running" "$CRYO" dump --type process --pid "$src" \
                --dir "$TEST_SCRATCH/ck" --lazy-pages --page-server "127.0.0.1:$port" --leave-running
        _assert_err "exclude each other"
        _ns_verify "$src"

        # A source nobody fetches from gives up and runs on.
        _lazy_dump_bg "$port" --lazy-timeout 5
        cp -a "$CK" "$TEST_SCRATCH/copy"
        local before
        before=$(_ck_digest "$TEST_SCRATCH/copy")

        # Its CRIU work directory, however old, is held while it serves: the
        # sweep another cryo makes of /run/cryo (here a lazy dump that then
        # fails on its pid) leaves it alone.
        local work
        work=$(readlink /proc/"$DUMP_JOB"/fd/* 2>/dev/null | grep -m1 '^/run/cryo/dump-') ||
                fail "no CRIU work directory open in the serving dump"
        touch -d '2 hours ago' "$work"
        expect_fail "lazy dump of no process" "$CRYO" dump --type process --pid 999999999 \
                --dir "$TEST_SCRATCH/ck" --lazy-pages --page-server "127.0.0.1:1"
        [ -d "$work" ] || fail "the serving dump's work directory was swept"

        # A plain restore of a checkpoint without pages is refused.
        expect_fail "plain restore of a lazy checkpoint" "$CRYO" restore --type process \
                --checkpoint-dir "$TEST_SCRATCH/copy"
        _assert_err "holds no memory pages.*--lazy-pages"

        if wait "$DUMP_JOB"; then
                fail "the lazy dump succeeded without a target: $(cat "$TEST_SCRATCH/dump.out")"
        fi
        cp "$TEST_SCRATCH/dump.err" "$TEST_SCRATCH/err"
        _assert_err "no target fetched the pages"
        pid_alive "$src" || fail "the source did not survive a lazy dump nobody fetched"
        _ns_verify "$src"
        [ ! -e "$CK" ] || fail "the lazy checkpoint without a page server was left behind"

        # Now nothing listens: a lazy restore fails cleanly.
        expect_fail "lazy restore with no page server" "$CRYO" restore --type process \
                --checkpoint-dir "$TEST_SCRATCH/copy" --lazy-pages --page-server "127.0.0.1:$port"
        _assert_err "cannot fetch the memory pages from the source: .*connect"
        assert_eq "$(_ck_digest "$TEST_SCRATCH/copy")" "$before" "checkpoint after the failed restore"
        local left
        left=$(pgrep -f -- "--status $TEST_SCRATCH/wl-ns/status" | grep -vx -e "$src" -e "$NS_UNSHARE" || true)
        [ -z "$left" ] || fail "a half-restored copy is left: $(ps -o pid=,stat=,args= -p "${left//$'\n'/,}")"

        # A post-copy restore needs to know where the pages are.
        expect_fail "lazy restore without --page-server" "$CRYO" restore --type process \
                --checkpoint-dir "$TEST_SCRATCH/copy" --lazy-pages
        grep -q "needs --page-server" "$TEST_SCRATCH/err" || fail "$(cat "$TEST_SCRATCH/err")"

        # And a complete checkpoint is not restored as a post-copy one.
        "$CRYO" dump --type process --pid "$src" --dir "$TEST_SCRATCH/full" >"$TEST_SCRATCH/full.out" ||
                fail "plain dump failed"
        expect_fail "lazy restore of a complete checkpoint" "$CRYO" restore --type process \
                --checkpoint-dir "$(tail -n 1 "$TEST_SCRATCH/full.out")" --lazy-pages --page-server "127.0.0.1:$port"
        _assert_err "is a complete checkpoint, not a post-copy one"
}

# CRIU's page server ends alike whether the target has every page or went
# away: the source must wait for the target cryo's word, not die.
test_lazy_target_gone_source_survives() {
        _need_lazy
        _ns_start 32
        local port src=$NS_PID
        port=$(lazy_free_port)
        _lazy_dump_bg "$port" --lazy-timeout 5

        # A "target" that connects to the page server and leaves at once,
        # then a confirmation with the wrong token: both refused.
        lazy_fake_target "$port"
        if wait "$DUMP_JOB"; then
                fail "the lazy dump succeeded without a target: $(cat "$TEST_SCRATCH/dump.out")"
        fi
        cp "$TEST_SCRATCH/dump.err" "$TEST_SCRATCH/err"
        _assert_err "the source was resumed: the target did not confirm"
        pid_alive "$src" || fail "the source died although no target restored it"
        _ns_verify "$src"
}

# Ctrl-C (SIGINT) while the source waits for a target: the page server
# stops, the source runs on with its memory, and cryo says it was
# interrupted (128 + 2) instead of waiting out --lazy-timeout.
test_lazy_interrupted_source_runs_on() {
        _need_lazy
        _ns_start 64
        local port rc=0 state
        port=$(lazy_free_port)
        _lazy_dump_bg "$port" --lazy-timeout 300
        kill -INT "$DUMP_JOB"
        WAIT_TIMEOUT=20 wait_for sh -c "! kill -0 $DUMP_JOB 2>/dev/null" || fail "cryo did not stop on SIGINT"
        wait "$DUMP_JOB" || rc=$?
        assert_eq "$rc" 130 "exit code"
        assert_contains "$TEST_SCRATCH/dump.err" "interrupted"
        [ ! -e "$CK" ] || fail "the checkpoint, useless without its page server, is still there"
        pid_alive "$NS_PID" || fail "the source is gone"
        state=$(awk '{print $3}' "/proc/$NS_PID/stat")
        [ "$state" != T ] && [ "$state" != t ] || fail "the source was left stopped ($state)"
        _ns_verify "$NS_PID"
}
