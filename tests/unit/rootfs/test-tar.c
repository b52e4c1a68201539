/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Round trips and hostile archives for tar_write_dir()/tar_extract_dir(). */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cmocka.h>

#include "rootfs/tar.h"
#include "tree.h"

struct fixture {
        char *dir; /* scratch */
        char *src, *dst, *out;
};

static int setup(void **state) {
        struct fixture *f = calloc(1, sizeof(*f));
        f->dir = tu_mkdtemp("tar");
        f->src = tu_path("%s/src", f->dir);
        f->dst = tu_path("%s/dst", f->dir);
        f->out = tu_path("%s/outside", f->dir);
        mkdir(f->src, 0755);
        mkdir(f->dst, 0755);
        mkdir(f->out, 0755);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        struct fixture *f = *state;
        tu_scratch_remove(f->dir);
        free(f->dir);
        free(f->src);
        free(f->dst);
        free(f->out);
        free(f);
        return 0;
}

static void fill_random(void *buf, size_t len, uint64_t seed) {
        uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
        uint8_t *p = buf;
        for (size_t i = 0; i < len; i++) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                p[i] = (uint8_t) x;
        }
}

#define P(...) tu_path(__VA_ARGS__)

static void put(const char *root, const char *rel, const char *content) {
        char *p = P("%s/%s", root, rel);
        assert_int_equal(tu_write(p, content, strlen(content), 0644), 0);
        free(p);
}

static void set_mtime(const char *root, const char *rel, time_t sec, long nsec) {
        char *p = P("%s/%s", root, rel);
        struct timespec ts[2] = {{sec, nsec}, {sec, nsec}};
        assert_int_equal(utimensat(AT_FDCWD, p, ts, AT_SYMLINK_NOFOLLOW), 0);
        free(p);
}

/* A tree with every kind of entry the helpers must carry. */
static void build_tree(const char *root) {
        char *p;
        put(root, "file.txt", "hello\n");
        put(root, "empty", "");
        size_t big = 5u << 20;
        void *buf = malloc(big);
        fill_random(buf, big, 1);
        p = P("%s/big.bin", root);
        assert_int_equal(tu_write(p, buf, big, 0600), 0);
        free(p);
        free(buf);

        p = P("%s/dir/sub", root);
        assert_int_equal(tu_mkdirs(p, 0750), 0);
        free(p);
        put(root, "dir/sub/deep.txt", "deep");
        p = P("%s/dir/ro_dir", root);
        assert_int_equal(mkdir(p, 0755), 0);
        put(root, "dir/ro_dir/x", "x");
        assert_int_equal(chmod(p, 0555), 0);
        free(p);

        p = P("%s/link", root);
        assert_int_equal(symlink("file.txt", p), 0);
        free(p);
        p = P("%s/abslink", root);
        assert_int_equal(symlink("/etc/passwd", p), 0);
        free(p);

        put(root, "hard1", "linked content");
        char *a = P("%s/hard1", root), *b = P("%s/dir/hard2", root);
        assert_int_equal(link(a, b), 0);
        free(a);
        free(b);

        p = P("%s/fifo", root);
        assert_int_equal(mkfifo(p, 0640), 0);
        free(p);
        p = P("%s/dev_null", root);
        assert_int_equal(mknod(p, S_IFCHR | 0666, makedev(1, 3)), 0);
        free(p);

        put(root, "suid", "#!/bin/sh\n");
        p = P("%s/suid", root);
        assert_int_equal(chown(p, 1234, 5678), 0);
        assert_int_equal(chmod(p, 04755), 0);
        free(p);

        p = P("%s/file.txt", root);
        assert_int_equal(setxattr(p, "user.comment", "hi there", 8, 0), 0);
        free(p);
        p = P("%s/dir", root);
        assert_int_equal(setxattr(p, "user.dir", "d", 1, 0), 0);
        free(p);
        put(root, "capfile", "cap");
        p = P("%s/capfile", root);
        struct vfs_cap_data cap = {
                .magic_etc = VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE,
                .data = {{.permitted = 1u << CAP_NET_BIND_SERVICE}},
        };
        assert_int_equal(setxattr(p, "security.capability", &cap, XATTR_CAPS_SZ_2, 0), 0);
        free(p);

        put(root, "h\xc3\xa9llo w\xc3\xb6rld", "utf8 name");
        put(root, "latin1-caf\xe9", "not utf-8");
        char longname[201];
        memset(longname, 'n', 200);
        longname[200] = '\0';
        p = P("%s/dir/%s", root, longname);
        assert_int_equal(mkdir(p, 0755), 0);
        free(p);
        p = P("dir/%s/%s", longname, longname);
        put(root, p, "long path");
        free(p);

        /* sparse: 64 MiB with three data islands */
        p = P("%s/sparse", root);
        int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(ftruncate(fd, 64 << 20), 0);
        char blk[8192];
        fill_random(blk, sizeof(blk), 2);
        assert_int_equal(pwrite(fd, blk, sizeof(blk), 0), (ssize_t) sizeof(blk));
        assert_int_equal(pwrite(fd, blk, sizeof(blk), 10 << 20), (ssize_t) sizeof(blk));
        assert_int_equal(pwrite(fd, blk, 4096, (64 << 20) - 4096), 4096);
        close(fd);
        free(p);
        p = P("%s/allhole", root);
        fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        assert_int_equal(ftruncate(fd, 8 << 20), 0);
        close(fd);
        free(p);

        set_mtime(root, "file.txt", 1000000000, 123456789);
        set_mtime(root, "link", 1100000000, 5);
        set_mtime(root, "dir/sub", 1200000000, 999999999);
        set_mtime(root, "dir", 1300000000, 1);
}

