/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Pure logic around CRIU: options, log explanation, statistics, errors. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "engine/engine.h"
#include "plugins/container/container.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/stats.h"

static void test_options_round_trip(void **state) {
        (void) state;
        struct engine_options o = {.tcp_established = true, .file_locks = true, .ghost_limit = 4096};
        o.cgroup_mode = strdup("soft");
        assert_int_equal(engine_options_add_external(&o, "net[4026531840]:extRootNetNS"), 0);
        _cleanup_json_ json_object *j = engine_options_to_json(&o);

        struct engine_options back = {0};
        assert_int_equal(engine_options_from_json(j, &back, NULL), 0);
        assert_true(back.tcp_established);
        assert_true(back.file_locks);
        assert_false(back.shell_job);
        assert_int_equal(back.ghost_limit, 4096);
        assert_string_equal(back.cgroup_mode, "soft");
        assert_string_equal(back.externals[0], "net[4026531840]:extRootNetNS");
        assert_null(back.externals[1]);
        engine_options_clear(&o);
        engine_options_clear(&back);
}

static void test_options_reject_bad_values(void **state) {
        (void) state;
        struct engine_options o = {0};
        _cleanup_error_ struct cryo_error *err = NULL;
        _cleanup_json_ json_object *j = json_tokener_parse("{\"cgroup_mode\": \"bogus\"}");
        assert_int_equal(engine_options_from_json(j, &o, &err), -EINVAL);
        assert_non_null(strstr(err->message, "bogus"));
        cryo_error_freep(&err);
        _cleanup_json_ json_object *k = json_tokener_parse("{\"tcp_established\": \"yes\"}");
        assert_int_equal(engine_options_from_json(k, &o, &err), -EBADMSG);
        cryo_error_freep(&err);
        _cleanup_json_ json_object *g = json_tokener_parse("{\"ghost_limit\": -1}");
        assert_int_equal(engine_options_from_json(g, &o, &err), -EBADMSG);
        engine_options_clear(&o);
}

static const char sample_log[] =
        "(00.000000) Version: 4.2.1\n"
        "(00.001000) Error (criu/util.c:123): Can't setup RLIMIT_NOFILE for self: Operation not permitted\n"
        "(00.002000) Dumping task 1234\n"
        "(00.003000) Error (criu/sockets.c:88): sockets: Can't get 1:16 opt: Operation not supported\n"
        "(00.004000) Error (criu/cr-dump.c:1500): Dump files (pid: 1234) failed with -1\n"
        "(00.005000) Error (criu/cr-dump.c:2100): Dumping FAILED.\n";

static void test_log_explain_picks_the_cause(void **state) {
        (void) state;
        char dir[] = "/tmp/cryo-unit-log.XXXXXX";
        assert_non_null(mkdtemp(dir));
        _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY);
        assert_int_equal(fs_write_file(fd, "dump.log", sample_log, strlen(sample_log), 0600, NULL), 0);

        _cleanup_free_ char *cause = NULL, *excerpt = NULL;
        assert_int_equal(engine_log_explain(fd, "dump.log", &cause, &excerpt), 0);
        /* The first real error, without the harmless RLIMIT line or the
         * timestamp and source location. */
        assert_string_equal(cause, "sockets: Can't get 1:16 opt: Operation not supported");
        assert_null(strstr(excerpt, "RLIMIT"));
        assert_non_null(strstr(excerpt, "Dumping FAILED."));
        assert_null(strstr(excerpt, "(00."));

        free(steal_pointer(&cause));
        free(steal_pointer(&excerpt));
        assert_int_equal(engine_log_explain(fd, "missing.log", &cause, &excerpt), -ENOENT);
        assert_int_equal(fs_write_file(fd, "quiet.log", "(00.1) all good\n", 16, 0600, NULL), 0);
        assert_int_equal(engine_log_explain(fd, "quiet.log", &cause, &excerpt), -ENOENT);
        assert_int_equal(fs_rm_rf(dir), 0);
}

