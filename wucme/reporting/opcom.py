"""OPCOM reports: on VMS a message to operator classes; on Linux a syslog record in OPCOM's form.

An OPCOM message on an operator terminal is three lines:

    %%%%%%%%%%%  OPCOM  27-NOV-2026 00:20:01.23  %%%%%%%%%%%
    Message from user SYSTEM on NODE
    %WUCME-S-RENEWED, www.example.org renewed, expires ...

On Linux each message becomes ONE syslog record (so `grep WUCME-E- /var/log/syslog` finds a
whole message, and records from concurrent writers never interleave): the three lines joined
by two blanks, with the operator classes in brackets after the banner.  The record goes to
/dev/log (or, where a host has no /dev/log, systemd-journald's syslog socket), a unix datagram
socket or `udp:host:port` (WUCME_SYSLOG), as RFC 3164 (the form
glibc's syslog() writes and every local daemon reads) or RFC 5424 (WUCME_SYSLOG_FORMAT), with
facility WUCME_SYSLOG_FACILITY (default LOCAL0) and the syslog severity of the VMS severity.
"""
from __future__ import annotations

import datetime as _dt
import errno
import getpass
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field

from wucme import __version__
from wucme.reporting.events import Event, ReportingError, clean, node_name
from wucme.vms.lnm import translate_items, trnlnm

#: The operator classes of REPLY/ENABLE and $SNDOPR.
OPERATOR_CLASSES = ("CARDS", "CENTRAL", "CLUSTER", "DEVICES", "DISKS", "LICENSE", "NETWORK",
                    "PRINT", "SECURITY", "SOFTWARE", "TAPES") + tuple(f"OPER{i}" for i in range(1, 13))

#: RFC 5424 §6.2.1 facility codes by name (the names syslog.conf uses).
FACILITIES = {"KERN": 0, "USER": 1, "MAIL": 2, "DAEMON": 3, "AUTH": 4, "SYSLOG": 5, "LPR": 6,
              "NEWS": 7, "UUCP": 8, "CRON": 9, "AUTHPRIV": 10, "FTP": 11,
              **{f"LOCAL{i}": 16 + i for i in range(8)}}
DEFAULT_FACILITY = "LOCAL0"
DEFAULT_SOCKET = "/dev/log"
#: Where a record goes when WUCME_SYSLOG is undefined, in this order: the syslog daemon's socket,
#: then journald's (a host without rsyslog has no /dev/log but journald listens here).
DEFAULT_SOCKETS = (DEFAULT_SOCKET, "/run/systemd/journal/dev-log")
#: Errors that mean "nobody listens at this socket path": try the next default.
_ABSENT = (errno.ENOENT, errno.ECONNREFUSED, errno.ENOTDIR)

#: VMS severity -> RFC 5424 §6.2.1 severity: F crit, E err, W warning, S notice, I info.
SYSLOG_SEVERITY = {"F": 2, "E": 3, "W": 4, "S": 5, "I": 6}
_SEVERITY_NAME = {2: "crit", 3: "err", 4: "warning", 5: "notice", 6: "info"}

#: Largest record: RFC 5426 §3.2 asks UDP receivers for 2048 octets; rsyslog's default is 8 KiB.
MAX_UDP = 2048
MAX_UNIX = 8192

_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_BANNER = "%" * 11


def unknown_classes(unknown: list[str]) -> str:
    return (f"unknown operator class{'es' if len(unknown) > 1 else ''} "
            f"{', '.join(clean(u, 40) for u in unknown)} in WUCME_OPCOM "
            f"(known: {', '.join(OPERATOR_CLASSES)})")


