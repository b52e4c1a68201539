/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * wl-files --dir DIR [--file-locks]: open files survive checkpoint/restore.
 *
 *  - the working directory is DIR
 *  - DIR/data opened O_RDWR at offset 4321, plus a dup() of it sharing the
 *    offset, plus a separate O_RDONLY description at offset 100
 *  - DIR/append.log opened O_WRONLY|O_APPEND
 *  - an unlinked file still open, with 200000 bytes of content, at offset 777
 *  - with --file-locks: flock(LOCK_EX) on DIR/flock and a POSIX write lock
 *    on bytes 0..9 of DIR/plock (needs criu --file-locks); a forked child
 *    checks both locks still conflict
 * Verification never changes a file's size (CRIU checks sizes on restore).
 */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define DATA_LEN   10000
#define DATA_OFF   4321
#define RO_OFF     100
#define GHOST_LEN  200000
#define GHOST_OFF  777
#define DATA_SEED  0xda7a
#define GHOST_SEED 0x6057

static int fd_data, fd_dup, fd_ro, fd_app, fd_ghost, fd_flock = -1, fd_plock = -1;
static ino_t data_ino;
static char cwd[PATH_MAX];

static int open_or_die(const char *path, int flags) {
        int fd = open(path, flags, 0644);
        if (fd < 0)
                wl_die_errno("open %s", path);
        return fd;
}

static void setup(void) {
        if (!wl_opt.dir)
                wl_die("--dir is required");
        if (chdir(wl_opt.dir))
                wl_die_errno("chdir %s", wl_opt.dir);
        if (!getcwd(cwd, sizeof(cwd)))
                wl_die_errno("getcwd");

        /* one byte more than the largest file: a longer file reads len + 1 */
        static unsigned char buf[GHOST_LEN + 1];
        fd_data = open_or_die("data", O_RDWR | O_CREAT | O_TRUNC);
        wl_fill(buf, DATA_LEN, DATA_SEED);
        if (wl_write_full(fd_data, buf, DATA_LEN) || lseek(fd_data, DATA_OFF, SEEK_SET) != DATA_OFF)
                wl_die_errno("write data");
        fd_dup = dup(fd_data);
        fd_ro = open_or_die("data", O_RDONLY);
        if (fd_dup < 0 || lseek(fd_ro, RO_OFF, SEEK_SET) != RO_OFF)
                wl_die_errno("dup/lseek");
        struct stat st;
        if (fstat(fd_data, &st))
                wl_die_errno("fstat");
        data_ino = st.st_ino;

        fd_app = open_or_die("append.log", O_WRONLY | O_APPEND | O_CREAT | O_TRUNC);
        if (wl_write_full(fd_app, "first line\n", 11))
                wl_die_errno("write append.log");

        fd_ghost = open_or_die("ghost", O_RDWR | O_CREAT | O_TRUNC);
        wl_fill(buf, GHOST_LEN, GHOST_SEED);
        if (wl_write_full(fd_ghost, buf, GHOST_LEN) || lseek(fd_ghost, GHOST_OFF, SEEK_SET) != GHOST_OFF)
                wl_die_errno("write ghost");
        if (unlink("ghost"))
                wl_die_errno("unlink ghost");

        if (wl_opt.file_locks) {
                fd_flock = open_or_die("flock", O_RDWR | O_CREAT);
                if (flock(fd_flock, LOCK_EX | LOCK_NB))
                        wl_die_errno("flock");
                fd_plock = open_or_die("plock", O_RDWR | O_CREAT);
                struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10};
                if (fcntl(fd_plock, F_SETLK, &fl))
                        wl_die_errno("fcntl F_SETLK");
        }
}

static int check_offset(struct wl_verdict *v, const char *what, int fd, off_t want) {
        off_t off = lseek(fd, 0, SEEK_CUR);
        if (off != want)
                return wl_fail(v, "%s: offset is %lld, want %lld", what, (long long) off, (long long) want);
        return 0;
}

static int check_content(struct wl_verdict *v, const char *what, int fd, size_t len, uint64_t seed) {
        /* one byte more than the largest file: a longer file reads len + 1 */
        static unsigned char buf[GHOST_LEN + 1];
        ssize_t n = pread(fd, buf, len + 1, 0);
        if (n < 0)
                return wl_fail(v, "%s: pread: %m", what);
        if ((size_t) n != len)
                return wl_fail(v, "%s: has %zd bytes, want %zu", what, n, len);
        size_t off = wl_check_fill(buf, len, seed);
        if (off != (size_t) -1)
                return wl_fail(v, "%s: content differs at byte %zu", what, off);
        return 0;
}

static int check_flags(struct wl_verdict *v, const char *what, int fd, int acc, int extra) {
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0)
                return wl_fail(v, "%s: fd %d is not open: %m", what, fd);
        if ((fl & O_ACCMODE) != acc || (fl & extra) != extra)
                return wl_fail(v, "%s: flags 0%o, want access 0%o with 0%o", what, fl, acc, extra);
        return 0;
}

