"""A clock for the agent's tests: time moves only when told, so a day (or a DST change) takes
microseconds.  It satisfies wucme.agent.schedule.Clock, the protocol the agent takes its time from."""
from __future__ import annotations

import datetime as _dt


class FakeClock:
    """A clock that only moves when told (or when waited on: it jumps to the wake-up time)."""

    def __init__(self, start: _dt.datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime")
        self.t = start
        self.waits: list[_dt.datetime] = []

    def now(self) -> _dt.datetime:
        return self.t

    def wait_until(self, when: _dt.datetime) -> None:
        self.waits.append(when)
        if when > self.t:
            self.t = when

    def advance(self, delta: _dt.timedelta) -> None:
        self.t += delta
