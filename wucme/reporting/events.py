"""Report events: what a renewal pass (or a warning) tells OPCOM and the mail targets.

An event is one VMS message (`%WUCME-S-RENEWED, text`).  Its text comes partly from the CA
(problem `detail`, RFC 8555 §6.7), so it is sanitised here once for every target: control
characters (CR, LF, ESC, ...) become blanks, so an event is always one line and can forge
neither a mail header nor a syslog record, and it is cut at MAX_TEXT characters.

This module is below the renewal function and the repository (DESIGN.md layers): it reads a
RenewalReport and a Repository by duck typing and imports neither at run time.
"""
from __future__ import annotations

import datetime as _dt
import math
import re
import socket
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from wucme.errors import WucmeError
from wucme.vms.lnm import trnlnm
from wucme.vms.condition import SEVERITIES, format_message

if TYPE_CHECKING:  # types only: reporting sits below the renewal function
    from wucme.renewal import RenewalReport
    from wucme.repository import Repository

#: Longest event text (a CA's problem detail can be megabytes); the rest is cut with a note.
MAX_TEXT = 2000
#: WUCME_WARN_DAYS default: warn when fewer days than this are left and renewal keeps failing.
DEFAULT_WARN_DAYS = 7.0

# C0 and C1 controls, DEL, and the Unicode line and paragraph separators.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_VMS_MESSAGE = re.compile(r"%WUCME-([SIWEF])-([A-Z0-9_$]+), (.*)", re.S)
_IDENT = re.compile(r"[A-Za-z0-9_$]{1,31}")


class ReportingError(WucmeError):
    """A report that could not be sent, or a reporting logical name with a bad value."""

    ident = "REPORTFAIL"


def clean(text: str, limit: int = MAX_TEXT) -> str:
    """*text* as one line (control characters become blanks), cut after *limit* characters."""
    text = _CONTROL.sub(" ", text).strip()
    if len(text) > limit:
        text = f"{text[:limit]}... ({len(text) - limit} more characters not shown)"
    return text


@dataclass
class Event:
    """One report message; *hosts* are the certificate's names (empty for a pass-wide event)."""

    severity: str
    ident: str
    text: str
    hosts: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        sev = self.severity.upper()
        if sev not in SEVERITIES:
            raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}, not {self.severity!r}")
        self.severity = sev
        self.ident = self.ident.upper() if _IDENT.fullmatch(self.ident) else "REPORT"

    def message(self) -> str:
        """The sanitised VMS message line, `%WUCME-W-EXPIRING, text`."""
        return format_message(self.severity, self.ident, clean(self.text))


# --- events of a renewal pass ------------------------------------------------------------------

def _hosts(hosts: list[str]) -> str:
    if not hosts:
        return "(no hosts)"
    return hosts[0] + (f" (+{len(hosts) - 1})" if len(hosts) > 1 else "")


def report_events(report: RenewalReport) -> list[Event]:
    """The events of one pass: each renewal and failure, the load action, a pass-wide error,
    and a closing summary.  A pass that renewed nothing and failed nothing gives no events:
    a report of every success and failure, not a daily "nothing happened"."""
    events: list[Event] = []
    for o in report.renewed:
        events.append(Event("S", "RENEWED", o.detail or f"{_hosts(o.hosts)} renewed in {o.file}", list(o.hosts)))
    for o in report.failed:
        events.append(Event("E", "RENEWFAIL", f"{o.file} ({', '.join(o.hosts)}): {o.detail}", list(o.hosts)))
    if report.load is not None:
        ok, text = report.load
        events.append(Event("S", "LOADED", text) if ok else Event("W", "LOADFAIL", text))
    if report.error:
        m = _VMS_MESSAGE.fullmatch(report.error)
        events.append(Event(m.group(1), m.group(2), m.group(3)) if m
                      else Event(report.error_severity, "PASSFAIL", report.error))
    if not events:
        return []
    summary = (f"{len(report.renewed)} renewed, {len(report.skipped)} not due, "
               f"{len(report.failed)} failed")
    events.append(Event("S" if report.ok else "E", "MANAGED", summary))
    return events


