# cryo on plain process trees: every test workload through `cryo dump` /
# `cryo restore`, the inspect and list views, and the error paths (bad pid,
# missing, corrupted, truncated or too new checkpoints, a pid in use, a dump
# that cannot be written, a disk that fills up during a dump or its archive).

source "${CRYO_TOP:-$(dirname "${BASH_SOURCE[0]}")/../..}/tests/lib/workloads.sh"

cleanup() {
        wl_cleanup
}

_need_cryo() {
        need_root
        need_cmd criu setsid python3
        [ -x "$CRYO" ] || skip "cryo is not built ($CRYO)"
}

# cryo_dump NAME [FLAGS...]: dump the instance under $TEST_SCRATCH/ck and set
# CK to the new checkpoint directory (the last line of stdout).
cryo_dump() {
        local name=$1
        shift
        "$CRYO" dump --type process --pid "$(wl_pid "$name")" --dir "$TEST_SCRATCH/ck" "$@" \
                >"$TEST_SCRATCH/dump.out" 2>"$TEST_SCRATCH/dump.err" ||
                fail "cryo dump of wl-$name failed: $(cat "$TEST_SCRATCH/dump.err")"
        CK=$(tail -n 1 "$TEST_SCRATCH/dump.out")
        [ -n "$CK" ] && [ -d "$CK" ] || fail "cryo dump printed no checkpoint directory: '$CK'"
}

# cryo_restore DIR [FLAGS...]
cryo_restore() {
        local dir=$1
        shift
        "$CRYO" restore --type process --checkpoint-dir "$dir" "$@" \
                >"$TEST_SCRATCH/restore.out" 2>"$TEST_SCRATCH/restore.err" ||
                fail "cryo restore of $dir failed: $(cat "$TEST_SCRATCH/restore.err")"
}

# assert_checkpoint DIR: a finished checkpoint, private to root.
assert_checkpoint() {
        [ -d "$1" ] || fail "no checkpoint directory $1"
        assert_eq "$(stat -c %a "$1")" 700 "mode of the checkpoint directory"
        [ -s "$1/cryo.json" ] || fail "no cryo.json in $1"
        python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$1/cryo.json" ||
                fail "cryo.json is not JSON"
}

# assert_err REGEX: the last expect_fail printed a cryo: message matching REGEX.
assert_err() {
        grep -q '^cryo:' "$TEST_SCRATCH/err" || fail "no 'cryo:' message on stderr: $(cat "$TEST_SCRATCH/err")"
        grep -qiE -- "$1" "$TEST_SCRATCH/err" || fail "stderr does not match /$1/: $(cat "$TEST_SCRATCH/err")"
        echo "ok /$1/: $(cat "$TEST_SCRATCH/err")"
}

# Digest of a checkpoint's content, to prove a failed restore left it alone.
ck_digest() {
        (cd "$1" && find . -type f ! -name '*.log' -print0 | sort -z | xargs -0 sha256sum) | sha256sum
}

# Dump, check the tree is gone and the checkpoint well formed, restore,
# check the same pids run again and the workload verifies.
cryo_roundtrip() {
        local name=$1
        shift
        wl_expect_pass "$name"
        cryo_dump "$name" "$@"
        wl_reap "$name"
        wl_assert_gone "$name"
        assert_checkpoint "$CK"
        cryo_restore "$CK"
        wl_assert_running "$name"
        wl_expect_pass "$name"
}

test_memory() {
        _need_cryo
        wl_start memory
        cryo_roundtrip memory
        wl_corrupt memory
        wl_expect_fail memory 'large region page'
}

test_files() {
        _need_cryo
        need_cmd flock
        wl_start files --file-locks
        cryo_roundtrip files --file-locks
        ! flock -n "$(wl_dir files)/work/flock" true || fail "the flock was not restored"
}

test_pipes() {
        _need_cryo
        wl_start pipes
        cryo_roundtrip pipes
}