static int write_archive(const char *src, const char *path, const struct tar_write_opts *o,
                         struct tar_stats *st, struct cryo_error **err) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        int r = tar_write_dir(src, fd, o, st, err);
        close(fd);
        return r;
}

static int extract_archive(const char *path, const char *dst, struct tar_stats *st,
                           struct cryo_error **err) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        int r = tar_extract_dir(fd, dst, st, err);
        close(fd);
        return r;
}

static void assert_same_trees(const char *a, const char *b, const char *const *ignore) {
        char *why = NULL;
        if (!tu_trees_equal(a, b, ignore, &why))
                fail_msg("trees differ: %s", why);
}

static void roundtrip(struct fixture *f, const struct tar_write_opts *o) {
        build_tree(f->src);
        char *tar = P("%s/a.tar", f->dir);
        _cleanup_error_ struct cryo_error *err = NULL;
        struct tar_stats ws, rs;
        int r = write_archive(f->src, tar, o, &ws, &err);
        if (r < 0)
                fail_msg("write: %s", err->message);
        r = extract_archive(tar, f->dst, &rs, &err);
        if (r < 0)
                fail_msg("extract: %s", err->message);
        assert_same_trees(f->src, f->dst, NULL);

        /* 13 files with data; 2 hard links to one of them */
        assert_int_equal(ws.files, 13);
        assert_int_equal(rs.files, ws.files);
        assert_int_equal(rs.entries, ws.entries);
        assert_int_equal(ws.bytes, rs.bytes);
        struct stat st;
        assert_int_equal(stat(tar, &st), 0);
        assert_int_equal((uint64_t) st.st_size, ws.archive_bytes);
        assert_int_equal(rs.archive_bytes, ws.archive_bytes);
        /* holes stay holes: the archive stays far below the 64 MiB sparse file */
        assert_true(st.st_size < (16 << 20));
        char *sp = P("%s/sparse", f->dst);
        assert_int_equal(stat(sp, &st), 0);
        assert_true(st.st_blocks * 512 < (1 << 20));
        free(sp);
        free(tar);
}

static void test_roundtrip_plain(void **state) {
        roundtrip(*state, NULL);
}

/* The comparison used everywhere really notices differences. */
static void test_compare_detects(void **state) {
        struct fixture *f = *state;
        build_tree(f->src);
        build_tree(f->dst);
        char *why = NULL;
        /* same content, different mtimes after the build */
        assert_false(tu_trees_equal(f->src, f->dst, NULL, &why));
        free(why);
        char *tar = P("%s/a.tar", f->dir);
        _cleanup_error_ struct cryo_error *err = NULL;
        assert_int_equal(write_archive(f->src, tar, NULL, NULL, &err), 0);
        tu_rm_rf(f->dst);
        mkdir(f->dst, 0755);
        assert_int_equal(extract_archive(tar, f->dst, NULL, &err), 0);
        assert_same_trees(f->src, f->dst, NULL);

        char *p = P("%s/suid", f->dst);
        assert_int_equal(chmod(p, 0755), 0);
        assert_false(tu_trees_equal(f->src, f->dst, NULL, &why));
        assert_non_null(strstr(why, "mode"));
        free(why);
        assert_int_equal(chmod(p, 04755), 0);
        free(p);
        p = P("%s/file.txt", f->dst);
        assert_int_equal(setxattr(p, "user.comment", "hi therE", 8, 0), 0);
        assert_false(tu_trees_equal(f->src, f->dst, NULL, &why));
        assert_non_null(strstr(why, "xattrs"));
        free(why);
        assert_int_equal(setxattr(p, "user.comment", "hi there", 8, 0), 0);
        free(p);
        p = P("%s/dir/hard2", f->dst);
        char *q = P("%s/dir/hard2.tmp", f->dst);
        /* break the hard link, keeping everything else */
        char *cmd = P("cp -a '%s' '%s' && mv '%s' '%s'", p, q, q, p);
        assert_int_equal(system(cmd), 0);
        free(cmd);
        assert_false(tu_trees_equal(f->src, f->dst, NULL, &why));
        assert_non_null(strstr(why, "link count"));
        free(why);
        free(p);
        free(q);
        free(tar);
}