@dataclass
class OpcomConfig:
    """The OPCOM settings as the logical names give them when read."""

    classes: list[str]
    unknown: list[str] = field(default_factory=list)
    facility: str = DEFAULT_FACILITY
    #: WUCME_SYSLOG, or "" for the default sockets (DEFAULT_SOCKETS, the first that answers).
    target: str = ""
    rfc5424: bool = False
    #: Problems with the settings that were worked around (named in reports and by check).
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def from_logicals(cls) -> OpcomConfig | None:
        """None when WUCME_OPCOM is undefined or empty."""
        items = translate_items("WUCME_OPCOM")
        if not items:
            return None
        known = [c.upper() for c in items if c.upper() in OPERATOR_CLASSES]
        unknown = [c for c in items if c.upper() not in OPERATOR_CLASSES]
        cfg = cls(classes=list(dict.fromkeys(known)), unknown=unknown)
        if unknown:
            cfg.warnings.append(unknown_classes(unknown) + " ignored")
        raw = (trnlnm("WUCME_SYSLOG_FACILITY") or "").strip()
        facility = raw.upper()
        if facility.isdigit() and int(facility) in FACILITIES.values():
            facility = next(k for k, v in FACILITIES.items() if v == int(facility))
        if facility and facility not in FACILITIES:
            cfg.warnings.append(f"unknown syslog facility {clean(raw, 40)} in WUCME_SYSLOG_FACILITY; "
                                f"using {DEFAULT_FACILITY} (known: {', '.join(FACILITIES)})")
            facility = ""
        cfg.facility = facility or DEFAULT_FACILITY
        cfg.target = (trnlnm("WUCME_SYSLOG") or "").strip()
        raw = (trnlnm("WUCME_SYSLOG_FORMAT") or "").strip()
        fmt = raw.upper().replace("RFC", "").strip()
        if fmt not in ("", "3164", "5424"):
            cfg.warnings.append(f"unknown WUCME_SYSLOG_FORMAT {clean(raw, 40)}; using RFC 3164")
        cfg.rfc5424 = fmt == "5424"
        return cfg

    def describe(self, used: str | None = None) -> str:
        """The settings in words; *used* is the socket a record really went to."""
        sev = "/".join(_SEVERITY_NAME[v] for v in sorted(set(SYSLOG_SEVERITY.values())))
        where = used or self.target or " or ".join(DEFAULT_SOCKETS)
        note = f" ({DEFAULT_SOCKET} is absent)" if used and used != DEFAULT_SOCKET and not self.target else ""
        return (f"syslog {self.facility}.{{{sev}}} RFC {'5424' if self.rfc5424 else '3164'} "
                f"to {where}{note}")


# --- OPCOM's text ------------------------------------------------------------------------------

def vms_time(t: _dt.datetime) -> str:
    """`27-NOV-2026 00:20:01.23`, $ASCTIM's form (day padded with a blank)."""
    return f"{t.day:2d}-{_MONTHS[t.month - 1]}-{t.year} {t:%H:%M:%S}.{t.microsecond // 10000:02d}"


def opcom_user() -> str:
    try:
        return clean(getpass.getuser(), 32).upper() or "WUCME"
    except (OSError, KeyError):  # no user name for this uid
        return "WUCME"


def opcom_lines(event: Event, t: _dt.datetime, user: str, node: str) -> list[str]:
    """The three lines an operator terminal shows for *event*."""
    return [f"{_BANNER}  OPCOM  {vms_time(t)}  {_BANNER}", f"Message from user {user} on {node}",
            event.message()]


def opcom_text(event: Event, classes: list[str], t: _dt.datetime, user: str, node: str) -> str:
    """The one-line form a syslog record carries (banner, [classes], sender, message)."""
    banner, sender, message = opcom_lines(event, t, user, node)
    return f"{banner}  [{','.join(classes)}]  {sender}  {message}"


# --- syslog records ----------------------------------------------------------------------------

def _cut(data: bytes, limit: int) -> bytes:
    """At most *limit* bytes, cut on a UTF-8 character boundary."""
    if len(data) <= limit:
        return data
    return data[:limit].decode("utf-8", "ignore").encode("utf-8")


def syslog_record(event: Event, text: str, facility: str, t: _dt.datetime, *, rfc5424: bool,
                  hostname: str | None, limit: int) -> bytes:
    """One record: `<PRI>Mmm dd hh:mm:ss [host ]wucme[pid]: text` (RFC 3164 §4.1) or
    `<PRI>1 TIMESTAMP HOST wucme PID IDENT [origin ...] BOM text` (RFC 5424 §6)."""
    pri = FACILITIES[facility] * 8 + SYSLOG_SEVERITY[event.severity]
    pid = os.getpid()
    if rfc5424:
        head = (f"<{pri}>1 {t.isoformat(timespec='microseconds')} {hostname or '-'} wucme {pid} "
                f"{event.ident} [origin software=\"wucme\" swVersion=\"{__version__}\"] ").encode()
        return _cut(head + "\ufeff".encode() + text.encode("utf-8"), limit)
    month = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")[t.month - 1]
    stamp = f"{month} {t.day:2d} {t:%H:%M:%S}"
    head = f"<{pri}>{stamp} {hostname + ' ' if hostname else ''}wucme[{pid}]: ".encode()
    return _cut(head + text.encode("utf-8"), limit)