test_unix() {
        _need_cryo
        wl_start unix
        local sock token
        sock=$(wl_status unix socket)
        token=$(wl_status unix token)
        cryo_roundtrip unix # served: 1 before, 2 after
        assert_eq "$(wl_unix_get "$sock")" "wl-unix token=$token served=3" "client after restore"
}

test_tcp_listen() {
        _need_cryo
        wl_start tcp-listen
        local port token
        port=$(wl_status tcp-listen port)
        token=$(wl_status tcp-listen token)
        assert_eq "$(wl_tcp_get "$port")" "wl-tcp token=$token served=1" "client before dump"
        cryo_roundtrip tcp-listen # served 2, 3
        assert_eq "$(wl_tcp_get "$port")" "wl-tcp token=$token served=4" "client after restore"
}

test_tree() {
        _need_cryo
        wl_start tree
        local p before after
        before=$(for p in $(wl_pids tree | tail -n +2); do echo "$p $(wl_ids "$p")"; done)
        cryo_roundtrip tree
        after=$(for p in $(wl_pids tree | tail -n +2); do echo "$p $(wl_ids "$p")"; done)
        assert_eq "$after" "$before" "pid ppid pgid sid of the tree after restore"
}

test_timers() {
        _need_cryo
        wl_start timers
        wl_expect_pass timers
        local a1 verdict
        a1=$(wl_result_field timers alarms)
        cryo_dump timers
        wl_reap timers
        assert_checkpoint "$CK"
        cryo_restore "$CK"
        wl_assert_running timers
        # A timerfd that expired during the freeze (by chance here) is fixed
        # by cryo: test_timerfd_expired_at_dump covers that case on purpose.
        verdict=$(wl_verify timers) || fail "wl-timers after restore: $verdict"
        [ "$(wl_result_field timers alarms)" -gt "$a1" ] || fail "SIGALRM count restarted"
}

# A periodic timerfd that expired while the tree was frozen: plain CRIU
# 4.2.1 restores it disarmed (criu issue #3162, pinned in workloads.sh), so
# the application's timer never fires again.  cryo gives such a timerfd
# entry (it_value 0, interval set, ticks pending) a 1 ns it_value in the
# images before committing the checkpoint (src/lib/engine/timerfd-fix.c):
# the timer fires at once on restore and goes on with its interval.  Twice,
# as the restored timer is found expired again by the second dump.
test_timerfd_expired_at_dump() {
        _need_cryo
        wl_start timers --timerfd-unread
        local t1 t2 t3
        wl_expect_pass timers
        t1=$(wl_result_field timers timerfd)
        cryo_roundtrip timers
        t2=$(wl_result_field timers timerfd)
        cryo_roundtrip timers
        t3=$(wl_result_field timers timerfd)
        [ "$t2" -gt "$t1" ] && [ "$t3" -gt "$t2" ] || fail "timerfd count did not go on: $t1 -> $t2 -> $t3"
}

_counter_above() {
        [ "$(cat "$1")" -gt "$2" ]
}

test_counter() {
        _need_cryo
        wl_start counter
        local out n_dump n_after
        out=$(wl_dir counter)/work/out
        wait_for _counter_above "$out" 3 || fail "the counter does not count"
        wl_expect_pass counter
        cryo_dump counter
        wl_reap counter
        n_dump=$(cat "$out")
        cryo_restore "$CK"
        wait_for _counter_above "$out" "$n_dump" || fail "the counter did not move after restore"
        n_after=$(cat "$out")
        wl_expect_pass counter
        local last
        last=$(wl_counter_continuous counter) || fail "counter restarted: $last"
        [ "$last" -gt "$n_dump" ] || fail "nothing printed after the restore"
        # Still running a while later: the restored tree is not tied to cryo.
        wait_for _counter_above "$out" "$n_after" || fail "the counter stopped"
        wl_assert_running counter
}

test_leave_running() {
        _need_cryo
        wl_start memory
        cryo_dump memory --leave-running
        assert_checkpoint "$CK"
        wl_assert_running memory
        wl_expect_pass memory
        # The checkpoint is usable once the original is gone.
        wl_kill memory
        cryo_restore "$CK"
        wl_expect_pass memory
}

