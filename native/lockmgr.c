/* wucme lock manager: the six VMS DLM modes on Linux open-file-description locks.
 *
 * The encoding (docs/lock-manager.md, wucme/_native/lockmgr_pure.py is the twin):
 * byte Q queues waiting new requests; A, B, P, W carry the modes; L guards the
 * value block, a state byte at 64 and LM_LVB_SIZE bytes at 72.
 *
 *   held:  CR  A:r              PW  A:r B:w          EX  A:w
 *          CW  A:r B:r W:r      PR  A:r B:r P:r
 *   taken on the way (momentary): CW takes P:w before W:r, PR takes W:w after P:r.
 *
 * wait_ms: 0 = no wait (-EAGAIN), < 0 = wait forever (F_OFD_SETLKW, no polling),
 * > 0 = wait at most that long (polls with a 1..50 ms backoff, -ETIMEDOUT).
 * A signal ends a wait with -EINTR and nothing of the request held.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lockmgr.h"

#ifndef F_OFD_GETLK
#define F_OFD_GETLK 36
#define F_OFD_SETLK 37
#define F_OFD_SETLKW 38
#endif

enum { BQ = 0, BA = 1, BB = 2, BP = 3, BW = 4, BL = 5, NBYTES = 5 };
enum { LVB_STATE_AT = 64, LVB_VALUE_AT = 72 };
enum { NOWAIT_TRIES = 200 };

struct step { int byte; short type; };

/* The steps of each mode, in byte order; the held state follows from them. */
static const struct step STEPS[6][4] = {
    [LM_NL] = {{-1, 0}},
    [LM_CR] = {{BA, F_RDLCK}, {-1, 0}},
    [LM_CW] = {{BA, F_RDLCK}, {BB, F_RDLCK}, {BP, F_WRLCK}, {BW, F_RDLCK}},
    [LM_PR] = {{BA, F_RDLCK}, {BB, F_RDLCK}, {BP, F_RDLCK}, {BW, F_WRLCK}},
    [LM_PW] = {{BA, F_RDLCK}, {BB, F_WRLCK}, {-1, 0}},
    [LM_EX] = {{BA, F_WRLCK}, {-1, 0}},
};

static const short HELD[6][NBYTES] = {
    [LM_NL] = {F_UNLCK, F_UNLCK, F_UNLCK, F_UNLCK, F_UNLCK},
    [LM_CR] = {F_UNLCK, F_RDLCK, F_UNLCK, F_UNLCK, F_UNLCK},
    [LM_CW] = {F_UNLCK, F_RDLCK, F_RDLCK, F_UNLCK, F_RDLCK},
    [LM_PR] = {F_UNLCK, F_RDLCK, F_RDLCK, F_RDLCK, F_UNLCK},
    [LM_PW] = {F_UNLCK, F_RDLCK, F_WRLCK, F_UNLCK, F_UNLCK},
    [LM_EX] = {F_UNLCK, F_WRLCK, F_UNLCK, F_UNLCK, F_UNLCK},
};

static int strength(short type)
{
    return type == F_WRLCK ? 2 : type == F_RDLCK ? 1 : 0;
}

static int setlk(int fd, int cmd, short type, int byte, int len)
{
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = type;
    fl.l_whence = SEEK_SET;
    fl.l_start = byte;
    fl.l_len = len;
    if (fcntl(fd, cmd, &fl) == 0)
        return 0;
    return errno == EACCES ? -EAGAIN : -errno;
}

/* One try at moving from oldmode to newmode without waiting: everything the new
 * mode needs is taken (in byte order) before anything of the old is let go, so
 * a failure restores the old locks by downgrades and unlocks only. */