static void test_roundtrip_zstd(void **state) {
        struct fixture *f = *state;
        struct tar_write_opts o = {.compression = TAR_COMPRESSION_ZSTD, .level = 1, .threads = 2};
        roundtrip(f, &o);
        /* it is a zstd frame that the zstd tool accepts */
        char *tar = P("%s/a.tar", f->dir);
        int fd = open(tar, O_RDONLY);
        uint8_t magic[4];
        assert_int_equal(read(fd, magic, 4), 4);
        close(fd);
        assert_memory_equal(magic, "\x28\xb5\x2f\xfd", 4);
        if (access("/usr/bin/zstd", X_OK) == 0) {
                char *cmd = P("zstd -q -t '%s'", tar);
                assert_int_equal(system(cmd), 0);
                free(cmd);
        }
        free(tar);
}

static void test_roundtrip_zstd_single_thread(void **state) {
        struct tar_write_opts o = {.compression = TAR_COMPRESSION_ZSTD, .level = 3, .threads = 0};
        roundtrip(*state, &o);
}

/* O_DIRECT output through the writer thread: block-aligned writes, the
 * unaligned tail written last, with and without compression. */
static void test_roundtrip_direct(void **state) {
        struct tar_write_opts o = {.flags = TAR_WRITE_DIRECT};
        roundtrip(*state, &o);
}

static void test_roundtrip_direct_zstd(void **state) {
        struct tar_write_opts o = {
                .compression = TAR_COMPRESSION_ZSTD, .level = 1, .threads = 2, .flags = TAR_WRITE_DIRECT};
        roundtrip(*state, &o);
}

/* GNU tar reads what we write (pax, sparse 1.0, xattrs, hard links). */
static void test_gnu_tar_reads_it(void **state) {
        struct fixture *f = *state;
        if (access("/usr/bin/tar", X_OK) != 0)
                skip();
        build_tree(f->src);
        char *tar = P("%s/a.tar", f->dir);
        _cleanup_error_ struct cryo_error *err = NULL;
        assert_int_equal(write_archive(f->src, tar, NULL, NULL, &err), 0);
        char *cmd =
                P("tar --xattrs --xattrs-include='*' --numeric-owner -xpf '%s' -C '%s' 2>&1", tar, f->dst);
        assert_int_equal(system(cmd), 0);
        assert_same_trees(f->src, f->dst, NULL);
        free(cmd);
        free(tar);
}

/* We read what GNU tar writes (pax with xattrs, sparse). */
static void test_reads_gnu_tar(void **state) {
        struct fixture *f = *state;
        if (access("/usr/bin/tar", X_OK) != 0)
                skip();
        build_tree(f->src);
        char *tar = P("%s/gnu.tar", f->dir);
        char *cmd = P("tar --format=pax --xattrs --xattrs-include='*' --sparse --numeric-owner -cf '%s' -C "
                      "'%s' . 2>&1",
                      tar, f->src);
        assert_int_equal(system(cmd), 0);
        _cleanup_error_ struct cryo_error *err = NULL;
        int r = extract_archive(tar, f->dst, NULL, &err);
        if (r < 0)
                fail_msg("extract: %s", err->message);
        assert_same_trees(f->src, f->dst, NULL);
        free(cmd);
        free(tar);
}

