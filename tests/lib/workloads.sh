# Helpers to drive the test workloads (tests/workloads/wl-*.c).
# Sourced by integration tests after tests/lib/common.sh.
#
# A workload instance NAME lives in $TEST_SCRATCH/wl-NAME/:
#   status   "ready PID [PID...]" then "key value" lines (port, socket, token, out)
#   result   the verdict of the last SIGUSR2: "PASS ..." or "FAIL: why"
#   log      its stdout and stderr (opened O_APPEND: CRIU checks the size of
#            files open without O_APPEND on restore, so a log that grew after
#            the dump would make the restore fail with "bad size")
#   work/    its --dir (files, unix sockets), out (counter)
#
# wl_start runs the workload detached (setsid, stdio on files) as a direct
# child of the calling shell, so that the shell can `wait` for it: PID 1 on
# these machines reaps orphans late and a zombie holding a pid makes a
# restore of that pid fail with "File exists".  Never call wl_start inside
# $(...): the workload would be orphaned when the subshell exits.

# wl_dir NAME
wl_dir() {
        echo "$TEST_SCRATCH/wl-$1"
}

# wl_start NAME [EXTRA ARGS...]: start wl-NAME, wait until ready; sets WL_PID.
wl_start() {
        local name=$1
        shift
        local dir
        dir=$(wl_dir "$name")
        [ -x "$WORKLOADS/wl-$name" ] || fail "workload $WORKLOADS/wl-$name is not built"
        mkdir -p "$dir/work"
        rm -f "$dir/status" "$dir/result"
        local defaults=()
        case $name in
        files | unix) defaults=(--dir "$dir/work") ;;
        tcp-listen) defaults=(--port 0) ;;
        counter) defaults=("$dir/work/out") ;;
        esac
        setsid "$WORKLOADS/wl-$name" --status "$dir/status" --result "$dir/result" \
                "${defaults[@]}" "$@" </dev/null >>"$dir/log" 2>&1 &
        WL_PID=$!
        echo "$name" >>"$TEST_SCRATCH/.wl-instances"
        if ! wait_for test -s "$dir/status"; then
                fail "wl-$name did not become ready: $(tail -n 20 "$dir/log")"
        fi
        local state pid
        read -r state pid _ <"$dir/status"
        [ "$state" = ready ] || fail "wl-$name: status says '$state'"
        [ "$pid" = "$WL_PID" ] || fail "wl-$name: status pid $pid is not the started pid $WL_PID"
}

# wl_pid NAME: the top pid.  wl_pids NAME: all pids, top first.
wl_pid() {
        awk 'NR == 1 { print $2 }' "$(wl_dir "$1")/status"
}

wl_pids() {
        awk 'NR == 1 { for (i = 2; i <= NF; i++) print $i }' "$(wl_dir "$1")/status"
}

# wl_status NAME KEY: a "key value" line of the status file.
wl_status() {
        awk -v k="$2" 'NR > 1 && $1 == k { print $2; exit }' "$(wl_dir "$1")/status"
}

# wl_verify NAME: SIGUSR2, wait for the verdict, print it.  Returns 0 on PASS.
wl_verify() {
        local dir pid
        dir=$(wl_dir "$1")
        pid=$(wl_pid "$1")
        rm -f "$dir/result"
        kill -USR2 "$pid" || fail "wl-$1 (pid $pid) is not running"
        if ! WAIT_TIMEOUT=${WAIT_TIMEOUT:-20} wait_for test -s "$dir/result"; then
                fail "wl-$1 (pid $pid) wrote no verdict: $(tail -n 20 "$dir/log")"
        fi
        cat "$dir/result"
        grep -q '^PASS' "$dir/result"
}

# wl_expect_pass NAME: the verdict must be PASS; the verdict is printed.
wl_expect_pass() {
        local verdict
        verdict=$(wl_verify "$1") || fail "wl-$1: expected PASS, got: $verdict"
        echo "wl-$1: $verdict"
        pid_alive "$(wl_pid "$1")" || fail "wl-$1 died after verifying"
}

# wl_expect_fail NAME [REGEX]: the verdict must be FAIL (matching REGEX).
wl_expect_fail() {
        local verdict
        if verdict=$(wl_verify "$1"); then
                fail "wl-$1: expected FAIL, got: $verdict"
        fi
        [[ $verdict == FAIL:* ]] || fail "wl-$1: no verdict line: $verdict"
        [ -z "${2:-}" ] || [[ $verdict =~ $2 ]] || fail "wl-$1: verdict '$verdict' does not match /$2/"
        echo "wl-$1: $verdict (as expected)"
}

