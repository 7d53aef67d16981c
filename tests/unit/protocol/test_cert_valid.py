"""`wucme --uacme issue` keeps a certificate only when cert_valid() (port of crypto.c:cert_valid)
says so: the file, its days left against `-d`, the CA's window (RFC 9773), the names asked for,
and with `-o` unset the OCSP status (RFC 6960, ocsp_check: only a verified revocation counts).
Each decision at its limit and one past it, with what the -v log says."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

from wucme.http import ConnectError, Response
from wucme.uacme.acme import AcmeSession, acme_bootstrap
from wucme.uacme.cert import cert_valid, ocsp_check

from .fakeca import BASE, FakeCA, ari_id
from .pki import pem
from .support import new_session, said

ARI = f"{BASE}/renewal-info"
OCSP = "http://ocsp.ca.test/"
NOW = dt.datetime.now(dt.timezone.utc)
FAR = ((NOW + dt.timedelta(days=3000)).strftime("%Y-%m-%dT%H:%M:%SZ"),
       (NOW + dt.timedelta(days=3001)).strftime("%Y-%m-%dT%H:%M:%SZ"))
PAST = ((NOW - dt.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        (NOW - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"))


class WithOcsp:
    """The in-memory CA with an OCSP responder at OCSP (RFC 6960 §4.2), signed by the CA's
    intermediate: `status` is what it says of every certificate ("good", "revoked", "unknown"),
    `http_status` a failure of the responder, `down` a link failure."""

    def __init__(self, ca: FakeCA) -> None:
        self.ca = ca
        self.status = "good"
        self.http_status = 200
        self.down = False
        self.nonce: bytes | None = None  # the nonce the answer carries (None: the request's)
        self.asked: list[bytes] = []

    def request(self, method: str, url: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> Response:
        if url != OCSP:
            return self.ca.request(method, url, body, headers)
        assert method == "POST" and (headers or {}).get("Content-Type") == "application/ocsp-request"
        self.asked.append(body or b"")
        if self.down:
            raise ConnectError("connection refused")
        if self.http_status != 200:
            return Response(self.http_status, [], b"", url)
        req = ocsp.load_der_ocsp_request(body or b"")
        pki = self.ca.pki
        status = {"good": ocsp.OCSPCertStatus.GOOD, "revoked": ocsp.OCSPCertStatus.REVOKED,
                  "unknown": ocsp.OCSPCertStatus.UNKNOWN}[self.status]
        now = dt.datetime.now(dt.timezone.utc)
        der = (ocsp.OCSPResponseBuilder().add_response_by_hash(
            issuer_name_hash=req.issuer_name_hash, issuer_key_hash=req.issuer_key_hash,
            serial_number=req.serial_number, algorithm=req.hash_algorithm, cert_status=status,
            this_update=now, next_update=now + dt.timedelta(days=1),
            revocation_time=now if self.status == "revoked" else None, revocation_reason=None)
            .add_extension(x509.OCSPNonce(self.nonce or _nonce(req)), critical=False)
            .responder_id(ocsp.OCSPResponderEncoding.HASH, pki.intermediate)
            .sign(pki.intermediate_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER))
        return Response(200, [("Content-Type", "application/ocsp-response")], der, url)

    def close(self) -> None:
        pass


def _nonce(req: ocsp.OCSPRequest) -> bytes:
    return bytes(req.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce)


def session(ca: FakeCA) -> tuple[AcmeSession, WithOcsp]:
    link = WithOcsp(ca)
    a = new_session(ca, level=1)
    a.transport = link  # type: ignore[assignment]
    acme_bootstrap(a)
    return a, link


def leaf(ca: FakeCA, names: list[str], left: dt.timedelta, aia: bool = True,
         window: tuple[str, str] | None = FAR) -> x509.Certificate:
    """A certificate of the CA's with *left* to go, its OCSP URL in the AIA when *aia*, and
    the CA's renewal window for it."""
    pki = ca.pki
    end = NOW + left
    b = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
         .issuer_name(pki.intermediate.subject).public_key(ec.generate_private_key(ec.SECP256R1()).public_key())
         .serial_number(x509.random_serial_number()).not_valid_before(end - dt.timedelta(days=90))
         .not_valid_after(end)
         .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(pki.intermediate_key.public_key()),
                        critical=False))
    if aia:
        b = b.add_extension(x509.AuthorityInformationAccess([x509.AccessDescription(
            AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(OCSP))]), critical=False)
    cert = b.sign(pki.intermediate_key, hashes.SHA256())
    ca._record_cert(cert, None)  # the CA knows what it issued (its renewalInfo answers for it)
    if window is not None:
        ca.ari_windows[ari_id(cert)] = window
    return cert


