/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Checkpoint format: atomic commit, manifest, verification. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "format/checkpoint.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/json.h"

static char root[] = "/tmp/cryo-unit-format.XXXXXX";

static int setup(void **state) {
        (void) state;
        return mkdtemp(root) ? 0 : -1;
}

static int teardown(void **state) {
        (void) state;
        return fs_rm_rf(root);
}

static int count_entries(const char *dir, bool hidden_only) {
        _cleanup_closedir_ DIR *d = opendir(dir);
        int n = 0;
        struct dirent *de;
        while (d && (de = readdir(d)))
                if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
                    (!hidden_only || de->d_name[0] == '.'))
                        n++;
        return n;
}

/* Writes a small checkpoint with one CRIU image and returns its path. */
static char *write_checkpoint(const char *name) {
        _cleanup_ckpt_ struct cryo_checkpoint *ck = NULL;
        _cleanup_error_ struct cryo_error *err = NULL;
        assert_int_equal(ckpt_create(root, name, "process", &ck, &err), 0);
        int fd = -1;
        assert_int_equal(ckpt_open_subdir(ck, CRYO_CRIU_DIR, true, &fd, &err), 0);
        assert_int_equal(fs_write_file(fd, "pages-1.img", "0123456789", 10, 0644, &err), 0);
        close(fd);
        assert_int_equal(fs_write_file(ck->dirfd, CRYO_SPEC_DUMP, "{}", 2, 0644, &err), 0);
        assert_int_equal(ckpt_commit(ck, &err), 0);
        return strdup(ck->path);
}

static void test_commit_is_atomic_and_private(void **state) {
        (void) state;
        _cleanup_free_ char *path = write_checkpoint("ck-atomic");
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0700);
        _cleanup_free_ char *img = fs_path_join(path, "checkpoint/pages-1.img");
        assert_int_equal(stat(img, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
        /* No temporary directory is left over. */
        assert_int_equal(count_entries(root, true), 0);
}

static void test_uncommitted_leaves_nothing(void **state) {
        (void) state;
        int before = count_entries(root, false);
        {
                _cleanup_ckpt_ struct cryo_checkpoint *ck = NULL;
                _cleanup_error_ struct cryo_error *err = NULL;
                assert_int_equal(ckpt_create(root, "ck-aborted", "process", &ck, &err), 0);
                assert_int_equal(fs_write_file(ck->dirfd, "x", "y", 1, 0600, &err), 0);
                assert_int_equal(count_entries(root, true), 1);
                /* dropped without commit, as when a dump fails */
        }
        assert_int_equal(count_entries(root, false), before);
        _cleanup_json_ json_object *list = NULL;
        assert_int_equal(ckpt_list(root, &list, NULL), 0);
}

static void test_open_verifies(void **state) {
        (void) state;
        _cleanup_free_ char *path = write_checkpoint("ck-verify");
        _cleanup_ckpt_ struct cryo_checkpoint *ck = NULL;
        _cleanup_error_ struct cryo_error *err = NULL;
        assert_int_equal(ckpt_open(path, CKPT_VERIFY_FULL, &ck, &err), 0);
        assert_string_equal(ckpt_type(ck), "process");
        json_object *files = cryo_json_get(ck->manifest, "files");
        assert_non_null(cryo_json_get(files, "checkpoint/pages-1.img"));
        assert_non_null(cryo_json_get(files, "spec.dump"));
        assert_null(cryo_json_get(files, "cryo.json"));
}

static void test_corrupted_file_is_named(void **state) {
        (void) state;
        _cleanup_free_ char *path = write_checkpoint("ck-corrupt");
        _cleanup_free_ char *img = fs_path_join(path, "checkpoint/pages-1.img");
        int fd = open(img, O_WRONLY);
        assert_true(fd >= 0);
        assert_int_equal(pwrite(fd, "X", 1, 3), 1);
        close(fd);

        _cleanup_ckpt_ struct cryo_checkpoint *ck = NULL;
        _cleanup_error_ struct cryo_error *err = NULL;
        /* Sizes still match: only the full check sees it. */
        assert_int_equal(ckpt_open(path, CKPT_VERIFY_SIZES, &ck, &err), 0);
        ckpt_free(steal_pointer(&ck));
        assert_int_equal(ckpt_open(path, CKPT_VERIFY_FULL, &ck, &err), -EBADMSG);
        assert_non_null(strstr(err->message, "checkpoint/pages-1.img"));
        assert_non_null(strstr(err->message, "corrupted"));
}

static void test_truncated_and_missing(void **state) {
        (void) state;
        _cleanup_free_ char *path = write_checkpoint("ck-trunc");
        _cleanup_free_ char *img = fs_path_join(path, "checkpoint/pages-1.img");
        assert_int_equal(truncate(img, 4), 0);
        _cleanup_ckpt_ struct cryo_checkpoint *ck = NULL;
        _cleanup_error_ struct cryo_error *err = NULL;
        assert_int_equal(ckpt_open(path, CKPT_VERIFY_SIZES, &ck, &err), -EBADMSG);
        assert_non_null(strstr(err->message, "truncated"));
        cryo_error_freep(&err);

        assert_int_equal(unlink(img), 0);
        assert_int_equal(ckpt_open(path, CKPT_VERIFY_SIZES, &ck, &err), -ENOENT);
        assert_non_null(strstr(err->message, "missing"));
}

static void edit_manifest(const char *path, const char *key, json_object *val) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_DIRECTORY);
        json_object *m = NULL;
        assert_int_equal(cryo_json_read_file(fd, CRYO_MANIFEST_FILE, 1 << 20, &m, NULL), 0);
        json_object_object_add(m, key, val);
        assert_int_equal(cryo_json_write_file(fd, CRYO_MANIFEST_FILE, m, 0600, NULL), 0);
        json_object_put(m);
}

