"""OPCOM reports as syslog records received on sockets the test owns (unix datagram, stream, UDP)."""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from wucme.renewal import Outcome, RenewalReport
from wucme.reporting import Event, ReportingError, opcom_test, reporters_from_logicals, send_events

LOGICALS = ("WUCME_OPCOM", "WUCME_MAIL", "WUCME_SMTP", "WUCME_MAIL_FROM", "WUCME_MAIL_DOMAIN",
            "WUCME_SYSLOG", "WUCME_SYSLOG_FACILITY", "WUCME_SYSLOG_FORMAT", "WUCME_WARN_DAYS",
            "WUCME_SMTP_STARTTLS", "SYS$NODE")
# <PRI>Mmm dd hh:mm:ss wucme[pid]: banner  [classes]  Message from user U on NODE  %WUCME-...
RECORD = re.compile(
    r"<(?P<pri>\d+)>(?P<stamp>[A-Z][a-z]{2} [ 1-3]\d \d\d:\d\d:\d\d) wucme\[(?P<pid>\d+)\]: "
    r"%{11}  OPCOM  (?P<vmstime>[ 1-3]\d-[A-Z]{3}-\d{4} \d\d:\d\d:\d\d\.\d\d)  %{11}  "
    r"\[(?P<classes>[A-Z0-9,]+)\]  Message from user (?P<user>\S+) on (?P<node>\S+)  "
    r"(?P<message>%WUCME-[SIWEF]-[A-Z0-9_$]+, .*)", re.S)


