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
#include "format/digest.h"
#include "util/cleanup.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/sha256.h"

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
        assert_int_equal(ckpt_create(root, name, "process", 0, &ck, &err), 0);
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
                assert_int_equal(ckpt_create(root, "ck-aborted", "process", 0, &ck, &err), 0);
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

/* Verification in two halves: sizes at once, checksums on a thread whose
 * outcome ckpt_verify_end() gives; below the size limit, all at once. */
static void test_verify_in_the_background(void **state) {
        (void) state;
        _cleanup_free_ char *path = write_checkpoint("ck-background");
        _cleanup_free_ char *img = fs_path_join(path, "checkpoint/pages-1.img");
        _cleanup_ckpt_ struct cryo_checkpoint *ck = NULL;
        _cleanup_error_ struct cryo_error *err = NULL;

        assert_int_equal(ckpt_open(path, CKPT_VERIFY_NONE, &ck, &err), 0);
        assert_int_equal(ckpt_verify_begin(ck, 0, &err), 0);
        assert_true(ckpt_verify_pending(ck));
        assert_int_equal(ckpt_verify_end(ck, &err), 0);
        assert_false(ckpt_verify_pending(ck));
        assert_true(ck->stats.phase[CRYO_PHASE_VERIFY].bytes >= 10);
        /* Nothing pending: end is a no-op. */
        assert_int_equal(ckpt_verify_end(ck, &err), 0);
        ckpt_free(steal_pointer(&ck));

        int fd = open(img, O_WRONLY);
        assert_true(fd >= 0);
        assert_int_equal(pwrite(fd, "X", 1, 5), 1);
        close(fd);
        /* In the background: begin only checks sizes, end finds it. */
        assert_int_equal(ckpt_open(path, CKPT_VERIFY_NONE, &ck, &err), 0);
        assert_int_equal(ckpt_verify_begin(ck, 0, &err), 0);
        assert_int_equal(ckpt_verify_end(ck, &err), -EBADMSG);
        assert_non_null(strstr(err->message, "checkpoint/pages-1.img is corrupted"));
        cryo_error_freep(&err);
        /* Below min_bytes: begin does it all, and nothing is pending. */
        assert_int_equal(ckpt_verify_begin(ck, 1u << 20, &err), -EBADMSG);
        assert_false(ckpt_verify_pending(ck));
        cryo_error_freep(&err);
        /* Dropped while pending: ckpt_free() joins the thread. */
        assert_int_equal(ckpt_verify_begin(ck, 0, &err), 0);
        assert_true(ckpt_verify_pending(ck));
        ckpt_free(steal_pointer(&ck));
        /* A truncated file fails at begin, before anything is started. */
        assert_int_equal(truncate(img, 4), 0);
        assert_int_equal(ckpt_open(path, CKPT_VERIFY_NONE, &ck, &err), 0);
        assert_int_equal(ckpt_verify_begin(ck, 0, &err), -EBADMSG);
        assert_non_null(strstr(err->message, "truncated"));
        assert_false(ckpt_verify_pending(ck));
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
        assert_int_equal(ckpt_create(root, "ck-dup", "process", 0, &ck, &err), -EEXIST);
        cryo_error_freep(&err);
        assert_int_equal(ckpt_create(root, "../evil", "process", 0, &ck, &err), -EINVAL);
        cryo_error_freep(&err);
        assert_int_equal(ckpt_create(root, ".hidden", "process", 0, &ck, &err), -EINVAL);
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

/* Known answers, computed with xxhsum(1): the digest of one chunk "abc" is
 * `printf abc | xxhsum -H2` as 16 bytes, hashed again with -H2; no chunk
 * at all is XXH3-128 of nothing. */
static void test_digest_known_answers(void **state) {
        (void) state;
        char hex[DIGEST_HEX_LEN + 1];
        digest_buffer("abc", 3, hex);
        assert_string_equal(hex, "f758394eebabb2bb51ee911f78f31836");
        digest_buffer("", 0, hex);
        assert_string_equal(hex, "99aa06d3014798d86001c324468d497f");
}

/* A file over several chunks, hashed by two threads, gives the digest of
 * the same bytes in memory; one changed byte in the last chunk changes it. */
static void test_digest_files_chunked(void **state) {
        (void) state;
        size_t len = 2 * (size_t) DIGEST_CHUNK_SIZE + 4099;
        _cleanup_free_ unsigned char *data = malloc(len);
        assert_non_null(data);
        for (size_t i = 0; i < len; i++)
                data[i] = (unsigned char) ((i * 2654435761u) >> 13);
        _cleanup_close_ int dfd = open(root, O_RDONLY | O_DIRECTORY);
        assert_true(dfd >= 0);
        _cleanup_error_ struct cryo_error *err = NULL;
        assert_int_equal(fs_write_file(dfd, "big", data, len, 0600, &err), 0);
        assert_int_equal(fs_write_file(dfd, "empty", "", 0, 0600, &err), 0);

        struct digest_file files[] = {{.rel = "big"}, {.rel = "empty"}};
        assert_int_equal(digest_files(dfd, files, 2, 2, NULL, &err), 0);
        char want[DIGEST_HEX_LEN + 1];
        digest_buffer(data, len, want);
        assert_string_equal(files[0].hex, want);
        assert_int_equal(files[0].size, len);
        assert_string_equal(files[1].hex, "99aa06d3014798d86001c324468d497f");

        data[len - 1] ^= 1;
        assert_int_equal(fs_write_file(dfd, "big2", data, len, 0600, &err), 0);
        struct digest_file changed[] = {{.rel = "big2"}};
        assert_int_equal(digest_files(dfd, changed, 1, 1, NULL, &err), 0);
        assert_string_not_equal(changed[0].hex, want);

        struct digest_file missing[] = {{.rel = "nope"}};
        assert_int_equal(digest_files(dfd, missing, 1, 0, NULL, &err), -ENOENT);
        assert_non_null(strstr(err->message, "nope"));
        unlinkat(dfd, "big", 0);
        unlinkat(dfd, "big2", 0);
        unlinkat(dfd, "empty", 0);
}

/* A page image hashed chunk by chunk while it grows (the write-back
 * thread's cache) gets the digest of a cold pass; the cache is really used
 * (a byte changed behind its back, which CRIU never does, goes unseen);
 * and a file replaced since (another inode) is hashed whole again. */
static void test_digest_cache_of_growing_file(void **state) {
        (void) state;
        size_t len = 2 * (size_t) DIGEST_CHUNK_SIZE + 100, first = DIGEST_CHUNK_SIZE + 10;
        _cleanup_free_ unsigned char *data = malloc(len);
        assert_non_null(data);
        for (size_t i = 0; i < len; i++)
                data[i] = (unsigned char) ((i * 2246822519u) >> 11);
        _cleanup_close_ int dfd = open(root, O_RDONLY | O_DIRECTORY);
        assert_true(dfd >= 0);
        _cleanup_(digest_cache_freep) struct digest_cache *cache = digest_cache_new();
        assert_non_null(cache);

        int fd = openat(dfd, "pages-1.img", O_RDWR | O_CREAT | O_TRUNC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(fs_write_all(fd, data, first), 0);
        assert_int_equal(digest_cache_update(cache, fd, "pages-1.img"), 0); /* chunk 0 */
        assert_int_equal(fs_write_all(fd, data + first, len - first), 0);
        assert_int_equal(digest_cache_update(cache, fd, "pages-1.img"), 0); /* chunk 1 */

        char want[DIGEST_HEX_LEN + 1];
        digest_buffer(data, len, want);
        _cleanup_error_ struct cryo_error *err = NULL;
        struct digest_file f[] = {{.rel = "pages-1.img"}};
        assert_int_equal(digest_files(dfd, f, 1, 2, cache, &err), 0);
        assert_string_equal(f[0].hex, want);

        /* Behind the cache's back: only a cold pass sees it. */
        assert_int_equal(pwrite(fd, "X", 1, 5), 1);
        assert_int_equal(digest_files(dfd, f, 1, 2, cache, &err), 0);
        assert_string_equal(f[0].hex, want);
        assert_int_equal(digest_files(dfd, f, 1, 2, NULL, &err), 0);
        assert_string_not_equal(f[0].hex, want);

        /* Replaced by another file of the same name (the old one still
         * open, so its inode cannot be reused): the cache is ignored. */
        assert_int_equal(unlinkat(dfd, "pages-1.img", 0), 0);
        data[7] ^= 0x5a;
        assert_int_equal(fs_write_file(dfd, "pages-1.img", data, len, 0600, &err), 0);
        digest_buffer(data, len, want);
        assert_int_equal(digest_files(dfd, f, 1, 2, cache, &err), 0);
        assert_string_equal(f[0].hex, want);
        close(fd);
        unlinkat(dfd, "pages-1.img", 0);
}

/* What the sweeps take for a temporary directory of cryo's: mkdtemp()'s
 * six characters exactly, after the stem. */
static void test_mkdtemp_names(void **state) {
        (void) state;
        assert_true(fs_mkdtemp_name(".proc-1.tmp-aB3xYz", ".tmp-", false));
        assert_true(fs_mkdtemp_name(".restore-Q1w2E3", ".restore-", true));
        assert_false(fs_mkdtemp_name(".restore-Q1w2E3x", ".restore-", true));
        assert_false(fs_mkdtemp_name("x.restore-Q1w2E3", ".restore-", true));
        assert_false(fs_mkdtemp_name(".proc-1.tmp-aB3xY", ".tmp-", false));
        assert_false(fs_mkdtemp_name(".proc-1.tmp-aB3xYz1", ".tmp-", false));
        assert_false(fs_mkdtemp_name(".proc-1.tmp-aB3x.z", ".tmp-", false));
        assert_false(fs_mkdtemp_name("dump-", "dump-", true));
        assert_true(fs_mkdtemp_name("dump-000000", "dump-", true));
}

/* Known answers (FIPS 180-2), and a file read in several pieces hashes
 * like the same bytes in one buffer. */
static void test_sha256_known_answers(void **state) {
        (void) state;
        char hex[SHA256_HEX_LEN + 1];
        cryo_sha256_buf("", 0, hex);
        assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        cryo_sha256_buf("abc", 3, hex);
        assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");

        size_t len = (3u << 20) + 17;
        _cleanup_free_ unsigned char *data = malloc(len);
        assert_non_null(data);
        for (size_t i = 0; i < len; i++)
                data[i] = (unsigned char) (i * 2654435761u >> 13);
        char dir[] = "/tmp/cryo-sha256-XXXXXX";
        assert_non_null(mkdtemp(dir));
        _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY);
        _cleanup_error_ struct cryo_error *err = NULL;
        assert_int_equal(fs_write_file(dfd, "blob", data, len, 0600, &err), 0);
        char from_file[SHA256_HEX_LEN + 1];
        uint64_t size = 0;
        assert_int_equal(cryo_sha256_file(dfd, "blob", from_file, &size, &err), 0);
        assert_int_equal(size, len);
        cryo_sha256_buf(data, len, hex);
        assert_string_equal(from_file, hex);
        assert_int_equal(fs_rm_rf(dir), 0);
}

/* Checkpoints written by cryo 0.1 list SHA-256 sums: they still verify,
 * and a corrupted one is still found. */
static void test_legacy_sha256_manifest(void **state) {
        (void) state;
        _cleanup_free_ char *path = write_checkpoint("ck-legacy");
        _cleanup_close_ int dfd = open(path, O_RDONLY | O_DIRECTORY);
        _cleanup_json_ json_object *m = NULL;
        _cleanup_error_ struct cryo_error *err = NULL;
        assert_int_equal(cryo_json_read_file(dfd, CRYO_MANIFEST_FILE, 1 << 20, &m, &err), 0);
        json_object_object_del(m, "checksum");
        json_object_object_foreach (cryo_json_get(m, "files"), rel, entry) {
                char hex[SHA256_HEX_LEN + 1];
                assert_int_equal(cryo_sha256_file(dfd, rel, hex, NULL, &err), 0);
                json_object_object_del(entry, "xxh128");
                json_object_object_add(entry, "sha256", json_object_new_string(hex));
        }
        assert_int_equal(cryo_json_write_file(dfd, CRYO_MANIFEST_FILE, m, 0600, &err), 0);
        {
                _cleanup_ckpt_ struct cryo_checkpoint *ck = NULL;
                assert_int_equal(ckpt_open(path, CKPT_VERIFY_FULL, &ck, &err), 0);
        }
        _cleanup_free_ char *img = fs_path_join(path, "checkpoint/pages-1.img");
        int fd = open(img, O_WRONLY);
        assert_true(fd >= 0);
        assert_int_equal(pwrite(fd, "X", 1, 0), 1);
        close(fd);
        _cleanup_ckpt_ struct cryo_checkpoint *ck = NULL;
        assert_int_equal(ckpt_open(path, CKPT_VERIFY_FULL, &ck, &err), -EBADMSG);
        assert_non_null(strstr(err->message, "SHA-256"));
}

/* A scratch checkpoint (the source of an archive) is sealed in place, with
 * its manifest and checksums, and removed when dropped. */
static void test_scratch_sealed_then_removed(void **state) {
        (void) state;
        _cleanup_free_ char *sealed_path = NULL;
        {
                _cleanup_ckpt_ struct cryo_checkpoint *ck = NULL;
                _cleanup_error_ struct cryo_error *err = NULL;
                /* the name of an existing checkpoint does not matter here */
                _cleanup_free_ char *existing = write_checkpoint("ck-scratch");
                assert_int_equal(ckpt_create(root, "ck-scratch", "process", CKPT_CREATE_SCRATCH, &ck, &err),
                                 0);
                assert_int_equal(fs_write_file(ck->dirfd, CRYO_SPEC_DUMP, "{}", 2, 0644, &err), 0);
                assert_int_equal(ckpt_seal(ck, false, &err), 0);
                sealed_path = strdup(ck->path);
                _cleanup_ckpt_ struct cryo_checkpoint *rd = NULL;
                assert_int_equal(ckpt_open(sealed_path, CKPT_VERIFY_FULL, &rd, &err), 0);
                assert_string_equal(cryo_json_str(rd->manifest, "checksum", ""), DIGEST_ALGORITHM);
        }
        assert_int_equal(access(sealed_path, F_OK), -1);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_commit_is_atomic_and_private),
                cmocka_unit_test(test_uncommitted_leaves_nothing),
                cmocka_unit_test(test_open_verifies),
                cmocka_unit_test(test_verify_in_the_background),
                cmocka_unit_test(test_corrupted_file_is_named),
                cmocka_unit_test(test_truncated_and_missing),
                cmocka_unit_test(test_newer_format_refused),
                cmocka_unit_test(test_manifest_path_escape_refused),
                cmocka_unit_test(test_not_a_checkpoint),
                cmocka_unit_test(test_existing_name_refused),
                cmocka_unit_test(test_list),
                cmocka_unit_test(test_default_name),
                cmocka_unit_test(test_directory_listed_twice),
                cmocka_unit_test(test_digest_known_answers),
                cmocka_unit_test(test_digest_files_chunked),
                cmocka_unit_test(test_digest_cache_of_growing_file),
                cmocka_unit_test(test_mkdtemp_names),
                cmocka_unit_test(test_sha256_known_answers),
                cmocka_unit_test(test_legacy_sha256_manifest),
                cmocka_unit_test(test_scratch_sealed_then_removed),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