static void test_stats_round_trip(void **state) {
        (void) state;
        struct cryo_stats s = {0}, back;
        cryo_stats_add(&s, CRYO_PHASE_FREEZE, 120, 0);
        cryo_stats_add(&s, CRYO_PHASE_MEMORY_DUMP, 5000, 1 << 20);
        cryo_stats_add(&s, CRYO_PHASE_MEMORY_DUMP, 1000, 1 << 20);
        _cleanup_json_ json_object *j = cryo_stats_to_json(&s);
        assert_int_equal(cryo_stats_from_json(j, &back), 0);
        assert_true(back.phase[CRYO_PHASE_FREEZE].set);
        assert_int_equal(back.phase[CRYO_PHASE_MEMORY_DUMP].usec, 6000);
        assert_int_equal(back.phase[CRYO_PHASE_MEMORY_DUMP].bytes, 2 << 20);
        assert_false(back.phase[CRYO_PHASE_RESTORE].set);
        assert_non_null(cryo_json_path(j, "phases/memory_dump/usec"));
        assert_null(cryo_json_path(j, "phases/restore"));
}

static void test_error_contract(void **state) {
        (void) state;
        _cleanup_error_ struct cryo_error *err = NULL;
        assert_int_equal(cryo_error_errno(&err, ENOENT, "cannot open %s", "x"), -ENOENT);
        assert_string_equal(err->message, "cannot open x: No such file or directory");
        /* The first error wins; later ones do not overwrite the cause. */
        assert_int_equal(cryo_error_set(&err, EIO, "something else"), -EIO);
        assert_int_equal(err->code, ENOENT);
        assert_int_equal(cryo_error_prefix(&err, "dump %d", 7), -ENOENT);
        assert_string_equal(err->message, "dump 7: cannot open x: No such file or directory");
        /* A NULL error object is allowed everywhere. */
        assert_int_equal(cryo_error_set(NULL, -EPERM, "ignored"), -EPERM);
        /* A cause that explains more takes the failure's place, once. */
        struct cryo_error *cause = NULL;
        cryo_error_set(&cause, EBADMSG, "checkpoint file x is corrupted");
        assert_int_equal(cryo_error_replace(&err, &cause), -EBADMSG);
        assert_null(cause);
        assert_string_equal(err->message, "checkpoint file x is corrupted");
        cryo_error_set(&cause, EIO, "dropped");
        assert_int_equal(cryo_error_replace(NULL, &cause), -EIO);
        assert_null(cause);
}

static void test_path_join(void **state) {
        (void) state;
        _cleanup_free_ char *a = fs_path_join("/var/lib/", "/x/y");
        assert_string_equal(a, "/var/lib/x/y");
        _cleanup_free_ char *b = fs_path_join("/", "x");
        assert_string_equal(b, "/x");
}

static void test_log_criu_version(void **state) {
        (void) state;
        char dir[] = "/tmp/cryo-unit-ver.XXXXXX";
        assert_non_null(mkdtemp(dir));
        _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY);
        static const char log[] = "(00.000000) CRIU run id = 1\n"
                                  "(00.000176) Version: 4.2.1 (gitid 0)\n"
                                  "(00.000200) Running on vm\n";
        assert_int_equal(fs_write_file(fd, "dump.log", log, sizeof(log) - 1, 0600, NULL), 0);
        _cleanup_free_ char *v = NULL;
        assert_int_equal(engine_log_criu_version(fd, "dump.log", &v), 0);
        assert_string_equal(v, "4.2.1");
        /* A release without a sublevel reads as engine_criu_version() has it. */
        static const char log2[] = "(00.000176) Version: 4.2 (gitid 0)\n";
        assert_int_equal(fs_write_file(fd, "v2.log", log2, sizeof(log2) - 1, 0600, NULL), 0);
        _cleanup_free_ char *v2 = NULL;
        assert_int_equal(engine_log_criu_version(fd, "v2.log", &v2), 0);
        assert_string_equal(v2, "4.2.0");
        /* Log level 2: no version line. */
        assert_int_equal(fs_write_file(fd, "quiet.log", "(00.1) Error\n", 13, 0600, NULL), 0);
        char *none = NULL;
        assert_int_equal(engine_log_criu_version(fd, "quiet.log", &none), -ENOENT);
        assert_int_equal(engine_log_criu_version(fd, "missing.log", &none), -ENOENT);
        assert_null(none);
        assert_int_equal(fs_rm_rf(dir), 0);
}

