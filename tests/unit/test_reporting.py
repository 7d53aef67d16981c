"""Reporting without sockets: VMS MAIL targets, events, the EXPIRING warning, record formats."""
from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from wucme.renewal import Outcome, RenewalReport
from wucme.renewal import expiry_warnings as build_events
from wucme.reporting import (
    Event,
    ReportingError,
    report_events,
    reporters_from_logicals,
    send_events,
    summary_line,
)
from wucme.reporting.events import MAX_TEXT, clean
from wucme.reporting.mail import MailConfig, build_message, check_address, parse_smtp, parse_target
from wucme.reporting.opcom import OpcomConfig, opcom_text, syslog_record, vms_time
from wucme.repository import Repository

LOGICALS = ("WUCME_OPCOM", "WUCME_MAIL", "WUCME_SMTP", "WUCME_MAIL_FROM", "WUCME_MAIL_DOMAIN",
            "WUCME_SYSLOG", "WUCME_SYSLOG_FACILITY", "WUCME_SYSLOG_FORMAT", "WUCME_WARN_DAYS",
            "WUCME_SMTP_STARTTLS", "SYS$NODE")
NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


@pytest.fixture(autouse=True)
def _no_reporting_logicals(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in LOGICALS:
        monkeypatch.delenv(name, raising=False)


# --- mail targets ------------------------------------------------------------------------------

@pytest.mark.parametrize("item, domain, expect", [
    ("SYSTEM", "localhost", "system@localhost"),
    ("system", "example.org", "system@example.org"),
    ('smtp%"a@b.example"', "localhost", "a@b.example"),
    ('SMTP%"A.B+tag@B.Example"', "localhost", "A.B+tag@b.example"),
    ('MX%"ops@example.net"', "localhost", "ops@example.net"),
    ('IN%"Ops Team <ops@example.net>"', "localhost", "ops@example.net"),
    ("in%ops@example.net", "localhost", "ops@example.net"),
    ("a@b.example", "localhost", "a@b.example"),
    ('smtp%"x@bücher.example"', "localhost", "x@xn--bcher-kva.example"),
])
def test_vms_mail_targets(item: str, domain: str, expect: str) -> None:
    assert parse_target(item, domain) == expect


@pytest.mark.parametrize("item", [
    "NODE::USER", 'DECNET%"x"', 'smtp%"no-at-sign"', "a b@c.example", "a@b.example\r\nBcc: x@y",
    'smtp%"a@b.example\nBcc: x@y.example"', "a@-bad-.example", "a@b..example", "@b.example",
    "a@", 'smtp%"a@b.example>"', "a" * 65 + "@b.example", "user;rm",
])
def test_bad_mail_targets_are_refused(item: str) -> None:
    with pytest.raises(ReportingError) as e:
        parse_target(item)
    assert e.value.ident == "BADMAIL"
    assert "\n" not in e.value.text and "\r" not in e.value.text


def test_check_address_refuses_controls() -> None:
    with pytest.raises(ReportingError):
        check_address("wucme@host\r\nBcc: x@y.example", "WUCME_MAIL_FROM")


@pytest.mark.parametrize("spec, expect", [
    ("localhost", ("localhost", 25)), ("mail.example.org:587", ("mail.example.org", 587)),
    ("[::1]:2525", ("::1", 2525)), ("[::1]", ("::1", 25)), ("127.0.0.1:1025", ("127.0.0.1", 1025)),
])
def test_parse_smtp(spec: str, expect: tuple[str, int]) -> None:
    assert parse_smtp(spec) == expect


@pytest.mark.parametrize("spec", ["host:0", "host:99999", "host:x", ":25", "a b:25"])
def test_parse_smtp_refuses(spec: str) -> None:
    with pytest.raises(ReportingError):
        parse_smtp(spec)


def test_mail_config_from_search_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WUCME_MAIL", 'SYSTEM,smtp%"a@b.example",NODE::X,system')
    monkeypatch.setenv("WUCME_MAIL_DOMAIN", "example.org")
    monkeypatch.setenv("WUCME_SMTP", "127.0.0.1:2525")
    monkeypatch.setenv("WUCME_MAIL_FROM", "certs@example.org")
    cfg = MailConfig.from_logicals()
    assert cfg is not None
    assert cfg.recipients == ["system@example.org", "a@b.example"]
    assert (cfg.host, cfg.port, cfg.sender) == ("127.0.0.1", 2525, "certs@example.org")
    assert len(cfg.warnings) == 1 and "NODE::X" in cfg.warnings[0]


def test_default_sender_is_wucme_at_this_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WUCME_MAIL", "SYSTEM")
    cfg = MailConfig.from_logicals()
    assert cfg is not None and cfg.sender.startswith("wucme@") and (cfg.host, cfg.port) == ("localhost", 25)


# --- events ------------------------------------------------------------------------------------

def test_clean_makes_one_bounded_line() -> None:
    assert clean("a\r\nb\x1b[31mc\x00d\u2028e") == "a  b [31mc d e"
    long = clean("x" * (MAX_TEXT + 500))
    assert long.startswith("x" * MAX_TEXT) and long.endswith("(500 more characters not shown)")


def test_event_message_is_sanitised_and_checked() -> None:
    e = Event("w", "expiring", "line1\nline2", ["a.example"])
    assert e.message() == "%WUCME-W-EXPIRING, line1 line2"
    assert Event("E", "bad ident\r\nX: y", "t").ident == "REPORT"
    with pytest.raises(ValueError):
        Event("Q", "X", "t")


def _report() -> RenewalReport:
    r = RenewalReport(started="2026-11-27T00:20:00Z")
    r.outcomes = [
        Outcome(["www.example.org"], "WUCME_C_WWW_EXAMPLE_ORG.PEM", "renewed",
                "WUCME_C_WWW_EXAMPLE_ORG.PEM for www.example.org (1 name) renewed, expires 2027-02-25T00:20:00Z"),
        Outcome(["a.example.org", "b.example.org"], "WUCME_C_A_EXAMPLE_ORG.PEM", "failed", "urn:...:connection"),
        Outcome(["c.example.org"], "WUCME_C_C_EXAMPLE_ORG.PEM", "skipped", "not due until ..."),
    ]
    r.load = (False, "WUCME_LOAD 'false' exited with status 1")
    return r


def test_report_events_of_a_pass() -> None:
    events = report_events(_report())
    assert [e.message().split(",")[0] for e in events] == [
        "%WUCME-S-RENEWED", "%WUCME-E-RENEWFAIL", "%WUCME-W-LOADFAIL", "%WUCME-E-MANAGED"]
    assert events[1].hosts == ["a.example.org", "b.example.org"]
    assert events[-1].text == "1 renewed, 1 not due, 1 failed"
    assert summary_line(events) == "1 renewed, 1 failed, 1 load failed"


def test_report_events_of_a_quiet_pass_and_a_failed_pass() -> None:
    quiet = RenewalReport(started="x", outcomes=[Outcome(["a.example"], "F", "skipped", "not due")])
    assert report_events(quiet) == []
    broken = RenewalReport(started="x", error="%WUCME-E-CAFAIL, CA at https://ca/dir failed")
    events = report_events(broken)
    assert (events[0].severity, events[0].ident, events[0].text) == ("E", "CAFAIL", "CA at https://ca/dir failed")
    assert summary_line(events) == "1 error"


# --- the EXPIRING warning ----------------------------------------------------------------------

def _chain(names: list[str], not_before: dt.datetime, not_after: dt.datetime,
           key: ec.EllipticCurvePrivateKey) -> bytes:
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test issuer")])
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(issuer).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
            .sign(key, hashes.SHA256()))
    return leaf.public_bytes(serialization.Encoding.PEM)


