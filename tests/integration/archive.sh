# cryo export / import: a checkpoint as one .tar.zst, verified on the way in.

test_export_import_restore() {
        need_root
        local pid ck arc imported
        setsid sleep 600 </dev/null >/dev/null 2>&1 &
        pid=$!
        ck=$("$CRYO" dump --type process --pid "$pid" --dir "$TEST_SCRATCH/a" | tail -1)
        wait "$pid" 2>/dev/null || true
        arc=$("$CRYO" export "$ck" -o "$TEST_SCRATCH/ck.tar.zst")
        [ "$(stat -c %a "$arc")" = 600 ] || fail "archive is not root-only"
        [ "$(head -c 4 "$arc" | od -An -tx1 | tr -d ' ')" = 28b52ffd ] || fail "archive is not zstd"
        imported=$("$CRYO" import "$arc" --dir "$TEST_SCRATCH/b")
        assert_eq "$(basename "$imported")" "$(basename "$ck")" "imported name"
        diff -r "$ck" "$imported" || fail "imported checkpoint differs"
        # restore straight from the archive (into a third root)
        "$CRYO" restore --checkpoint-dir "$arc" --dir "$TEST_SCRATCH/c" >/dev/null
        pid_alive "$pid" || fail "not restored from the archive"
        kill -9 "$pid"
}

test_damaged_archive_refused() {
        need_root
        local pid ck arc size
        setsid sleep 600 </dev/null >/dev/null 2>&1 &
        pid=$!
        ck=$("$CRYO" dump --type process --pid "$pid" --dir "$TEST_SCRATCH/a" | tail -1)
        wait "$pid" 2>/dev/null || true
        arc=$("$CRYO" export "$ck" -o "$TEST_SCRATCH/ck.tar.zst")
        size=$(stat -c %s "$arc")
        head -c $((size / 2)) "$arc" >"$TEST_SCRATCH/cut.tar.zst"
        expect_fail "truncated archive" "$CRYO" import "$TEST_SCRATCH/cut.tar.zst" --dir "$TEST_SCRATCH/b"
        assert_contains "$TEST_SCRATCH/err" "import of $TEST_SCRATCH/cut.tar.zst"
        [ -z "$(ls -A "$TEST_SCRATCH/b")" ] || fail "a failed import left files: $(ls -A "$TEST_SCRATCH/b")"
        expect_fail "missing archive" "$CRYO" import "$TEST_SCRATCH/none.tar.zst"
        assert_contains "$TEST_SCRATCH/err" "cannot open archive"
}

cleanup() {
        pkill -9 -f '^sleep 600$' 2>/dev/null || true
}
