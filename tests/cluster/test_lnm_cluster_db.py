"""The cluster logical-name table in the cluster database, used in one process as DEFINE /CLUSTER,
SHOW LOGICAL and DEASSIGN use it (wucme/vms/lnm.py over wucme/vms/lnmdb.py), on a real PostgreSQL.

tests/cluster/test_cluster_nodes.py runs separate nodes against each other; these scenarios pin
what the lnm layer reads from and writes to the database, and how it reports a damaged row or a
database that does not answer.
"""
from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.lnm import own_tables

psycopg = pytest.importorskip("psycopg", reason="psycopg 3 is not installed (pip install 'psycopg[binary]')")

from wucme.vms import lnm  # noqa: E402
from wucme.vms.lnm import LogicalNameError, NoLogicalNameError  # noqa: E402
from wucme.vms.lnmdb import TABLE  # noqa: E402

NAMES = ["WUCME_T_A", "WUCME_T_B", "WUCME_LOCK_DB"]


@pytest.fixture
def db(pg_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """WUCME_LOCK_DB names the database; its cluster table emptied before and after."""
    own_tables(monkeypatch, tmp_path / "lnm", NAMES)

    def drop() -> None:
        with psycopg.connect(pg_server, autocommit=True) as c:
            c.execute(f"DROP TABLE IF EXISTS {TABLE}")
    drop()
    monkeypatch.setenv("WUCME_LOCK_DB", pg_server)
    yield pg_server
    drop()


def stored(db: str) -> dict[str, object]:
    with psycopg.connect(db, autocommit=True) as c:
        return {name: json.loads(entry) for name, entry in c.execute(f"SELECT name, entry FROM {TABLE}")}


def test_define_show_and_deassign_in_the_cluster_database(db: str, tmp_path: Path) -> None:
    assert lnm.lookup("WUCME_T_A", "cluster") is None  # no table yet: an empty table
    assert lnm.define("wucme_t_a", ["one", "two"], "cluster", terminal=True, mode="exec") is None
    assert stored(db) == {"WUCME_T_A": {"values": ["one", "two"], "attributes": ["TERMINAL"], "mode": "EXECUTIVE"}}
    entry = lnm.lookup("WUCME_T_A", "cluster")
    assert entry is not None
    assert (entry.name, entry.values, entry.table, entry.terminal, entry.mode, entry.source) == (
        "WUCME_T_A", ("one", "two"), "cluster", True, "EXECUTIVE", "database")
    old = lnm.define("WUCME_T_A", "three", "cluster")
    assert old == entry and old is not None and old.source == "database"
    lnm.define("WUCME_T_B", "WUCME_T_A", "cluster")
    assert [e.name for e in lnm.show("WUCME_T_*", "cluster")] == ["WUCME_T_A", "WUCME_T_B"]
    assert lnm.translate("WUCME_T_B") == ["three"]
    assert lnm.deassign("wucme_t_a", "cluster").values == ("three",)
    assert stored(db) == {"WUCME_T_B": {"values": ["WUCME_T_A"]}}
    with pytest.raises(NoLogicalNameError):
        lnm.deassign("WUCME_T_A", "cluster")
    assert not (tmp_path / "lnm" / "cluster.json").exists()  # the file table is not used


def test_a_damaged_row_is_reported_as_a_damaged_table(db: str) -> None:
    lnm.define("WUCME_T_A", "v", "cluster")
    with psycopg.connect(db, autocommit=True) as c:
        c.execute(f"UPDATE {TABLE} SET entry = %s WHERE name = 'WUCME_T_A'", (json.dumps({"values": []}),))
    time.sleep(1.1)  # past the process's cache of the table
    with pytest.raises(LogicalNameError) as ei:
        lnm.lookup("WUCME_T_A", "cluster")
    assert ei.value.message() == ("%WUCME-E-BADTABLE, cluster logical name table (database WUCME_LOCK_DB) is "
                                  "damaged: entry 'WUCME_T_A' has no list of values")
    assert ei.value.ident == "BADTABLE"
    with psycopg.connect(db, autocommit=True) as c:
        c.execute(f"UPDATE {TABLE} SET entry = 'not json' WHERE name = 'WUCME_T_A'")
    time.sleep(1.1)
    with pytest.raises(LogicalNameError) as ei:
        lnm.lookup("WUCME_T_A", "cluster")
    assert ei.value.message() == ("%WUCME-E-BADTABLE, cluster logical name table (database WUCME_LOCK_DB): "
                                  "cluster logical name table: the entry of 'WUCME_T_A' is damaged")
    with pytest.raises(LogicalNameError) as ei:
        lnm.define("WUCME_T_B", "w", "cluster")
    assert ei.value.ident == "BADTABLE"


def test_a_database_that_does_not_answer_fails_cluster_lookups_by_name(
        db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.pebble import free_port

    dead = f"host=127.0.0.1 port={free_port()} dbname=postgres user=postgres connect_timeout=1"
    monkeypatch.setenv("WUCME_LOCK_DB", dead)
    for attempt in (lambda: lnm.lookup("WUCME_T_A", "cluster"), lambda: lnm.define("WUCME_T_A", "v", "cluster")):
        with pytest.raises(LogicalNameError) as ei:
            attempt()
        assert ei.value.message().startswith(
            "%WUCME-E-CLUSTERDB, cluster logical name table (database WUCME_LOCK_DB): cannot connect")
    assert lnm.lookup("WUCME_T_A", "system") is None  # the node's own tables still answer

