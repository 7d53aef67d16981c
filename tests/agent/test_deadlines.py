"""Deadlines: a CA that answers one byte a second holds nothing for long.

Socket timeouts bound each read, and a dripping answer never lets a read time out: before
WUCME_HTTP_DEADLINE, `wucme check /ca` sat on such a CA for minutes.  Now each request ends
within its deadline, the command says why, and a pass that cannot finish its certificates by
WUCME_PASS_DEADLINE fails those it could not start, reported as any failure.
"""
from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from harness.faultproxy import FaultProxy
from harness.pebble import Pebble
from harness.timemachine import Outage, TimeMachine, orders

from .support import Agents
from .test_ownership import RealTime, slow_orders

pytestmark = pytest.mark.pebble

UTC = dt.timezone.utc


@pytest.fixture
def ca(agents: Agents, pebble: Pebble, fault_proxy: FaultProxy) -> Iterator[TimeMachine]:
    """A registered repository with one certificate of one day (due with WUCME_DAYS=30);
    renewed ones are of ninety days (not due)."""
    seen: set[str] = set()

    def lifetime(names: list[str]) -> dt.timedelta:
        first = names[0] not in seen
        seen.add(names[0])
        return dt.timedelta(days=1 if first else 90)

    tm = TimeMachine(fault_proxy, RealTime(), lifetime).install()
    agents.env.update(WUCME_CA=fault_proxy.directory_url, WUCME_CA_BUNDLE=fault_proxy.ca_bundle,
                      WUCME_CHALLENGE="http-01", WUCME_HTTP01=f"127.0.0.1:{pebble.http_port}",
                      WUCME_DAYS="30", WUCME_LOAD="true", WUCME_HTTP_DEADLINE="2")
    agents.wucme("register", "admin@example.org")
    agents.wucme("issue", "drip.example.org", "/noprogress")
    yield tm


def test_a_dripping_ca_fails_check_issue_and_the_pass_within_the_deadline(agents: Agents,
                                                                          ca: TimeMachine) -> None:
    now = dt.datetime.now(UTC)
    ca.outages.append(Outage(now - dt.timedelta(hours=1), now + dt.timedelta(hours=1), "drip"))
    commands = {"check /ca": ["check", "/ca"],
                "check /ca (requests)": ["check", "/ca"],
                "issue": ["issue", "other.example.org", "/noprogress"],
                "the pass": ["agent", "/once"]}
    env = {"check /ca (requests)": {"WUCME_HTTP": "requests"}}
    t0 = time.monotonic()
    procs = {what: subprocess.Popen([sys.executable, "-m", "wucme", *argv], env=dict(agents.env, **env.get(what, {})),
                                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True)
             for what, argv in commands.items()}
    took, outs = {}, {}
    for what, p in procs.items():
        outs[what] = p.communicate(timeout=120)[0]
        took[what] = time.monotonic() - t0
        # A command fails; the agent itself goes on (its pass failed: %WUCME-E-CYCLE below).
        assert (p.returncode != 0) == (what != "the pass"), f"{what}: {outs[what]}"
    # Three tries of 2 s each and the pauses between them: well under a minute, not minutes.
    assert max(took.values()) < 40, took
    for what, out in outs.items():
        assert "within 2 s (WUCME_HTTP_DEADLINE)" in out, f"{what}: {out}"
    assert "%WUCME-E-CYCLE" in outs["the pass"]
    assert ca.outages[0].hits >= 4


def test_a_pass_past_its_deadline_fails_the_certificates_it_could_not_start(agents: Agents, ca: TimeMachine,
                                                                           fault_proxy: FaultProxy) -> None:
    agents.wucme("issue", "late1.example.org", "/noprogress")
    agents.wucme("issue", "late2.example.org", "/noprogress")
    before = len(orders(fault_proxy))
    slow_orders(fault_proxy, 1.5)
    r = agents.wucme("manage", code=2, WUCME_WORKERS="1", WUCME_PASS_DEADLINE="1")
    out = r.stdout + r.stderr
    assert "%WUCME-S-RENEWED, WUCME_C_DRIP_EXAMPLE_ORG.PEM" in out  # started in time, finished
    for name in ("LATE1", "LATE2"):
        assert f"%WUCME-E-PASSDEADLINE, WUCME_C_{name}_EXAMPLE_ORG.PEM" in out, out
    assert "the pass deadline of 1 s (WUCME_PASS_DEADLINE) was reached before its turn" in out
    assert len(orders(fault_proxy)) == before + 1
    # The failure is the certificate's, retried by the next pass.
    r = agents.wucme("manage", WUCME_WORKERS="1")
    assert "2 renewed, 1 not due, 0 failed" in r.stdout + r.stderr
