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


# --- the edges: what a restarted agent reads back, damaged state, the exact limits ----------------

def test_a_restarted_agent_reads_back_every_field(tmp_path: Path) -> None:
    now = dt.datetime(2026, 5, 1, 10, 0, 7, tzinfo=UTC)
    st = AgentState()
    st.passed(now, False, "%WUCME-E-RENEWFAIL, a.test: timed out")
    st.passed(now, False, "%WUCME-E-RENEWFAIL, a.test: timed out again")
    st.save(tmp_path)
    back = AgentState.load(tmp_path)
    assert back == st
    assert back.last_pass_time == now and back.failures == 2
    assert back.retry_time == now + BACKOFF[1]
    assert back.last_result == "%WUCME-E-RENEWFAIL, a.test: timed out again"
    saved = json.loads((tmp_path / "WUCME_AGENT.JSON").read_text())
    assert saved["version"] == 1 and saved["retry_at"] == back.retry_at


@pytest.mark.parametrize("text", ['["last_pass", "2026-05-01T10:00:00Z"]', '"2026-05-01T10:00:00Z"',
                                  "42", "null", "\xff\xfe"])
def test_state_that_is_not_a_json_object_is_a_fresh_state(tmp_path: Path, text: str) -> None:
    (tmp_path / "WUCME_AGENT.JSON").write_bytes(text.encode("latin-1"))
    assert AgentState.load(tmp_path) == AgentState()


def test_damaged_fields_are_dropped_one_by_one(tmp_path: Path) -> None:
    good = "2026-05-01T10:00:00Z"
    (tmp_path / "WUCME_AGENT.JSON").write_text(json.dumps(
        {"last_pass": good, "retry_at": "tomorrow", "last_result": 7, "failures": -3}))
    st = AgentState.load(tmp_path)
    assert st == AgentState(last_pass=good)  # the readable field kept, the damaged ones not
    (tmp_path / "WUCME_AGENT.JSON").write_text(json.dumps(
        {"last_pass": 12, "retry_at": good, "last_result": "ok", "failures": "2"}))
    assert AgentState.load(tmp_path) == AgentState(retry_at=good, last_result="ok")
    (tmp_path / "WUCME_AGENT.JSON").write_text(json.dumps({"failures": 0}))
    assert AgentState.load(tmp_path).failures == 0
    (tmp_path / "WUCME_AGENT.JSON").write_text(json.dumps({"failures": 1}))
    assert AgentState.load(tmp_path).failures == 1


def test_a_last_pass_exactly_a_day_ahead_is_still_believed() -> None:
    now = dt.datetime(2026, 5, 1, 10, 0, tzinfo=UTC)
    st = AgentState(last_pass="2026-05-02T10:00:00Z")  # exactly 24 hours ahead
    when, why = next_run(st, now, at=AT, tz=PARIS, jitter=0)
    assert (when, why) == (local(2026, 5, 3, 0, 20), "daily")
    st = AgentState(last_pass="2026-05-02T10:00:01Z")  # one second more: a clock that was wrong
    assert next_run(st, now, at=AT, tz=PARIS, jitter=0) == (
        now, "the last pass is dated 2026-05-02T10:00:01Z, ahead of the clock")


def test_the_daily_time_reached_exactly_runs_now() -> None:
    st = AgentState(last_pass="2026-05-01T10:00:00Z")
    daily = local(2026, 5, 2, 0, 20)
    assert next_run(st, daily, at=AT, tz=PARIS, jitter=0) == (
        daily, "the daily pass of 2026-05-02 did not run")
    before = daily - dt.timedelta(seconds=1)
    assert next_run(st, before, at=AT, tz=PARIS, jitter=0) == (daily, "daily")


def test_a_retry_at_the_daily_time_is_the_daily_pass() -> None:
    st = AgentState(last_pass="2026-05-01T10:00:00Z", failures=1,
                    retry_at=local(2026, 5, 2, 0, 20).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    now = local(2026, 5, 1, 13, 0)
    assert next_run(st, now, at=AT, tz=PARIS, jitter=0) == (local(2026, 5, 2, 0, 20), "daily")
    st.retry_at = local(2026, 5, 2, 0, 19, 59).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert next_run(st, now, at=AT, tz=PARIS, jitter=0) == (local(2026, 5, 2, 0, 19, 59),
                                                           "retry 1 after failure")


def test_one_second_of_jitter_is_used_and_less_is_none() -> None:
    days = [dt.date(2026, 1, 1) + dt.timedelta(days=i) for i in range(40)]
    assert {day_jitter(d, 1, "NODEA") for d in days} == {0, 1}
    assert {day_jitter(d, 0.99, "NODEA") for d in days} == {0}
    assert max(day_jitter(d, 2.9, "NODEA") for d in days) == 2  # whole seconds, never past the cap


def test_the_jitter_is_capped_below_a_day() -> None:
    assert jitter_seconds("86399") == 86399
    assert jitter_seconds("86400") == 86399 and jitter_seconds("1e9") == 86399
    assert jitter_seconds("0") == 0 and jitter_seconds(" 30 ") == 30


def test_a_jittered_time_of_yesterday_that_is_still_ahead_is_the_next_run() -> None:
    """23:50 + up to 40 min: yesterday's pass may fall after midnight, so the search starts with
    yesterday (today's would skip it)."""
    node, jitter = "NODEA", 2400.0
    day = next(dt.date(2026, 1, 1) + dt.timedelta(days=i) for i in range(60)
               if day_jitter(dt.date(2026, 1, 1) + dt.timedelta(days=i), jitter, node) > 900)
    late = dt.datetime.combine(day, dt.time(23, 50), PARIS) + dt.timedelta(
        seconds=day_jitter(day, jitter, node))
    after = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0, 1), PARIS)
    assert late > after
    assert next_daily(after, dt.time(23, 50), tz=PARIS, jitter=jitter, node=node) == late


