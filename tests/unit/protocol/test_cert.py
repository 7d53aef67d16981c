"""Orders and certificates (wucme.uacme.cert, RFC 8555 §7.4, RFC 9773 §5) against the
in-memory CA: the whole conversation, retries, polling, `replaces`, alternate chains,
the chain checks, saving and revocation."""
from __future__ import annotations

import os
import stat
import time
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from wucme.core.problem import AcmeProblem
from wucme.errors import PollTimeout, ProtocolViolation, WucmeError
from wucme.uacme.acme import AcmeSession, acme_bootstrap
from wucme.uacme.cert import cert_issue, cert_order, cert_revoke

from .fakeca import (
    BASE, PEM_CHAIN, FakeCA, ari_id, b64, bad_nonce, problem, rate_limited, wrong_type)
from .pki import Pki
from .support import Answerer, csr_for, fails, new_session, registered, said, solve_with, waits

NAMES = ["a.test", "b.test"]


def order(ca: FakeCA, a: AcmeSession, names: list[str] = NAMES, replaces: str | None = None,
          key: Any = None) -> bytes:
    """cert_order() for `names` with a fresh certificate key, answered in process."""
    csr, _ = csr_for(names, key)
    return cert_order(a, names, csr, replaces, **solve_with(a, Answerer(ca)))


def issued(ca: FakeCA) -> Any:
    return list(ca.certs.values())[-1]


def spki(key_or_cert: Any) -> bytes:
    pub = key_or_cert.public_key()
    return pub.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


# --- the whole conversation ----------------------------------------------------------------------

def test_issue_from_directory_to_chain(ca: FakeCA) -> None:
    a = registered(ca)
    csr, key = csr_for(NAMES)
    pem = cert_order(a, NAMES, csr, **solve_with(a, Answerer(ca)))
    assert ca.trail() == [
        "GET directory 200", "POST newAccount 400", "POST newAccount 201",
        "POST newOrder 201", "POST authz 200", "POST authz 200",
        "POST challenge 200", "POST challenge 200", "POST order 200",  # ready: polled once, by authorize
        "POST finalize 200", "POST cert 200",
    ]
    assert len(ca.requests("newNonce")) == 1
    assert ca.requests("newOrder")[0].payload == {
        "identifiers": [{"type": "dns", "value": "a.test"}, {"type": "dns", "value": "b.test"}]}
    assert ca.requests("finalize")[0].payload == {"csr": b64(csr)}
    (download,) = ca.requests("cert")
    assert download.payload == "" and download.accept == PEM_CHAIN
    assert pem == issued(ca).chains[0]
    leaf = x509.load_pem_x509_certificates(pem)[0]
    assert spki(leaf) == spki(key)
    assert waits(a) == []


def test_ip_identifiers(ca: FakeCA) -> None:
    a = registered(ca)
    pem = order(ca, a, ["192.0.2.7", "2001:db8::7"])
    assert ca.requests("newOrder")[0].payload["identifiers"] == [
        {"type": "ip", "value": "192.0.2.7"}, {"type": "ip", "value": "2001:db8::7"}]
    assert pem == issued(ca).chains[0]


def test_a_ready_order_goes_straight_to_finalize(ca: FakeCA) -> None:
    ca.preauthorized = set(NAMES)
    a = registered(ca)
    answerer = Answerer(ca)
    csr, _ = csr_for(NAMES)
    cert_order(a, NAMES, csr, **solve_with(a, answerer))
    assert ca.trail()[3:] == ["POST newOrder 201", "POST finalize 200", "POST cert 200"]
    assert answerer.calls == []


def test_profile_goes_into_the_order(ca: FakeCA) -> None:
    ca.profiles = {"shortlived": "6 days"}
    a = registered(ca, profile="shortlived")
    order(ca, a)
    assert ca.requests("newOrder")[0].payload["profile"] == "shortlived"
    assert list(ca.orders.values())[0].profile == "shortlived"


