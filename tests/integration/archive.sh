# cryo export / import: a checkpoint as one .tar.zst, verified on the way in;
# cryo dump --archive: the same archive written by the dump itself.

source "${CRYO_TOP:-$(dirname "${BASH_SOURCE[0]}")/../..}/tests/lib/workloads.sh"

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
        # inspect reads an archive as it reads a directory (verified)
        "$CRYO" inspect --json "$arc" >"$TEST_SCRATCH/inspect.json" || fail "inspect of the archive failed"
        assert_eq "$(jq -r .manifest.type "$TEST_SCRATCH/inspect.json")" process "type seen in the archive"
        assert_eq "$(jq -r .verified "$TEST_SCRATCH/inspect.json")" checksums "archive verification"
        imported=$("$CRYO" import "$arc" --dir "$TEST_SCRATCH/b")
        assert_eq "$(basename "$imported")" "$(basename "$ck")" "imported name"
        diff -r "$ck" "$imported" || fail "imported checkpoint differs"
        # restore straight from the archive (into a third root)
        "$CRYO" restore --checkpoint-dir "$arc" --dir "$TEST_SCRATCH/c" >/dev/null
        pid_alive "$pid" || fail "not restored from the archive"
        kill -9 "$pid"
}

# An archive whose zstd stream is sound but whose files do not match their
# manifest (made by hand: cryo's own export verifies first) is refused by
# restore, inspect and import alike, and the restore leaves nothing behind.
test_archive_with_a_bad_file_refused() {
        need_root
        need_cmd zstd
        local pid ck img
        setsid sleep 600 </dev/null >/dev/null 2>&1 &
        pid=$!
        ck=$("$CRYO" dump --type process --pid "$pid" --dir "$TEST_SCRATCH/a" | tail -1)
        wait "$pid" 2>/dev/null || true
        img=$(cd "$ck" && ls -S checkpoint/pages-*.img | head -n 1)
        printf 'XY' | dd of="$ck/$img" bs=1 seek=1 conv=notrunc status=none
        tar -C "$ck" -cf - . | zstd -q -o "$TEST_SCRATCH/bad.tar.zst"
        expect_fail "restore of an archive with a bad file" \
                "$CRYO" restore --checkpoint-dir "$TEST_SCRATCH/bad.tar.zst" --dir "$TEST_SCRATCH/c"
        assert_contains "$TEST_SCRATCH/err" "$(basename "$img") is corrupted"
        ! pid_alive "$pid" || fail "restored from a bad archive"
        [ -z "$(ls -A "$TEST_SCRATCH/c" 2>/dev/null)" ] || fail "a failed restore left $(ls -A "$TEST_SCRATCH/c")"
        expect_fail "inspect of an archive with a bad file" "$CRYO" inspect "$TEST_SCRATCH/bad.tar.zst"
        assert_contains "$TEST_SCRATCH/err" "is corrupted"
        expect_fail "import of an archive with a bad file" "$CRYO" import "$TEST_SCRATCH/bad.tar.zst" --dir "$TEST_SCRATCH/b"
        assert_contains "$TEST_SCRATCH/err" "is corrupted"
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
        expect_fail "inspect of a truncated archive" "$CRYO" inspect "$TEST_SCRATCH/cut.tar.zst"
        expect_fail "missing archive" "$CRYO" import "$TEST_SCRATCH/none.tar.zst"
        assert_contains "$TEST_SCRATCH/err" "cannot open archive"
}

# The dump writes the archive in one pass: no directory is left behind, the
# source is gone, and the archive alone restores a process whose memory
# verifies.
test_dump_to_archive() {
        need_root
        need_cmd zstd
        local arc=$TEST_SCRATCH/dest/mem.tar.zst
        mkdir -p "$TEST_SCRATCH/dest"
        wl_start memory
        wl_expect_pass memory
        "$CRYO" dump --type process --pid "$(wl_pid memory)" --archive "$arc" --json >"$TEST_SCRATCH/dump.json" ||
                fail "dump --archive failed"
        assert_eq "$(jq -r .path "$TEST_SCRATCH/dump.json")" "$arc" "printed path"
        jq -e '.stats.phases.archive.bytes > 0' "$TEST_SCRATCH/dump.json" >/dev/null ||
                fail "no archive phase in the stats: $(cat "$TEST_SCRATCH/dump.json")"
        wl_reap memory
        wl_assert_gone memory
        assert_eq "$(ls -A "$TEST_SCRATCH/dest")" "mem.tar.zst" "files next to the archive"
        assert_eq "$(stat -c %a "$arc")" 600 "mode of the archive"
        # an ordinary zstd tar, with the manifest and the CRIU images in it
        zstd -dc "$arc" | tar -t >"$TEST_SCRATCH/list" || fail "not a zstd tar"
        grep -qx 'cryo.json' "$TEST_SCRATCH/list" || fail "no manifest in the archive"
        grep -q '^checkpoint/pages-.*\.img$' "$TEST_SCRATCH/list" || fail "no memory image in the archive"
        "$CRYO" restore --type process --checkpoint-dir "$arc" --dir "$TEST_SCRATCH/imp" >/dev/null ||
                fail "restore from the archive failed"
        wl_assert_running memory
        wl_expect_pass memory
        # the same archive restores again (a test environment reset to it)
        wl_kill memory
        "$CRYO" restore --type process --checkpoint-dir "$arc" --dir "$TEST_SCRATCH/imp" >/dev/null ||
                fail "second restore from the archive failed"
        wl_assert_running memory
        wl_expect_pass memory
        assert_eq "$(ls -A "$TEST_SCRATCH/imp")" "" "scratch directories after the restores"
}

