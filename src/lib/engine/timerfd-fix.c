/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Works around criu issue #3162 in the images CRIU has just written.
 *
 * A periodic timerfd re-arms only when it is read.  One that expired while
 * the tree was frozen, and was not read yet, shows it_value 0 in /proc's
 * fdinfo, so CRIU 4.2.1 records a next expiry of 0 and on restore calls
 * timerfd_settime() with it: the timer is disarmed, delivers its pending
 * ticks once and never fires again.  Such an entry is rewritten with a next
 * expiry of 1 ns: on restore the kernel fires the timer at once (marking it
 * expired, as it was at dump time) and the application's next read re-arms
 * it with its interval.
 *
 * An entry is "expired periodic" when its next expiry is 0, its interval is
 * not, and it has unread ticks.  The ticks tell it from a timer disarmed on
 * purpose with an interval left in it (timerfd_settime() with it_value 0
 * keeps the interval but clears the ticks), which must stay disarmed.
 *
 * CRIU 4.2.1 writes timerfds into files.img (a file entry of type TIMERFD);
 * older layouts kept them in timerfd.img.  Both are handled.  An image is
 * a u32 common magic, a u32 image magic, then entries, each a u32 length
 * (host order) and a protobuf message.  Only the entries that change are
 * re-encoded; every other byte is copied as it is, and the new image
 * replaces the old one atomically.  An image with nothing to fix is not
 * touched.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "criu-files.pb-c.h"
#include "engine/engine.h"
#include "util/cleanup.h"
#include "util/fs.h"

/* CRIU's criu/include/magic.h. */
#define IMG_COMMON_MAGIC 0x54564319u
#define FILES_MAGIC      0x56303138u
#define TIMERFD_MAGIC    0x50493712u
/* CRIU's fd_types (images/fdinfo.proto). */
#define FD_TYPE_TIMERFD 17u

/* A files.img holds one short entry per open file description. */
#define MAX_IMAGE_SIZE ((size_t) 256 << 20)

enum image_kind {
        IMAGE_FILES,   /* FileEntry; timerfds have type TIMERFD and tfd */
        IMAGE_TIMERFD, /* TimerfdEntry (older layouts) */
};

static const struct image_desc {
        const char *name;
        uint32_t magic;
        enum image_kind kind;
} images[] = {
        {"files.img", FILES_MAGIC, IMAGE_FILES},
        {"timerfd.img", TIMERFD_MAGIC, IMAGE_TIMERFD},
};

static bool expired_periodic(const TimerfdEntry *t) {
        return t->vsec == 0 && t->vnsec == 0 && (t->isec != 0 || t->insec != 0) && t->ticks > 0;
}

static void file_entry_freep(FileEntry **e) {
        if (*e)
                file_entry__free_unpacked(*e, NULL);
}
static void timerfd_entry_freep(TimerfdEntry **e) {
        if (*e)
                timerfd_entry__free_unpacked(*e, NULL);
}

/*
 * Decodes one entry.  If it needs the fix, returns 1 with the re-encoded
 * entry in *out (malloc'ed, *out_len bytes); otherwise returns 0.
 */
static int fix_entry(enum image_kind kind, const uint8_t *data, size_t len, uint8_t **out, size_t *out_len) {
        __attribute__((cleanup(file_entry_freep))) FileEntry *fe = NULL;
        __attribute__((cleanup(timerfd_entry_freep))) TimerfdEntry *te = NULL;
        TimerfdEntry *t;
        if (kind == IMAGE_FILES) {
                fe = file_entry__unpack(NULL, len, data);
                if (!fe)
                        return -EBADMSG;
                if (fe->type != FD_TYPE_TIMERFD || !fe->tfd)
                        return 0;
                t = fe->tfd;
        } else {
                te = timerfd_entry__unpack(NULL, len, data);
                if (!te)
                        return -EBADMSG;
                t = te;
        }
        if (!expired_periodic(t))
                return 0;
        t->vnsec = 1;

        size_t size = fe ? file_entry__get_packed_size(fe) : timerfd_entry__get_packed_size(te);
        if (size > UINT32_MAX)
                return -EOVERFLOW;
        uint8_t *buf = malloc(size ? size : 1);
        if (!buf)
                return -ENOMEM;
        *out_len = fe ? file_entry__pack(fe, buf) : timerfd_entry__pack(te, buf);
        *out = buf;
        return 1;
}

static int append(FILE *f, const void *data, size_t len) {
        return len == 0 || fwrite(data, len, 1, f) == 1 ? 0 : -ENOMEM;
}

/*
 * Rewrites buf (an image of `desc`) into *out with every expired periodic
 * timerfd fixed; *fixed counts them (0: *out is not set).
 */
