"""ACME Renewal Information (wucme.uacme.ari, RFC 9773) and the renewal decision of
cert_valid(), against the in-memory CA's renewalInfo resource."""
from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from wucme.uacme.acme import AcmeSession, acme_bootstrap
from wucme.uacme.ari import ari_cert_id, ari_check, ari_replaces
from wucme.uacme.cert import cert_valid

from .fakeca import BASE, FakeCA, ari_id, link_down, rate_limited
from .pki import Pki, pem
from .support import new_session, said, waits

T0 = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)
ARI = f"{BASE}/renewal-info"


def at(minutes: float) -> float:
    return (T0 + dt.timedelta(minutes=minutes)).timestamp()


def stamp(minutes: float) -> str:
    return (T0 + dt.timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def session(ca: FakeCA) -> AcmeSession:
    a = new_session(ca)
    acme_bootstrap(a)
    return a


def leaf(ca: FakeCA, serial: int | None = None) -> x509.Certificate:
    return ca.issue_direct(ec.generate_private_key(ec.SECP256R1()).public_key(), ["a.test"],
                           serial=serial).leaf


# --- the request (RFC 9773 §4.1) ------------------------------------------------------------------

def test_the_request_names_the_certificate(ca: FakeCA) -> None:
    a = session(ca)
    cert = leaf(ca)
    ca.ari_windows[ari_id(cert)] = (stamp(0), stamp(60))
    assert ari_check(a, cert, ARI, now=at(120)) == 1
    (seen,) = ca.requests("renewalInfo")
    assert (seen.method, seen.url, seen.status) == ("GET", f"{ARI}/{ari_id(cert)}", 200)
    assert seen.protected is None  # unauthenticated GET
    assert ari_cert_id(cert) == ari_id(cert)


def test_a_serial_with_its_high_bit_set_keeps_the_leading_zero(ca: FakeCA) -> None:
    a = session(ca)
    cert = leaf(ca, serial=(0x80 << 64) | 0x1234)
    ca.ari_windows[ari_id(cert)] = (stamp(0), stamp(60))
    assert ari_id(cert).split(".")[1].startswith("AI")  # b64url of 0x00 0x80 ...
    assert ari_check(a, cert, ARI, now=at(120)) == 1
    assert ca.requests("renewalInfo")[0].status == 200


# --- the window (RFC 9773 §4.2) -------------------------------------------------------------------

@pytest.mark.parametrize(("now", "rand", "due"), [
    (-10, 0.5, 0), (70, 0.5, 1), (30, 0.25, 1), (30, 0.75, 0), (0, 0.0, 0), (60, 1.0, 0),
], ids=["before", "after", "past-the-pick", "before-the-pick", "at-start", "at-end"])
def test_due_when_now_is_past_the_random_pick(ca: FakeCA, now: float, rand: float, due: int) -> None:
    a = session(ca)
    cert = leaf(ca)
    ca.ari_windows[ari_id(cert)] = (stamp(0), stamp(60))
    assert ari_check(a, cert, ARI, now=at(now), rand=rand) == due
    assert f"ARI window {stamp(0)} .. {stamp(60)}: {'due' if due else 'not due'}" in said(a)


def test_the_window_is_read_as_utc(ca: FakeCA) -> None:
    a = session(ca)
    cert = leaf(ca)
    ca.ari_windows[ari_id(cert)] = ("2030-01-01T02:00:00+02:00", "2030-01-01T01:00:00.123456789Z")
    assert ari_check(a, cert, ARI, now=at(0.5), rand=0.0) == 1
    assert ari_check(a, cert, ARI, now=at(-0.5), rand=0.0) == 0


@pytest.mark.parametrize(("window", "message"), [
    (("yesterday", "tomorrow"), f"malformed ARI window at {ARI}/"),
    (("2030-01-01T00:00:00", "2030-01-02T00:00:00Z"), "malformed ARI window"),
    (("2030-01-02T00:00:00Z", "2030-01-01T00:00:00Z"), f"ARI window at {ARI}/.* ends before it starts"),
], ids=["words", "no-zone", "end-before-start"])
def test_a_bad_window_means_no_ari(ca: FakeCA, window: tuple[str, str], message: str) -> None:
    a = session(ca)
    cert = leaf(ca)
    ca.ari_windows[ari_id(cert)] = window
    assert ari_check(a, cert, ARI, now=at(0)) == -1
    assert re.search(message, said(a))


def test_explanation_is_shown(ca: FakeCA) -> None:
    ca.ari_explanation = "https://ca.test/incident/42"
    a = session(ca)
    ari_check(a, leaf(ca), ARI, now=at(0))
    assert "ARI explanation: https://ca.test/incident/42" in said(a)


# --- when ARI is not there ------------------------------------------------------------------------

def test_no_renewal_info_url_no_request(ca: FakeCA) -> None:
    a = session(ca)
    assert ari_check(a, leaf(ca), None) == -1
    assert ca.requests("renewalInfo") == []


def test_a_certificate_the_ca_does_not_know(ca: FakeCA, pki: Pki) -> None:
    a = session(ca)
    stranger = pki.issue(ec.generate_private_key(ec.SECP256R1()).public_key(), ["a.test"])
    assert ari_check(a, stranger, ARI) == -1
    assert f"ARI unavailable at {ARI}/{ari_id(stranger)} (HTTP 404)" in said(a)


def test_a_certificate_without_aki(ca: FakeCA) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "a.test")])
    bare = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(T0).not_valid_after(T0 + dt.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    a = session(ca)
    assert ari_check(a, bare, ARI) == -1
    assert "no ARI identifier for this certificate" in said(a)
    assert ca.requests("renewalInfo") == []


def test_rate_limited_renewal_info_is_waited_out(ca: FakeCA) -> None:
    a = session(ca)
    cert = leaf(ca)
    ca.ari_windows[ari_id(cert)] = (stamp(0), stamp(60))
    ca.inject("renewalInfo", rate_limited("120"))
    assert ari_check(a, cert, ARI, now=at(90)) == 1
    assert waits(a) == [120.0]


def test_renewal_info_unreachable(ca: FakeCA) -> None:
    a = session(ca)
    ca.inject("renewalInfo", link_down(), link_down(), link_down())
    assert ari_check(a, leaf(ca), ARI) == -1
    assert "ARI unavailable: GET https://ca.test/renewal-info/" in said(a)
    assert waits(a) == [5.0, 5.0]


# --- replaces (RFC 9773 §5) -------------------------------------------------------------------------

def test_replaces_is_the_ari_identifier(ca: FakeCA, tmp_path: Path) -> None:
    a = session(ca)
    cert = leaf(ca)
    assert ari_replaces(a, cert) == ari_id(cert)
    path = tmp_path / "cert.pem"
    path.write_bytes(pem(cert))
    assert ari_replaces(a, str(path)) == ari_id(cert)
    assert ari_replaces(a, str(tmp_path / "missing.pem")) is None


def test_no_replaces_when_the_ca_has_no_ari(ca: FakeCA) -> None:
    ca.ari = False
    a = session(ca)
    assert ari_replaces(a, leaf(ca)) is None


# --- the renewal decision (crypto.c:cert_valid) ------------------------------------------------------

@pytest.mark.parametrize(("window", "names", "valid", "message"), [
    ((-60, -30), ["a.test"], False, "is due for renewal"),
    ((60 * 24 * 60, 60 * 24 * 61), ["a.test"], True, "not due"),
    ((60 * 24 * 60, 60 * 24 * 61), ["a.test", "c.test"], False, "does not include c.test"),
], ids=["ari-due", "ari-not-due", "name-missing"])
def test_cert_valid_asks_ari(ca: FakeCA, tmp_path: Path, window: tuple[int, int], names: list[str],
                             valid: bool, message: str) -> None:
    a = session(ca)
    cert = leaf(ca)
    now = dt.datetime.now(dt.timezone.utc)
    ca.ari_windows[ari_id(cert)] = tuple(  # type: ignore[assignment]
        (now + dt.timedelta(minutes=m)).strftime("%Y-%m-%dT%H:%M:%SZ") for m in window)
    path = tmp_path / "cert.pem"
    path.write_bytes(pem(cert))
    assert cert_valid(a, str(path), names, ARI, 30, False) is valid
    assert message in said(a)


def test_without_ari_the_days_decide(ca: FakeCA, tmp_path: Path) -> None:
    a = session(ca)
    path = tmp_path / "cert.pem"
    path.write_bytes(pem(leaf(ca)))  # 90 days
    assert cert_valid(a, str(path), ["a.test"], None, 30, False) is True
    assert cert_valid(a, str(path), ["a.test"], None, 100, False) is False
    assert ca.requests("renewalInfo") == []


def test_an_expired_certificate_is_due_without_asking_ari(ca: FakeCA, tmp_path: Path) -> None:
    """crypto.c:cert_valid asks ARI only while the certificate is still valid: an expired one is
    due whatever a renewalInfo window would say."""
    a = session(ca)
    now = dt.datetime.now(dt.timezone.utc)
    cert = ca.pki.issue(ec.generate_private_key(ec.SECP256R1()).public_key(), ["a.test"],
                        not_before=now - dt.timedelta(days=10), days=5)
    far = (stamp(60 * 24 * 365 * 5), stamp(60 * 24 * 365 * 6))
    ca.ari_windows[ari_id(cert)] = far  # an ARI answer would say "not due"
    path = tmp_path / "cert.pem"
    path.write_bytes(pem(cert))
    assert cert_valid(a, str(path), ["a.test"], ARI, 30, False) is False
    assert "expires in -5 days" in said(a)
    assert "is due for renewal" in said(a)
    assert ca.requests("renewalInfo") == []


def test_a_certificate_with_less_than_a_day_left_is_due_without_asking_ari(ca: FakeCA,
                                                                             tmp_path: Path) -> None:
    a = session(ca)
    now = dt.datetime.now(dt.timezone.utc)
    cert = ca.pki.issue(ec.generate_private_key(ec.SECP256R1()).public_key(), ["a.test"],
                        not_before=now - dt.timedelta(days=89, hours=12), days=90)
    ca.ari_windows[ari_id(cert)] = (stamp(60 * 24 * 365 * 5), stamp(60 * 24 * 365 * 6))
    path = tmp_path / "cert.pem"
    path.write_bytes(pem(cert))
    assert cert_valid(a, str(path), ["a.test"], ARI, 30, False) is False
    assert "expires in 0 days" in said(a)
    assert ca.requests("renewalInfo") == []
