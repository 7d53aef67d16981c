/* wucme relay: see splice.h.  Linux only (splice(2), since 2.6.17). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "splice.h"

#define SR_CHUNK (1 << 16)

struct sr_dir {
    int src, dst;       /* bytes go from src to dst */
    int pipe[2];
    long pending;       /* bytes in the pipe, not yet written to dst */
    int eof;            /* src sent EOF */
    int shut;           /* dst was shut down for writing */
};

/* One step of a direction: what poll() said of its two sockets.  -1 on a failure. */
static int sr_step(struct sr_dir *d, short src_ev, short dst_ev)
{
    if (dst_ev && d->pending > 0) {
        ssize_t n = splice(d->pipe[0], NULL, d->dst, NULL, (size_t)d->pending,
                           SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n > 0)
            d->pending -= n;
        else if (n < 0 && errno != EAGAIN && errno != EINTR)
            return -1;
    }
    if (src_ev && !d->eof && d->pending < SR_CHUNK) {
        ssize_t n = splice(d->src, NULL, d->pipe[1], NULL, SR_CHUNK,
                           SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n > 0)
            d->pending += n;
        else if (n == 0)
            d->eof = 1;
        else if (errno != EAGAIN && errno != EINTR)
            return -1;
    }
    if (d->eof && d->pending == 0 && !d->shut) {
        d->shut = 1;
        shutdown(d->dst, SHUT_WR);  /* a peer already gone is found by the other direction */
    }
    return 0;
}

int splice_relay(int front, int back, int idle_ms)
{
    struct sr_dir dir[2] = {
        {front, back, {-1, -1}, 0, 0, 0},
        {back, front, {-1, -1}, 0, 0, 0},
    };
    int rc = SR_ERROR, i, saved;

    for (i = 0; i < 2; i++)
        if (pipe2(dir[i].pipe, O_NONBLOCK | O_CLOEXEC) < 0)
            goto out;
    for (;;) {
        struct pollfd pfd[2] = {{front, 0, 0}, {back, 0, 0}};
        int n;

        /* dir[0] reads front and writes back; dir[1] the other way round. */
        for (i = 0; i < 2; i++) {
            struct pollfd *src = &pfd[i], *dst = &pfd[1 - i];
            if (!dir[i].eof && dir[i].pending < SR_CHUNK)
                src->events |= POLLIN;
            if (dir[i].pending > 0)
                dst->events |= POLLOUT;
        }
        if (!pfd[0].events && !pfd[1].events) {
            rc = SR_DONE;
            goto out;
        }
        for (i = 0; i < 2; i++)
            if (!pfd[i].events)
                pfd[i].fd = -1;  /* nothing wanted of it now: its POLLHUP must not spin the loop */
        n = poll(pfd, 2, idle_ms);
        if (n == 0) {
            rc = SR_IDLE;
            goto out;
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            goto out;
        }
        for (i = 0; i < 2; i++) {
            short src_ev = pfd[i].revents & (POLLIN | POLLHUP | POLLERR);
            short dst_ev = pfd[1 - i].revents & (POLLOUT | POLLERR);
            if (sr_step(&dir[i], src_ev, dst_ev) < 0)
                goto out;
        }
        if (dir[0].shut && dir[1].shut) {
            rc = SR_DONE;
            goto out;
        }
    }
out:
    saved = errno;
    for (i = 0; i < 2; i++) {
        if (dir[i].pipe[0] >= 0)
            close(dir[i].pipe[0]);
        if (dir[i].pipe[1] >= 0)
            close(dir[i].pipe[1]);
    }
    errno = saved;
    return rc;
}
