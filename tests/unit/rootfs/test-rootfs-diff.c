/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Capture an overlay upperdir and apply it onto a fresh copy of the lower
 * layer, on real overlay mounts; then compare the two merged trees.
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <linux/capability.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cmocka.h>

#include "rootfs/rootfs.h"
#include "tree.h"

#define P(...) tu_path(__VA_ARGS__)

struct fx {
        char *dir, *lower, *upper, *work, *merged, *out;
        char *upper2, *work2, *merged2, *plain;
        bool mounted, mounted2;
};

static int setup(void **state) {
        struct fx *f = calloc(1, sizeof(*f));
        f->dir = tu_mkdtemp("rootfs");
        f->lower = P("%s/lower", f->dir);
        f->upper = P("%s/upper", f->dir);
        f->work = P("%s/work", f->dir);
        f->merged = P("%s/merged", f->dir);
        f->out = P("%s/out", f->dir);
        f->upper2 = P("%s/upper2", f->dir);
        f->work2 = P("%s/work2", f->dir);
        f->merged2 = P("%s/merged2", f->dir);
        f->plain = P("%s/plain", f->dir);
        const char *dirs[] = {f->lower,  f->upper, f->work,    f->merged, f->out,
                              f->upper2, f->work2, f->merged2, f->plain};
        for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
                assert_int_equal(mkdir(dirs[i], 0755), 0);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        struct fx *f = *state;
        if (f->mounted)
                umount2(f->merged, MNT_DETACH);
        if (f->mounted2)
                umount2(f->merged2, MNT_DETACH);
        tu_scratch_remove(f->dir);
        char **p[] = {&f->dir, &f->lower,  &f->upper, &f->work,    &f->merged,
                      &f->out, &f->upper2, &f->work2, &f->merged2, &f->plain};
        for (size_t i = 0; i < sizeof(p) / sizeof(p[0]); i++)
                free(*p[i]);
        free(f);
        return 0;
}

static void put(const char *root, const char *rel, const char *content, mode_t mode) {
        char *p = P("%s/%s", root, rel);
        char *slash = strrchr(p, '/');
        *slash = '\0';
        assert_int_equal(tu_mkdirs(p, 0755), 0);
        *slash = '/';
        int r = tu_write(p, content, strlen(content), mode);
        if (r < 0)
                fail_msg("write %s: %s", p, strerror(-r));
        free(p);
}

static void mk(const char *root, const char *rel, mode_t mode) {
        char *p = P("%s/%s", root, rel);
        assert_int_equal(tu_mkdirs(p, mode), 0);
        free(p);
}

static void rm_rf(const char *root, const char *rel) {
        char *p = P("%s/%s", root, rel);
        tu_rm_rf(p);
        free(p);
}

static void populate_lower(const char *l) {
        put(l, "etc/motd", "welcome\n", 0644);
        put(l, "etc/keep", "keep\n", 0644);
        put(l, "etc/passwd", "root:x:0:0::/root:/bin/sh\n", 0644);
        put(l, "bin/tool", "v1\n", 0755);
        put(l, "dir_opaque/a", "a", 0644);
        put(l, "dir_opaque/sub/c", "c", 0644);
        put(l, "dir_del/x", "x", 0644);
        put(l, "dir_del/y/z", "z", 0644);
        put(l, "file_to_dir", "was a file", 0644);
        put(l, "dir_to_file/inner", "inner", 0644);
        put(l, "usr/lib/libx.so", "ELF", 0644);
        mk(l, "var/log", 0755);
        mk(l, "proc_like", 0555);
        mk(l, "dev/shm", 01777);
        char *p = P("%s/lnk", l);
        assert_int_equal(symlink("etc/keep", p), 0);
        free(p);
}

static void set_time(const char *root, const char *rel, time_t sec, long nsec) {
        char *p = P("%s/%s", root, rel);
        struct timespec ts[2] = {{sec, nsec}, {sec, nsec}};
        assert_int_equal(utimensat(AT_FDCWD, p, ts, AT_SYMLINK_NOFOLLOW), 0);
        free(p);
}

