"""A PostgreSQL server of a test module's own, stopped when the module's tests are done.

tests/agent/test_cluster_lock.py's `pg_server` lives for the whole session; a module that
imports it keeps one more server listening to the end.  The in-process database tests
(test_challenge_store_db.py, test_lnm_cluster_db.py) use this instead, so nothing of theirs
listens while later tests bind ports of their own.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from harness.postgres import PgServer, pg_bin


@contextmanager
def running_postgres() -> Iterator[str]:
    """Start a server on 127.0.0.1 (trust auth); its conninfo; stopped and removed on exit."""
    bindir = pg_bin()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries not found in /usr/lib/postgresql/*/bin (apt-get install postgresql)")
    server = PgServer(bindir)
    try:
        yield server.start().conninfo
    finally:
        server.close()
