"""The agent's own loop (`Agent.serve`, the code `wucme agent` runs) across simulated days.

These drive the real loop on a fake clock with a cycle that only records when it ran, so the
schedule is proven where it lives: the loop wakes at the announced time and runs the pass then
(the daily time was once announced, reached, recomputed as tomorrow's and never run).
"""
from __future__ import annotations

import datetime as dt
import io
import re
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from wucme.agent.log import AgentLog
from wucme.agent.process import Agent
from harness.clock import FakeClock
from wucme.agent.schedule import BACKOFF, AgentState, day_jitter

from .support import Agents, wait_for

PARIS = ZoneInfo("Europe/Paris")
UTC = dt.timezone.utc


class Recorder:
    """A cycle that records its start and saves the state as the real cycle does; `fail_on`
    holds the local dates whose first pass fails (the retries then succeed)."""

    def __init__(self, fail_on: set[dt.date] | None = None) -> None:
        self.runs: list[dt.datetime] = []
        self.fail_on = fail_on or set()

    def __call__(self, agent: Agent) -> None:
        now = agent.clock.now()
        self.runs.append(now)
        day = now.astimezone(PARIS).date()
        ok = day not in self.fail_on
        self.fail_on.discard(day)
        st = AgentState.load(agent.repo_path)
        st.passed(now, ok, "ok" if ok else "CA down")
        st.save(agent.repo_path)


def run_agent(tmp_path: Path, clock: FakeClock, cycle: Recorder, cycles: int,
              monkeypatch: pytest.MonkeyPatch, schedule: str = "00:20", jitter: str = "0") -> str:
    monkeypatch.setenv("WUCME_SCHEDULE", schedule)
    monkeypatch.setenv("WUCME_JITTER", jitter)
    out = io.StringIO()
    agent = Agent(tmp_path, clock=clock, cycle=cycle, max_cycles=cycles, tz=PARIS, rename=False,
                  log=AgentLog(0, echo=out))
    agent.node = "NODEA"
    assert agent.serve() == 0
    return out.getvalue()


def announced(log: str) -> list[dt.datetime]:
    return [dt.datetime.fromisoformat(m) for m in re.findall(r"%WUCME-I-NEXT, next cycle at (\S+)", log)]


