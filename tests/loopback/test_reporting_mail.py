"""Mail reports to a real SMTP server (aiosmtpd on a loopback port): raw bytes, envelopes, errors."""
from __future__ import annotations

import datetime as dt
import email
import email.policy
import os
import re
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from harness.loopback import stop_accepting
from harness.ports import free_port
from wucme.renewal import Outcome, RenewalReport
from wucme.renewal import expiry_warnings as build_events
from wucme.reporting import (
    Event,
    ReportingError,
    mail_test,
    report_events,
    reporters_from_logicals,
    send_events,
)
from wucme.repository import Repository

LOGICALS = ("WUCME_OPCOM", "WUCME_MAIL", "WUCME_SMTP", "WUCME_MAIL_FROM", "WUCME_MAIL_DOMAIN",
            "WUCME_SYSLOG", "WUCME_SYSLOG_FACILITY", "WUCME_SYSLOG_FORMAT", "WUCME_WARN_DAYS",
            "WUCME_SMTP_STARTTLS", "WUCME_SENDMAIL", "SYS$NODE")


@pytest.fixture(autouse=True)
def _no_reporting_logicals(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in LOGICALS:
        monkeypatch.delenv(name, raising=False)


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes

    @property
    def message(self) -> email.message.EmailMessage:
        return email.message_from_bytes(self.raw, policy=email.policy.default)  # type: ignore[return-value]

    @property
    def head(self) -> bytes:
        return re.split(rb"\r?\n\r?\n", self.raw, maxsplit=1)[0]


@dataclass
class Collector:
    """An aiosmtpd handler keeping every message; addresses in *refuse* get a 550."""

    messages: list[Received] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        if address in self.refuse:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos),
                                      envelope.original_content or envelope.content))
        return "250 Message accepted for delivery"


@dataclass
class Smtp:
    collector: Collector
    port: int

    @property
    def spec(self) -> str:
        return f"127.0.0.1:{self.port}"


