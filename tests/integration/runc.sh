# The runc plugin against real runc and CRIU: containers run by `runc run -d`
# with no daemon, dumped with `cryo dump --type runc` and brought back with
# `runc restore` on their bundle.
#
# Everything a test makes lives under $TEST_SCRATCH: the runc root, the
# bundles, the overlay layers.  Container ids carry the scratch directory's
# random suffix, since runc names its cgroups after them.

source "$CRYO_TOP/tests/lib/images.sh"

RT_ROOT=$TEST_SCRATCH/runc-root
RT_WRAP=${RT_WRAP:-} # a command to run cryo under (valgrind)

# Counts in memory, 10 per second: /count (through a rename, never empty)
# and a line on stdout.
RT_COUNTER='i=0; while :; do i=$((i+1)); echo $i > /count.new; mv /count.new /count; echo $i; sleep 0.1; done'

rt_tag() {
        basename "$TEST_SCRATCH" | sed 's/^[^.]*\.//' | tr 'A-Z' 'a-z'
}

rt_id() {
        echo "rt-$(rt_tag)-$1"
}

need_runc() {
        need_root
        need_cmd runc criu jq tar python3 nsenter
        [ -x "$CRYO" ] || skip "cryo is not built ($CRYO)"
        if [ ! -d "$TEST_SCRATCH/image" ]; then
                img_build >/dev/null || skip "cannot build the test image (busybox-static, static workloads)"
                mkdir -p "$TEST_SCRATCH/image"
                tar -xf "$IMG_LAYER" -C "$TEST_SCRATCH/image"
        fi
}

# rt_bundle NAME overlay|dir CMD...: a bundle at $TEST_SCRATCH/NAME whose root
# is an overlay of the image (upper layer NAME.upper) or a plain copy of it.
rt_bundle() {
        local name=$1 kind=$2 b=$TEST_SCRATCH/$1
        shift 2
        mkdir -p "$b/rootfs"
        if [ "$kind" = overlay ]; then
                rt_mount_overlay "$name" 1
        else
                cp -a "$TEST_SCRATCH/image/." "$b/rootfs/"
        fi
        (cd "$b" && runc spec)
        # (jq's --args would take a "-c" among them for its own option.)
        python3 -c 'import json, sys; print(json.dumps(sys.argv[1:]))' "$@" >"$b/args.json"
        jq --slurpfile args "$b/args.json" \
                '.process.args = $args[0] | .process.terminal = false | .root.readonly = false' \
                <"$b/config.json" >"$b/config.json.new"
        mv "$b/config.json.new" "$b/config.json"
}

# rt_mount_overlay NAME GENERATION: a fresh overlay at NAME/rootfs.
rt_mount_overlay() {
        local b=$TEST_SCRATCH/$1 up=$TEST_SCRATCH/$1.upper$2 work=$TEST_SCRATCH/$1.work$2
        mkdir -p "$up" "$work"
        mount -t overlay overlay -o "lowerdir=$TEST_SCRATCH/image,upperdir=$up,workdir=$work" "$b/rootfs"
}

# rt_run NAME ID: start a container of bundle NAME, stdio as a user would
# give it: nothing in, output to a log file.
rt_run() {
        runc --root "$RT_ROOT" run -d --bundle "$TEST_SCRATCH/$1" "$2" </dev/null >"$TEST_SCRATCH/$2.log" 2>&1 ||
                fail "runc run $2 failed: $(cat "$TEST_SCRATCH/$2.log")"
        wait_for rt_running "$2" || fail "container $2 did not start"
}

rt_status() {
        runc --root "$RT_ROOT" state "$1" 2>/dev/null | jq -r .status
}

rt_running() {
        [ "$(rt_status "$1")" = running ]
}

rt_pid() {
        runc --root "$RT_ROOT" state "$1" | jq -r .pid
}

# rt_delete ID: `runc delete` once the dump's SIGKILL has taken the tree
# down (a big one takes a moment to die).
rt_delete() {
        wait_for test "$(rt_status "$1")" = stopped || fail "$1 is $(rt_status "$1"), not stopped"
        runc --root "$RT_ROOT" delete "$1"
}

rt_exists() {
        runc --root "$RT_ROOT" list -q 2>/dev/null | grep -qx "$1"
}