def warn_days() -> float:
    """WUCME_WARN_DAYS (a number of days, fractions allowed), else DEFAULT_WARN_DAYS."""
    raw = (trnlnm("WUCME_WARN_DAYS") or "").strip()
    try:
        days = float(raw) if raw else DEFAULT_WARN_DAYS
    except ValueError:
        return DEFAULT_WARN_DAYS
    return days if math.isfinite(days) and days >= 0 else DEFAULT_WARN_DAYS


def _left(delta: _dt.timedelta) -> str:
    hours = delta.total_seconds() / 3600
    if hours < 24:
        n = max(0, int(hours))
        return f"{n} hour{'s' if n != 1 else ''}"
    n = int(hours // 24)
    return f"{n} day{'s' if n != 1 else ''}"


def build_events(report: RenewalReport, repo: Repository, now: _dt.datetime) -> list[Event]:
    """The warnings a pass does not carry itself: a certificate that expires within
    WUCME_WARN_DAYS (default 7) while its renewal keeps failing (failed in this pass, the
    pass failed as a whole, or its state records a failure: the agent's back-off skipped it)
    gives `%WUCME-W-EXPIRING`; one already expired gives `%WUCME-E-EXPIRED`.

    The agent sends these with send_events() after a pass; the pass's own events go through
    the reporters (reporters_from_logicals)."""
    limit = _dt.timedelta(days=warn_days())
    renewed = {o.file for o in report.renewed}
    failed = {o.file: o.detail for o in report.failed}
    try:
        managed = repo.managed()
    except WucmeError:
        return []  # the pass's own error already says the repository cannot be read
    events: list[Event] = []
    for m in managed:
        leaf = m.info
        name = m.cert_path.name
        if leaf is None or m.state.status == "revoked" or name in renewed:
            continue
        failing = name in failed or bool(report.error) or m.state.status == "failed"
        left = leaf.not_valid_after_utc - now
        if not failing or left >= limit:
            continue
        m_err = _VMS_MESSAGE.fullmatch(report.error) if report.error else None
        why = failed.get(name) or (m_err.group(3) if m_err else report.error) or m.state.last_result
        not_after = leaf.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
        where = f"({name}, not after {not_after})" + (f": {why}" if why else "")
        if left <= _dt.timedelta(0):
            events.append(Event("E", "EXPIRED", f"{_hosts(m.hosts)} expired {_left(-left)} ago "
                                f"and renewal keeps failing {where}", list(m.hosts)))
        else:
            events.append(Event("W", "EXPIRING", f"{_hosts(m.hosts)} expires in {_left(left)} "
                                f"and renewal keeps failing {where}", list(m.hosts)))
    return events


# --- what every target shows -------------------------------------------------------------------

def node_name() -> str:
    """This system's name as OPCOM shows it: SYS$NODE (`NODE::`) when defined, else the host name."""
    try:
        node = (trnlnm("SYS$NODE") or "").strip().rstrip(":")
    except Exception:  # noqa: BLE001 - a broken logical name table must not stop a report
        node = ""
    return clean(node or socket.gethostname().split(".")[0] or "LOCALHOST", 64).upper()


_WORDS = {"RENEWED": "renewed", "RENEWFAIL": "failed", "LOADFAIL": "load failed",
          "EXPIRING": "expiring", "EXPIRED": "expired"}


def summary_line(events: Iterable[Event]) -> str:
    """`2 renewed, 1 failed`: the counts a subject line shows (other errors count as errors)."""
    evs = list(events)
    if evs and all(e.ident == "TEST" for e in evs):
        return "test message"
    counts: Counter[str] = Counter()
    for e in evs:
        word = _WORDS.get(e.ident) or ("error" if e.severity in ("E", "F") and e.ident != "MANAGED" else "")
        if word:
            counts[word] += 1
    parts = [f"{n} {word}{'s' if word == 'error' and n != 1 else ''}" for word, n in counts.items()]
    return ", ".join(parts) or "report"
