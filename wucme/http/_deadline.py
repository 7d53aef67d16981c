"""The overall deadline of one request (connect, head and body together).

Socket timeouts bound each read, not the request: a server that sends one byte a second never
lets a read time out.  A `Deadline` is a timer that, when it fires, shuts down every socket the
request registered, so the blocked read ends at once; the transport then raises HttpTimeout.
One per request, on the calling thread (`current()`).

Every deadline of the process is watched by one daemon thread (`_Watchdog`), started with
the first: a timer thread per request cost a thread start for each of the dozen requests of
an issue (about 0.35 ms each on the 2-CPU bench machine, docs/performance.md).
"""
from __future__ import annotations

import heapq
import itertools
import os
import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import TypeVar

T = TypeVar("T")

_local = threading.local()


class Deadline:
    """`with Deadline(seconds): ...` in the thread doing the request; `watch(sock)` for each
    socket it reads; `expired` once the time is up (the sockets are shut down then)."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.expired = False
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        self._over = False

    def watch(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            if self.expired:
                _shut(sock)
            else:
                self._socks.append(sock)

    def _fire(self) -> None:
        with self._lock:
            if self._over:  # the request ended as the timer fired: its sockets are not ours now
                return
            self.expired = True
            for s in self._socks:
                _shut(s)  # under the lock: __exit__ cannot hand the sockets on meanwhile
            self._socks = []

    def __enter__(self) -> Deadline:
        self._outer = getattr(_local, "deadline", None)
        _local.deadline = self
        if self.seconds is not None and self.seconds > 0:
            _watchdog.add(time.monotonic() + self.seconds, self)
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        with self._lock:  # a watchdog already firing must not shut down a socket pooled or closed now
            self._over = True
            self._socks = []
        _local.deadline = self._outer


def within(seconds: float | None, url: str, request: Callable[[], T]) -> T:
    """*request()* under a Deadline of *seconds*: an answer, or HttpTimeout once the time is up
    (also for a body the deadline's shutdown cut short, which may read as a complete end)."""
    from wucme.http import HttpError, HttpTimeout

    with Deadline(seconds) as d:
        try:
            response = request()
        except HttpError as exc:
            if not d.expired:
                raise
            raise HttpTimeout(f"{url}: no complete answer within {d.seconds:g} s "
                              "(WUCME_HTTP_DEADLINE)") from exc
        if d.expired:
            raise HttpTimeout(f"{url}: no complete answer within {d.seconds:g} s (WUCME_HTTP_DEADLINE)")
        return response


class _Watchdog:
    """The one thread that fires every deadline when its time comes.  A deadline whose request
    ended stays in the heap until its time and is then dropped unfired (`_over`)."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._heap: list[tuple[float, int, Deadline]] = []
        self._seq = itertools.count()
        self._started = False

    def add(self, when: float, deadline: Deadline) -> None:
        with self._cond:
            if not self._started:
                threading.Thread(target=self._run, name="wucme-http-deadlines", daemon=True).start()
                self._started = True
            heapq.heappush(self._heap, (when, next(self._seq), deadline))
            if self._heap[0][2] is deadline:  # sooner than what the thread waits for
                self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    while self._heap and self._heap[0][2]._over:
                        heapq.heappop(self._heap)
                    now = time.monotonic()
                    if self._heap and self._heap[0][0] <= now:
                        due = heapq.heappop(self._heap)[2]
                        break
                    self._cond.wait(self._heap[0][0] - now if self._heap else None)
            due._fire()


_watchdog = _Watchdog()


def _new_watchdog() -> None:
    """A child of fork() has no watchdog thread (and maybe a lock held by the parent's)."""
    global _watchdog
    _watchdog = _Watchdog()


os.register_at_fork(after_in_child=_new_watchdog)


def current() -> Deadline | None:
    """The deadline of the request this thread is doing, if any."""
    return getattr(_local, "deadline", None)


def watch(sock: socket.socket | None) -> None:
    """Put `sock` under the current request's deadline (nothing when there is none)."""
    d = current()
    if d is not None:
        d.watch(sock)


def _shut(sock: socket.socket) -> None:
    # The plain socket's shutdown, also under TLS: it ends a read blocked in another thread.
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass
