"""Time as wucme writes and reads it: aware UTC datetimes, ISO 8601 / RFC 3339 text.

One helper for every part: the repository's state files, the agent's state, the reports and
`certificates` write `2026-11-27T00:20:00Z` (UTC to the second, `iso`); the CA's timestamps
(ARI's suggestedWindow, RFC 9773 §4.2) are read with any offset and fraction (`parse_rfc3339`).
"""
from __future__ import annotations

import datetime as _dt
import re
from typing import Any

__all__ = ["UTC", "utc_now", "iso", "parse_iso", "parse_rfc3339", "renewal_threshold"]

UTC = _dt.timezone.utc
_ISO = "%Y-%m-%dT%H:%M:%SZ"
#: Compiled on first use (re's cache): only ARI windows and the state files' odd forms need it.
_RFC3339 = r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))"


def utc_now() -> _dt.datetime:
    """Now, as an aware UTC datetime."""
    return _dt.datetime.now(UTC)


def iso(t: _dt.datetime | None) -> str | None:
    """*t* as wucme's files keep it: ISO 8601 UTC to the second (`2026-11-27T00:20:00Z`)."""
    if t is None:
        return None
    return t.astimezone(UTC).strftime(_ISO)


_TEN_DAYS = _dt.timedelta(days=10)


def renewal_threshold(not_before: _dt.datetime, not_after: _dt.datetime) -> _dt.timedelta:
    """How long before notAfter renewal starts: a third of the lifetime, half if <= 10 days
    (Let's Encrypt's advice: 30 of 90 days).  The renewal pass's rule (wucme.renewal), which
    the scan index also records (wucme.scanindex)."""
    lifetime = not_after - not_before
    return lifetime / 2 if lifetime <= _TEN_DAYS else lifetime / 3


def parse_iso(s: Any) -> _dt.datetime | None:
    """The inverse of `iso`; None for anything that is not a timestamp in exactly that form
    (a state file is advisory: a bad value reads as "unknown", never as an error)."""
    if not isinstance(s, str):
        return None
    try:
        return _dt.datetime.strptime(s, _ISO).replace(tzinfo=UTC)
    except ValueError:
        return None


def parse_rfc3339(s: str) -> _dt.datetime:
    """An RFC 3339 date-time as an aware UTC datetime; ValueError when it is not one.

    Accepts "Z" or "±hh:mm" and any number of fractional digits (kept to the microsecond); a
    leap second 60 is read as 59.
    """
    m = re.fullmatch(_RFC3339, s)
    if m is None:
        raise ValueError(f"not an RFC 3339 timestamp: {s!r}")
    year, month, day, hour, minute, second = (int(g) for g in m.group(1, 2, 3, 4, 5, 6))
    micro = int((m.group(7) or "0")[:6].ljust(6, "0"))
    if m.group(8):
        offset = _dt.timedelta(0)
    else:
        oh, om = int(m.group(10)), int(m.group(11))
        if oh > 23 or om > 59:
            raise ValueError(f"bad UTC offset in {s!r}")
        offset = _dt.timedelta(hours=oh, minutes=om) * (1 if m.group(9) == "+" else -1)
    stamp = _dt.datetime(year, month, day, hour, minute, min(second, 59), micro,
                         tzinfo=_dt.timezone(offset))
    return stamp.astimezone(UTC)