/* CgroupPropEntry{name: "freezer.state", value: "FROZEN"} inside other
 * bytes: only that value changes, every other byte stays. */
static void test_freezer_image_fix(void **state) {
        (void) state;
        char dir[] = "/tmp/cryo-unit-cg.XXXXXX";
        assert_non_null(mkdtemp(dir));
        _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY);
        static const char img[] = "\x31\x43\x56\x54"
                                  "\x0a\x0d"
                                  "freezer.state"
                                  "\x12\x06"
                                  "FROZEN"
                                  "\x0a\x06"
                                  "FROZEN"
                                  "\x0a\x0d"
                                  "freezer.state"
                                  "\x12\x06"
                                  "FROZEN";
        const size_t len = sizeof(img) - 1;
        assert_int_equal(fs_write_file(fd, "cgroup.img", img, len, 0600, NULL), 0);
        assert_int_equal(container_freezer_fix_image(fd, NULL), 0);
        _cleanup_free_ char *back = NULL;
        size_t back_len = 0;
        assert_int_equal(fs_read_file(fd, "cgroup.img", 1 << 16, &back, &back_len, NULL), 0);
        assert_int_equal(back_len, len);
        char want[sizeof(img)];
        memcpy(want, img, sizeof(img));
        memcpy(want + 4 + 2 + 13 + 2, "THAWED", 6);
        memcpy(want + len - 6, "THAWED", 6);
        assert_memory_equal(back, want, len);
        /* No cgroup.img (cgroups not dumped): nothing to do. */
        assert_int_equal(unlinkat(fd, "cgroup.img", 0), 0);
        assert_int_equal(container_freezer_fix_image(fd, NULL), 0);
        assert_int_equal(fs_rm_rf(dir), 0);
}

/* The host's cgroup mounts serve as CRIU's yard only when every hierarchy
 * of the tree is mounted at its root under the name CRIU opens. */
static void test_cgroup_yard_fits(void **state) {
        (void) state;
        /* This project's VMs: v1 hierarchies one per controller, cgroup2 at
         * .../unified (trimmed). */
        const char *hybrid_cg = "9:name=systemd:/\n4:memory:/tiny/c1\n1:cpu:/tiny/c1\n0::/tiny/c1\n";
        const char *hybrid_mi =
                "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
                "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
                "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
                "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd\n"
                "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
        assert_true(engine_cgroup_yard_fits(hybrid_cg, hybrid_mi, "/sys/fs/cgroup"));
        assert_false(engine_cgroup_yard_fits(hybrid_cg, hybrid_mi, "/elsewhere"));

        /* systemd's hybrid layout: joined controllers, in a directory of
         * that name (the "cpu" symlink beside it is not what CRIU opens). */
        const char *joined_cg = "3:cpu,cpuacct:/system.slice\n1:name=systemd:/\n";
        const char *joined_mi =
                "30 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
                "31 25 0:27 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n";
        assert_true(engine_cgroup_yard_fits(joined_cg, joined_mi, "/sys/fs/cgroup"));
        /* A hierarchy mounted with fewer controllers than the tree's. */
        const char *partial_mi = "30 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu\n"
                                 "31 25 0:27 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd\n";
        assert_false(engine_cgroup_yard_fits(joined_cg, partial_mi, "/sys/fs/cgroup"));

        /* cgroup2 only (Debian 12 with systemd): the hierarchy is
         * /sys/fs/cgroup itself, CRIU would look for .../unified. */
        const char *v2_cg = "0::/user.slice/session-1.scope\n";
        const char *v2_mi = "28 22 0:25 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n";
        assert_false(engine_cgroup_yard_fits(v2_cg, v2_mi, "/sys/fs/cgroup"));
        const char *v2_unified_mi = "28 22 0:25 / /y/unified rw - cgroup2 cgroup2 rw\n";
        assert_true(engine_cgroup_yard_fits(v2_cg, v2_unified_mi, "/y"));

        /* Inside a container: the hierarchy is mounted from a sub-cgroup,
         * so paths in /proc/PID/cgroup would not resolve below it. */
        const char *sub_mi = "41 31 0:38 /docker/abc /y/unified rw - cgroup2 cgroup2 rw\n";
        assert_false(engine_cgroup_yard_fits(v2_cg, sub_mi, "/y"));
        /* A v1 mount where the tree's cgroup2 hierarchy should be. */
        const char *wrong_type_mi = "41 31 0:38 / /y/unified rw - cgroup cgroup rw,name=unified\n";
        assert_false(engine_cgroup_yard_fits(v2_cg, wrong_type_mi, "/y"));
        /* Nothing to go by. */
        assert_false(engine_cgroup_yard_fits("", hybrid_mi, "/sys/fs/cgroup"));
        assert_false(engine_cgroup_yard_fits("garbage\n", hybrid_mi, "/sys/fs/cgroup"));
}