static int fix_buffer(const struct image_desc *desc, const uint8_t *buf, size_t len, char **out,
                      size_t *out_len, unsigned *fixed, struct cryo_error **err) {
        uint32_t magic;
        size_t pos = 0;
        *fixed = 0;
        if (len < sizeof(magic))
                return cryo_error_set(err, EBADMSG, "%s is too short for an image (%zu bytes)", desc->name,
                                      len);
        memcpy(&magic, buf, sizeof(magic));
        pos += sizeof(magic);
        if (magic == IMG_COMMON_MAGIC) {
                if (len < pos + sizeof(magic))
                        return cryo_error_set(err, EBADMSG, "%s has no image magic", desc->name);
                memcpy(&magic, buf + pos, sizeof(magic));
                pos += sizeof(magic);
        }
        if (magic != desc->magic)
                return cryo_error_set(err, EBADMSG, "%s has magic %#x, not %#x: not a CRIU image cryo knows",
                                      desc->name, magic, desc->magic);

        _cleanup_free_ char *obuf = NULL;
        size_t olen = 0;
        _cleanup_fclose_ FILE *o = open_memstream(&obuf, &olen);
        if (!o)
                return cryo_error_errno(err, errno, "open_memstream");
        if (append(o, buf, pos) < 0)
                return cryo_error_set(err, ENOMEM, "out of memory");

        for (unsigned n = 0; pos < len; n++) {
                uint32_t size;
                if (len - pos < sizeof(size))
                        return cryo_error_set(err, EBADMSG, "%s: truncated entry length at offset %zu",
                                              desc->name, pos);
                memcpy(&size, buf + pos, sizeof(size));
                if (size > len - pos - sizeof(size))
                        return cryo_error_set(err, EBADMSG,
                                              "%s: entry %u at offset %zu (%u bytes) runs past the end",
                                              desc->name, n, pos, size);
                const uint8_t *entry = buf + pos + sizeof(size);
                _cleanup_free_ uint8_t *fixed_entry = NULL;
                size_t fixed_len = 0;
                int r = fix_entry(desc->kind, entry, size, &fixed_entry, &fixed_len);
                if (r == -EBADMSG)
                        return cryo_error_set(err, EBADMSG, "%s: cannot decode entry %u at offset %zu",
                                              desc->name, n, pos);
                if (r < 0)
                        return cryo_error_set(err, -r, "%s: cannot re-encode entry %u", desc->name, n);
                if (r > 0) {
                        uint32_t new_size = (uint32_t) fixed_len;
                        if (append(o, &new_size, sizeof(new_size)) < 0 ||
                            append(o, fixed_entry, fixed_len) < 0)
                                return cryo_error_set(err, ENOMEM, "out of memory");
                        (*fixed)++;
                } else if (append(o, buf + pos, sizeof(size) + size) < 0) {
                        return cryo_error_set(err, ENOMEM, "out of memory");
                }
                pos += sizeof(size) + size;
        }
        if (*fixed == 0)
                return 0;
        if (fflush(o) != 0)
                return cryo_error_set(err, ENOMEM, "out of memory");
        /* open_memstream() updates obuf and olen on fflush and fclose. */
        fclose(steal_pointer(&o));
        *out = steal_pointer(&obuf);
        *out_len = olen;
        return 0;
}

static int fix_image(int images_fd, const struct image_desc *desc, unsigned *fixed,
                     struct cryo_error **err) {
        *fixed = 0;
        _cleanup_close_ int fd = openat(images_fd, desc->name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0) {
                if (errno == ENOENT)
                        return 0;
                return cryo_error_errno(err, errno, "cannot open %s", desc->name);
        }
        struct stat st;
        if (fstat(fd, &st) < 0)
                return cryo_error_errno(err, errno, "cannot stat %s", desc->name);
        if (!S_ISREG(st.st_mode))
                return cryo_error_set(err, EBADMSG, "%s is not a regular file", desc->name);
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        int r = fs_read_fd(fd, MAX_IMAGE_SIZE, &buf, &len, err);
        if (r < 0) {
                cryo_error_prefix(err, "cannot read %s", desc->name);
                return r;
        }

        _cleanup_free_ char *out = NULL;
        size_t out_len = 0;
        r = fix_buffer(desc, (const uint8_t *) buf, len, &out, &out_len, fixed, err);
        if (r < 0 || *fixed == 0)
                return r;

        char tmp[64];
        snprintf(tmp, sizeof(tmp), ".%s.cryo-tmp", desc->name);
        r = fs_write_file(images_fd, tmp, out, out_len, st.st_mode & 07777, err);
        if (r < 0) {
                (void) unlinkat(images_fd, tmp, 0);
                return r;
        }
        if (renameat(images_fd, tmp, images_fd, desc->name) < 0) {
                r = cryo_error_errno(err, errno, "cannot replace %s", desc->name);
                (void) unlinkat(images_fd, tmp, 0);
                return r;
        }
        return 0;
}

int engine_fix_expired_timerfds(int images_fd, unsigned *fixed, struct cryo_error **err) {
        unsigned total = 0;
        for (size_t i = 0; i < ARRAY_SIZE(images); i++) {
                unsigned n = 0;
                int r = fix_image(images_fd, &images[i], &n, err);
                if (r < 0)
                        return r;
                total += n;
        }
        if (fixed)
                *fixed = total;
        return 0;
}
