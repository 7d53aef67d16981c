"""Shared renewals (WUCME_CLUSTER_MODE SHARED, docs/cluster.md): every node's agent runs its pass
on one repository, each certificate goes to the first node that locks it on PostgreSQL.

Real parts throughout: a PostgreSQL server the tests start, one Pebble (its 5% bad nonces kept)
behind the counting proxy, three nodes as separate agent processes with node names of their own,
the http-01 answers served from the shared store by a responder standing for the web servers.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent.support import comm
from agent.test_cluster_lock import advisory
from cluster.renewals import Cluster, ClusterNode, Ledger, make_due_repository, not_due, wait_all
from harness.faultproxy import FaultProxy
from harness.pebble import Pebble, free_port
from harness.postgres import PgServer, running_postgres

psycopg = pytest.importorskip("psycopg", reason="psycopg 3 is not installed (pip install 'psycopg[binary]')")

from wucme.lockpg import PgLock, lock_id, lock_key  # noqa: E402
from wucme.vms.ods2 import ods2_name  # noqa: E402


def by_node(nodes: list[ClusterNode]) -> dict[str, int]:
    return {n.name: len(n.renewed()) for n in nodes}


@pytest.mark.pebble
def test_300_due_certificates_three_nodes_each_renewed_exactly_once(cluster: Cluster) -> None:
    names = cluster.prepare(300)
    nodes = [cluster.node(n) for n in ("a", "b", "c")]
    t0 = time.monotonic()
    agents = [n.agent("/once") for n in nodes]
    wait_all(agents, 240)
    took = time.monotonic() - t0
    assert [p.returncode for p in agents] == [0, 0, 0], [n.output()[-2000:] for n in nodes]
    ledger = Ledger(cluster.proxy)
    assert set(ledger.new_orders()) == set(names)
    assert set(ledger.new_orders().values()) == {1}, "a certificate ordered twice"
    assert set(ledger.issued().values()) == {1} and len(ledger.issued()) == 300
    assert sorted(not_due(cluster.repo, names)) == sorted(names)
    spread = by_node(nodes)
    assert sum(spread.values()) == 300 and all(v > 0 for v in spread.values()), spread
    assert "%WUCME-I-SHARED" in nodes[0].output()
    print(f"300 renewals by three nodes in {took:.1f} s: {spread}")


def wait_until(pred: Callable[[], bool], timeout: float, what: str) -> float:
    t0 = time.monotonic()
    while not pred():
        assert time.monotonic() - t0 < timeout, f"not within {timeout} s: {what}"
        time.sleep(0.05)
    return time.monotonic() - t0


@pytest.mark.pebble
def test_kill_9_of_a_node_mid_pass_its_certificates_go_to_the_others_once(cluster: Cluster) -> None:
    names = cluster.prepare(300)
    a, b, c = (cluster.node(n) for n in ("a", "b", "c"))
    agents = [n.agent("/once") for n in (a, b, c)]
    wait_until(lambda: len(c.renewed()) >= 15, 120, "node C renewing")
    c.kill()
    killed = time.monotonic()
    done_by_c = set(c.renewed())
    wait_all(agents[:2], 240)
    assert [p.returncode for p in agents[:2]] == [0, 0], a.output()[-3000:] + b.output()[-3000:]
    # Every certificate renewed, each by exactly one node (C's count is what it saved before it died).
    assert sorted(not_due(cluster.repo, names)) == sorted(names)
    files = a.renewed() + b.renewed() + sorted(done_by_c)
    assert len(files) == len(set(files)), "a certificate renewed twice"
    assert not done_by_c & set(a.renewed() + b.renewed())
    # C may have died between saving a certificate and saying so: those few were ordered once.
    ledger = Ledger(cluster.proxy)
    file_of = {f"WUCME_C_{ods2_name(n)}.PEM": n for n in names}
    unsaid = [file_of[f] for f in file_of.keys() - set(files)]
    assert len(unsaid) <= 4 and all(ledger.new_orders()[n] == 1 for n in unsaid), unsaid
    # At the CA: never two orders in flight for one name; the second orders are those of C's
    # certificates in flight when it died (at most its 4 workers), and nothing else.
    assert ledger.overlapping() == []
    twice = {n for n, k in ledger.new_orders().items() if k > 1}
    assert len(twice) <= 4 and max(ledger.new_orders().values()) <= 2, twice
    assert set(ledger.new_orders()) == set(names)
    late = [t for oid, t in ledger.finalized.items() if set(ledger.orders[oid]) & twice and t > killed]
    takeover = max(late) - killed if late else 0.0
    print(f"C killed after {len(done_by_c)} renewals; {len(twice)} of its orders taken over; "
          f"all renewed {takeover:.1f} s after the kill")


@pytest.mark.pebble
def test_a_certificate_renewed_by_another_node_while_waited_for_is_not_ordered_again(cluster: Cluster) -> None:
    """The re-read after the lock: node A waits for the lock node B holds, B renews the
    certificate meanwhile, and A, granted the lock, finds it renewed and orders nothing."""
    from cluster.renewals import renew_elsewhere
    from wucme.repository import certificate_resource
    from wucme.vms.ods2 import cert_file_name

    names = cluster.prepare(3)
    x = names[0]
    b = PgLock(cluster.db, certificate_resource(cert_file_name(x)), repository=cluster.repo).acquire(wait=False)
    try:
        a = cluster.node("a")
        agent = a.agent("/once")
        wait_until(lambda: advisory(cluster.db, b.key) == (1, 1), 60, "node A waiting for the lock of " + x)
        assert sorted(a.renewed()) == sorted(cert_file_name(n) for n in names[1:])
        out = a.wucme("check", "/cluster").stdout  # what an administrator sees meanwhile
        assert "%WUCME-S-SHARED, renewals of" in out and "1 of its 3 certificate(s) locked now" in out, out
        renew_elsewhere(cluster.repo, x)  # node B's renewal
    finally:
        b.release()
    assert agent.wait(60) == 0, a.output()
    assert Ledger(cluster.proxy).new_orders() == {n: 1 for n in names[1:]}
    assert "renewed by another process meanwhile" in a.output()
    assert b.key == lock_key(certificate_resource(f"WUCME_C_{ods2_name(x)}.PEM"), lock_id(cluster.repo))


@pytest.mark.pebble
def test_lock_database_down_at_pass_start_renews_nothing_and_never_locks_locally(
        cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    """No fallback to the local locks, which the other nodes would not see."""
    from wucme.lockpg import PgLockError
    from wucme.repository import Repository

    names = cluster.prepare(5)
    before = {p.name: p.stat().st_mtime_ns for p in cluster.repo.iterdir()}
    dead = f"host=127.0.0.1 port={free_port()} dbname=postgres user=postgres connect_timeout=2"
    a = cluster.node("a", WUCME_LOCK_DB=dead)
    agent = a.agent("/once")
    assert agent.wait(60) == 2, a.output()  # the settings in the cluster table cannot be read either
    assert "%WUCME-E-CLUSTERDB" in a.output() and "Traceback" not in a.output()
    assert Ledger(cluster.proxy).new_orders() == {}
    assert not_due(cluster.repo, names) == []
    assert {p.name: p.stat().st_mtime_ns for p in cluster.repo.iterdir()} == before
    # The certificate's lock itself: the database's or none.
    monkeypatch.setenv("WUCME_LOCK_DB", dead)
    with pytest.raises(PgLockError, match="cannot connect to the lock database"):
        Repository(cluster.repo).lock_certificate("WUCME_C_C000_CLUSTER_TEST.PEM", wait=False)
    assert not (cluster.repo / "WUCME_LOCKS").exists()


@pytest.fixture
def own_pg() -> Iterator[PgServer]:
    """A PostgreSQL server of this test's own: it is stopped and started under the agents."""
    with running_postgres() as server:
        yield server


