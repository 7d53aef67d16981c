"""Idle persistent connections, keyed by origin, handed to one thread at a time."""
from __future__ import annotations

import threading

from wucme.http._conn import Connection, Origin

#: Idle connections kept per origin; the ACME layer runs a handful of threads at most.
MAX_IDLE = 8


class ConnectionPool:
    """A connection is either idle here or owned by exactly one request in flight."""

    def __init__(self, max_idle: int = MAX_IDLE) -> None:
        self._idle: dict[Origin, list[Connection]] = {}
        self._lock = threading.Lock()
        self._max_idle = max_idle
        self._closed = False

    def take(self, origin: Origin) -> Connection | None:
        """The most recently used idle connection that the server has not visibly closed."""
        while True:
            with self._lock:
                idle = self._idle.get(origin)
                conn = idle.pop() if idle else None
            if conn is None or not conn.dropped():
                return conn
            conn.close()

    def give(self, conn: Connection) -> None:
        """Return a connection after its response was read; unusable ones are closed."""
        if conn.reusable:
            with self._lock:
                idle = self._idle.setdefault(conn.origin, [])
                if not self._closed and len(idle) < self._max_idle:
                    idle.append(conn)
                    return
        conn.close()

    def close(self) -> None:
        with self._lock:
            conns = [c for idle in self._idle.values() for c in idle]
            self._idle.clear()
            self._closed = True
        for conn in conns:
            conn.close()
