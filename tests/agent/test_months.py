"""120 days of the agent against Pebble, in simulated time.

The real loop (`Agent.serve`, the code `wucme agent` runs) on a fake clock that jumps to each
wake-up, with the cycle run in this process on the same clock (`run_cycle`, what the agent's
child runs).  Ten certificates of 6 to 45 days are issued and renewed through the fault proxy,
whose time machine restamps every certificate Pebble issues in fake time and takes the CA down
on some days: 503 answers, dropped connections, an answer dripping one byte at a time (with a
WUCME_HTTP_DEADLINE of one second).  Reports go to an SMTP sink and a syslog socket; the load
command appends a line to a file.

What it proves: a pass starts every day at the daily time (plus that day's jitter) and at no
other time but the backoff's retries; every certificate is renewed inside its window exactly
once each time it falls due (newOrders counted at the proxy); no certificate ever expires on the
fake clock; each outage is reported and ends in a successful pass; `%WUCME-I-NEXT` always
announces the next start.  The figures go to docs/agent.md ("The 120-day simulation").
"""
from __future__ import annotations

import datetime as dt
import io
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from harness.clock import FakeClock
from harness.faultproxy import FaultProxy
from harness.pebble import Pebble
from harness.timemachine import Outage, TimeMachine, orders
from wucme.agent.cycle import run_cycle
from wucme.agent.log import AgentLog
from wucme.agent.process import Agent, Stop
from wucme.agent.schedule import BACKOFF, day_jitter
from wucme.cli import main as wucme
from wucme.core.times import parse_iso
from wucme.renewal import threshold
from wucme.repository import Repository
from wucme.uacme.acme import AcmeSession

from .support import Syslog

pytestmark = pytest.mark.pebble

PARIS = ZoneInfo("Europe/Paris")
UTC = dt.timezone.utc
DAYS = 120
JITTER = 900
DAILY = dt.time(0, 20)
#: Lifetimes in days, one certificate each: renewed every 3 days for the shortest, 30 for the longest.
LIFETIMES = {f"c{i}.example.org": d for i, d in enumerate((6, 7, 9, 10, 12, 15, 20, 25, 30, 45))}
#: Across the spring DST change (2027-03-28 in Paris).
START = dt.datetime(2027, 1, 11, 14, 0, tzinfo=PARIS)
END = START + dt.timedelta(days=DAYS)


class SimClock(FakeClock):
    """The fake clock; waiting past the simulation's end stops the agent as SIGTERM would."""

    def wait_until(self, when: dt.datetime) -> None:
        if when >= END:
            raise Stop("the end of the simulation")
        super().wait_until(when)


class QuickRetry(AcmeSession):
    """The pause between tries on a transport failure (5 s, real time: the fake clock does not
    cover it) made short, so dropped and dripping days cost the simulation little."""

    __slots__ = ()

    def __init__(self, *args: Any, **fields: Any) -> None:
        fields.setdefault("transport_retry_delay", 0.05)
        super().__init__(*args, **fields)


@dataclass
class Pass:
    start: dt.datetime
    ok: bool
    renewed: int
    failed: int
    summary: str
    syslog: str
    mails: int
    seconds: float


@dataclass
class Simulation:
    here: Path
    clock: SimClock
    syslog: Syslog
    mail: list[Any]
    passes: list[Pass] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)

    def cycle(self, agent: Agent) -> None:
        """One cycle as the agent's child runs it, on the agent's clock; what it did recorded."""
        now = agent.clock.now()
        repo = Repository(self.here)
        self.expired += [f"{m.cert_name} at {now}" for m in repo.managed()
                         if m.info is None or m.info.not_valid_after_utc <= now]
        mails, t0 = len(self.mail), time.monotonic()
        r = run_cycle(repo, agent.log, now)
        self.passes.append(Pass(now, r.ok, r.renewed, r.failed, r.summary, self.syslog.drain_new(),
                                len(self.mail) - mails, time.monotonic() - t0))


def daily_starts() -> list[dt.datetime]:
    """Each day's daily time after the first pass, with that day's jitter, until the end."""
    out = []
    for i in range(1, DAYS + 1):
        day = START.date() + dt.timedelta(days=i)
        at = dt.datetime.combine(day, DAILY, PARIS) + dt.timedelta(seconds=day_jitter(day, JITTER, "NODEA"))
        if at < END:
            out.append(at.astimezone(UTC))
    return out


def outages(daily: list[dt.datetime]) -> list[Outage]:
    """The CA down around some days' pass: two failed passes then the 10-minute retry works;
    and one whole day of 503s (the backoff's three retries fail, the next day's pass works)."""
    around = [(9, "503"), (33, "drop"), (58, "drip"), (85, "503")]
    out = [Outage(daily[d] - dt.timedelta(hours=1), daily[d] + dt.timedelta(minutes=5), mode)
           for d, mode in around]
    out.append(Outage(daily[100] - dt.timedelta(minutes=30), daily[100] + dt.timedelta(hours=20), "503"))
    return out


