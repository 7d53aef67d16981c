"""Times: F$TIME, F$CVTIME and F$DELTA_TIME (DCL Dictionary and HELP Lexicals, each by its name).

Input times are read as DCL reads them (HELP Date, User's Manual "Specifying Date and Time
Values"): absolute `dd-mmm-yyyy hh:mm:ss.cc` (or `:` between date and time) with any part
left out (a missing date part is today's, a missing time part zero), TODAY, TOMORROW and
YESTERDAY, a time alone (today), a combination `absolute+delta` or `absolute-delta` (a
delta alone after + or - is from now), and a delta `dddd-hh:mm:ss.cc` where DELTA is asked
for.  The comparison form `yyyy-mm-dd hh:mm:ss.cc` is read too.
"""

from __future__ import annotations

import datetime
import re
from typing import TYPE_CHECKING

from wucme.dclproc.lexicals.args import Args, keyword, text
from wucme.dclproc.status import DclSignal, signal
from wucme.dclproc.values import Value

if TYPE_CHECKING:
    from wucme.dclproc.interp import Interpreter

__all__ = ["FUNCTIONS", "absolute", "f_time", "parse_time"]

_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_KEYWORDS = {"TODAY": 0, "TOMORROW": 1, "YESTERDAY": -1}
_TIME = r"(?P<h>\d{1,2})?(?::(?P<m>\d{1,2})?)?(?::(?P<s>\d{1,2})?)?(?:\.(?P<c>\d{1,2})?)?"
_TIME_RX = re.compile(_TIME)
_DELTA_RX = re.compile(r"(?:(?P<d>\d{1,4})-)?" + _TIME)
_COMPARISON = re.compile(r"(?P<y>\d{4})-(?P<mo>\d{1,2})-(?P<d>\d{1,2})")
_ABSOLUTE = re.compile(r"(?P<d>\d{1,2})?-(?P<mo>[A-Z]{3})?(?:-(?P<y>\d{1,4})?)?")
_FIELDS = ("DATE", "MONTH", "DATETIME", "SECOND", "DAY", "TIME", "HOUR", "WEEKDAY", "HUNDREDTH", "YEAR",
           "MINUTE", "DAYOFYEAR", "HOUROFYEAR", "MINUTEOFYEAR", "SECONDOFYEAR")
_NOT_DELTA = ("MONTH", "WEEKDAY", "YEAR", "DAYOFYEAR", "HOUROFYEAR", "MINUTEOFYEAR", "SECONDOFYEAR")


def invalid_time(value: str) -> DclSignal:
    return DclSignal("IVTIME", value.upper(), facility="SYSTEM", severity="F", text="invalid time")


def _hundredths(c: str | None) -> int:
    return int((c or "0").ljust(2, "0")[:2])


def _clock(m: re.Match[str]) -> tuple[int, int, int, int]:
    return int(m.group("h") or 0), int(m.group("m") or 0), int(m.group("s") or 0), _hundredths(m.group("c"))


def parse_delta(value: str) -> datetime.timedelta:
    m = _DELTA_RX.fullmatch(value.strip())
    if m is None or not value.strip():
        raise invalid_time(value)
    h, mi, s, c = _clock(m)
    if h > 23 or mi > 59 or s > 59:
        raise invalid_time(value)
    return datetime.timedelta(days=int(m.group("d") or 0), hours=h, minutes=mi, seconds=s, milliseconds=10 * c)


def _at(day: datetime.date, rest: str, whole: str) -> tuple[datetime.datetime, str]:
    """The date *day* at the time *rest* starts with (after a blank or `:`), and what follows."""
    h = mi = s = c = 0
    if rest[:1] in (" ", ":") and rest[1:2].isdigit():
        m = _TIME_RX.match(rest, 1)
        assert m is not None
        h, mi, s, c = _clock(m)
        rest = rest[m.end():]
    try:
        return datetime.datetime(day.year, day.month, day.day, h, mi, s, c * 10000), rest
    except ValueError:
        raise invalid_time(whole) from None


def _absolute_prefix(value: str, now: datetime.datetime) -> tuple[datetime.datetime, str]:
    """The absolute time *value* starts with, and the rest (a +delta or -delta, or nothing)."""
    if not value or value[0] == "+" or (value[0] == "-" and value[1:2].isdigit()):
        return now, value
    for word, days in _KEYWORDS.items():
        if value.startswith(word):
            return _at(now.date() + datetime.timedelta(days=days), value[len(word):], value)
    if (m := _COMPARISON.match(value)) is not None:
        return _at(_date(int(m.group("y")), int(m.group("mo")), int(m.group("d")), value), value[m.end():], value)
    if (m := _ABSOLUTE.match(value)) is not None:
        month = m.group("mo")
        if month is not None and month not in _MONTHS:
            raise invalid_time(value)
        day = _date(int(m.group("y") or now.year), _MONTHS.index(month) + 1 if month else now.month,
                    int(m.group("d") or now.day), value)
        return _at(day, value[m.end():], value)
    if (m := _TIME_RX.match(value)) is not None and m.end() > 0:
        h, mi, s, c = _clock(m)
        try:
            return now.replace(hour=h, minute=mi, second=s, microsecond=c * 10000), value[m.end():]
        except ValueError:
            raise invalid_time(value) from None
    raise invalid_time(value)