def _save(repo: Repository, names: list[str], days_left: float, status: str = "") -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    chain = _chain(names, NOW - dt.timedelta(days=80), NOW + dt.timedelta(days=days_left), key)
    state = repo.save_certificate(names, key, chain, "http-01")
    if status:
        repo.record_attempt(state, status, f"{status}: urn:ietf:params:acme:error:connection")
    return repo.cert_path(names[0]).name


@pytest.fixture
def repo(tmp_path: Path) -> Repository:
    r = Repository(tmp_path / "here")
    r.ensure_writable()
    return r


def test_expiring_when_renewal_keeps_failing(repo: Repository, monkeypatch: pytest.MonkeyPatch) -> None:
    failing = _save(repo, ["www.example.org", "example.org"], 3.5, "failed")
    renewed = _save(repo, ["renewed.example.org"], 2, "failed")
    _save(repo, ["fine.example.org"], 2)  # close, but nothing failed
    far = _save(repo, ["far.example.org"], 20, "failed")
    gone = _save(repo, ["gone.example.org"], -2, "failed")
    _save(repo, ["revoked.example.org"], 1, "revoked")
    report = RenewalReport(started="x", outcomes=[
        Outcome(["www.example.org", "example.org"], failing, "failed", "CA said no\r\nBcc: x"),
        Outcome(["renewed.example.org"], renewed, "renewed", "renewed"),
    ])
    events = build_events(report, repo, NOW)
    lines = sorted(e.message() for e in events)
    assert len(lines) == 2, lines
    assert lines[0].startswith("%WUCME-E-EXPIRED, gone.example.org expired 2 days ago and renewal keeps failing")
    assert gone in lines[0]
    assert lines[1].startswith("%WUCME-W-EXPIRING, www.example.org (+1) expires in 3 days and renewal keeps "
                               f"failing ({failing}, not after ")
    assert lines[1].endswith("CA said no  Bcc: x")
    assert [e.hosts for e in events if e.ident == "EXPIRING"] == [["www.example.org", "example.org"]]
    monkeypatch.setenv("WUCME_WARN_DAYS", "30")
    assert far in " ".join(e.text for e in build_events(report, repo, NOW))


def test_expiring_after_a_failed_pass_and_in_hours(repo: Repository) -> None:
    _save(repo, ["soon.example.org"], 0.25)
    report = RenewalReport(started="x", error="%WUCME-E-CAFAIL, CA unreachable")
    (event,) = build_events(report, repo, NOW)
    assert event.text.startswith("soon.example.org expires in 6 hours and renewal keeps failing")
    assert event.text.endswith(": CA unreachable")
    assert build_events(RenewalReport(started="x"), repo, NOW) == []