@pytest.fixture
def simulation(pebble: Pebble, fault_proxy: FaultProxy, tmp_path: Path, syslog: Syslog,
               smtp: tuple[int, list[Any]], monkeypatch: pytest.MonkeyPatch) -> Iterator[Simulation]:
    here = tmp_path / "here"
    loaded = tmp_path / "loaded.txt"
    env = dict(WUCME_HERE=str(here), WUCME_CA=fault_proxy.directory_url, WUCME_CA_BUNDLE=fault_proxy.ca_bundle,
               WUCME_CHALLENGE="http-01", WUCME_HTTP01=f"127.0.0.1:{pebble.http_port}",
               WUCME_SCHEDULE=DAILY.strftime("%H:%M"), WUCME_JITTER=str(JITTER), WUCME_HTTP_DEADLINE="1",
               WUCME_LOAD=f"/bin/sh -c 'echo loaded >> {loaded}'", WUCME_OPCOM="CENTRAL",
               WUCME_SYSLOG=str(syslog.path), WUCME_MAIL="admin@example.org",
               WUCME_SMTP=f"127.0.0.1:{smtp[0]}")
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setattr("wucme.session.AcmeSession", QuickRetry)
    clock = SimClock(START)
    yield Simulation(here, clock, syslog, smtp[1])


def test_120_days(simulation: Simulation, fault_proxy: FaultProxy, tmp_path: Path,
                  capsys: pytest.CaptureFixture[str]) -> None:
    t0 = time.monotonic()
    sim, clock = simulation, simulation.clock
    tm = TimeMachine(fault_proxy, clock, lambda names: dt.timedelta(days=LIFETIMES[names[0]])).install()
    daily = daily_starts()
    tm.outages = outages(daily)
    assert wucme(["register", "admin@example.org"]) == 0
    for name in LIFETIMES:
        assert wucme(["issue", name, "/noprogress"]) == 0
    capsys.readouterr()
    assert len(orders(fault_proxy)) == len(LIFETIMES)
    (tmp_path / "loaded.txt").unlink()  # issue loaded each; from here on, the passes

    out = io.StringIO()
    agent = Agent(sim.here, clock=clock, cycle=sim.cycle, tz=PARIS, rename=False, log=AgentLog(0, echo=out))
    agent.node = "NODEA"
    assert agent.serve() == 0
    log = out.getvalue()
    starts = [p.start for p in sim.passes]

    # A pass at once (none ran yet), then every day at its daily time, and otherwise only retries.
    assert starts[0] == START
    assert [s for s in starts[1:] if s in daily] == daily
    failed = {p.start: p for p in sim.passes if not p.ok}
    for s in starts[1:]:
        if s not in daily:  # a retry: 1, 10 or 100 minutes after a failed pass
            before = max(f for f in failed if f < s)
            assert s - before in BACKOFF, f"a pass at {s} is neither daily nor a retry"
    # %WUCME-I-NEXT announced each next start (and the last, past the end).
    announced = [dt.datetime.fromisoformat(m) for m in re.findall(r"%WUCME-I-NEXT, next cycle at (\S+)", log)]
    assert announced[:-1] == starts[1:]

    # Every outage failed the passes inside it, was reported by syslog and mail, and the first
    # pass after it worked.
    for o in tm.outages:
        inside = [p for p in sim.passes if o.start <= p.start < o.end]
        assert inside and o.hits, f"no pass met the {o.mode} outage at {o.start}"
        for p in inside:
            assert not p.ok, p
            assert "%WUCME-E-" in p.syslog and p.mails >= 1, f"failed pass at {p.start} not reported"
        after = next(p for p in sim.passes if p.start >= o.end)
        assert after.ok, after
    assert all(p.ok for p in sim.passes if not any(o.start <= p.start < o.end for o in tm.outages))

    # Exactly one order per issued certificate (the proxy counts what reached Pebble), and each
    # renewal inside the window of the certificate it replaced; nothing ever expired.
    ordered: dict[str, int] = {}
    for _t, idents in orders(fault_proxy):
        ordered[idents[0]] = ordered.get(idents[0], 0) + 1
    renewals = 0
    for name, days in LIFETIMES.items():
        issued = tm.issued_for(name)
        assert ordered[name] == len(issued), f"{name}: {ordered[name]} orders, {len(issued)} certificates"
        for old, new in zip(issued, issued[1:]):
            start = new.not_before + dt.timedelta(minutes=1)  # when it was issued, in fake time
            window = (old.not_after - old.not_before) / (2 if days <= 10 else 3)
            assert old.not_after - window <= start < old.not_after, f"{name} renewed at {start}"
            renewals += 1
        assert issued[-1].not_after > END - dt.timedelta(days=1)
    assert sim.expired == []
    # The state's timestamps are the agent's clock's, as every decision of the pass.
    for m in Repository(sim.here).managed():
        last = parse_iso(m.state.last_attempt)
        assert last is not None and START <= last < END, (m.cert_name, m.state.last_attempt)
    loads = (tmp_path / "loaded.txt").read_text().count("loaded")
    assert loads == sum(1 for p in sim.passes if p.renewed)
    assert sum(p.renewed for p in sim.passes) == renewals

    figures = (f"{DAYS} days: {len(sim.passes)} passes ({len(daily)} daily, "
               f"{len(sim.passes) - len(daily) - 1} retries), {renewals} renewals, "
               f"{len(tm.outages)} outages ({sum(o.hits for o in tm.outages)} requests refused), "
               f"{len(failed)} failed passes, {len(sim.mail)} mails, "
               f"{sum(1 for p in sim.passes if p.syslog)} passes reported to syslog, "
               f"{time.monotonic() - t0:.1f} s")
    with capsys.disabled():
        print("\n" + figures)
    assert time.monotonic() - t0 < 600, "the simulation hung"  # a guard, not a speed target
