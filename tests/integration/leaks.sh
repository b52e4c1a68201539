# Every CLI path runs under valgrind without a leak or invalid access:
# dump, inspect, list, check, restore, and the error paths.

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

cleanup() {
        kill_test_procs "^sleep 600$"
}
