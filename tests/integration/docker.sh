# The docker plugin against the real dockerd (run with --experimental):
# dump by name or through containerd namespace moby, Docker-native restore
# into the same container or a new one, and the failures that must leave
# nothing behind.  Every Docker object a test makes carries the label
# cryo.test=docker.sh (restored copies inherit it) or a cryo-dk- name;
# cleanup removes them all.

DK_LABEL=cryo.test=docker.sh
# The value file is replaced atomically: a reader never sees it empty.
DK_COUNTER='i=0; while :; do i=$((i+1)); echo $i > /tmp/c.new; mv /tmp/c.new /tmp/c; echo "count $i"; sleep 0.1; done'

dk_setup() {
        need_root
        need_cmd docker tar
        docker info >/dev/null 2>&1 || skip "dockerd is not running"
        [ "$(docker info -f '{{.ExperimentalBuild}}' 2>/dev/null)" = true ] ||
                skip "dockerd runs without --experimental (Docker restores checkpoints only with it)"
        [ "$(docker info -f '{{.Driver}}')" = overlay2 ] || skip "Docker's storage driver is not overlay2"
        if [ -f "$CRYO_TOP/tests/lib/images.sh" ]; then
                source "$CRYO_TOP/tests/lib/images.sh"
                img_ensure_docker || skip "cannot build the test image"
                # Our own tag: another suite re-importing the shared tag
                # must not take the image away between dump and restore.
                DK_IMAGE=cryo-dk-test/busybox:1
                docker tag "$CRYO_TEST_IMAGE_DOCKER" "$DK_IMAGE"
        else
                DK_IMAGE=cryo-test/dk-busybox:1
                dk_own_image
        fi
        DK_CK=$TEST_SCRATCH/ck
        mkdir -p "$DK_CK"
}

# Without tests/lib/images.sh: a one-layer image of Debian's busybox-static.
dk_own_image() {
        docker image inspect "$DK_IMAGE" >/dev/null 2>&1 && return 0
        file -L /bin/busybox 2>/dev/null | grep -q 'statically linked' || skip "needs busybox-static"
        local root=$TEST_SCRATCH/rootfs a
        mkdir -p "$root"/{bin,etc,tmp,proc,sys,dev}
        chmod 1777 "$root/tmp"
        cp /bin/busybox "$root/bin/"
        for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$root/bin/$a"; done
        tar -C "$root" --owner=0 --group=0 -cf "$TEST_SCRATCH/layer.tar" .
        docker import --change 'CMD ["/bin/sh"]' --change 'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin' \
                "$TEST_SCRATCH/layer.tar" "$DK_IMAGE" >/dev/null
}

# dk_run NAME [DOCKER-RUN-ARGS...] [-- COMMAND]: a labelled, detached container.
dk_run() {
        local name=$1 image=${DK_RUN_IMAGE:-$DK_IMAGE}
        shift
        docker run -d --name "$name" --label "$DK_LABEL" "$@" "$image" sh -c \
                "echo before-dump > /tmp/before; rm /bin/vi; $DK_COUNTER" >/dev/null
        WAIT_TIMEOUT=20 wait_for dk_count_at_least "$name" 5 || fail "$name did not start counting"
}

dk_count() {
        docker exec "$1" cat /tmp/c 2>/dev/null
}

dk_count_at_least() {
        local v
        v=$(dk_count "$1") && [ -n "$v" ] && [ "$v" -ge "$2" ]
}

# Our containers (restored copies inherit the label).
dk_ours() {
        docker ps -aq --no-trunc --filter "label=$DK_LABEL" | sort
}

dk_running() {
        [ "$(docker inspect -f '{{.State.Running}}' "$1" 2>/dev/null)" = true ]
}

dk_not_running() {
        ! dk_running "$1"
}

# The counter's value in the dumped filesystem: the dump stops the tree
# first, so this is what its memory held too.
dk_dump_value() {
        tar -xOf "$1/rootfs-diff.tar" tmp/c
}

