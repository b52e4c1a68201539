# Shared helpers for integration tests.  Sourced by tests/run.
#
# A test file tests/integration/NAME.sh defines functions named test_*.
# Each runs in its own subshell with `set -euo pipefail`; it passes when it
# returns 0, fails otherwise, and may call `skip "reason"` (which is a
# failure when CI=true: CI must have every daemon, package and privilege).

CRYO=${CRYO:-$CRYO_BUILD_DIR/src/cli/cryo}
WORKLOADS=${WORKLOADS:-$CRYO_BUILD_DIR/tests/workloads}

skip() {
        echo "SKIP: $*" >&2
        exit 77
}

fail() {
        echo "FAIL: $*" >&2
        exit 1
}

# A per-test scratch directory, root-only, removed by the runner.
scratch() {
        echo "$TEST_SCRATCH"
}

need_root() {
        [ "$(id -u)" = 0 ] || skip "needs root"
}

need_cmd() {
        local c
        for c in "$@"; do
                command -v "$c" >/dev/null 2>&1 || skip "needs $c"
        done
}

# wait_for CMD... : retry a command for up to ${WAIT_TIMEOUT:-10} seconds.
wait_for() {
        local deadline=$((SECONDS + ${WAIT_TIMEOUT:-10}))
        until "$@"; do
                [ $SECONDS -lt $deadline ] || return 1
                sleep 0.1
        done
}

pid_alive() {
        kill -0 "$1" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]
}

# expect_fail "what" CMD... : the command must exit non-zero; its stderr is
# kept in $TEST_SCRATCH/err for the caller to check the message.
expect_fail() {
        local what=$1
        shift
        if "$@" >"$TEST_SCRATCH/out" 2>"$TEST_SCRATCH/err"; then
                fail "$what: expected failure, got success: $(cat "$TEST_SCRATCH/out")"
        fi
        return 0
}

assert_contains() {
        local file=$1 pattern=$2
        grep -qE -- "$pattern" "$file" || fail "expected /$pattern/ in $file: $(head -c 2000 "$file")"
}

assert_eq() {
        [ "$1" = "$2" ] || fail "${3:-values differ}: '$1' != '$2'"
}

# kill_test_procs PATTERN: SIGKILL to the processes matching PATTERN
# (pgrep -f) that this test started, restored copies included: the ones
# whose environment holds this test's TEST_SCRATCH.  Never a process of the
# same name that someone else runs on the machine.
kill_test_procs() {
        local p
        for p in $(pgrep -f "$1"); do
                if tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qxF "TEST_SCRATCH=$TEST_SCRATCH"; then
                        kill -9 "$p" 2>/dev/null || true
                fi
        done
}

# Is every cgroup hierarchy of this shell mounted at its root under
# /sys/fs/cgroup/NAME, NAME as CRIU derives it ("name=X" -> X, cgroup2 ->
# "unified")?
host_cgroups_form_a_yard() {
        local ctl dir
        while IFS=: read -r _ ctl _; do
                case $ctl in
                "") dir=unified ;;
                name=*) dir=${ctl#name=} ;;
                *) dir=$ctl ;;
                esac
                awk -v p="/sys/fs/cgroup/$dir" '$4 == "/" && $5 == p { ok = 1 } END { exit !ok }' \
                        /proc/self/mountinfo || return 1
        done </proc/self/cgroup
}
