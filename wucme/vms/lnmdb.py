"""The cluster logical-name table (LNM$SYSCLUSTER_TABLE) in PostgreSQL, when WUCME_LOCK_DB is defined.

On VMS the cluster table is one table every node of the cluster sees; here it is one table of the
cluster database (docs/cluster.md), so a `DEFINE /CLUSTER` on one node is seen by the others.
wucme.vms.lnm keeps the semantics (search order, search lists, attributes, iteration); this module
only stores the entries, each a name and the JSON object the file tables hold for it.

- Reads: the whole table (it is small), kept for at most CACHE_TTL seconds per process, so a
  translation that looks up many names costs one round trip; a process's own DEFINE or DEASSIGN
  empties its cache at once, another node's is seen within CACHE_TTL.
- Writes: a transaction that locks the table, reads it, applies the change and writes back the
  rows that differ, so two nodes' concurrent DEFINEs are both kept, as the file table's flock does.
- The table is created by the first DEFINE /CLUSTER; a database with no table is an empty table.
- A database that cannot be reached raises ClusterDbError: a lookup that reaches the cluster
  table then fails with %WUCME-E-CLUSTERDB rather than answer as if the name were undefined
  (an undefined WUCME_CA, say, would silently mean Let's Encrypt production).
"""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

from wucme.vms.pgsql import ClusterDbError, PgSession, psycopg

__all__ = ["CACHE_TTL", "TABLE", "ClusterTable", "ClusterDbError", "cluster_table"]

TABLE = "wucme_lnm_cluster"
#: How long a process trusts its copy of the table (seconds).
CACHE_TTL = 1.0

_CREATE = f"CREATE TABLE IF NOT EXISTS {TABLE} (name text PRIMARY KEY, entry text NOT NULL)"
_ALL = f"SELECT name, entry FROM {TABLE}"

Entries = dict[str, dict[str, Any]]


class ClusterTable:
    """The cluster table on *conninfo*."""

    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo
        self._session = PgSession(conninfo, "wucme logical names")
        self._cache: tuple[float, Entries] | None = None
        self._lock = threading.Lock()

    def load(self) -> Entries:
        """name -> entry object; raises ClusterDbError when the database does not answer."""
        with self._lock:
            if self._cache is not None and time.monotonic() - self._cache[0] < CACHE_TTL:
                return self._cache[1]
        pg = psycopg()

        def work(conn: Any) -> list[tuple[str, str]]:
            try:
                return list(conn.execute(_ALL).fetchall())
            except pg.errors.UndefinedTable:
                return []

        entries = _parse(self._session.run(work))
        with self._lock:
            self._cache = (time.monotonic(), entries)
        return entries

    def modify(self, change: Callable[[Entries], Any]) -> Any:
        """Apply *change* to the table's entries under a table lock; returns what *change* does."""
        pg = psycopg()

        def work(conn: Any) -> Any:
            try:
                conn.execute(_CREATE)
            except (pg.errors.UniqueViolation, pg.errors.DuplicateObject,
                    pg.errors.DuplicateTable):  # two first writers raced: the table exists
                pass
            with conn.transaction():
                conn.execute(f"LOCK TABLE {TABLE} IN SHARE ROW EXCLUSIVE MODE")
                before = _parse(conn.execute(_ALL).fetchall())
                after = {k: dict(v) for k, v in before.items()}
                result = change(after)
                for name in before.keys() - after.keys():
                    conn.execute(f"DELETE FROM {TABLE} WHERE name = %s", (name,))
                for name, entry in after.items():
                    if before.get(name) != entry:
                        conn.execute(f"INSERT INTO {TABLE} (name, entry) VALUES (%s, %s) "
                                     "ON CONFLICT (name) DO UPDATE SET entry = EXCLUDED.entry",
                                     (name, json.dumps(entry, ensure_ascii=False)))
            return result

        with self._lock:
            self._cache = None
        try:
            return self._session.run(work)
        finally:
            with self._lock:
                self._cache = None

    def present(self) -> bool:
        """Whether the table exists (for `check /cluster`)."""
        row = self._session.run(lambda c: c.execute("SELECT to_regclass(%s)", (TABLE,)).fetchone())
        return row is not None and row[0] is not None


def _parse(rows: Any) -> Entries:
    out: Entries = {}
    for name, text in rows:
        try:
            obj = json.loads(text)
        except ValueError:
            raise ClusterDbError(f"cluster logical name table: the entry of {name!r} is damaged",
                                 "BADTABLE") from None
        out[str(name)] = obj
    return out


_tables: dict[str, ClusterTable] = {}
_tables_lock = threading.Lock()


def cluster_table(conninfo: str) -> ClusterTable:
    """The process's one ClusterTable for *conninfo* (its session and cache are shared)."""
    with _tables_lock:
        table = _tables.get(conninfo)
        if table is None:
            table = _tables[conninfo] = ClusterTable(conninfo)
        return table
