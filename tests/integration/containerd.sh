# The containerd plugin against the real containerd: dump, containerd-managed
# restore, image coordination, and bad input.

source "$CRYO_TOP/tests/lib/images.sh"
source "$CRYO_TOP/tests/lib/containerd.sh"

dump_ctr() { # dump_ctr ID [ARGS...] -> checkpoint path on stdout
        local id=$1
        shift
        "$CRYO" dump --type containerd --namespace "$CTR_NS" --id "$id" --dir "$TEST_SCRATCH/ck" "$@" | tail -1
}

test_counter_continues_under_new_id() {
        need_containerd
        ctr_run c1 sh -c "$COUNTER_SH"
        wait_for test -s "/proc/$(ctr_task_pid c1)/root/count"
        sleep 0.5
        local ck before after pid
        ck=$(dump_ctr c1)
        [ "$(stat -c %a "$ck")" = 700 ] || fail "checkpoint is not root-only"
        # Read inside the container's own network namespace (only loopback,
        # up), not the host's.
        python3 - "$ck/cryo.json" <<'PY' || fail "network configuration: $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["container"].get("network"))' "$ck/cryo.json")"
import json, sys
net = json.load(open(sys.argv[1]))["container"]["network"]
assert list(net["interfaces"]) == ["lo"] and net["interfaces"]["lo"]["up"], net
assert "127.0.0.1/8" in net["interfaces"]["lo"]["addresses"], net
PY
        wait_for test "$(ctr_task_status c1)" = STOPPED || fail "source task not stopped after the dump: $(ctr_task_status c1)"
        before=$(python3 -c 'import sys; print(open(sys.argv[1]).read().strip())' "$TEST_SCRATCH/dummy" 2>/dev/null || true)
        "$CRYO" restore --type containerd --checkpoint-dir "$ck" --id c1-restored >"$TEST_SCRATCH/out"
        assert_contains "$TEST_SCRATCH/out" '^c1-restored$'
        ctr_task_running c1-restored || fail "restored task is $(ctr_task_status c1-restored)"
        pid=$(ctr_task_pid c1-restored)
        assert_shim_parent "$pid"
        # The value at dump time is in the checkpoint's rootfs diff.
        tar -xOf "$ck/rootfs-diff.tar" ./count >"$TEST_SCRATCH/count.dump" 2>/dev/null ||
                tar -xOf "$ck/rootfs-diff.tar" count >"$TEST_SCRATCH/count.dump"
        before=$(cat "$TEST_SCRATCH/count.dump")
        sleep 0.5
        after=$(ctr_file c1-restored /count)
        [ "$after" -gt "$before" ] || fail "counter did not continue: dump $before, now $after"
        [ "$after" -lt $((before + 100)) ] || fail "counter jumped: dump $before, now $after"
        # containerd manages it: kill and exit status work as for any task.
        ctr -n "$CTR_NS" tasks kill -s KILL c1-restored
        wait_for test "$(ctr_task_status c1-restored)" = STOPPED || fail "kill did not stop the restored task"
        ctr -n "$CTR_NS" tasks rm c1-restored 2>&1 | tee "$TEST_SCRATCH/rm" || true
}

test_same_id_after_removing_the_source() {
        need_containerd
        ctr_run c2 sh -c "$COUNTER_SH"
        sleep 0.5
        local ck
        ck=$(dump_ctr c2)
        ctr_remove c2
        # The reference form: no id, no namespace: both come from the
        # checkpoint; a relative path (the shim has another working directory).
        (cd "$(dirname "$ck")" && "$CRYO" restore --type containerd --checkpoint-dir "$(basename "$ck")")
        ctr_task_running c2 || fail "c2 not running after restore"
}

# A container as one archive (the migration and backup form): dumped in
# one pass, restored twice from the same file under two ids, each time
# continuing from the dump; the scratch directories are gone afterwards.
test_archive_restores_twice() {
        need_containerd
        ctr_run c9 sh -c "$COUNTER_SH"
        wait_for test -s "/proc/$(ctr_task_pid c9)/root/count"
        sleep 0.3
        local arc=$TEST_SCRATCH/c9.tar.zst id before after
        "$CRYO" dump --type containerd --namespace "$CTR_NS" --id c9 --archive "$arc" >/dev/null
        [ "$(stat -c %a "$arc")" = 600 ] || fail "archive is not root-only"
        # the value at dump time, from the rootfs diff inside the archive
        zstd -dc "$arc" | tar -xOf - rootfs-diff.tar >"$TEST_SCRATCH/diff.tar"
        tar -xOf "$TEST_SCRATCH/diff.tar" ./count >"$TEST_SCRATCH/count.dump" 2>/dev/null ||
                tar -xOf "$TEST_SCRATCH/diff.tar" count >"$TEST_SCRATCH/count.dump"
        before=$(cat "$TEST_SCRATCH/count.dump")
        for id in c9-a c9-b; do
                "$CRYO" restore --type containerd --checkpoint-dir "$arc" --id "$id" --dir "$TEST_SCRATCH/scratch" \
                        >/dev/null || fail "restore of the archive as $id failed"
                ctr_task_running "$id" || fail "$id is $(ctr_task_status "$id")"
                sleep 0.3
                after=$(ctr_file "$id" /count)
                [ "$after" -gt "$before" ] && [ "$after" -lt $((before + 100)) ] ||
                        fail "$id did not continue from the dump: dump $before, now $after"
        done
        [ -z "$(ls -A "$TEST_SCRATCH/scratch")" ] || fail "scratch left: $(ls -A "$TEST_SCRATCH/scratch")"
}