def saved(tmp_path: Path, *certs: x509.Certificate) -> str:
    path = tmp_path / "cert.pem"
    path.write_bytes(pem(*certs))
    return str(path)


def valid(a: AcmeSession, path: str, names: list[str] = ["a.test"], ari: str | None = ARI, days: int = 30,
          status_check: bool = False) -> bool:
    return cert_valid(a, path, names, ari, days, status_check)


# --- the file ----------------------------------------------------------------------------------------

def test_no_file_no_certificate_a_damaged_one(ca: FakeCA, tmp_path: Path) -> None:
    a, _ = session(ca)
    missing = str(tmp_path / "none.pem")
    assert valid(a, missing) is False
    assert f"wucme: {missing} does not exist\n" in said(a)
    damaged = tmp_path / "bad.pem"
    damaged.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    assert valid(a, str(damaged)) is False
    assert f"wucme: {damaged}: " in said(a)
    assert ca.requests("renewalInfo") == []


# --- days left, -d and the CA's window ------------------------------------------------------------------

def test_days_left_against_d_at_the_limit_and_one_past(ca: FakeCA, tmp_path: Path) -> None:
    a, _ = session(ca)
    path = saved(tmp_path, leaf(ca, ["a.test"], dt.timedelta(days=30, hours=12), window=None))
    assert valid(a, path, ari=None, days=30) is True  # 30 days left, -d 30: not fewer
    assert f"wucme: {path} expires in 30 days\n" in said(a)
    assert valid(a, path, ari=None, days=31) is False
    assert f"wucme: {path} is due for renewal\n" in said(a)


def test_the_cas_window_decides_over_d(ca: FakeCA, tmp_path: Path) -> None:
    a, _ = session(ca)
    not_yet = saved(tmp_path, leaf(ca, ["a.test"], dt.timedelta(days=10)))
    assert valid(a, not_yet, days=30) is True  # ARI says not yet: -d is not asked
    now_due = saved(tmp_path, leaf(ca, ["a.test"], dt.timedelta(days=80), window=PAST))
    assert valid(a, now_due, days=30) is False


def test_with_a_day_left_the_ca_is_still_asked(ca: FakeCA, tmp_path: Path) -> None:
    a, _ = session(ca)
    path = saved(tmp_path, leaf(ca, ["a.test"], dt.timedelta(days=1, hours=12)))
    assert valid(a, path) is True
    assert f"wucme: {path} expires in 1 day" in said(a) and len(ca.requests("renewalInfo")) == 1


def test_an_expired_certificate_in_uacme_mode_is_renewed(ca: FakeCA, tmp_path: Path) -> None:
    """Issue 17 point 1: expired, whatever the CA's window would say (it is not asked)."""
    a, _ = session(ca)
    path = saved(tmp_path, leaf(ca, ["a.test"], -dt.timedelta(days=3)))
    assert valid(a, path, days=1) is False
    assert f"wucme: {path} expires in -2 days\n" in said(a) or f"wucme: {path} expires in -3 days\n" in said(a)
    assert f"wucme: {path} is due for renewal\n" in said(a)
    assert ca.requests("renewalInfo") == []


