# Every CLI path runs under valgrind without a leak or invalid access:
# dump, inspect, list, check, restore, and the error paths; a containerd
# dump and restore too (not in the sanitizer run, whose build valgrind
# cannot run).

source "$CRYO_TOP/tests/lib/images.sh"
source "$CRYO_TOP/tests/lib/containerd.sh"

VG=(valgrind --quiet --leak-check=full --errors-for-leak-kinds=definite,indirect
    --show-leak-kinds=definite,indirect --error-exitcode=99 --trace-children=no
    --suppressions="$CRYO_TOP/tests/valgrind.supp")

test_valgrind_clean_dump_restore() {
        need_cmd valgrind
        local pid ck dir rc
        dir=$TEST_SCRATCH/ck
        setsid sleep 600 </dev/null >/dev/null 2>&1 &
        pid=$!
        "${VG[@]}" "$CRYO" dump --type process --pid "$pid" --dir "$dir" >"$TEST_SCRATCH/path"
        ck=$(tail -1 "$TEST_SCRATCH/path")
        wait "$pid" 2>/dev/null || true
        "${VG[@]}" "$CRYO" inspect --verify "$ck" >/dev/null
        "${VG[@]}" "$CRYO" inspect --json "$ck" >/dev/null
        "${VG[@]}" "$CRYO" list --dir "$dir" >/dev/null
        "${VG[@]}" "$CRYO" check --json >/dev/null
        "${VG[@]}" "$CRYO" restore --json --checkpoint-dir "$ck" >"$TEST_SCRATCH/restored.json"
        local restored
        restored=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' "$TEST_SCRATCH/restored.json")
        assert_eq "$restored" "$pid" "restored pid"
        pid_alive "$pid" || fail "restored process is not running"
        kill -9 "$pid"
}

# The archive paths run threads (checksums, the O_DIRECT writer, zstd's
# workers): a dump to an archive and a restore from it, under valgrind.
test_valgrind_clean_archive() {
        need_cmd valgrind
        local pid
        setsid sleep 600 </dev/null >/dev/null 2>&1 &
        pid=$!
        "${VG[@]}" "$CRYO" dump --type process --pid "$pid" --archive "$TEST_SCRATCH/a.tar.zst" >/dev/null
        wait "$pid" 2>/dev/null || true
        "${VG[@]}" "$CRYO" restore --json --checkpoint-dir "$TEST_SCRATCH/a.tar.zst" --dir "$TEST_SCRATCH/imp" \
                >"$TEST_SCRATCH/restored.json"
        pid_alive "$pid" || fail "restored process is not running"
        kill -9 "$pid"
}

test_valgrind_clean_error_paths() {
        need_cmd valgrind
        local rc
        for args in "dump --type process --pid 999999 --dir $TEST_SCRATCH/x" \
                    "restore --checkpoint-dir /nonexistent" \
                    "inspect $TEST_SCRATCH" \
                    "dump --type nosuchtype --id x" \
                    "dump --bogus-flag"; do
                rc=0
                # shellcheck disable=SC2086
                "${VG[@]}" "$CRYO" $args >/dev/null 2>"$TEST_SCRATCH/err" || rc=$?
                [ "$rc" != 99 ] || fail "valgrind found errors in 'cryo $args': $(cat "$TEST_SCRATCH/err")"
                [ "$rc" != 0 ] || fail "'cryo $args' succeeded"
        done
}

# The containerd paths under valgrind, its tmpfs copies included: a dump
# and a restore without a leak or an invalid access (forked helpers are
# not followed).
test_valgrind_clean_containerd() {
        need_containerd
        need_cmd valgrind
        ctr_run vg1 sh -c 'echo kept >/run/kept; sleep 1000'
        wait_for test -e "/proc/$(ctr_task_pid vg1)/root/run/kept"
        "${VG[@]}" "$CRYO" dump --type containerd --namespace "$CTR_NS" --id vg1 --dir "$TEST_SCRATCH/ck" \
                >"$TEST_SCRATCH/path" 2>"$TEST_SCRATCH/err" || fail "dump under valgrind: $(cat "$TEST_SCRATCH/err")"
        ctr_remove vg1
        "${VG[@]}" "$CRYO" restore --checkpoint-dir "$(tail -1 "$TEST_SCRATCH/path")" --id vg2 >/dev/null \
                2>"$TEST_SCRATCH/err" || fail "restore under valgrind: $(cat "$TEST_SCRATCH/err")"
        assert_eq "$(ctr_file vg2 /run/kept)" kept "/run after the restore"
        ctr_remove vg2
}

cleanup() {
        kill_test_procs "^sleep 600$"
        ctr_cleanup
}