# rt_file ID PATH: a file inside the running container.
rt_file() {
        cat "/proc/$(rt_pid "$1")/root$2"
}

# rt_dump ID [ARGS...] -> checkpoint path in $CK, --json result in $TEST_SCRATCH/dump.json
rt_dump() {
        local id=$1
        shift
        # shellcheck disable=SC2086
        $RT_WRAP "$CRYO" dump --type runc --id "$id" --runtime-root "$RT_ROOT" --dir "$TEST_SCRATCH/ck" --json "$@" \
                >"$TEST_SCRATCH/dump.json" 2>"$TEST_SCRATCH/dump.err" ||
                fail "cryo dump of $id failed: $(cat "$TEST_SCRATCH/dump.err")"
        CK=$(jq -r .path "$TEST_SCRATCH/dump.json")
        [ -d "$CK" ] || fail "no checkpoint directory: $(cat "$TEST_SCRATCH/dump.json")"
        echo "dump of $id: $(jq -c .stats.phases.total "$TEST_SCRATCH/dump.json")"
}

# rt_restore CK [ARGS...] -> --json result in $TEST_SCRATCH/restore.json
rt_restore() {
        local ck=$1
        shift
        # shellcheck disable=SC2086
        $RT_WRAP "$CRYO" restore --type runc --checkpoint-dir "$ck" --json "$@" >"$TEST_SCRATCH/restore.json" \
                2>"$TEST_SCRATCH/restore.err" || fail "cryo restore of $ck failed: $(cat "$TEST_SCRATCH/restore.err")"
        echo "restore: $(jq -c '{id, pid, rootfs_diff, total: .stats.phases.total}' "$TEST_SCRATCH/restore.json")"
}

# The counter moved on from `before` since the restore, and did not restart.
assert_counter_continues() {
        local id=$1 before=$2 after
        sleep 0.5
        after=$(rt_file "$id" /count)
        [ "$after" -gt "$before" ] || fail "counter of $id did not continue: dump $before, now $after"
        [ "$after" -lt $((before + 100)) ] || fail "counter of $id jumped: dump $before, now $after"
}

ck_digest() {
        (cd "$1" && find . -type f ! -name '*.log' -print0 | sort -z | xargs -0 sha256sum) | sha256sum
}

cleanup() {
        local id m
        if [ -d "$RT_ROOT" ]; then
                for id in $(runc --root "$RT_ROOT" list -q 2>/dev/null); do
                        runc --root "$RT_ROOT" delete --force "$id" >/dev/null 2>&1 || true
                done
        fi
        for m in $(findmnt -rn -o TARGET | grep "^$TEST_SCRATCH/" | sort -r); do
                umount "$m" 2>/dev/null || umount -l "$m" || true
        done
        rm -rf /var/lib/cryo/containers/runc/rt-"$(rt_tag)"-*
        rm -f /var/log/cryo/runc-rt-"$(rt_tag)"-*.log
}

test_counter_continues_under_the_same_id() {
        need_runc
        local id before
        id=$(rt_id a)
        rt_bundle a overlay sh -c "$RT_COUNTER"
        rt_run a "$id"
        wait_for test -s "$TEST_SCRATCH/a/rootfs/count"
        sleep 0.5
        rt_dump "$id"
        [ "$(stat -c %a "$CK")" = 700 ] || fail "checkpoint is not root-only"
        assert_eq "$(jq -r .source.bundle "$CK/cryo.json")" "$TEST_SCRATCH/a" "bundle in the manifest"
        wait_for test "$(rt_status "$id")" = stopped || fail "the dumped container is $(rt_status "$id")"
        # The tree stopped at the dump: what it wrote last is the dump's value.
        before=$(cat "$TEST_SCRATCH/a/rootfs/count")
        assert_eq "$(tar -xOf "$CK/rootfs-diff.tar" count)" "$before" "count in the rootfs diff"
        rt_delete "$id"
        rt_restore "$CK"
        assert_eq "$(jq -r .id "$TEST_SCRATCH/restore.json")" "$id" "restored id"
        rt_running "$id" || fail "restored container is $(rt_status "$id")"
        assert_eq "$(rt_pid "$id")" "$(jq -r .pid "$TEST_SCRATCH/restore.json")" "pid runc reports"
        assert_counter_continues "$id" "$before"
        # Its stdout is the same log file, and it goes on from where it was.
        [ "$(readlink "/proc/$(rt_pid "$id")/fd/1")" = "$TEST_SCRATCH/$id.log" ] ||
                fail "stdout of the restored container is $(readlink "/proc/$(rt_pid "$id")/fd/1")"
        [ "$(tail -n 1 "$TEST_SCRATCH/$id.log")" -gt "$before" ] || fail "the log did not continue"
        grep -qx "$((before + 1))" "$TEST_SCRATCH/$id.log" || fail "the log skipped $((before + 1))"
        # runc manages it again, and it can be checkpointed again.
        rt_dump "$id" --leave-running
        runc --root "$RT_ROOT" kill "$id" KILL
        wait_for test "$(rt_status "$id")" = stopped || fail "runc kill did not stop the restored container"
        rt_delete "$id"
        # The checkpoint is intact after a restore.
        "$CRYO" inspect --verify "$CK" >/dev/null || fail "the checkpoint changed"
}

