/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Finding a container's overlay upperdir from mountinfo. */
#include <errno.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "rootfs/rootfs.h"
#include "tree.h"

static const char fixture[] =
        "22 1 252:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
        "100 22 0:50 / /var/lib/docker/overlay2/abc/merged rw,relatime shared:60 - overlay overlay "
        "rw,lowerdir=/var/lib/docker/overlay2/l/X:/var/lib/docker/overlay2/l/Y,"
        "upperdir=/var/lib/docker/overlay2/abc/diff,workdir=/var/lib/docker/overlay2/abc/work,nouserxattr\n"
        "101 22 0:51 / /mnt/with\\040space rw - overlay overlay "
        "rw,lowerdir=/l,upperdir=/data/up\\040per\\054x\\075y\\134z,workdir=/w\n"
        "102 22 0:52 / /mnt/ro rw - overlay overlay ro,lowerdir=/a:/b\n"
        "103 22 0:53 / /mnt/tmp rw - tmpfs tmpfs rw,size=10k\n"
        /* stacked: the later mount wins */
        "104 22 0:54 / /mnt/stack rw - tmpfs tmpfs rw\n"
        "105 104 0:55 / /mnt/stack rw master:3 shared:9 - overlay overlay rw,lowerdir=/l,upperdir=rel/diff,"
        "workdir=rel/work\n"
        "garbage line\n";

static int lookup(const char *mp, char **upper, char **devid, struct cryo_error **err) {
        FILE *f = fmemopen((void *) fixture, sizeof(fixture) - 1, "r");
        assert_non_null(f);
        int r = rootfs_mountinfo_upperdir(f, mp, upper, devid, err);
        fclose(f);
        return r;
}

static void test_parse(void **state) {
        (void) state;
        _cleanup_error_ struct cryo_error *err = NULL;
        char *upper = NULL, *devid = NULL;
        assert_int_equal(lookup("/var/lib/docker/overlay2/abc/merged", &upper, &devid, &err), 0);
        assert_string_equal(upper, "/var/lib/docker/overlay2/abc/diff");
        assert_string_equal(devid, "0:50");
        free(upper);
        free(devid);

        assert_int_equal(lookup("/mnt/with space", &upper, NULL, &err), 0);
        assert_string_equal(upper, "/data/up per,x=y\\z");
        free(upper);

        assert_int_equal(lookup("/mnt/stack", &upper, &devid, &err), 0);
        assert_string_equal(upper, "rel/diff");
        assert_string_equal(devid, "0:55");
        free(upper);
        free(devid);
}

static void test_errors(void **state) {
        (void) state;
        char *upper = NULL;
        struct cryo_error *err = NULL;
        assert_int_equal(lookup("/mnt/ro", &upper, NULL, &err), -ENODATA);
        assert_non_null(strstr(err->message, "read-only"));
        cryo_error_freep(&err);
        assert_int_equal(lookup("/mnt/tmp", &upper, NULL, &err), -EINVAL);
        assert_non_null(strstr(err->message, "tmpfs, not an overlay"));
        cryo_error_freep(&err);
        assert_int_equal(lookup("/nowhere", &upper, NULL, &err), -ENOENT);
        cryo_error_freep(&err);
        assert_null(upper);
}

struct live {
        char *dir, *lower, *upper, *work, *merged;
};

static int live_setup(void **state) {
        struct live *l = calloc(1, sizeof(*l));
        l->dir = tu_mkdtemp("mountinfo");
        l->lower = tu_path("%s/lower", l->dir);
        l->upper = tu_path("%s/up per", l->dir);
        l->work = tu_path("%s/work", l->dir);
        l->merged = tu_path("%s/mer ged", l->dir);
        mkdir(l->lower, 0755);
        mkdir(l->upper, 0755);
        mkdir(l->work, 0755);
        mkdir(l->merged, 0755);
        *state = l;
        return 0;
}

static int live_teardown(void **state) {
        struct live *l = *state;
        umount2(l->merged, MNT_DETACH);
        tu_scratch_remove(l->dir);
        free(l->dir);
        free(l->lower);
        free(l->upper);
        free(l->work);
        free(l->merged);
        free(l);
        return 0;
}

static void test_live_mountpoint(void **state) {
        struct live *l = *state;
        assert_int_equal(tu_mount_overlay(l->lower, l->upper, l->work, l->merged, NULL), 0);
        _cleanup_error_ struct cryo_error *err = NULL;
        char *upper = NULL;
        int r = rootfs_find_upperdir_at(l->merged, &upper, &err);
        if (r < 0)
                fail_msg("%s", err->message);
        assert_string_equal(upper, l->upper);
        free(upper);
}

/* Overlay options with relative paths (what Docker does for long option
 * strings) are resolved against an ancestor of the mount point. */
static void test_live_relative(void **state) {
        struct live *l = *state;
        char cwd[4096];
        assert_non_null(getcwd(cwd, sizeof(cwd)));
        assert_int_equal(chdir(l->dir), 0);
        int r = mount("overlay", l->merged, "overlay", 0, "lowerdir=lower,upperdir=up per,workdir=work");
        assert_int_equal(chdir(cwd), 0);
        assert_int_equal(r, 0);
        _cleanup_error_ struct cryo_error *err = NULL;
        char *upper = NULL;
        r = rootfs_find_upperdir_at(l->merged, &upper, &err);
        if (r < 0)
                fail_msg("%s", err->message);
        assert_string_equal(upper, l->upper);
        free(upper);
}

/* A process whose root is the overlay (chroot here, pivot_root in a
 * container) sees it at "/" in its own mountinfo. */
static void test_live_pid(void **state) {
        struct live *l = *state;
        assert_int_equal(tu_mount_overlay(l->lower, l->upper, l->work, l->merged, NULL), 0);
        int ready[2], hold[2];
        assert_int_equal(pipe(ready), 0);
        assert_int_equal(pipe(hold), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                close(ready[0]);
                close(hold[1]);
                if (unshare(CLONE_NEWNS) < 0 || mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) < 0 ||
                    chroot(l->merged) < 0 || chdir("/") < 0)
                        _exit(1);
                char c = 1;
                if (write(ready[1], &c, 1) != 1)
                        _exit(1);
                (void) !read(hold[0], &c, 1);
                _exit(0);
        }
        close(ready[1]);
        close(hold[0]);
        char c;
        assert_int_equal(read(ready[0], &c, 1), 1);
        _cleanup_error_ struct cryo_error *err = NULL;
        char *upper = NULL;
        int r = rootfs_find_upperdir(pid, &upper, &err);
        close(hold[1]);
        close(ready[0]);
        int status;
        waitpid(pid, &status, 0);
        if (r < 0)
                fail_msg("%s", err->message);
        assert_string_equal(upper, l->upper);
        free(upper);

        /* our own root: an overlay only when the tests run in a container */
        cryo_error_freep(&err);
        upper = NULL;
        if (rootfs_find_upperdir(getpid(), &upper, &err) < 0)
                assert_true(strstr(err->message, "not an overlay") || strstr(err->message, "read-only"));
        free(upper);
}

int main(void) {
        const struct CMUnitTest pure[] = {
                cmocka_unit_test(test_parse),
                cmocka_unit_test(test_errors),
        };
        int r = cmocka_run_group_tests(pure, NULL, NULL);
        if (r != 0)
                return r;
        tu_require_root();
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_live_mountpoint, live_setup, live_teardown),
                cmocka_unit_test_setup_teardown(test_live_relative, live_setup, live_teardown),
                cmocka_unit_test_setup_teardown(test_live_pid, live_setup, live_teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