def _date(year: int, month: int, day: int, whole: str) -> datetime.date:
    try:
        return datetime.date(year, month, day)
    except ValueError:
        raise invalid_time(whole) from None


def parse_time(value: str, now: datetime.datetime | None = None) -> datetime.datetime:
    """An absolute or combination time as DCL reads it."""
    now = now or datetime.datetime.now()
    s = value.strip().upper()
    base, rest = _absolute_prefix(s, now)
    if not rest:
        return base
    if rest[0] not in "+-":
        raise invalid_time(value)
    delta = parse_delta(rest[1:])
    return base + delta if rest[0] == "+" else base - delta


def _cc(t: datetime.datetime | datetime.timedelta) -> int:
    return t.microseconds // 10000 if isinstance(t, datetime.timedelta) else t.microsecond // 10000


def absolute(t: datetime.datetime, pad: bool = True) -> str:
    """`dd-MMM-yyyy hh:mm:ss.cc`: F$TIME's form (a single-digit day after a blank), or F$CVTIME's (*pad* off)."""
    day = f"{t.day:2d}" if pad else str(t.day)
    return f"{day}-{_MONTHS[t.month - 1]}-{t.year:04d} {t:%H:%M:%S}.{_cc(t):02d}"


def _absolute_field(t: datetime.datetime, field: str, comparison: bool) -> str:
    year_start = datetime.datetime(t.year, 1, 1)
    since = t - year_start
    hours = since.days * 24 + since.seconds // 3600
    values = {
        "DATETIME": (f"{t:%Y-%m-%d %H:%M:%S}.{_cc(t):02d}" if comparison else absolute(t, pad=False)),
        "DATE": f"{t:%Y-%m-%d}" if comparison else f"{t.day}-{_MONTHS[t.month - 1]}-{t.year:04d}",
        "MONTH": f"{t.month:02d}" if comparison else _MONTHS[t.month - 1],
        "DAY": f"{t.day:02d}" if comparison else str(t.day),
        "YEAR": f"{t.year:04d}",
        "TIME": f"{t:%H:%M:%S}.{_cc(t):02d}",
        "HOUR": f"{t.hour:02d}", "MINUTE": f"{t.minute:02d}", "SECOND": f"{t.second:02d}",
        "HUNDREDTH": f"{_cc(t):02d}",
        "WEEKDAY": t.strftime("%A"),
        "DAYOFYEAR": str(since.days + 1).zfill(3 if comparison else 0),
        "HOUROFYEAR": str(hours).zfill(4 if comparison else 0),
        "MINUTEOFYEAR": str(hours * 60 + t.minute).zfill(6 if comparison else 0),
        "SECONDOFYEAR": str(int(since.total_seconds())).zfill(8 if comparison else 0),
    }
    return values[field]


def _delta_field(d: datetime.timedelta, field: str) -> str:
    if field in _NOT_DELTA:
        raise signal("IVKEYW", field)
    h, rem = divmod(d.seconds, 3600)
    m, s = divmod(rem, 60)
    clock = f"{h:02d}:{m:02d}:{s:02d}.{_cc(d):02d}"
    values = {"DATETIME": f"{d.days}-{clock}", "DATE": str(d.days), "DAY": str(d.days), "TIME": clock,
              "HOUR": f"{h:02d}", "MINUTE": f"{m:02d}", "SECOND": f"{s:02d}", "HUNDREDTH": f"{_cc(d):02d}"}
    return values[field]


def f_time(ctx: Interpreter, args: Args) -> Value:
    return absolute(datetime.datetime.now())


def f_cvtime(ctx: Interpreter, args: Args) -> Value:
    """F$CVTIME([input_time] [,ABSOLUTE|COMPARISON|DELTA] [,field])."""
    form = keyword(args, 1, "F$CVTIME", ("ABSOLUTE", "COMPARISON", "DELTA"), default="COMPARISON")
    field = keyword(args, 2, "F$CVTIME", _FIELDS, default="DATETIME")
    value = text(args, 0)
    if form == "DELTA":
        return _delta_field(parse_delta(value), field)
    return _absolute_field(parse_time(value), field, comparison=form == "COMPARISON")


def f_delta_time(ctx: Interpreter, args: Args) -> Value:
    """F$DELTA_TIME(start, end [,ASCTIM|DCL]): `dddd hh:mm:ss.cc` (ASCTIM) or `d-hh:mm:ss.cc` (DCL)."""
    start, end = parse_time(text(args, 0)), parse_time(text(args, 1))
    form = keyword(args, 2, "F$DELTA_TIME", ("ASCTIM", "DCL"), default="ASCTIM")
    if end < start:
        raise invalid_time(text(args, 1))
    d = end - start
    clock = _delta_field(d, "TIME")
    return f"{d.days}-{clock}" if form == "DCL" else f"{d.days:4d} {clock}"


FUNCTIONS = {"F$TIME": (f_time, 0, 0), "F$CVTIME": (f_cvtime, 0, 3), "F$DELTA_TIME": (f_delta_time, 2, 3)}
