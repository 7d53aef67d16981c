"""Becoming a daemon: the one routine behind `wucme agent /DETACH` and `wucme alpn -d`.

The original process forks; the child starts a new session (no controlling terminal), forks
again so it can never acquire one, puts stdin, stdout and stderr on /dev/null and, unless told
not to, changes to `/` so it holds no mount busy.  The daemon tells the original process its pid
and, when it wants to, whether it started (`ready(b"OK")`), through a pipe: the original process
returns only then, so `wucme alpn -d` exits 0 only once its listeners are up, as ualpn does.
"""
from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Detached", "Daemon", "daemonize"]


@dataclass(frozen=True)
class Detached:
    """What the original process learns: the daemon's pid and its report ("" when it sent none)."""

    pid: int
    report: bytes


class Daemon:
    """The daemon's end of the pipe: report once (`ready`), or let `close` say nothing."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    def ready(self, report: bytes = b"OK") -> None:
        if self._fd is not None:
            os.write(self._fd, report)
            self.close()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def daemonize(chdir: bool = True) -> Detached | Daemon:
    """Fork into the background.  The original process gets a Detached once the daemon has
    reported or closed its end; the daemon gets its Daemon end (close it, or `ready(...)` once)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid:
        os.close(w)
        data = b""
        while chunk := os.read(r, 256):
            data += chunk
        os.close(r)
        os.waitpid(pid, 0)
        head, _, report = data.partition(b"\n")
        return Detached(int(head) if head.isdigit() else 0, report)
    os.close(r)
    os.setsid()
    if os.fork():
        os._exit(0)
    os.write(w, f"{os.getpid()}\n".encode())
    if chdir:
        os.chdir("/")
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    return Daemon(w)


def set_from_signal(event: threading.Event) -> Callable[[int, Any], None]:
    """A signal handler that sets *event*.  A handler runs in the main thread, which may be in
    event.wait() at that moment, holding the event's lock (not reentrant): a set() there would
    wait for that lock forever (a `wucme alpn` worker was seen hanging so after SIGTERM), so
    another thread sets it."""
    def handler(signum: int, frame: Any) -> None:
        threading.Thread(target=event.set, name="wucme-signal", daemon=True).start()
    return handler
