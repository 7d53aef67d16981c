"""Mail reports: WUCME_MAIL targets in VMS MAIL syntax, sent through an SMTP server, or through
the system's sendmail program when no SMTP server answers.

Targets (a search list, `SYSTEM,smtp%"a@b.example"`):
- `SYSTEM`: a local user, mailed at `system@localhost` (or at WUCME_MAIL_DOMAIN);
- `SMTP%"a@b"`, `MX%"a@b"`, `IN%"a@b"`: the SMTP transports of VMS MAIL (the quoted part may be
  `"Name" <a@b>`: only the address is used);
- a plain address, `a@b.example`.
Every address is checked against RFC 5321 §4.1.2 (dot-atom local part, host-name domain; a
Unicode domain is sent as its A-label) before it reaches an envelope or a header, and headers are
built by email.message.EmailMessage, which refuses CR and LF (no header injection, CWE-93).

A stock host often runs no SMTP server on localhost:25 but has a mail transfer agent's
`sendmail` (exim4, postfix, msmtp-mta, nullmailer): when the SMTP server cannot be reached at all
(refused, unreachable, timed out), the mail goes to WUCME_SENDMAIL (default /usr/sbin/sendmail)
instead, with the envelope given on its command line.  An SMTP server that answers and refuses
is an error, not a reason to try another way.
"""
from __future__ import annotations

import datetime as _dt
import email.policy
import os
import re
import shlex
import smtplib
import socket
import ssl
import subprocess
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import idna

from wucme import __version__
from wucme.reporting.events import Event, ReportingError, clean, node_name, summary_line
from wucme.vms.lnm import translate_items, trnlnm

DEFAULT_SMTP = "localhost:25"
DEFAULT_SENDMAIL = "/usr/sbin/sendmail"
SMTP_TIMEOUT = 30.0
#: The largest mail body (UTF-8 bytes); lines past it are counted, not sent.
MAX_BODY = 64 * 1024
#: Headers are written 7-bit (RFC 2047 words for non-ASCII), bodies quoted-printable when needed,
#: so no server has to offer 8BITMIME; a defect in what we build is an error, not a guess.
POLICY = email.policy.SMTP.clone(cte_type="7bit", raise_on_defect=True)

_TRANSPORT = re.compile(r"(SMTP|MX|IN)%(.*)", re.I | re.S)
_VMS_USER = re.compile(r"[A-Za-z0-9_$-]{1,31}")
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LOCAL = re.compile(rf"{_ATOM}(?:\.{_ATOM})*")
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def check_address(addr: str, what: str = "address") -> str:
    """*addr* as `local@domain` with an ASCII domain, or ReportingError(BADMAIL)."""
    shown = clean(addr, 200)
    local, at, domain = addr.rpartition("@")
    if not at or not _LOCAL.fullmatch(local) or len(local) > 64:
        raise ReportingError(f"{what} {shown!r} is not a mail address (local@domain)", ident="BADMAIL")
    try:
        ascii_domain = domain if domain.isascii() else idna.encode(domain, uts46=True).decode("ascii")
    except idna.IDNAError as e:
        raise ReportingError(f"{what} {shown!r} has an invalid domain: {e}", ident="BADMAIL") from None
    ascii_domain = ascii_domain.rstrip(".").lower()
    labels = ascii_domain.split(".")
    if not ascii_domain or len(ascii_domain) > 253 or not all(_LABEL.fullmatch(x) for x in labels):
        raise ReportingError(f"{what} {shown!r} has an invalid domain", ident="BADMAIL")
    return f"{local}@{ascii_domain}"


def parse_target(item: str, domain: str = "localhost") -> str:
    """One WUCME_MAIL item in VMS MAIL syntax as an SMTP address (see the module docstring)."""
    text = item.strip()
    m = _TRANSPORT.fullmatch(text)
    if m:
        text = m.group(2).strip()
        if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
            text = text[1:-1].replace('""', '"').strip()
        if "<" in text and text.endswith(">"):
            text = text[text.rindex("<") + 1:-1].strip()
        return check_address(text, "WUCME_MAIL target")
    if "@" in text:
        return check_address(text.strip('"'), "WUCME_MAIL target")
    if _VMS_USER.fullmatch(text):
        return check_address(f"{text.lower()}@{domain}", "WUCME_MAIL target")
    why = "a DECnet or other MAIL transport" if "::" in text or "%" in text else "not a user or address"
    raise ReportingError(f"WUCME_MAIL target {clean(text, 200)!r}: {why} "
                         "(use USER, SMTP%\"a@b\" or a@b)", ident="BADMAIL")


