"""`wucme --uacme issue|check` and OCSP (uacme's ocsp_check) against Pebble and a real responder.

Pebble puts the responder's URL in the AIA extension of what it issues; the responder
(harness.ocsp) answers from Pebble's own records, signed with Pebble's intermediate.
A certificate is revoked behind wucme's back through a copy of its file, so cert.pem stays.
"""
from __future__ import annotations

import base64
import shutil
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from harness.ocsp import OcspResponder
from harness.pebble import Pebble
from harness.responders import ChallengeDirServer
from wucme import crypto

from .uacme_cli import UacmeRun, ok

pytestmark = pytest.mark.pebble

NAME = "ocsp.example.org"


@dataclass
class OcspCA:
    pebble: Pebble
    responder: OcspResponder
    run: UacmeRun
    hook: str
    tmp: Path

    @property
    def certfile(self) -> Path:
        return self.run.confdir / NAME / "cert.pem"

    def issue(self, *opts: str, code: int = 0) -> str:
        return ok(self.run(*opts, "-h", self.hook, "issue", NAME), code).stderr

    def chain(self) -> list[x509.Certificate]:
        return x509.load_pem_x509_certificates(self.certfile.read_bytes())

    def revoke_behind_its_back(self) -> int:
        """Revoke the current certificate through a copy; cert.pem stays. Returns its serial."""
        copy = self.tmp / "elsewhere" / "cert.pem"
        copy.parent.mkdir(exist_ok=True)
        shutil.copyfile(self.certfile, copy)
        ok(self.run("revoke", str(copy)))
        serial = self.chain()[0].serial_number
        assert self.pebble.cert_status(f"{serial:x}")["Status"] == "Revoked"
        return serial


