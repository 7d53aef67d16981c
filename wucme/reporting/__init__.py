"""Reports of renewals and failures to OPCOM (syslog on Linux) and mail: what the renewal pass
calls (for `manage` and the agent alike).

Every setting is a logical name read when a report is sent, never cached, so a DEFINE of
WUCME_MAIL or WUCME_OPCOM takes effect in a running agent (docs/reporting.md).

- reporters_from_logicals(): one reporter per configured target, each sending a pass's events;
- send_events(events): send any events (the pass's expiry warnings) to every configured target,
  problems returned as text;
- opcom_test(), mail_test(): `check /OPCOM` and `check /MAIL`.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from wucme.core.times import iso, utc_now
from wucme.errors import WucmeError
from wucme.reporting.events import (
    MAX_TEXT,
    Event,
    PassReport,
    ReportingError,
    clean,
    report_events,
    short_hosts,
    summary_line,
)
from wucme.reporting.opcom import OPERATOR_CLASSES, OpcomConfig, send_opcom, unknown_classes
from wucme.vms.lnm import translate_items
from wucme.vms.condition import VmsError

if TYPE_CHECKING:
    from wucme.reporting.mail import MailConfig

__all__ = [
    "MAX_TEXT",
    "OPERATOR_CLASSES",
    "Event",
    "PassReport",
    "ReportingError",
    "clean",
    "config_problems",
    "mail_test",
    "opcom_test",
    "report_events",
    "reporters_from_logicals",
    "send_events",
    "short_hosts",
    "summary_line",
]

Reporter = Callable[[PassReport], None]


_Config = TypeVar("_Config", OpcomConfig, "MailConfig")


def _mail_config() -> MailConfig | None:
    """WUCME_MAIL's configuration (the mail module, and the email package, are imported only
    once it is asked for: a pass that reports nothing needs neither)."""
    from wucme.reporting.mail import MailConfig

    return MailConfig.from_logicals()


def _send_mail_as(events: list[Event], cfg: MailConfig) -> str:
    from wucme.reporting.mail import send_mail

    return send_mail(events, cfg)


def _send_as_configured(label: str, load: Callable[[], _Config | None],
                        send: Callable[[list[Event], _Config], str], events: list[Event]) -> list[str]:
    """Send to one target as configured now; problems (the configuration's warnings:
    unknown classes, unusable targets) as text, each led by *label*."""
    cfg = load()
    if cfg is None or not events:
        return []
    problems = [f"{label}: {w}" for w in cfg.warnings]
    try:
        send(events, cfg)
    except WucmeError as e:
        problems.append(f"{label}: {e.text}")
    return problems


def _send_opcom(events: list[Event]) -> list[str]:
    return _send_as_configured("OPCOM", OpcomConfig.from_logicals, send_opcom, events)


def _send_mail(events: list[Event]) -> list[str]:
    return _send_as_configured("mail", _mail_config, _send_mail_as, events)


def _guard(send: Callable[[list[Event]], list[str]], events: list[Event]) -> list[str]:
    try:
        return send(events)
    except (WucmeError, VmsError) as e:  # a bad logical name value (WUCME_SMTP, a loop, ...)
        return [e.text]
    except Exception as e:  # noqa: BLE001 - a report never stops the agent
        return [f"unexpected {type(e).__name__}: {e}"]


def _reporter(send: Callable[[list[Event]], list[str]], what: str) -> Reporter:
    def report(r: PassReport) -> None:
        problems = _guard(send, report_events(r))
        if problems:  # renewal_pass logs it as a warning and carries on
            raise ReportingError("; ".join(problems), ident="REPORTFAIL")
    report.__name__ = report.__qualname__ = f"report_{what}"
    return report


def reporters_from_logicals() -> list[Reporter]:
    """One reporter for each target defined now (WUCME_OPCOM, WUCME_MAIL); [] when none is.

    Each reporter reads its settings again when called.  It sends the pass's renewals,
    failures, load result and summary (nothing when nothing was renewed or failed), and
    raises ReportingError naming what could not be delivered, which renewal_pass logs."""
    reporters: list[Reporter] = []
    for name, send, what in (("WUCME_OPCOM", _send_opcom, "opcom"), ("WUCME_MAIL", _send_mail, "mail")):
        try:
            defined = bool(translate_items(name))
        except (WucmeError, VmsError):
            defined = True  # a broken definition: the reporter will name the problem
        if defined:
            reporters.append(_reporter(send, what))
    return reporters


def send_events(events: list[Event]) -> list[str]:
    """Send *events* to every configured target; what went wrong, as text.  Never raises."""
    if not events:
        return []
    return _guard(_send_opcom, events) + _guard(_send_mail, events)


def config_problems() -> list[str]:
    """What is wrong with the reporting logical names now (for the agent's log at start)."""
    problems: list[str] = []
    for what, load in (("OPCOM", OpcomConfig.from_logicals), ("mail", _mail_config)):
        try:
            cfg = load()
            problems += [f"{what}: {w}" for w in (cfg.warnings if cfg else [])]
        except (WucmeError, VmsError) as e:
            problems.append(f"{what}: {e.text}")
    return problems


def _test_event(verb: str) -> Event:
    now = iso(utc_now())
    return Event("I", "TEST", f"test message from wucme check /{verb} at {now}: reporting works")


def opcom_test() -> str:
    """Send a test message to WUCME_OPCOM's classes; a line saying what went where.

    Raises ReportingError when WUCME_OPCOM is undefined, names an unknown class or facility,
    or the syslog socket refuses the message."""
    cfg = OpcomConfig.from_logicals()
    if cfg is None:
        raise ReportingError("WUCME_OPCOM is not defined: define it as operator classes, "
                             "e.g. CENTRAL,NETWORK", ident="NOOPCOM")
    if cfg.unknown:
        raise ReportingError(unknown_classes(cfg.unknown), ident="BADCLASS")
    if cfg.warnings:
        raise ReportingError("; ".join(cfg.warnings), ident="BADSYSLOG")
    used = send_opcom([_test_event("OPCOM")], cfg)
    return f"test message to OPCOM {','.join(cfg.classes)} sent as {cfg.describe(used)}"


def mail_test() -> str:
    """Send a test mail to WUCME_MAIL's targets; a line saying what went where.

    Raises ReportingError when WUCME_MAIL is undefined, a target or the sender is not an
    address, or the SMTP server cannot be used."""
    cfg = _mail_config()
    if cfg is None:
        raise ReportingError("WUCME_MAIL is not defined: define it as mail targets, "
                             "e.g. SYSTEM,SMTP%\"admin@example.org\"", ident="NOMAIL")
    if cfg.warnings:
        raise ReportingError("; ".join(cfg.warnings), ident="BADMAIL")
    used = _send_mail_as([_test_event("MAIL")], cfg)
    return f"test message mailed to {', '.join(cfg.recipients)} {used}"