@pytest.fixture
def smtp(monkeypatch: pytest.MonkeyPatch) -> Iterator[Smtp]:
    """A real SMTP server on a free loopback port; WUCME_SMTP points at it."""
    collector = Collector()
    port = free_port()
    controller = Controller(collector, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("WUCME_SMTP", f"127.0.0.1:{port}")
    try:
        yield Smtp(collector, port)
    finally:
        controller.stop()


def _report(detail: str = "urn:ietf:params:acme:error:connection: no answer") -> RenewalReport:
    return RenewalReport(started="2026-11-27T00:20:00Z", outcomes=[
        Outcome(["www.example.org"], "WUCME_C_WWW_EXAMPLE_ORG.PEM", "renewed",
                "WUCME_C_WWW_EXAMPLE_ORG.PEM for www.example.org (1 name) renewed, expires 2027-02-25T00:20:00Z"),
        Outcome(["shop.example.org"], "WUCME_C_SHOP_EXAMPLE_ORG.PEM", "renewed", ""),
        Outcome(["a.example.org"], "WUCME_C_A_EXAMPLE_ORG.PEM", "failed", detail),
    ])


def test_report_to_a_vms_mail_search_list(smtp: Smtp, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WUCME_MAIL", 'SYSTEM,smtp%"a@b.example"')
    monkeypatch.setenv("WUCME_MAIL_FROM", "certs@example.org")
    monkeypatch.setenv("SYS$NODE", "ALPHA::")
    (reporter,) = reporters_from_logicals()
    reporter(_report())
    (got,) = smtp.collector.messages
    assert got.mail_from == "certs@example.org"
    assert got.rcpt_tos == ["system@localhost", "a@b.example"]
    msg = got.message
    assert msg["To"] == "system@localhost, a@b.example"
    assert msg["From"] == "certs@example.org"
    assert msg["Subject"] == "wuCME: 2 renewed, 1 failed on ALPHA"
    assert msg["Auto-Submitted"] == "auto-generated" and msg["Message-ID"] and msg["Date"]
    body = msg.get_content()
    assert "%WUCME-S-RENEWED, WUCME_C_WWW_EXAMPLE_ORG.PEM for www.example.org (1 name) renewed" in body
    assert "%WUCME-E-RENEWFAIL, WUCME_C_A_EXAMPLE_ORG.PEM (a.example.org): urn:ietf:params:acme:error:connection" in body
    assert "%WUCME-E-MANAGED, 2 renewed, 0 not due, 1 failed" in body
    # a quiet pass sends nothing
    reporter(RenewalReport(started="x", outcomes=[Outcome(["c.example"], "F", "skipped", "not due")]))
    assert len(smtp.collector.messages) == 1


def test_no_header_injection_and_a_truncated_megabyte(smtp: Smtp, monkeypatch: pytest.MonkeyPatch) -> None:
    """Hostile CA detail, host names and node name: one header block, nothing injected."""
    monkeypatch.setenv("WUCME_MAIL", "SYSTEM")
    monkeypatch.setenv("SYS$NODE", "NODE\r\nBcc: victim@evil.example\r\n")
    evil_host = "www.example.org\r\nX-Injected: host\r\n\r\nforged body"
    detail = "\r\nX-Injected: detail\r\nBcc: victim@evil.example\r\n" + "D" * (1024 * 1024) + "\x1b[2J"
    report = RenewalReport(started="x", outcomes=[Outcome([evil_host], "WUCME_C_WWW.PEM", "failed", detail)])
    assert send_events(report_events(report)) == []
    (got,) = smtp.collector.messages
    assert got.rcpt_tos == ["system@localhost"]
    assert not re.search(rb"(?im)^(bcc|x-injected):", got.raw)
    names = [k.lower() for k in got.message.keys()]
    assert sorted(names) == sorted(["from", "to", "subject", "date", "message-id", "auto-submitted",
                                    "content-type", "content-transfer-encoding", "mime-version"])
    body = got.message.get_content()
    assert "more characters not shown" in body and "\x1b" not in body
    assert len(got.raw) < 64 * 1024 and body.count("D") < 2100
    (fail,) = [x for x in body.splitlines() if x.startswith("%WUCME-E-RENEWFAIL")]
    assert "X-Injected: host" in fail and "forged body" in fail and "X-Injected: detail" in fail


def test_many_events_are_cut_at_64_kib_and_non_ascii_survives(smtp: Smtp,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WUCME_MAIL", 'MX%"ops@bücher.example",IN%"Ops <ops2@example.net>"')
    monkeypatch.setenv("SYS$NODE", "ZÜRICH")
    events = [Event("E", "RENEWFAIL", f"host{i}.example: Zürich ✓ " + "x" * 1900) for i in range(100)]
    assert send_events(events) == []
    (got,) = smtp.collector.messages
    assert got.rcpt_tos == ["ops@xn--bcher-kva.example", "ops2@example.net"]
    assert got.raw.isascii()  # 7-bit headers (RFC 2047) and a quoted-printable body
    msg = got.message
    assert msg["Subject"] == "wuCME: 100 failed on ZÜRICH"
    body = msg.get_content()
    assert len(body.encode()) <= 64 * 1024
    assert "Zürich ✓" in body and re.search(r"\.\.\. \d+ more messages not shown", body)


def test_mail_test_and_a_refused_recipient(smtp: Smtp, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WUCME_MAIL", "SYSTEM,nobody@example.org")
    line = mail_test()
    assert line.startswith("test message mailed to system@localhost, nobody@example.org through SMTP server "
                           f"{smtp.spec} from wucme@")
    assert smtp.collector.messages[0].message["Subject"].startswith("wuCME: test message on ")
    smtp.collector.refuse.add("nobody@example.org")
    with pytest.raises(ReportingError) as e:
        mail_test()
    assert e.value.ident == "MAILFAIL" and "nobody@example.org (550" in e.value.text
    assert smtp.collector.messages[-1].rcpt_tos == ["system@localhost"]


def test_bad_target_is_skipped_by_the_agent_and_refused_by_check(smtp: Smtp,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WUCME_MAIL", "SYSTEM,OTHERNODE::JONES")
    (reporter,) = reporters_from_logicals()
    with pytest.raises(ReportingError) as e:
        reporter(_report())
    assert "OTHERNODE::JONES" in e.value.text
    assert smtp.collector.messages[0].rcpt_tos == ["system@localhost"]
    with pytest.raises(ReportingError) as e:
        mail_test()
    assert e.value.ident == "BADMAIL"


def test_smtp_server_down_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WUCME_MAIL", "SYSTEM")
    monkeypatch.setenv("WUCME_SMTP", f"127.0.0.1:{free_port()}")
    monkeypatch.setenv("WUCME_SENDMAIL", "NONE")  # no mail transfer agent either
    with pytest.raises(ReportingError) as e:
        mail_test()
    assert e.value.ident == "MAILFAIL" and "Connection refused" in e.value.text
    assert "no sendmail program" in e.value.text and "define WUCME_SMTP" in e.value.text
    problems = send_events([Event("E", "RENEWFAIL", "x")])
    assert len(problems) == 1 and problems[0].startswith("mail: cannot send mail through SMTP server 127.0.0.1:")


def test_starttls_required_but_not_offered(smtp: Smtp, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WUCME_MAIL", "SYSTEM")
    monkeypatch.setenv("WUCME_SMTP_STARTTLS", "REQUIRED")
    with pytest.raises(ReportingError) as e:
        mail_test()
    assert "does not offer STARTTLS" in e.value.text and smtp.collector.messages == []
    monkeypatch.setenv("WUCME_SMTP_STARTTLS", "YES")  # only when offered: this server sends plain
    mail_test()
    assert len(smtp.collector.messages) == 1


def _chain(name: str, not_before: dt.datetime, not_after: dt.datetime, key: ec.EllipticCurvePrivateKey) -> bytes:
    """A self-signed leaf for *name*: all the repository needs to read the dates."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    leaf = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), False)
            .sign(key, hashes.SHA256()))
    return leaf.public_bytes(serialization.Encoding.PEM)


def test_expiring_warning_is_mailed(smtp: Smtp, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """expiry_warnings + send_events, as the renewal pass calls them (a real repository)."""
    monkeypatch.setenv("WUCME_MAIL", "SYSTEM")
    repo = Repository(tmp_path / "here")
    repo.ensure_writable()
    now = dt.datetime.now(dt.timezone.utc)
    key = ec.generate_private_key(ec.SECP256R1())
    state = repo.save_certificate(["www.example.org"], key, _chain(
        "www.example.org", now - dt.timedelta(days=87), now + dt.timedelta(days=3, hours=2), key), "http-01")
    repo.record_attempt(state, "failed", "failed: no responder")
    report = RenewalReport(started="x", outcomes=[Outcome(["www.example.org"], repo.cert_path(
        "www.example.org").name, "failed", "urn:ietf:params:acme:error:connection")])
    assert send_events(build_events(report, repo, now)) == []
    msg = smtp.collector.messages[0].message
    assert msg["Subject"].startswith("wuCME: 1 expiring on ")
    assert ("%WUCME-W-EXPIRING, www.example.org expires in 3 days and renewal keeps failing "
            "(WUCME_C_WWW_EXAMPLE_ORG.PEM, not after ") in msg.get_content()


# --- the command, as a real process --------------------------------------------------------------

def _wucme(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "wucme", *args], capture_output=True, text=True,
                          timeout=30, env=dict(os.environ), cwd=tempfile.gettempdir())


def test_check_mail_command(smtp: Smtp, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WUCME_MAIL", 'SYSTEM,smtp%"a@b.example"')
    r = _wucme("check", "/mail")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("%WUCME-S-MAILED, test message mailed to system@localhost, a@b.example through SMTP server ")
    assert smtp.collector.messages[0].rcpt_tos == ["system@localhost", "a@b.example"]


def test_check_mail_command_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    r = _wucme("check", "/mail")
    assert (r.returncode, r.stderr.split(",")[0]) == (2, "%WUCME-E-NOMAIL")
    monkeypatch.setenv("WUCME_MAIL", "SYSTEM")
    monkeypatch.setenv("WUCME_SMTP", f"127.0.0.1:{free_port()}")
    r = _wucme("CHECK", "/MAIL")
    assert r.returncode == 2
    assert r.stderr.startswith("%WUCME-E-MAILFAIL, cannot send mail through SMTP server 127.0.0.1:")
    assert "Traceback" not in r.stderr


def test_a_define_takes_effect_in_a_running_process(smtp: Smtp) -> None:
    """DEFINE /SYSTEM by another process: the next reporters_from_logicals and the next report see it."""
    assert reporters_from_logicals() == []
    r = _wucme("define", "/system", "WUCME_MAIL", '"system,smtp%""a@b.example"""')
    assert r.returncode == 0, r.stderr
    (reporter,) = reporters_from_logicals()
    r = _wucme("define", "/system", "WUCME_MAIL_FROM", "later@example.org")
    assert r.returncode == 0, r.stderr
    reporter(_report())
    (got,) = smtp.collector.messages
    assert (got.mail_from, got.rcpt_tos) == ("later@example.org", ["system@localhost", "a@b.example"])


MSMTP = "/usr/bin/msmtp"


@pytest.mark.skipif(not os.access(MSMTP, os.X_OK), reason="msmtp (Debian package msmtp) is not installed")
def test_no_smtp_server_but_a_sendmail_program(smtp: Smtp, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stock host: nothing on the SMTP port, a mail transfer agent's sendmail (here msmtp, a
    real one, relaying to the sink) takes the report, with the envelope on its command line."""
    monkeypatch.setenv("WUCME_MAIL", 'SYSTEM,SMTP%"ops@example.org"')
    monkeypatch.setenv("WUCME_SMTP", f"127.0.0.1:{free_port()}")  # nobody answers there
    monkeypatch.setenv("WUCME_SENDMAIL", f"{MSMTP} --host=127.0.0.1 --port={smtp.port} --auth=off --tls=off")
    line = mail_test()
    assert line.startswith(f"test message mailed to system@localhost, ops@example.org through {MSMTP} "
                           "(no SMTP server at 127.0.0.1:")
    (got,) = smtp.collector.messages
    assert sorted(got.rcpt_tos) == ["ops@example.org", "system@localhost"]
    assert got.message["Subject"].startswith("wuCME: ") and "check /MAIL" in got.message.get_content()
    # The agent's reports take the same way.
    assert send_events([Event("E", "RENEWFAIL", "www.example.org: the CA said no")]) == []
    assert "RENEWFAIL" in smtp.collector.messages[1].message.get_content()


def test_a_sendmail_that_fails_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setenv("WUCME_MAIL", "SYSTEM")
    monkeypatch.setenv("WUCME_SMTP", f"127.0.0.1:{free_port()}")
    monkeypatch.setenv("WUCME_SENDMAIL", "/bin/false")
    with pytest.raises(ReportingError) as e:
        mail_test()
    assert e.value.ident == "MAILFAIL"
    assert "no SMTP server at 127.0.0.1:" in e.value.text and "/bin/false exited with status 1" in e.value.text


def test_an_smtp_server_that_refuses_is_not_bypassed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A server that answers 554 at the greeting refused the mail: sendmail is not tried."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    import threading

    def greet() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:  # shut down: the test is over
            return
        with conn:
            conn.sendall(b"554 5.7.1 no service for you\r\n")
            conn.recv(100)

    t = threading.Thread(target=greet, daemon=True)
    t.start()
    monkeypatch.setenv("WUCME_MAIL", "SYSTEM")
    monkeypatch.setenv("WUCME_SMTP", f"127.0.0.1:{port}")
    monkeypatch.setenv("WUCME_SENDMAIL", "/bin/true")
    try:
        with pytest.raises(ReportingError) as e:
            mail_test()
        assert e.value.ident == "MAILFAIL" and "554" in e.value.text and "/bin/true" not in e.value.text
    finally:
        stop_accepting(listener, t)