/* What a container does to its root file system. */
static void mutate(const char *m) {
        char *p, *q;
        /* add */
        put(m, "newdir/newfile", "new\n", 0644);
        p = P("%s/newdir/newfile", m);
        assert_int_equal(setxattr(p, "user.test", "value", 5, 0), 0);
        free(p);
        put(m, "etc/newconf", "conf", 0600);
        /* modify */
        put(m, "bin/tool", "v2 -- longer\n", 0755);
        p = P("%s/etc/keep", m);
        assert_int_equal(chown(p, 1001, 1002), 0);
        assert_int_equal(chmod(p, 0600), 0);
        free(p);
        p = P("%s/var/log", m);
        assert_int_equal(chmod(p, 0700), 0);
        free(p);
        /* delete: whiteouts */
        p = P("%s/etc/motd", m);
        assert_int_equal(unlink(p), 0);
        free(p);
        rm_rf(m, "dir_del");
        /* delete and re-create a directory: opaque */
        rm_rf(m, "dir_opaque");
        put(m, "dir_opaque/only_new", "fresh", 0644);
        /* a file becomes a directory (opaque), a directory becomes a file */
        p = P("%s/file_to_dir", m);
        assert_int_equal(unlink(p), 0);
        free(p);
        put(m, "file_to_dir/f", "f", 0644);
        rm_rf(m, "dir_to_file");
        put(m, "dir_to_file", "now a file", 0644);
        /* the lower symlink becomes a directory */
        p = P("%s/lnk", m);
        assert_int_equal(unlink(p), 0);
        free(p);
        put(m, "lnk/inside", "i", 0644);
        /* symlinks */
        p = P("%s/newdir/rel_link", m);
        assert_int_equal(symlink("newfile", p), 0);
        free(p);
        p = P("%s/abs_link", m);
        assert_int_equal(symlink("/etc/keep", p), 0);
        free(p);
        /* hard links */
        put(m, "newdir/hl1", "shared inode", 0644);
        p = P("%s/newdir/hl1", m);
        q = P("%s/newdir/hl2", m);
        assert_int_equal(link(p, q), 0);
        free(p);
        free(q);
        /* file capabilities */
        put(m, "newdir/capbin", "cap", 0755);
        p = P("%s/newdir/capbin", m);
        struct vfs_cap_data cap = {
                .magic_etc = VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE,
                .data = {{.permitted = 1u << CAP_NET_RAW}},
        };
        assert_int_equal(setxattr(p, "security.capability", &cap, XATTR_CAPS_SZ_2, 0), 0);
        free(p);
        /* setuid with an odd owner */
        put(m, "usr/bin/suid", "#!/bin/sh\n", 0755);
        p = P("%s/usr/bin/suid", m);
        assert_int_equal(chown(p, 4321, 8765), 0);
        assert_int_equal(chmod(p, 04755), 0);
        free(p);
        /* fifo, device node, socket */
        mk(m, "run", 0755);
        p = P("%s/run/fifo", m);
        assert_int_equal(mkfifo(p, 0620), 0);
        free(p);
        mk(m, "dev2", 0755);
        p = P("%s/dev2/null", m);
        assert_int_equal(mknod(p, S_IFCHR | 0666, makedev(1, 3)), 0);
        free(p);
        int s = socket(AF_UNIX, SOCK_STREAM, 0);
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        p = P("%s/run/sock", m);
        if (strlen(p) < sizeof(sa.sun_path)) {
                strcpy(sa.sun_path, p);
                assert_int_equal(bind(s, (struct sockaddr *) &sa, sizeof(sa)), 0);
        }
        close(s);
        free(p);
        /* content of mount points (excluded) */
        put(m, "proc_like/junk", "hidden by a mount", 0644);
        put(m, "etc/hostname", "bind-mounted", 0644);
        put(m, "dev/shm/segment", "tmpfs", 0600);
        /* times last, deepest first */
        set_time(m, "newdir/newfile", 1500000000, 123456789);
        set_time(m, "newdir/rel_link", 1500000001, 1);
        set_time(m, "newdir", 1500000002, 2);
        set_time(m, "dir_opaque", 1500000003, 3);
}

static const char *const excludes[] = {"/proc_like", "/etc/hostname", "/dev/shm", NULL};
/* not captured on purpose: excluded mount points and the socket */
static const char *const ignore[] = {"proc_like", "etc/hostname", "dev/shm", "run/sock", NULL};

static void capture(struct fx *f, const struct rootfs_capture_opts *o, struct tar_stats *st) {
        int dfd = open(f->out, O_RDONLY | O_DIRECTORY);
        assert_true(dfd >= 0);
        _cleanup_error_ struct cryo_error *err = NULL;
        int r = rootfs_diff_capture(f->upper, dfd, o, st, &err);
        close(dfd);
        if (r < 0)
                fail_msg("capture: %s", err->message);
}

