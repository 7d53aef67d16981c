"""When the agent runs its daily pass: the local-time schedule, jitter, and a persistent backoff.

The pass runs once a day at WUCME_SCHEDULE local time (default 00:20, the seed's "twenty past
midnight"), plus up to WUCME_JITTER seconds chosen per day and per node (so a fleet does not hit
the CA in the same second, and a restart keeps the day's choice).  It also runs at once when a
daily time went by since the last pass (or there never was one): a machine that was down at
00:20 does not wait another day.  After a failed pass it retries after 1 minute, 10 minutes, then 100
minutes, then only at the daily time; never sooner than the earliest `next_attempt` recorded in
a failed certificate's state.  The backoff lives in WUCME_AGENT.JSON in the repository, so a
restarted agent does not forget it (nor hammer the CA from a crash loop).

Everything takes the time from a `Clock`, so tests drive a day (or a DST change) in microseconds.
"""
from __future__ import annotations

import datetime as _dt
import json
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

from wucme.core.times import UTC, iso, parse_iso
from wucme.settings import jitter_seconds, schedule_time

DAY = _dt.timedelta(days=1)
#: Retry delays after the 1st, 2nd and 3rd failure in a row; after that, daily.
BACKOFF = (_dt.timedelta(minutes=1), _dt.timedelta(minutes=10), _dt.timedelta(minutes=100))
STATE_FILE = "WUCME_AGENT.JSON"
#: A real clock wakes at least this often to re-read the logicals and notice clock changes.
MAX_NAP = 60.0


class Clock(Protocol):
    """Where the agent gets the time and waits: the real one, or a fake one in tests."""

    def now(self) -> _dt.datetime:
        """An aware datetime."""
        ...

    def wait_until(self, when: _dt.datetime) -> None:
        """Return at `when` or earlier (the caller loops and recomputes)."""
        ...


class RealClock:
    """Wall-clock time; waits in naps of at most MAX_NAP so logical changes and clock jumps
    (NTP, suspend) are noticed.  A signal handler that raises ends a nap at once."""

    def now(self) -> _dt.datetime:
        return _dt.datetime.now(UTC)

    def wait_until(self, when: _dt.datetime) -> None:
        delay = (when - self.now()).total_seconds()
        if delay > 0:
            time.sleep(min(delay, MAX_NAP))


# --- the daily time ----------------------------------------------------------------------------
# WUCME_SCHEDULE and WUCME_JITTER are read (and checked) by wucme.settings.schedule_time and
# jitter_seconds, imported above.


def day_jitter(day: _dt.date, jitter: float, node: str) -> int:
    """The jitter for one day on one node: whole seconds in [0, jitter], the same every time it
    is asked.  Whole seconds, because the state keeps the last pass to the second: a daily
    time with a fraction would lie after its own pass and run it again."""
    if jitter < 1:
        return 0
    return random.Random(f"{node}:{day.isoformat()}").randint(0, int(jitter))


def _local(day: _dt.date, at: _dt.time, tz: _dt.tzinfo | None) -> _dt.datetime:
    """Wall-clock `at` on `day` in `tz` (None: the system's local time), as an aware datetime.

    A time that does not exist that day (skipped by a DST change) lands just after the gap;
    one that exists twice is its first occurrence, so the pass runs once that day.
    """
    naive = _dt.datetime.combine(day, at)
    if tz is None:
        return naive.astimezone()  # mktime: the C library's DST rules, fold=0
    return naive.replace(tzinfo=tz).astimezone(UTC).astimezone(tz)


def next_daily(after: _dt.datetime, at: _dt.time, *, tz: _dt.tzinfo | None = None,
               jitter: float = 0.0, node: str = "") -> _dt.datetime:
    """The first daily run time (local `at` plus the day's jitter) strictly after `after`."""
    local_after = after.astimezone(tz) if tz is not None else after.astimezone()
    day = local_after.date() - _dt.timedelta(days=1)
    for _ in range(4):
        t = _local(day, at, tz).astimezone(UTC) + _dt.timedelta(seconds=day_jitter(day, jitter, node))
        if t > after.astimezone(UTC):  # in UTC: wall-clock arithmetic within one zone ignores DST
            return t
        day += _dt.timedelta(days=1)
    raise AssertionError("no daily run within three days")  # pragma: no cover


# --- the persistent agent state ----------------------------------------------------------------