static void test_excludes(void **state) {
        struct fixture *f = *state;
        build_tree(f->src);
        char *tar = P("%s/a.tar", f->dir);
        const char *excl[] = {"big.bin", "/dir/sub/", NULL};
        struct tar_write_opts o = {.excludes = excl};
        _cleanup_error_ struct cryo_error *err = NULL;
        struct tar_stats st;
        assert_int_equal(write_archive(f->src, tar, &o, &st, &err), 0);
        assert_int_equal(st.skipped, 2);
        assert_int_equal(extract_archive(tar, f->dst, NULL, &err), 0);
        char *p = P("%s/big.bin", f->dst);
        assert_int_equal(access(p, F_OK), -1);
        free(p);
        p = P("%s/dir/sub", f->dst);
        assert_int_equal(access(p, F_OK), -1);
        free(p);
        p = P("%s/dir/ro_dir/x", f->dst);
        assert_int_equal(access(p, F_OK), 0);
        free(p);
        free(tar);
}

/* Streams through a pipe: writer in a child, extraction in the parent. */
static void test_pipe(void **state) {
        struct fixture *f = *state;
        build_tree(f->src);
        int pfd[2];
        assert_int_equal(pipe(pfd), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                close(pfd[0]);
                struct tar_write_opts o = {.compression = TAR_COMPRESSION_ZSTD, .level = 1, .threads = 2};
                int r = tar_write_dir(f->src, pfd[1], &o, NULL, NULL);
                _exit(r < 0 ? 1 : 0);
        }
        close(pfd[1]);
        _cleanup_error_ struct cryo_error *err = NULL;
        int r = tar_extract_dir(pfd[0], f->dst, NULL, &err);
        close(pfd[0]);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (r < 0)
                fail_msg("extract: %s", err->message);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        assert_same_trees(f->src, f->dst, NULL);
}

/* ---- hostile archives --------------------------------------------------- */

struct member {
        char type; /* 'f' file, 'd' dir, 'l' symlink, 'h' hard link */
        const char *name;
        const char *arg; /* content / link target */
};

static void make_tar(const char *path, const struct member *m) {
        struct archive *a = archive_write_new();
        archive_write_set_format_pax(a);
        assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
        for (; m->name; m++) {
                struct archive_entry *e = archive_entry_new();
                archive_entry_copy_pathname(e, m->name);
                archive_entry_set_mtime(e, 1, 0);
                switch (m->type) {
                case 'f':
                        archive_entry_set_mode(e, S_IFREG | 0644);
                        archive_entry_set_size(e, (la_int64_t) strlen(m->arg));
                        break;
                case 'd':
                        archive_entry_set_mode(e, S_IFDIR | 0755);
                        break;
                case 'l':
                        archive_entry_set_mode(e, S_IFLNK | 0777);
                        archive_entry_copy_symlink(e, m->arg);
                        break;
                case 'h':
                        archive_entry_set_mode(e, S_IFREG | 0644);
                        archive_entry_copy_hardlink(e, m->arg);
                        break;
                }
                assert_true(archive_write_header(a, e) >= ARCHIVE_WARN);
                if (m->type == 'f')
                        archive_write_data(a, m->arg, strlen(m->arg));
                archive_entry_free(e);
        }
        archive_write_close(a);
        archive_write_free(a);
}

static void expect_refused(struct fixture *f, const struct member *m, int code, const char *needle) {
        char *tar = P("%s/evil.tar", f->dir);
        make_tar(tar, m);
        _cleanup_error_ struct cryo_error *err = NULL;
        int r = extract_archive(tar, f->dst, NULL, &err);
        assert_int_equal(r, -code);
        assert_non_null(err);
        if (!strstr(err->message, needle))
                fail_msg("message '%s' lacks '%s'", err->message, needle);
        /* nothing reached the directory next to the destination */
        size_t n = 0;
        char *cmd = P("find '%s' -mindepth 1 | wc -l", f->out);
        FILE *p = popen(cmd, "r");
        assert_int_equal(fscanf(p, "%zu", &n), 1);
        pclose(p);
        assert_int_equal(n, 0);
        free(cmd);
        free(tar);
}

static void test_refuses_dotdot(void **state) {
        struct member m[] = {{'f', "../outside/x", "evil"}, {0}};
        expect_refused(*state, m, EINVAL, "'..'");
        struct member m2[] = {{'d', "a", NULL}, {'f', "a/../../outside/y", "evil"}, {0}};
        expect_refused(*state, m2, EINVAL, "'a/../../outside/y'");
}

static void test_refuses_absolute(void **state) {
        struct fixture *f = *state;
        char *name = P("%s/x", f->out);
        struct member m[] = {{'f', name, "evil"}, {0}};
        expect_refused(f, m, EINVAL, "absolute path");
        free(name);
}

