"""Report events: what a renewal pass (or a warning) tells OPCOM and the mail targets.

An event is one VMS message (`%WUCME-S-RENEWED, text`).  Its text comes partly from the CA
(problem `detail`, RFC 8555 §6.7), so it is sanitised here once for every target: control
characters (CR, LF, ESC, ...) become blanks, so an event is always one line and can forge
neither a mail header nor a syslog record, and it is cut at MAX_TEXT characters.

This module is below the renewal pass and the repository (docs/architecture.md): it reads a
pass's report through the PassReport protocol and imports neither.
"""
from __future__ import annotations

import re
import socket
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from wucme.errors import WucmeError
from wucme.vms.lnm import trnlnm
from wucme.vms.condition import SEVERITIES, format_message, parse_message



class PassOutcome(Protocol):
    """One certificate's outcome in a renewal pass, as the reports read it."""

    @property
    def hosts(self) -> list[str]: ...

    @property
    def file(self) -> str: ...

    @property
    def detail(self) -> str: ...


class PassReport(Protocol):
    """A renewal pass as the reports read it (wucme.renewal.RenewalReport, one layer up)."""

    @property
    def renewed(self) -> Sequence[PassOutcome]: ...

    @property
    def skipped(self) -> Sequence[PassOutcome]: ...

    @property
    def not_due(self) -> int: ...

    @property
    def failed(self) -> Sequence[PassOutcome]: ...

    @property
    def load(self) -> tuple[bool, str] | None: ...

    @property
    def error(self) -> str: ...

    @property
    def error_severity(self) -> str: ...

    @property
    def ok(self) -> bool: ...

#: Longest event text (a CA's problem detail can be megabytes); the rest is cut with a note.
MAX_TEXT = 2000

# C0 and C1 controls, DEL, and the Unicode line and paragraph separators.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
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

def short_hosts(hosts: list[str]) -> str:
    """`www.example.org (+2)`: a certificate's names in one short line."""
    if not hosts:
        return "(no hosts)"
    return hosts[0] + (f" (+{len(hosts) - 1})" if len(hosts) > 1 else "")


def report_events(report: PassReport) -> list[Event]:
    """The events of one pass: each renewal and failure, the load action, a pass-wide error,
    and a closing summary.  A pass that renewed nothing and failed nothing gives no events:
    a report of every success and failure, not a daily "nothing happened"."""
    events: list[Event] = []
    for o in report.renewed:
        events.append(Event("S", "RENEWED", o.detail or f"{short_hosts(o.hosts)} renewed in {o.file}", list(o.hosts)))
    for o in report.failed:
        events.append(Event("E", "RENEWFAIL", f"{o.file} ({', '.join(o.hosts)}): {o.detail}", list(o.hosts)))
    if report.load is not None:
        ok, text = report.load
        events.append(Event("S", "LOADED", text) if ok else Event("W", "LOADFAIL", text))
    if report.error:
        c = parse_message(report.error)
        events.append(Event(c.severity, c.ident, c.text) if c
                      else Event(report.error_severity, "PASSFAIL", report.error))
    if not events:
        return []
    summary = (f"{len(report.renewed)} renewed, {report.not_due} not due, "
               f"{len(report.failed)} failed")
    events.append(Event("S" if report.ok else "E", "MANAGED", summary))
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