test_leave_running() {
        need_containerd
        ctr_run c3 sh -c "$COUNTER_SH"
        sleep 0.3
        dump_ctr c3 --leave-running >/dev/null
        ctr_task_running c3 || fail "--leave-running stopped the task"
        local a b
        a=$(ctr_file c3 /count)
        sleep 0.5
        b=$(ctr_file c3 /count)
        [ "$b" -gt "$a" ] || fail "task frozen after --leave-running dump"
        # cryo freezes the cgroup before CRIU and thaws it after; CRIU's
        # network lock is not left behind.
        assert_goes_on c3
        # Twice: the second dump finds what the first one left.
        local ck
        ck=$(dump_ctr c3 --leave-running)
        assert_goes_on c3
        # The images say the cgroup was thawed, as it was, not FROZEN as
        # CRIU found it (a full/props cgroup restore would apply it).
        if [ -n "$(awk -F: '$2 == "freezer"' "/proc/$(ctr_task_pid c3)/cgroup")" ]; then
                grep -aq THAWED "$ck/checkpoint/cgroup.img" || fail "no freezer state in cgroup.img"
                ! grep -aq FROZEN "$ck/checkpoint/cgroup.img" || fail "cgroup.img records the freezer FROZEN"
        fi
}

# CRIU fails after cryo froze the cgroup (an unlinked open file larger
# than --ghost-limit): the container goes on, thawed, unlocked.
test_failed_dump_leaves_it_running_and_thawed() {
        need_containerd
        ctr_run c3f sh -c "echo 0123456789 > /tmp/g; exec 3</tmp/g; rm /tmp/g; $COUNTER_SH"
        wait_for test -s "/proc/$(ctr_task_pid c3f)/root/count"
        expect_fail "dump with a ghost file over the limit" dump_ctr c3f --ghost-limit 1
        assert_contains "$TEST_SCRATCH/err" "ghost file"
        assert_goes_on c3f
        [ -z "$(ls -A "$TEST_SCRATCH/ck" 2>/dev/null)" ] || fail "a failed dump left $(ls -A "$TEST_SCRATCH/ck")"
}

# A cgroup frozen by someone else (containerd's pause refuses a dump, so
# frozen behind its back) is left frozen: CRIU dumps it as it is, and cryo
# does not thaw what it did not freeze.
test_frozen_cgroup_stays_frozen_after_leave_running() {
        need_containerd
        ctr_run c3p sh -c "$COUNTER_SH"
        wait_for test -s "/proc/$(ctr_task_pid c3p)/root/count"
        local cg
        cg=$(awk -F: '$2 == "freezer" { print $3 }' "/proc/$(ctr_task_pid c3p)/cgroup")
        [ -n "$cg" ] || skip "no cgroup v1 freezer here"
        echo FROZEN >"/sys/fs/cgroup/freezer$cg/freezer.state"
        wait_for test "$(ctr_freezer_state c3p)" = FROZEN || fail "cannot freeze $cg"
        local ck
        ck=$(dump_ctr c3p --leave-running)
        [ "$(ctr_freezer_state c3p)" = FROZEN ] || fail "cryo thawed a cgroup it did not freeze"
        grep -aq FROZEN "$ck/checkpoint/cgroup.img" || fail "cgroup.img does not record the freezer FROZEN"
        echo THAWED >"/sys/fs/cgroup/freezer$cg/freezer.state"
        assert_goes_on c3p
}

test_filesystem_changes_restored() {
        need_containerd
        ctr_run c4 sh -c 'echo hello-cryo > /added.txt; mkdir -p /srv/d; echo x > /srv/d/f; rm /etc/group; ln -s /added.txt /link; exec sleep 1000'
        wait_for test -e "/proc/$(ctr_task_pid c4)/root/added.txt"
        local ck
        ck=$(dump_ctr c4)
        assert_contains "$ck/deleted.files" '/etc/group'
        "$CRYO" restore --checkpoint-dir "$ck" --id c4b >/dev/null
        [ "$(ctr_file c4b /added.txt)" = hello-cryo ] || fail "added file lost"
        [ "$(ctr_file c4b /srv/d/f)" = x ] || fail "added dir lost"
        [ ! -e "/proc/$(ctr_task_pid c4b)/root/etc/group" ] || fail "deleted image file came back"
        [ "$(readlink "/proc/$(ctr_task_pid c4b)/root/link")" = /added.txt ] || fail "symlink lost"
        [ -e "/proc/$(ctr_task_pid c4b)/root/etc/passwd" ] || fail "image file missing"
}