def test_every_name_asked_for_must_be_in_it(ca: FakeCA, tmp_path: Path) -> None:
    a, _ = session(ca)
    path = saved(tmp_path, leaf(ca, ["a.test", "b.test"], dt.timedelta(days=60)))
    assert valid(a, path, ["B.TEST", "a.test"]) is True
    assert valid(a, path, ["a.test", "c.test"]) is False
    assert f"wucme: {path} does not include c.test\n" in said(a)


# --- OCSP ---------------------------------------------------------------------------------------------

def test_a_revoked_certificate_is_not_kept(ca: FakeCA, tmp_path: Path) -> None:
    a, link = session(ca)
    cert = leaf(ca, ["a.test"], dt.timedelta(days=60))
    path = saved(tmp_path, cert, ca.pki.intermediate)
    link.status = "revoked"
    assert valid(a, path, status_check=True) is False
    assert f"wucme: {path} is revoked\n" in said(a) and f"wucme: OCSP status revoked from {OCSP}\n" in said(a)
    assert len(link.asked) == 1 and ocsp.load_der_ocsp_request(link.asked[0]).serial_number == cert.serial_number
    assert valid(a, path, status_check=False) is True and len(link.asked) == 1  # not asked without -o unset


@pytest.mark.parametrize("status", ["good", "unknown"])
def test_good_or_unknown_keeps_it(ca: FakeCA, tmp_path: Path, status: str) -> None:
    a, link = session(ca)
    path = saved(tmp_path, leaf(ca, ["a.test"], dt.timedelta(days=60)), ca.pki.intermediate)
    link.status = status
    assert valid(a, path, status_check=True) is True
    assert f"wucme: OCSP status {status} from {OCSP}\n" in said(a)


def test_without_the_issuer_there_is_nothing_to_ask(ca: FakeCA, tmp_path: Path) -> None:
    a, link = session(ca)
    path = saved(tmp_path, leaf(ca, ["a.test"], dt.timedelta(days=60)))
    link.status = "revoked"
    assert valid(a, path, status_check=True) is True
    assert f"wucme: no issuer certificate in {path}, skipping OCSP check\n" in said(a)
    assert link.asked == []


def test_a_responder_that_fails_fails_open(ca: FakeCA, tmp_path: Path) -> None:
    a, link = session(ca)
    certs = [leaf(ca, ["a.test"], dt.timedelta(days=60)), ca.pki.intermediate]
    link.http_status = 503
    assert ocsp_check(a, certs) == "unknown"
    assert f"wucme: OCSP request to {OCSP} failed: HTTP status 503\n" in said(a)
    link.http_status, link.down = 200, True
    assert ocsp_check(a, certs) == "unknown"
    assert f"wucme: OCSP request to {OCSP} failed: connection refused\n" in said(a)
    link.down = False
    assert ocsp_check(a, certs) == "good"


def test_no_ocsp_url_no_request(ca: FakeCA) -> None:
    a, link = session(ca)
    assert ocsp_check(a, [leaf(ca, ["a.test"], dt.timedelta(days=60), aia=False), ca.pki.intermediate]) == "unknown"
    assert link.asked == [] and "OCSP" not in said(a)


def test_an_answer_to_another_request_is_not_believed(ca: FakeCA, tmp_path: Path) -> None:
    """The responder's nonce must be the request's (uacme's OCSP_check_nonce): a replayed
    `revoked` is "unknown", and the certificate is kept."""
    a, link = session(ca)
    path = saved(tmp_path, leaf(ca, ["a.test"], dt.timedelta(days=60)), ca.pki.intermediate)
    link.status, link.nonce = "revoked", b"0123456789abcdef"
    assert valid(a, path, status_check=True) is True
    assert f"wucme: OCSP status unknown from {OCSP}\n" in said(a)