# dk_check_restored NAME CHECKPOINT: running in docker ps, the counter went
# on from the dump, exec works, the files are as they were at the dump.
dk_check_restored() {
        local name=$1 ck=$2 at_dump now later
        at_dump=$(dk_dump_value "$ck")
        docker ps --format '{{.Names}}' | grep -qx "$name" ||
                fail "$name is not shown by docker ps: $(docker ps -a --filter "name=$name")"
        now=$(dk_count "$name") || fail "docker exec into $name failed"
        [ "$now" -ge "$at_dump" ] || fail "$name: counter $now after restore is below $at_dump at the dump"
        WAIT_TIMEOUT=10 wait_for dk_count_at_least "$name" $((now + 3)) || fail "$name: the counter does not go on"
        later=$(dk_count "$name")
        echo "$name: counter at dump $at_dump, after restore $now, then $later"
        assert_eq "$(docker exec "$name" cat /tmp/before)" before-dump "file written before the dump"
        if docker exec "$name" test -e /bin/vi; then
                fail "$name: /bin/vi, deleted before the dump, is back"
        fi
        docker exec "$name" sh -c 'ls /proc/1/exe >/dev/null' || fail "docker exec into $name does not work"
}

# Restoring a checkpoint of type containerd with --type docker needs
# cryo_restore() to accept it (a moby container is both).
dk_restore_or_skip() {
        if ! "$CRYO" restore "$@" >"$TEST_SCRATCH/restore.out" 2>"$TEST_SCRATCH/restore.err"; then
                if grep -q "checkpoint, not 'docker'" "$TEST_SCRATCH/restore.err"; then
                        skip "cryo_restore() does not accept --type docker for a containerd checkpoint of namespace moby yet"
                fi
                fail "restore $*: $(cat "$TEST_SCRATCH/restore.err")"
        fi
        cat "$TEST_SCRATCH/restore.out"
}

cleanup() {
        command -v docker >/dev/null 2>&1 || return 0
        local ids
        ids=$(docker ps -aq --filter "label=$DK_LABEL" 2>/dev/null)
        ids="$ids $(docker ps -aq --filter name=cryo-dk- 2>/dev/null)"
        # shellcheck disable=SC2086
        [ -z "${ids// /}" ] || docker rm -fv $ids >/dev/null 2>&1 || true
        docker images -q --filter "label=cryo.test.dk.private" 2>/dev/null | xargs -r docker rmi -f >/dev/null 2>&1 || true
        if [ -f "$TEST_SCRATCH/default-checkpoint" ]; then
                rm -rf "$(cat "$TEST_SCRATCH/default-checkpoint")"
        fi
        rm -f /var/log/cryo/cryo-dk-*.restore.log
        docker network rm cryo-dk-net >/dev/null 2>&1 || true
        docker volume rm cryo-dk-vol >/dev/null 2>&1 || true
}

# The reference command, verbatim: the checkpoint goes to the default root.
test_dump_reference_command_then_restore_same_and_new() {
        dk_setup
        dk_run cryo-dk-ref
        local id ck
        id=$(docker inspect -f '{{.Id}}' cryo-dk-ref)
        ck=$("$CRYO" dump --type containerd --namespace moby --id "$id")
        echo "$ck" >"$TEST_SCRATCH/default-checkpoint"
        [ -d "$ck/checkpoint" ] || fail "no checkpoint at '$ck'"
        # dockerd gives CRIU no mapping for tmpfs contents cryo would save
        # itself: a Docker container's stay in CRIU's images.
        [ ! -e "$ck/tmpfs" ] || fail "cryo saved the tmpfs contents of a Docker container itself"
        compgen -G "$ck/checkpoint/tmpfs-dev-*" >/dev/null || fail "CRIU saved no tmpfs of the Docker container"
        WAIT_TIMEOUT=10 wait_for dk_not_running cryo-dk-ref || fail "the container still runs after the dump"
        echo "dumped at counter $(dk_dump_value "$ck")"

        dk_restore_or_skip --type docker --checkpoint-dir "$ck"
        dk_check_restored cryo-dk-ref "$ck"
        assert_eq "$(docker inspect -f '{{.Id}}' cryo-dk-ref)" "$id" "restored under the same id"

        # The same checkpoint again, as a second container next to the first.
        dk_restore_or_skip --type docker --checkpoint-dir "$ck" --id cryo-dk-ref-copy
        dk_check_restored cryo-dk-ref-copy "$ck"
        [ "$(docker inspect -f '{{.Id}}' cryo-dk-ref-copy)" != "$id" ] || fail "the copy has the old id"
        docker stop -t 1 cryo-dk-ref cryo-dk-ref-copy >/dev/null
}

