"""Who owns the work on a certificate: never two orders for one certificate at one due date.

Real `wucme` processes on one repository, against Pebble through the fault proxy; its time
machine gives the first certificates a lifetime of one day and renewals ninety, and WUCME_DAYS=30
makes the first due and the renewed not: each certificate has exactly one due date here, and the
proxy counts the orders Pebble created for it.  The http-01 challenges are answered from the
repository's challenge store by one listener, as a web server does on a real site.  A short pause on each newOrder keeps the work in
flight long enough to be interrupted or raced.
"""
from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from harness.faultproxy import FaultProxy, ProxyRequest, Reply
from wucme.challenge.http01 import Http01Listener
from wucme.challenge.store import ChallengeStore
from harness.pebble import Pebble
from harness.timemachine import TimeMachine, orders

from .support import Agents, alive, comm, wait_for

pytestmark = pytest.mark.pebble

UTC = dt.timezone.utc


class RealTime:
    def now(self) -> dt.datetime:
        return dt.datetime.now(UTC)


def count(proxy: FaultProxy) -> dict[str, int]:
    out: dict[str, int] = {}
    for _t, idents in orders(proxy):
        out[idents[0]] = out.get(idents[0], 0) + 1
    return out


def slow_orders(proxy: FaultProxy, seconds: float) -> list[float]:
    """Each newOrder waits `seconds` before it reaches Pebble; the list returned holds the
    delay, which the caller may change."""
    delay = [seconds]

    def pause(_req: ProxyRequest) -> Reply | None:
        time.sleep(delay[0])
        return None
    proxy.add_rule(lambda m, p, b: m == "POST" and p.startswith("/order-plz"), pause)
    return delay


@pytest.fixture
def repo(agents: Agents, pebble: Pebble, fault_proxy: FaultProxy) -> Iterator[Agents]:
    """A registered repository on the proxy: first certificates one day, renewals ninety."""
    seen: set[str] = set()

    def lifetime(names: list[str]) -> dt.timedelta:
        first = names[0] not in seen
        seen.add(names[0])
        return dt.timedelta(days=1 if first else 90)

    TimeMachine(fault_proxy, RealTime(), lifetime).install()
    # http-01 answered from the challenge store by one server (the web server's part on a real
    # site), so that every process can answer at once: none of them listens on the port itself.
    agents.env.update(WUCME_CA=fault_proxy.directory_url, WUCME_CA_BUNDLE=fault_proxy.ca_bundle,
                      WUCME_CHALLENGE="http-01", WUCME_HTTP01="", WUCME_DAYS="30", WUCME_LOAD="true")
    agents.wucme("register", "admin@example.org")
    with Http01Listener(ChallengeStore(agents.here / "WUCME_CHALLENGES"), "127.0.0.1", pebble.http_port):
        yield agents


def issue_all(agents: Agents, names: list[str]) -> None:
    for n in names:  # one at a time: each answers http-01 on the one port Pebble asks
        agents.wucme("issue", n, "/noprogress")


def consistent(here: Path, quiet: bool) -> list[str]:
    """Each WUCME_C file: its leaf and the key appended to it are a pair; when `quiet` (nothing
    running), the WUCME_K file is that key too."""
    bad = []
    for c in sorted(here.glob("WUCME_C_*.PEM")):
        data = c.read_bytes()
        leaf = x509.load_pem_x509_certificates(data)[0]
        key = serialization.load_pem_private_key(data[data.index(b"-----BEGIN PRIVATE KEY"):], None)
        pub = leaf.public_key().public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
        if key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo) != pub:
            bad.append(f"{c.name}: key and certificate differ")
        kfile = here / c.name.replace("WUCME_C_", "WUCME_K_")
        if quiet:
            k = serialization.load_pem_private_key(kfile.read_bytes(), None)
            if k.public_key().public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo) != pub:
                bad.append(f"{kfile.name}: not the key of {c.name}")
    return bad


def test_kill_9_of_the_active_agent_at_ten_moments_never_orders_twice(repo: Agents,
                                                                      fault_proxy: FaultProxy) -> None:
    agents = repo
    names = [f"k{i}.example.org" for i in range(12)]
    issue_all(agents, names)
    assert count(fault_proxy) == {n: 1 for n in names}
    slow_orders(fault_proxy, 0.15)
    agents.env["WUCME_WORKERS"] = "2"
    procs = [agents.start(), agents.start()]
    moments = [0.05, 0.3, 0.6, 0.15, 0.9, 0.45, 1.2, 0.25, 0.7, 1.5]
    kills = 0
    for delay in moments:
        wait_for(lambda: "wuCME-active" in agents.roles(procs), 30, "an active agent")
        time.sleep(delay)
        active = next(p for p in procs if p.poll() is None and comm(p.pid) == "wuCME-active")
        os.kill(active.pid, signal.SIGKILL)
        active.wait(10)
        kills += 1
        procs.append(agents.start())  # a new standby for the next takeover
        assert consistent(agents.here, quiet=False) == []
    # The last active agent finishes its pass: every certificate renewed, each once.
    wait_for(lambda: count(fault_proxy) == {n: 2 for n in names}
             or any(v > 2 for v in count(fault_proxy).values()), 90, "every certificate renewed")
    time.sleep(1.0)  # anything still in flight would order now
    assert count(fault_proxy) == {n: 2 for n in names}, count(fault_proxy)
    for p in procs:
        if p.poll() is None:
            p.terminate()
            p.wait(20)
    # No cycle process outlived its agent for long (each ended once its certificates in flight were done).
    wait_for(lambda: not [pid for pid in _cycle_pids(agents.here)], 30, "the cycle processes gone")
    assert consistent(agents.here, quiet=True) == []
    assert kills == 10


