"""The challenge store on the cluster database, in one process: which store a ChallengeStore is,
the rows it writes for each kind of challenge, and the table's life (docs/cluster.md).

tests/cluster/test_cluster_nodes.py runs whole nodes against each other; these scenarios pin
what wucme/challenge/store.py and storepg.py write and read, row by row, on a real PostgreSQL.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

psycopg = pytest.importorskip("psycopg", reason="psycopg 3 is not installed (pip install 'psycopg[binary]')")

from wucme.challenge.store import ChallengeStore  # noqa: E402
from wucme.challenge.storepg import MAX_AGE, TABLE, PgChallenges  # noqa: E402

TOKEN = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"
KEYAUTH = TOKEN + ".9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"


@pytest.fixture
def db(pg_server: str) -> Iterator[str]:
    def drop() -> None:
        with psycopg.connect(pg_server, autocommit=True) as c:
            c.execute(f"DROP TABLE IF EXISTS {TABLE}")
    drop()
    yield pg_server
    drop()


def rows(db: str) -> list[tuple[Any, ...]]:
    """(kind, key, ident, type, keyauth, seconds to expiry rounded) of every row, sorted."""
    with psycopg.connect(db, autocommit=True) as c:
        if c.execute("SELECT to_regclass(%s)", (TABLE,)).fetchone()[0] is None:
            return []
        return sorted(c.execute(f"SELECT kind, key, ident, type, keyauth, "
                                f"round(extract(epoch FROM expires - created))::int FROM {TABLE}").fetchall())


def sessions(db: str) -> int:
    with psycopg.connect(db, autocommit=True) as c:
        return int(c.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                             ("wucme challenges",)).fetchone()[0])


@pytest.fixture
def no_store_db(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in ("WUCME_STORE_DB", "WUCME_LOCK_DB"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WUCME_CHALLENGES", str(tmp_path / "store"))
    return tmp_path / "store"


def test_which_store_a_challenge_store_is(db: str, no_store_db: Path, monkeypatch: pytest.MonkeyPatch,
                                          tmp_path: Path) -> None:
    plain = ChallengeStore()  # nothing defined: the directory of WUCME_CHALLENGES
    assert not plain.shared and plain.where == str(no_store_db) and plain.directory == no_store_db
    plain.put(TOKEN, KEYAUTH, "a.test", "http-01")
    assert len(list(no_store_db.iterdir())) == 1 and rows(db) == []
    plain.close()  # a directory holds nothing open

    named = ChallengeStore(db=db)  # the database named, with no logical name defined
    assert named.shared and named.where == "the cluster database"
    assert named.directory == no_store_db  # it has none of its own: the default one is named
    assert named.get(TOKEN) is None
    named.close()

    monkeypatch.setenv("WUCME_STORE_DB", db)
    defined = ChallengeStore()  # WUCME_STORE_DB defined: the database
    assert defined.shared
    defined.put("fromdb", "fromdb.k", "a.test", "http-01")
    assert [r[1] for r in rows(db)] == ["fromdb"]
    defined.close()
    local = ChallengeStore(tmp_path / "mine")  # a directory named wins over the logical name
    assert not local.shared and local.get("fromdb") is None


def test_http01_and_tls_alpn01_rows_are_kept_apart_by_kind(db: str) -> None:
    store = ChallengeStore(db=db)
    store.put("example", "http.k", "example", "http-01", ttl=600)
    store.alpn_put("Example.", "alpn.k", ttl=300)  # the same key, "example", as an SNI
    assert rows(db) == [("http-01", "example", "example", "http-01", "http.k", 600),
                        ("tls-alpn-01", "example", "Example", "tls-alpn-01", "alpn.k", 300)]
    assert store.get("example") == "http.k"
    entry = store.alpn_lookup("EXAMPLE", sni=True)
    assert entry is not None and (entry.ident, entry.key_authorization) == ("Example", "alpn.k")
    assert time.time() + 200 < entry.expires <= time.time() + 300
    assert store.alpn_get("example") == "alpn.k" and len(store) == 2

    store.remove("example")
    assert store.get("example") is None and store.alpn_get("example") == "alpn.k"
    store.put("example", "http.k", "example", "http-01")
    store.alpn_remove("example.")
    assert store.alpn_lookup("example") is None and store.get("example") == "http.k"
    assert [r[0] for r in rows(db)] == ["http-01"]
    store.close()


def test_an_ip_identifier_is_kept_under_its_reverse_name(db: str) -> None:
    store = ChallengeStore(db=db)
    store.alpn_put("192.0.2.7", KEYAUTH)
    assert [r[:3] for r in rows(db)] == [("tls-alpn-01", "7.2.0.192.in-addr.arpa", "192.0.2.7")]
    assert store.alpn_lookup("192.0.2.7", sni=True) is None
    entry = store.alpn_lookup("7.2.0.192.in-addr.arpa", sni=True)
    assert entry is not None and entry.ident == "192.0.2.7"
    store.close()


def test_close_ends_the_database_session(db: str) -> None:
    before = sessions(db)
    store = ChallengeStore(db=db)
    store.put(TOKEN, KEYAUTH, "a.test", "http-01")
    assert sessions(db) == before + 1
    store.close()
    deadline = time.monotonic() + 5
    while sessions(db) != before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sessions(db) == before


def test_ttl_is_held_between_none_and_a_day(db: str) -> None:
    store = PgChallenges(db)
    store.put("tls-alpn-01", "past", "a.test", "tls-alpn-01", "p.k", -30)
    store.put("http-01", "day", "a.test", "http-01", "d.k", MAX_AGE)
    store.put("http-01", "more", "a.test", "http-01", "m.k", MAX_AGE + 1)
    assert [(r[1], r[5]) for r in rows(db)] == [("day", 86400), ("more", 86400), ("past", 0)]
    assert store.get("tls-alpn-01", "past") is None and store.count() == 2
    assert store.get("http-01", "day") == ("a.test", "d.k", pytest.approx(time.time() + 86400, abs=5))
    store.close()


def test_a_reader_before_any_writer_finds_no_table_and_no_challenge(db: str) -> None:
    store = PgChallenges(db)
    assert store.get("http-01", "tok") is None and store.count() == 0 and not store.present()
    assert rows(db) == []  # reading creates nothing: a web server's role needs only SELECT
    store.put("http-01", "tok", "a.test", "http-01", "tok.k", 60)
    assert store.present() and store.count() == 1
    store.close()


def test_purge_and_remove_count_the_rows_they_delete(db: str) -> None:
    store = PgChallenges(db)
    assert store.purge() == 0  # the first writer creates the table, then finds nothing
    for key in ("a", "b", "c"):
        store.put("http-01", key, "a.test", "http-01", f"{key}.k", 0 if key != "c" else 60)
    with psycopg.connect(db, autocommit=True) as c:
        c.execute(f"UPDATE {TABLE} SET created = now() - interval '2 days' WHERE key = 'c'")
    assert store.purge() == 3 and rows(db) == []
    store.close()


def test_first_writers_at_once_all_succeed(db: str) -> None:
    """CREATE TABLE IF NOT EXISTS races with itself: the losers fail as a unique violation or a
    duplicate type, depending on where they met, and each must be taken as "the table exists"."""
    for round in range(4):
        with psycopg.connect(db, autocommit=True) as c:
            c.execute(f"DROP TABLE IF EXISTS {TABLE}")
        errors: list[BaseException] = []
        start = threading.Barrier(8)

        def write(i: int) -> None:
            store = PgChallenges(db)
            try:
                store.present()  # connected: the race is the CREATE alone
                start.wait()
                store.put("http-01", f"t{i}", "a.test", "http-01", f"t{i}.k", 60)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
            finally:
                store.close()

        threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert errors == [], round
        assert [r[1] for r in rows(db)] == [f"t{i}" for i in range(8)]


def test_a_database_that_does_not_answer_fails_writers_by_name_and_readers_find_nothing() -> None:
    from harness.pebble import free_port

    dead = f"host=127.0.0.1 port={free_port()} dbname=postgres user=postgres connect_timeout=1"
    store = PgChallenges(dead)
    assert store.conninfo == dead
    with pytest.raises(OSError) as ei:
        store.put("http-01", "tok", "a.test", "http-01", "tok.k", 60)
    assert str(ei.value).startswith("shared challenge store: cannot connect to the cluster database")
    assert store.get("http-01", "tok") is None and store.count() == 0
    store.close()