static int attempt(int fd, int oldmode, int newmode, int *fbyte, short *ftype)
{
    short cur[NBYTES];
    int b, i, r;

    memcpy(cur, HELD[oldmode], sizeof cur);
    for (i = 0; i < 4 && STEPS[newmode][i].byte >= 0; i++) {
        const struct step *s = &STEPS[newmode][i];
        if (strength(cur[s->byte]) >= strength(s->type))
            continue;
        r = setlk(fd, F_OFD_SETLK, s->type, s->byte, 1);
        if (r < 0) {
            for (b = 0; b < NBYTES; b++)
                if (cur[b] != HELD[oldmode][b])
                    setlk(fd, F_OFD_SETLK, HELD[oldmode][b], b, 1);
            *fbyte = s->byte;
            *ftype = s->type;
            return r;
        }
        cur[s->byte] = s->type;
    }
    for (b = 0; b < NBYTES; b++)
        if (cur[b] != HELD[newmode][b])
            setlk(fd, F_OFD_SETLK, HELD[newmode][b], b, 1);
    return 0;
}

/* A no-wait failure on P or W against a write lock is another request's
 * momentary step, gone in microseconds: worth another try. */
static int transient(int fd, int byte, short type)
{
    struct flock fl;
    if (byte != BP && byte != BW)
        return 0;
    memset(&fl, 0, sizeof fl);
    fl.l_type = type;
    fl.l_whence = SEEK_SET;
    fl.l_start = byte;
    fl.l_len = 1;
    if (fcntl(fd, F_OFD_GETLK, &fl) < 0)
        return 0;
    return fl.l_type != F_RDLCK;
}

static int nowait(int fd, int oldmode, int newmode)
{
    int fbyte, tries, r;
    short ftype;
    for (tries = 0;; tries++) {
        r = attempt(fd, oldmode, newmode, &fbyte, &ftype);
        if (r != -EAGAIN || tries >= NOWAIT_TRIES || !transient(fd, fbyte, ftype))
            return r;
        sched_yield();
    }
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleep for the next backoff step, no later than the deadline. */
static int pause_until(long long deadline, int *backoff)
{
    long long left = deadline - now_ms();
    struct timespec ts;
    if (left <= 0)
        return -ETIMEDOUT;
    if (left > *backoff)
        left = *backoff;
    ts.tv_sec = left / 1000;
    ts.tv_nsec = (left % 1000) * 1000000;
    if (*backoff < 50)
        *backoff *= 2;
    return nanosleep(&ts, NULL) == 0 ? 0 : -errno;
}

/* Wait until the conversion is granted.  Forever: block in the kernel on the
 * byte that refused, let it go again and retry.  Bounded: poll. */
static int wait_for(int fd, int oldmode, int newmode, long long deadline)
{
    int fbyte, backoff = 1, r;
    short ftype;
    for (;;) {
        r = attempt(fd, oldmode, newmode, &fbyte, &ftype);
        if (r != -EAGAIN)
            return r;
        if (deadline < 0) {
            r = setlk(fd, F_OFD_SETLKW, ftype, fbyte, 1);
            if (r < 0)
                return r;
            setlk(fd, F_OFD_SETLK, HELD[oldmode][fbyte], fbyte, 1);
        } else if ((r = pause_until(deadline, &backoff)) < 0) {
            return r;
        }
    }
}

static long long deadline_of(int wait_ms)
{
    return wait_ms < 0 ? -1 : now_ms() + wait_ms;
}

static int valid_mode(int mode)
{
    return mode >= LM_NL && mode <= LM_EX;
}

int lm_open(const char *path, int perm)
{
    int fd;
    do
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, perm);
    while (fd < 0 && errno == EINTR);
    return fd < 0 ? -errno : fd;
}

/* A new request: waiting ones queue on Q, so they are granted in turn and
 * never hold a mode byte while they sleep; no-wait ones do not queue. */
int lm_lock(int fd, int mode, int wait_ms)
{
    long long deadline;
    int backoff = 1, r;

    if (!valid_mode(mode))
        return -EINVAL;
    if (mode == LM_NL)
        return 0;
    if (wait_ms == 0)
        return nowait(fd, LM_NL, mode);
    deadline = deadline_of(wait_ms);
    if (deadline < 0) {
        if ((r = setlk(fd, F_OFD_SETLKW, F_WRLCK, BQ, 1)) < 0)
            return r;
    } else {
        while ((r = setlk(fd, F_OFD_SETLK, F_WRLCK, BQ, 1)) == -EAGAIN)
            if ((r = pause_until(deadline, &backoff)) < 0)
                return r;
        if (r < 0)
            return r;
    }
    r = wait_for(fd, LM_NL, mode, deadline);
    setlk(fd, F_OFD_SETLK, F_UNLCK, BQ, 1);
    return r;
}

