"""The renewal pass (wucme.renewal.renewal_pass) run in this process against a real Pebble: what
`manage` and the agent do each day, asserted by what the pass says (its VMS conditions, in
order), what its report holds, and what it leaves in the state files.

In-process on purpose: `build.py mutate renewal` runs these tests against each mutant of
renewal.py (a subprocess would import the unmutated tree).  The pass decides at the time it is
given (`now=`), so a certificate Pebble issued minutes ago can be due, expired or fresh.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import datetime as dt
import io
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from harness.pebble import Pebble, free_port
from wucme.cli import main as wucme
from wucme.core.times import iso
from wucme.renewal import RETRY_AFTER_FAILURE, Outcome, RenewalReport, renewal_pass, threshold
from wucme.repository import Repository
from wucme.uacme.msg import Msg

pytestmark = pytest.mark.pebble

PR_SET_CHILD_SUBREAPER = 36  # linux/prctl.h

NOTLOADED = ("%WUCME-W-NOTLOADED, nothing loads the renewed certificates: neither WUCME_LOAD nor "
             "WUCME_SERVICES is defined, so the servers keep the old ones until restarted "
             "(wucme check /load says what to define)")

#: What a pass may read from the environment; each test starts with none of it defined.
PASS_SETTINGS = ("WUCME_DAYS", "WUCME_LOAD", "WUCME_SERVICES", "WUCME_RENEW_CHALLENGE", "WUCME_WORKERS",
                 "WUCME_PROMETHEUS_FILE", "WUCME_PASS_DEADLINE", "WUCME_OPCOM", "WUCME_MAIL",
                 "WUCME_SYSLOG", "WUCME_WARN_DAYS", "WUCME_HOOK_ORDER")


class Site:
    """A repository with an account at Pebble, and the pass run on it in this process."""

    def __init__(self, pebble: Pebble, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.here = tmp / "here"
        self.tmp = tmp
        self.pebble = pebble
        self.monkeypatch = monkeypatch
        for name in PASS_SETTINGS:
            monkeypatch.delenv(name, raising=False)
        for k, v in dict(WUCME_HERE=str(self.here), WUCME_CA=pebble.directory_url,
                         WUCME_CA_BUNDLE=pebble.ca_bundle, WUCME_CHALLENGE="http-01",
                         WUCME_HTTP01=f"127.0.0.1:{pebble.http_port}",
                         WUCME_ALPN=f"127.0.0.1:{pebble.tls_port}",
                         WUCME_ALPN_SOCKET=str(tmp / "alpn.sock")).items():
            monkeypatch.setenv(k, v)
        assert wucme(["register", "admin@example.org"]) == 0
        self.repo = Repository(self.here)
        self.said: list[str] = []
        self.log = Msg(1, io.StringIO())

    def issue(self, *names: str, challenge: str = "http-01") -> x509.Certificate:
        self.monkeypatch.setenv("WUCME_CHALLENGE", challenge)
        assert wucme(["issue", ",".join(names), "/noprogress"]) == 0
        self.monkeypatch.setenv("WUCME_CHALLENGE", "http-01")
        return self.leaf(names[0])

    def leaf(self, host: str) -> x509.Certificate:
        return x509.load_pem_x509_certificates(self.repo.cert_path(host).read_bytes())[0]

    def state(self, host: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.repo.state_path(host).read_text())
        return data

    def edit_state(self, host: str, **changes: Any) -> None:
        data = self.state(host)
        data.update(changes)
        self.repo.state_path(host).write_text(json.dumps(data))

    def run(self, now: dt.datetime | None = None, **kw: Any) -> RenewalReport:
        self.said.clear()
        return renewal_pass(self.repo, self.log, note=lambda c: self.said.append(str(c)), now=now, **kw)


@pytest.fixture(autouse=True)
def _not_a_subreaper_afterwards() -> Iterator[None]:
    """The load action makes this process a child subreaper (wucme/load.py); pytest's process
    must not stay one: `build.py mutate` runs these tests in mutmut's own process, which
    reaps its workers and would meet the orphans it adopted (a timed-out worker's Pebble)."""
    yield
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


@pytest.fixture
def site(pebble: Pebble, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Site:
    return Site(pebble, tmp_path, monkeypatch)


def renewed_line(site: Site, host: str, names: int, why: str) -> str:
    leaf = site.leaf(host)
    part = host.upper().replace(".", "_")
    plural = "s" if names != 1 else ""
    return (f"%WUCME-S-RENEWED, WUCME_C_{part}.PEM for {host} ({names} name{plural}) renewed ({why}), "
            f"expires {iso(leaf.not_valid_after_utc)}")


# --- what is due, and what the pass says about each -----------------------------------------------

def test_the_due_certificate_is_renewed_and_the_others_say_until_when(site: Site) -> None:
    fresh = site.issue("fresh.example.org", "www.fresh.example.org")
    grown = site.issue("grown.example.org")
    # The state now names a host the certificate lacks: due, and renewed for both names.
    site.edit_state("grown.example.org", hosts=["grown.example.org", "more.example.org"])
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    report = site.run(now)

    until = iso(fresh.not_valid_after_utc - threshold(fresh))
    assert site.said == [
        f"%WUCME-I-SKIPPED, WUCME_C_FRESH_EXAMPLE_ORG.PEM (fresh.example.org, www.fresh.example.org): "
        f"not due until {until}",
        renewed_line(site, "grown.example.org", 2, "certificate lacks more.example.org"),
        NOTLOADED,
    ]
    assert report.summary() == "1 renewed, 1 not due, 0 failed" and report.started == iso(now)
    assert report.ok and report.error == "" and report.not_loaded == NOTLOADED[len("%WUCME-W-NOTLOADED, "):]
    assert report.outcomes == [
        Outcome(["fresh.example.org", "www.fresh.example.org"], "WUCME_C_FRESH_EXAMPLE_ORG.PEM", "skipped",
                f"not due until {until}"),
        Outcome(["grown.example.org", "more.example.org"], "WUCME_C_GROWN_EXAMPLE_ORG.PEM", "renewed",
                site.said[1][len("%WUCME-S-RENEWED, "):]),
    ]
    new = site.leaf("grown.example.org")
    assert new.serial_number != grown.serial_number
    assert sorted(new.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
                  .get_values_for_type(x509.DNSName)) == ["grown.example.org", "more.example.org"]
    state = site.state("grown.example.org")
    assert state["status"] == "renewed" and state["challenge"] == "http-01"
    assert state["last_attempt"] == iso(now) and state["next_attempt"] is None
    assert site.state("fresh.example.org")["status"] == "issued"
    log = site.log.stream.getvalue()  # type: ignore[union-attr]
    assert "renewing WUCME_C_GROWN_EXAMPLE_ORG.PEM over http-01: certificate lacks more.example.org" in log
    assert f"wucme: http-01 answered on 127.0.0.1:{site.pebble.http_port}\n" in log  # the solver's, at -v
    # Renewed with nothing to load it: the pass loads nothing, and remembers no failed load.
    assert report.load_steps == [] and report.load is None and not site.repo.load_pending()


def test_near_the_end_of_its_lifetime_and_past_it(site: Site) -> None:
    leaf = site.issue("www.example.org")
    t = threshold(leaf)
    # One second before the threshold: not due; one second past it: due.
    early = leaf.not_valid_after_utc - t - dt.timedelta(seconds=1)
    assert site.run(early).summary() == "0 renewed, 1 not due, 0 failed"
    assert site.said == [f"%WUCME-I-SKIPPED, WUCME_C_WWW_EXAMPLE_ORG.PEM (www.example.org): not due until "
                         f"{iso(leaf.not_valid_after_utc - t)}"]
    late = leaf.not_valid_after_utc - t + dt.timedelta(seconds=1)
    report = site.run(late)
    assert site.said[0] == renewed_line(site, "www.example.org", 1, "less than a third of its lifetime left")
    assert report.summary() == "1 renewed, 0 not due, 0 failed"
    # A pass taken after the new certificate's end: expired.
    expired = site.leaf("www.example.org").not_valid_after_utc
    site.run(expired)
    assert site.said[0] == renewed_line(site, "www.example.org", 1, "expired")
    assert site.state("www.example.org")["last_attempt"] == iso(expired)


def test_wucme_days_decides_when_defined(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    leaf = site.issue("www.example.org")
    left = leaf.not_valid_after_utc - dt.datetime.now(dt.timezone.utc)
    days = left.days  # fewer than `days + 1`, not fewer than `days`
    monkeypatch.setenv("WUCME_DAYS", str(days))
    site.run()
    assert site.said == [f"%WUCME-I-SKIPPED, WUCME_C_WWW_EXAMPLE_ORG.PEM (www.example.org): not due until "
                         f"{iso(leaf.not_valid_after_utc - dt.timedelta(days=days))}"]
    monkeypatch.setenv("WUCME_DAYS", str(days + 1))
    monkeypatch.setenv("WUCME_LOAD", "true")
    report = site.run()
    assert site.said == [renewed_line(site, "www.example.org", 1, f"fewer than {days + 1} days left (WUCME_DAYS)"),
                         "%WUCME-S-LOADED, certificates loaded by 'true'"]
    assert report.load == (True, "certificates loaded by 'true'") and report.not_loaded == ""
    assert report.summary() == "1 renewed, 0 not due, 0 failed, load ok"


def test_a_revoked_certificate_is_left_for_issue(site: Site) -> None:
    leaf = site.issue("www.example.org")
    site.edit_state("www.example.org", status="revoked")
    report = site.run(leaf.not_valid_after_utc + dt.timedelta(days=1))
    assert site.said == ["%WUCME-I-SKIPPED, WUCME_C_WWW_EXAMPLE_ORG.PEM (www.example.org): "
                         "revoked: wucme issue replaces it"]
    assert report.summary() == "0 renewed, 1 not due, 0 failed"


# --- failures: the CA's reason kept, the state noted, the others go on --------------------------

def test_a_failed_challenge_keeps_the_cas_reason(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    leaf = site.issue("www.example.org")
    # The responder listens where Pebble does not look: the validation fails.
    monkeypatch.setenv("WUCME_HTTP01", f"127.0.0.1:{free_port()}")
    now = leaf.not_valid_after_utc - dt.timedelta(hours=30)
    report = site.run(now)

    [fail] = report.failed
    assert fail.hosts == ["www.example.org"] and fail.file == "WUCME_C_WWW_EXAMPLE_ORG.PEM"
    assert fail.detail.startswith("challenge failed:\n  www.example.org (http-01): invalid: "
                                  "urn:ietf:params:acme:error:connection ")
    assert len(fail.detail.splitlines()) == 2 and "refused" in fail.detail
    state = site.state("www.example.org")
    assert state["status"] == "failed" and state["last_result"] == f"failed: {fail.detail}"
    assert state["last_attempt"] == iso(now) and state["next_attempt"] == iso(now + RETRY_AFTER_FAILURE)
    assert site.leaf("www.example.org").serial_number == leaf.serial_number  # the old one kept
    # Said as it happened, then the warning that it expires within WUCME_WARN_DAYS (7).
    not_after = iso(leaf.not_valid_after_utc)
    assert site.said == [
        f"%WUCME-E-RENEWFAIL, WUCME_C_WWW_EXAMPLE_ORG.PEM (www.example.org): {fail.detail}",
        f"%WUCME-W-EXPIRING, www.example.org expires in 1 day and renewal keeps failing "
        f"(WUCME_C_WWW_EXAMPLE_ORG.PEM, not after {not_after}): " + fail.detail.replace("\n", " "),
    ]
    assert report.summary() == "0 renewed, 0 not due, 1 failed" and not report.ok
    assert report.report_problems == []


def test_a_hostile_host_in_a_state_fails_alone(site: Site) -> None:
    site.issue("good.example.org")
    site.issue("evil.example.org")
    site.edit_state("evil.example.org", hosts=["evil.example.org", "../../etc/evil"])
    good = site.leaf("good.example.org")
    report = site.run(good.not_valid_after_utc - dt.timedelta(days=100))
    [fail] = report.failed
    assert fail.file == "WUCME_C_EVIL_EXAMPLE_ORG.PEM" and fail.hosts == ["evil.example.org", "../../etc/evil"]
    assert fail.detail.startswith("its state names a bad host: ")
    assert site.said[0] == (f"%WUCME-E-RENEWFAIL, WUCME_C_EVIL_EXAMPLE_ORG.PEM (evil.example.org, ../../etc/evil): "
                            f"{fail.detail}")
    assert site.said[1] == renewed_line(site, "good.example.org", 1, "less than a third of its lifetime left")
    assert report.summary() == "1 renewed, 0 not due, 1 failed"
    assert site.state("evil.example.org")["status"] == "failed"
    assert site.state("evil.example.org")["last_result"] == f"failed: {fail.detail}"


def test_a_certificate_nobody_can_name_hosts_for(site: Site) -> None:
    site.issue("www.example.org")
    (site.here / "WUCME_C_LOST.PEM").write_bytes(b"not a certificate")
    report = site.run()
    [fail] = report.failed
    assert fail.file == "WUCME_C_LOST.PEM" and fail.hosts == ["lost"]
    assert fail.detail.startswith("cannot tell which hosts WUCME_C_LOST.PEM is for (WUCME_C_LOST.PEM unreadable: ")
    assert fail.detail.endswith("); run wucme issue for them")
    assert site.said[1] == "%WUCME-E-RENEWFAIL, WUCME_C_LOST.PEM (lost): " + fail.detail
    assert not (site.here / "WUCME_S_LOST.JSON").exists()  # no state made up for it
    assert report.summary() == "0 renewed, 1 not due, 1 failed"


# --- the challenge type of a renewal --------------------------------------------------------------

def test_renewed_over_the_type_its_state_records_unless_told(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    leaf = site.issue("www.example.org", challenge="tls-alpn-01")
    due = leaf.not_valid_after_utc - dt.timedelta(days=1)
    site.run(due)
    log = site.log.stream.getvalue()  # type: ignore[union-attr]
    assert "renewing WUCME_C_WWW_EXAMPLE_ORG.PEM over tls-alpn-01: " in log
    assert "wucme: running solver begin tls-alpn-01 www.example.org " in log  # answered over it
    assert site.state("www.example.org")["challenge"] == "tls-alpn-01"
    site.run(due, challenge="http-01")  # manage /CHALLENGE=HTTP-01
    assert "renewing WUCME_C_WWW_EXAMPLE_ORG.PEM over http-01: " in site.log.stream.getvalue()  # type: ignore[union-attr]
    assert site.state("www.example.org")["challenge"] == "http-01"
    monkeypatch.setenv("WUCME_RENEW_CHALLENGE", "tls-alpn-01")
    report = site.run(due)
    assert report.summary() == "1 renewed, 0 not due, 0 failed"
    assert site.state("www.example.org")["challenge"] == "tls-alpn-01"
    # A state that records no type: WUCME_CHALLENGE's.
    monkeypatch.delenv("WUCME_RENEW_CHALLENGE")
    site.edit_state("www.example.org", challenge="")
    site.run(due)
    assert site.state("www.example.org")["challenge"] == "http-01"


# --- starting no more: the deadline, a stop, a busy certificate --------------------------------------

def test_a_stopped_pass_leaves_the_rest_untouched(site: Site) -> None:
    leaf = site.issue("www.example.org")
    before = site.state("www.example.org")
    report = site.run(leaf.not_valid_after_utc, stop=lambda: "the agent is gone")
    assert site.said == ["%WUCME-W-ABANDONED, WUCME_C_WWW_EXAMPLE_ORG.PEM (www.example.org) not started: "
                         "the agent is gone"]
    assert report.outcomes == [Outcome(["www.example.org"], "WUCME_C_WWW_EXAMPLE_ORG.PEM", "skipped",
                                       "not started: the agent is gone")]
    assert site.state("www.example.org") == before


def test_past_the_pass_deadline_a_certificate_fails_and_is_retried_later(
        site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    leaf = site.issue("www.example.org")
    monkeypatch.setenv("WUCME_PASS_DEADLINE", "0.2")
    asked: list[float] = []

    def slow_check() -> str:  # the first question takes the whole deadline
        asked.append(time.monotonic())
        if len(asked) == 1:
            time.sleep(0.3)
        return ""
    now = leaf.not_valid_after_utc
    report = site.run(now, stop=slow_check)
    why = "the pass deadline of 0.2 s (WUCME_PASS_DEADLINE) was reached before its turn"
    assert site.said[0] == f"%WUCME-E-PASSDEADLINE, WUCME_C_WWW_EXAMPLE_ORG.PEM (www.example.org): {why}"
    assert report.outcomes == [Outcome(["www.example.org"], "WUCME_C_WWW_EXAMPLE_ORG.PEM", "failed", why)]
    state = site.state("www.example.org")
    assert state["status"] == "failed" and state["last_result"] == f"failed: {why}"
    assert state["next_attempt"] == iso(now + RETRY_AFTER_FAILURE) and state["last_attempt"] == iso(now)


def test_a_busy_certificate_is_skipped_with_nowait_and_waited_for_otherwise(site: Site) -> None:
    leaf = site.issue("www.example.org", "two.example.org")
    now = leaf.not_valid_after_utc
    with site.repo.lock_certificate("WUCME_C_WWW_EXAMPLE_ORG.PEM"):
        report = site.run(now, nowait=True)
    busy = "another process is working on WUCME_C_WWW_EXAMPLE_ORG.PEM"
    assert site.said == [f"%WUCME-W-BUSY, WUCME_C_WWW_EXAMPLE_ORG.PEM: {busy}; not renewed in this pass"]
    assert report.outcomes == [Outcome(["www.example.org", "two.example.org"], "WUCME_C_WWW_EXAMPLE_ORG.PEM",
                                       "skipped", busy)]
    assert site.state("www.example.org")["status"] == "issued"

    # Waited for: once the other process is done, the pass decides again on what it left.
    site.edit_state("www.example.org", hosts=["www.example.org", "two.example.org", "more.example.org"])
    lock = site.repo.lock_certificate("WUCME_C_WWW_EXAMPLE_ORG.PEM")
    done: list[RenewalReport] = []
    turn = threading.Event()  # the pass asks whether to go on right before it takes the lock

    def asked() -> str:
        turn.set()
        return ""
    t = threading.Thread(target=lambda: done.append(site.run(now - dt.timedelta(days=1000), stop=asked)))
    t.start()
    assert turn.wait(30)
    time.sleep(0.3)
    assert not done  # waiting for the lock
    site.edit_state("www.example.org", hosts=["www.example.org", "two.example.org"])  # the other's outcome
    lock.release()
    t.join(30)
    until = iso(leaf.not_valid_after_utc - threshold(leaf))
    assert site.said == [f"%WUCME-I-SKIPPED, WUCME_C_WWW_EXAMPLE_ORG.PEM (www.example.org, two.example.org): "
                         f"not due until {until} (renewed by another process meanwhile)"]
    assert done[0].outcomes == [Outcome(["www.example.org", "two.example.org"], "WUCME_C_WWW_EXAMPLE_ORG.PEM",
                                        "skipped", f"not due until {until}")]
    assert site.leaf("www.example.org").serial_number == leaf.serial_number


def test_a_waiting_pass_gives_up_at_its_deadline(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    leaf = site.issue("www.example.org")
    monkeypatch.setenv("WUCME_PASS_DEADLINE", "0.5")
    with site.repo.lock_certificate("WUCME_C_WWW_EXAMPLE_ORG.PEM"):
        report = site.run(leaf.not_valid_after_utc)
    # The wait is bounded by the deadline, so the deadline is the reason given, even when the
    # lock's clock ends the wait a moment before the pass's own.
    why = report.failed[0].detail
    assert why == "the pass deadline of 0.5 s (WUCME_PASS_DEADLINE) was reached before its turn"
    assert site.said[0] == f"%WUCME-E-PASSDEADLINE, WUCME_C_WWW_EXAMPLE_ORG.PEM (www.example.org): {why}"
    assert site.state("www.example.org")["last_result"] == f"failed: {why}"


# --- after the renewals: load, metrics, reports -------------------------------------------------------

def test_a_failing_load_is_said_and_remembered(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    leaf = site.issue("www.example.org")
    monkeypatch.setenv("WUCME_LOAD", "sh -c 'exit 3'")
    prom = site.tmp / "wucme.prom"
    monkeypatch.setenv("WUCME_PROMETHEUS_FILE", str(prom))
    report = site.run(leaf.not_valid_after_utc)
    assert "wucme_renewal_pass_ok 0" in prom.read_text()  # renewed, but not loaded
    assert site.said[1].startswith("%WUCME-E-LOADFAIL, ") and "3" in site.said[1]
    assert report.load is not None and report.load[0] is False
    assert report.summary() == "1 renewed, 0 not due, 0 failed, load FAILED"
    assert site.repo.load_pending()


def test_a_bad_services_list_is_the_load_actions_to_report(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    leaf = site.issue("www.example.org")
    monkeypatch.setenv("WUCME_SERVICES", "no such thing here!")
    report = site.run(leaf.not_valid_after_utc)
    assert report.not_loaded == "" and not any("NOTLOADED" in s for s in site.said)
    assert report.load is not None and report.load[0] is False


def test_the_prometheus_file_after_each_pass(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    leaf = site.issue("www.example.org")
    prom = site.tmp / "wucme.prom"
    monkeypatch.setenv("WUCME_PROMETHEUS_FILE", str(prom))
    now = leaf.not_valid_after_utc - dt.timedelta(days=1000)
    site.run(now)
    text = prom.read_text()
    assert "wucme_renewal_pass_ok 1" in text and f"wucme_renewal_pass_seconds {int(now.timestamp())}" in text
    monkeypatch.setenv("WUCME_HTTP01", f"127.0.0.1:{free_port()}")
    site.run(leaf.not_valid_after_utc)
    assert "wucme_renewal_pass_ok 0" in prom.read_text()
    monkeypatch.setenv("WUCME_PROMETHEUS_FILE", "relative.prom")
    report = site.run(now)
    assert site.said[-1].startswith("%WUCME-W-NOMETRICS, cannot write the Prometheus file: ")
    assert "absolute" in site.said[-1] and report.ok


def test_a_report_that_cannot_be_sent_is_a_warning_of_the_pass(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    leaf = site.issue("www.example.org")
    monkeypatch.setenv("WUCME_MAIL", "admin@example.org")
    monkeypatch.setenv("WUCME_SMTP", f"127.0.0.1:{free_port()}")
    monkeypatch.setenv("WUCME_LOAD", "true")
    report = site.run(leaf.not_valid_after_utc)
    assert report.summary() == "1 renewed, 0 not due, 0 failed, load ok"
    assert report.report_problems and all(p.startswith("reporter failed: ") for p in report.report_problems)
    assert site.said[-len(report.report_problems):] == [f"%WUCME-W-REPORTFAIL, {p}" for p in report.report_problems]


# --- more of what the pass says and keeps -----------------------------------------------------------

def test_the_load_outcome_is_remembered_with_its_text(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    leaf = site.issue("www.example.org")
    site.run(leaf.not_valid_after_utc)  # renewed, nothing defined to load it
    record = json.loads((site.here / "WUCME_LOAD.JSON").read_text())
    assert (record["ok"], record["result"]) == (True, "nothing to load")
    monkeypatch.setenv("WUCME_LOAD", "true")
    site.run(site.leaf("www.example.org").not_valid_after_utc)
    record = json.loads((site.here / "WUCME_LOAD.JSON").read_text())
    assert (record["ok"], record["result"]) == (True, "certificates loaded by 'true'")


def test_a_load_outcome_that_cannot_be_noted_is_a_warning(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    leaf = site.issue("www.example.org")
    (site.here / "WUCME_LOAD.JSON").mkdir()  # the record cannot be written
    monkeypatch.setenv("WUCME_LOAD", "true")
    report = site.run(leaf.not_valid_after_utc)
    assert report.summary() == "1 renewed, 0 not due, 0 failed, load ok"
    [warning] = [s for s in site.said if "NOLOADSTATE" in s]
    assert warning.startswith(f"%WUCME-W-NOLOADSTATE, cannot note the load's outcome in {site.here}: ")
    assert "Is a directory" in warning


def test_a_failure_names_at_most_ten_hosts_of_80_characters(site: Site) -> None:
    site.issue("www.example.org")
    long = "a" * 40 + "." + "b" * 36 + ".org"  # 81 characters
    hosts = ["www.example.org", long] + [f"h{i}.example.org" for i in range(8)] + ["eleven.example.org", "bad..name"]
    site.edit_state("www.example.org", hosts=hosts)
    report = site.run()
    [fail] = report.failed
    shown = ", ".join([hosts[0], long[:80]] + hosts[2:10])
    assert site.said[0] == f"%WUCME-E-RENEWFAIL, WUCME_C_WWW_EXAMPLE_ORG.PEM ({shown}): {fail.detail}"


def test_several_hosts_are_named_when_the_pass_stops_or_runs_out(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    leaf = site.issue("www.example.org", "two.example.org")
    site.run(leaf.not_valid_after_utc, stop=lambda: "the agent is gone")
    assert site.said == ["%WUCME-W-ABANDONED, WUCME_C_WWW_EXAMPLE_ORG.PEM (www.example.org, two.example.org) "
                         "not started: the agent is gone"]
    # Stopped while another process holds the certificate: the stop is said, not the busy lock.
    with site.repo.lock_certificate("WUCME_C_WWW_EXAMPLE_ORG.PEM"):
        site.run(leaf.not_valid_after_utc, stop=lambda: "the agent is gone", nowait=True)
    assert site.said[0].startswith("%WUCME-W-ABANDONED, ")
    monkeypatch.setenv("WUCME_PASS_DEADLINE", "0.2")
    slow = [0]

    def late() -> str:
        slow[0] += 1
        if slow[0] == 1:
            time.sleep(0.3)
        return ""
    site.run(leaf.not_valid_after_utc, stop=late)
    assert site.said[0] == ("%WUCME-E-PASSDEADLINE, WUCME_C_WWW_EXAMPLE_ORG.PEM (www.example.org, two.example.org): "
                            "the pass deadline of 0.2 s (WUCME_PASS_DEADLINE) was reached before its turn")


def test_an_unreadable_state_is_left_as_it_is_past_the_deadline(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    leaf = site.issue("www.example.org")
    site.repo.state_path("www.example.org").write_bytes(b"{damaged")
    monkeypatch.setenv("WUCME_PASS_DEADLINE", "0.2")
    slow = [0]

    def late() -> str:
        slow[0] += 1
        if slow[0] == 1:
            time.sleep(0.3)
        return ""
    report = site.run(leaf.not_valid_after_utc, stop=late)
    assert report.failed and site.said[0].startswith("%WUCME-E-PASSDEADLINE, WUCME_C_WWW_EXAMPLE_ORG.PEM ")
    assert site.repo.state_path("www.example.org").read_bytes() == b"{damaged"


def test_a_certificate_file_gone_is_issued_again(site: Site) -> None:
    site.issue("www.example.org")
    site.repo.cert_path("www.example.org").unlink()
    report = site.run()
    assert site.said[0] == renewed_line(site, "www.example.org", 1, "WUCME_C_WWW_EXAMPLE_ORG.PEM missing")
    assert report.summary() == "1 renewed, 0 not due, 0 failed"


def test_stopped_while_waiting_for_the_lock(site: Site) -> None:
    """Asked again once the lock is ours: the agent went away meanwhile."""
    leaf = site.issue("www.example.org")
    answers = iter(["", "the agent is gone"])
    report = site.run(leaf.not_valid_after_utc, stop=lambda: next(answers, "the agent is gone"))
    assert site.said == ["%WUCME-W-ABANDONED, WUCME_C_WWW_EXAMPLE_ORG.PEM (www.example.org) not started: "
                         "the agent is gone"]
    assert report.outcomes[0].detail == "not started: the agent is gone"
    assert site.state("www.example.org")["status"] == "issued"


def test_an_account_key_gone_stops_the_renewals_with_its_error(site: Site) -> None:
    leaf = site.issue("www.example.org")
    site.repo.account_key_path.unlink()
    report = site.run(leaf.not_valid_after_utc - dt.timedelta(days=1))
    assert report.error == (f"%WUCME-E-NOACCOUNT, no account key {site.repo.account_key_path}: "
                            "register an account first (wucme register)")
    assert report.error_severity == "E" and not report.ok and report.outcomes == []
    assert site.said[0].startswith("%WUCME-W-EXPIRING, www.example.org expires in 1 day and renewal keeps failing")
    assert site.said[0].endswith(": no account key " + str(site.repo.account_key_path)
                                 + ": register an account first (wucme register)")


def test_a_wildcard_in_a_state_is_a_bad_host(site: Site) -> None:
    site.issue("www.example.org")
    site.edit_state("www.example.org", hosts=["www.example.org", "*.example.org"])
    report = site.run()
    assert report.failed[0].detail.startswith("its state names a bad host: ")


def test_the_cas_window_decides_and_the_order_names_what_it_replaces(site: Site,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """RFC 9773 through the fault proxy (the Debian Pebble offers no renewalInfo): a window in
    the future keeps even a certificate past its threshold, one in the past renews it, and the
    new order carries `replaces` (§5)."""
    from harness.faultproxy import FaultProxy
    from wucme.uacme.ari import ari_cert_id

    leaf = site.issue("www.example.org")
    old = ari_cert_id(leaf)

    def stamp(days: float) -> str:
        return (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")
    with FaultProxy(site.pebble) as proxy:
        proxy.enable_ari()
        monkeypatch.setenv("WUCME_CA", proxy.directory_url)
        monkeypatch.setenv("WUCME_CA_BUNDLE", proxy.ca_bundle)
        start, end = stamp(30), stamp(31)
        proxy.set_renewal_info(old, start, end)
        report = site.run(leaf.not_valid_after_utc - dt.timedelta(days=1))
        [skip] = report.skipped
        assert skip.detail.endswith(", outside the CA's renewal window (ARI)")
        picked = skip.detail[len("not due until "):-len(", outside the CA's renewal window (ARI)")]
        assert start <= picked <= end  # the time it picked in the window (RFC 9773 §4.2)
        proxy.set_renewal_info(old, stamp(-2), stamp(-1))
        report = site.run()
        assert site.said[0] == renewed_line(site, "www.example.org", 1, "inside the CA's renewal window (ARI)")
        orders = [q for q in proxy.requests_to("/order-plz", "POST") if b"badNonce" not in q.response_body]
        assert orders[-1].jws_payload()["replaces"] == old


def test_the_warnings_of_a_pass_go_to_the_reports_too(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    """NOTLOADED is said as it happens and sent with the expiry warnings (send_events): with
    the mail server down, both the pass's report and the warnings' sending fail, each noted."""
    leaf = site.issue("www.example.org")
    monkeypatch.setenv("WUCME_MAIL", "admin@example.org")
    monkeypatch.setenv("WUCME_SMTP", f"127.0.0.1:{free_port()}")
    report = site.run(leaf.not_valid_after_utc)
    assert report.not_loaded and len(report.report_problems) == 2
    assert report.report_problems[0].startswith("reporter failed: ")
    assert not report.report_problems[1].startswith("reporter failed: ")


def test_a_pass_with_nothing_due_writes_nothing(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    """Once the scan index vouches for the repository's directory, a pass with nothing due
    neither lists the directory nor rewrites the index nor makes a name in it (its write probe
    is an unnamed file): the directory's mtime, and so the index's DIR, stay valid."""
    from wucme import scanindex

    site.issue("www.example.org")
    site.issue("mail.example.org")
    for _ in range(2):
        # The first pass after the files settled builds the index (its rename changes the
        # directory); once that has settled, the next lists the directory, finds the
        # index's names and vouches for its key.
        time.sleep(scanindex.RACY_SECONDS + 0.1)
        site.run()
    index = site.here / scanindex.INDEX_FILE
    before = (os.stat(site.here), index.stat(), sorted(os.listdir(site.here)))
    listed: list[int] = []
    real = Repository._names
    monkeypatch.setattr(Repository, "_names", staticmethod(lambda fd: listed.append(fd) or real(fd)))
    report = site.run()
    assert report.not_due == 2 and report.ok and not listed
    assert [s.split(":")[0] for s in site.said] == ["%WUCME-I-SKIPPED, WUCME_C_MAIL_EXAMPLE_ORG.PEM (mail.example.org)",
                                                    "%WUCME-I-SKIPPED, WUCME_C_WWW_EXAMPLE_ORG.PEM (www.example.org)"]
    after = (os.stat(site.here), index.stat(), sorted(os.listdir(site.here)))
    assert (after[0].st_mtime_ns, after[0].st_ctime_ns) == (before[0].st_mtime_ns, before[0].st_ctime_ns)
    assert (after[1].st_mtime_ns, after[1].st_ino) == (before[1].st_mtime_ns, before[1].st_ino)
    assert after[2] == before[2]