test_dump_subcommand_form() {
        _need_cryo
        wl_start pipes
        "$CRYO" dump process "$WL_PID" --dir "$TEST_SCRATCH/ck" --name sub >"$TEST_SCRATCH/out" ||
                fail "cryo dump process PID failed"
        CK=$(tail -n 1 "$TEST_SCRATCH/out")
        assert_eq "$(basename "$CK")" sub "--name"
        assert_checkpoint "$CK"
        wl_reap pipes
        cryo_restore "$CK"
        wl_expect_pass pipes
}

test_dump_json() {
        _need_cryo
        wl_start counter
        "$CRYO" dump --type process --pid "$WL_PID" --dir "$TEST_SCRATCH/ck" --json >"$TEST_SCRATCH/out" ||
                fail "cryo dump --json failed"
        CK=$(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert isinstance(d["stats"], dict) and d["stats"], "no stats"
print(d["path"])
' "$TEST_SCRATCH/out") || fail "bad --json output: $(cat "$TEST_SCRATCH/out")"
        assert_checkpoint "$CK"
        wl_reap counter
        "$CRYO" restore --checkpoint-dir "$CK" --json >"$TEST_SCRATCH/out" || fail "cryo restore --json failed"
        python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$TEST_SCRATCH/out" ||
                fail "restore --json is not JSON: $(cat "$TEST_SCRATCH/out")"
        wl_expect_pass counter
}

test_inspect() {
        _need_cryo
        wl_start tree
        cryo_dump tree --leave-running
        "$CRYO" inspect "$CK" >"$TEST_SCRATCH/out" || fail "cryo inspect failed"
        local p
        for p in $(wl_pids tree); do
                grep -qw "$p" "$TEST_SCRATCH/out" || fail "inspect does not show pid $p: $(cat "$TEST_SCRATCH/out")"
        done
        assert_contains "$TEST_SCRATCH/out" 'wl-tree'
        "$CRYO" inspect --json "$CK" >"$TEST_SCRATCH/out.json" || fail "cryo inspect --json failed"
        python3 - "$TEST_SCRATCH/out.json" $(wl_pids tree) <<'EOF' || fail "inspect --json is wrong"
import json, sys
d = json.load(open(sys.argv[1]))
want = [int(p) for p in sys.argv[2:]]
m = d["manifest"]
assert isinstance(m["format_version"], int), m["format_version"]
assert m["type"] == "process", m["type"]
procs = {p["pid"]: p for p in m["processes"]}
assert sorted(procs) == sorted(want), (sorted(procs), want)
for p in procs.values():
    assert p["comm"] == "wl-tree", p
    if p["pid"] != want[0]:
        assert p["ppid"] in procs, p
EOF
}

test_list() {
        _need_cryo
        wl_start memory
        cryo_dump memory --leave-running --name listed
        "$CRYO" list --dir "$TEST_SCRATCH/ck" >"$TEST_SCRATCH/out" || fail "cryo list failed"
        assert_contains "$TEST_SCRATCH/out" listed
        assert_contains "$TEST_SCRATCH/out" process
        "$CRYO" list --dir "$TEST_SCRATCH/ck" --json >"$TEST_SCRATCH/out.json" || fail "cryo list --json failed"
        python3 - "$TEST_SCRATCH/out.json" "$CK" "$WL_PID" <<'EOF' || fail "list --json is wrong"
import json, os, sys
d = json.load(open(sys.argv[1]))
assert isinstance(d, list) and len(d) == 1, d
e = d[0]
assert os.path.realpath(e["path"]) == os.path.realpath(sys.argv[2]), e
assert e["type"] == "process" and str(e["id"]) == sys.argv[3], e
EOF
}

test_dump_nonexistent_pid() {
        _need_cryo
        local p
        p=$(($(cat /proc/sys/kernel/pid_max) - 1))
        while [ -e "/proc/$p" ]; do p=$((p - 1)); done
        expect_fail "dump of a missing pid" "$CRYO" dump --type process --pid "$p" --dir "$TEST_SCRATCH/ck"
        assert_err "\\b$p\\b"
        [ -z "$(ls -A "$TEST_SCRATCH/ck" 2>/dev/null)" ] || fail "a failed dump left $(ls "$TEST_SCRATCH/ck")"
}

test_restore_missing_dir() {
        _need_cryo
        expect_fail "restore of a missing checkpoint" \
                "$CRYO" restore --type process --checkpoint-dir "$TEST_SCRATCH/nope"
        assert_err "$TEST_SCRATCH/nope"
}

# Dump a workload, then stop it so that its pids are free for a restore.
_dumped_memory() {
        wl_start memory --size-mb 8
        cryo_dump memory
        wl_reap memory
}

test_restore_corrupted_image() {
        _need_cryo
        _dumped_memory
        local img
        img=$(cd "$CK" && ls checkpoint/pages-*.img | head -n 1)
        [ -n "$img" ] || fail "no pages image in $CK"
        local off=$(($(stat -c %s "$CK/$img") / 2))
        local orig
        orig=$(dd if="$CK/$img" bs=1 skip=$off count=1 status=none | od -An -tu1 | tr -d ' ')
        printf "\\$(printf %o $(((orig + 1) % 256)))" | dd of="$CK/$img" bs=1 seek=$off conv=notrunc status=none
        expect_fail "restore of a corrupted image" "$CRYO" restore --type process --checkpoint-dir "$CK"
        assert_err '(checksum|sha-?256|digest|corrupt)'
        assert_err "$(basename "$img")"
        wl_assert_gone memory
        # Put the byte back: the same checkpoint restores fine.
        printf "\\$(printf %o "$orig")" | dd of="$CK/$img" bs=1 seek=$off conv=notrunc status=none
        cryo_restore "$CK"
        wl_expect_pass memory
}

# 32 MiB of images or more: the checksums run beside CRIU's restore, which
# holds the tree at pre-resume until they pass (libcriu's notification).
# A bad byte fails the restore with the file named and no process left; the
# good image restores with "verified": "pre-resume" and intact memory.
test_big_image_verified_at_pre_resume() {
        _need_cryo
        wl_start memory --size-mb 48
        cryo_dump memory
        wl_reap memory
        local img off orig
        img=$(cd "$CK" && ls -S checkpoint/pages-*.img | head -n 1)
        [ "$(stat -c %s "$CK/$img")" -ge $((32 << 20)) ] || fail "$img is under 32 MiB"
        off=$(($(stat -c %s "$CK/$img") / 2))
        orig=$(dd if="$CK/$img" bs=1 skip=$off count=1 status=none | od -An -tu1 | tr -d ' ')
        printf "\\$(printf %o $(((orig + 1) % 256)))" | dd of="$CK/$img" bs=1 seek=$off conv=notrunc status=none
        expect_fail "restore of a corrupted image" "$CRYO" restore --type process --checkpoint-dir "$CK"
        assert_err "$(basename "$img") is corrupted"
        wl_assert_gone memory
        printf "\\$(printf %o "$orig")" | dd of="$CK/$img" bs=1 seek=$off conv=notrunc status=none
        cryo_restore "$CK" --json
        python3 - "$TEST_SCRATCH/restore.out" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["verified"] == "pre-resume", r.get("verified")
assert r["stats"]["phases"]["verify"]["bytes"] >= 32 << 20, r["stats"]["phases"]["verify"]
PY
        wl_expect_pass memory
}

test_restore_truncated_image() {
        _need_cryo
        _dumped_memory
        local img size
        img=$(cd "$CK" && ls checkpoint/pages-*.img | head -n 1)
        size=$(stat -c %s "$CK/$img")
        truncate -s $((size / 2)) "$CK/$img"
        expect_fail "restore of a truncated image" "$CRYO" restore --type process --checkpoint-dir "$CK"
        assert_err "$(basename "$img")"
        assert_err '(size|short|truncat|bytes)'
        wl_assert_gone memory
}

test_restore_newer_format() {
        _need_cryo
        _dumped_memory
        python3 - "$CK/cryo.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
assert "format_version" in d, d.keys()
d["format_version"] = 999
json.dump(d, open(sys.argv[1], "w"))
EOF
        expect_fail "restore of a format 999 checkpoint" "$CRYO" restore --type process --checkpoint-dir "$CK"
        assert_err 'newer'
        "$CRYO" inspect "$CK" >/dev/null 2>&1 || true
        wl_assert_gone memory
}

# cryo check: ready here, and says whether CRIU can cache its kernel
# probing (only on a tmpfs /run).
test_check_reports_the_host() {
        _need_cryo
        "$CRYO" check --json >"$TEST_SCRATCH/check.json" || fail "cryo check says the host is not ready"
        local want=false
        [ "$(stat -f -c %T /run)" = tmpfs ] && want=true
        assert_eq "$(jq -r .criu.kdat_cache "$TEST_SCRATCH/check.json")" "$want" "kdat_cache"
        assert_eq "$(jq -r .kernel.arch "$TEST_SCRATCH/check.json")" "$(uname -m)" "arch"
        "$CRYO" check | grep -q '^  kdat cache: ' || fail "cryo check prints no kdat cache line"
        # The host's cgroup mounts serve as CRIU's yard when each hierarchy
        # of ours is at /sys/fs/cgroup/NAME (NAME as CRIU derives it).
        local yard=null
        host_cgroups_form_a_yard && yard=/sys/fs/cgroup
        assert_eq "$(jq -r .kernel.cgroup_yard "$TEST_SCRATCH/check.json")" "$yard" "cgroup_yard"
        "$CRYO" check | grep -q '^  cgroup yard: ' || fail "cryo check prints no cgroup yard line"
}

# What a killed cryo leaves (a hidden half-written checkpoint under the
# checkpoint root, a CRIU work directory under /run/cryo) is removed by the
# next dump or restore once nobody holds it; a directory that a live cryo
# holds, or one made a moment ago, is left alone.
test_leftovers_of_killed_runs_swept() {
        _need_cryo
        need_cmd flock
        # Names as mkdtemp() makes them (six characters), private to root.
        local root=$TEST_SCRATCH/ck tag d
        tag=$(printf %05d $(($$ % 100000)))
        echo "$tag" >"$TEST_SCRATCH/sweep-tag"
        mkdir -p "$root" /run/cryo
        for d in ".old.tmp-${tag}A" ".held.tmp-${tag}B" ".young.tmp-${tag}C" ".restore-${tag}D" \
                "visible.tmp-${tag}E" ".user.tmp-${tag}H"; do
                mkdir -m 700 "$root/$d"
                head -c 65536 /dev/urandom >"$root/$d/pages-1.img"
        done
        # Someone else's directory of the same shape, not private: not ours.
        chmod 755 "$root/.user.tmp-${tag}H"
        mkdir -m 700 "/run/cryo/restore-${tag}F" "/run/cryo/dump-${tag}G"
        touch -d '2 hours ago' "$root/.old.tmp-${tag}A" "$root/.held.tmp-${tag}B" "$root/.restore-${tag}D" \
                "$root/visible.tmp-${tag}E" "$root/.user.tmp-${tag}H" "/run/cryo/restore-${tag}F" \
                "/run/cryo/dump-${tag}G"
        # -o: the lock stays with flock itself, which its kill releases.
        flock -o "$root/.held.tmp-${tag}B" sleep 300 &
        local holder=$! holder2
        flock -o "/run/cryo/dump-${tag}G" sleep 300 &
        holder2=$!
        wait_for sh -c "! flock -n '$root/.held.tmp-${tag}B' true" || fail "the holder took no lock"
        wait_for sh -c "! flock -n '/run/cryo/dump-${tag}G' true" || fail "the holder took no lock"

        wl_start counter
        cryo_dump counter
        [ ! -e "$root/.old.tmp-${tag}A" ] || fail "an abandoned half-written checkpoint was kept"
        [ ! -e "$root/.restore-${tag}D" ] || fail "an abandoned scratch copy was kept"
        [ -d "$root/.held.tmp-${tag}B" ] || fail "a directory a live process holds was removed"
        [ -d "$root/.young.tmp-${tag}C" ] || fail "a directory made a moment ago was removed"
        [ -d "$root/visible.tmp-${tag}E" ] || fail "a directory that is not cryo's temporary one was removed"
        [ -d "$root/.user.tmp-${tag}H" ] || fail "a directory that is not private to root was removed"
        assert_checkpoint "$CK"

        cryo_restore "$CK"
        [ ! -e "/run/cryo/restore-${tag}F" ] || fail "an abandoned CRIU work directory was kept"
        [ -d "/run/cryo/dump-${tag}G" ] || fail "a held CRIU work directory was removed"
        wl_expect_pass counter

        # Once its holder is gone, it goes too.
        pkill -P "$holder" sleep || true
        pkill -P "$holder2" sleep || true
        kill "$holder" "$holder2" 2>/dev/null || true
        wait "$holder" "$holder2" 2>/dev/null || true
        "$CRYO" dump --type process --pid "$(wl_pid counter)" --dir "$root" --leave-running >/dev/null ||
                fail "second dump failed"
        [ ! -e "$root/.held.tmp-${tag}B" ] || fail "a directory nobody holds any more was kept"
        rm -rf "/run/cryo/dump-${tag}G"
}

cleanup_test_leftovers_of_killed_runs_swept() {
        kill_test_procs '^flock -o '
        kill_test_procs '^sleep 300$'
        local tag
        tag=$(cat "$TEST_SCRATCH/sweep-tag" 2>/dev/null) || return 0
        rm -rf "/run/cryo/restore-${tag}F" "/run/cryo/dump-${tag}G"
}

# A checkpoint from another architecture: refused before CRIU, untouched.
test_restore_other_arch() {
        _need_cryo
        _dumped_memory
        python3 - "$CK/cryo.json" <<'EOF'
import json, os, sys
d = json.load(open(sys.argv[1]))
assert d["host"]["arch"] == os.uname().machine, d["host"]
d["host"]["arch"] = "s390x" if os.uname().machine != "s390x" else "x86_64"
json.dump(d, open(sys.argv[1], "w"))
EOF
        local before
        before=$(ck_digest "$CK")
        expect_fail "restore of another architecture's checkpoint" "$CRYO" restore --checkpoint-dir "$CK"
        assert_err 'was taken on (s390x|x86_64) and this host is'
        assert_eq "$(ck_digest "$CK")" "$before" "checkpoint after the refused restore"
        wl_assert_gone memory
        # Its files and metadata are still readable.
        "$CRYO" inspect "$CK" >/dev/null || fail "inspect refused it too"
}

# The original still runs (a --leave-running dump): its pids are taken.
test_restore_pid_taken() {
        _need_cryo
        wl_start tree
        cryo_dump tree --leave-running
        local before
        before=$(ck_digest "$CK")
        expect_fail "restore over a running original" "$CRYO" restore --type process --checkpoint-dir "$CK"
        assert_err "\\b$WL_PID\\b"
        assert_err 'in use|exist|taken|running'
        wl_assert_running tree
        wl_expect_pass tree
        assert_eq "$(ck_digest "$CK")" "$before" "checkpoint content after a failed restore"
        # Once the original is gone the same checkpoint restores.
        wl_kill tree
        cryo_restore "$CK"
        wl_assert_running tree
        wl_expect_pass tree
}

# A dump that cannot be written leaves the process running and unharmed.
test_failed_dump_leaves_process_running() {
        _need_cryo
        wl_start tree
        expect_fail "dump into /proc/nope" \
                "$CRYO" dump --type process --pid "$WL_PID" --dir /proc/nope
        grep -q '^cryo:' "$TEST_SCRATCH/err" || fail "no cryo: message: $(cat "$TEST_SCRATCH/err")"
        wl_assert_running tree
        wl_expect_pass tree
}

# A full disk in the middle of the dump (CRIU's images do not fit): the
# process goes on unharmed and nothing is left on the small file system,
# for a directory and for an archive.
test_full_disk_dump_leaves_process_running() {
        _need_cryo
        local small=$TEST_SCRATCH/small
        mkdir -p "$small"
        mount -t tmpfs -o size=4m,mode=0700 cryo-test-full "$small" || skip "cannot mount a tmpfs"
        wl_start memory --size-mb 32
        expect_fail "dump onto a full disk" "$CRYO" dump --type process --pid "$WL_PID" --dir "$small"
        assert_err "space|CRIU"
        wl_assert_running memory
        wl_expect_pass memory
        [ -z "$(ls -A "$small")" ] || { ls -laR "$small"; umount "$small"; fail "a failed dump left files"; }
        expect_fail "archive onto a full disk" "$CRYO" dump --type process --pid "$WL_PID" \
                --archive "$small/m.tar.zst"
        wl_assert_running memory
        wl_expect_pass memory
        [ -z "$(ls -A "$small")" ] || { ls -laR "$small"; umount "$small"; fail "a failed dump left files"; }
        umount "$small"
}

# The images fit, their archive does not (the memory is incompressible):
# the failure comes from the archive writer thread, and still nothing is
# lost or left behind.
test_full_disk_while_archiving() {
        _need_cryo
        local small=$TEST_SCRATCH/small
        mkdir -p "$small"
        mount -t tmpfs -o size=56m,mode=0700 cryo-test-full "$small" || skip "cannot mount a tmpfs"
        wl_start memory --size-mb 32
        expect_fail "archive onto a full disk" "$CRYO" dump --type process --pid "$WL_PID" \
                --archive "$small/m.tar.zst"
        assert_err "archive.*No space left"
        wl_assert_running memory
        wl_expect_pass memory
        [ -z "$(ls -A "$small")" ] || { ls -laR "$small"; umount "$small"; fail "a failed dump left files"; }
        umount "$small"
}

# SIGTERM in the middle of a dump (as from a timeout or systemd): the dump
# ends consistently first, never with the tree left stopped or half a
# checkpoint.  Either the source is gone and a complete checkpoint
# restores it, or the source runs on and there is no checkpoint.
test_sigterm_during_dump_is_consistent() {
        _need_cryo
        wl_start memory --size-mb 256
        local rc=0 state
        "$CRYO" dump --type process --pid "$WL_PID" --dir "$TEST_SCRATCH/ck" >"$TEST_SCRATCH/out" 2>"$TEST_SCRATCH/err" &
        local cryo=$!
        sleep 0.15
        kill -TERM "$cryo"
        wait "$cryo" || rc=$?
        echo "cryo exited with $rc: $(cat "$TEST_SCRATCH/err")"
        [ -z "$(ls -A "$TEST_SCRATCH/ck" 2>/dev/null | grep '^\.')" ] || fail "a temporary directory was left"
        if [ -z "$(ls -A "$TEST_SCRATCH/ck" 2>/dev/null)" ]; then
                pid_alive "$WL_PID" || fail "no checkpoint, and the source is gone"
                state=$(awk '{print $3}' "/proc/$WL_PID/stat")
                [ "$state" != T ] && [ "$state" != t ] || fail "the source was left stopped ($state)"
                wl_expect_pass memory
        else
                assert_eq "$rc" 143 "exit code of a dump completed after SIGTERM"
                CK=$(tail -n 1 "$TEST_SCRATCH/out")
                assert_checkpoint "$CK"
                wl_reap memory
                wl_assert_gone memory
                cryo_restore "$CK"
                wl_assert_running memory
                wl_expect_pass memory
        fi
}