/* A conversion keeps its old mode until the new one is granted and does not
 * queue behind new requests (the DLM's conversion queue comes first). */
int lm_convert(int fd, int oldmode, int newmode, int wait_ms)
{
    if (!valid_mode(oldmode) || !valid_mode(newmode))
        return -EINVAL;
    if (oldmode == newmode)
        return 0;
    if (wait_ms == 0)
        return nowait(fd, oldmode, newmode);
    return wait_for(fd, oldmode, newmode, deadline_of(wait_ms));
}

int lm_unlock(int fd)
{
    return setlk(fd, F_OFD_SETLK, F_UNLCK, 0, NBYTES + 1);
}

/* Read the value block under a read lock on L; returns LM_LVB_VALID or
 * LM_LVB_INVALID.  HELD counts as valid while a PW holder (the only writer
 * a reader can meet) still holds B, and as invalid once it has died. */
int lm_read_lvb(int fd, unsigned char *buf, int len)
{
    unsigned char rec[LVB_VALUE_AT - LVB_STATE_AT + LM_LVB_SIZE];
    struct flock fl;
    ssize_t n;
    int r, state;

    if (len != LM_LVB_SIZE)
        return -EINVAL;
    if ((r = setlk(fd, F_OFD_SETLKW, F_RDLCK, BL, 1)) < 0)
        return r;
    memset(rec, 0, sizeof rec);
    do
        n = pread(fd, rec, sizeof rec, LVB_STATE_AT);
    while (n < 0 && errno == EINTR);
    r = n < 0 ? -errno : 0;
    state = rec[0];
    if (r == 0 && state == LM_LVB_HELD) {
        memset(&fl, 0, sizeof fl);
        fl.l_type = F_WRLCK;
        fl.l_whence = SEEK_SET;
        fl.l_start = BB;
        fl.l_len = 1;
        if (fcntl(fd, F_OFD_GETLK, &fl) < 0)
            r = -errno;
        else
            state = fl.l_type == F_WRLCK ? LM_LVB_VALID : LM_LVB_INVALID;
    }
    setlk(fd, F_OFD_SETLK, F_UNLCK, BL, 1);
    if (r < 0)
        return r;
    memcpy(buf, rec + (LVB_VALUE_AT - LVB_STATE_AT), LM_LVB_SIZE);
    return state == LM_LVB_VALID ? LM_LVB_VALID : LM_LVB_INVALID;
}

/* Write the state byte, and the value first when buf is given, under a write lock on L. */
static int write_all(int fd, const unsigned char *p, size_t len, off_t at)
{
    ssize_t n;
    while (len > 0) {
        n = pwrite(fd, p, len, at);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        p += n;
        len -= (size_t)n;
        at += n;
    }
    return 0;
}

int lm_write_lvb(int fd, const unsigned char *buf, int len, int state)
{
    unsigned char st = (unsigned char)state;
    int r;

    if ((buf != NULL && len != LM_LVB_SIZE) || (buf == NULL && len != 0)
        || state < LM_LVB_VALID || state > LM_LVB_INVALID)
        return -EINVAL;
    if ((r = setlk(fd, F_OFD_SETLKW, F_WRLCK, BL, 1)) < 0)
        return r;
    if (buf != NULL)
        r = write_all(fd, buf, LM_LVB_SIZE, LVB_VALUE_AT);
    if (r == 0)
        r = write_all(fd, &st, 1, LVB_STATE_AT);
    setlk(fd, F_OFD_SETLK, F_UNLCK, BL, 1);
    return r;
}

int lm_close(int fd)
{
    return close(fd) == 0 ? 0 : -errno;
}
