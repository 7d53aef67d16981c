"""The pure twin of native/splice.c: the same relay with os.splice (Linux, Python 3.10+).

The bytes still never reach user space (each direction goes through a pipe of its own), but
Python runs once per chunk, not once per connection.  Where os.splice is missing (OpenVMS,
other systems) `relay_copy` copies through user space with selectors.
"""
from __future__ import annotations

import os
import select
import selectors
import socket
import time

__all__ = ["DONE", "IDLE", "ERROR", "HAS_SPLICE", "splice_relay", "relay_copy"]

DONE, IDLE, ERROR = 0, 1, -1
HAS_SPLICE = hasattr(os, "splice") and hasattr(select, "poll")
_CHUNK = 1 << 16


class _Dir:
    __slots__ = ("src", "dst", "r", "w", "pending", "eof", "shut")

    def __init__(self, src: int, dst: int) -> None:
        self.src, self.dst = src, dst
        self.r, self.w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.pending = 0
        self.eof = self.shut = False

    def step(self, src_ready: bool, dst_ready: bool) -> None:
        flags = os.SPLICE_F_MOVE | os.SPLICE_F_NONBLOCK
        if dst_ready and self.pending:
            try:
                self.pending -= os.splice(self.r, self.dst, self.pending, flags=flags)
            except (BlockingIOError, InterruptedError):
                pass
        if src_ready and not self.eof and self.pending < _CHUNK:
            try:
                n = os.splice(self.src, self.w, _CHUNK, flags=flags)
            except (BlockingIOError, InterruptedError):
                n = -1
            if n == 0:
                self.eof = True
            elif n > 0:
                self.pending += n
        if self.eof and not self.pending and not self.shut:
            self.shut = True
            try:
                _shut_wr(self.dst)
            except OSError:  # a peer already gone is found by the other direction
                pass

    def close(self) -> None:
        os.close(self.r)
        os.close(self.w)


def _shut_wr(fd: int) -> None:
    s = socket.socket(fileno=fd)
    try:
        s.shutdown(socket.SHUT_WR)
    finally:
        s.detach()


def splice_relay(front: int, back: int, idle_ms: int) -> int:
    """native/splice.c's splice_relay, step for step: DONE, IDLE or ERROR."""
    dirs = [_Dir(front, back), _Dir(back, front)]
    poller = select.poll()
    fds = (front, back)
    registered = [0, 0]
    try:
        while True:
            want = [0, 0]
            for i, d in enumerate(dirs):
                if not d.eof and d.pending < _CHUNK:
                    want[i] |= select.POLLIN
                if d.pending:
                    want[1 - i] |= select.POLLOUT
            if not want[0] and not want[1]:
                return DONE
            for i in (0, 1):
                if want[i] != registered[i]:
                    if registered[i]:
                        poller.unregister(fds[i])
                    if want[i]:
                        poller.register(fds[i], want[i])
                    registered[i] = want[i]
            ready = dict(poller.poll(idle_ms))
            if not ready:
                return IDLE
            ev = [ready.get(front, 0), ready.get(back, 0)]
            for i, d in enumerate(dirs):
                d.step(bool(ev[i] & (select.POLLIN | select.POLLHUP | select.POLLERR)),
                       bool(ev[1 - i] & (select.POLLOUT | select.POLLERR)))
            if dirs[0].shut and dirs[1].shut:
                return DONE
    except OSError:  # reset by either side: the relay is over
        return ERROR
    finally:
        for d in dirs:
            d.close()


def relay_copy(front: socket.socket, back: socket.socket, idle: float) -> int:
    """The relay through user space, for systems without splice: DONE, IDLE or ERROR.

    A side's reading pauses while 256 KiB wait for the other side, so memory stays bounded.
    """
    limit = 256 * 1024
    other = {front: back, back: front}
    pending = {front: bytearray(), back: bytearray()}  # bytes waiting to be sent to key
    eof = {front: False, back: False}
    shut = {front: False, back: False}
    sel = selectors.DefaultSelector()
    registered: dict[socket.socket, int] = {}
    last = time.monotonic()
    try:
        while True:
            for s in (front, back):
                events = 0
                if not eof[s] and len(pending[other[s]]) < limit:
                    events |= selectors.EVENT_READ
                if pending[s]:
                    events |= selectors.EVENT_WRITE
                if events != registered.get(s, 0):
                    if s in registered and events:
                        sel.modify(s, events)
                    elif s in registered:
                        sel.unregister(s)
                    else:
                        sel.register(s, events)
                    if events:
                        registered[s] = events
                    else:
                        registered.pop(s, None)
            if not registered:
                return DONE
            ready = sel.select(timeout=max(0.0, last + idle - time.monotonic()))
            if not ready:
                return IDLE
            last = time.monotonic()
            for key, events in ready:
                s = front if key.fileobj is front else back
                try:
                    if events & selectors.EVENT_WRITE:
                        sent = s.send(pending[s])
                        del pending[s][:sent]
                    if events & selectors.EVENT_READ:
                        data = s.recv(65536)
                        if data:
                            pending[other[s]] += data
                        else:
                            eof[s] = True
                except (BlockingIOError, InterruptedError):
                    continue
            for s in (front, back):
                if eof[other[s]] and not pending[s] and not shut[s]:
                    shut[s] = True
                    try:
                        s.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
            if all(eof.values()) and not pending[front] and not pending[back]:
                return DONE
    except OSError:
        return ERROR
    finally:
        sel.close()