static void apply(struct fx *f, const char *root, struct tar_stats *st) {
        char *tar = P("%s/" ROOTFS_DIFF_TAR, f->out), *del = P("%s/" ROOTFS_DELETED_FILES, f->out);
        _cleanup_error_ struct cryo_error *err = NULL;
        int r = rootfs_diff_apply(root, tar, del, st, &err);
        if (r < 0)
                fail_msg("apply: %s", err->message);
        free(tar);
        free(del);
}

static void assert_same(const char *a, const char *b) {
        char *why = NULL;
        if (!tu_trees_equal(a, b, ignore, &why))
                fail_msg("trees differ: %s", why);
}

static char *read_text(const char *path) {
        FILE *fp = fopen(path, "r");
        assert_non_null(fp);
        char *buf = calloc(1, 65536);
        size_t n = fread(buf, 1, 65535, fp);
        fclose(fp);
        buf[n] = '\0';
        return buf;
}

/* Names in a tar, one per line. */
static char *tar_names(const char *path) {
        struct archive *a = archive_read_new();
        archive_read_support_format_tar(a);
        assert_int_equal(archive_read_open_filename(a, path, 65536), ARCHIVE_OK);
        char *out = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&out, &len);
        struct archive_entry *e;
        while (archive_read_next_header(a, &e) == ARCHIVE_OK)
                fprintf(m, "%s\n", archive_entry_pathname(e));
        fclose(m);
        archive_read_free(a);
        return out;
}

static void copy_tree(const char *src, const char *dst) {
        char *tar = P("%s.copy.tar", dst);
        int fd = open(tar, O_RDWR | O_CREAT | O_TRUNC, 0600);
        _cleanup_error_ struct cryo_error *err = NULL;
        assert_int_equal(tar_write_dir(src, fd, NULL, NULL, &err), 0);
        assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
        assert_int_equal(tar_extract_dir(fd, dst, NULL, &err), 0);
        close(fd);
        unlink(tar);
        free(tar);
}

static void test_roundtrip(void **state) {
        struct fx *f = *state;
        populate_lower(f->lower);
        copy_tree(f->lower, f->plain);
        assert_int_equal(tu_mount_overlay(f->lower, f->upper, f->work, f->merged, NULL), 0);
        f->mounted = true;
        mutate(f->merged);

        struct rootfs_capture_opts o = {.excludes = excludes};
        struct tar_stats cs;
        capture(f, &o, &cs);

        /* deleted.files: whiteouts and opaque directories, absolute paths */
        char *del = P("%s/" ROOTFS_DELETED_FILES, f->out);
        char *text = read_text(del);
        assert_string_equal(text, "[\"/dir_del\",\"/dir_opaque\",\"/etc/motd\",\"/file_to_dir\",\"/lnk\"]");
        free(text);
        free(del);
        assert_int_equal(cs.deleted, 5);
        assert_int_equal(cs.opaque_dirs, 3);
        /* excluded: proc_like, etc/hostname, dev/shm; the socket */
        assert_int_equal(cs.skipped, 4);

        char *tar = P("%s/" ROOTFS_DIFF_TAR, f->out);
        char *names = tar_names(tar);
        assert_null(strstr(names, "proc_like"));
        assert_null(strstr(names, "hostname"));
        assert_null(strstr(names, "shm"));
        assert_null(strstr(names, "motd"));
        assert_null(strstr(names, "sock"));
        assert_null(strstr(names, "dir_del"));
        assert_non_null(strstr(names, "newdir/hl2\n"));
        assert_true(names[0] != '/' && strncmp(names, "./", 2) != 0);
        free(names);
        assert_false(rootfs_diff_is_empty(tar, NULL));
        char *del_path = P("%s/" ROOTFS_DELETED_FILES, f->out);
        assert_false(rootfs_diff_is_empty(NULL, del_path));
        free(del_path);
        free(tar);

        /* onto a fresh overlay of the same image */
        assert_int_equal(tu_mount_overlay(f->lower, f->upper2, f->work2, f->merged2, NULL), 0);
        f->mounted2 = true;
        struct tar_stats as;
        apply(f, f->merged2, &as);
        assert_int_equal(as.deleted, 5);
        assert_int_equal(as.entries, cs.entries);
        assert_int_equal(as.files, cs.files);
        assert_int_equal(as.bytes, cs.bytes);
        assert_same(f->merged, f->merged2);

        /* onto a plain copy of the image */
        apply(f, f->plain, NULL);
        assert_same(f->merged, f->plain);

        /* hard links stay hard links */
        char *a = P("%s/newdir/hl1", f->plain), *b = P("%s/newdir/hl2", f->plain);
        struct stat sa, sb;
        assert_int_equal(stat(a, &sa), 0);
        assert_int_equal(stat(b, &sb), 0);
        assert_int_equal(sa.st_ino, sb.st_ino);
        free(a);
        free(b);
}