def _fqdn() -> str:
    name = socket.getfqdn() or socket.gethostname() or "localhost"
    return name.strip(".").lower() or "localhost"


def parse_smtp(spec: str) -> tuple[str, int]:
    """WUCME_SMTP `host[:port]` (`[v6]:port` for an IPv6 address), default port 25."""
    s = spec.strip()
    if s.startswith("["):
        host, _, port = s[1:].partition("]")
        port = port.lstrip(":")
    elif s.count(":") == 1:
        host, _, port = s.partition(":")
    else:
        host, port = s, ""
    if not host or any(c.isspace() or ord(c) < 32 for c in host) or \
            (port and not (port.isdigit() and 0 < int(port) < 65536)):
        raise ReportingError(f"WUCME_SMTP {clean(spec, 200)!r} is not host[:port]", ident="BADSMTP")
    return host, int(port or 25)


@dataclass
class MailConfig:
    """The mail settings as the logical names give them when read."""

    recipients: list[str]
    sender: str
    host: str
    port: int
    starttls: str = ""  # "", "yes" (when offered) or "required"
    #: The sendmail command used when the SMTP server cannot be reached ([] : none).
    sendmail: list[str] = field(default_factory=list)
    #: Targets that could not be used (named in reports and by check).
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def from_logicals(cls) -> MailConfig | None:
        """None when WUCME_MAIL is undefined or empty; bad targets become warnings."""
        items = translate_items("WUCME_MAIL")
        if not items:
            return None
        domain = (trnlnm("WUCME_MAIL_DOMAIN") or "").strip() or "localhost"
        recipients: list[str] = []
        warnings: list[str] = []
        for item in items:
            try:
                addr = parse_target(item, domain)
            except ReportingError as e:
                warnings.append(e.text)
                continue
            if addr not in recipients:
                recipients.append(addr)
        sender = check_address((trnlnm("WUCME_MAIL_FROM") or "").strip() or f"wucme@{_fqdn()}",
                               "WUCME_MAIL_FROM")
        host, port = parse_smtp(trnlnm("WUCME_SMTP") or DEFAULT_SMTP)
        tls = (trnlnm("WUCME_SMTP_STARTTLS") or "").strip().upper()
        starttls = "required" if tls.startswith("REQ") else "" if tls in ("", "NO", "N", "0", "FALSE") else "yes"
        return cls(recipients, sender, host, port, starttls, sendmail_command(), warnings)

    def describe(self) -> str:
        return f"{', '.join(self.recipients)} through {self.host}:{self.port} from {self.sender}"


def build_message(events: list[Event], cfg: MailConfig, now: _dt.datetime | None = None) -> EmailMessage:
    """The report as a mail: subject `wuCME: 2 renewed, 1 failed on NODE`, one event a line."""
    t = (now or _dt.datetime.now(_dt.timezone.utc)).astimezone()
    node = node_name()
    msg = EmailMessage(policy=POLICY)
    msg["From"] = cfg.sender
    msg["To"] = ", ".join(cfg.recipients)
    msg["Subject"] = clean(f"wuCME: {summary_line(events)} on {node}", 200)
    msg["Date"] = format_datetime(t)
    msg["Message-ID"] = make_msgid("wucme", domain=cfg.sender.rpartition("@")[2])
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834 §5: no vacation replies to a report
    lines = [f"wuCME report from {node} at {t:%Y-%m-%d %H:%M:%S %z}", ""]
    size = sum(len(x.encode()) + 1 for x in lines)
    dropped = 0
    for e in events:
        text = e.message()
        if dropped or size + len(text.encode()) + 1 > MAX_BODY - 200:
            dropped += 1
            continue
        lines.append(text)
        size += len(text.encode()) + 1
    if dropped:
        lines.append(f"... {dropped} more message{'s' if dropped != 1 else ''} not shown "
                     f"(the body is limited to {MAX_BODY // 1024} KiB)")
    lines += ["", f"-- wucme {__version__}: WUCME_MAIL targets this report (docs/reporting.md)"]
    msg.set_content("\n".join(lines) + "\n", charset="utf-8")
    return msg


def sendmail_command() -> list[str]:
    """WUCME_SENDMAIL split as a shell splits words (run without a shell), else
    /usr/sbin/sendmail; [] when WUCME_SENDMAIL is NONE or the program is not there."""
    raw = (trnlnm("WUCME_SENDMAIL") or "").strip()
    if raw.upper() == "NONE":
        return []
    try:
        argv = shlex.split(raw) if raw else [DEFAULT_SENDMAIL]
    except ValueError as e:
        raise ReportingError(f"WUCME_SENDMAIL {clean(raw, 200)!r}: {e}", ident="BADSENDMAIL") from None
    return argv if argv and os.access(argv[0], os.X_OK) else []


