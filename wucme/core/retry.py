"""Retry-After (RFC 9110 §10.2.3, RFC 8555 §6.6/§7.5.1) and the polling schedule.

Port of uacme.c:retry_after(), which accepts delta-seconds and the three
HTTP-date forms.  Polling departs from uacme on purpose: uacme starts at five
seconds and doubles; wucme starts below one second (a loopback CA or a fast
one answers in milliseconds) and backs off to a ceiling, within one deadline.
"""
from __future__ import annotations

import time
from datetime import datetime, timezone

#: Longest wait honoured from a Retry-After (uacme caps at UINT_MAX; a day is plenty).
MAX_RETRY_AFTER = 86400.0

_HTTP_DATE_FORMATS = (
    "%A, %d-%b-%y %H:%M:%S GMT",  # RFC 850, obsolete
    "%a %b %d %H:%M:%S %Y",  # asctime()
)


def retry_after(value: str | None, default: float, now: float | None = None) -> float:
    """Seconds to wait from a Retry-After value; `default` if absent, unparsable or <= 0."""
    if value is None:
        return default
    value = value.strip()
    if not value:
        return default
    if value.isdigit():
        secs = float(int(value))
    else:
        when = _parse_http_date(value)
        if when is None:
            return default
        secs = when.timestamp() - (time.time() if now is None else now)
    if secs <= 0:
        return default
    return min(secs, MAX_RETRY_AFTER)


def _parse_http_date(value: str) -> datetime | None:
    from email.utils import parsedate_to_datetime  # (the email package: only for a Retry-After date)

    try:
        when = parsedate_to_datetime(value)  # IMF-fixdate (RFC 9110 §5.6.7)
    except (TypeError, ValueError, IndexError):
        when = None
    if when is None:
        for fmt in _HTTP_DATE_FORMATS:
            try:
                when = datetime.strptime(value, fmt)
                break
            except ValueError:
                continue
    if when is None:
        return None
    if when.tzinfo is None:  # HTTP dates are always GMT
        when = when.replace(tzinfo=timezone.utc)
    return when


class Backoff:
    """Waits between polls: `first`, doubling to `ceiling`, until `deadline` seconds in all.

    A Retry-After from the server replaces the computed wait for that round
    (RFC 8555 §7.5.1: clients SHOULD honour it), still bounded by the deadline.
    One Backoff serves one polling loop.
    """

    def __init__(self, first: float = 0.01, ceiling: float = 30.0, deadline: float = 1800.0):
        self.ceiling = ceiling
        self.deadline = deadline
        self.spent = 0.0
        self._next = first

    def next(self, hint: float | None = None) -> float | None:
        """The next wait in seconds, or None once the deadline is spent."""
        if self.spent >= self.deadline:
            return None
        step = hint if hint is not None and hint > 0 else self._next
        step = min(step, self.deadline - self.spent)
        self.spent += step
        self._next = min(self._next * 2, self.ceiling)
        return step