# `cryo dump --archive - | ssh host cryo restore --checkpoint-dir -`, on one
# host through a file: standard output carries the archive and nothing
# else, standard input brings it back.
test_archive_through_stdout_and_stdin() {
        need_root
        wl_start memory
        wl_expect_pass memory
        "$CRYO" dump --type process --pid "$(wl_pid memory)" --archive - --json --dir "$TEST_SCRATCH/ck" \
                >"$TEST_SCRATCH/stream" 2>"$TEST_SCRATCH/dump.json" || fail "dump to stdout failed"
        assert_eq "$(head -c 4 "$TEST_SCRATCH/stream" | od -An -tx1 | tr -d ' ')" 28b52ffd "stream magic"
        assert_eq "$(jq -r .path "$TEST_SCRATCH/dump.json")" - "printed path"
        assert_eq "$(ls -A "$TEST_SCRATCH/ck")" "" "scratch left in the checkpoint root"
        wl_reap memory
        wl_assert_gone memory
        "$CRYO" restore --checkpoint-dir - --dir "$TEST_SCRATCH/ck" <"$TEST_SCRATCH/stream" >/dev/null ||
                fail "restore from stdin failed"
        wl_assert_running memory
        wl_expect_pass memory
        assert_eq "$(ls -A "$TEST_SCRATCH/ck")" "" "scratch left after the restore"
}

# The reader goes away in the middle (a dropped ssh): the dump fails on
# EPIPE, not on SIGPIPE, so the source is resumed and nothing is left.
test_archive_reader_gone() {
        need_root
        wl_start memory --size-mb 64
        "$CRYO" dump --type process --pid "$(wl_pid memory)" --archive - --dir "$TEST_SCRATCH/ck" \
                2>"$TEST_SCRATCH/err" | head -c 1000 >/dev/null || true
        grep -q "Broken pipe" "$TEST_SCRATCH/err" || fail "no EPIPE error: $(cat "$TEST_SCRATCH/err")"
        wl_assert_running memory
        [ "$(awk '{print $3}' "/proc/$(wl_pid memory)/stat")" != T ] || fail "the source was left stopped"
        wl_expect_pass memory
        assert_eq "$(ls -A "$TEST_SCRATCH/ck")" "" "scratch left in the checkpoint root"
}

# An existing file is never replaced, and the source is not touched.
test_dump_to_archive_refuses_existing_file() {
        need_root
        local pid
        setsid sleep 600 </dev/null >/dev/null 2>&1 &
        pid=$!
        echo keep >"$TEST_SCRATCH/x.tar.zst"
        expect_fail "existing archive" "$CRYO" dump --type process --pid "$pid" --archive "$TEST_SCRATCH/x.tar.zst"
        assert_contains "$TEST_SCRATCH/err" "already exists"
        assert_eq "$(cat "$TEST_SCRATCH/x.tar.zst")" keep "the existing file"
        pid_alive "$pid" || fail "the source did not survive a refused dump"
        expect_fail "no directory" "$CRYO" dump --type process --pid "$pid" --archive "$TEST_SCRATCH/no/x.tar.zst"
        assert_contains "$TEST_SCRATCH/err" "no directory"
        pid_alive "$pid" || fail "the source did not survive a refused dump"
        [ "$(ls -A "$TEST_SCRATCH" | grep -c '^\.')" = 0 ] || fail "temporary files left: $(ls -A "$TEST_SCRATCH")"
        kill -9 "$pid"
}

# A dump that CRIU refuses (stdin is a socket whose peer is outside the
# tree) leaves no archive, no scratch directory, and the source running.
test_dump_to_archive_failure_leaves_nothing() {
        need_root
        need_cmd python3
        local pid
        mkdir -p "$TEST_SCRATCH/dest"
        python3 -c '
import socket, subprocess, time
a, b = socket.socketpair()
p = subprocess.Popen(["setsid", "sleep", "600"], stdin=b, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(p.pid, flush=True)
time.sleep(600)' >"$TEST_SCRATCH/pid" &
        wait_for test -s "$TEST_SCRATCH/pid" || fail "no helper process"
        pid=$(cat "$TEST_SCRATCH/pid")
        expect_fail "CRIU refusal" "$CRYO" dump --type process --pid "$pid" --archive "$TEST_SCRATCH/dest/x.tar.zst"
        assert_contains "$TEST_SCRATCH/err" "External socket"
        assert_eq "$(ls -A "$TEST_SCRATCH/dest")" "" "files after a failed dump"
        pid_alive "$pid" || fail "the source did not survive a failed dump"
        [ "$(awk '{print $3}' "/proc/$pid/stat")" != T ] || fail "the source was left stopped"
        kill -9 "$pid" %1 2>/dev/null || true
}

cleanup() {
        kill_test_procs '^sleep 600$'
        wl_cleanup
}