def test_the_real_clock_naps_at_most_a_minute(monkeypatch: pytest.MonkeyPatch) -> None:
    from wucme.agent import schedule

    naps: list[float] = []
    monkeypatch.setattr(schedule.time, "sleep", naps.append)
    clock = schedule.RealClock()
    now = clock.now()
    assert now.tzinfo is not None and abs((now - dt.datetime.now(UTC)).total_seconds()) < 5
    clock.wait_until(now + dt.timedelta(hours=2))
    clock.wait_until(now - dt.timedelta(seconds=1))  # already past: no nap at all
    clock.wait_until(clock.now() + dt.timedelta(seconds=30))
    assert naps[0] == schedule.MAX_NAP == 60.0
    assert len(naps) == 2 and 29 < naps[1] <= 30


def test_the_real_clock_naps_only_when_the_time_is_ahead(monkeypatch: pytest.MonkeyPatch) -> None:
    from wucme.agent import schedule

    fixed = dt.datetime(2026, 5, 1, 10, 0, tzinfo=UTC)

    class Frozen(schedule.RealClock):
        def now(self) -> dt.datetime:
            return fixed

    naps: list[float] = []
    monkeypatch.setattr(schedule.time, "sleep", naps.append)
    Frozen().wait_until(fixed)  # due now: no nap
    Frozen().wait_until(fixed + dt.timedelta(seconds=0.5))
    assert naps == [0.5]


def test_given_times_win_over_the_logicals(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WUCME_SCHEDULE", raising=False)
    monkeypatch.delenv("WUCME_JITTER", raising=False)
    st = AgentState(last_pass="2026-05-01T10:00:00Z")
    now = local(2026, 5, 1, 13, 0)
    assert next_run(st, now, at=dt.time(3, 0), jitter=0, tz=PARIS) == (local(2026, 5, 2, 3, 0), "daily")
    jittered = next_run(st, now, at=AT, jitter=3600, tz=PARIS)[0]
    assert jittered == local(2026, 5, 2, 0, 20) + dt.timedelta(seconds=day_jitter(dt.date(2026, 5, 2), 3600, ""))
    assert jittered > local(2026, 5, 2, 0, 20)  # that day's jitter is not 0
    # the node defaults to "" in both
    assert next_daily(now, AT, tz=PARIS, jitter=3600) == next_daily(now, AT, tz=PARIS, jitter=3600, node="")


def test_a_failure_retries_no_sooner_than_the_certificates_next_attempt(tmp_path: Path) -> None:
    now = dt.datetime(2026, 5, 1, 10, 0, tzinfo=UTC)
    st = AgentState()
    st.passed(now, False, "failed", not_before=now + dt.timedelta(hours=3))
    assert st.retry_time == now + dt.timedelta(hours=3) and st.failures == 1


def test_the_state_file_is_indented_json_readable_by_all(tmp_path: Path) -> None:
    import os
    import stat

    old = os.umask(0o077)
    try:
        AgentState(last_pass="2026-05-01T10:00:00Z", last_result="ok").save(tmp_path)
    finally:
        os.umask(old)
    path = tmp_path / "WUCME_AGENT.JSON"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert path.read_text() == json.dumps({"last_pass": "2026-05-01T10:00:00Z", "last_result": "ok",
                                           "failures": 0, "retry_at": None, "version": 1}, indent=1) + "\n"


def test_the_local_date_is_the_schedules_zone_not_the_systems(monkeypatch: pytest.MonkeyPatch) -> None:
    """The system clock 25 hours ahead of the schedule's zone: the day a jittered 23:50 belongs to
    is counted in the schedule's zone, and the time comes back in UTC."""
    import time

    kiritimati, pago = "Pacific/Kiritimati", ZoneInfo("Pacific/Pago_Pago")
    node, jitter = "NODEA", 2400.0
    day = next(dt.date(2026, 4, 1) + dt.timedelta(days=i) for i in range(60)
               if day_jitter(dt.date(2026, 4, 1) + dt.timedelta(days=i), jitter, node) > 600)
    after = dt.datetime.combine(day, dt.time(23, 55), pago)
    want = dt.datetime.combine(day, dt.time(23, 50), pago) + dt.timedelta(seconds=day_jitter(day, jitter, node))
    monkeypatch.setenv("TZ", kiritimati)
    time.tzset()
    try:
        got = next_daily(after, dt.time(23, 50), tz=pago, jitter=jitter, node=node)
    finally:
        monkeypatch.undo()
        time.tzset()
    assert got == want and got.utcoffset() == dt.timedelta(0)