def written(repo: Path) -> list[tuple[float, str]]:
    """(mtime, name) of every certificate and key file, earlier versions included: each save
    is a new file, so this is every save's time."""
    return sorted((p.stat().st_mtime, p.name) for p in repo.iterdir() if p.name.startswith(("WUCME_C_", "WUCME_K_")))


@pytest.mark.pebble
def test_postgresql_restarted_under_running_agents(own_pg: PgServer, pebble_factory: Callable[..., Pebble],
                                                   tmp_path: Path) -> None:
    """No two orders for one certificate in flight at once, nothing saved while the locks are
    gone, and the renewals resume once the database is back."""
    pebble = pebble_factory()
    with FaultProxy(pebble) as proxy:
        cluster = Cluster(tmp_path, own_pg.conninfo, pebble, proxy)
        cluster.start_responder()
        try:
            names = cluster.prepare(240)
            nodes = [cluster.node(n) for n in ("a", "b", "c")]
            agents = [n.agent() for n in nodes]  # running: the first pass at once, the next on schedule
            wait_until(lambda: [comm(p.pid) for p in agents] == ["wuCME-shared"] * 3, 20, "named wuCME-shared")
            wait_until(lambda: sum(len(n.renewed()) for n in nodes) >= 40, 120, "renewals under way")
            down = time.time()
            own_pg.stop()
            gone, gone_m = time.time(), time.monotonic()
            time.sleep(4)
            up, up_m = time.time(), time.monotonic()
            own_pg.start()
            wait_until(lambda: len(not_due(cluster.repo, names)) == len(names), 120, "every renewal done")
            resumed = time.time() - up
            for n in nodes:
                n.stop()
            outputs = "".join(n.output() for n in nodes)
            # Nothing saved from one second after the server went (a save checked just before it
            # may still land) until it was back.
            assert [w for w in written(cluster.repo) if gone + 1.0 < w[0] < up] == []
            assert "%WUCME-W-LOCKLOST" in outputs or "%WUCME-E-CLUSTERDB" in outputs
            ledger = Ledger(proxy)
            assert ledger.overlapping() == []
            # Nor finalized at the CA meanwhile: the lock is checked after each challenge too.
            assert [t for t in ledger.finalized.values() if gone_m + 1.0 < t < up_m] == []
            files = [f for n in nodes for f in n.renewed()]
            assert len(files) == len(set(files)) == len(names), "a certificate saved twice"
            assert set(ledger.new_orders()) == set(names)
            print(f"PostgreSQL down {up - down:.1f} s; renewals all done {resumed:.1f} s after it was back; "
                  f"{sum(1 for k in ledger.new_orders().values() if k > 1)} ordered again after the loss")
        finally:
            cluster.close()