@pytest.fixture(params=["builtin"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def ca(pebble_factory: Callable[..., Pebble], hook_scripts: dict[str, str], tmp_path: Path,
       transport: str) -> Iterator[OcspCA]:
    """A Pebble whose certificates name a live OCSP responder, a webroot, and an account."""
    with OcspResponder() as responder:
        pebble = pebble_factory(extra_config={"ocspResponderURL": responder.url})
        responder.attach(pebble)
        with ChallengeDirServer(tmp_path / "acme-challenge", pebble.http_port) as web:
            run = UacmeRun(pebble.directory_url, pebble.ca_bundle, tmp_path / "conf",
                           {"UACME_CHALLENGE_PATH": str(web.root_dir),
                            "HOOK_LOG": str(tmp_path / "hook.log")}, transport)
            ok(run("-y", "new", "admin@example.org"))
            c = OcspCA(pebble, responder, run, hook_scripts["http-01"], tmp_path)
            c.issue()
            assert responder.requests == 0  # nothing to check before the first certificate
            yield c


def test_issued_certificate_names_the_responder(ca: OcspCA) -> None:
    chain = ca.chain()
    assert len(chain) >= 2  # leaf + issuer: what cert_valid needs to ask at all
    aia = chain[0].extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    assert [d.access_location.value for d in aia] == [ca.responder.url]
    assert ca.responder.issuer is not None and chain[1].subject == ca.responder.issuer.subject


@pytest.mark.parametrize("transport", ["builtin", "requests"], indirect=True)
def test_good_answer_keeps_the_current_certificate(ca: OcspCA) -> None:
    before = ca.certfile.read_bytes()
    err = ca.issue(code=1)
    assert "OCSP status good" in err and "skipping" in err
    assert ca.responder.statuses() == ["good"]
    answer = ca.responder.answers[0]
    assert answer.method == "POST" and answer.serial == ca.chain()[0].serial_number
    assert answer.nonce is not None and len(answer.nonce) == 16  # uacme sends one; echoed back
    assert ca.certfile.read_bytes() == before
    assert not list(ca.certfile.parent.glob("cert-*.pem"))


@pytest.mark.parametrize("transport", ["builtin", "requests"], indirect=True)
def test_revoked_certificate_is_reissued(ca: OcspCA) -> None:
    old_bytes = ca.certfile.read_bytes()
    old_serial = ca.revoke_behind_its_back()
    err = ca.issue(code=0)
    assert "OCSP status revoked" in err and "is revoked" in err
    assert ca.responder.statuses() == ["revoked"]
    new_serial = ca.chain()[0].serial_number
    assert new_serial != old_serial
    assert ca.pebble.cert_status(f"{new_serial:x}")["Status"] == "Valid"
    backups = list(ca.certfile.parent.glob("cert-*.pem"))
    assert [b.read_bytes() for b in backups] == [old_bytes]
    # The replacement answers good and is kept.
    ca.issue(code=1)
    assert ca.responder.statuses() == ["revoked", "good"]
    assert ca.chain()[0].serial_number == new_serial


def test_no_ocsp_option_keeps_a_revoked_certificate(ca: OcspCA) -> None:
    before = ca.certfile.read_bytes()
    ca.revoke_behind_its_back()
    err = ca.issue("-o", code=1)
    assert "skipping" in err and "OCSP" not in err
    ok(ca.run("-o", "check", NAME), 1)
    ok(ca.run("--no-ocsp", "check", NAME), 1)
    assert ca.responder.requests == 0
    assert ca.certfile.read_bytes() == before
    assert not list(ca.certfile.parent.glob("cert-*.pem"))


def test_responder_down_fails_open(ca: OcspCA) -> None:
    before = ca.certfile.read_bytes()
    ca.revoke_behind_its_back()  # a reachable responder would now say revoked
    ca.responder.stop()
    err = ca.issue(code=1)
    assert "OCSP request to" in err and "failed" in err and "skipping" in err
    assert ca.certfile.read_bytes() == before
    assert ca.responder.requests == 0


def test_unsuccessful_answer_fails_open(ca: OcspCA) -> None:
    before = ca.certfile.read_bytes()
    ca.revoke_behind_its_back()
    ca.responder.detach()  # answers tryLater (RFC 6960 §2.3), a signed-nothing reply
    err = ca.issue(code=1)
    assert "OCSP status unknown" in err and "skipping" in err
    assert ca.responder.statuses() == ["tryLater"]
    assert ca.certfile.read_bytes() == before


def test_check_reports_a_revoked_certificate_as_due(ca: OcspCA) -> None:
    before = ca.certfile.read_bytes()
    ok(ca.run("check", NAME), 1)
    ca.revoke_behind_its_back()
    ok(ca.run("check", NAME), 0)
    assert ca.responder.statuses() == ["good", "revoked"]
    assert ca.certfile.read_bytes() == before  # check never reissues
    assert not list(ca.certfile.parent.glob("cert-*.pem"))


# --- the responder itself, as any OCSP client sees it ------------------------------------------

def _ask_get(url: str, req: ocsp.OCSPRequest) -> bytes:
    """RFC 6960 A.1 GET: the base64 DER request, URL-encoded, as the last path segment."""
    b64 = base64.b64encode(req.public_bytes(serialization.Encoding.DER)).decode()
    with urllib.request.urlopen(f"{url}/{urllib.parse.quote(b64, safe='')}", timeout=5) as r:
        assert r.headers["Content-Type"] == "application/ocsp-response"
        return bytes(r.read())


def test_responder_answers_get_and_unknown_serials(ca: OcspCA) -> None:
    leaf, issuer = ca.chain()[:2]
    good = ocsp.OCSPRequestBuilder().add_certificate(leaf, issuer, hashes.SHA256()).build()
    body = _ask_get(ca.responder.url, good)
    resp = ocsp.load_der_ocsp_response(body)
    assert resp.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    assert resp.certificate_status == ocsp.OCSPCertStatus.GOOD and resp.serial_number == leaf.serial_number
    assert resp.responder_key_hash is not None and not resp.certificates  # signed by the issuer itself
    assert crypto.ocsp_status(body, [leaf, issuer]) == "good"  # signature and CertID check out
    # A serial Pebble never issued: signed "unknown", not an error.
    bogus = ocsp.OCSPRequestBuilder().add_certificate_by_hash(
        good.issuer_name_hash, good.issuer_key_hash, leaf.serial_number ^ 0x5A5A, hashes.SHA256()).build()
    unknown = ocsp.load_der_ocsp_response(_ask_get(ca.responder.url, bogus))
    assert unknown.certificate_status == ocsp.OCSPCertStatus.UNKNOWN
    # Another CA's certificate: this responder is not authorised for it (RFC 6960 §2.3).
    other = ocsp.OCSPRequestBuilder().add_certificate_by_hash(
        b"\0" * 32, good.issuer_key_hash, leaf.serial_number, hashes.SHA256()).build()
    refused = ocsp.load_der_ocsp_response(_ask_get(ca.responder.url, other))
    assert refused.response_status == ocsp.OCSPResponseStatus.UNAUTHORIZED
    assert ca.responder.statuses() == ["good", "unknown", "unauthorized"]


def test_responder_revoked_answer_verifies_with_wucme_crypto(ca: OcspCA) -> None:
    chain = ca.chain()
    serial = ca.revoke_behind_its_back()
    url, der = crypto.ocsp_request(chain) or ("", b"")
    assert url == ca.responder.url
    post = urllib.request.Request(url, data=der, headers={"Content-Type": "application/ocsp-request"})
    with urllib.request.urlopen(post, timeout=5) as r:
        body = r.read()
    assert crypto.ocsp_status(body, chain, der) == "revoked"
    resp = ocsp.load_der_ocsp_response(body)
    assert resp.serial_number == serial and resp.revocation_time_utc is not None
    # The nonce is bound to the request: another request's nonce makes it unusable.
    _, other = crypto.ocsp_request(chain) or ("", b"")
    assert crypto.ocsp_status(body, chain, other) == "unknown"
    # A wrong content type is refused at the HTTP level.
    bad = urllib.request.Request(url, data=der, headers={"Content-Type": "text/plain"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(bad, timeout=5)
    assert e.value.code == 415
    e.value.close()