def test_a_last_pass_two_hours_old_runs_at_the_daily_time(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    start = dt.datetime(2026, 6, 10, 14, 0, tzinfo=PARIS)
    st = AgentState()
    st.passed(start - dt.timedelta(hours=2), True, "ok")
    st.save(tmp_path)
    clock, cycle = FakeClock(start), Recorder()
    log = run_agent(tmp_path, clock, cycle, 1, monkeypatch, schedule="14:01")
    assert cycle.runs == [dt.datetime(2026, 6, 10, 14, 1, tzinfo=PARIS)]
    assert announced(log) == cycle.runs


def test_sixty_days_with_jitter_dst_and_failures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every day one pass at 00:20 plus that day's jitter (across the spring DST change), never
    at another time except the backoff's retries, and each announced time is the next start."""
    start = dt.datetime(2026, 3, 1, 12, 0, tzinfo=PARIS)
    fail = {dt.date(2026, 3, 10), dt.date(2026, 3, 29), dt.date(2026, 4, 20)}
    clock, cycle = FakeClock(start), Recorder(fail_on=set(fail))
    days = 60
    log = run_agent(tmp_path, clock, cycle, days + 1 + len(fail), monkeypatch, jitter="3600")
    first, rest = cycle.runs[0], cycle.runs[1:]
    assert first == start  # no pass yet: at once
    expected = []
    for i in range(1, days + 1):
        d = start.date() + dt.timedelta(days=i)
        at = dt.datetime.combine(d, dt.time(0, 20), PARIS).astimezone(UTC)
        expected.append(at + dt.timedelta(seconds=day_jitter(d, 3600, "NODEA")))
    retries = [r for r in rest if r not in expected]
    assert [r for r in rest if r in expected] == expected  # each day, at its time, once
    # The only other starts are retries, BACKOFF[0] after a failed daily pass.
    failed_starts = [e for e in expected if e.astimezone(PARIS).date() in fail]
    assert retries == [f + BACKOFF[0] for f in failed_starts]
    assert announced(log) == [r.astimezone(UTC) for r in rest]  # %WUCME-I-NEXT told the truth


def test_restart_mid_day_waits_and_a_missed_day_runs_at_once(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    day_pass = dt.datetime(2026, 6, 10, 0, 20, tzinfo=PARIS)
    st = AgentState()
    st.passed(day_pass, True, "ok")
    st.save(tmp_path)
    # Restarted at 15:00 the same day: the next pass is tomorrow's, not another today.
    clock, cycle = FakeClock(dt.datetime(2026, 6, 10, 15, 0, tzinfo=PARIS)), Recorder()
    run_agent(tmp_path, clock, cycle, 1, monkeypatch)
    assert cycle.runs == [dt.datetime(2026, 6, 11, 0, 20, tzinfo=PARIS)]
    # Down over the next daily time (back at 09:00 two days later): at once, then nightly.
    clock, cycle = FakeClock(dt.datetime(2026, 6, 13, 9, 0, tzinfo=PARIS)), Recorder()
    run_agent(tmp_path, clock, cycle, 2, monkeypatch)
    assert cycle.runs == [dt.datetime(2026, 6, 13, 9, 0, tzinfo=PARIS),
                          dt.datetime(2026, 6, 14, 0, 20, tzinfo=PARIS)]


def test_clock_jumps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    st = AgentState()
    st.passed(dt.datetime(2026, 6, 10, 0, 20, tzinfo=PARIS), True, "ok")
    st.save(tmp_path)
    # Set back an hour just after the pass (00:30 -> 23:30 the day before): 00:20 comes round
    # again, but that day's pass has run; the next one is the next night's, and is announced so.
    clock, cycle = FakeClock(dt.datetime(2026, 6, 9, 23, 30, tzinfo=PARIS)), Recorder()
    log = run_agent(tmp_path, clock, cycle, 1, monkeypatch)
    assert cycle.runs == [dt.datetime(2026, 6, 11, 0, 20, tzinfo=PARIS)]
    assert announced(log) == cycle.runs
    # Jumped forward three days (a suspended machine): one pass at once, not three.
    clock, cycle = FakeClock(dt.datetime(2026, 6, 14, 10, 0, tzinfo=PARIS)), Recorder()
    run_agent(tmp_path, clock, cycle, 2, monkeypatch)
    assert cycle.runs == [dt.datetime(2026, 6, 14, 10, 0, tzinfo=PARIS),
                          dt.datetime(2026, 6, 15, 0, 20, tzinfo=PARIS)]
    # A pass recorded by a clock that was years ahead: the agent does not wait for that date.
    # It runs at once, then nightly.
    st = AgentState()
    st.passed(dt.datetime(2029, 1, 1, 0, 20, tzinfo=PARIS), True, "ok")
    st.save(tmp_path)
    clock, cycle = FakeClock(dt.datetime(2026, 6, 20, 10, 0, tzinfo=PARIS)), Recorder()
    run_agent(tmp_path, clock, cycle, 2, monkeypatch)
    assert cycle.runs == [dt.datetime(2026, 6, 20, 10, 0, tzinfo=PARIS),
                          dt.datetime(2026, 6, 21, 0, 20, tzinfo=PARIS)]


def test_jitter_past_midnight_keeps_every_day(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """23:50 plus up to 40 minutes: many days' passes fall after midnight; none is lost or doubled."""
    start = dt.datetime(2026, 1, 5, 12, 0, tzinfo=PARIS)
    clock, cycle = FakeClock(start), Recorder()
    run_agent(tmp_path, clock, cycle, 31, monkeypatch, schedule="23:50", jitter="2400")
    rest = cycle.runs[1:]
    want = [dt.datetime.combine(start.date() + dt.timedelta(days=i), dt.time(23, 50), PARIS)
            + dt.timedelta(seconds=day_jitter(start.date() + dt.timedelta(days=i), 2400, "NODEA"))
            for i in range(0, 30)]
    assert rest == want
    days = [start.date() + dt.timedelta(days=i) for i in range(0, 30)]
    assert sum(r.astimezone(PARIS).date() > d for r, d in zip(rest, days)) > 3  # crossed midnight


def test_real_agent_runs_its_pass_at_the_daily_time(agents: Agents) -> None:
    """`wucme agent` as a process, last pass two hours ago, WUCME_SCHEDULE a few seconds ahead:
    it announces that time and runs the pass then (on an empty repository: no CA needed)."""
    agents.here.mkdir()
    now = dt.datetime.now().astimezone()
    st = AgentState()
    st.passed(now - dt.timedelta(hours=2), True, "ok")
    st.save(agents.here)
    at = (now + dt.timedelta(seconds=4)).replace(microsecond=0)
    p = agents.start(WUCME_SCHEDULE=at.strftime("%H:%M:%S"))
    wait_for(lambda: "%WUCME-S-CYCLE" in agents.output(p), 30, "the pass at the daily time")
    out = agents.output(p)
    assert f"next cycle at {at.isoformat(timespec='seconds')}" in out
    last = AgentState.load(agents.here).last_pass_time
    assert last is not None and at <= last < at + dt.timedelta(seconds=5)