# --- OPCOM records -----------------------------------------------------------------------------

def test_vms_time_and_opcom_text() -> None:
    t = dt.datetime(2026, 11, 7, 0, 20, 1, 234567)
    assert vms_time(t) == " 7-NOV-2026 00:20:01.23"
    text = opcom_text(Event("S", "RENEWED", "www.example.org renewed"), ["CENTRAL", "OPER2"], t, "SYSTEM", "NODE")
    assert text == ("%%%%%%%%%%%  OPCOM   7-NOV-2026 00:20:01.23  %%%%%%%%%%%  [CENTRAL,OPER2]  "
                    "Message from user SYSTEM on NODE  %WUCME-S-RENEWED, www.example.org renewed")


def test_syslog_records_3164_and_5424() -> None:
    t = dt.datetime(2026, 11, 7, 0, 20, 1, tzinfo=dt.timezone.utc)
    e = Event("E", "RENEWFAIL", "x")
    r = syslog_record(e, "text ü", "LOCAL0", t, rfc5424=False, hostname=None, limit=8192)
    assert re.fullmatch(rb"<131>Nov  7 00:20:01 wucme\[\d+\]: text \xc3\xbc", r)
    r = syslog_record(Event("I", "TEST", "x"), "text", "LOCAL7", t, rfc5424=True, hostname="h", limit=8192)
    assert re.fullmatch(rb'<190>1 2026-11-07T00:20:01.000000\+00:00 h wucme \d+ TEST '
                        rb'\[origin software="wucme" swVersion="[^"]+"\] \xef\xbb\xbftext', r)
    cut = syslog_record(e, "ü" * 5000, "USER", t, rfc5424=False, hostname="h", limit=2048)
    assert len(cut) <= 2048 and cut.decode("utf-8").endswith("ü")


def test_opcom_config(monkeypatch: pytest.MonkeyPatch) -> None:
    assert OpcomConfig.from_logicals() is None
    monkeypatch.setenv("WUCME_OPCOM", "central,software,oper2,Bogus,central")
    monkeypatch.setenv("WUCME_SYSLOG_FACILITY", "local5")
    cfg = OpcomConfig.from_logicals()
    assert cfg is not None
    assert cfg.classes == ["CENTRAL", "SOFTWARE", "OPER2"] and cfg.unknown == ["Bogus"]
    assert (cfg.facility, cfg.target, cfg.rfc5424) == ("LOCAL5", "", False)  # "": the default sockets
    monkeypatch.setenv("WUCME_SYSLOG_FACILITY", "nonsense")
    monkeypatch.setenv("WUCME_SYSLOG_FORMAT", "RFC5424")
    cfg = OpcomConfig.from_logicals()
    assert cfg is not None and cfg.facility == "LOCAL0" and cfg.rfc5424
    assert any("nonsense" in w for w in cfg.warnings)
    monkeypatch.setenv("WUCME_SYSLOG_FACILITY", "3")
    cfg = OpcomConfig.from_logicals()
    assert cfg is not None and cfg.facility == "DAEMON"


# --- the agent's entry points ------------------------------------------------------------------

def test_nothing_configured_means_no_reporters(monkeypatch: pytest.MonkeyPatch) -> None:
    assert reporters_from_logicals() == []
    assert send_events([Event("S", "RENEWED", "x")]) == []
    monkeypatch.setenv("WUCME_MAIL", "SYSTEM")
    assert [r.__name__ for r in reporters_from_logicals()] == ["report_mail"]
    monkeypatch.setenv("WUCME_OPCOM", "CENTRAL")
    assert [r.__name__ for r in reporters_from_logicals()] == ["report_opcom", "report_mail"]


def test_send_events_never_raises(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("WUCME_OPCOM", "CENTRAL")
    monkeypatch.setenv("WUCME_SYSLOG", str(tmp_path / "nobody-listens"))
    monkeypatch.setenv("WUCME_MAIL", "SYSTEM")
    monkeypatch.setenv("WUCME_SMTP", "bad host:25")
    problems = send_events([Event("E", "RENEWFAIL", "x")])
    assert len(problems) == 2
    assert problems[0].startswith("OPCOM: cannot send to OPCOM") and "WUCME_SMTP" in problems[1]


def test_subject_and_headers_carry_no_injected_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYS$NODE", "EVIL\r\nBcc: victim@example.net::")
    monkeypatch.setenv("WUCME_MAIL", "SYSTEM")
    cfg = MailConfig.from_logicals()
    assert cfg is not None
    raw = build_message([Event("S", "RENEWED", "ok\r\nBcc: v@example.net")], cfg).as_bytes()
    head = raw.split(b"\r\n\r\n", 1)[0] if b"\r\n\r\n" in raw else raw.split(b"\n\n", 1)[0]
    assert not re.search(rb"(?im)^bcc:", raw)
    assert b"Subject: wuCME: 1 renewed on EVIL  BCC: VICTIM@EXAMPLE.NET" in head