def _parse_udp(spec: str) -> tuple[str, int]:
    rest = spec[4:]
    if rest.startswith("["):
        host, _, port = rest[1:].partition("]")
        port = port.lstrip(":")
    else:
        host, _, port = rest.rpartition(":") if rest.count(":") == 1 else (rest, "", "")
    if not host or (port and not (port.isdigit() and 0 < int(port) < 65536)):
        raise ReportingError(f"WUCME_SYSLOG {clean(spec, 200)!r} is not udp:host[:port]", ident="BADSYSLOG")
    return host, int(port or 514)


def _hostname() -> str:
    name = "".join(c for c in socket.gethostname() if "!" <= c <= "~")
    return name[:255] or "localhost"


Sender = Callable[[list[bytes]], None]


def _unix_sender(path: str) -> Sender:
    def send(records: list[bytes]) -> None:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            try:
                s.connect(path)
            except OSError as e:
                if e.errno != errno.EPROTOTYPE:
                    raise
            else:
                for r in records:
                    s.send(r)
                return
        # A stream socket (some syslog-ng set-ups): one record a line.
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(path)
            s.sendall(b"".join(r + b"\n" for r in records))
    return send


def _udp_sender(host: str, port: int) -> Sender:
    def send(records: list[bytes]) -> None:
        family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
        with socket.socket(family, kind, proto) as s:
            for r in records:
                s.sendto(r, addr)
    return send


def send_opcom(events: list[Event], cfg: OpcomConfig, now: _dt.datetime | None = None) -> str:
    """Send each event as one syslog record; the socket used, or ReportingError when no
    socket takes them (OPCOMFAIL for WUCME_SYSLOG, NOSYSLOG when no default socket answers)."""
    if not events:
        return ""
    if not cfg.classes:
        raise ReportingError("no valid operator class in WUCME_OPCOM: nothing sent to OPCOM",
                             ident="BADCLASS")
    t = (now or _dt.datetime.now(_dt.timezone.utc)).astimezone()
    user, node = opcom_user(), node_name()
    udp = cfg.target.lower().startswith("udp:")
    # A local record carries no host name (as glibc's syslog() writes it); a remote one must.
    hostname = _hostname() if udp or cfg.rfc5424 else None
    limit = MAX_UDP if udp else MAX_UNIX
    records = [syslog_record(e, opcom_text(e, cfg.classes, t, user, node), cfg.facility, t,
                             rfc5424=cfg.rfc5424, hostname=hostname, limit=limit) for e in events]
    if udp:
        targets: list[tuple[str, Sender]] = [(cfg.target, _udp_sender(*_parse_udp(cfg.target)))]
    elif cfg.target:
        path = cfg.target[5:] if cfg.target.lower().startswith("unix:") else cfg.target
        targets = [(path, _unix_sender(path))]
    else:
        targets = [(path, _unix_sender(path)) for path in DEFAULT_SOCKETS]
    for where, sender in targets:
        try:
            sender(records)
            return where
        except OSError as e:
            if cfg.target or e.errno not in _ABSENT:
                hint = "" if udp else " (is a syslog daemon listening there? WUCME_SYSLOG names another socket)"
                raise ReportingError(f"cannot send to OPCOM (syslog {where}): {e.strerror or e}{hint}",
                                     ident="OPCOMFAIL") from None
    raise ReportingError(
        f"no syslog socket answers ({', '.join(DEFAULT_SOCKETS)}): OPCOM messages are in the agent "
        "log only; start a syslog daemon (rsyslog) or systemd-journald, or define WUCME_SYSLOG "
        "as a socket path or udp:host[:port]", ident="NOSYSLOG")