static void test_empty_upper(void **state) {
        struct fx *f = *state;
        populate_lower(f->lower);
        struct tar_stats st;
        capture(f, NULL, &st);
        assert_int_equal(st.entries, 0);
        char *del = P("%s/" ROOTFS_DELETED_FILES, f->out);
        char *text = read_text(del);
        assert_string_equal(text, "[]");
        free(text);
        copy_tree(f->lower, f->plain);
        apply(f, f->plain, &st);
        assert_same(f->lower, f->plain);

        /* missing files are nothing to do (Podman omits them when empty) */
        _cleanup_error_ struct cryo_error *err = NULL;
        char *none = P("%s/none", f->dir);
        assert_int_equal(rootfs_diff_apply(f->plain, none, none, NULL, &err), 0);
        assert_int_equal(rootfs_diff_apply(f->plain, NULL, NULL, NULL, &err), 0);

        /* ... and the restore skips applying such diffs */
        char *tar = P("%s/" ROOTFS_DIFF_TAR, f->out);
        assert_true(rootfs_diff_is_empty(tar, del));
        assert_true(rootfs_diff_is_empty(none, none));
        assert_true(rootfs_diff_is_empty(NULL, NULL));
        /* a deletion alone is a change */
        assert_int_equal(tu_write(del, "[\"/etc/motd\"]", 13, 0600), 0);
        assert_false(rootfs_diff_is_empty(tar, del));
        /* what cannot be parsed is left to rootfs_diff_apply() to report */
        assert_int_equal(tu_write(del, "{not json", 9, 0600), 0);
        assert_false(rootfs_diff_is_empty(tar, del));
        assert_false(rootfs_diff_is_empty(none, del));
        /* a tar cut short of its first block, or a gzip layer, is not empty */
        assert_int_equal(tu_write(tar, "\x1f\x8b", 2, 0600), 0);
        assert_false(rootfs_diff_is_empty(tar, none));
        assert_int_equal(tu_write(tar, "", 0, 0600), 0);
        assert_true(rootfs_diff_is_empty(tar, none));
        free(del);
        free(tar);
        free(none);
}

/* redirect_dir=on (renamed lower directories) and metacopy=on (data left in
 * the lower layer) need the merged view. */
static void test_redirect_metacopy(void **state) {
        struct fx *f = *state;
        populate_lower(f->lower);
        copy_tree(f->lower, f->plain);
        int r = tu_mount_overlay(f->lower, f->upper, f->work, f->merged, ",redirect_dir=on,metacopy=on");
        if (r < 0)
                skip(); /* kernel without these features */
        f->mounted = true;
        char *a = P("%s/dir_opaque", f->merged), *b = P("%s/renamed", f->merged);
        assert_int_equal(rename(a, b), 0);
        free(a);
        free(b);
        put(f->merged, "renamed/added", "added", 0644);
        a = P("%s/etc/passwd", f->merged);
        assert_int_equal(chmod(a, 0640), 0); /* metadata-only copy-up */
        free(a);

        /* the upper really uses the features */
        char v[256];
        a = P("%s/renamed", f->upper);
        assert_true(lgetxattr(a, "trusted.overlay.redirect", v, sizeof(v)) > 0);
        free(a);
        a = P("%s/etc/passwd", f->upper);
        bool metacopy = lgetxattr(a, "trusted.overlay.metacopy", v, sizeof(v)) >= 0;
        free(a);

        int dfd = open(f->out, O_RDONLY | O_DIRECTORY);
        struct cryo_error *err = NULL;
        r = rootfs_diff_capture(f->upper, dfd, NULL, NULL, &err);
        assert_int_equal(r, -EOPNOTSUPP);
        assert_non_null(strstr(err->message, "merged"));
        cryo_error_freep(&err);

        struct rootfs_capture_opts o = {.merged_dir = f->merged};
        struct tar_stats st;
        r = rootfs_diff_capture(f->upper, dfd, &o, &st, &err);
        close(dfd);
        if (r < 0)
                fail_msg("capture: %s", err->message);
        char *del = P("%s/" ROOTFS_DELETED_FILES, f->out);
        char *text = read_text(del);
        assert_string_equal(text, "[\"/dir_opaque\",\"/renamed\"]");
        free(text);
        free(del);

        apply(f, f->plain, NULL);
        char *why = NULL;
        if (!tu_trees_equal(f->merged, f->plain, NULL, &why))
                fail_msg("trees differ: %s (metacopy used: %d)", why, metacopy);
}