static void test_newer_format_refused(void **state) {
        (void) state;
        _cleanup_free_ char *path = write_checkpoint("ck-newer");
        edit_manifest(path, "format_version", json_object_new_int(999));
        _cleanup_ckpt_ struct cryo_checkpoint *ck = NULL;
        _cleanup_error_ struct cryo_error *err = NULL;
        assert_int_equal(ckpt_open(path, CKPT_VERIFY_NONE, &ck, &err), -EPROTONOSUPPORT);
        assert_non_null(strstr(err->message, "newer"));
        assert_non_null(strstr(err->message, "999"));
}

static void test_manifest_path_escape_refused(void **state) {
        (void) state;
        _cleanup_free_ char *path = write_checkpoint("ck-escape");
        json_object *files = json_object_new_object();
        json_object *entry = json_object_new_object();
        json_object_object_add(entry, "size", json_object_new_int(1));
        json_object_object_add(files, "../../etc/passwd", entry);
        edit_manifest(path, "files", files);
        _cleanup_ckpt_ struct cryo_checkpoint *ck = NULL;
        _cleanup_error_ struct cryo_error *err = NULL;
        assert_int_equal(ckpt_open(path, CKPT_VERIFY_SIZES, &ck, &err), -EBADMSG);
        assert_non_null(strstr(err->message, "outside"));
}

static void test_not_a_checkpoint(void **state) {
        (void) state;
        _cleanup_ckpt_ struct cryo_checkpoint *ck = NULL;
        _cleanup_error_ struct cryo_error *err = NULL;
        assert_true(ckpt_open("/tmp", CKPT_VERIFY_NONE, &ck, &err) < 0);
        assert_non_null(strstr(err->message, "not a cryo checkpoint"));
        cryo_error_freep(&err);
        assert_int_equal(ckpt_open("/nonexistent/cryo", CKPT_VERIFY_NONE, &ck, &err), -ENOENT);
}

static void test_existing_name_refused(void **state) {
        (void) state;
        _cleanup_free_ char *path = write_checkpoint("ck-dup");
        _cleanup_ckpt_ struct cryo_checkpoint *ck = NULL;
        _cleanup_error_ struct cryo_error *err = NULL;
        assert_int_equal(ckpt_create(root, "ck-dup", "process", &ck, &err), -EEXIST);
        cryo_error_freep(&err);
        assert_int_equal(ckpt_create(root, "../evil", "process", &ck, &err), -EINVAL);
        cryo_error_freep(&err);
        assert_int_equal(ckpt_create(root, ".hidden", "process", &ck, &err), -EINVAL);
}

static void test_list(void **state) {
        (void) state;
        _cleanup_free_ char *path = write_checkpoint("ck-list");
        _cleanup_json_ json_object *list = NULL;
        assert_int_equal(ckpt_list(root, &list, NULL), 0);
        bool found = false;
        for (size_t i = 0; i < json_object_array_length(list); i++)
                found = found ||
                        !strcmp(cryo_json_str(json_object_array_get_idx(list, i), "name", ""), "ck-list");
        assert_true(found);
}

static void test_default_name(void **state) {
        (void) state;
        _cleanup_free_ char *a = ckpt_default_name("containerd", "ns/a b:c");
        assert_non_null(a);
        assert_null(strchr(a, '/'));
        assert_null(strchr(a, ' '));
        assert_int_equal(strncmp(a, "containerd-ns_a_b_c-", 20), 0);
        _cleanup_free_ char *b = ckpt_default_name("process", NULL);
        assert_int_equal(strncmp(b, "process-unnamed-", 16), 0);
}

static int list_count(int dirfd) {
        _cleanup_closedir_ DIR *d = fs_opendir_at(dirfd);
        int n = 0;
        while (d && readdir(d))
                n++;
        return n;
}

static void test_directory_listed_twice(void **state) {
        (void) state;
        _cleanup_free_ char *path = write_checkpoint("ck-twice");
        _cleanup_close_ int fd = open(path, O_RDONLY | O_DIRECTORY);
        /* A shared offset would make the second listing empty. */
        int first = list_count(fd);
        assert_true(first > 2);
        assert_int_equal(list_count(fd), first);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_commit_is_atomic_and_private),
                cmocka_unit_test(test_uncommitted_leaves_nothing),
                cmocka_unit_test(test_open_verifies),
                cmocka_unit_test(test_corrupted_file_is_named),
                cmocka_unit_test(test_truncated_and_missing),
                cmocka_unit_test(test_newer_format_refused),
                cmocka_unit_test(test_manifest_path_escape_refused),
                cmocka_unit_test(test_not_a_checkpoint),
                cmocka_unit_test(test_existing_name_refused),
                cmocka_unit_test(test_list),
                cmocka_unit_test(test_default_name),
                cmocka_unit_test(test_directory_listed_twice),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