/* A child (a different process and open file description) must conflict. */
static int check_locks(struct wl_verdict *v) {
        pid_t parent = getpid();
        pid_t pid = fork();
        if (pid < 0)
                return wl_fail(v, "fork: %m");
        if (pid == 0) {
                int fd = open("flock", O_RDONLY);
                if (fd < 0)
                        _exit(20);
                if (flock(fd, LOCK_SH | LOCK_NB) == 0)
                        _exit(10);
                if (errno != EWOULDBLOCK)
                        _exit(21);
                int pfd = open("plock", O_RDWR);
                struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10};
                if (pfd < 0 || fcntl(pfd, F_GETLK, &fl))
                        _exit(22);
                if (fl.l_type == F_UNLCK)
                        _exit(11);
                if (fl.l_pid != parent)
                        _exit(12);
                _exit(0);
        }
        int status;
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return wl_fail(v, "waitpid: %m");
        int code = WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
        switch (code) {
        case 0:
                return 0;
        case 10:
                return wl_fail(v, "flock on DIR/flock is no longer held");
        case 11:
                return wl_fail(v, "POSIX lock on DIR/plock is no longer held");
        case 12:
                return wl_fail(v, "POSIX lock on DIR/plock is held by another pid");
        default:
                return wl_fail(v, "lock checker failed with code %d", code);
        }
}

static int verify(struct wl_verdict *v) {
        char now[PATH_MAX];
        if (!getcwd(now, sizeof(now)))
                return wl_fail(v, "getcwd: %m");
        if (strcmp(now, cwd))
                return wl_fail(v, "cwd is %s, want %s", now, cwd);

        if (check_flags(v, "data", fd_data, O_RDWR, 0) || check_flags(v, "dup", fd_dup, O_RDWR, 0) ||
            check_flags(v, "ro", fd_ro, O_RDONLY, 0) ||
            check_flags(v, "append", fd_app, O_WRONLY, O_APPEND) ||
            check_flags(v, "ghost", fd_ghost, O_RDWR, 0))
                return -1;

        struct stat st;
        if (fstat(fd_data, &st))
                return wl_fail(v, "fstat data: %m");
        if (st.st_ino != data_ino)
                return wl_fail(v, "data: fd now refers to inode %lu, want %lu", (unsigned long) st.st_ino,
                               (unsigned long) data_ino);
        if (check_offset(v, "data", fd_data, DATA_OFF) || check_offset(v, "dup", fd_dup, DATA_OFF) ||
            check_offset(v, "ro", fd_ro, RO_OFF))
                return -1;
        /* The dup must share the open file description (one offset). */
        lseek(fd_data, 1, SEEK_CUR);
        off_t shared = lseek(fd_dup, 0, SEEK_CUR);
        off_t ro_off = lseek(fd_ro, 0, SEEK_CUR);
        lseek(fd_data, DATA_OFF, SEEK_SET);
        if (shared != DATA_OFF + 1)
                return wl_fail(v, "dup no longer shares the offset of the data fd");
        if (ro_off != RO_OFF)
                return wl_fail(v, "the O_RDONLY fd shares its offset with the O_RDWR fd");
        if (check_content(v, "data", fd_data, DATA_LEN, DATA_SEED))
                return -1;
        /* Writable: rewrite the first bytes with what they already are. */
        unsigned char head[64];
        if (pread(fd_data, head, sizeof(head), 0) != sizeof(head) ||
            pwrite(fd_data, head, sizeof(head), 0) != sizeof(head))
                return wl_fail(v, "data: cannot rewrite: %m");

        if (fstat(fd_ghost, &st))
                return wl_fail(v, "fstat ghost: %m");
        if (st.st_nlink != 0)
                return wl_fail(v, "ghost: unlinked file has %lu links after restore",
                               (unsigned long) st.st_nlink);
        char link[64], target[PATH_MAX];
        snprintf(link, sizeof(link), "/proc/self/fd/%d", fd_ghost);
        ssize_t tl = readlink(link, target, sizeof(target) - 1);
        target[tl > 0 ? tl : 0] = '\0';
        if (!strstr(target, "(deleted)"))
                return wl_fail(v, "ghost: fd points to '%s', not a deleted file", target);
        if (check_offset(v, "ghost", fd_ghost, GHOST_OFF) ||
            check_content(v, "ghost", fd_ghost, GHOST_LEN, GHOST_SEED))
                return -1;

        if (wl_opt.file_locks && check_locks(v))
                return -1;

        wl_note(v, "locks=%s", wl_opt.file_locks ? "yes" : "no");
        return 0;
}

static void corrupt(void) {
        lseek(fd_ghost, 1, SEEK_CUR);
}

int main(int argc, char **argv) {
        wl_init(argc, argv);
        setup();
        pid_t me = getpid();
        wl_ready(&me, 1, NULL);
        static const struct wl_ops ops = {.verify = verify, .corrupt = corrupt};
        wl_run(&ops);
}
