"""A PostgreSQL session for the cluster's shared state: the cluster logical-name table and the
challenge store (docs/cluster.md).

psycopg (version 3, the optional `cluster` extra) is imported only when a connection is asked
for, so a process that has no WUCME_LOCK_DB never pays for it (the http-01 script runs once per
request).  One session per process and purpose, kept open and shared by its threads under a lock;
a session that broke is dropped and made again once before an error is raised.  Every statement
is parameterised: no SQL text is ever built from a name, a token or a value.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from wucme.vms.condition import VmsError

__all__ = ["ClusterDbError", "PgSession", "psycopg"]

T = TypeVar("T")

#: libpq parameters a connection string does not set itself: a short connect timeout, because a
#: reader (a validation request, a logical-name lookup) must not hang on a vanished server.
CONNINFO_DEFAULTS = {"connect_timeout": "5", "keepalives": "1", "keepalives_idle": "10",
                     "keepalives_interval": "5", "keepalives_count": "3"}
#: After a failed connection, fail at once for this long rather than wait connect_timeout again.
RETRY_AFTER = 1.0


class ClusterDbError(VmsError):
    """The cluster database cannot be reached or refused a statement."""

    ident = "CLUSTERDB"


def psycopg() -> Any:
    """The psycopg module, or ClusterDbError (NOPSYCOPG) when it is not installed."""
    try:
        import psycopg as pg
    except ImportError as e:
        raise ClusterDbError(f"the cluster database needs psycopg 3 (pip install 'psycopg[binary]'): {e}",
                             "NOPSYCOPG") from None
    return pg


class PgSession:
    """One lazily opened autocommit session on *conninfo*, named *application* on the server."""

    def __init__(self, conninfo: str, application: str) -> None:
        self.conninfo = conninfo
        self.application = application
        self._conn: Any = None
        self._lock = threading.RLock()
        self._failed: tuple[float, str] | None = None

    def _connect(self) -> Any:
        pg = psycopg()
        if self._failed is not None and time.monotonic() - self._failed[0] < RETRY_AFTER:
            raise ClusterDbError(self._failed[1])
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        try:
            params = conninfo_to_dict(self.conninfo)
        except pg.Error as e:
            raise ClusterDbError(f"invalid database connection string: {str(e).strip()}") from None
        for k, v in {**CONNINFO_DEFAULTS, "application_name": self.application}.items():
            params.setdefault(k, v)
        try:
            conn = pg.connect(make_conninfo(**{k: str(v) for k, v in params.items() if v is not None}),
                              autocommit=True)
        except pg.Error as e:
            text = f"cannot connect to the cluster database: {str(e).strip()}"
            self._failed = (time.monotonic(), text)
            raise ClusterDbError(text) from None
        self._failed = None
        return conn

    def run(self, work: Callable[[Any], T]) -> T:
        """*work(connection)*, on a fresh session once more when the kept one had broken."""
        pg = psycopg()
        with self._lock:
            for attempt in (1, 2):
                fresh = self._conn is None
                if fresh:
                    self._conn = self._connect()
                try:
                    return work(self._conn)
                except pg.OperationalError as e:
                    self.close()
                    if fresh or attempt == 2:
                        raise ClusterDbError(f"cluster database: {str(e).strip()}") from None
                except pg.Error as e:
                    if self._conn is not None and self._conn.closed:
                        self.close()
                    raise ClusterDbError(f"cluster database: {str(e).strip()}") from None
            raise AssertionError("unreachable")  # pragma: no cover

    def __del__(self) -> None:
        conn = getattr(self, "_conn", None)
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - at collection, nothing is left to tell
                pass

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - closing a broken session
                pass
