"""A cluster-wide exclusive lock on PostgreSQL advisory locks, for repositories shared across hosts.

The local lock manager (wucme/lock.py) is one host's kernel; systems that mount one repository
need a lock they all see, as the VMS DLM is cluster-wide.  `PgLock(conninfo, resource,
repository=...)` holds a session-level advisory lock (`pg_advisory_lock`) on a 64-bit key, on a
connection of its own, for as long as that connection lives:

- The key is the first 8 bytes of SHA-256 over the repository's lock id and the resource name.
  The lock id is the content of `<repository>/WUCME_LOCKID`, a random token created once,
  atomically (written to a temporary file, then hard-linked into place: link fails if another
  host won the race, and the loser reads the winner's token).  Not the path: hosts may mount the
  repository at different paths, and they must agree on the key.
- Waiting is one blocking `SELECT pg_advisory_lock(key)`: the server queues the request and
  answers when it is granted; nothing polls.  A timeout is the server's `lock_timeout`.
- A signal handler that raises (the agent's SIGTERM) ends the wait: psycopg's wait loop runs
  Python's handlers, the exception propagates, and `acquire` sends a cancel request for the
  pending statement and closes the connection, so the server forgets the request at once.
  `client_connection_check_interval` (PostgreSQL 14+) is set too, so a waiter killed outright
  leaves no request queued for more than a second.
- The server releases the lock when the holder's session ends: at once when the process dies
  (its socket is closed by the kernel).  A host that vanishes (power, network) is noticed by TCP
  keepalives: client-side in the connection string defaults (keepalives_idle 10 s, interval 5 s,
  count 3) and server-side (`tcp_keepalives_*`, set per session), so about 25 s.

Limits, which the documentation repeats: a stopped holder (SIGSTOP) keeps its lock, as with the
local lock; in a network partition the holder's session is dropped only when the keepalives
fire, and the holder itself learns that it lost the lock only when it next talks to the server
(`check()`); a restarted database server forgets every lock.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from pathlib import Path
from types import TracebackType
from typing import Any

from wucme._native.lockmgr import LockError, LockTimeout, NotQueued
from wucme.errors import WucmeError

__all__ = ["LOCKID_FILE", "NoPsycopg", "PgLock", "PgLockError", "lock_id", "lock_key"]

#: The file in the repository whose content names the repository to the lock server.
LOCKID_FILE = "WUCME_LOCKID"

#: Connection parameters a connection string does not set itself (libpq names).
CONNINFO_DEFAULTS = {"keepalives": "1", "keepalives_idle": "10", "keepalives_interval": "5",
                     "keepalives_count": "3", "connect_timeout": "10",
                     "application_name": "wucme"}

#: Session settings: the server side of the keepalives, and a check for vanished clients.
_SESSION = (("tcp_keepalives_idle", "10"), ("tcp_keepalives_interval", "5"),
            ("tcp_keepalives_count", "3"), ("client_connection_check_interval", "1000"))


class NoPsycopg(WucmeError):
    """WUCME_LOCK_DB is defined but psycopg (version 3) is not installed."""

    ident = "NOPSYCOPG"


class PgLockError(LockError):
    """The lock server cannot be reached, or the session holding the lock was lost."""

    ident = "LOCKDB"


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError as e:
        raise NoPsycopg(f"WUCME_LOCK_DB needs psycopg 3 (pip install 'psycopg[binary]'): {e}") from None
    return psycopg


def lock_id(repository: str | os.PathLike[str]) -> str:
    """The repository's lock id (`WUCME_LOCKID`), created once if missing, the same on every host."""
    path = Path(repository) / LOCKID_FILE
    with contextlib.suppress(FileNotFoundError):
        return _read_id(path)
    tmp = path.with_name(f".{LOCKID_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, (secrets.token_hex(16) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # atomic, also on NFS: exactly one creator wins
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)
    return _read_id(path)


def _read_id(path: Path) -> str:
    text = path.read_text(encoding="ascii", errors="replace").strip()
    if not text:
        raise LockError(f"{path} is empty: remove it (on no host is an agent running) to make a new one")
    return text