static void test_refuses_symlink_parent(void **state) {
        struct fixture *f = *state;
        struct member m[] = {{'l', "link", f->out}, {'f', "link/evil", "evil"}, {0}};
        expect_refused(f, m, ELOOP, "symbolic link");
        struct member m2[] = {{'l', "up", "../outside"}, {'d', "up/d", NULL}, {0}};
        expect_refused(f, m2, ELOOP, "'up/d");
        struct member m3[] = {{'l', "l3", f->out}, {'h', "h", "l3/file"}, {0}};
        expect_refused(f, m3, ELOOP, "symbolic link");
}

static void test_refuses_hardlink_escape(void **state) {
        struct member m[] = {{'h', "h", "../outside/file"}, {0}};
        expect_refused(*state, m, EINVAL, "'..'");
}

/* An existing symlink at a member's name is replaced, never written through. */
static void test_replaces_symlink(void **state) {
        struct fixture *f = *state;
        char *victim = P("%s/victim", f->out);
        assert_int_equal(tu_write(victim, "precious", 8, 0644), 0);
        char *lnk = P("%s/file", f->dst);
        assert_int_equal(symlink(victim, lnk), 0);
        char *tar = P("%s/a.tar", f->dir);
        struct member m[] = {{'f', "file", "new content"}, {0}};
        make_tar(tar, m);
        _cleanup_error_ struct cryo_error *err = NULL;
        assert_int_equal(extract_archive(tar, f->dst, NULL, &err), 0);
        struct stat st;
        assert_int_equal(lstat(lnk, &st), 0);
        assert_true(S_ISREG(st.st_mode));
        assert_int_equal(st.st_size, 11);
        assert_int_equal(stat(victim, &st), 0);
        assert_int_equal(st.st_size, 8);
        unlink(victim);
        free(victim);
        free(lnk);
        free(tar);
}

static void test_corrupt(void **state) {
        struct fixture *f = *state;
        build_tree(f->src);
        char *tar = P("%s/a.tar.zst", f->dir);
        struct tar_write_opts o = {.compression = TAR_COMPRESSION_ZSTD, .level = 1};
        _cleanup_error_ struct cryo_error *err = NULL;
        assert_int_equal(write_archive(f->src, tar, &o, NULL, &err), 0);
        struct stat st;
        assert_int_equal(stat(tar, &st), 0);
        assert_int_equal(truncate(tar, st.st_size / 2), 0);
        int r = extract_archive(tar, f->dst, NULL, &err);
        assert_true(r < 0);
        assert_non_null(err);
        assert_non_null(strstr(err->message, "cannot extract into"));
        free(tar);
}

static void test_empty_dir(void **state) {
        struct fixture *f = *state;
        char *tar = P("%s/a.tar", f->dir);
        _cleanup_error_ struct cryo_error *err = NULL;
        struct tar_stats st;
        assert_int_equal(write_archive(f->src, tar, NULL, &st, &err), 0);
        assert_int_equal(st.entries, 0);
        assert_int_equal(st.archive_bytes, 1024);
        assert_int_equal(extract_archive(tar, f->dst, &st, &err), 0);
        assert_int_equal(st.entries, 0);
        free(tar);
}

int main(void) {
        tu_require_root();
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_roundtrip_plain, setup, teardown),
                cmocka_unit_test_setup_teardown(test_compare_detects, setup, teardown),
                cmocka_unit_test_setup_teardown(test_roundtrip_zstd, setup, teardown),
                cmocka_unit_test_setup_teardown(test_roundtrip_direct, setup, teardown),
                cmocka_unit_test_setup_teardown(test_roundtrip_direct_zstd, setup, teardown),
                cmocka_unit_test_setup_teardown(test_roundtrip_zstd_single_thread, setup, teardown),
                cmocka_unit_test_setup_teardown(test_gnu_tar_reads_it, setup, teardown),
                cmocka_unit_test_setup_teardown(test_reads_gnu_tar, setup, teardown),
                cmocka_unit_test_setup_teardown(test_excludes, setup, teardown),
                cmocka_unit_test_setup_teardown(test_pipe, setup, teardown),
                cmocka_unit_test_setup_teardown(test_refuses_dotdot, setup, teardown),
                cmocka_unit_test_setup_teardown(test_refuses_absolute, setup, teardown),
                cmocka_unit_test_setup_teardown(test_refuses_symlink_parent, setup, teardown),
                cmocka_unit_test_setup_teardown(test_refuses_hardlink_escape, setup, teardown),
                cmocka_unit_test_setup_teardown(test_replaces_symlink, setup, teardown),
                cmocka_unit_test_setup_teardown(test_corrupt, setup, teardown),
                cmocka_unit_test_setup_teardown(test_empty_dir, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