def test_cert_issue_saves_the_chain_and_keeps_the_last_one(ca: FakeCA, tmp_path: Path) -> None:
    a = registered(ca)
    prefix = f"{tmp_path}/"
    for round in (1, 2):
        csr, _ = csr_for(NAMES)
        certfile = cert_issue(a, NAMES, csr, prefix, **solve_with(a, Answerer(ca)))
        assert certfile == f"{prefix}cert.pem"
        assert Path(certfile).read_bytes() == issued(ca).chains[0]
        assert stat.S_IMODE(os.stat(certfile).st_mode) == 0o444
    (backup,) = tmp_path.glob("cert-*.pem")
    assert backup.read_bytes() == list(ca.certs.values())[0].chains[0]
    assert not list(tmp_path.glob("*.tmp"))


# --- retries -------------------------------------------------------------------------------------

def test_bad_nonce_on_finalize_is_retried(ca: FakeCA) -> None:
    a = registered(ca, max_badnonce=3)
    ca.inject("finalize", bad_nonce(), bad_nonce())
    pem = order(ca, a)
    assert [s.status for s in ca.requests("finalize")] == [400, 400, 200]
    assert pem == issued(ca).chains[0] and waits(a) == []


def test_bad_nonce_bound_on_new_order(ca: FakeCA) -> None:
    a = registered(ca, max_badnonce=2)
    ca.inject("newOrder", bad_nonce(), bad_nonce())
    with fails(AcmeProblem, "badNonce"):
        order(ca, a)
    assert len(ca.requests("newOrder")) == 2 and ca.orders == {} and ca.requests("finalize") == []


def test_rate_limited_new_order_waits_retry_after(ca: FakeCA) -> None:
    a = registered(ca)
    ca.inject("newOrder", rate_limited("30"))
    order(ca, a)
    assert waits(a) == [30.0]
    assert [s.status for s in ca.requests("newOrder")] == [429, 201]
    assert "rate limited at https://ca.test/new-order, waiting 30 seconds" in said(a)


def test_rate_limited_finalize_waits_an_http_date(ca: FakeCA) -> None:
    a = registered(ca)
    ca.inject("finalize", rate_limited(formatdate(time.time() + 600, usegmt=True), status=503))
    order(ca, a)
    (wait,) = waits(a)
    assert 597 < wait <= 601
    assert [s.status for s in ca.requests("finalize")] == [503, 200]


# --- polling the order (RFC 8555 §7.4) ----------------------------------------------------------------

def test_an_order_seen_ready_is_finalized_as_itself_whatever_the_session_holds(ca: FakeCA) -> None:
    """The renewal pass runs several orders on one session at once: what another order left in
    `a.order` meanwhile (here: another order, ready, with its own finalize URL) must not be
    taken for this one's (it was, once, and finalized the other order twice)."""
    a = registered(ca)
    answerer = Answerer(ca)

    def solver(method: str, type: str, ident: str, token: str, auth: str) -> int:
        rc = answerer(method, type, ident, token, auth)
        if method == "done":
            a.order = {"status": "ready", "finalize": f"{BASE}/finalize/someone-elses"}
        return rc

    csr, _ = csr_for(NAMES)
    pem = cert_order(a, NAMES, csr, solver=solver)
    assert pem == issued(ca).chains[0]
    assert [(r.url.endswith("someone-elses"), r.status) for r in ca.requests("finalize")] == [(False, 200)]
    assert len(ca.requests("order")) == 1  # the poll authorize() made: ready, no second one



def test_order_pending_then_ready_with_backoff(ca: FakeCA) -> None:
    ca.order_pending_polls = 3
    a = registered(ca)
    order(ca, a)
    assert waits(a) == pytest.approx([0.01, 0.02, 0.04])
    assert [s.status for s in ca.requests("finalize")] == [200]


def test_order_processing_after_finalize_with_retry_after(ca: FakeCA) -> None:
    """RFC 8555 §7.4: "processing" - poll after the Retry-After of the answer, the finalize
    answer's included: three answers say "processing" (finalize and two polls), three waits."""
    ca.order_processing_polls, ca.poll_retry_after = 2, "1"
    a = registered(ca)
    pem = order(ca, a)
    assert waits(a) == [1.0, 1.0, 1.0]
    assert ca.trail()[-5:] == ["POST finalize 200", "POST order 200", "POST order 200",
                               "POST order 200", "POST cert 200"]
    assert pem == issued(ca).chains[0]


