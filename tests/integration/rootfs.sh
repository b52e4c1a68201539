# The rootfs area (overlay diff capture/apply, tar helpers) under valgrind:
# its unit tests build real overlay mounts, hostile archives and zstd
# streams, so running them under valgrind covers the success and the error
# paths of the library without a leak or an invalid access.

VG=(valgrind --quiet --leak-check=full --errors-for-leak-kinds=definite,indirect
    --show-leak-kinds=definite,indirect --error-exitcode=99 --trace-children=no
    --suppressions="$CRYO_TOP/tests/valgrind.supp")

test_rootfs_units_valgrind_clean() {
        need_root
        need_cmd valgrind
        local t bin rc
        for t in tar rootfs-diff mountinfo; do
                bin=$CRYO_BUILD_DIR/tests/unit/rootfs/test-rootfs-$t
                [ -x "$bin" ] || fail "$bin is not built"
                rc=0
                TMPDIR=$TEST_SCRATCH "${VG[@]}" "$bin" >"$TEST_SCRATCH/$t.log" 2>&1 || rc=$?
                [ "$rc" = 0 ] || fail "test-rootfs-$t under valgrind: exit $rc: $(tail -n 30 "$TEST_SCRATCH/$t.log")"
        done
}