test_dump_by_name_stops_then_restore_same_id() {
        dk_setup
        dk_run cryo-dk-same
        local id ck t0 t1
        id=$(docker inspect -f '{{.Id}}' cryo-dk-same)
        t0=$(date +%s%N)
        ck=$("$CRYO" dump --type docker --id cryo-dk-same --dir "$DK_CK")
        t1=$(date +%s%N)
        echo "dump: $(((t1 - t0) / 1000000)) ms"
        assert_contains "$ck/cryo.json" '"type": ?"docker"'
        assert_contains "$ck/cryo.json" "\"Id\": ?\"$id\""
        WAIT_TIMEOUT=10 wait_for dk_not_running cryo-dk-same || fail "the container still runs after the dump"

        t0=$(date +%s%N)
        out=$("$CRYO" restore --checkpoint-dir "$ck")
        t1=$(date +%s%N)
        echo "restore: $(((t1 - t0) / 1000000)) ms"
        assert_eq "$out" "$id" "restore prints the container id"
        dk_check_restored cryo-dk-same "$ck"
        docker logs cryo-dk-same 2>&1 | tail -n 1 | grep -q '^count [0-9]' || fail "docker logs shows no output"
        local at_dump last
        at_dump=$(dk_dump_value "$ck")
        last=$(docker logs cryo-dk-same 2>&1 | tail -n 1 | cut -d' ' -f2)
        [ "$last" -gt "$at_dump" ] || fail "docker logs: last count $last is not beyond $at_dump"
        docker stop -t 1 cryo-dk-same >/dev/null
        dk_not_running cryo-dk-same || fail "docker stop did not stop the restored container"
        # No staged images left in Docker's checkpoint directory.
        [ -z "$(ls -A "$(docker info -f '{{.DockerRootDir}}')/containers/$id/checkpoints" 2>/dev/null)" ] ||
                fail "images left in Docker's checkpoints directory"
}

test_leave_running_then_restore_new_name() {
        dk_setup
        dk_run cryo-dk-src
        local ck
        ck=$("$CRYO" dump --type docker --id cryo-dk-src --dir "$DK_CK" --leave-running)
        dk_running cryo-dk-src || fail "--leave-running: the container stopped"
        local v
        v=$(dk_count cryo-dk-src)
        WAIT_TIMEOUT=10 wait_for dk_count_at_least cryo-dk-src $((v + 2)) || fail "the source stopped counting"

        "$CRYO" restore --checkpoint-dir "$ck" --id cryo-dk-new >/dev/null
        dk_check_restored cryo-dk-new "$ck"
        dk_running cryo-dk-src || fail "the source container stopped"
        # The UTS name comes from the images; /etc/hostname must agree.
        assert_eq "$(docker exec cryo-dk-new hostname)" "$(docker exec cryo-dk-new cat /etc/hostname)" "hostname"
        assert_eq "$(docker inspect -f '{{index .Config.Labels "cryo.test"}}' cryo-dk-new)" docker.sh "labels"
        docker stop -t 1 cryo-dk-new >/dev/null

        # The source ran on and changed its files; restoring the checkpoint
        # into it puts the dumped filesystem state back first.
        docker exec cryo-dk-src sh -c 'rm /tmp/before; ln -s busybox /bin/vi'
        docker stop -t 1 cryo-dk-src >/dev/null
        "$CRYO" restore --checkpoint-dir "$ck" >/dev/null
        dk_check_restored cryo-dk-src "$ck"
}