def _cycle_pids(here: Path) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"wucme.agent.cycle" in cmd and str(here).encode() in cmd and alive(int(d.name)):
                out.append(int(d.name))
    return out


def test_two_issues_of_one_name_at_once_order_once(repo: Agents, fault_proxy: FaultProxy) -> None:
    agents = repo
    delay = slow_orders(fault_proxy, 0.5)
    argv = [sys.executable, "-m", "wucme", "issue", "twice.example.org", "/noprogress"]
    procs = [subprocess.Popen(argv, env=agents.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=60)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert count(fault_proxy) == {"twice.example.org": 1}
    assert sum("%WUCME-S-ISSUED" in o for o in outs) == 1
    assert sum("%WUCME-S-CURRENT" in o and "nothing ordered" in o for o in outs) == 1
    # With /NOWAIT the second says BUSY at once instead of waiting.  The first holds the lock for
    # 5 s at least, so a second process slow to start on a busy machine still finds it held.
    delay[0] = 5.0
    ordered = len(fault_proxy.requests_to("/order-plz", "POST"))  # (a bad nonce makes it more than 1)
    first = subprocess.Popen(argv, env=agents.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    wait_for(lambda: len(fault_proxy.requests_to("/order-plz", "POST")) > ordered, 30, "the first issue ordering")
    t0 = time.monotonic()
    r = agents.wucme("issue", "twice.example.org", "/nowait", code=1)
    assert time.monotonic() - t0 < 10
    assert "%WUCME-W-BUSY, another process is working on WUCME_C_TWICE_EXAMPLE_ORG.PEM" in r.stdout + r.stderr
    first.communicate(timeout=60)
    assert first.returncode == 0


def test_manage_during_an_agent_pass_orders_once(repo: Agents, fault_proxy: FaultProxy) -> None:
    manage_during_a_pass(repo, fault_proxy)


def manage_during_a_pass(agents: Agents, fault_proxy: FaultProxy) -> None:
    names = [f"m{i}.example.org" for i in range(4)]
    issue_all(agents, names)
    # The agent holds its first certificate's lock for 3 s at least (its order waits at the
    # proxy), so `manage`, however slow to start, meets that certificate still locked.
    slow_orders(fault_proxy, 3.0)
    ordered = len(fault_proxy.requests_to("/order-plz", "POST"))  # (bad nonces make it more than 4)
    agent = agents.start("/once", WUCME_WORKERS="1")
    wait_for(lambda: len(fault_proxy.requests_to("/order-plz", "POST")) > ordered, 30,
             "the agent's pass ordering")
    r = agents.wucme("manage", WUCME_WORKERS="4")
    assert agent.wait(60) == 0, agents.output(agent)
    assert count(fault_proxy) == {n: 2 for n in names}
    out = r.stdout + r.stderr
    assert "renewed by another process meanwhile" in out, out
    assert consistent(agents.here, quiet=True) == []


def at_once(env: dict[str, str], *argv: str, copies: int = 2) -> list[tuple[int, str]]:
    """*copies* of `wucme ARGV` started together; (exit status, output) of each."""
    procs = [subprocess.Popen([sys.executable, "-m", "wucme", *argv], env=env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(copies)]
    return [(p.wait(120), p.communicate()[0]) for p in procs]


def test_two_manage_passes_at_once_renew_each_due_certificate_once(repo: Agents, fault_proxy: FaultProxy) -> None:
    agents = repo
    names = [f"p{i}.example.org" for i in range(6)]
    issue_all(agents, names)
    slow_orders(fault_proxy, 0.3)  # each renewal in flight long enough for the other pass to meet it
    runs = at_once(dict(agents.env, WUCME_WORKERS="2"), "manage")
    assert [rc for rc, _ in runs] == [0, 0], runs
    assert count(fault_proxy) == {n: 2 for n in names}  # the first order, and one renewal each
    renewed = [out.count("%WUCME-S-RENEWED") for _, out in runs]
    assert sum(renewed) == len(names), runs
    assert consistent(agents.here, quiet=True) == []
    # Both passes again, nothing due now: neither orders, and both say so.
    runs = at_once(agents.env, "manage")
    assert [rc for rc, _ in runs] == [0, 0], runs
    assert count(fault_proxy) == {n: 2 for n in names}
    assert all(f"0 renewed, {len(names)} not due, 0 failed" in out for _, out in runs), runs