test_restore_under_a_new_id() {
        need_runc
        local id new before
        id=$(rt_id b)
        new=$(rt_id b2)
        rt_bundle b overlay sh -c "$RT_COUNTER"
        rt_run b "$id"
        sleep 0.5
        rt_dump "$id"
        before=$(cat "$TEST_SCRATCH/b/rootfs/count")
        # The old container stays (stopped); the new one runs from the same bundle.
        rt_restore "$CK" --id "$new"
        assert_eq "$(jq -r .id "$TEST_SCRATCH/restore.json")" "$new" "restored id"
        rt_running "$new" || fail "$new is $(rt_status "$new")"
        assert_eq "$(rt_status "$id")" stopped "status of the dumped container"
        assert_counter_continues "$new" "$before"
        assert_eq "$(runc --root "$RT_ROOT" state "$new" | jq -r .bundle)" "$TEST_SCRATCH/b" "bundle of $new"
        # runc names the cgroup after the new id.
        grep -q "/$new\$" "/proc/$(rt_pid "$new")/cgroup" || fail "not in a cgroup of its own: $(cat "/proc/$(rt_pid "$new")/cgroup")"
        # Both ids are taken now.
        expect_fail "restore onto an existing id" "$CRYO" restore --checkpoint-dir "$CK" --id "$new" --runtime-root "$RT_ROOT"
        assert_contains "$TEST_SCRATCH/err" "runc container '$new' already exists under $RT_ROOT"
        rt_running "$new" || fail "a refused restore disturbed $new"
}

test_file_survives_on_a_fresh_overlay() {
        need_runc
        local id before
        id=$(rt_id c)
        rt_bundle c overlay sh -c "echo written-before > /before.txt; rm /etc/group; $RT_COUNTER"
        rt_run c "$id"
        wait_for test -s "$TEST_SCRATCH/c/rootfs/count"
        rt_dump "$id"
        before=$(cat "$TEST_SCRATCH/c/rootfs/count")
        assert_contains "$CK/deleted.files" '/etc/group'
        rt_delete "$id"
        # What a user with an image does on another host: a new overlay of
        # the image, empty upper layer.
        umount "$TEST_SCRATCH/c/rootfs"
        rt_mount_overlay c 2
        [ ! -e "$TEST_SCRATCH/c/rootfs/before.txt" ] || fail "the fresh overlay is not fresh"
        rt_restore "$CK"
        assert_contains "$TEST_SCRATCH/restore.json" '"rootfs_diff":"applied'
        assert_eq "$(rt_file "$id" /before.txt)" written-before "file written before the dump"
        [ ! -e "/proc/$(rt_pid "$id")/root/etc/group" ] || fail "a deleted image file came back"
        [ -e "/proc/$(rt_pid "$id")/root/etc/passwd" ] || fail "image file missing"
        [ -e "$TEST_SCRATCH/c.upper2/before.txt" ] || fail "the change is not in the new upper layer"
        assert_counter_continues "$id" "$before"
}