@pytest.fixture(autouse=True)
def _no_reporting_logicals(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in LOGICALS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A short directory for sockets (a unix socket path is limited to 107 bytes)."""
    d = Path(tempfile.mkdtemp(prefix="wrep", dir="/tmp"))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def dgram(short_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    """A bound unix datagram socket, as /dev/log is; WUCME_SYSLOG names it."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(str(short_dir / "log"))
    s.settimeout(5)
    monkeypatch.setenv("WUCME_SYSLOG", str(short_dir / "log"))
    try:
        yield s
    finally:
        s.close()


def _records(s: socket.socket, n: int) -> list[str]:
    out = [s.recv(65536).decode("utf-8") for _ in range(n)]
    s.settimeout(0.05)
    with pytest.raises(OSError):  # socket.timeout: nothing more than expected
        s.recv(65536)
    return out


def _report() -> RenewalReport:
    return RenewalReport(started="x", outcomes=[
        Outcome(["www.example.org"], "WUCME_C_WWW_EXAMPLE_ORG.PEM", "renewed",
                "WUCME_C_WWW_EXAMPLE_ORG.PEM for www.example.org (1 name) renewed, expires 2027-02-25T00:20:00Z"),
        Outcome(["a.example.org"], "WUCME_C_A_EXAMPLE_ORG.PEM", "failed", "CA said\r\n<11>Nov  1 00:00:00 forged: x"),
    ])


def test_pass_report_as_opcom_syslog_records(dgram: socket.socket, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WUCME_OPCOM", "central,oper3")
    monkeypatch.setenv("SYS$NODE", "ALPHA::")
    (reporter,) = reporters_from_logicals()
    reporter(_report())
    records = _records(dgram, 3)  # RENEWED, RENEWFAIL, MANAGED: one record each
    parsed = [RECORD.fullmatch(r) for r in records]
    assert all(parsed), records
    m = [p for p in parsed if p]
    # LOCAL0 (16): S is notice (5), E is err (3)
    assert [int(x["pri"]) for x in m] == [16 * 8 + 5, 16 * 8 + 3, 16 * 8 + 3]
    assert {x["classes"] for x in m} == {"CENTRAL,OPER3"} and {x["node"] for x in m} == {"ALPHA"}
    assert {int(x["pid"]) for x in m} == {os.getpid()}
    assert m[0]["message"].startswith("%WUCME-S-RENEWED, WUCME_C_WWW_EXAMPLE_ORG.PEM for www.example.org")
    # the CA's CR/LF cannot start a forged record: one line, the text inside it
    assert "\n" not in records[1] and "\r" not in records[1]
    assert m[1]["message"] == ("%WUCME-E-RENEWFAIL, WUCME_C_A_EXAMPLE_ORG.PEM (a.example.org): "
                               "CA said  <11>Nov  1 00:00:00 forged: x")
    assert m[2]["message"] == "%WUCME-E-MANAGED, 1 renewed, 0 not due, 1 failed"


def test_unknown_class_is_ignored_with_a_warning(dgram: socket.socket, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WUCME_OPCOM", "CENTRAL,NOSUCH")
    monkeypatch.setenv("WUCME_SYSLOG_FACILITY", "LOCAL3")
    problems = send_events([Event("W", "EXPIRING", "www.example.org expires in 3 days and renewal keeps failing")])
    assert len(problems) == 1 and "NOSUCH" in problems[0] and "ignored" in problems[0]
    (record,) = _records(dgram, 1)
    m = RECORD.fullmatch(record)
    assert m and m["classes"] == "CENTRAL" and int(m["pri"]) == 19 * 8 + 4
    with pytest.raises(ReportingError) as e:
        opcom_test()
    assert e.value.ident == "BADCLASS" and "NOSUCH" in e.value.text


def test_opcom_test_to_udp_in_rfc5424(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(5)
        port = s.getsockname()[1]
        monkeypatch.setenv("WUCME_OPCOM", "SOFTWARE")
        monkeypatch.setenv("WUCME_SYSLOG", f"udp:127.0.0.1:{port}")
        monkeypatch.setenv("WUCME_SYSLOG_FORMAT", "RFC5424")
        monkeypatch.setenv("WUCME_SYSLOG_FACILITY", "local7")
        line = opcom_test()
        assert line == (f"test message to OPCOM SOFTWARE sent as syslog LOCAL7.{{crit/err/warning/notice/info}} "
                        f"RFC 5424 to udp:127.0.0.1:{port}")
        data = s.recv(65536)
    m = re.fullmatch(rb'<(\d+)>1 \S+ (\S+) wucme (\d+) TEST \[origin software="wucme" swVersion="[^"]+"\] '
                     rb"\xef\xbb\xbf(.*)", data, re.S)
    assert m, data
    assert int(m[1]) == 23 * 8 + 6 and m[2] != b"-" and int(m[3]) == os.getpid()
    text = m[4].decode()
    assert re.fullmatch(r"%{11}  OPCOM  .{23}  %{11}  \[SOFTWARE\]  Message from user \S+ on \S+  "
                        r"%WUCME-I-TEST, test message from wucme check /OPCOM at .*", text), text


def test_udp_record_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(5)
        monkeypatch.setenv("WUCME_OPCOM", "CENTRAL")
        monkeypatch.setenv("WUCME_SYSLOG", f"udp:127.0.0.1:{s.getsockname()[1]}")
        assert send_events([Event("E", "RENEWFAIL", "é" * 100_000)]) == []
        data = s.recv(65536)
    assert len(data) <= 2048 and data.startswith(b"<131>") and data.decode("utf-8").endswith("é")


def test_stream_socket_fallback(short_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(short_dir / "slog"))
        server.listen(1)
        server.settimeout(5)
        monkeypatch.setenv("WUCME_OPCOM", "CENTRAL")
        monkeypatch.setenv("WUCME_SYSLOG", f"unix:{short_dir / 'slog'}")
        assert send_events([Event("S", "RENEWED", "a"), Event("S", "RENEWED", "b")]) == []
        conn, _ = server.accept()
        with conn:
            conn.settimeout(5)
            data = b""
            while data.count(b"\n") < 2:
                chunk = conn.recv(65536)
                assert chunk
                data += chunk
    lines = data.decode().splitlines()
    assert [RECORD.fullmatch(x)["message"] for x in lines] == [  # type: ignore[index]
        "%WUCME-S-RENEWED, a", "%WUCME-S-RENEWED, b"]


def test_no_syslog_listener_is_a_clear_error(short_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WUCME_OPCOM", "CENTRAL")
    monkeypatch.setenv("WUCME_SYSLOG", str(short_dir / "nobody"))
    with pytest.raises(ReportingError) as e:
        opcom_test()
    assert e.value.ident == "OPCOMFAIL" and "No such file or directory" in e.value.text


# --- the command, as a real process --------------------------------------------------------------

def _wucme(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "wucme", *args], capture_output=True, text=True,
                          timeout=30, env=dict(os.environ), cwd=tempfile.gettempdir())


def test_check_opcom_command(dgram: socket.socket, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WUCME_OPCOM", "central,software,oper2")
    r = _wucme("check", "/opcom")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("%WUCME-S-OPCOM, test message to OPCOM CENTRAL,SOFTWARE,OPER2 sent as syslog LOCAL0")
    (record,) = _records(dgram, 1)
    m = RECORD.fullmatch(record)
    assert m and int(m["pri"]) == 16 * 8 + 6 and m["classes"] == "CENTRAL,SOFTWARE,OPER2"
    assert m["message"].startswith("%WUCME-I-TEST, test message from wucme check /OPCOM")


def test_check_opcom_command_errors(short_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    r = _wucme("check", "/opcom")
    assert (r.returncode, r.stderr.split(",")[0]) == (2, "%WUCME-E-NOOPCOM")
    monkeypatch.setenv("WUCME_OPCOM", "CENTRAL,OPER13")
    r = _wucme("check", "/opcom")
    assert r.returncode == 2 and r.stderr.startswith("%WUCME-E-BADCLASS, unknown operator class OPER13")
    monkeypatch.setenv("WUCME_OPCOM", "CENTRAL")
    monkeypatch.setenv("WUCME_SYSLOG", str(short_dir / "nobody"))
    r = _wucme("check", "/opcom")
    assert r.returncode == 2 and r.stderr.startswith("%WUCME-E-OPCOMFAIL, cannot send to OPCOM")
    assert "Traceback" not in r.stderr


JOURNAL_DIR = Path("/run/systemd/journal")
JOURNAL_SOCKET = JOURNAL_DIR / "dev-log"


@pytest.fixture
def journal_only() -> Iterator[socket.socket]:
    """A host without /dev/log whose journald listens at /run/systemd/journal/dev-log: the
    test binds that socket itself (only where neither exists, so no real daemon is disturbed)."""
    if os.path.exists("/dev/log") or JOURNAL_DIR.exists() or os.geteuid() != 0:
        pytest.skip("needs a host without /dev/log and without journald, as root")
    JOURNAL_DIR.mkdir(parents=True)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        s.bind(str(JOURNAL_SOCKET))
        s.settimeout(5)
        yield s
    finally:
        s.close()
        shutil.rmtree(JOURNAL_DIR, ignore_errors=True)


def test_no_dev_log_falls_back_to_the_journal_socket(journal_only: socket.socket,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WUCME_OPCOM", "CENTRAL")
    r = _wucme("check", "/opcom")
    assert r.returncode == 0, r.stderr
    assert r.stdout.rstrip().endswith(f"to {JOURNAL_SOCKET} (/dev/log is absent)")
    (record,) = _records(journal_only, 1)
    assert RECORD.fullmatch(record)


def test_no_syslog_socket_at_all_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    if os.path.exists("/dev/log") or JOURNAL_SOCKET.exists():
        pytest.skip("this host has a syslog socket")
    monkeypatch.setenv("WUCME_OPCOM", "CENTRAL")
    r = _wucme("check", "/opcom")
    assert r.returncode == 2
    assert r.stderr.startswith("%WUCME-E-NOSYSLOG, no syslog socket answers (/dev/log, /run/systemd/journal/dev-log)")
    assert "define WUCME_SYSLOG" in r.stderr
    # In a pass the same is one warning, and the pass goes on.
    problems = send_events([Event("S", "RENEWED", "x")])
    assert len(problems) == 1 and "OPCOM messages are in the agent log only" in problems[0]