/* Which tmpfs mounts cryo saves itself instead of CRIU: whole ones, private,
 * not shared with another mount of the container, at a path CRIU's
 * configuration file can carry, not external already. */
static void test_tmpfs_selection(void **state) {
        (void) state;
        char mountinfo[] =
                "79 51 0:41 / / rw,relatime - overlay overlay rw,lowerdir=/l,upperdir=/u,workdir=/w\n"
                "81 79 0:45 / /dev rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755\n"
                "82 81 0:46 / /dev/pts rw,nosuid,noexec,relatime - devpts devpts rw,gid=5,mode=620\n"
                "83 81 0:47 / /dev/shm rw,nosuid,nodev,noexec,relatime - tmpfs shm rw,size=65536k\n"
                "86 79 0:49 / /run rw,nosuid - tmpfs tmpfs rw,seclabel,size=65536k,mode=755\n"
                "56 80 0:50 / /proc/acpi ro,relatime - tmpfs tmpfs ro\n"
                "57 80 0:45 /null /proc/keys rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755\n"
                "90 79 0:60 / /tmp rw shared:5 - tmpfs tmpfs rw\n"
                "91 79 0:61 / /data rw - tmpfs tmpfs rw,size=1m\n"
                "92 79 0:61 /sub /data2 rw - tmpfs tmpfs rw,size=1m\n"
                "93 79 0:62 / /with\\040space rw - tmpfs tmpfs rw\n"
                "94 79 0:63 / /vol rw - tmpfs tmpfs rw\n"
                "95 79 0:64 / /a:b rw - tmpfs tmpfs rw\n";
        struct container_criu_config cfg = {0};
        /* The masked file (a bind of /dev's null) and a bind from the host. */
        assert_int_equal(container_criu_config_add_ext_mount(&cfg, "/proc/keys"), 0);
        assert_int_equal(container_criu_config_add_ext_mount(&cfg, "/vol"), 0);
        _cleanup_json_ json_object *got = NULL;
        assert_int_equal(container_tmpfs_select(mountinfo, &cfg, &got), 0);
        assert_int_equal(json_object_array_length(got), 4);
        static const char *const want[][3] = {
                {"/dev", "tmpfs", "size=65536k,mode=755"},
                {"/dev/shm", "shm", "size=65536k"},
                {"/run", "tmpfs", "size=65536k,mode=755"},
                {"/proc/acpi", "tmpfs", ""},
        };
        for (size_t i = 0; i < 4; i++) {
                json_object *e = json_object_array_get_idx(got, i);
                assert_string_equal(cryo_json_str(e, "path", ""), want[i][0]);
                assert_string_equal(cryo_json_str(e, "source", ""), want[i][1]);
                assert_string_equal(cryo_json_str(e, "options", "?"), want[i][2]);
                assert_int_equal(json_object_get_boolean(cryo_json_get(e, "read_only")), i == 3);
        }
        container_criu_config_clear(&cfg);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_options_round_trip),
                cmocka_unit_test(test_options_reject_bad_values),
                cmocka_unit_test(test_log_explain_picks_the_cause),
                cmocka_unit_test(test_stats_round_trip),
                cmocka_unit_test(test_error_contract),
                cmocka_unit_test(test_path_join),
                cmocka_unit_test(test_log_criu_version),
                cmocka_unit_test(test_freezer_image_fix),
                cmocka_unit_test(test_cgroup_yard_fits),
                cmocka_unit_test(test_tmpfs_selection),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