def test_a_finalize_answered_processing_without_retry_after_is_polled_at_once(ca: FakeCA) -> None:
    """No Retry-After: the first poll goes at once (a CA as quick as Pebble has issued already)."""
    ca.order_processing_polls = 1
    a = registered(ca)
    order(ca, a)
    assert waits(a) == pytest.approx([0.01])
    assert ca.trail()[-4:] == ["POST finalize 200", "POST order 200", "POST order 200", "POST cert 200"]


def test_no_finalize_after_a_poll_timeout(ca: FakeCA) -> None:
    ca.order_pending_polls = 10**6
    a = registered(ca, poll_deadline=5.0)
    with fails(PollTimeout, "timeout while polling order status at https://ca.test/order/\\d+, giving up"):
        order(ca, a)
    assert ca.requests("finalize") == [] and ca.certs == {}
    assert sum(waits(a)) == pytest.approx(5.0)


def test_no_download_after_a_processing_timeout(ca: FakeCA) -> None:
    ca.order_processing_polls = 10**6
    a = registered(ca, poll_deadline=5.0)
    with fails(PollTimeout, "timeout while polling order status"):
        order(ca, a)
    assert len(ca.requests("finalize")) == 1 and ca.requests("cert") == []


def test_an_order_that_fails_at_issuance(ca: FakeCA) -> None:
    ca.issue_error = {"type": "urn:ietf:params:acme:error:serverInternal", "detail": "HSM unplugged"}
    ca.order_processing_polls = 1
    a = registered(ca)
    with fails(WucmeError, "^%WUCME-E-ORDERSTATUS, order at https://ca.test/order/\\d+ is invalid, expected "
               "valid: urn:ietf:params:acme:error:serverInternal HSM unplugged$"):
        order(ca, a)
    assert ca.requests("cert") == []


def test_a_refused_order(ca: FakeCA) -> None:
    a = registered(ca)
    ca.inject("newOrder", problem(400, "rejectedIdentifier", "a.test is forbidden"))
    with fails(AcmeProblem, "^%WUCME-E-CAERROR, failed to submit order at https://ca.test/new-order: "
               "urn:ietf:params:acme:error:rejectedIdentifier \\(HTTP 400\\): a.test is forbidden$"):
        order(ca, a)


def test_a_directory_pointing_to_plain_http(ca: FakeCA) -> None:
    ca.directory_extra = {"newOrder": "http://ca.test/new-order"}
    a = registered(ca)
    with fails(ProtocolViolation, "refusing non-https URL from the CA: http://ca.test/new-order"):
        order(ca, a)
    assert ca.requests("newOrder") == [] and ca.requests("elsewhere") == []


def test_an_order_answer_that_is_not_json(ca: FakeCA) -> None:
    a = registered(ca)
    ca.inject("newOrder", wrong_type("text/html"))
    with fails(WucmeError, "ORDERSTATUS, invalid order status \\(None\\)"):
        order(ca, a)
    assert ca.requests("authz") == []


# --- replaces (RFC 9773 §5) ------------------------------------------------------------------------

def test_replaces_is_sent_and_dropped_once_when_refused(ca: FakeCA) -> None:
    a = registered(ca)
    order(ca, a)
    old = ari_id(issued(ca).leaf)
    order(ca, a, replaces=old)  # accepted: the CA marks the old certificate replaced
    assert ca.requests("newOrder")[-1].payload["replaces"] == old
    assert list(ca.orders.values())[-1].replaces is list(ca.certs.values())[0]
    pem = order(ca, a, replaces=old)  # refused now: alreadyReplaced, then without
    refused, retried = ca.requests("newOrder")[-2:]
    assert (refused.status, refused.payload["replaces"]) == (409, old)
    assert retried.status == 201 and "replaces" not in retried.payload
    assert retried.payload["identifiers"] == refused.payload["identifiers"]
    assert f"CA refused replaces={old} (urn:ietf:params:acme:error:alreadyReplaced" in said(a)
    assert pem == issued(ca).chains[0]