def state_file(shared: bool = False, node: str = "") -> str:
    """WUCME_AGENT.JSON, the one active agent's; in shared renewals each node keeps its own
    schedule and backoff, WUCME_AGENT_<NODE>.JSON (one node's pass is not another's)."""
    if not shared:
        return STATE_FILE
    from wucme.vms.ods2 import ods2_name

    return f"WUCME_AGENT_{ods2_name(node or 'LOCALHOST')}.JSON"


@dataclass
class AgentState:
    """WUCME_AGENT.JSON: what the agent must remember across restarts."""

    last_pass: str | None = None
    last_result: str = ""
    #: Failed passes in a row (0 after a good one).
    failures: int = 0
    #: When the backoff retries, or None (the daily time).
    retry_at: str | None = None

    @classmethod
    def load(cls, directory: Path, name: str = STATE_FILE) -> AgentState:
        """The state, or a fresh one when missing or unreadable (then the pass runs at once)."""
        try:
            d = json.loads((directory / name).read_text())
        except (OSError, ValueError, UnicodeDecodeError):
            return cls()
        if not isinstance(d, dict):
            return cls()
        st = cls()
        for k in ("last_pass", "retry_at"):
            if isinstance(d.get(k), str) and parse_iso(d[k]) is not None:
                setattr(st, k, d[k])
        if isinstance(d.get("last_result"), str):
            st.last_result = d["last_result"]
        if isinstance(d.get("failures"), int) and d["failures"] >= 0:
            st.failures = d["failures"]
        return st

    def save(self, directory: Path, name: str = STATE_FILE) -> None:
        from wucme.vms.files import write_versioned

        data = dict(asdict(self), version=1)
        write_versioned(directory / name, (json.dumps(data, indent=1) + "\n").encode(),
                        0o644, keep=0)

    @property
    def last_pass_time(self) -> _dt.datetime | None:
        return parse_iso(self.last_pass)

    @property
    def retry_time(self) -> _dt.datetime | None:
        return parse_iso(self.retry_at)

    def passed(self, now: _dt.datetime, ok: bool, result: str,
               not_before: _dt.datetime | None = None) -> None:
        """Record a pass at `now`; after a failure choose the retry time (the backoff)."""
        self.last_pass = iso(now)
        self.last_result = result
        if ok:
            self.failures, self.retry_at = 0, None
            return
        self.failures += 1
        self.retry_at = iso(backoff_time(now, self.failures, not_before))


def backoff_time(now: _dt.datetime, failures: int,
                 not_before: _dt.datetime | None = None) -> _dt.datetime | None:
    """The retry after `failures` failed passes in a row: 1, 10, 100 minutes, then None (daily);
    never before `not_before` (a certificate's next_attempt)."""
    if failures < 1 or failures > len(BACKOFF):
        return None
    t = now + BACKOFF[failures - 1]
    return max(t, not_before) if not_before is not None else t


def next_run(state: AgentState, now: _dt.datetime, *, at: _dt.time | None = None,
             jitter: float | None = None, tz: _dt.tzinfo | None = None,
             node: str = "") -> tuple[_dt.datetime, str]:
    """When the next pass runs, and why: a missed daily time (now), the backoff retry, or the
    daily time.

    The daily time counted is the first one after the last pass, not the first one after now: the
    agent that wakes at 00:20 finds that time reached and runs (deciding from `now` would
    always find tomorrow's and never run).  A pass whose daily time went by while no agent ran
    (the machine was down, the clock jumped forward) runs at once; a restart after the day's pass
    waits for the next day.  Setting the clock back never repeats a pass: the next daily time
    is still the first after the last pass; only a last pass more than a day ahead of `now` (a
    clock that was wrong when it was recorded) is disregarded: the pass runs at once rather than
    waiting for that date.
    """
    at = schedule_time() if at is None else at
    jitter = jitter_seconds() if jitter is None else jitter
    last = state.last_pass_time
    if last is None:
        return now, "no pass yet"
    if last > now + DAY:
        return now, f"the last pass is dated {iso(last)}, ahead of the clock"
    daily = next_daily(last, at, tz=tz, jitter=jitter, node=node)
    if daily <= now:
        return now, f"the daily pass of {daily.astimezone(tz).date().isoformat()} did not run"
    retry = state.retry_time
    if retry is not None and retry < daily:
        return retry, f"retry {state.failures} after failure"
    return daily, "daily"
