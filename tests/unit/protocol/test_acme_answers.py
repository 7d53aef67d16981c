"""How the session reads what the CA answers (wucme.uacme.acme: AcmeReply, acme_get,
acme_post, acme_nonce, the nonce pool) and what the order and certificate code make of odd
answers (wucme.uacme.cert), each asserted by the message a user sees."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from wucme.core.problem import AcmeProblem
from wucme.errors import ProtocolViolation, WucmeError
from wucme.http import Response
from wucme.uacme.acme import AcmeReply, AcmeSession, acme_bootstrap, acme_get, acme_nonce, acme_post
from wucme.uacme.cert import cert_order, cert_revoke, cert_save

from .fakeca import BASE, DIRECTORY, NS, Answer, FakeCA, problem, rate_limited
from .support import Answerer, csr_for, fails, new_session, registered, said, solve_with, waits

PROBLEM = "application/problem+json"


def reply(status: int, doc: object, ctype: str = "application/json", headers: tuple[tuple[str, str], ...] = ()
          ) -> AcmeReply:
    body = json.dumps(doc).encode() if doc is not None else b""
    resp = Response(status, [("Content-Type", ctype), *headers], body, f"{BASE}/x")
    return AcmeReply(status, resp, doc)


# --- AcmeReply --------------------------------------------------------------------------------------

def test_an_object_carrying_an_error_member_is_a_problem() -> None:
    """A challenge or order answered 200 with its `error` (RFC 8555 §7.1.3) is read as that problem."""
    r = reply(400, {"status": "invalid", "error": {"type": NS + "unauthorized", "detail": "wrong key"}})
    p = r.problem()
    assert p is not None and (p.status, p.code, p.detail) == (400, "unauthorized", "wrong key")
    assert reply(200, {"status": "valid"}).problem() is None
    assert reply(200, {"error": "a string"}).problem() is None


def test_a_problem_document_and_its_retry_after() -> None:
    doc = {"type": NS + "rateLimited", "detail": "slow down", "error": {"type": NS + "other"}}
    p = reply(429, doc, PROBLEM, (("Retry-After", "120"),)).problem()
    assert p is not None and (p.status, p.code, p.detail, p.retry_after) == (429, "rateLimited", "slow down", 120)
    p = reply(429, doc, PROBLEM).problem()
    assert p is not None and p.retry_after is None
    p = reply(429, doc, PROBLEM, (("Retry-After", "0"),)).problem()
    assert p is not None and p.retry_after is None


def test_a_problem_without_a_json_body() -> None:
    r = reply(400, None, PROBLEM)
    with fails(AcmeProblem, "^%WUCME-E-.*failed to do it: .*HTTP 400 with a body that is not JSON"):
        r.expect(200, what="do it")
    p = reply(403, ["not", "an", "object"], PROBLEM, (("Retry-After", "7"),)).problem()
    assert p is not None and p.status == 403 and "unparsable problem document" in p.text


def test_jstr_reads_only_strings_of_an_object() -> None:
    assert reply(200, {"status": "valid"}).jstr("status") == "valid"
    assert reply(200, {"status": 3}).jstr("status") is None
    assert reply(200, ["status"]).jstr("status") is None


def test_a_directory_member_that_is_empty(ca: FakeCA) -> None:
    a = new_session(ca)
    acme_bootstrap(a)
    a.dir["newOrder"] = ""
    with fails(ProtocolViolation, "^%WUCME-E-PROTOCOL, failed to find newOrder URL in directory$"):
        a.url("newOrder")


# --- requests ----------------------------------------------------------------------------------------

def test_a_get_sends_accept_only_when_asked(ca: FakeCA) -> None:
    a = new_session(ca)
    given: list[dict[str, str] | None] = []

    class Recording:
        def request(self, method: str, url: str, body: bytes | None = None,
                    headers: dict[str, str] | None = None) -> Response:
            given.append(headers)
            return ca.request(method, url, body, headers)

        def close(self) -> None:
            pass
    a.transport = Recording()  # type: ignore[assignment]
    acme_get(a, DIRECTORY)
    acme_get(a, DIRECTORY, accept="application/json")
    assert given == [None, {"Accept": "application/json"}]


def test_a_get_rate_limited_three_times_gives_the_third_answer(ca: FakeCA) -> None:
    ca.inject("directory", rate_limited("1"), rate_limited("2"), rate_limited("3"))
    a = new_session(ca)
    r = acme_get(a, DIRECTORY)
    assert r.status == 429 and waits(a) == [1, 2] and len(ca.requests("directory")) == 3


def test_a_bad_nonce_answer_without_a_problem_body(ca: FakeCA) -> None:
    a = registered(ca, max_badnonce=1)
    ca.inject("newOrder", Answer(400, "badNonce", "stale"))
    with fails(AcmeProblem, "badNonce.*stale") as info:
        acme_post(a, a.url("newOrder"), {"identifiers": [{"type": "dns", "value": "a.test"}]})
    assert isinstance(info.value, AcmeProblem)


def test_new_nonce_answered_200_or_204_and_nothing_else(ca: FakeCA) -> None:
    a = new_session(ca)
    acme_bootstrap(a)
    assert acme_nonce(a)  # HEAD answered 200
    ca.inject("newNonce", Answer(status=205, body=b"", headers=(("Replay-Nonce", "abc"),)))
    with fails(ProtocolViolation, "failed to retrieve nonce: unexpected HTTP 205"):
        acme_nonce(a)


def test_the_nonce_pool_keeps_the_newest_64(ca: FakeCA) -> None:
    a = new_session(ca)
    acme_bootstrap(a)
    for _ in range(70):
        acme_get(a, a.url("newNonce"))
    given = [s.nonce_given for s in ca.requests("newNonce")]
    assert a._nonces == given[-64:]


def test_a_non_https_url_is_named_up_to_200_characters(ca: FakeCA) -> None:
    a = registered(ca)
    url = "http://ca.test/" + "x" * 300
    with fails(ProtocolViolation, "^%WUCME-E-PROTOCOL, refusing non-https URL from the CA: (.*)$") as info:
        acme_post(a, url, "")
    assert info.value.text == f"refusing non-https URL from the CA: {url[:200]}"


def test_a_link_down_three_times_is_neterr(ca: FakeCA) -> None:
    from .fakeca import link_down
    ca.inject("directory", link_down(), link_down(), link_down())
    a = new_session(ca)
    with fails(WucmeError, f"^%WUCME-E-NETERR, GET {DIRECTORY} failed: ") as info:
        acme_get(a, DIRECTORY)
    assert info.value.ident == "NETERR"


def test_a_profile_the_ca_offers_none_of(ca: FakeCA) -> None:
    a = new_session(ca, profile="shortlived")
    with fails(WucmeError, "^%WUCME-E-NOPROFILE, profile 'shortlived' not offered by the CA "
               "\\(offered: none\\)$") as info:
        acme_bootstrap(a)
    assert info.value.ident == "NOPROFILE"


# --- orders and certificates: answers that cannot be used ----------------------------------------------

def order(ca: FakeCA, a: AcmeSession, names: list[str] = ["a.test"]) -> bytes:
    csr, _ = csr_for(names)
    return cert_order(a, names, csr, None, **solve_with(a, Answerer(ca)))


@pytest.mark.parametrize(("endpoint", "spoil", "message"), [
    ("newOrder", {"status": "invalid"}, "^%WUCME-E-ORDERSTATUS, invalid order status \\(invalid\\)$"),
    ("newOrder", {"authorizations": "x"}, "^%WUCME-E-PROTOCOL, failed to parse authorizations URL$"),
    ("newOrder", {"authorizations": [1]}, "^%WUCME-E-PROTOCOL, failed to parse authorizations URL$"),
    ("newOrder", {"finalize": None, "status": "ready"}, "^%WUCME-E-PROTOCOL, failed to find finalize URL$"),
])
def test_an_order_that_cannot_be_followed(ca: FakeCA, endpoint: str, spoil: dict[str, object],
                                          message: str) -> None:
    a = registered(ca)
    orig = ca._order_json

    def spoiled(o: object) -> dict[str, object]:
        return {**orig(o), **spoil}  # type: ignore[arg-type]
    ca._order_json = spoiled  # type: ignore[method-assign]
    with fails(WucmeError, message) as info:
        order(ca, a)
    assert info.value.ident == message.split("-")[2].split(",")[0]


def test_an_order_without_a_location(ca: FakeCA) -> None:
    a = registered(ca)
    orig = ca._new_order

    def no_location(payload: object, account: object) -> Response:
        resp = orig(payload, account)  # type: ignore[arg-type]
        resp.headers = [(k, v) for k, v in resp.headers if k.lower() != "location"]
        return resp
    ca._new_order = no_location  # type: ignore[method-assign]
    with fails(ProtocolViolation, "^%WUCME-E-PROTOCOL, order location not found$"):
        order(ca, a)


def test_an_order_that_fails_at_issuance_names_the_cas_error(ca: FakeCA) -> None:
    ca.issue_error = {"type": NS + "badCSR", "detail": "key too weak"}
    a = registered(ca)
    with fails(WucmeError, "^%WUCME-E-ORDERSTATUS, order at .* is invalid, expected valid: "
               "urn:ietf:params:acme:error:badCSR key too weak$") as info:
        order(ca, a)
    assert info.value.ident == "ORDERSTATUS"


def test_the_valid_order_is_kept_in_the_session(ca: FakeCA) -> None:
    ca.order_processing_polls = 1
    a = registered(ca)
    order(ca, a)
    assert a.order is not None and a.order["status"] == "valid" and a.order["certificate"].startswith(BASE)


def test_a_certificate_url_that_is_not_a_string(ca: FakeCA) -> None:
    ca.order_processing_polls = 1
    a = registered(ca)
    orig = ca._order_json

    def spoiled(o: object) -> dict[str, object]:
        d = orig(o)  # type: ignore[arg-type]
        if "certificate" in d:
            d["certificate"] = 42
        return d
    ca._order_json = spoiled  # type: ignore[method-assign]
    with fails(ProtocolViolation, "^%WUCME-E-PROTOCOL, failed to parse certificate url$"):
        order(ca, a)


def test_a_finalize_refused_names_the_url(ca: FakeCA) -> None:
    a = registered(ca)
    ca.inject("finalize", problem(403, "unauthorized", "not yours"))
    with fails(AcmeProblem, f"failed to finalize order at {BASE}/finalize/.*not yours"):
        order(ca, a)


def test_replaces_refused_with_another_status_is_retried_once(ca: FakeCA) -> None:
    a = registered(ca)
    ca.inject("newOrder", problem(409, "alreadyReplaced", "done before"))
    csr, _ = csr_for(["a.test"])
    cert_order(a, ["a.test"], csr, "aaaa.bbbb", **solve_with(a, Answerer(ca)))
    sent = [s.payload for s in ca.requests("newOrder")]
    assert [("replaces" in p) for p in sent] == [True, False]
    assert "CA refused replaces=aaaa.bbbb (" in said(a) and "retrying without it" in said(a)


# --- saving and revoking ----------------------------------------------------------------------------

def test_a_chain_that_cannot_be_written(ca: FakeCA, tmp_path: Path) -> None:
    a = registered(ca)
    where = tmp_path / "no-such-dir" / "x-"
    with fails(WucmeError, f"^%WUCME-E-FILEERR, failed to write {where}cert.pem: No such file or directory$"):
        cert_save(a, str(where), b"-----BEGIN CERTIFICATE-----\n")


def test_a_chain_saved_in_the_current_directory(ca: FakeCA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = registered(ca, level=1)
    monkeypatch.chdir(tmp_path)
    assert cert_save(a, "", b"PEM") == "cert.pem"
    assert (tmp_path / "cert.pem").read_bytes() == b"PEM"
    assert "wucme: certificate saved to cert.pem\n" in said(a)


def test_revoking_a_file_without_a_certificate(ca: FakeCA, tmp_path: Path) -> None:
    a = registered(ca)
    missing = tmp_path / "cert.pem"
    with fails(WucmeError, f"^%WUCME-E-FILEERR, no certificate in {missing}$"):
        cert_revoke(a, str(missing), 0)
    assert ca.requests("revokeCert") == []


def test_revoking_in_the_current_directory(ca: FakeCA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = registered(ca, level=1)
    monkeypatch.chdir(tmp_path)
    csr, _ = csr_for(["a.test"])
    cert_save(a, "", order(ca, a))
    dest = cert_revoke(a, "cert.pem", 1)
    assert dest.startswith("./revoked-") and (tmp_path / dest[2:]).exists()
    assert f"wucme: revoking cert.pem at {BASE}/revoke-cert\n" in said(a)
    del csr


def test_a_revoked_file_that_cannot_be_renamed_keeps_its_name(ca: FakeCA, tmp_path: Path) -> None:
    a = registered(ca)
    d = tmp_path / "certs"
    d.mkdir()
    cert_save(a, f"{d}/", order(ca, a))
    now = int(time.time())
    for t in range(now - 1, now + 30):  # whatever second it is renamed in, the name is taken
        (d / f"revoked-{t}.pem").mkdir()
    assert cert_revoke(a, f"{d}/cert.pem", 0) == f"{d}/cert.pem"
    assert f"failed to rename {d}/cert.pem to {d}/revoked-" in said(a) and ": Is a directory\n" in said(a)
    assert (d / "cert.pem").exists()


# --- must-staple (RFC 7633): asked for, and what the CA did with it ---------------------------------

def staple_order(ca: FakeCA, a: AcmeSession, must_staple: bool) -> bytes:
    from cryptography.hazmat.primitives.asymmetric import ec as _ec

    from wucme import crypto
    key = _ec.generate_private_key(_ec.SECP256R1())
    csr = crypto.csr_gen(["a.test"], must_staple, False, key)
    return cert_order(a, ["a.test"], csr, None, **solve_with(a, Answerer(ca)))


STAPLE_DROPPED = ("wucme: must-staple was requested but the CA issued the certificate without the "
                  "TLS Feature extension (RFC 7633)\n")


def test_must_staple_dropped_by_the_ca_is_a_warning(ca: FakeCA) -> None:
    a = registered(ca, level=0)
    staple_order(ca, a, must_staple=True)
    assert STAPLE_DROPPED in said(a)


def test_no_warning_when_not_asked_or_when_kept(ca: FakeCA, monkeypatch: pytest.MonkeyPatch) -> None:
    from cryptography import x509 as _x509
    from cryptography.hazmat.primitives import hashes as _hashes

    a = registered(ca, level=0)
    staple_order(ca, a, must_staple=False)
    assert "must-staple" not in said(a)
    plain = ca.pki.issue

    def honouring(public_key: object, names: list[str], *args: object, **kw: object) -> _x509.Certificate:
        leaf = plain(public_key, names)
        b = _x509.CertificateBuilder().subject_name(leaf.subject).issuer_name(leaf.issuer) \
            .public_key(leaf.public_key()).serial_number(leaf.serial_number) \
            .not_valid_before(leaf.not_valid_before_utc).not_valid_after(leaf.not_valid_after_utc)
        for ext in leaf.extensions:
            b = b.add_extension(ext.value, ext.critical)
        b = b.add_extension(_x509.TLSFeature([_x509.TLSFeatureType.status_request]), critical=False)
        return b.sign(ca.pki.intermediate_key, _hashes.SHA256())
    monkeypatch.setattr(ca.pki, "issue", honouring)  # a CA that honours must-staple
    staple_order(ca, a, must_staple=True)
    assert "must-staple" not in said(a)