def test_replaces_is_dropped_only_once(ca: FakeCA) -> None:
    a = registered(ca)
    order(ca, a)
    ca.inject("newOrder", problem(400, "malformed", "replaces not understood"),
              problem(400, "rejectedIdentifier", "a.test is forbidden"))
    with fails(AcmeProblem, "rejectedIdentifier"):
        order(ca, a, replaces=ari_id(issued(ca).leaf))
    assert len(ca.requests("newOrder")) == 3  # the first order, then two tries


def test_no_replaces_without_one(ca: FakeCA) -> None:
    a = registered(ca)
    order(ca, a)
    assert "replaces" not in ca.requests("newOrder")[0].payload


# --- alternate chains (RFC 8555 §7.4.2, uacme -l) ----------------------------------------------------

@pytest.mark.parametrize("one_line", [False, True], ids=["link-per-line", "links-on-one-line"])
@pytest.mark.parametrize("index", [1, 2])
def test_alternate_chain_by_index(ca: FakeCA, index: int, one_line: bool) -> None:
    ca.alternates, ca.links_on_one_line = 2, one_line
    a = registered(ca, alternate=index)
    pem = order(ca, a)
    cert = issued(ca)
    assert pem == cert.chains[index]
    assert [s.url for s in ca.requests("cert")] == [cert.url, f"{cert.url}/{index}"]
    assert all(s.accept == PEM_CHAIN for s in ca.requests("cert"))


@pytest.mark.parametrize("alternates", [0, 2])
def test_alternate_index_not_offered_falls_back(ca: FakeCA, alternates: int) -> None:
    ca.alternates = alternates
    a = registered(ca, alternate=3)
    assert order(ca, a) == issued(ca).chains[0]
    assert len(ca.requests("cert")) == 1
    assert "alternate chain 3 not found, using the default chain" in said(a)


def _fingerprint(cert: x509.Certificate) -> bytes:
    return cert.fingerprint(hashes.SHA256())


@pytest.mark.parametrize(("select", "chain", "fetched"), [
    (lambda pki: pki.alt_root_key_id(1)[:2], 1, 2),
    (lambda pki: pki.alt_root_key_id(2)[:4], 2, 3),
    (lambda pki: _fingerprint(pki.cross[1])[:3], 2, 3),
    (lambda pki: _fingerprint(pki.cross[0]), 1, 2),
    (lambda pki: x509.SubjectKeyIdentifier.from_public_key(pki.root_key.public_key()).digest[:2], 0, 1),
], ids=["aki-of-alt-1", "aki-of-alt-2", "fingerprint-of-alt-2", "whole-fingerprint-alt-1", "default-matches"])
def test_alternate_chain_by_fingerprint(ca: FakeCA, pki: Pki, select: Any, chain: int, fetched: int) -> None:
    ca.alternates = 2
    a = registered(ca, alternate=select(pki))
    assert order(ca, a) == issued(ca).chains[chain]
    assert len(ca.requests("cert")) == fetched


def test_no_chain_matches_the_fingerprint(ca: FakeCA) -> None:
    ca.alternates = 2
    a = registered(ca, alternate=bytes.fromhex("deadbeef"))
    assert order(ca, a) == issued(ca).chains[0]
    assert len(ca.requests("cert")) == 3
    assert "no chain matches de:ad:be:ef, using the default chain" in said(a)


# --- the chain is checked before it is saved (RFC 8555 §7.4.2, §9.1, §11.4) ----------------------------

@pytest.mark.parametrize(("misissue", "match"), [
    ("other-key", "issued certificate does not carry the CSR's key"),
    ("drop-name", "issued certificate lacks b.test"),
    ("key-block", "certificate response is not a chain of CERTIFICATE blocks"),
    ("garbage", "certificate response is not a chain of CERTIFICATE blocks"),
])
def test_a_wrong_chain_is_refused_and_nothing_saved(ca: FakeCA, tmp_path: Path, misissue: str,
                                                    match: str) -> None:
    ca.misissue = misissue
    a = registered(ca)
    csr, _ = csr_for(NAMES)
    with fails(ProtocolViolation, f"^%WUCME-E-PROTOCOL, {match}$"):
        cert_issue(a, NAMES, csr, f"{tmp_path}/", **solve_with(a, Answerer(ca)))
    assert list(tmp_path.iterdir()) == []