test_plain_directory_rootfs() {
        need_runc
        local id before
        id=$(rt_id d)
        rt_bundle d dir sh -c "$RT_COUNTER"
        rt_run d "$id"
        sleep 0.5
        rt_dump "$id"
        assert_eq "$(jq -r .runc.rootfs.kind "$CK/cryo.json")" directory "rootfs kind"
        [ ! -e "$CK/rootfs-diff.tar" ] || fail "a plain directory has no diff to keep"
        before=$(cat "$TEST_SCRATCH/d/rootfs/count")
        rt_delete "$id"
        rt_restore "$CK"
        assert_contains "$TEST_SCRATCH/restore.json" '"rootfs_diff":"none'
        assert_counter_continues "$id" "$before"
}

test_leave_running() {
        need_runc
        local id a b
        id=$(rt_id e)
        rt_bundle e overlay sh -c "$RT_COUNTER"
        rt_run e "$id"
        sleep 0.3
        rt_dump "$id" --leave-running
        rt_running "$id" || fail "--leave-running stopped the container"
        a=$(rt_file "$id" /count)
        sleep 0.5
        b=$(rt_file "$id" /count)
        [ "$b" -gt "$a" ] || fail "container frozen after a --leave-running dump"
        [ -s "$CK/checkpoint/pages-1.img" ] || fail "no memory in the checkpoint"
}

test_pipe_stdio() {
        need_runc
        local id before log
        id=$(rt_id f)
        rt_bundle f overlay sh -c "$RT_COUNTER"
        # stdout and stderr into a pipe, as a supervisor would read them.
        runc --root "$RT_ROOT" run -d --bundle "$TEST_SCRATCH/f" "$id" </dev/null 2>&1 | cat >"$TEST_SCRATCH/f.out" &
        wait_for rt_running "$id" || fail "container did not start"
        [[ "$(readlink "/proc/$(rt_pid "$id")/fd/1")" == pipe:* ]] || fail "stdout is not a pipe"
        sleep 0.3
        rt_dump "$id"
        before=$(cat "$TEST_SCRATCH/f/rootfs/count")
        rt_delete "$id"
        rt_restore "$CK"
        # The reader is gone: the output goes to a log file cryo names.
        log=$(jq -r '.stdio[1].path' "$TEST_SCRATCH/restore.json")
        assert_eq "$log" "/var/lib/cryo/containers/runc/$id/stdio.log" "new stdout"
        assert_counter_continues "$id" "$before"
        wait_for test -s "$log" || fail "nothing written to $log"
        [ "$(tail -n 1 "$log")" -gt "$before" ] || fail "the output did not continue in $log"
        # That log is a host file like any other: it dumps again.
        rt_dump "$id"
}

test_bad_input() {
        need_runc
        local id
        id=$(rt_id g)
        expect_fail "unknown id" "$CRYO" dump --type runc --id "$id" --runtime-root "$RT_ROOT"
        assert_contains "$TEST_SCRATCH/err" "runc root $RT_ROOT does not exist"
        rt_bundle g overlay sh -c 'exit 0'
        runc --root "$RT_ROOT" run -d --bundle "$TEST_SCRATCH/g" "$id" </dev/null >/dev/null 2>&1
        wait_for test "$(rt_status "$id")" = stopped || fail "container did not exit"
        expect_fail "unknown id" "$CRYO" dump --type runc --id nosuch --runtime-root "$RT_ROOT"
        assert_contains "$TEST_SCRATCH/err" "no runc container 'nosuch' under $RT_ROOT \(containers there: $id\)"
        expect_fail "wrong root" "$CRYO" dump --type runc --id "$id" --runtime-root "$TEST_SCRATCH/nowhere"
        assert_contains "$TEST_SCRATCH/err" "runc root $TEST_SCRATCH/nowhere does not exist: give the --root"
        expect_fail "not running" "$CRYO" dump --type runc --id "$id" --runtime-root "$RT_ROOT" --dir "$TEST_SCRATCH/ck"
        assert_contains "$TEST_SCRATCH/err" "runc container '$id' under $RT_ROOT is not running"
        expect_fail "no id" "$CRYO" dump --type runc --runtime-root "$RT_ROOT"
        assert_contains "$TEST_SCRATCH/err" "needs --id"
        # Paused: CRIU would dump it, but the frozen tree would never die.
        rt_bundle g2 overlay sleep 1000
        rt_run g2 "$id-2"
        runc --root "$RT_ROOT" pause "$id-2"
        expect_fail "paused" "$CRYO" dump --type runc --id "$id-2" --runtime-root "$RT_ROOT" --dir "$TEST_SCRATCH/ck"
        assert_contains "$TEST_SCRATCH/err" "runc container '$id-2' is paused: resume it first"
        assert_eq "$(rt_status "$id-2")" paused "status after a refused dump"
        [ ! -d "$TEST_SCRATCH/ck" ] || [ -z "$(ls -A "$TEST_SCRATCH/ck")" ] || fail "a failed dump left a checkpoint"
}