test_restore_after_container_removed() {
        dk_setup
        docker network create cryo-dk-net >/dev/null
        dk_run cryo-dk-gone -p 127.0.0.1::80 --memory 64m --restart always --network cryo-dk-net \
                -v cryo-dk-vol:/data
        docker exec cryo-dk-gone sh -c 'echo kept > /data/v'
        local ck
        ck=$("$CRYO" dump --type docker --id cryo-dk-gone --dir "$DK_CK")
        # The restart policy must not bring the container back after the dump.
        sleep 1
        dk_not_running cryo-dk-gone || fail "Docker restarted the container after the dump"
        docker rm -f cryo-dk-gone >/dev/null
        "$CRYO" restore --checkpoint-dir "$ck" >/dev/null
        dk_check_restored cryo-dk-gone "$ck"
        assert_eq "$(docker inspect -f '{{.HostConfig.RestartPolicy.Name}}' cryo-dk-gone)" always "restart policy"
        assert_eq "$(docker inspect -f '{{.HostConfig.Memory}}' cryo-dk-gone)" 67108864 "memory limit"
        docker port cryo-dk-gone 80 | grep -q '^127.0.0.1:' || fail "published port not recreated"
        assert_eq "$(docker inspect -f '{{range $n, $e := .NetworkSettings.Networks}}{{$n}}{{end}}' cryo-dk-gone)" \
                cryo-dk-net "network"
        assert_eq "$(docker exec cryo-dk-gone cat /data/v)" kept "named volume"
}

test_restart_policy_given_back_same_id() {
        dk_setup
        dk_run cryo-dk-policy --restart unless-stopped
        local ck
        ck=$("$CRYO" dump --type docker --id cryo-dk-policy --dir "$DK_CK")
        sleep 1
        dk_not_running cryo-dk-policy || fail "Docker restarted the container after the dump"
        "$CRYO" restore --checkpoint-dir "$ck" >/dev/null
        dk_check_restored cryo-dk-policy "$ck"
        assert_eq "$(docker inspect -f '{{.HostConfig.RestartPolicy.Name}}' cryo-dk-policy)" unless-stopped \
                "restart policy after restore"
}

# The dump succeeds but its archive does not fit (16 MiB of random data in
# the container's filesystem; the disk holds the images, not the archive
# too): the container goes on running, with the restart policy the dump
# had suspended given back.
test_failed_commit_gives_restart_policy_back() {
        dk_setup
        local small=$TEST_SCRATCH/small
        mkdir -p "$small"
        mount -t tmpfs -o size=24m,mode=0700 cryo-test-full "$small" || skip "cannot mount a tmpfs"
        docker run -d --name cryo-dk-full --label "$DK_LABEL" --restart always "$DK_IMAGE" sh -c \
                "head -c 16777216 /dev/urandom > /blob; $DK_COUNTER" >/dev/null
        WAIT_TIMEOUT=20 wait_for dk_count_at_least cryo-dk-full 5 || fail "cryo-dk-full did not start counting"
        expect_fail "archive onto a full disk" "$CRYO" dump --type docker --id cryo-dk-full --archive "$small/x.tar.zst"
        assert_contains "$TEST_SCRATCH/err" "No space left"
        local left
        left=$(ls -A "$small")
        umount "$small"
        [ -z "$left" ] || fail "a failed dump left $left"
        dk_running cryo-dk-full || fail "the container is not running after a failed dump"
        assert_eq "$(docker inspect -f '{{.HostConfig.RestartPolicy.Name}}' cryo-dk-full)" always \
                "restart policy after a failed dump"
        local a
        a=$(dk_count cryo-dk-full)
        WAIT_TIMEOUT=5 wait_for dk_count_at_least cryo-dk-full $((a + 3)) || fail "the counter does not go on"
}

