"""Shared renewals across 40 simulated days: two nodes on one repository, each running its
daily pass at the same simulated time as the other, as separate processes.

Each day both nodes' passes (what a node's agent runs, `run_cycle(..., shared=True)`, through
cycle_at.py with the day's time for the agent's clock) start together, the order of their start
alternating, on the one repository (each node reaches it through a path of its own), with the
certificates' locks on PostgreSQL.  Seven certificates of 6 to 20 days are issued and renewed
through the fault proxy, whose time machine restamps every certificate Pebble issues in
simulated time; the http-01 answers come from the shared store (no node answers itself).

What it proves, over 40 days: every certificate is renewed inside its window, exactly once each
time it falls due, whichever node takes it (newOrders counted at the proxy; never two orders
for one certificate in flight); both nodes take a share; nothing ever expires; no pass fails;
each node's load command runs on the day the repository changed or the next, and never on a day
it had not changed.
"""
from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest

from cluster.renewals import Cluster, ClusterNode, Ledger
from harness.clock import FakeClock
from harness.timemachine import TimeMachine
from wucme.core.times import iso

pytest.importorskip("psycopg", reason="psycopg 3 is not installed (pip install 'psycopg[binary]')")

pytestmark = pytest.mark.pebble

DAYS = 40
#: Lifetimes in days, one certificate each: renewed every 3 days for the shortest.
LIFETIMES = {f"s{i}.cluster.test": d for i, d in enumerate((6, 7, 9, 10, 12, 15, 20))}
START = dt.datetime(2027, 3, 1, 0, 20, tzinfo=dt.timezone.utc)
CYCLE = Path(__file__).with_name("cycle_at.py")


def window(days: int) -> dt.timedelta:
    """How long before expiry wucme renews: half of a short lifetime (10 days or less), else a third."""
    return dt.timedelta(days=days) / (2 if days <= 10 else 3)


def passes_at(nodes: list[ClusterNode], now: dt.datetime) -> dict[str, dict[str, object]]:
    """Every node's pass at *now*, started together in the order given; what each did."""
    procs = [(n, subprocess.Popen([sys.executable, str(CYCLE), str(n.here), n.name, iso(now) or ""],
                                  env=n.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)) for n in nodes]
    out = {}
    for n, p in procs:
        stdout, stderr = p.communicate(timeout=180)
        assert p.returncode == 0, f"{n.name} at {now}: exit {p.returncode}\n{stdout}\n{stderr}"
        out[n.name] = json.loads(stdout.splitlines()[-1])
    return out


def test_two_nodes_share_40_days_of_renewals(cluster: Cluster) -> None:
    clock = FakeClock(START)
    tm = TimeMachine(cluster.proxy, clock, lambda names: dt.timedelta(days=LIFETIMES[names[0]])).install()
    loads = cluster.tmp / "loads"
    a, b = nodes = [cluster.node(n, WUCME_LOAD=f"/bin/sh -c 'echo {n.upper()} >> {loads}'") for n in ("a", "b")]
    a.wucme("register", "admin@example.org")
    for name in LIFETIMES:
        a.wucme("issue", name, "/noprogress")
    loads.unlink()  # issue loaded each; from here on, the passes

    renewed: dict[str, list[int]] = {n.name: [] for n in nodes}
    loaded: dict[str, list[int]] = {n.name: [] for n in nodes}
    for day in range(DAYS):
        now = clock.now()
        for name in LIFETIMES:
            assert tm.issued_for(name)[-1].not_after > now, f"{name} expired before day {day}"
        seen = len(loads.read_text().split()) if loads.exists() else 0
        did = passes_at(nodes if day % 2 == 0 else nodes[::-1], now)
        for node, r in did.items():
            assert r["ok"], f"{node}'s pass on day {day} failed: {r['summary']}\n{r['log']}"
            renewed[node] += [day] * int(str(r["renewed"]))
        for node in (loads.read_text().split() if loads.exists() else [])[seen:]:
            loaded[node].append(day)
        clock.advance(dt.timedelta(days=1))

    # Exactly one order per certificate issued, never two in flight for one name, and each
    # renewal inside the window of the certificate it replaced.
    ledger = Ledger(cluster.proxy)
    assert ledger.overlapping() == []
    renewals = 0
    for name, days in LIFETIMES.items():
        issued = tm.issued_for(name)
        assert ledger.new_orders()[name] == len(issued) >= 2, f"{name}: {ledger.new_orders()[name]} orders"
        for old, new in zip(issued, issued[1:]):
            at = new.not_before + dt.timedelta(minutes=1)  # when it was issued, in simulated time
            assert old.not_after - window(days) <= at < old.not_after, f"{name} renewed at {at}"
            renewals += 1
        assert issued[-1].not_after > clock.now()
    # Both nodes did their share, and together every renewal once.
    assert sum(len(d) for d in renewed.values()) == renewals
    assert all(renewed.values()), renewed
    # Each node loads on the day the repository changed (by either node) or on the next (the
    # other node's renewal came after its own check), and not otherwise.
    changed = {d for days in renewed.values() for d in days}
    for node, days in loaded.items():
        assert days and days[0] == 0, (node, days)  # its first pass: nothing loaded yet
        assert len(days) == len(set(days)), (node, days)
        for d in days[1:]:
            assert d in changed or d - 1 in changed, f"{node} loaded on day {d}, nothing had changed"
        for d in changed:
            assert d in days or d + 1 in days or d == DAYS - 1, f"{node} never loaded day {d}'s renewals"
    print(f"\n{DAYS} days, two nodes: {renewals} renewals "
          f"({', '.join(f'{n}: {len(d)}' for n, d in renewed.items())}), "
          f"loads {', '.join(f'{n}: {len(d)}' for n, d in loaded.items())}")
