/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * engine_fix_expired_timerfds(): CRIU images built here with protobuf-c,
 * in the layout CRIU 4.2.1 writes (files.img) and the older one
 * (timerfd.img).  Only expired periodic timerfds change, by one field, and
 * every other byte of the image stays as it was.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <protobuf-c/protobuf-c.h>

#include "engine/engine.h"
#include "util/cleanup.h"
#include "util/fs.h"

#define IMG_COMMON_MAGIC 0x54564319u
#define FILES_MAGIC      0x56303138u
#define TIMERFD_MAGIC    0x50493712u
#define FD_TYPE_REG      1u
#define FD_TYPE_TIMERFD  17u
#define TFD_ABSTIME      1u

struct fixture {
        char dir[64];
        int dirfd;
};

static int setup(void **state) {
        struct fixture *f = calloc(1, sizeof(*f));
        assert_non_null(f);
        snprintf(f->dir, sizeof(f->dir), "/tmp/cryo-test-tfd.XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        f->dirfd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(f->dirfd >= 0);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        struct fixture *f = *state;
        close(f->dirfd);
        assert_int_equal(fs_rm_rf(f->dir), 0);
        free(f);
        return 0;
}

/* An image being built: its bytes grow in a memstream. */
struct image {
        char *buf;
        size_t len;
        FILE *f;
};

static void image_begin(struct image *img, uint32_t magic) {
        img->buf = NULL;
        img->len = 0;
        img->f = open_memstream(&img->buf, &img->len);
        assert_non_null(img->f);
        uint32_t m[2] = {IMG_COMMON_MAGIC, magic};
        assert_int_equal(fwrite(m, sizeof(m), 1, img->f), 1);
}

static void image_put(struct image *img, const void *entry, size_t len) {
        uint32_t size = (uint32_t) len;
        assert_int_equal(fwrite(&size, sizeof(size), 1, img->f), 1);
        if (len)
                assert_int_equal(fwrite(entry, len, 1, img->f), 1);
}

static void image_end(struct image *img) {
        assert_int_equal(fclose(img->f), 0);
        img->f = NULL;
}

/*
 * The messages of the library's criu-files.proto, reached through
 * protobuf-c's reflection: the generated header is not ordered before the
 * compilation of unit tests, so this test does without it.
 */
extern const ProtobufCMessageDescriptor file_entry__descriptor;
extern const ProtobufCMessageDescriptor timerfd_entry__descriptor;
extern const ProtobufCMessageDescriptor fown_entry__descriptor;

static const ProtobufCFieldDescriptor *field(const ProtobufCMessageDescriptor *d, const char *name) {
        const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(d, name);
        assert_non_null(f);
        return f;
}

static void *field_ptr(const ProtobufCMessage *m, const char *name, ProtobufCType type) {
        const ProtobufCFieldDescriptor *f = field(m->descriptor, name);
        assert_int_equal(f->type, type);
        return (char *) m + f->offset;
}

static ProtobufCMessage *msg_new(const ProtobufCMessageDescriptor *d) {
        ProtobufCMessage *m = calloc(1, d->sizeof_message);
        assert_non_null(m);
        d->message_init(m);
        return m;
}

static void set_u32(ProtobufCMessage *m, const char *name, uint32_t v) {
        *(uint32_t *) field_ptr(m, name, PROTOBUF_C_TYPE_UINT32) = v;
}
static void set_u64(ProtobufCMessage *m, const char *name, uint64_t v) {
        *(uint64_t *) field_ptr(m, name, PROTOBUF_C_TYPE_UINT64) = v;
}
static uint64_t get_u64(const ProtobufCMessage *m, const char *name) {
        return *(uint64_t *) field_ptr(m, name, PROTOBUF_C_TYPE_UINT64);
}
static ProtobufCMessage **msg_field(const ProtobufCMessage *m, const char *name) {
        return (ProtobufCMessage **) field_ptr(m, name, PROTOBUF_C_TYPE_MESSAGE);
}

/* A timerfd; times are {sec, nsec}: next expiry (time left) and interval. */
struct tfd {
        uint32_t id, settime_flags;
        uint64_t ticks, vsec, vnsec, isec, insec;
};

#define TFD(id, settime_flags, ticks, vsec, vnsec, isec, insec) \
        ((struct tfd){(id), (settime_flags), (ticks), (vsec), (vnsec), (isec), (insec)})

/* Packs t as a TimerfdEntry, or as a FileEntry holding it; returns its size. */
static size_t pack_timerfd(const struct tfd *t, bool file_entry, uint8_t *buf, size_t cap) {
        ProtobufCMessage *fown = msg_new(&fown_entry__descriptor);
        ProtobufCMessage *te = msg_new(&timerfd_entry__descriptor);
        set_u32(te, "id", t->id);
        set_u32(te, "flags", 02004002); /* O_RDWR | O_NONBLOCK | O_CLOEXEC */
        *msg_field(te, "fown") = fown;
        set_u32(te, "clockid", 1); /* CLOCK_MONOTONIC */
        set_u64(te, "ticks", t->ticks);
        set_u32(te, "settime_flags", t->settime_flags);
        set_u64(te, "vsec", t->vsec);
        set_u64(te, "vnsec", t->vnsec);
        set_u64(te, "isec", t->isec);
        set_u64(te, "insec", t->insec);
        ProtobufCMessage *top = te, *fe = NULL;
        if (file_entry) {
                fe = msg_new(&file_entry__descriptor);
                set_u32(fe, "type", FD_TYPE_TIMERFD);
                set_u32(fe, "id", t->id);
                *msg_field(fe, "tfd") = te;
                top = fe;
        }
        size_t len = protobuf_c_message_get_packed_size(top);
        assert_true(len <= cap);
        assert_int_equal(protobuf_c_message_pack(top, buf), len);
        free(fe);
        free(te);
        free(fown);
        return len;
}

/* A files.img entry for `t`, with `extra` bytes (unknown fields) after it. */
static void put_file_timerfd(struct image *img, struct tfd t, const uint8_t *extra, size_t extra_len) {
        uint8_t buf[256];
        size_t len = pack_timerfd(&t, true, buf, sizeof(buf) - extra_len);
        if (extra_len)
                memcpy(buf + len, extra, extra_len);
        image_put(img, buf, len + extra_len);
}

static void put_timerfd(struct image *img, struct tfd t) {
        uint8_t buf[256];
        image_put(img, buf, pack_timerfd(&t, false, buf, sizeof(buf)));
}

/*
 * A regular file's entry as CRIU writes it, by hand: type REG, id 1, and a
 * reg field (3, a message this subset does not know) holding id 1, flags
 * 0x8000, pos 0, name "/x".
 */
static const uint8_t reg_entry[] = {0x08, 0x01, 0x10, 0x01, 0x1a, 0x0c, 0x08, 0x01, 0x10,
                                    0x80, 0x80, 0x02, 0x18, 0x00, 0x32, 0x02, '/',  'x'};
/* An unknown varint field (number 40, value 7) of some later CRIU. */
static const uint8_t future_field[] = {0xc0, 0x02, 0x07};

/* Writes the image `name` with mode 0600. */
static void write_image(struct fixture *f, const char *name, const struct image *img) {
        assert_int_equal(fs_write_file(f->dirfd, name, img->buf, img->len, 0600, NULL), 0);
}

static void assert_image(struct fixture *f, const char *name, const struct image *want) {
        _cleanup_free_ char *got = NULL;
        size_t len = 0;
        assert_int_equal(fs_read_file(f->dirfd, name, 1 << 20, &got, &len, NULL), 0);
        assert_int_equal(len, want->len);
        assert_memory_equal(got, want->buf, len);
}

static ino_t inode_of(struct fixture *f, const char *name) {
        struct stat st;
        assert_int_equal(fstatat(f->dirfd, name, &st, 0), 0);
        return st.st_ino;
}

/* Only the images, no temporary file left behind. */
static void assert_no_temp_files(struct fixture *f) {
        _cleanup_closedir_ DIR *d = opendir(f->dir);
        assert_non_null(d);
        struct dirent *e;
        while ((e = readdir(d)))
                assert_null(strstr(e->d_name, "tmp"));
}

/* The images dir as CRIU 4.2.1 leaves it for the timers of wl-timers and more. */
static void build_files_img(struct image *img, bool fixed) {
        /* vnsec of the entries that need the fix: 1 once fixed. */
        uint64_t v = fixed ? 1 : 0;
        image_begin(img, FILES_MAGIC);
        image_put(img, reg_entry, sizeof(reg_entry));
        /* Expired while frozen, unread (3 ticks pending), 50 ms interval;
         * with a field from a later CRIU that must survive the rewrite. */
        put_file_timerfd(img, TFD(2, 0, 3, 0, v, 0, 50000000), future_field, sizeof(future_field));
        /* Armed: next expiry in 20 ms. */
        put_file_timerfd(img, TFD(3, 0, 0, 0, 20000000, 0, 50000000), NULL, 0);
        /* One-shot, expired: stays expired, nothing to re-arm. */
        put_file_timerfd(img, TFD(4, 0, 1, 0, 0, 0, 0), NULL, 0);
        /* Disarmed on purpose (it_value 0) with an interval kept, no ticks:
         * must stay disarmed. */
        put_file_timerfd(img, TFD(5, 0, 0, 0, 0, 2, 0), NULL, 0);
        /* Expired, absolute time, 1 s interval. */
        put_file_timerfd(img, TFD(6, TFD_ABSTIME, 1, 0, v, 1, 0), NULL, 0);
        image_put(img, reg_entry, sizeof(reg_entry));
        image_end(img);
}

static void test_files_img(void **state) {
        struct fixture *f = *state;
        struct image before, want;
        build_files_img(&before, false);
        build_files_img(&want, true);
        /* One byte per fixed entry: vnsec 0 -> 1. */
        assert_int_equal(before.len, want.len);
        write_image(f, "files.img", &before);

        unsigned fixed = 99;
        _cleanup_error_ struct cryo_error *err = NULL;
        assert_int_equal(engine_fix_expired_timerfds(f->dirfd, &fixed, &err), 0);
        assert_null(err);
        assert_int_equal(fixed, 2);
        assert_image(f, "files.img", &want);
        struct stat st;
        assert_int_equal(fstatat(f->dirfd, "files.img", &st, 0), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
        assert_no_temp_files(f);

        /* Decoded, the fixed entry differs in its next expiry alone. */
        const uint8_t *p = (const uint8_t *) want.buf + 8 + 4 + sizeof(reg_entry);
        uint32_t size;
        memcpy(&size, p, sizeof(size));
        ProtobufCMessage *fe = protobuf_c_message_unpack(&file_entry__descriptor, NULL, size, p + 4);
        assert_non_null(fe);
        assert_int_equal(*(uint32_t *) field_ptr(fe, "type", PROTOBUF_C_TYPE_UINT32), FD_TYPE_TIMERFD);
        const ProtobufCMessage *tfd = *msg_field(fe, "tfd");
        assert_non_null(tfd);
        assert_int_equal(get_u64(tfd, "vsec"), 0);
        assert_int_equal(get_u64(tfd, "vnsec"), 1);
        assert_int_equal(get_u64(tfd, "isec"), 0);
        assert_int_equal(get_u64(tfd, "insec"), 50000000);
        assert_int_equal(get_u64(tfd, "ticks"), 3);
        assert_int_equal(fe->n_unknown_fields, 1);
        protobuf_c_message_free_unpacked(fe, NULL);

        /* Fixed once: a second run finds nothing and leaves the file be. */
        ino_t ino = inode_of(f, "files.img");
        assert_int_equal(engine_fix_expired_timerfds(f->dirfd, &fixed, NULL), 0);
        assert_int_equal(fixed, 0);
        assert_int_equal(inode_of(f, "files.img"), ino);
        free(before.buf);
        free(want.buf);
}

static void test_timerfd_img(void **state) {
        struct fixture *f = *state;
        struct image img[2];
        for (int fixed = 0; fixed < 2; fixed++) {
                image_begin(&img[fixed], TIMERFD_MAGIC);
                put_timerfd(&img[fixed], TFD(1, 0, 0, 0, 30000000, 0, 50000000));
                put_timerfd(&img[fixed], TFD(2, 0, 7, 0, fixed, 0, 10000000));
                image_end(&img[fixed]);
        }
        write_image(f, "timerfd.img", &img[0]);
        unsigned fixed = 0;
        assert_int_equal(engine_fix_expired_timerfds(f->dirfd, &fixed, NULL), 0);
        assert_int_equal(fixed, 1);
        assert_image(f, "timerfd.img", &img[1]);
        assert_no_temp_files(f);
        free(img[0].buf);
        free(img[1].buf);
}

static void test_nothing_to_fix(void **state) {
        struct fixture *f = *state;
        unsigned fixed = 99;
        /* No images at all (and a NULL count is fine). */
        assert_int_equal(engine_fix_expired_timerfds(f->dirfd, NULL, NULL), 0);
        assert_int_equal(engine_fix_expired_timerfds(f->dirfd, &fixed, NULL), 0);
        assert_int_equal(fixed, 0);

        /* Images without an expired periodic timerfd are not rewritten. */
        struct image img;
        image_begin(&img, FILES_MAGIC);
        image_put(&img, reg_entry, sizeof(reg_entry));
        put_file_timerfd(&img, TFD(2, 0, 0, 1, 0, 1, 0), NULL, 0);
        image_end(&img);
        write_image(f, "files.img", &img);
        ino_t ino = inode_of(f, "files.img");
        assert_int_equal(engine_fix_expired_timerfds(f->dirfd, &fixed, NULL), 0);
        assert_int_equal(fixed, 0);
        assert_int_equal(inode_of(f, "files.img"), ino);
        assert_image(f, "files.img", &img);
        free(img.buf);

        /* A header alone: an image with no entries. */
        image_begin(&img, FILES_MAGIC);
        image_end(&img);
        write_image(f, "files.img", &img);
        assert_int_equal(engine_fix_expired_timerfds(f->dirfd, &fixed, NULL), 0);
        assert_int_equal(fixed, 0);
        free(img.buf);
}

/* Each broken image is refused with -EBADMSG and left as it was. */
static void assert_refused(struct fixture *f, const struct image *img, const char *what) {
        write_image(f, "files.img", img);
        unsigned fixed = 99;
        _cleanup_error_ struct cryo_error *err = NULL;
        assert_int_equal(engine_fix_expired_timerfds(f->dirfd, &fixed, &err), -EBADMSG);
        assert_non_null(err);
        assert_non_null(strstr(err->message, "files.img"));
        assert_non_null(strstr(err->message, what));
        assert_image(f, "files.img", img);
        assert_no_temp_files(f);
}

static void test_bad_images(void **state) {
        struct fixture *f = *state;
        struct image img;

        image_begin(&img, 0x12345678);
        image_end(&img);
        assert_refused(f, &img, "magic");
        free(img.buf);

        /* An expired timerfd first, so there is something to fix. */
        image_begin(&img, FILES_MAGIC);
        put_file_timerfd(&img, TFD(2, 0, 1, 0, 0, 1, 0), NULL, 0);
        uint32_t size = 100;
        assert_int_equal(fwrite(&size, sizeof(size), 1, img.f), 1);
        assert_int_equal(fwrite("abc", 3, 1, img.f), 1);
        image_end(&img);
        assert_refused(f, &img, "runs past the end");
        free(img.buf);

        image_begin(&img, FILES_MAGIC);
        put_file_timerfd(&img, TFD(2, 0, 1, 0, 0, 1, 0), NULL, 0);
        assert_int_equal(fwrite("ab", 2, 1, img.f), 1);
        image_end(&img);
        assert_refused(f, &img, "truncated");
        free(img.buf);

        /* Not a file entry: its required fields are missing. */
        static const uint8_t junk[] = {0x18, 0x05};
        image_begin(&img, FILES_MAGIC);
        put_file_timerfd(&img, TFD(2, 0, 1, 0, 0, 1, 0), NULL, 0);
        image_put(&img, junk, sizeof(junk));
        image_end(&img);
        assert_refused(f, &img, "cannot decode entry 1");
        free(img.buf);

        assert_int_equal(unlinkat(f->dirfd, "files.img", 0), 0);
        assert_int_equal(mkdirat(f->dirfd, "files.img", 0700), 0);
        assert_int_equal(engine_fix_expired_timerfds(f->dirfd, NULL, NULL), -EBADMSG);
        assert_int_equal(unlinkat(f->dirfd, "files.img", AT_REMOVEDIR), 0);
}

/* The subset keeps CRIU's field numbers (images/fdinfo.proto, timerfd.proto,
 * fown.proto): the wire format is all that ties it to CRIU. */
static void test_upstream_field_numbers(void **state) {
        (void) state;
        static const struct {
                const ProtobufCMessageDescriptor *d;
                const char *name;
                unsigned id;
        } want[] = {
                {&file_entry__descriptor, "type", 1},
                {&file_entry__descriptor, "id", 2},
                {&file_entry__descriptor, "tfd", 12},
                {&timerfd_entry__descriptor, "id", 1},
                {&timerfd_entry__descriptor, "flags", 2},
                {&timerfd_entry__descriptor, "fown", 3},
                {&timerfd_entry__descriptor, "clockid", 4},
                {&timerfd_entry__descriptor, "ticks", 5},
                {&timerfd_entry__descriptor, "settime_flags", 6},
                {&timerfd_entry__descriptor, "vsec", 7},
                {&timerfd_entry__descriptor, "vnsec", 8},
                {&timerfd_entry__descriptor, "isec", 9},
                {&timerfd_entry__descriptor, "insec", 10},
                {&fown_entry__descriptor, "uid", 1},
                {&fown_entry__descriptor, "euid", 2},
                {&fown_entry__descriptor, "signum", 3},
                {&fown_entry__descriptor, "pid_type", 4},
                {&fown_entry__descriptor, "pid", 5},
        };
        for (size_t i = 0; i < ARRAY_SIZE(want); i++)
                assert_int_equal(field(want[i].d, want[i].name)->id, want[i].id);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_upstream_field_numbers),
                cmocka_unit_test_setup_teardown(test_files_img, setup, teardown),
                cmocka_unit_test_setup_teardown(test_timerfd_img, setup, teardown),
                cmocka_unit_test_setup_teardown(test_nothing_to_fix, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bad_images, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