test_restore_when_the_bundle_is_gone() {
        need_runc
        local id digest
        id=$(rt_id h)
        rt_bundle h overlay sh -c "$RT_COUNTER"
        rt_run h "$id"
        rt_dump "$id"
        rt_delete "$id"
        digest=$(ck_digest "$CK")
        mv "$TEST_SCRATCH/h/config.json" "$TEST_SCRATCH/h.config.json"
        expect_fail "bundle gone" "$CRYO" restore --checkpoint-dir "$CK"
        assert_contains "$TEST_SCRATCH/err" "bundle the container was dumped from is gone \(no $TEST_SCRATCH/h/config.json\)"
        ! rt_exists "$id" || fail "a failed restore left container $id"
        assert_eq "$(ck_digest "$CK")" "$digest" "checkpoint after a failed restore"
        # An empty root (the overlay was not mounted again) is refused too.
        mv "$TEST_SCRATCH/h.config.json" "$TEST_SCRATCH/h/config.json"
        umount "$TEST_SCRATCH/h/rootfs"
        expect_fail "rootfs not mounted" "$CRYO" restore --checkpoint-dir "$CK"
        assert_contains "$TEST_SCRATCH/err" "the root filesystem $TEST_SCRATCH/h/rootfs is empty: mount"
        ! rt_exists "$id" || fail "a failed restore left container $id"
        # Back in place, the same checkpoint restores.
        rt_mount_overlay h 1
        rt_restore "$CK"
        rt_running "$id" || fail "$id is $(rt_status "$id")"
}

# A CRIU failure: runc restores the network namespace empty, so an
# established loopback connection cannot be reconnected.  The error says
# why and how to fix it, nothing is left behind, and the fix works.
test_loopback_connection_needs_the_netns_hook() {
        need_runc
        local id digest pid
        id=$(rt_id i)
        rt_bundle i overlay sh -c \
                'mkfifo /in /out; exec 3<>/in 4<>/out; nc -l -p 7778 <&3 >/srv.out & sleep 0.3; nc 127.0.0.1 7778 <&4 >/cli.out & exec sleep 1000'
        rt_run i "$id"
        wait_for nsenter -t "$(rt_pid "$id")" -n sh -c 'ss -tn | grep -q ESTAB' || fail "no loopback connection"
        rt_dump "$id" --tcp-established
        rt_delete "$id"
        digest=$(ck_digest "$CK")
        expect_fail "loopback without the hook" "$CRYO" restore --checkpoint-dir "$CK"
        assert_contains "$TEST_SCRATCH/err" "CRIU restore failed: Can't connect inet socket back: Network is unreachable"
        assert_contains "$TEST_SCRATCH/err" "\"netns-up\"\]\} to hooks.prestart"
        assert_contains "$TEST_SCRATCH/err" "CRIU log: /var/log/cryo/.*\.restore\.log"
        [ -s "$(grep -o '/var/log/cryo/[^ ]*\.restore\.log' "$TEST_SCRATCH/err")" ] || fail "CRIU's log was not kept"
        ! rt_exists "$id" || fail "a failed restore left container $id"
        assert_eq "$(ck_digest "$CK")" "$digest" "checkpoint after a failed restore"
        # The user adds the hook to their bundle; runc runs it before CRIU
        # reconnects the sockets.
        jq --arg cryo "$CRYO" '.hooks.prestart = [{"path": $cryo, "args": ["cryo", "hook", "netns-up"]}]' \
                "$TEST_SCRATCH/i/config.json" >"$TEST_SCRATCH/i.config.json"
        mv "$TEST_SCRATCH/i.config.json" "$TEST_SCRATCH/i/config.json"
        rt_restore "$CK"
        pid=$(rt_pid "$id")
        nsenter -t "$pid" -n sh -c 'ss -tn | grep -q "127.0.0.1:7778"' || fail "the connection was not restored"
        # Data still flows over the restored connection.
        echo after-restore >"/proc/$pid/root/out"
        wait_for grep -q after-restore "$TEST_SCRATCH/i/rootfs/srv.out" || fail "no data through the restored connection"
}

