"""When the renewal pass renews, and what it says about it (wucme.renewal: due(), threshold(),
the expiry warnings, the summary), at each limit and one past it.  The pass itself against a
real CA is tests/pebble/test_renewal_pass.py."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from wucme.core.times import iso
from wucme.load import StepResult
from wucme.renewal import Outcome, RenewalReport, due, expiry_warnings, threshold
from wucme.repository import CertState, Managed, Repository

NOW = dt.datetime(2030, 6, 1, 12, 0, tzinfo=dt.timezone.utc)
SECOND = dt.timedelta(seconds=1)
DAY = dt.timedelta(days=1)


def chain(names: list[str], not_before: dt.datetime, not_after: dt.datetime) -> tuple[bytes, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    ca_key = ec.generate_private_key(ec.SECP256R1())
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test issuer")])
    ca = (x509.CertificateBuilder().subject_name(issuer).issuer_name(issuer).public_key(ca_key.public_key())
          .serial_number(1).not_valid_before(not_before).not_valid_after(not_after + DAY)
          .sign(ca_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(issuer).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
            .sign(ca_key, hashes.SHA256()))
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (leaf, ca)), key


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Repository:
    for name in ("WUCME_KEEP", "WUCME_DAYS", "WUCME_HERE", "WASD_ROOT", "WUCME_WARN_DAYS"):
        monkeypatch.delenv(name, raising=False)
    r = Repository(tmp_path / "here")
    r.ensure_writable()
    return r


def cert(repo: Repository, names: list[str], lifetime: dt.timedelta, left: dt.timedelta,
         status: str = "issued") -> Managed:
    """A certificate of *lifetime* with *left* to go at NOW, in *repo*; its Managed."""
    end = NOW + left
    pem, key = chain(names, end - lifetime, end)
    st = repo.save_certificate(names, key, pem, "http-01")
    if status != "issued":
        repo.record_attempt(st, status, f"{status}: earlier", None, now=NOW)
    [m] = [m for m in repo.managed() if m.state.hosts[0] == names[0]]
    return m


# --- due(): the reason for each decision ---------------------------------------------------------

def test_lifetime_thresholds_at_the_limit_and_one_second_past(repo: Repository) -> None:
    m = cert(repo, ["www.example.org"], 90 * DAY, 30 * DAY)
    t = threshold(m.info)  # type: ignore[arg-type]
    assert t == 30 * DAY
    assert due(m, NOW) == (False, f"not due until {iso(NOW)}")  # exactly a third left: not yet
    assert due(m, NOW + SECOND) == (True, "less than a third of its lifetime left")
    assert due(m, NOW - SECOND) == (False, f"not due until {iso(NOW)}")


def test_ten_days_or_less_renew_at_half(repo: Repository) -> None:
    ten = cert(repo, ["ten.example.org"], 10 * DAY, 5 * DAY)
    assert threshold(ten.info) == 5 * DAY  # type: ignore[arg-type]
    assert due(ten, NOW) == (False, f"not due until {iso(NOW)}")
    assert due(ten, NOW + SECOND) == (True, "less than half of its lifetime left")
    longer = cert(repo, ["longer.example.org"], 10 * DAY + 3 * SECOND, 5 * DAY)
    assert threshold(longer.info) == (10 * DAY + 3 * SECOND) / 3  # type: ignore[arg-type]


def test_a_twelve_day_certificate_is_renewed_at_a_third_and_says_so(repo: Repository) -> None:
    m = cert(repo, ["twelve.example.org"], 12 * DAY, 4 * DAY - SECOND)
    assert due(m, NOW) == (True, "less than a third of its lifetime left")
    just_over = cert(repo, ["over.example.org"], 10.5 * DAY, 3.5 * DAY - SECOND)
    assert due(just_over, NOW) == (True, "less than a third of its lifetime left")


def test_expired_at_its_last_second(repo: Repository) -> None:
    m = cert(repo, ["www.example.org"], 90 * DAY, 0 * DAY)
    assert due(m, NOW) == (True, "expired")
    assert due(m, NOW - SECOND) == (True, "less than a third of its lifetime left")
    # Expired wins over whatever the CA's window says.
    assert due(m, NOW, ari=lambda c: 0) == (True, "expired")


def test_wucme_days_at_the_limit_and_one_second_past(repo: Repository) -> None:
    m = cert(repo, ["www.example.org"], 90 * DAY, 30 * DAY)
    assert due(m, NOW, days=30) == (False, f"not due until {iso(NOW)}")
    assert due(m, NOW + SECOND, days=30) == (True, "fewer than 30 days left (WUCME_DAYS)")
    assert due(m, NOW, days=2.5) == (False, f"not due until {iso(NOW + 27.5 * DAY)}")
    assert due(m, NOW + 27.5 * DAY + SECOND, days=2.5) == (True, "fewer than 2.5 days left (WUCME_DAYS)")


def test_the_cas_window_decides_when_offered(repo: Repository) -> None:
    m = cert(repo, ["www.example.org"], 90 * DAY, 60 * DAY)
    asked: list[x509.Certificate] = []

    def ari(verdict: int | tuple[int, float | None]) -> object:
        def answer(leaf: x509.Certificate) -> int | tuple[int, float | None]:
            asked.append(leaf)
            return verdict
        return answer

    assert due(m, NOW, ari=ari(1), days=1) == (True, "inside the CA's renewal window (ARI)")  # type: ignore[arg-type]
    assert asked[-1].serial_number == m.info.serial_number  # type: ignore[union-attr]
    when = (NOW + 20 * DAY).timestamp()
    assert due(m, NOW, ari=ari((0, when))) == (  # type: ignore[arg-type]
        False, f"not due until {iso(NOW + 20 * DAY)}, outside the CA's renewal window (ARI)")
    assert due(m, NOW, ari=ari((0, None))) == (False, "outside the CA's renewal window (ARI)")  # type: ignore[arg-type]
    assert due(m, NOW, ari=ari(0), days=100) == (False, "outside the CA's renewal window (ARI)")  # type: ignore[arg-type]
    # No answer from the CA (-1): WUCME_DAYS, else the lifetime.
    assert due(m, NOW, ari=ari(-1), days=61) == (True, "fewer than 61 days left (WUCME_DAYS)")  # type: ignore[arg-type]
    assert due(m, NOW, ari=ari((-1, None))) == (False, f"not due until {iso(NOW + 30 * DAY)}")  # type: ignore[arg-type]


def test_names_revocation_and_damaged_files(repo: Repository) -> None:
    m = cert(repo, ["www.example.org"], 90 * DAY, 60 * DAY)
    m.state.hosts += ["two.example.org", "THREE.example.org"]
    assert due(m, NOW) == (True, "certificate lacks two.example.org, THREE.example.org")
    m.state.hosts = ["WWW.example.org"]  # names compare without case
    assert due(m, NOW)[0] is False
    m.state.status = "revoked"
    assert due(m, NOW + 90 * DAY) == (False, "revoked: wucme issue replaces it")
    bare = Managed("X", CertState(hosts=["x.example.org"]), repo.path)
    assert due(bare, NOW) == (True, "no certificate")
    assert due(Managed("X", CertState(hosts=["x"]), repo.path, problem="WUCME_C_X.PEM missing"), NOW) == (
        True, "WUCME_C_X.PEM missing")
    corrupt = cert(repo, ["c.example.org"], 90 * DAY, 60 * DAY)
    corrupt.state.corrupt = True
    corrupt.state.last_result = ""
    assert due(corrupt, NOW) == (True, "state unreadable")
    corrupt.state.last_result = "not JSON: Expecting value"
    assert due(corrupt, NOW) == (True, "not JSON: Expecting value")


# --- the expiry warnings ---------------------------------------------------------------------------

def failing_report(*ms: Managed, why: str = "challenge failed") -> RenewalReport:
    return RenewalReport(started=iso(NOW) or "", outcomes=[
        Outcome(m.state.hosts, m.cert_name, "failed", why) for m in ms])


def test_expiring_at_the_warning_limit_and_one_second_inside(repo: Repository,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    m = cert(repo, ["www.example.org"], 90 * DAY, 7 * DAY)
    report = failing_report(m)
    assert expiry_warnings(report, repo, NOW) == []  # exactly 7 days left: not yet
    [e] = expiry_warnings(report, repo, NOW + SECOND)
    not_after = iso(NOW + 7 * DAY)
    assert (e.severity, e.ident, e.hosts) == ("W", "EXPIRING", ["www.example.org"])
    assert e.text == (f"www.example.org expires in 6 days and renewal keeps failing "
                      f"(WUCME_C_WWW_EXAMPLE_ORG.PEM, not after {not_after}): challenge failed")
    monkeypatch.setenv("WUCME_WARN_DAYS", "0.5")
    assert expiry_warnings(report, repo, NOW + 6 * DAY) == []
    monkeypatch.setenv("WUCME_WARN_DAYS", "7")


@pytest.mark.parametrize(("left", "says"), [
    (DAY + SECOND, "expires in 1 day"),
    (2 * DAY, "expires in 2 days"),
    (DAY, "expires in 1 day"),
    (DAY - SECOND, "expires in 23 hours"),
    (dt.timedelta(hours=1, minutes=30), "expires in 1 hour"),
    (dt.timedelta(minutes=59), "expires in 0 hours"),
    (SECOND, "expires in 0 hours"),
    (dt.timedelta(0), "expired 0 hours ago"),
    (-dt.timedelta(hours=1), "expired 1 hour ago"),
    (-dt.timedelta(hours=23, minutes=59), "expired 23 hours ago"),
    (-DAY, "expired 1 day ago"),
    (-DAY - SECOND, "expired 1 day ago"),
    (-3 * DAY, "expired 3 days ago"),
])
def test_how_long_is_said_in_hours_then_days(repo: Repository, left: dt.timedelta, says: str) -> None:
    m = cert(repo, ["www.example.org"], 90 * DAY, 3 * DAY)
    [e] = expiry_warnings(failing_report(m), repo, NOW + 3 * DAY - left)
    assert e.text.startswith(f"www.example.org {says} and renewal keeps failing (")
    assert (e.severity, e.ident) == (("E", "EXPIRED") if left <= dt.timedelta(0) else ("W", "EXPIRING"))
    assert e.hosts == ["www.example.org"]


def test_what_counts_as_failing_and_why(repo: Repository) -> None:
    failed_before = cert(repo, ["before.example.org"], 90 * DAY, 2 * DAY, status="failed")
    quiet = cert(repo, ["quiet.example.org"], 90 * DAY, 2 * DAY)
    renewed = cert(repo, ["renewed.example.org"], 90 * DAY, 2 * DAY, status="failed")
    cert(repo, ["revoked.example.org"], 90 * DAY, 2 * DAY, status="revoked")
    report = RenewalReport(started="x", outcomes=[
        Outcome(renewed.state.hosts, renewed.cert_name, "renewed", "renewed")])
    # The state's failure (the agent's back-off skipped it): its last result says why.
    [e] = expiry_warnings(report, repo, NOW)
    assert e.hosts == ["before.example.org"] and e.text.endswith("): failed: earlier")
    assert failed_before.cert_name in e.text
    # The whole pass failed: every certificate near its end is failing, for the pass's reason.
    report.error = "%WUCME-E-CAFAIL, the CA is down"
    events = expiry_warnings(report, repo, NOW)
    assert sorted(e.hosts[0] for e in events) == ["before.example.org", "quiet.example.org"]
    assert all(e.text.endswith("): the CA is down") for e in events)
    report.error = "not a VMS message"
    assert all(e.text.endswith("): not a VMS message") for e in expiry_warnings(report, repo, NOW))
    del quiet


def test_no_reason_no_colon(repo: Repository) -> None:
    m = cert(repo, ["www.example.org"], 90 * DAY, 2 * DAY)
    m.state.last_result = ""
    repo.save_state(m.state)
    [e] = expiry_warnings(failing_report(m, why=""), repo, NOW)
    assert e.text.endswith(f"(WUCME_C_WWW_EXAMPLE_ORG.PEM, not after {iso(NOW + 2 * DAY)})")


# --- the summary ----------------------------------------------------------------------------------

def test_the_summary_counts_and_the_loads_outcome() -> None:
    r = RenewalReport(started="x", outcomes=[
        Outcome(["a"], "A", "renewed"), Outcome(["b"], "B", "renewed"), Outcome(["c"], "C", "skipped"),
        Outcome(["d"], "D", "failed"), Outcome(["e"], "E", "skipped"), Outcome(["f"], "F", "skipped")])
    assert r.summary() == "2 renewed, 3 not due, 1 failed"
    assert not r.ok and r.load_ok
    r.load_steps = [StepResult(True, "loaded"), StepResult(True, "service ok")]
    assert r.summary() == "2 renewed, 3 not due, 1 failed, load ok"
    r.load_steps.append(StepResult(False, "service down"))
    assert r.summary() == "2 renewed, 3 not due, 1 failed, load FAILED" and not r.load_ok
    assert RenewalReport(started="x").ok
    assert not RenewalReport(started="x", error="%WUCME-E-CAFAIL, down").ok


def test_the_cas_time_is_said_in_utc_whatever_the_local_zone(repo: Repository,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import time
    m = cert(repo, ["www.example.org"], 90 * DAY, 60 * DAY)
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        when = (NOW + 20 * DAY).timestamp()
        assert due(m, NOW, ari=lambda c: (0, when)) == (
            False, f"not due until {iso(NOW + 20 * DAY)}, outside the CA's renewal window (ARI)")
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