def send_mail(events: list[Event], cfg: MailConfig) -> str:
    """Send one mail with every event; how it went ("through SMTP server h:p" or "through
    sendmail ..."), or ReportingError when it could not be sent."""
    if not events:
        return ""
    if not cfg.recipients:
        raise ReportingError("no usable WUCME_MAIL target: nothing mailed", ident="BADMAIL")
    data = build_message(events, cfg).as_bytes(policy=POLICY)
    where = f"{cfg.host}:{cfg.port}"
    try:
        s = smtplib.SMTP(cfg.host, cfg.port, timeout=SMTP_TIMEOUT)
    except smtplib.SMTPException as e:  # a server answered, and refused: no other way round it
        raise ReportingError(f"cannot send mail through SMTP server {where}: {clean(str(e), 300)}",
                             ident="MAILFAIL") from None
    except OSError as e:  # nobody answers: the local mail transfer agent, if there is one
        why = clean(getattr(e, "strerror", None) or str(e) or type(e).__name__, 300)
        if cfg.sendmail:
            _sendmail(cfg, data, f"no SMTP server at {where}: {why}")
            return f"through {cfg.sendmail[0]} (no SMTP server at {where}: {why})"
        raise ReportingError(
            f"cannot send mail through SMTP server {where}: {why}, and there is no sendmail "
            f"program ({DEFAULT_SENDMAIL}); define WUCME_SMTP as your mail relay host[:port], or "
            "install a mail transfer agent (Debian: exim4, postfix or msmtp-mta)",
            ident="MAILFAIL") from None
    try:
        with s:
            s.ehlo()
            if cfg.starttls:
                if s.has_extn("starttls"):
                    s.starttls(context=ssl.create_default_context())
                    s.ehlo()
                elif cfg.starttls == "required":
                    raise ReportingError(f"SMTP server {where} does not offer STARTTLS "
                                         "(WUCME_SMTP_STARTTLS is REQUIRED): nothing mailed",
                                         ident="MAILFAIL")
            refused = s.sendmail(cfg.sender, cfg.recipients, data)
    except smtplib.SMTPRecipientsRefused as e:
        raise ReportingError(f"SMTP server {where} refused every recipient: "
                             f"{_refusals(e.recipients)}", ident="MAILFAIL") from None
    except smtplib.SMTPResponseException as e:
        raise ReportingError(f"SMTP server {where} answered {e.smtp_code} "
                             f"{clean(_text(e.smtp_error), 300)}", ident="MAILFAIL") from None
    except (smtplib.SMTPException, OSError) as e:
        why = getattr(e, "strerror", None) or str(e) or type(e).__name__
        raise ReportingError(f"cannot send mail through SMTP server {where}: {clean(why, 300)}",
                             ident="MAILFAIL") from None
    if refused:
        raise ReportingError(f"SMTP server {where} refused {_refusals(refused)}", ident="MAILFAIL")
    return f"through SMTP server {where} from {cfg.sender}"


def _sendmail(cfg: MailConfig, data: bytes, why: str) -> None:
    """sendmail -oi -f SENDER -- RECIPIENT...: the envelope on the command line (not -t), so
    the headers are never read as addresses; a clean environment, no shell."""
    argv = [*cfg.sendmail, "-oi", "-f", cfg.sender, "--", *cfg.recipients]
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C"}
    try:
        r = subprocess.run(argv, input=data, capture_output=True, timeout=SMTP_TIMEOUT, env=env,
                           start_new_session=True)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ReportingError(f"{why}; {cfg.sendmail[0]} failed: {clean(str(e), 300)}",
                             ident="MAILFAIL") from None
    if r.returncode != 0:
        out = clean((r.stderr or r.stdout).decode("utf-8", "replace").strip(), 300)
        raise ReportingError(f"{why}; {cfg.sendmail[0]} exited with status {r.returncode}: {out}",
                             ident="MAILFAIL")


def _text(b: bytes | str) -> str:
    return b.decode("utf-8", "replace") if isinstance(b, bytes) else str(b)


def _refusals(refused: dict[str, tuple[int, bytes]]) -> str:
    return "; ".join(f"{a} ({code} {clean(_text(msg), 200)})" for a, (code, msg) in refused.items())
