"""The daily schedule on a fake clock: local time, DST, jitter, the backoff and its persistence."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from harness.clock import FakeClock
from wucme.agent.schedule import (BACKOFF, AgentState, backoff_time, day_jitter, jitter_seconds, next_daily,
                                  next_run, schedule_time)

PARIS = ZoneInfo("Europe/Paris")
UTC = dt.timezone.utc
AT = dt.time(0, 20)


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=PARIS)


def test_next_daily_around_midnight() -> None:
    assert next_daily(local(2026, 5, 1, 0, 19, 59), AT, tz=PARIS) == local(2026, 5, 1, 0, 20)
    assert next_daily(local(2026, 5, 1, 0, 20), AT, tz=PARIS) == local(2026, 5, 2, 0, 20)
    assert next_daily(local(2026, 5, 1, 23, 59), AT, tz=PARIS) == local(2026, 5, 2, 0, 20)
    # Given in UTC, decided in local time: 22:30 UTC is already 00:30 in Paris (summer).
    assert next_daily(dt.datetime(2026, 5, 1, 22, 30, tzinfo=UTC), AT, tz=PARIS) == local(2026, 5, 3, 0, 20)
    assert next_daily(dt.datetime(2026, 5, 1, 22, 10, tzinfo=UTC), AT, tz=PARIS) == local(2026, 5, 2, 0, 20)


def test_next_daily_is_dst_safe() -> None:
    # Spring forward in Paris: 2026-03-29 02:00 -> 03:00.  00:20 stays 00:20 local either side.
    before = next_daily(local(2026, 3, 28, 12, 0), AT, tz=PARIS)
    after = next_daily(before, AT, tz=PARIS)
    assert before == local(2026, 3, 29, 0, 20) and after == local(2026, 3, 30, 0, 20)
    assert after.astimezone(UTC) - before.astimezone(UTC) == dt.timedelta(hours=23)  # a short day, still once a day at 00:20
    # A time inside the gap runs once that day, just after it.
    gap = next_daily(local(2026, 3, 29, 0, 0), dt.time(2, 30), tz=PARIS)
    assert gap.astimezone(UTC) == dt.datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    assert next_daily(gap, dt.time(2, 30), tz=PARIS).date() == dt.date(2026, 3, 30)
    # Fall back (2026-10-25 03:00 -> 02:00): 02:30 happens twice, the pass runs once.
    first = next_daily(local(2026, 10, 25, 0, 0), dt.time(2, 30), tz=PARIS)
    assert first.astimezone(UTC) == dt.datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert next_daily(first, dt.time(2, 30), tz=PARIS).date() == dt.date(2026, 10, 26)
    assert next_daily(first + dt.timedelta(hours=1), dt.time(2, 30), tz=PARIS).date() == dt.date(2026, 10, 26)


def test_a_year_of_fake_days_runs_once_a_day_at_the_local_time() -> None:
    clock = FakeClock(local(2026, 1, 1, 12, 0))
    runs = []
    for _ in range(365):
        t = next_daily(clock.now(), AT, tz=PARIS)
        clock.wait_until(t)
        runs.append(clock.now())
    assert all(r.astimezone(PARIS).time() == AT for r in runs)
    assert len({r.astimezone(PARIS).date() for r in runs}) == 365


def test_jitter_bounds_and_stability() -> None:
    days = [dt.date(2026, 1, 1) + dt.timedelta(days=i) for i in range(400)]
    js = [day_jitter(d, 900, "NODEA") for d in days]
    assert all(0 <= j <= 900 for j in js)
    assert max(js) > 700 and min(js) < 200  # spread over the range, not a constant
    assert js == [day_jitter(d, 900, "NODEA") for d in days]  # a restart keeps the day's choice
    assert js != [day_jitter(d, 900, "NODEB") for d in days]  # nodes differ
    assert day_jitter(days[0], 0, "NODEA") == 0
    t = next_daily(local(2026, 5, 1, 12, 0), AT, tz=PARIS, jitter=900, node="NODEA")
    assert local(2026, 5, 2, 0, 20) <= t <= local(2026, 5, 2, 0, 35)


def test_logicals(monkeypatch: pytest.MonkeyPatch) -> None:
    assert schedule_time() == AT
    monkeypatch.setenv("WUCME_SCHEDULE", "03:45")
    assert schedule_time() == dt.time(3, 45)
    monkeypatch.setenv("WUCME_SCHEDULE", "3:05:09")
    assert schedule_time() == dt.time(3, 5, 9)
    for bad in ("25:00", "noon", "12:60", ""):
        assert schedule_time(bad) == AT
    assert jitter_seconds() == 0
    monkeypatch.setenv("WUCME_JITTER", "600")
    assert jitter_seconds() == 600
    assert jitter_seconds("-5") == 0 and jitter_seconds("x") == 0 and jitter_seconds("nan") == 0


def test_backoff_sequence_then_daily() -> None:
    now = dt.datetime(2026, 5, 1, 10, 0, tzinfo=UTC)
    assert [backoff_time(now, n) for n in (1, 2, 3)] == [now + d for d in BACKOFF]
    assert BACKOFF == (dt.timedelta(minutes=1), dt.timedelta(minutes=10), dt.timedelta(minutes=100))
    assert backoff_time(now, 4) is None and backoff_time(now, 0) is None
    later = now + dt.timedelta(hours=6)
    assert backoff_time(now, 1, not_before=later) == later  # never sooner than next_attempt
    assert backoff_time(now, 1, not_before=now - dt.timedelta(hours=1)) == now + BACKOFF[0]


def test_next_run_walks_the_backoff_and_persists_it(tmp_path: Path) -> None:
    clock = FakeClock(dt.datetime(2026, 5, 1, 10, 0, tzinfo=UTC))
    st = AgentState.load(tmp_path)
    assert next_run(st, clock.now(), at=AT, jitter=0, tz=PARIS) == (clock.now(), "no pass yet")
    seen = []
    for attempt in range(5):
        when, why = next_run(AgentState.load(tmp_path), clock.now(), at=AT, jitter=0, tz=PARIS)
        clock.wait_until(when)
        seen.append((clock.now(), why))
        st = AgentState.load(tmp_path)  # a restarted agent reads the same file
        st.passed(clock.now(), False, "failed")
        st.save(tmp_path)
    t0 = seen[0][0]
    assert [t - t0 for t, _ in seen[:4]] == [dt.timedelta(0), BACKOFF[0], BACKOFF[0] + BACKOFF[1],
                                             BACKOFF[0] + BACKOFF[1] + BACKOFF[2]]
    assert seen[4][0] == local(2026, 5, 2, 0, 20) and seen[4][1] == "daily"  # then daily
    saved = json.loads((tmp_path / "WUCME_AGENT.JSON").read_text())
    assert saved["failures"] == 5 and saved["retry_at"] is None
    # A good pass clears the backoff.
    st = AgentState.load(tmp_path)
    st.passed(clock.now(), True, "ok")
    st.save(tmp_path)
    st = AgentState.load(tmp_path)
    assert st.failures == 0 and next_run(st, clock.now(), at=AT, jitter=0, tz=PARIS)[1] == "daily"
    assert not list(tmp_path.glob("WUCME_AGENT.JSON;*"))  # no versions piling up


def test_restart_runs_at_once_when_overdue_or_retry_passed(tmp_path: Path) -> None:
    now = dt.datetime(2026, 5, 1, 10, 0, tzinfo=UTC)
    st = AgentState()
    st.passed(now - dt.timedelta(days=1, seconds=1), True, "ok")
    assert next_run(st, now, at=AT, tz=PARIS, jitter=0) == (now, "the daily pass of 2026-05-01 did not run")
    st.passed(now - dt.timedelta(hours=3), False, "failed")  # retry was due 2 h 59 min ago
    when, why = next_run(st, now, at=AT, tz=PARIS, jitter=0)
    assert when <= now and why.startswith("retry")
    (tmp_path / "WUCME_AGENT.JSON").write_text("{not json")
    assert AgentState.load(tmp_path) == AgentState()  # unreadable: a fresh state, pass at once