static void write_deleted(struct fx *f, const char *json) {
        char *p = P("%s/" ROOTFS_DELETED_FILES, f->out);
        assert_int_equal(tu_write(p, json, strlen(json), 0644), 0);
        free(p);
}

static void test_hostile_deleted_files(void **state) {
        struct fx *f = *state;
        put(f->dir, "precious", "keep me", 0644);
        put(f->plain, "inside/file", "x", 0644);
        char *lnk = P("%s/escape", f->plain);
        assert_int_equal(symlink(f->dir, lnk), 0);
        free(lnk);
        char *del = P("%s/" ROOTFS_DELETED_FILES, f->out);

        struct {
                const char *json;
                int code;
                const char *needle;
        } cases[] = {
                {"[\"/../precious\"]", EINVAL, "'..'"}, {"[\"/inside/../../precious\"]", EINVAL, "'..'"},
                {"[\"/\"]", EINVAL, "root directory"},  {"{\"a\": 1}", EINVAL, "JSON array"},
                {"[1]", EINVAL, "not a string"},        {"[\"/x\"", EINVAL, "invalid JSON"},
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                write_deleted(f, cases[i].json);
                struct cryo_error *err = NULL;
                int r = rootfs_diff_apply(f->plain, NULL, del, NULL, &err);
                assert_int_equal(r, -cases[i].code);
                if (!strstr(err->message, cases[i].needle))
                        fail_msg("case %zu: '%s' lacks '%s'", i, err->message, cases[i].needle);
                cryo_error_freep(&err);
        }

        /* through a symlink: skipped, nothing outside touched; the symlink
         * itself can be deleted */
        write_deleted(f, "[\"/escape/precious\", \"/inside\", \"/nonexistent/x\"]");
        _cleanup_error_ struct cryo_error *err = NULL;
        struct tar_stats st;
        assert_int_equal(rootfs_diff_apply(f->plain, NULL, del, &st, &err), 0);
        assert_int_equal(st.deleted, 3);
        char *p = P("%s/precious", f->dir);
        assert_int_equal(access(p, F_OK), 0);
        free(p);
        p = P("%s/inside", f->plain);
        assert_int_equal(access(p, F_OK), -1);
        free(p);
        write_deleted(f, "[\"/escape\"]");
        assert_int_equal(rootfs_diff_apply(f->plain, NULL, del, &st, &err), 0);
        p = P("%s/precious", f->dir);
        assert_int_equal(access(p, F_OK), 0);
        free(p);
        free(del);
}

/* A hostile rootfs-diff.tar is refused like any archive. */
static void test_hostile_tar(void **state) {
        struct fx *f = *state;
        char *tar = P("%s/" ROOTFS_DIFF_TAR, f->out);
        struct archive *a = archive_write_new();
        archive_write_set_format_pax(a);
        assert_int_equal(archive_write_open_filename(a, tar), ARCHIVE_OK);
        struct archive_entry *e = archive_entry_new();
        archive_entry_copy_pathname(e, "etc");
        archive_entry_set_mode(e, S_IFLNK | 0777);
        archive_entry_copy_symlink(e, f->dir);
        archive_write_header(a, e);
        archive_entry_clear(e);
        archive_entry_copy_pathname(e, "etc/precious");
        archive_entry_set_mode(e, S_IFREG | 0644);
        archive_entry_set_size(e, 4);
        archive_write_header(a, e);
        archive_write_data(a, "evil", 4);
        archive_entry_free(e);
        archive_write_close(a);
        archive_write_free(a);

        _cleanup_error_ struct cryo_error *err = NULL;
        int r = rootfs_diff_apply(f->plain, tar, NULL, NULL, &err);
        assert_int_equal(r, -ELOOP);
        assert_non_null(strstr(err->message, "symbolic link"));
        assert_non_null(strstr(err->message, "etc/precious"));
        char *p = P("%s/precious", f->dir);
        assert_int_equal(access(p, F_OK), -1);
        free(p);
        free(tar);
}

