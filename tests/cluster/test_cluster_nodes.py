"""Clusters on PostgreSQL (docs/cluster.md): three nodes as separate processes, one database.

Each node has its own loopback address (127.0.0.2, .3, .4: all of 127.0.0.0/8 is local on Linux),
its own repository and its own logical-name tables (WUCME_LNM_DIR); what they share is the
database WUCME_LOCK_DB names, a real PostgreSQL server started by the tests.  Pebble's DNS
(pebble-challtestsrv) sends the CA's validation to one node while the order runs on another,
as a load balancer would.
"""
from __future__ import annotations

import hashlib
import json
import os
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.pebble import Pebble, stop_child

psycopg = pytest.importorskip("psycopg", reason="psycopg 3 is not installed (pip install 'psycopg[binary]')")

from wucme.challenge.store import ChallengeStore  # noqa: E402
from wucme.lockpg import PgLock  # noqa: E402

A, B, C = "127.0.0.2", "127.0.0.3", "127.0.0.4"


class Node:
    """One cluster member: `python3 -m wucme ...` with a repository and tables of its own."""

    def __init__(self, tmp: Path, name: str, addr: str, db: str | None, pebble: Pebble | None = None):
        self.name, self.addr, self.tmp = name, addr, tmp / name
        self.here = self.tmp / "here"
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("WUCME_", "_WUCME_", "UACME_", "WASD_"))}
        self.env.update(WUCME_HERE=str(self.here), WUCME_LNM_DIR=str(self.tmp / "lnm"),
                        WUCME_ALPN_SOCKET=str(self.tmp / "alpn.sock"))
        if db is not None:
            self.env["WUCME_LOCK_DB"] = db
        if pebble is not None:
            self.env.update(WUCME_CA=pebble.directory_url, WUCME_CA_BUNDLE=pebble.ca_bundle)

    def __call__(self, *args: str, code: int | None = 0, **env: str) -> subprocess.CompletedProcess[str]:
        """Run wucme on this node; *code* None accepts any exit status."""
        r = subprocess.run([sys.executable, "-m", "wucme", *args], env=dict(self.env, **env),
                           capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        assert code is None or r.returncode == code, (f"node {self.name}: wucme {' '.join(args)}: exit {r.returncode}, "
                                      f"wanted {code}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
        assert "Traceback" not in r.stderr, r.stderr
        return r

    def start(self, *argv: str, **env: str) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, *argv], env=dict(self.env, **env), text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def wait_listening(addr: str, port: int, proc: subprocess.Popen[str], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"responder exited: {proc.stdout.read() if proc.stdout else ''}"
        try:
            socket.create_connection((addr, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on {addr}:{port}")


def route(pebble: Pebble, host: str, addr: str) -> None:
    """Pebble's DNS answers *addr* for *host*: the load balancer chose that node."""
    cts = pebble.challtestsrv
    assert cts is not None
    body = json.dumps({"host": host + ".", "addresses": [addr]}).encode()
    urllib.request.urlopen(urllib.request.Request(cts.management_url + "/add-a", data=body), timeout=5).read()
    assert cts.resolve(host) == [addr]


def rows(db: str, table: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(db, autocommit=True) as c:
        if c.execute("SELECT to_regclass(%s)", (table,)).fetchone()[0] is None:
            return []
        return list(c.execute(f"SELECT * FROM {table}").fetchall())


@pytest.fixture
def db(pg_server: str) -> Iterator[str]:
    """The cluster database, emptied of wucme's tables before and after each test."""
    def drop() -> None:
        with psycopg.connect(pg_server, autocommit=True) as c:
            c.execute("DROP TABLE IF EXISTS wucme_challenges, wucme_lnm_cluster")
    drop()
    yield pg_server
    drop()


@pytest.fixture
def cluster_pebble(pebble_factory: Callable[..., Pebble]) -> Pebble:
    """A Pebble of this test's own, since its DNS is re-pointed at the nodes."""
    return pebble_factory()


# --- 1. challenges any node answers ---------------------------------------------------------

@pytest.mark.pebble
def test_http01_order_on_node_a_validated_through_node_b(db: str, cluster_pebble: Pebble, tmp_path: Path) -> None:
    pebble = cluster_pebble
    a, b, c = (Node(tmp_path, n, ip, db, pebble) for n, ip in (("a", A), ("b", B), ("c", C)))
    responders = [n.start("-m", "wucme", "check", "/http01", "/seconds=100",
                          WUCME_HTTP01=f"{n.addr}:{pebble.http_port}") for n in (b, c)]
    try:
        for n, p in zip((b, c), responders):
            wait_listening(n.addr, pebble.http_port, p)
        route(pebble, "www.cluster.test", B)
        a("register", "admin@example.org")
        # Node A answers nothing itself (no WUCME_HTTP01): it only writes the shared store.
        r = a("issue", "www.cluster.test", WUCME_CHALLENGE="http-01")
        assert "%WUCME-S-ISSUED" in r.stdout, r.stdout
        assert (a.here / "WUCME_C_WWW_CLUSTER_TEST.PEM").exists()
        assert rows(db, "wucme_challenges") == []  # the order withdrew its challenge
        assert not (a.here / "WUCME_CHALLENGES").exists() or not list((a.here / "WUCME_CHALLENGES").iterdir())
    finally:
        for p in responders:
            stop_child(p)  # type: ignore[arg-type]


@pytest.mark.pebble
def test_tls_alpn01_order_on_node_a_validated_through_node_c_wucme_alpn(
        db: str, cluster_pebble: Pebble, tmp_path: Path) -> None:
    pebble = cluster_pebble
    a, c = Node(tmp_path, "a", A, db, pebble), Node(tmp_path, "c", C, db, pebble)
    c.tmp.mkdir(parents=True)
    alpn = c.start("-m", "wucme.challenge.alpn", "-b", f"{C}@{pebble.tls_port}", "-c", "127.0.0.1@1",
                   "-s", str(c.tmp / "alpn.sock"), "-p", str(c.tmp / "alpn.pid"), "-l", str(c.tmp / "alpn.log"),
                   "-vv")
    try:
        wait_listening(C, pebble.tls_port, alpn)
        route(pebble, "alpn.cluster.test", C)
        a("register", "admin@example.org")
        # WUCME_ALPN AGENT: node A puts the challenge in the store and binds nothing.
        a("issue", "alpn.cluster.test", WUCME_CHALLENGE="tls-alpn-01", WUCME_ALPN="AGENT")
        assert (a.here / "WUCME_C_ALPN_CLUSTER_TEST.PEM").exists()
        assert rows(db, "wucme_challenges") == []
    finally:
        stop_child(alpn)  # type: ignore[arg-type]


def http_get(addr: str, port: int, token: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://{addr}:{port}/.well-known/acme-challenge/{token}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_a_removed_challenge_is_never_served_by_another_node(db: str, tmp_path: Path) -> None:
    """Node A publishes and withdraws; node B's responder (another process, another session)
    serves it until the moment it is withdrawn and never after, however soon it is asked."""
    from harness.pebble import free_port

    port = free_port(B)
    b = Node(tmp_path, "b", B, db)
    responder = b.start("-m", "wucme", "check", "/http01", "/seconds=100", WUCME_HTTP01=f"{B}:{port}")
    node_a = ChallengeStore(db=db)
    try:
        wait_listening(B, port, responder)
        assert node_a.shared
        for i in range(20):
            token = f"tok{i}-" + "x" * 30
            node_a.put(token, f"{token}.thumb", "www.cluster.test", "http-01")
            assert http_get(B, port, token) == (200, f"{token}.thumb")
            node_a.remove(token)
            assert http_get(B, port, token)[0] == 404  # at once: no cache serves it
    finally:
        node_a.close()
        stop_child(responder)  # type: ignore[arg-type]


def acme_tls_1(addr: str, port: int, sni: str) -> bytes | None:
    """The DER certificate presented for an acme-tls/1 handshake naming *sni*, or None when
    acme-tls/1 was not negotiated (wucme alpn then passes the connection to its backend)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["acme-tls/1"])
    try:
        with socket.create_connection((addr, port), timeout=5) as raw, \
                ctx.wrap_socket(raw, server_hostname=sni) as tls:
            if tls.selected_alpn_protocol() != "acme-tls/1":
                return None
            return tls.getpeercert(binary_form=True)
    except (OSError, ssl.SSLError):
        return None


def test_a_removed_tls_alpn01_challenge_is_never_served_by_another_nodes_wucme_alpn(
        db: str, tmp_path: Path) -> None:
    from harness.pebble import free_port

    port = free_port(C)
    c = Node(tmp_path, "c", C, db)
    c.tmp.mkdir(parents=True)
    alpn = c.start("-m", "wucme.challenge.alpn", "-b", f"{C}@{port}", "-c", "127.0.0.1@1",
                   "-s", str(c.tmp / "alpn.sock"), "-p", str(c.tmp / "alpn.pid"), "-l", str(c.tmp / "alpn.log"))
    node_a = ChallengeStore(db=db)
    try:
        wait_listening(C, port, alpn)
        assert acme_tls_1(C, port, "www.cluster.test") is None
        for i in range(10):
            node_a.alpn_put("www.cluster.test", f"token{i}.thumb")
            der = acme_tls_1(C, port, "www.cluster.test")
            assert der is not None, (c.tmp / "alpn.log").read_text()
            digest = hashlib.sha256(f"token{i}.thumb".encode()).digest()
            assert digest in der  # the acmeIdentifier extension of RFC 8737 §3
            node_a.alpn_remove("www.cluster.test")
            assert acme_tls_1(C, port, "www.cluster.test") is None  # at once
    finally:
        node_a.close()
        stop_child(alpn)  # type: ignore[arg-type]


def test_the_web_script_loads_psycopg_only_for_a_cluster(db: str, tmp_path: Path) -> None:
    """The http-01 script runs once per request: outside a cluster it never imports psycopg."""
    probe = ("import io, sys\nfrom wucme.web import cgi_main\nout = io.BytesIO()\n"
             "cgi_main({'REQUEST_METHOD': 'GET', 'PATH_INFO': '/.well-known/acme-challenge/tok'}, "
             "io.BytesIO(), out)\nprint('psycopg' in sys.modules, out.getvalue().split(b'\\r\\n\\r\\n')[-1])")
    a = Node(tmp_path, "a", A, None)
    r = subprocess.run([sys.executable, "-c", probe], env=a.env, capture_output=True, text=True, timeout=60)
    assert r.stdout.strip() == "False b'Challenge received but no such token.'", r.stderr
    store = ChallengeStore(db=db)
    store.put("tok", "tok.thumb", "a.test", "http-01")
    store.close()
    a = Node(tmp_path, "a2", A, db)
    r = subprocess.run([sys.executable, "-c", probe], env=a.env, capture_output=True, text=True, timeout=60)
    assert r.stdout.strip() == "True b'tok.thumb'", r.stderr


def test_challenges_expire_on_the_database_clock_and_after_a_day_whatever_the_ttl(db: str) -> None:
    store = ChallengeStore(db=db)
    store.put("short", "short.t", "a.test", "http-01", ttl=0.2)
    store.put("long", "long.t", "a.test", "http-01", ttl=10 * 86400)
    assert store.get("short") == "short.t" and store.get("long") == "long.t"
    time.sleep(0.4)
    assert store.get("short") is None
    with psycopg.connect(db, autocommit=True) as c:  # written two days ago, asked to live ten
        c.execute("UPDATE wucme_challenges SET created = now() - interval '2 days' WHERE key = 'long'")
    assert store.get("long") is None
    assert store.purge() == 2 and rows(db, "wucme_challenges") == []


def test_database_down_writer_fails_clearly_and_reader_answers_no_such_token(tmp_path: Path) -> None:
    from harness.pebble import free_port

    dead = f"host=127.0.0.1 port={free_port()} dbname=postgres user=postgres connect_timeout=2"
    store = ChallengeStore(db=dead)
    with pytest.raises(OSError, match="shared challenge store: cannot connect to the cluster database"):
        store.put("tok", "tok.t", "a.test", "http-01")
    assert store.get("tok") is None and store.alpn_lookup("a.test") is None


def test_injection_shaped_tokens_and_identifiers_are_refused_and_values_stored_literally(db: str) -> None:
    store = ChallengeStore(db=db)
    store.put("keep", "keep.t", "a.test", "http-01")
    for token in ("x'; DROP TABLE wucme_challenges; --", "a' OR '1'='1", "%", "a b"):
        with pytest.raises(ValueError):
            store.put(token, "v", "a.test", "http-01")
        assert store.get(token) is None
    with pytest.raises(ValueError):
        store.alpn_put("a.test'; DROP TABLE wucme_challenges; --", "v")
    evil = "k'); DELETE FROM wucme_challenges; --.t"
    store.put("lit", evil, "a.test", "http-01")
    assert store.get("lit") == evil and store.get("keep") == "keep.t"
    assert store.get("a' OR '1'='1") is None  # a reader never builds SQL from a token either
    assert store.alpn_lookup("x' OR 1=1 --", sni=True) is None


# --- 2. the cluster logical-name table ------------------------------------------------------

def test_define_cluster_on_one_node_is_seen_by_the_others(db: str, tmp_path: Path) -> None:
    a, b, c = (Node(tmp_path, n, ip, db) for n, ip in (("a", A), ("b", B), ("c", C)))
    a("define", "/cluster", "WUCME_SITE", "ONE,TWO")
    out = b("show", "logical", "WUCME_SITE").stdout
    assert '"WUCME_SITE" = "ONE"' in out and '= "TWO"' in out and "(LNM$SYSCLUSTER_TABLE)" in out
    assert not (b.tmp / "lnm" / "cluster.json").exists() and not (a.tmp / "lnm" / "cluster.json").exists()
    # The search order is kept: node C's system table comes before the cluster table.
    c("define", "/system", "WUCME_SITE", "LOCAL")
    assert '"WUCME_SITE" = "LOCAL" (LNM$SYSTEM_TABLE)' in c("show", "logical", "WUCME_SITE").stdout
    # Iteration across tables, and the terminal attribute stops it.
    b("define", "/system", "WUCME_TARGET", "/srv/b")
    a("define", "/cluster", "WUCME_POINTER", "WUCME_TARGET")
    assert "/srv/b" in b("show", "logical", "WUCME_POINTER").stdout
    a("define", "/cluster", "/translation_attributes=terminal", "WUCME_POINTER", "WUCME_TARGET")
    out = b("show", "logical", "WUCME_POINTER").stdout
    assert "[terminal]" in out and "/srv/b" not in out
    # A concealed device defined once for the cluster.
    a("define", "/cluster", "/translation_attributes=concealed", "WUCME_DEV", "/srv/dev/")
    assert "[concealed]" in c("show", "logical", "WUCME_DEV").stdout
    # Every node sees the whole table; a DEASSIGN on one is seen by the others.
    listing = c("show", "logical", "/cluster").stdout
    assert all(n in listing for n in ('"WUCME_SITE"', '"WUCME_POINTER"', '"WUCME_DEV"'))
    b("deassign", "/cluster", "WUCME_SITE")
    assert '"WUCME_SITE"' not in a("show", "logical", "/cluster").stdout


def test_the_cluster_table_cannot_name_its_own_database(db: str, tmp_path: Path) -> None:
    """WUCME_LOCK_DB comes from the process or system table, never from the cluster table."""
    a = Node(tmp_path, "a", A, db)
    a("define", "/cluster", "WUCME_LOCK_DB", "host=elsewhere.invalid")
    out = a("show", "logical", "WUCME_DEFINED_NOWHERE", code=None)
    assert "elsewhere.invalid" not in out.stdout + out.stderr
    r = a("check", "/cluster")
    assert "%WUCME-S-CLUSTERDB" in r.stdout
    # And with WUCME_LOCK_DB in the system table only, the cluster table is the database's.
    b = Node(tmp_path, "b", B, None)
    b("define", "/system", "WUCME_LOCK_DB", db)
    assert "host=elsewhere.invalid" in b("show", "logical", "/cluster").stdout


def test_injection_shaped_logical_names_and_values_are_stored_literally(db: str, tmp_path: Path) -> None:
    a, b = Node(tmp_path, "a", A, db), Node(tmp_path, "b", B, db)
    a("define", "/cluster", "WUCME_KEEP", "yes")
    name = "X';DROP_TABLE_wucme_lnm_cluster;--X"  # (a trailing - is DCL's continuation)
    value = "v'); DELETE FROM wucme_lnm_cluster; --"
    a("define", "/cluster", name, f'"{value}"')
    out = b("show", "logical", "/cluster").stdout
    assert f'"{name.upper()}" = "{value}"' in out and '"WUCME_KEEP" = "yes"' in out
    a("define", "/cluster", "A B", "x", code=None)
    assert len(rows(db, "wucme_lnm_cluster")) == 2


def test_cluster_table_database_down_fails_lookups_clearly(tmp_path: Path) -> None:
    from harness.pebble import free_port

    a = Node(tmp_path, "a", A, f"host=127.0.0.1 port={free_port()} dbname=x user=x connect_timeout=2")
    r = a("show", "logical", "WUCME_NOWHERE", code=None)
    assert r.returncode != 0 and "%WUCME-E-CLUSTERDB" in r.stdout + r.stderr
    # The local tables still answer: a name found before the cluster table needs no database.
    a("define", "/system", "WUCME_LOCAL", "/srv/here")  # a path: nothing to iterate
    assert '"WUCME_LOCAL" = "/srv/here"' in a("show", "logical", "WUCME_LOCAL").stdout


# --- 3. wucme check /cluster ---------------------------------------------------------------

def _out(r: subprocess.CompletedProcess[str]) -> str:
    return r.stdout + r.stderr


def test_check_cluster(db: str, tmp_path: Path) -> None:
    a = Node(tmp_path, "a", A, None)
    assert "%WUCME-W-NOCLUSTER, WUCME_LOCK_DB is not defined" in _out(a("check", "/cluster", code=None))
    a("define", "/cluster", "WUCME_LOCK_DB", db)  # the file cluster table: never where the database is named
    out = _out(a("check", "/cluster", code=None))
    assert "%WUCME-W-LOCKDBCLUSTER" in out and "%WUCME-W-NOCLUSTER" in out
    a = Node(tmp_path, "a2", A, db)
    a.here.mkdir(parents=True)
    out = _out(a("check", "/cluster", code=None))
    assert "%WUCME-S-CLUSTERDB, the cluster database answered" in out
    assert "%WUCME-I-NOSTORE" in out and "%WUCME-I-NOLNMTABLE" in out
    lock = PgLock(db, "WUCME_ACTIVE", repository=a.here)
    lock.value_block = b"NODEA pid=4242"
    with lock:
        store = ChallengeStore(db=db)
        store.put("tok", "tok.t", "a.test", "http-01")
        store.close()
        a("define", "/cluster", "WUCME_X", "1")
        out = _out(a("check", "/cluster"))
        assert "%WUCME-S-ACTIVE, the cluster lock of" in out and "held by NODEA pid=4242" in out
        assert "%WUCME-S-STORE, shared challenge store present: 1 challenge(s) pending" in out
        assert "%WUCME-S-LNMTABLE" in out
    assert "%WUCME-W-NOACTIVE" in _out(a("check", "/cluster", code=None))
    from harness.pebble import free_port

    dead = Node(tmp_path, "a3", A, f"host=127.0.0.1 port={free_port()} dbname=x user=x connect_timeout=2")
    r = dead("check", "/cluster", code=None)
    out = _out(r)
    assert r.returncode != 0 and "%WUCME-E-NOCLUSTERDB, the cluster database (WUCME_LOCK_DB) does not answer" \
        in out


def test_wucmes_own_tls_alpn01_responder_answers_from_the_shared_store(db: str) -> None:
    """The responder `issue` runs on WUCME_ALPN (tlsalpn.py) answers another node's entries, and
    stops the moment they are withdrawn."""
    from harness.pebble import free_port
    from wucme.challenge.tlsalpn import TlsAlpnResponder

    node_a, node_c = ChallengeStore(db=db), ChallengeStore(db=db)
    port = free_port(C)
    responder = TlsAlpnResponder(node_c, C, port).start()
    try:
        node_a.alpn_put("tls.cluster.test", "tok.thumb")
        der = acme_tls_1(C, port, "tls.cluster.test")
        assert der is not None and hashlib.sha256(b"tok.thumb").digest() in der
        node_a.alpn_remove("tls.cluster.test")
        assert acme_tls_1(C, port, "tls.cluster.test") is None
    finally:
        responder.stop()
        node_a.close()
        node_c.close()


def test_a_running_process_sees_another_nodes_define_within_a_second(
        db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Logical names are read when used (the seed on WUCME_VERBOSE): a DEFINE /CLUSTER made on
    node A reaches a process already running on node B within the cache time (1 s)."""
    from wucme.vms.lnm import trnlnm

    monkeypatch.setenv("WUCME_LOCK_DB", db)
    assert trnlnm("WUCME_CLUSTER_NEWS") is None
    Node(tmp_path, "a", A, db)("define", "/cluster", "WUCME_CLUSTER_NEWS", "/srv/one")
    t0 = time.monotonic()
    while trnlnm("WUCME_CLUSTER_NEWS") != "/srv/one":
        assert time.monotonic() - t0 < 1.5, "not seen within the cache time"
        time.sleep(0.02)
    Node(tmp_path, "a", A, db)("deassign", "/cluster", "WUCME_CLUSTER_NEWS")
    t0 = time.monotonic()
    while trnlnm("WUCME_CLUSTER_NEWS") is not None:
        assert time.monotonic() - t0 < 1.5, "the DEASSIGN not seen within the cache time"
        time.sleep(0.02)


def test_concurrent_defines_on_every_node_are_all_kept(db: str, tmp_path: Path) -> None:
    nodes = [Node(tmp_path, n, ip, db) for n, ip in (("a", A), ("b", B), ("c", C))]
    procs = [n.start("-m", "wucme", "define", "/cluster", f"WUCME_N_{n.name}_{i}", f"/v/{i}")
             for i in range(4) for n in nodes]
    for p in procs:
        out, _ = p.communicate(timeout=60)
        assert p.returncode == 0, out
    listing = nodes[0]("show", "logical", "/cluster").stdout
    assert all(f'"WUCME_N_{n.name.upper()}_{i}" = "/v/{i}"' in listing for i in range(4) for n in nodes)


def test_a_select_only_role_reads_the_store_and_cannot_write_it(db: str) -> None:
    """docs/cluster.md: the web server's script may have a role that can only read."""
    writer = ChallengeStore(db=db)
    writer.put("tok", "tok.thumb", "a.test", "http-01")
    with psycopg.connect(db, autocommit=True) as c:
        c.execute("DROP ROLE IF EXISTS wucme_web")
        c.execute("CREATE ROLE wucme_web LOGIN")
        c.execute("GRANT SELECT ON wucme_challenges TO wucme_web")
    reader = ChallengeStore(db=db.replace("user=postgres", "user=wucme_web"))
    try:
        assert reader.get("tok") == "tok.thumb"
        with pytest.raises(OSError, match="permission denied"):
            reader.put("other", "other.thumb", "a.test", "http-01")
        assert writer.get("other") is None
    finally:
        reader.close()
        writer.close()
        with psycopg.connect(db, autocommit=True) as c:
            c.execute("DROP TABLE wucme_challenges")
            c.execute("DROP ROLE wucme_web")