# A container that changed no file: its diff is empty and the restore uses
# the fresh snapshot as it comes (no mount to apply nothing); the root must
# still be the image's, and writable.
test_unchanged_root_restored_as_prepared() {
        need_containerd
        ctr_run c13 sleep 1000
        local ck pid
        ck=$(dump_ctr c13)
        tar -tf "$ck/rootfs-diff.tar" >"$TEST_SCRATCH/members"
        [ ! -s "$TEST_SCRATCH/members" ] || fail "diff of an unchanged container: $(head -3 "$TEST_SCRATCH/members")"
        assert_eq "$(cat "$ck/deleted.files")" "[]"
        "$CRYO" restore --checkpoint-dir "$ck" --id c13b >/dev/null
        ctr_task_running c13b || fail "restored task is $(ctr_task_status c13b)"
        pid=$(ctr_task_pid c13b)
        [ -e "/proc/$pid/root/etc/passwd" ] || fail "image file missing from the restored root"
        ctr -n "$CTR_NS" tasks exec --exec-id w1 c13b sh -c 'echo after > /after'
        [ "$(ctr_file c13b /after)" = after ] || fail "the restored root is not writable"
}

test_server_state_and_process_tree() {
        need_containerd
        # A server holding in-memory state, and a tree of processes.
        ctr_run c5 sh -c 'sleep 1000 & sleep 1001 & /usr/local/bin/wl-tcp-listen --port 7070 & wait'
        sleep 1
        local before after ck n_before n_after
        before=$(ctr -n "$CTR_NS" tasks exec --exec-id q1 c5 sh -c 'nc 127.0.0.1 7070 </dev/null' || true)
        [ -n "$before" ] || fail "server did not answer before the dump"
        n_before=$(ctr -n "$CTR_NS" tasks ps c5 | tail -n +2 | wc -l)
        ck=$(dump_ctr c5)
        "$CRYO" restore --checkpoint-dir "$ck" --id c5b >/dev/null
        n_after=$(ctr -n "$CTR_NS" tasks ps c5b | tail -n +2 | wc -l)
        assert_eq "$n_after" "$n_before" "processes in the container"
        after=$(ctr -n "$CTR_NS" tasks exec --exec-id q2 c5b sh -c 'nc 127.0.0.1 7070 </dev/null' || true)
        [ -n "$after" ] || fail "server did not answer after the restore (lo up?)"
        # Same process memory: the token chosen at start, and the count of
        # clients served goes on from the one served before the dump.
        assert_eq "${after%% served=*}" "${before%% served=*}" "server token"
        assert_eq "${after##*served=}" $((${before##*served=} + 1)) "clients served"
}

test_limits_and_capabilities_restored() {
        need_containerd
        ctr -n "$CTR_NS" run -d --memory-limit 67108864 --cpus 0.5 --cap-drop CAP_NET_RAW \
                "$CRYO_TEST_IMAGE" c6 sh -c "$COUNTER_SH" >/dev/null
        wait_for ctr_task_running c6
        local cap_before cap_after mem pid ck quota
        cap_before=$(awk '/^CapEff/ {print $2}' "/proc/$(ctr_task_pid c6)/status")
        ck=$(dump_ctr c6)
        python3 - "$ck/cryo.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
c = m["container"]
assert c["limits"]["memory"]["limit"] == 67108864, c["limits"]
assert "CapEff" in c["security"]["live"], c["security"]
assert "CAP_NET_RAW" not in c["security"]["capabilities"]["effective"], c["security"]
PY
        "$CRYO" restore --checkpoint-dir "$ck" --id c6b >/dev/null
        pid=$(ctr_task_pid c6b)
        cap_after=$(awk '/^CapEff/ {print $2}' "/proc/$pid/status")
        assert_eq "$cap_after" "$cap_before" "effective capabilities"
        mem=$(cat "/sys/fs/cgroup/memory/$CTR_NS/c6b/memory.limit_in_bytes")
        assert_eq "$mem" 67108864 "memory limit"
        quota=$(cat "/sys/fs/cgroup/cpu/$CTR_NS/c6b/cpu.cfs_quota_us")
        assert_eq "$quota" 50000 "cpu quota"
        grep -q "$CTR_NS/c6b" "/proc/$pid/cgroup" || fail "restored task is not in its own cgroup"
}

test_rootfs_only_starts_fresh_on_saved_files() {
        need_containerd
        ctr_run c7 sh -c 'echo kept > /state.txt; exec sh -c "$0"' "$COUNTER_SH"
        sleep 0.5
        local ck
        ck=$(dump_ctr c7 --rootfs-only)
        ctr_task_running c7 || fail "--rootfs-only must not stop the container"
        [ ! -e "$ck/checkpoint/inventory.img" ] || fail "--rootfs-only dumped processes"
        "$CRYO" restore --checkpoint-dir "$ck" --id c7b >/dev/null
        ctr_task_running c7b || fail "c7b not running"
        [ "$(ctr_file c7b /state.txt)" = kept ] || fail "saved file missing"
}

test_bad_input() {
        need_containerd
        expect_fail "unknown id" "$CRYO" dump --type containerd --namespace "$CTR_NS" --id nope --dir "$TEST_SCRATCH/ck"
        assert_contains "$TEST_SCRATCH/err" "no container 'nope' in containerd namespace '$CTR_NS'"
        expect_fail "unknown namespace" "$CRYO" dump --type containerd --namespace no-such-ns --id x --dir "$TEST_SCRATCH/ck"
        assert_contains "$TEST_SCRATCH/err" "no namespace 'no-such-ns'"
        expect_fail "daemon down" "$CRYO" dump --type containerd --address /run/nonexistent.sock --id x --dir "$TEST_SCRATCH/ck"
        assert_contains "$TEST_SCRATCH/err" "/run/nonexistent.sock"
        ctr -n "$CTR_NS" containers create "$CRYO_TEST_IMAGE" c8 sh >/dev/null
        expect_fail "not running" "$CRYO" dump --type containerd --namespace "$CTR_NS" --id c8 --dir "$TEST_SCRATCH/ck"
        assert_contains "$TEST_SCRATCH/err" "not running"
        [ ! -d "$TEST_SCRATCH/ck" ] || [ -z "$(ls -A "$TEST_SCRATCH/ck")" ] || fail "failed dumps left files: $(ls -A "$TEST_SCRATCH/ck")"

        # A checkpoint of another type.
        setsid sleep 300 </dev/null >/dev/null 2>&1 &
        local sp=$! pck
        pck=$("$CRYO" dump --type process --pid $sp --dir "$TEST_SCRATCH/pk" | tail -1)
        wait $sp 2>/dev/null || true
        expect_fail "wrong type" "$CRYO" restore --type containerd --checkpoint-dir "$pck"
        assert_contains "$TEST_SCRATCH/err" "is a 'process' checkpoint, not 'containerd'"

        # Restore onto an existing id: refused, the existing container untouched.
        ctr_run c9 sh -c "$COUNTER_SH"
        local ck
        ck=$(dump_ctr c9 --leave-running)
        expect_fail "existing id" "$CRYO" restore --checkpoint-dir "$ck"
        assert_contains "$TEST_SCRATCH/err" "already exists"
        ctr_task_running c9 || fail "existing container disturbed"

        # Base image missing on the target: a clear message, nothing created.
        local ns2=cryo-it-noimage
        expect_fail "image missing" "$CRYO" restore --checkpoint-dir "$ck" --namespace $ns2 --id c9x
        assert_contains "$TEST_SCRATCH/err" "base image $CRYO_TEST_IMAGE .* is not in containerd namespace '$ns2'"
        [ -z "$(ctr -n $ns2 containers ls -q)" ] || fail "a container was left behind"
        [ -z "$(ctr -n $ns2 snapshots ls | tail -n +2)" ] || fail "a snapshot was left behind"
        # The checkpoint is intact after failed restores.
        "$CRYO" inspect --verify "$ck" >/dev/null || fail "checkpoint damaged by failed restores"
}

test_docker_container_restores_into_containerd() {
        need_containerd
        need_cmd docker
        docker info >/dev/null 2>&1 || skip "dockerd is not running"
        img_ensure_docker || fail "cannot import the Docker test image"
        docker rm -f cryo-it-d1 >/dev/null 2>&1 || true
        docker run -d --name cryo-it-d1 --pids-limit 50 --memory 64m "$CRYO_TEST_IMAGE_DOCKER" sh -c "$COUNTER_SH" >/dev/null
        local id ck before after pid
        id=$(docker inspect -f '{{.Id}}' cryo-it-d1)
        sleep 0.5
        # The reference command, verbatim (plus --dir to keep it in scratch).
        ck=$("$CRYO" dump --type containerd --namespace moby --id "$id" --dir "$TEST_SCRATCH/ck" | tail -1)
        wait_for test "$(docker inspect -f '{{.State.Running}}' cryo-it-d1)" = false || fail "Docker container still running"
        before=$(tar -xOf "$ck/rootfs-diff.tar" ./count 2>/dev/null || tar -xOf "$ck/rootfs-diff.tar" count)
        "$CRYO" restore --type containerd --checkpoint-dir "$ck" --namespace "$CTR_NS" --id d1r >/dev/null
        ctr_task_running d1r || fail "restored task is $(ctr_task_status d1r)"
        pid=$(ctr_task_pid d1r)
        assert_shim_parent "$pid"
        sleep 0.5
        after=$(ctr_file d1r /count)
        [ "$after" -gt "$before" ] || fail "counter did not continue: $before -> $after"
        assert_eq "$(cat "/sys/fs/cgroup/pids/$CTR_NS/d1r/pids.max")" 50 "pids limit"
        assert_eq "$(cat "/sys/fs/cgroup/memory/$CTR_NS/d1r/memory.limit_in_bytes")" 67108864 "memory limit"
}

test_restore_on_host_b() {
        need_containerd
        hostb_start
        local ns=cryo-it-b ck before after pid
        ctr --address "$HOSTB_SOCK" -n $ns images import --base-name "${CRYO_TEST_IMAGE%:*}" "$IMG_OCI" >/dev/null
        ctr_run m1 sh -c "$COUNTER_SH"
        sleep 0.5
        ck=$(dump_ctr m1)
        before=$(tar -xOf "$ck/rootfs-diff.tar" ./count 2>/dev/null || tar -xOf "$ck/rootfs-diff.tar" count)
        "$CRYO" restore --type containerd --checkpoint-dir "$ck" --address "$HOSTB_SOCK" --namespace $ns >/dev/null
        ctr --address "$HOSTB_SOCK" -n $ns tasks ls | grep -q 'm1 .*RUNNING' || fail "m1 not running on host B"
        pid=$(ctr --address "$HOSTB_SOCK" -n $ns tasks ls | awk '$1 == "m1" {print $2}')
        grep -q "$HOSTB_SOCK" "/proc/$(awk '{print $4}' "/proc/$pid/stat")/cmdline" || fail "m1 is not under host B's shim"
        sleep 0.5
        after=$(cat "/proc/$pid/root/count")
        [ "$after" -gt "$before" ] || fail "counter did not continue on host B: $before -> $after"
}

cleanup_test_restore_on_host_b() {
        hostb_stop
}

test_tmpfs_and_volumes() {
        need_containerd
        local vol=$TEST_SCRATCH/vol ck ck2
        mkdir -p "$vol"
        echo from-host >"$vol/seed"
        ctr -n "$CTR_NS" run -d --mount "type=bind,src=$vol,dst=/data,options=rbind:rw" "$CRYO_TEST_IMAGE" v1 \
                sh -c 'echo shm-data > /dev/shm/s; echo vol-data > /data/written; exec sleep 1000' >/dev/null
        wait_for test -e "$vol/written"
        # The subcommand form of the reference CLI.
        ck=$("$CRYO" dump containerd v1 --namespace "$CTR_NS" --dir "$TEST_SCRATCH/ck" --leave-running | tail -1)
        ck2=$("$CRYO" dump containerd v1 --namespace "$CTR_NS" --dir "$TEST_SCRATCH/ck2" --with-volumes | tail -1)
        python3 - "$ck/cryo.json" <<'PY'
import json, sys
binds = json.load(open(sys.argv[1]))["container"]["binds"]
assert any(b["destination"] == "/data" and b["kind"] == "directory" and "saved" not in b for b in binds), binds
PY
        # The volume is gone on the target: a clear error without --with-volumes...
        rm -rf "$vol"
        expect_fail "missing volume" "$CRYO" restore containerd --id v1b --path "$ck"
        assert_contains "$TEST_SCRATCH/err" "bind mount source $vol \(mounted at /data\) does not exist"
        ! ctr_container_exists v1b || fail "a failed restore left container v1b"
        # ...and its contents come back with it.
        "$CRYO" restore containerd --id v1c --path "$ck2" >/dev/null
        [ "$(ctr_file v1c /data/written)" = vol-data ] || fail "volume contents not restored"
        [ "$(ctr_file v1c /data/seed)" = from-host ] || fail "volume contents not restored"
        [ "$(ctr_file v1c /dev/shm/s)" = shm-data ] || fail "/dev/shm contents lost"
}

# A checkpoint big enough (>= 32 MiB) that its checksums run beside the
# restore: runc's CRIU holds the restored tree at pre-resume until they
# pass.  A corrupted page image must fail the restore before the tree runs
# a single instruction: a loop that rewrites a host file as fast as it can
# must leave it untouched, and nothing may be left behind, so that the
# same id restores from a good copy right after.
test_big_checkpoint_is_verified_before_it_runs() {
        need_containerd
        local hb=$TEST_SCRATCH/hb ck good big mark pid child
        mkdir -p "$hb"
        ctr -n "$CTR_NS" run -d --mount "type=bind,src=$hb,dst=/hb,options=rbind:rw" "$CRYO_TEST_IMAGE" g1 \
                sh -c '/usr/local/bin/wl-memory --size-mb 48 --status /hb/status --result /hb/result &
                       i=0; while :; do i=$((i+1)); echo $i >/hb/count; done' >/dev/null
        wait_for grep -q ready "$hb/status" || fail "wl-memory did not start"
        ck=$(dump_ctr g1)
        ctr_remove g1
        good=$TEST_SCRATCH/good
        cp -a "$ck" "$good"
        big=$(ls -S "$ck"/checkpoint/pages-*.img | head -n 1)
        [ "$(stat -c %s "$big")" -ge $((32 << 20)) ] || fail "the page image is too small to be verified in parallel: $(stat -c %s "$big")"
        printf '\377\376' | dd of="$big" bs=1 seek=$((20 << 20)) conv=notrunc status=none
        mark=$(stat -c %y "$hb/count")
        # CRIU manages the cgroups here (its default for a tree in one
        # cgroup is to leave them to runc): killed at pre-resume, it leaves
        # its cgroup yard mounted in its work directory, which cryo detaches.
        expect_fail "corrupted page image" "$CRYO" restore --type containerd --checkpoint-dir "$ck" \
                --manage-cgroups-mode soft
        assert_contains "$TEST_SCRATCH/err" "pages-[0-9]+\.img is corrupted: its checksum does not match"
        ! grep -q " /run/cryo/containerd/$CTR_NS/g1/" /proc/self/mountinfo ||
                fail "the killed CRIU's mounts were left: $(grep -c " /run/cryo/containerd/$CTR_NS/g1/" /proc/self/mountinfo)"
        [ ! -e "/run/cryo/containerd/$CTR_NS/g1" ] || fail "the failed restore left its work directory"
        sleep 0.3
        [ "$(stat -c %y "$hb/count")" = "$mark" ] || fail "the corrupted tree ran before its checksums failed"
        ! ctr_container_exists g1 || fail "a failed restore left container g1"
        ! grep -q "/g1/criu-root " /proc/mounts || fail "a failed restore left runc's criu-root mounted"

        "$CRYO" restore --type containerd --checkpoint-dir "$good" --json >"$TEST_SCRATCH/out"
        python3 - "$TEST_SCRATCH/out" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["verified"] == "pre-resume", r.get("verified")
v = r["stats"]["phases"]["verify"]
assert v["bytes"] >= 32 << 20 and v["usec"] > 0, v
# CRIU's restore log is kept beside the task's stdio log.
assert r["criu_log"].startswith("/var/lib/cryo/containers/"), r.get("criu_log")
assert "Restore finished successfully" in open(r["criu_log"]).read()
PY
        ctr_task_running g1 || fail "g1 is $(ctr_task_status g1) after the restore"
        wait_for test "$(stat -c %y "$hb/count")" != "$mark" || fail "the restored loop does not run"
        pid=$(ctr_task_pid g1)
        for child in $(cat /proc/"$pid"/task/*/children); do
                [ "$(cat "/proc/$child/comm")" = wl-memory ] && break
        done
        rm -f "$hb/result"
        kill -USR2 "$child"
        wait_for test -s "$hb/result" || fail "wl-memory gave no verdict"
        grep -q '^PASS' "$hb/result" || fail "memory after restore: $(cat "$hb/result")"
}

# A restored task's logs live in /var/lib/cryo/containers/<ns>/<id>, which
# containerd does not know: a restore removes those of this containerd
# whose container is gone, once they are an hour old, and nothing else.
test_data_dirs_of_removed_containers_pruned() {
        need_containerd
        local root=/var/lib/cryo/containers/$CTR_NS ck address d
        ctr_run pd1 sh -c "$COUNTER_SH"
        ck=$(dump_ctr pd1)
        "$CRYO" restore --checkpoint-dir "$ck" --id pd1b >/dev/null
        address=$(cat "$root/pd1b/containerd")
        [ -n "$address" ] || fail "the data directory does not name its containerd"
        for d in gone-old gone-young other-daemon no-owner; do mkdir -p "$root/$d"; done
        printf %s "$address" >"$root/gone-old/containerd"
        printf %s "$address" >"$root/gone-young/containerd"
        printf %s /run/other/containerd.sock >"$root/other-daemon/containerd"
        touch -d '2 hours ago' "$root/gone-old" "$root/other-daemon" "$root/no-owner" "$root/pd1b"
        "$CRYO" restore --checkpoint-dir "$ck" --id pd1c --json >"$TEST_SCRATCH/out"
        python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r.get("pruned_data_dirs") == 1, r.get("pruned_data_dirs")' \
                "$TEST_SCRATCH/out" || fail "pruned: $(grep -o '"pruned_data_dirs":[0-9]*' "$TEST_SCRATCH/out")"
        [ ! -e "$root/gone-old" ] || fail "an hour-old directory of a removed container was kept"
        for d in gone-young other-daemon no-owner pd1b pd1c; do
                [ -d "$root/$d" ] || fail "$root/$d was removed"
        done
        [ -e "$root/pd1b/stdio.log" ] || fail "the live container's log is gone"
        rm -rf "$root/gone-young" "$root/other-daemon" "$root/no-owner"
}

# The pids cgroup directory of a process, on cgroup v1 or v2.
pids_cgroup_dir() { # pids_cgroup_dir PID
        local line
        line=$(grep -E '^[0-9]+:pids:' "/proc/$1/cgroup") && echo "/sys/fs/cgroup/pids${line#*:pids:}" && return
        line=$(grep '^0::' "/proc/$1/cgroup") && echo "/sys/fs/cgroup${line#0::}"
}

# A tree in one set of cgroups is restored with CRIU's cgroup work left to
# runc (manage-cgroups ignore): every task must still land in the new
# container's cgroups.  A tree with a task in a cgroup of its own must keep
# it: there CRIU restores the cgroups, as before.
test_cgroups_of_the_tree() {
        need_containerd
        local ck pid kid p dir
        ctr_run cg1 sh -c 'sleep 1000 & sleep 1001 & wait'
        wait_for test "$(cat /proc/"$(ctr_task_pid cg1)"/task/*/children | wc -w)" -ge 2
        ck=$(dump_ctr cg1)
        python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["container"].get("one_cgroup") is True' \
                "$ck/cryo.json" || fail "a tree in one cgroup is not marked one_cgroup"
        "$CRYO" restore --checkpoint-dir "$ck" --id cg1b --json >"$TEST_SCRATCH/out"
        pid=$(ctr_task_pid cg1b)
        for p in "$pid" $(cat /proc/"$pid"/task/*/children); do
                grep -q "/$CTR_NS/cg1b\$" <(grep -E ':(pids|memory|freezer):|^0::' "/proc/$p/cgroup") ||
                        fail "restored task $p is not in the container's cgroups: $(cat "/proc/$p/cgroup")"
                [ "$(grep -E ':(pids|memory|freezer):|^0::' "/proc/$p/cgroup" | grep -vc "/$CTR_NS/cg1b\$")" = 0 ] ||
                        fail "restored task $p is outside the container's cgroups: $(cat "/proc/$p/cgroup")"
        done
        grep -q "Preparing cgroups yard" "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["criu_log"])' "$TEST_SCRATCH/out")" &&
                fail "CRIU still managed the cgroups of a tree in one cgroup"

        ctr_run cg2 sh -c 'sleep 1000 & sleep 1001 & wait'
        pid=$(ctr_task_pid cg2)
        wait_for test "$(cat /proc/"$pid"/task/*/children | wc -w)" -ge 2
        kid=$(cat /proc/"$pid"/task/*/children | awk '{print $1}')
        dir=$(pids_cgroup_dir "$kid")
        mkdir "$dir/sub"
        echo "$kid" >"$dir/sub/cgroup.procs"
        ck=$(dump_ctr cg2)
        python3 -c 'import json,sys; assert "one_cgroup" not in json.load(open(sys.argv[1]))["container"]' \
                "$ck/cryo.json" || fail "a tree with a task in a sub-cgroup is marked one_cgroup"
        "$CRYO" restore --checkpoint-dir "$ck" --id cg2b --json >"$TEST_SCRATCH/out"
        pid=$(ctr_task_pid cg2b)
        # CRIU managed these cgroups through the host's own mounts when they
        # have the layout it expects (each hierarchy at /sys/fs/cgroup/NAME),
        # not a yard of fresh mounts.
        local log
        log=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["criu_log"])' "$TEST_SCRATCH/out")
        if host_cgroups_form_a_yard; then
                grep -q "Opening /sys/fs/cgroup as cg yard" "$log" ||
                        fail "CRIU mounted a cgroup yard of its own: $(grep -m1 'cg yard' "$log")"
        else
                grep -q "Opening /sys/fs/cgroup as cg yard" "$log" &&
                        fail "CRIU was given /sys/fs/cgroup as its yard on a host where it does not fit"
        fi
        local in_sub=0
        for p in $(cat /proc/"$pid"/task/*/children); do
                case $(pids_cgroup_dir "$p") in */"$CTR_NS"/cg2b/sub) in_sub=$((in_sub + 1)) ;; esac
        done
        assert_eq "$in_sub" 1 "restored tasks in the sub-cgroup"
        ctr_remove cg2b
}

# tmpfs_mounts PID: the tmpfs mounts of a task's mount namespace (whole
# ones: not the masked files, binds of a /dev/null), as "mount point, mount
# options, file system options, root mode", sorted.
tmpfs_mounts() {
        local pid=$1 point
        awk '$4 == "/" { for (i = 7; $i != "-"; i++) ; if ($(i + 1) == "tmpfs") print $5, $6, $(i + 3) }' \
                "/proc/$pid/mountinfo" | sort | while read -r point rest; do
                echo "$point $rest $(stat -c %a "/proc/$pid/root$point")"
        done
}

# A containerd container's own tmpfs mounts (/dev, /dev/shm, /run and the
# masked /proc/acpi, /sys/firmware) are saved by cryo, not by CRIU's tar
# runs, and come back with their contents, owners, modes, mount options,
# the files the tree holds open there and its working directory in one.
test_tmpfs_saved_by_cryo() {
        need_containerd
        local pid ck before after dev_tar pid2 pid3
        ctr_run tm1 sh -c 'echo hello >/run/r.txt; chmod 640 /run/r.txt; chown 1234:5678 /run/r.txt
                ln -s r.txt /run/link; ln /run/r.txt /run/hard; mkfifo /run/ff; chmod 1777 /run
                echo shm >/dev/shm/s; mkdir -p /run/d/e; exec 3</run/r.txt; cd /run/d
                while :; do sleep 1; done'
        pid=$(ctr_task_pid tm1)
        wait_for test -e "/proc/$pid/root/run/d/e"
        before=$(tmpfs_mounts "$pid")
        grep -q '^/run ' <<<"$before" || fail "no tmpfs at /run to test with: $before"
        ck=$(dump_ctr tm1)
        python3 - "$ck" <<'PY' || fail "the manifest does not list the tmpfs mounts cryo saved"
import json, sys
m = json.load(open(sys.argv[1] + "/cryo.json"))
paths = [t["path"] for t in m["container"]["tmpfs"]]
assert {"/dev", "/dev/shm", "/run"} <= set(paths), paths
assert m["format_version"] == 3, m["format_version"]
assert all(t["file"] in m["files"] for t in m["container"]["tmpfs"]), m["files"].keys()
PY
        "$CRYO" inspect "$ck" >"$TEST_SCRATCH/inspect"
        grep -q '^tmpfs: *\/run (size=' "$TEST_SCRATCH/inspect" || fail "cryo inspect lists no /run: $(cat "$TEST_SCRATCH/inspect")"
        if compgen -G "$ck/checkpoint/tmpfs-dev-*" >/dev/null; then
                fail "CRIU archived tmpfs contents too: $(ls "$ck/checkpoint" | grep tmpfs)"
        fi
        # /dev's archive keeps the mount points of what is mounted below it,
        # not their contents.
        dev_tar=$(python3 -c 'import json,sys; print([t["file"] for t in json.load(open(sys.argv[1]))["container"]["tmpfs"] if t["path"] == "/dev"][0])' "$ck/cryo.json")
        tar tf "$ck/$dev_tar" >"$TEST_SCRATCH/dev.list" || fail "cannot list $dev_tar"
        grep -qx 'pts/' "$TEST_SCRATCH/dev.list" || fail "/dev/pts is missing from $dev_tar"
        grep -qx 'null' "$TEST_SCRATCH/dev.list" || fail "/dev/null is missing from $dev_tar"
        if grep -q '^pts/.\|^shm/.' "$TEST_SCRATCH/dev.list"; then
                fail "$dev_tar holds what other file systems mounted below /dev hold"
        fi
        ctr_remove tm1

        "$CRYO" restore --checkpoint-dir "$ck" --id tm1b >/dev/null
        pid2=$(ctr_task_pid tm1b)
        after=$(tmpfs_mounts "$pid2")
        assert_eq "$after" "$before" "tmpfs mounts (point, flags, options, mode)"
        assert_eq "$(stat -c '%a %u %g %h' "/proc/$pid2/root/run/r.txt")" "640 1234 5678 2" \
                "mode, owner and links of /run/r.txt"
        assert_eq "$(cat "/proc/$pid2/root/run/r.txt")" hello "content of /run/r.txt"
        assert_eq "$(readlink "/proc/$pid2/root/run/link")" r.txt "symlink in /run"
        [ -p "/proc/$pid2/root/run/ff" ] || fail "the fifo in /run is gone"
        assert_eq "$(cat "/proc/$pid2/root/dev/shm/s")" shm "/dev/shm content"
        [ -c "/proc/$pid2/root/dev/null" ] || fail "/dev/null is not a device node"
        assert_eq "$(readlink "/proc/$pid2/fd/3")" /run/r.txt "the file held open"
        assert_eq "$(readlink "/proc/$pid2/cwd")" /run/d "working directory"
        if nsenter -t "$pid2" -m touch /proc/acpi/x 2>/dev/null; then
                fail "masked /proc/acpi is writable after the restore"
        fi
        if grep -q " /run/cryo/containerd/$CTR_NS/tm1b" /proc/self/mountinfo; then
                fail "the restore left mounts behind: $(grep " /run/cryo/" /proc/self/mountinfo)"
        fi

        # A second copy has tmpfs mounts of its own.
        "$CRYO" restore --checkpoint-dir "$ck" --id tm1c >/dev/null
        pid3=$(ctr_task_pid tm1c)
        echo new >"/proc/$pid3/root/run/new"
        [ ! -e "/proc/$pid2/root/run/new" ] || fail "two restored copies share their /run"
        ctr_remove tm1b tm1c
}

# A tmpfs holding more than 16 MiB stays CRIU's: cryo's copy would be
# charged to cryo's cgroup, not the container's.  Both kinds in one restore.
test_full_tmpfs_left_to_criu() {
        need_containerd
        local ck sum
        ctr_run tm2 sh -c 'dd if=/dev/urandom of=/dev/shm/big bs=1M count=20 2>/dev/null; echo small >/run/s
                touch /run/ready; while :; do sleep 1; done'
        wait_for test -e "/proc/$(ctr_task_pid tm2)/root/run/ready"
        sum=$(md5sum <"/proc/$(ctr_task_pid tm2)/root/dev/shm/big")
        ck=$(dump_ctr tm2)
        python3 - "$ck" <<'PY' || fail "the manifest lists /dev/shm (20 MiB) among cryo's tmpfs copies, or lacks /run"
import json, sys
paths = [t["path"] for t in json.load(open(sys.argv[1] + "/cryo.json"))["container"]["tmpfs"]]
assert "/dev/shm" not in paths and "/run" in paths, paths
PY
        compgen -G "$ck/checkpoint/tmpfs-dev-*" >/dev/null || fail "CRIU did not save /dev/shm"
        ctr_remove tm2
        "$CRYO" restore --checkpoint-dir "$ck" --id tm2b >/dev/null
        assert_eq "$(md5sum <"/proc/$(ctr_task_pid tm2b)/root/dev/shm/big")" "$sum" "/dev/shm/big after the restore"
        assert_eq "$(ctr_file tm2b /run/s)" small "/run/s after the restore"
        ctr_remove tm2b
}

cleanup() {
        ctr_cleanup
        docker rm -f cryo-it-d1 >/dev/null 2>&1 || true
        kill_test_procs '^sleep 300$'
}