# wl_corrupt NAME: SIGUSR1, the workload damages its own state.
wl_corrupt() {
        kill -USR1 "$(wl_pid "$1")"
}

# wl_result_field NAME KEY: KEY=value from the last verdict.
wl_result_field() {
        tr ' ' '\n' <"$(wl_dir "$1")/result" | awk -F= -v k="$2" '$1 == k { print $2; exit }'
}

_wl_all_gone() {
        local p
        for p in "$@"; do
                [ ! -e "/proc/$p" ] || return 1
        done
}

# wl_reap NAME: wait until every pid of the instance has vanished (dead and
# reaped).  The top is `wait`ed for when it is our child; the rest are
# reaped by their parents or by PID 1 (slowly).
wl_reap() {
        local pids top p
        pids=$(wl_pids "$1")
        top=$(wl_pid "$1")
        WAIT_TIMEOUT=${WAIT_TIMEOUT:-20} wait_for _wl_not_running $pids ||
                fail "wl-$1: still running: $(_wl_ps $pids)"
        wait "$top" 2>/dev/null || true
        WAIT_TIMEOUT=${WAIT_TIMEOUT:-20} wait_for _wl_all_gone $pids ||
                fail "wl-$1: pids not reaped: $(_wl_ps $pids)"
}

_wl_not_running() {
        local p
        for p in "$@"; do
                ! pid_alive "$p" || return 1
        done
}

_wl_ps() {
        ps -o pid=,ppid=,stat=,comm= -p "$(echo "$@" | tr ' ' ',')" 2>/dev/null | tr '\n' ';'
}

# wl_assert_running NAME / wl_assert_gone NAME: every pid alive / none left.
wl_assert_running() {
        local p comm
        for p in $(wl_pids "$1"); do
                pid_alive "$p" || fail "wl-$1: pid $p is not running"
                comm=$(cat "/proc/$p/comm" 2>/dev/null || true)
                [ "$comm" = "wl-$1" ] || fail "wl-$1: pid $p is now '$comm'"
        done
}

wl_assert_gone() {
        local p
        for p in $(wl_pids "$1"); do
                ! pid_alive "$p" || fail "wl-$1: pid $p still running: $(_wl_ps "$p")"
        done
}

# wl_kill NAME: SIGTERM the top (it stops its children), then reap.
wl_kill() {
        kill -TERM "$(wl_pid "$1")" 2>/dev/null || true
        wl_reap "$1"
}

# wl_ids PID: "ppid pgid sid" of a process, from /proc.
wl_ids() {
        # comm may contain spaces: take the fields after the last ')'.
        sed -E 's/.*\) //' "/proc/$1/stat" | awk '{ print $2, $3, $4 }'
}

# wl_tcp_get PORT: one line from 127.0.0.1:PORT.
wl_tcp_get() {
        local line
        exec 9<>"/dev/tcp/127.0.0.1/$1" || return 1
        read -r -t 5 line <&9 || true
        exec 9<&-
        echo "$line"
}

# wl_unix_get PATH: one line from the unix stream socket at PATH.
wl_unix_get() {
        python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(5)
s.connect(sys.argv[1])
print(s.makefile().readline().rstrip("\n"))
' "$1"
}

# wl_counter_continuous NAME: the "counter N" lines wl-counter printed run
# 1, 2, 3, ... without a gap or a restart (a restore that started the
# program afresh would print "counter 1" again).  Prints the last value.
wl_counter_continuous() {
        grep '^counter ' "$(wl_dir "$1")/log" |
                awk '$2 != NR { printf "line %d says %s\n", NR, $0; bad = 1; exit 1 } END { if (!bad) print NR }'
}

# wl_cleanup: kill whatever workload instances of this test still run.
# Only pids whose command is still a wl-* workload are touched.
wl_cleanup() {
        local list=$TEST_SCRATCH/.wl-instances name p comm
        [ -f "$list" ] || return 0
        for name in $(sort -u "$list"); do
                [ -f "$(wl_dir "$name")/status" ] || continue
                for p in $(wl_pids "$name"); do
                        comm=$(cat "/proc/$p/comm" 2>/dev/null) || continue
                        [[ $comm == wl-* ]] && kill -KILL "$p" 2>/dev/null || true
                done
        done
}