test_unknown_name() {
        dk_setup
        expect_fail "dump of an unknown container" "$CRYO" dump --type docker --id cryo-dk-no-such --dir "$DK_CK"
        assert_contains "$TEST_SCRATCH/err" "no container 'cryo-dk-no-such'"
        [ -z "$(ls -A "$DK_CK")" ] || fail "a failed dump left files: $(ls -A "$DK_CK")"
}

test_restore_running_or_name_taken() {
        dk_setup
        dk_run cryo-dk-busy
        docker create --name cryo-dk-taken --label "$DK_LABEL" "$DK_IMAGE" true >/dev/null
        local ck
        ck=$("$CRYO" dump --type docker --id cryo-dk-busy --dir "$DK_CK" --leave-running)
        expect_fail "restore into the running container" "$CRYO" restore --checkpoint-dir "$ck"
        assert_contains "$TEST_SCRATCH/err" "is running: stop it"
        expect_fail "restore under a taken name" "$CRYO" restore --checkpoint-dir "$ck" --id cryo-dk-taken
        assert_contains "$TEST_SCRATCH/err" "named 'cryo-dk-taken' already exists"
        "$CRYO" inspect --verify "$ck" >/dev/null 2>&1 || "$CRYO" inspect "$ck" >/dev/null ||
                fail "the checkpoint is damaged"
}

test_restore_image_missing() {
        dk_setup
        # A private image (its own id), so that removing it hurts no one.
        local tag=cryo-dk-private:$$ tmp=cryo-dk-mkimg
        docker create --name $tmp "$DK_IMAGE" true >/dev/null
        docker commit --change "LABEL cryo.test.dk.private=$$" $tmp "$tag" >/dev/null
        docker rm $tmp >/dev/null
        DK_RUN_IMAGE=$tag dk_run cryo-dk-img
        local ck
        ck=$("$CRYO" dump --type docker --id cryo-dk-img --dir "$DK_CK")
        docker rm -f cryo-dk-img >/dev/null
        docker rmi "$tag" >/dev/null
        local before after
        before=$(dk_ours)
        expect_fail "restore without the image" "$CRYO" restore --checkpoint-dir "$ck"
        assert_contains "$TEST_SCRATCH/err" "image $tag \\(sha256:"
        assert_contains "$TEST_SCRATCH/err" "docker load"
        after=$(dk_ours)
        assert_eq "$after" "$before" "containers before and after the failed restore"
        ! docker inspect cryo-dk-img >/dev/null 2>&1 || fail "a container cryo-dk-img was created"
        "$CRYO" inspect --verify "$ck" >/dev/null || fail "the checkpoint is damaged"
}