test_shared_cgroup_is_refused() {
        need_runc
        local id new
        id=$(rt_id j)
        new=$(rt_id j2)
        rt_bundle j overlay sh -c "$RT_COUNTER"
        jq --arg cg "/$id-shared" '.linux.cgroupsPath = $cg' "$TEST_SCRATCH/j/config.json" >"$TEST_SCRATCH/j.json"
        mv "$TEST_SCRATCH/j.json" "$TEST_SCRATCH/j/config.json"
        rt_run j "$id"
        rt_dump "$id" --leave-running
        expect_fail "shared cgroup" "$CRYO" restore --checkpoint-dir "$CK" --id "$new"
        assert_contains "$TEST_SCRATCH/err" "cgroup /$id-shared \(linux.cgroupsPath in $TEST_SCRATCH/j/config.json\) already holds"
        ! rt_exists "$new" || fail "a refused restore left container $new"
        rt_running "$id" || fail "the original was disturbed"
}

# Every runc path under valgrind: dump, inspect, restore, and the failures
# (CRIU's included: with --leave-running, the container's `>LOG` grows on
# after the dump, and CRIU refuses the changed file).
test_valgrind_clean() {
        need_runc
        need_cmd valgrind
        local VG=(valgrind --quiet --leak-check=full --errors-for-leak-kinds=definite,indirect
                  --show-leak-kinds=definite,indirect --error-exitcode=99 --trace-children=no
                  --suppressions="$CRYO_TOP/tests/valgrind.supp")
        local id new rc args
        id=$(rt_id k)
        new=$(rt_id k2)
        rt_bundle k overlay sh -c "$RT_COUNTER"
        rt_run k "$id"
        sleep 0.3
        RT_WRAP="${VG[*]}" rt_dump "$id" --leave-running
        "${VG[@]}" "$CRYO" inspect --json "$CK" >/dev/null
        sleep 0.3
        rc=0
        "${VG[@]}" "$CRYO" restore --checkpoint-dir "$CK" --id "$new" >/dev/null 2>"$TEST_SCRATCH/err" || rc=$?
        assert_eq "$rc" 1 "exit status of a restore CRIU refuses"
        assert_contains "$TEST_SCRATCH/err" "CRIU restore failed: File fd/[0-9] has bad size .*the container.s stdio file $TEST_SCRATCH/$id.log changed size since the dump.*>>FILE"
        cat "$TEST_SCRATCH/err"
        ! rt_exists "$new" || fail "a failed restore left $new"
        # Stopped by the dump, the log stays as CRIU saw it: the restore works.
        runc --root "$RT_ROOT" kill "$id" KILL
        wait_for test "$(rt_status "$id")" = stopped
        rt_delete "$id"
        rt_run k "$id"
        sleep 0.3
        RT_WRAP="${VG[*]}" rt_dump "$id"
        RT_WRAP="${VG[*]}" rt_restore "$CK" --id "$new"
        rt_running "$new" || fail "$new is $(rt_status "$new")"
        for args in "dump --type runc --id nosuch --runtime-root $RT_ROOT" \
                    "dump --type runc --id $id --runtime-root $RT_ROOT" \
                    "dump --type runc --id $id --runtime-root $TEST_SCRATCH/nowhere" \
                    "restore --checkpoint-dir $CK --id $new"; do
                rc=0
                # shellcheck disable=SC2086
                "${VG[@]}" "$CRYO" $args >/dev/null 2>"$TEST_SCRATCH/err" || rc=$?
                [ "$rc" != 99 ] || fail "valgrind found errors in 'cryo $args': $(cat "$TEST_SCRATCH/err")"
                [ "$rc" != 0 ] || fail "'cryo $args' succeeded"
        done
}