def _corrupt_intermediate(pem: bytes) -> bytes:
    """The second block keeps its armour, but its DER is zeros from the third line on."""
    end = b"-----END CERTIFICATE-----\n"
    leaf, middle, _ = pem.split(end)
    lines = middle.split(b"\n")
    lines[3] = b"A" * len(lines[3])
    return leaf + end + b"\n".join(lines) + end


@pytest.mark.parametrize(("spoil", "match"), [
    (_corrupt_intermediate, "certificate response does not parse"),
    (lambda pem: pem + b"Served by ca.test\n", "certificate response is not a chain of CERTIFICATE blocks"),
    (lambda pem: b"Here is your chain:\n" + pem, "certificate response is not a chain of CERTIFICATE blocks"),
    (lambda pem: pem[: len(pem) - 40], "certificate response is not a chain of CERTIFICATE blocks"),
], ids=["corrupt-intermediate", "text-after", "text-before", "truncated"])
def test_every_block_must_be_a_certificate(ca: FakeCA, tmp_path: Path, spoil: Any, match: str) -> None:
    """RFC 8555 §9.1: the chain is strict PEM with no explanatory text; a chain the web server
    could not load is never saved."""
    a = registered(ca)
    real = ca._record_cert

    def spoilt(leaf: x509.Certificate, account: Any) -> Any:
        cert = real(leaf, account)
        cert.chains = [spoil(c) for c in cert.chains]
        return cert

    ca._record_cert = spoilt  # type: ignore[method-assign]
    csr, _ = csr_for(NAMES)
    with fails(ProtocolViolation, match):
        cert_issue(a, NAMES, csr, f"{tmp_path}/", **solve_with(a, Answerer(ca)))
    assert list(tmp_path.iterdir()) == []


def test_the_chain_is_judged_by_its_content_not_its_label(ca: FakeCA) -> None:
    a = registered(ca)
    ca.inject("cert", wrong_type("text/plain"))
    assert order(ca, a) == issued(ca).chains[0]


# --- revocation (RFC 8555 §7.6) ---------------------------------------------------------------------

def test_revoke_with_the_account_key(ca: FakeCA, tmp_path: Path) -> None:
    a = registered(ca)
    csr, _ = csr_for(NAMES)
    certfile = cert_issue(a, NAMES, csr, f"{tmp_path}/", **solve_with(a, Answerer(ca)))
    leaf = issued(ca).leaf
    moved = cert_revoke(a, certfile, 4)
    (seen,) = ca.requests("revokeCert")
    assert seen.payload == {"certificate": b64(leaf.public_bytes(Encoding.DER)), "reason": 4}
    assert seen.protected and seen.protected["kid"] == a.kid
    assert issued(ca).revoked == 4
    assert Path(moved).name.startswith("revoked-") and not Path(certfile).exists()
    Path(certfile).write_bytes(Path(moved).read_bytes())
    with fails(AcmeProblem, "failed to revoke .*alreadyRevoked"):
        cert_revoke(a, certfile, 4)


def test_revoke_with_the_certificate_key(ca: FakeCA, tmp_path: Path) -> None:
    a = registered(ca)
    csr, cert_key = csr_for(NAMES)
    certfile = cert_issue(a, NAMES, csr, f"{tmp_path}/", **solve_with(a, Answerer(ca)))
    b = new_session(ca, key=cert_key)  # no account: signed with the certificate's jwk
    acme_bootstrap(b)
    cert_revoke(b, certfile, 1)
    seen = ca.requests("revokeCert")[0]
    assert seen.protected and "jwk" in seen.protected and "kid" not in seen.protected
    assert issued(ca).revoked == 1


def test_revoke_by_a_stranger_is_refused(ca: FakeCA, tmp_path: Path) -> None:
    a = registered(ca)
    csr, _ = csr_for(NAMES)
    certfile = cert_issue(a, NAMES, csr, f"{tmp_path}/", **solve_with(a, Answerer(ca)))
    stranger = registered(ca)
    with fails(AcmeProblem, "unauthorized"):
        cert_revoke(stranger, certfile, 0)
    assert issued(ca).revoked is None and Path(certfile).exists()

