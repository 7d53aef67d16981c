"""The challenge store in PostgreSQL, for a cluster: any node's responder answers any node's order.

Behind a load balancer the CA's validation request reaches any node, while `issue` ran on one,
so the pending key authorizations live in one table on the cluster database (WUCME_STORE_DB, else
WUCME_LOCK_DB: docs/cluster.md).  ChallengeStore delegates here when one is defined.

- One row per pending challenge, keyed by kind and token (http-01) or SNI name (tls-alpn-01);
  every value is a statement parameter, never SQL text.
- Expiry is the server's clock, so nodes whose clocks differ agree: a row is served only while
  `expires > now()` and it is younger than MAX_AGE (a day), whatever ttl its writer asked for.
- No answer is cached: every request reads the table.  A removed challenge must never be served
  (the test suite checks it), and a cache can promise that only by asking the database whether
  the entry is still there: the same round trip as reading it.  What is kept is the session (the
  connection costs milliseconds, a read a fraction of one), one per process.
- The table is created by its first writer (CREATE TABLE IF NOT EXISTS); a reader that finds no
  table answers "no such challenge", so a web server's account needs only SELECT.
- A database error while writing raises OSError (the solver turns it into %WUCME-E-CHALLERR and
  the order stops with it); while reading, the answer is "no such challenge".
"""
from __future__ import annotations

from typing import Any

from wucme.vms.pgsql import ClusterDbError, PgSession, psycopg

__all__ = ["MAX_AGE", "TABLE", "PgChallenges", "StoreDbError"]

#: The table's name (fixed: it is the only identifier in the SQL text).
TABLE = "wucme_challenges"
#: No challenge older than this is served, whatever its writer's ttl (seconds).
MAX_AGE = 86400.0

_CREATE = f"""CREATE TABLE IF NOT EXISTS {TABLE} (
    kind     text NOT NULL,
    key      text NOT NULL,
    ident    text NOT NULL,
    type     text NOT NULL,
    keyauth  text NOT NULL,
    created  timestamptz NOT NULL DEFAULT now(),
    expires  timestamptz NOT NULL,
    PRIMARY KEY (kind, key))"""
_PUT = (f"INSERT INTO {TABLE} (kind, key, ident, type, keyauth, created, expires) "
        "VALUES (%s, %s, %s, %s, %s, now(), now() + make_interval(secs => %s)) "
        "ON CONFLICT (kind, key) DO UPDATE SET ident = EXCLUDED.ident, type = EXCLUDED.type, "
        "keyauth = EXCLUDED.keyauth, created = EXCLUDED.created, expires = EXCLUDED.expires")
_GET = (f"SELECT ident, keyauth, extract(epoch FROM expires)::float8 FROM {TABLE} "
        "WHERE kind = %s AND key = %s AND expires > now() "
        "AND created > now() - make_interval(secs => %s)")
_REMOVE = f"DELETE FROM {TABLE} WHERE kind = %s AND key = %s"
_PURGE = (f"DELETE FROM {TABLE} WHERE expires <= now() OR created <= now() - make_interval(secs => %s)")
_COUNT = (f"SELECT count(*) FROM {TABLE} WHERE expires > now() "
          "AND created > now() - make_interval(secs => %s)")

HTTP, ALPN = "http-01", "tls-alpn-01"


class StoreDbError(OSError):
    """The shared challenge store could not be written (an OSError, as a full disk would be)."""


class PgChallenges:
    """Rows of TABLE on *conninfo*: put, get and remove by (kind, key)."""

    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo
        self._session = PgSession(conninfo, "wucme challenges")
        self._created = False

    def _write(self, sql: str, params: tuple[Any, ...]) -> int:
        def work(conn: Any) -> int:
            if not self._created:
                _create(conn)
                self._created = True
            return int(conn.execute(sql, params).rowcount)

        try:
            return self._session.run(work)
        except ClusterDbError as e:
            raise StoreDbError(f"shared challenge store: {e.text}") from None

    def put(self, kind: str, key: str, ident: str, type: str, keyauth: str, ttl: float) -> None:
        self._write(_PUT, (kind, key, ident, type, keyauth, min(max(ttl, 0.0), MAX_AGE)))

    def get(self, kind: str, key: str) -> tuple[str, str, float] | None:
        """(ident, key authorization, expiry as epoch seconds), or None: unknown, expired, or the
        database not answering (a validation then fails; the writer's side reports why)."""
        pg = psycopg()

        def work(conn: Any) -> Any:
            try:
                return conn.execute(_GET, (kind, key, MAX_AGE)).fetchone()
            except pg.errors.UndefinedTable:
                return None

        try:
            row = self._session.run(work)
        except ClusterDbError:
            return None
        if row is None:
            return None
        ident, keyauth, expires = row
        return str(ident), str(keyauth), float(expires)

    def remove(self, kind: str, key: str) -> None:
        self._write(_REMOVE, (kind, key))

    def purge(self) -> int:
        return self._write(_PURGE, (MAX_AGE,))

    def count(self) -> int:
        pg = psycopg()

        def work(conn: Any) -> int:
            try:
                return int(conn.execute(_COUNT, (MAX_AGE,)).fetchone()[0])
            except pg.errors.UndefinedTable:
                return 0

        try:
            return self._session.run(work)
        except ClusterDbError:
            return 0

    def present(self) -> bool:
        """Whether the table exists (for `check /cluster`); ClusterDbError when unreachable."""
        row = self._session.run(lambda c: c.execute("SELECT to_regclass(%s)", (TABLE,)).fetchone())
        return row is not None and row[0] is not None

    def close(self) -> None:
        self._session.close()


def _create(conn: Any) -> None:
    """CREATE TABLE IF NOT EXISTS, tolerating the race of two first writers (both may pass the
    existence test; the loser's catalog insert then fails with a unique violation, or as a
    duplicate type or table, depending on where the two met)."""
    pg = psycopg()
    try:
        conn.execute(_CREATE)
    except (pg.errors.UniqueViolation, pg.errors.DuplicateObject, pg.errors.DuplicateTable):
        pass
