"""Shared renewals (WUCME_CLUSTER_MODE SHARED, docs/cluster.md): every node's agent runs its pass
on one repository, each certificate goes to the first node that locks it on PostgreSQL.

Real parts throughout: a PostgreSQL server the tests start, one Pebble (its 5% bad nonces kept)
behind the counting proxy, three nodes as separate agent processes with node names of their own,
the http-01 answers served from the shared store by a responder standing for the web servers.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent.test_cluster_lock import advisory, pg_server  # noqa: F401  (the PostgreSQL fixture)
from cluster.renewals import ClusterNode, Ledger, make_due_repository, not_due, wait_all
from harness.faultproxy import FaultProxy
from harness.pebble import Pebble, free_port

psycopg = pytest.importorskip("psycopg", reason="psycopg 3 is not installed (pip install 'psycopg[binary]')")

from wucme.lockpg import PgLock, lock_id, lock_key  # noqa: E402


class Cluster:
    """A shared repository of due certificates and the nodes that renew it."""

    def __init__(self, tmp: Path, db: str, pebble: Pebble, proxy: FaultProxy) -> None:
        self.tmp, self.db, self.pebble, self.proxy = tmp, db, pebble, proxy
        self.repo = tmp / "shared-repo"
        self.repo.mkdir()
        self.env = {"WUCME_CA": proxy.directory_url, "WUCME_CA_BUNDLE": proxy.ca_bundle,
                    "WUCME_LOCK_DB": db, "WUCME_CLUSTER_MODE": "SHARED", "WUCME_CHALLENGE": "http-01"}
        self.nodes: list[ClusterNode] = []
        self.responder: subprocess.Popen[bytes] | None = None

    def node(self, name: str, **env: str) -> ClusterNode:
        n = ClusterNode(self.tmp, name, self.repo, dict(self.env, **env))
        self.nodes.append(n)
        return n

    def start_responder(self) -> None:
        """The web servers' http-01 answer, read from the shared store (no node answers itself)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("WUCME_")}
        env.update(WUCME_LOCK_DB=self.db, WUCME_LNM_DIR=str(self.tmp / "lnm-web"),
                   WUCME_HTTP01=f"127.0.0.1:{self.pebble.http_port}")
        self.responder = subprocess.Popen([sys.executable, "-m", "wucme", "check", "/http01", "/seconds=600"],
                                          env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL)
        import socket

        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.pebble.http_port), timeout=0.5).close()
                return
            except OSError:
                assert time.monotonic() < deadline and self.responder.poll() is None, "no http-01 responder"
                time.sleep(0.05)

    def prepare(self, count: int) -> list[str]:
        names = make_due_repository(self.repo, count)
        self.node("setup").wucme("register", "admin@example.org")
        self.proxy.log.clear()
        return names

    def close(self) -> None:
        for n in self.nodes:
            n.stop()
        if self.responder is not None:
            self.responder.kill()
            self.responder.wait(10)


@pytest.fixture
def cluster(pg_server: str, pebble_factory: Callable[..., Pebble],  # noqa: F811
            tmp_path: Path) -> Iterator[Cluster]:
    pebble = pebble_factory()
    with FaultProxy(pebble) as proxy:
        c = Cluster(tmp_path, pg_server, pebble, proxy)
        c.start_responder()
        try:
            yield c
        finally:
            c.close()


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