static void add_member(struct archive *a, const char *name, mode_t mode, const char *data) {
        struct archive_entry *e = archive_entry_new();
        archive_entry_copy_pathname(e, name);
        archive_entry_set_mode(e, mode);
        archive_entry_set_mtime(e, 1600000000, 0);
        if (S_ISREG(mode))
                archive_entry_set_size(e, (la_int64_t) strlen(data));
        assert_true(archive_write_header(a, e) >= ARCHIVE_WARN);
        if (S_ISREG(mode) && data[0])
                assert_int_equal(archive_write_data(a, data, strlen(data)), (la_ssize_t) strlen(data));
        archive_entry_free(e);
}

/*
 * containerd's CRI stores the container's rw layer as rootfs-diff.tar: a
 * gzip-compressed OCI layer whose deletions are ".wh." whiteouts, with no
 * deleted.files.  Those are applied; in a plain tar (Podman, cryo) a file
 * named ".wh.x" is just a file.
 */
static void test_oci_layer_whiteouts(void **state) {
        struct fx *f = *state;
        put(f->plain, "etc/motd", "welcome", 0644);
        put(f->plain, "etc/keep", "keep", 0644);
        put(f->plain, "d/old", "old", 0644);
        put(f->plain, "d/sub/older", "older", 0644);

        char *tar = P("%s/" ROOTFS_DIFF_TAR, f->out);
        struct archive *a = archive_write_new();
        archive_write_set_format_pax_restricted(a);
        archive_write_add_filter_gzip(a);
        assert_int_equal(archive_write_open_filename(a, tar), ARCHIVE_OK);
        add_member(a, "etc/", S_IFDIR | 0755, "");
        add_member(a, "etc/.wh.motd", S_IFREG | 0644, "");
        add_member(a, "d/", S_IFDIR | 0755, "");
        add_member(a, "d/early", S_IFREG | 0644, "created before the marker");
        add_member(a, "d/.wh..wh..opq", S_IFREG | 0644, "");
        add_member(a, "d/new", S_IFREG | 0644, "new");
        archive_write_close(a);
        archive_write_free(a);

        _cleanup_error_ struct cryo_error *err = NULL;
        struct tar_stats st;
        int r = rootfs_diff_apply(f->plain, tar, NULL, &st, &err);
        if (r < 0)
                fail_msg("apply: %s", err->message);
        const char *gone[] = {"etc/motd", "etc/.wh.motd", "d/old", "d/sub", "d/.wh..wh..opq"};
        const char *kept[] = {"etc/keep", "d/early", "d/new"};
        for (size_t i = 0; i < sizeof(gone) / sizeof(gone[0]); i++) {
                char *p = P("%s/%s", f->plain, gone[i]);
                if (access(p, F_OK) == 0)
                        fail_msg("%s still exists", gone[i]);
                free(p);
        }
        for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++) {
                char *p = P("%s/%s", f->plain, kept[i]);
                if (access(p, F_OK) != 0)
                        fail_msg("%s is missing", kept[i]);
                free(p);
        }
        assert_int_equal(st.deleted, 1);
        assert_int_equal(st.opaque_dirs, 1);

        /* the same names in a plain tar are ordinary files */
        a = archive_write_new();
        archive_write_set_format_pax(a);
        assert_int_equal(archive_write_open_filename(a, tar), ARCHIVE_OK);
        add_member(a, "etc/.wh.keep", S_IFREG | 0644, "");
        archive_write_close(a);
        archive_write_free(a);
        assert_int_equal(rootfs_diff_apply(f->plain, tar, NULL, NULL, &err), 0);
        char *p = P("%s/etc/keep", f->plain);
        assert_int_equal(access(p, F_OK), 0);
        free(p);
        p = P("%s/etc/.wh.keep", f->plain);
        assert_int_equal(access(p, F_OK), 0);
        free(p);
        free(tar);
}

int main(void) {
        tu_require_root();
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
                cmocka_unit_test_setup_teardown(test_empty_upper, setup, teardown),
                cmocka_unit_test_setup_teardown(test_redirect_metacopy, setup, teardown),
                cmocka_unit_test_setup_teardown(test_hostile_deleted_files, setup, teardown),
                cmocka_unit_test_setup_teardown(test_hostile_tar, setup, teardown),
                cmocka_unit_test_setup_teardown(test_oci_layer_whiteouts, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