def test_a_cluster_mode_that_is_neither_stops_the_agent(tmp_path: Path) -> None:
    """The nodes must agree on the mode: a typo is not taken for the default."""
    repo = tmp_path / "repo"
    repo.mkdir()
    node = ClusterNode(tmp_path, "a", repo, {"WUCME_CLUSTER_MODE": "shard"})
    agent = node.agent("/once")
    assert agent.wait(30) == 2
    assert "%WUCME-E-BADVALUE, WUCME_CLUSTER_MODE 'SHARD' must be ACTIVE or SHARED" in node.output()


def test_a_pass_the_database_cut_short_is_retried_within_seconds_on_each_nodes_own_schedule(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import datetime as dt

    from wucme.agent.cycle import run_cycle
    from wucme.agent.log import AgentLog
    from wucme.agent.schedule import AgentState
    from wucme.repository import Repository

    repo = tmp_path / "repo"
    make_due_repository(repo, 2)
    before = {p.name: p.stat().st_mtime_ns for p in repo.iterdir()}
    monkeypatch.setenv("WUCME_LOCK_DB", f"host=127.0.0.1 port={free_port()} dbname=x user=x connect_timeout=2")
    now = dt.datetime(2026, 12, 1, 0, 20, tzinfo=dt.timezone.utc)
    retries = []
    for i in range(3):
        result = run_cycle(Repository(repo), AgentLog(0), now, shared=True, node="NODEA")
        assert not result.ok and "CLUSTERDB" in result.summary
        state = AgentState.load(repo, "WUCME_AGENT_NODEA.JSON")
        assert state.failures == i + 1 and state.retry_time is not None
        retries.append((state.retry_time - now).total_seconds())
        now = state.retry_time
    assert retries == [10, 20, 40]
    assert not (repo / "WUCME_AGENT.JSON").exists()  # the one active agent's file: not a node's
    assert {p.name: p.stat().st_mtime_ns for p in repo.iterdir() if p.name in before} == before


@pytest.mark.pebble
def test_each_node_loads_what_another_node_renewed_once(cluster: Cluster) -> None:
    """A node's servers need the certificates whoever renewed them: each node's pass loads when
    the repository's certificates differ from those it last loaded, and only then."""
    cluster.prepare(3)
    loads = cluster.tmp / "loads"

    def node(name: str) -> ClusterNode:
        return cluster.node(name, WUCME_LOAD=f"/bin/sh -c 'echo {name} >> {loads}'")

    a, b = node("a"), node("b")
    assert a.agent("/once").wait(60) == 0, a.output()
    assert len(a.renewed()) == 3 and loads.read_text().split() == ["a"]
    assert b.agent("/once").wait(60) == 0, b.output()
    assert b.renewed() == [] and loads.read_text().split() == ["a", "b"]  # nothing due, all new to b
    for n in (b, a):  # nothing changed since either loaded
        assert n.agent("/once").wait(60) == 0, n.output()
    assert loads.read_text().split() == ["a", "b"]
    assert (cluster.repo / "WUCME_LOAD_A.JSON").exists() and (cluster.repo / "WUCME_LOAD_B.JSON").exists()