# CRIU fails inside dockerd's restore: the created container is removed,
# the staged images are gone, the error gives CRIU's cause and keeps its log.
test_restore_criu_failure_cleans_up() {
        dk_setup
        dk_run cryo-dk-bad
        local ck bad=$TEST_SCRATCH/bad
        ck=$("$CRYO" dump --type docker --id cryo-dk-bad --dir "$DK_CK" --leave-running --name cryo-dk-bad-ck)
        cp -a "$ck" "$bad"
        # Same size, so a sizes-only verification passes; CRIU cannot parse it.
        local core
        core=$(ls "$bad"/checkpoint/core-*.img | head -n 1)
        dd if=/dev/urandom of="$core" bs=1 seek=8 count=$(($(stat -c %s "$core") - 8)) conv=notrunc 2>/dev/null
        local before after yards_before
        before=$(dk_ours)
        yards_before=$(grep -c 'io\.containerd\.runtime\.v2\.task/moby/.*/\.criu\.cgyard\.' /proc/self/mountinfo || true)
        expect_fail "restore of damaged images" "$CRYO" restore --checkpoint-dir "$bad" --no-verify --id cryo-dk-bad2
        cat "$TEST_SCRATCH/err"
        assert_contains "$TEST_SCRATCH/err" "Docker could not start container cryo-dk-bad2"
        assert_contains "$TEST_SCRATCH/err" "CRIU log: /var/log/cryo/cryo-dk-bad-ck.restore.log"
        [ -s /var/log/cryo/cryo-dk-bad-ck.restore.log ] || fail "the CRIU log was not kept"
        after=$(dk_ours)
        assert_eq "$after" "$before" "containers before and after the failed restore"
        local root
        root=$(docker info -f '{{.DockerRootDir}}')
        ! ls "$root"/containers/*/checkpoints/cryo-* >/dev/null 2>&1 || fail "staged images left behind"
        dk_running cryo-dk-bad || fail "the source container was harmed"
        # The failed CRIU's cgroup yard, mounted in the task's bundle, would
        # keep containerd from removing that bundle: 11 mounts per failure.
        sleep 1
        assert_eq "$(grep -c 'io\.containerd\.runtime\.v2\.task/moby/.*/\.criu\.cgyard\.' /proc/self/mountinfo || true)" \
                "$yards_before" "CRIU cgroup yards mounted in containerd's bundles"
}

# The plugin's own paths under valgrind (the helper processes it forks
# included): restore into the same container and into a new one, and the
# errors.  The dump runs under valgrind too; its forked children (the
# network probe, outside this plugin) are not judged.
test_valgrind_clean() {
        dk_setup
        need_cmd valgrind
        local vg=(valgrind --quiet --leak-check=full --errors-for-leak-kinds=definite,indirect
                --show-leak-kinds=definite,indirect --error-exitcode=99 --trace-children=no
                --suppressions="$CRYO_TOP/tests/valgrind.supp")
        dk_run cryo-dk-vg
        local ck rc
        # valgrind runs the program in its own process: $! is cryo's pid, and
        # only that process's report counts.
        "${vg[@]}" --error-exitcode=0 --log-file="$TEST_SCRATCH/vg.%p" "$CRYO" dump --type docker --id cryo-dk-vg \
                --dir "$DK_CK" --leave-running >"$TEST_SCRATCH/path" &
        local vpid=$!
        wait $vpid || fail "dump under valgrind failed"
        [ ! -s "$TEST_SCRATCH/vg.$vpid" ] || fail "valgrind: $(cat "$TEST_SCRATCH/vg.$vpid")"
        ck=$(tail -n 1 "$TEST_SCRATCH/path")
        "${vg[@]}" "$CRYO" restore --checkpoint-dir "$ck" --id cryo-dk-vg2 >/dev/null
        dk_check_restored cryo-dk-vg2 "$ck"
        docker stop -t 1 cryo-dk-vg >/dev/null
        "${vg[@]}" "$CRYO" restore --checkpoint-dir "$ck" >/dev/null
        dk_check_restored cryo-dk-vg "$ck"
        "${vg[@]}" "$CRYO" inspect --json "$ck" >/dev/null
        for args in "dump --type docker --id cryo-dk-no-such --dir $DK_CK" \
                    "restore --checkpoint-dir $ck" \
                    "restore --checkpoint-dir $ck --id cryo-dk-vg2"; do
                rc=0
                # shellcheck disable=SC2086
                "${vg[@]}" "$CRYO" $args >/dev/null 2>"$TEST_SCRATCH/err" || rc=$?
                [ "$rc" != 99 ] || fail "valgrind found errors in 'cryo $args': $(cat "$TEST_SCRATCH/err")"
                [ "$rc" != 0 ] || fail "'cryo $args' should have failed"
        done
}