def lock_key(resource: str, ident: str) -> int:
    """The signed 64-bit advisory lock key for `resource` of the repository with lock id `ident`."""
    digest = hashlib.sha256(f"wucme\0{ident}\0{resource}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def conninfo_with_defaults(conninfo: str) -> str:
    """`conninfo` with CONNINFO_DEFAULTS for the parameters it leaves out."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = conninfo_to_dict(conninfo)
    for k, v in CONNINFO_DEFAULTS.items():
        params.setdefault(k, v)
    return make_conninfo(**{k: str(v) for k, v in params.items() if v is not None})


class PgLock:
    """An exclusive cluster-wide lock on `resource`, held by a PostgreSQL session of its own.

    `repository` (its WUCME_LOCKID) or `ident` names the lock's namespace; with neither, the
    resource name alone is the key.
    """

    def __init__(self, conninfo: str, resource: str, *, repository: str | os.PathLike[str] | None = None,
                 ident: str | None = None) -> None:
        self._pg = _psycopg()
        self.conninfo = conninfo
        self.resource = resource
        if ident is None:
            ident = lock_id(repository) if repository is not None else ""
        self.ident = ident
        self.key = lock_key(resource, ident)
        self._conn: Any = None
        self._value = b""

    def __repr__(self) -> str:
        return f"<PgLock {self.resource} key={self.key} {'held' if self.held else 'released'}>"

    @property
    def held(self) -> bool:
        return self._conn is not None

    def _connect(self) -> Any:
        try:
            conn = self._pg.connect(conninfo_with_defaults(self.conninfo), autocommit=True)
        except self._pg.Error as e:
            raise PgLockError(f"cannot connect to the lock database: {str(e).strip()}") from None
        for name, value in _SESSION:  # older servers lack some: ignore those
            with contextlib.suppress(self._pg.Error):
                conn.execute("SELECT set_config(%s, %s, false)", (name, value))
        return conn

    def acquire(self, wait: bool = True, timeout: float | None = None) -> PgLock:
        """Take the lock; NotQueued when `wait` is False and it is held elsewhere, LockTimeout
        when not granted within `timeout` seconds.  An exception raised while waiting (a signal
        handler's) cancels the request on the server and closes the connection."""
        if self._conn is not None:
            raise LockError(f"cluster lock on {self.resource} is already held")
        conn = self._connect()
        pg = self._pg
        try:
            if not wait:
                got = conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()[0]
                if not got:
                    raise NotQueued(f"cluster lock {self.resource} is held by another process")
            else:
                if timeout is not None:
                    ms = max(1, int(timeout * 1000))
                    conn.execute("SELECT set_config('lock_timeout', %s, false)", (f"{ms}ms",))
                try:
                    conn.execute("SELECT pg_advisory_lock(%s)", (self.key,))
                except pg.errors.LockNotAvailable:
                    raise LockTimeout(f"cluster lock {self.resource} not granted within {timeout} s") from None
                if timeout is not None:
                    conn.execute("SELECT set_config('lock_timeout', '0', false)")
        except BaseException as e:
            self._abort(conn)
            if isinstance(e, pg.Error):
                raise PgLockError(f"cluster lock {self.resource}: {str(e).strip()}") from None
            raise
        self._conn = conn
        if self._value:
            self._show(self._value)
        return self

    def _abort(self, conn: Any) -> None:
        """Forget a request that did not complete: cancel it on the server, close the session."""
        with contextlib.suppress(BaseException):
            if conn.pgconn.transaction_status == self._pg.pq.TransactionStatus.ACTIVE:
                conn.cancel_safe(timeout=2.0)
        with contextlib.suppress(BaseException):
            conn.close()

    def release(self) -> None:
        """Give the lock up (idempotent): unlock, then end the session."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        with contextlib.suppress(BaseException):
            conn.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
        with contextlib.suppress(BaseException):
            conn.close()

    def check(self) -> None:
        """Raise PgLockError unless the session holding the lock is still alive (then so is the
        lock: a session-level advisory lock ends only with its session or an unlock)."""
        conn = self._conn
        if conn is None:
            raise LockError(f"cluster lock on {self.resource} was released")
        try:
            conn.execute("SELECT 1")
        except self._pg.Error as e:
            raise PgLockError(f"the session holding cluster lock {self.resource} is lost: "
                              f"{str(e).strip()}") from None

    @property
    def value_block(self) -> bytes:
        """What the holder said about itself; shown as the session's application_name
        (pg_stat_activity), the nearest thing to a value block other hosts can read."""
        return self._value

    @value_block.setter
    def value_block(self, value: bytes) -> None:
        self._value = bytes(value)
        if self._conn is not None:
            self._show(self._value)

    def _show(self, value: bytes) -> None:
        text = "wucme " + value.decode(errors="replace")
        with contextlib.suppress(self._pg.Error):
            self._conn.execute("SELECT set_config('application_name', %s, false)", (text[:63],))

    def __enter__(self) -> PgLock:
        if self._conn is None:
            self.acquire()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
