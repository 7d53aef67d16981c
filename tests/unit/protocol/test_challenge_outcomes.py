"""What an order ends with, and what the user reads about it: failed challenges and orders
with and without the CA's problem document, challenges a CA reports in its own words
(`pending` while validating, no status at the start), polls refused, alternate chains,
the interactive prompt (uacme without -h).  Against the in-memory CA."""
from __future__ import annotations

import io
import json
from typing import Any

import pytest

from wucme.core.ident import identifiers
from wucme.core.problem import AcmeProblem
from wucme.errors import ProtocolViolation, WucmeError
from wucme.uacme.acme import AcmeSession, acme_post
from wucme.uacme.authorize import authorize, key_auth_for
from wucme.uacme.cert import cert_issue, cert_order

from .fakeca import NS, PEM_CHAIN, FakeCA, problem
from .support import Answerer, challenge_of, csr_for, fails, registered, said, solve_with, waits


def order_for(a: AcmeSession, names: list[str]) -> tuple[str, list[str]]:
    r = acme_post(a, a.url("newOrder"), {"identifiers": identifiers(names)}).expect(201, what="order")
    return r.location or "", r.json["authorizations"]


def run(a: AcmeSession, ca: FakeCA, names: list[str], by_order: bool = True, answerer: Answerer | None = None) -> None:
    order_url, authzs = order_for(a, names)
    authorize(a, authzs, order_url if by_order else None, **solve_with(a, answerer or Answerer(ca)))


def rewrite_challenges(ca: FakeCA, change: Any) -> None:
    """Pass every challenge answer's JSON through change(payload, json) -> json."""
    orig = ca._challenge

    def rewritten(ch: Any, payload: Any) -> Any:
        resp = orig(ch, payload)
        resp.body = json.dumps(change(payload, json.loads(resp.body))).encode()
        return resp
    ca._challenge = rewritten  # type: ignore[method-assign]


# --- the failure message -----------------------------------------------------------------------------

def test_two_failed_challenges_one_line_each(ca: FakeCA) -> None:
    ca.fail_challenge["a.test"] = {"type": NS + "dns", "detail": "no A record"}
    ca.fail_challenge["b.test"] = {"type": NS + "connection", "detail": "refused"}
    a = registered(ca)
    with fails(WucmeError, "^%WUCME-E-CHALLFAIL, challenge failed:\n"
               "  a.test \\(http-01\\): invalid: urn:ietf:params:acme:error:dns no A record\n"
               "  b.test \\(http-01\\): invalid: urn:ietf:params:acme:error:connection refused$"):
        run(a, ca, ["a.test", "b.test"], by_order=False)


def test_a_failed_challenge_without_a_problem_document(ca: FakeCA) -> None:
    ca.fail_challenge["a.test"] = {"type": NS + "dns", "detail": "kept to itself"}
    a = registered(ca)
    rewrite_challenges(ca, lambda p, j: {k: v for k, v in j.items() if k != "error"})
    with fails(WucmeError, "^%WUCME-E-CHALLFAIL, challenge failed:\n  a.test \\(http-01\\): invalid:$"):
        run(a, ca, ["a.test"], by_order=False)


@pytest.mark.parametrize("only", ["type", "detail"])
def test_a_problem_document_with_one_member(ca: FakeCA, only: str) -> None:
    ca.fail_challenge["a.test"] = {"type": NS + "caa", "detail": "CAA forbids"}
    a = registered(ca)
    rewrite_challenges(ca, lambda p, j: {**j, "error": {only: j["error"][only]}} if "error" in j else j)
    shown = {"type": "urn:ietf:params:acme:error:caa", "detail": " CAA forbids"}[only]
    with fails(WucmeError, f"^%WUCME-E-CHALLFAIL, challenge failed:\n  a.test \\(http-01\\): invalid: {shown}$"):
        run(a, ca, ["a.test"], by_order=False)


def test_an_order_invalid_without_its_error(ca: FakeCA) -> None:
    ca.issue_error = {}
    a = registered(ca)
    csr, _ = csr_for(["a.test"])
    orig = ca._order_json
    ca._order_json = lambda o: {**orig(o), "status": "invalid"} if o.finalized else orig(o)  # type: ignore[method-assign]
    with fails(WucmeError, "^%WUCME-E-ORDERSTATUS, order at \\S+ is invalid, expected valid$") as info:
        cert_order(a, ["a.test"], csr, None, **solve_with(a, Answerer(ca)))
    assert info.value.ident == "ORDERSTATUS"


@pytest.mark.parametrize(("error", "shown"), [
    ({"detail": "key too weak"}, ":  key too weak"),
    ({"type": NS + "badCSR"}, ": urn:ietf:params:acme:error:badCSR "),
])
def test_an_order_error_with_one_member(ca: FakeCA, error: dict[str, str], shown: str) -> None:
    ca.issue_error = error
    a = registered(ca)
    csr, _ = csr_for(["a.test"])
    with pytest.raises(WucmeError) as info:
        cert_order(a, ["a.test"], csr, None, **solve_with(a, Answerer(ca)))
    assert info.value.text.endswith(f"is invalid, expected valid{shown}")


# --- challenges in the CA's own words ----------------------------------------------------------------

@pytest.mark.parametrize("by_order", [True, False], ids=["order", "challenges"])
def test_a_start_answer_without_a_status(ca: FakeCA, by_order: bool) -> None:
    a = registered(ca)
    rewrite_challenges(ca, lambda p, j: {k: v for k, v in j.items() if k != "status"} if p == {} else j)
    answerer = Answerer(ca)
    run(a, ca, ["a.test"], by_order=by_order, answerer=answerer)
    assert answerer.methods()[-1] == ("done", "http-01", "a.test")


def test_pending_while_validating_is_waited_out(ca: FakeCA) -> None:
    ca.validation_polls, ca.poll_retry_after = 2, "3"
    a = registered(ca)
    rewrite_challenges(ca, lambda p, j: {**j, "status": "pending"} if j["status"] == "processing" else j)
    answerer = Answerer(ca)
    run(a, ca, ["a.test"], by_order=False, answerer=answerer)
    assert answerer.methods()[-1] == ("done", "http-01", "a.test") and waits(a) == [3, 3]


def test_a_poll_answer_without_a_status_is_a_failure(ca: FakeCA) -> None:
    a = registered(ca)
    rewrite_challenges(ca, lambda p, j: {k: v for k, v in j.items() if k != "status"} if p == "" else j)
    with fails(WucmeError, "^%WUCME-E-CHALLFAIL, challenge failed:\n  a.test \\(http-01\\): unknown:$"):
        run(a, ca, ["a.test"], by_order=False)


def test_a_start_answered_valid_still_waits_for_the_order(ca: FakeCA) -> None:
    ca.validate_on_start = True
    ca.order_pending_polls = 1
    a = registered(ca)
    run(a, ca, ["a.test"])
    assert len([s for s in ca.requests("order") if s.payload == ""]) == 2


def test_waits_over_40_seconds_are_shown_at_level_1(ca: FakeCA) -> None:
    ca.validation_polls, ca.poll_retry_after = 1, "41"
    a = registered(ca, level=1)
    run(a, ca, ["a.test"], by_order=False)
    assert "wucme: 1 challenge(s) pending, waiting 41 seconds\n" in said(a)
    ca2 = FakeCA(ca.pki)
    ca2.validation_polls, ca2.poll_retry_after = 1, "40"
    quiet, loud = registered(ca2, level=1), registered(ca2, level=2)
    run(quiet, ca2, ["b.test"], by_order=False)
    run(loud, ca2, ["c.test"], by_order=False)
    assert "waiting 40 seconds" not in said(quiet)
    assert "wucme: 1 challenge(s) pending, waiting 40 seconds\n" in said(loud)


def test_the_challenges_are_watched_from_one_second_of_pending(ca: FakeCA) -> None:
    """WATCH_AFTER: an order pending for a second (here one Retry-After of 1 s) has its
    challenges read on every round from then on."""
    ca.order_stays_pending = True
    ca.validation_polls = 10**6
    ca.poll_retry_after = "1"
    a = registered(ca, poll_deadline=2.5)
    with pytest.raises(WucmeError):
        run(a, ca, ["a.test"])
    reads = [s.endpoint for s in ca.seen if s.payload == "" and s.endpoint in ("order", "challenge")]
    assert waits(a) == [1.0, 1.0, 0.5]
    assert reads == ["order", "order", "challenge", "order", "challenge", "order", "challenge"]


# --- refusals name what was refused --------------------------------------------------------------------

def test_a_refused_authorization_read(ca: FakeCA) -> None:
    a = registered(ca)
    order_url, authzs = order_for(a, ["a.test"])
    ca.inject("authz", problem(403, "unauthorized", "not yours"))
    with fails(AcmeProblem, f"^%WUCME-E-CAERROR, failed to retrieve auth {authzs[0]}: .*not yours"):
        authorize(a, authzs, order_url, **solve_with(a, Answerer(ca)))


def test_a_refused_challenge_poll(ca: FakeCA) -> None:
    ca.validation_polls = 1
    a = registered(ca)
    order_url, authzs = order_for(a, ["a.test"])
    url = challenge_of(ca, "a.test").url
    orig = ca._challenge
    ca._challenge = lambda ch, p: ca._problem(500, "serverInternal", "oops") if p == "" else orig(ch, p)  # type: ignore[method-assign]
    with fails(AcmeProblem, f"failed to poll challenge status at {url}: .*oops"):
        authorize(a, authzs, None, **solve_with(a, Answerer(ca)))


def test_a_refused_order_poll(ca: FakeCA) -> None:
    a = registered(ca)
    order_url, authzs = order_for(a, ["a.test"])
    ca.inject("order", problem(500, "serverInternal", "order store down"))
    with fails(AcmeProblem, f"failed to poll order status at {order_url}: .*order store down"):
        authorize(a, authzs, order_url, **solve_with(a, Answerer(ca)))


def test_a_refused_certificate_download(ca: FakeCA) -> None:
    a = registered(ca)
    ca.inject("cert", problem(500, "serverInternal", "no cert today"))
    csr, _ = csr_for(["a.test"])
    with fails(AcmeProblem, "failed to retrieve certificate at \\S+/cert/\\d+: .*no cert today"):
        cert_order(a, ["a.test"], csr, None, **solve_with(a, Answerer(ca)))


def test_a_refused_alternate_chain(ca: FakeCA) -> None:
    ca.alternates = 1
    a = registered(ca, alternate=1)
    orig = ca._download
    ca._download = lambda seen, cert, alt: ca._problem(404, "malformed", "gone") if alt else orig(seen, cert, alt)  # type: ignore[method-assign]
    csr, _ = csr_for(["a.test"])
    with fails(AcmeProblem, "failed to retrieve certificate at \\S+/cert/\\d+/1: .*gone"):
        cert_order(a, ["a.test"], csr, None, **solve_with(a, Answerer(ca)))


def test_alternate_chains_at_level_1(ca: FakeCA) -> None:
    ca.alternates = 2
    by_index = registered(ca, alternate=2, level=1)
    csr, _ = csr_for(["a.test"])
    cert_order(by_index, ["a.test"], csr, None, **solve_with(by_index, Answerer(ca)))
    cert = list(ca.certs.values())[-1]
    assert f"wucme: retrieving alternate certificate chain 2 at {cert.url}/2\n" in said(by_index)
    by_print = registered(ca, alternate=bytes.fromhex("deadbeef"), level=1)
    csr, _ = csr_for(["b.test"])
    cert_order(by_print, ["b.test"], csr, None, **solve_with(by_print, Answerer(ca)))
    cert = list(ca.certs.values())[-1]
    assert f"wucme: retrieving alternate certificate chain at {cert.url}/1\n" in said(by_print)
    assert [s.accept for s in ca.requests("cert")][-3:] == [PEM_CHAIN] * 3


# --- what the CA sends that cannot be used ------------------------------------------------------------

def test_an_empty_identifier_value(ca: FakeCA) -> None:
    a = registered(ca)
    order_url, authzs = order_for(a, ["a.test"])
    ca.authzs[int(authzs[0].rsplit("/", 1)[1])].ident = {"type": "dns", "value": ""}
    with fails(ProtocolViolation, f"^%WUCME-E-PROTOCOL, no valid identifier in auth {authzs[0]}$"):
        authorize(a, authzs, order_url, **solve_with(a, Answerer(ca)))


def test_an_authorization_without_a_list_of_challenges(ca: FakeCA) -> None:
    a = registered(ca)
    order_url, authzs = order_for(a, ["a.test"])
    authz = ca.authzs[int(authzs[0].rsplit("/", 1)[1])]
    orig = authz.json
    authz.json = lambda: {**orig(), "challenges": {"x": 1}}  # type: ignore[method-assign]
    with fails(ProtocolViolation, f"^%WUCME-E-PROTOCOL, no challenges in auth {authzs[0]}$"):
        authorize(a, authzs, order_url, **solve_with(a, Answerer(ca)))


def test_a_long_hostile_token_is_shown_cut_at_64(ca: FakeCA) -> None:
    token = "/" + "x" * 80
    with fails(ProtocolViolation, "failed to validate token") as info:
        key_auth_for("http-01", token, "thumb")
    assert info.value.text == f"failed to validate token {token[:64]!r} from the CA"


def test_an_unexpected_authorization_status_names_it(ca: FakeCA) -> None:
    a = registered(ca)
    order_url, authzs = order_for(a, ["a.test"])
    ca.authzs[int(authzs[0].rsplit("/", 1)[1])].status = "revoked"
    with fails(WucmeError, "AUTHSTATUS") as info:
        authorize(a, authzs, order_url, **solve_with(a, Answerer(ca)))
    assert info.value.ident == "AUTHSTATUS"


# --- uacme without a hook: the operator answers at the terminal -------------------------------------------

def test_the_prompt_offers_each_challenge_until_one_is_taken(ca: FakeCA, monkeypatch: pytest.MonkeyPatch) -> None:
    a = registered(ca, level=0)
    order_url, authzs = order_for(a, ["a.test"])
    monkeypatch.setattr("sys.stdin", io.StringIO("n\ny\n"))
    with pytest.raises(WucmeError):  # nobody publishes the answer: the validation fails
        authorize(a, authzs, order_url)
    [started] = [s for s in ca.requests("challenge") if s.payload == {}]
    dns = challenge_of(ca, "a.test", "dns-01")
    assert started.url == dns.url  # the second one offered, taken by "y"
    http = challenge_of(ca, "a.test")
    ka = key_auth_for("http-01", http.token, _thumb(a))
    assert (f"wucme: challenge=http-01 ident=a.test token={http.token} key_auth={ka}\n"
            "wucme: type 'y' followed by a newline to accept challenge, anything else to skip\n") in said(a)


def _thumb(a: AcmeSession) -> str:
    from wucme.core import jws
    return jws.jws_thumbprint(a.key)


def test_cert_issue_names_the_certificate_it_replaces(ca: FakeCA, tmp_path: Any) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    from .fakeca import ari_id
    a = registered(ca)
    old = ca.issue_direct(ec.generate_private_key(ec.SECP256R1()).public_key(), ["a.test"], account=ca.accounts[a.kid or ""])
    csr, _ = csr_for(["a.test"])
    cert_issue(a, ["a.test"], csr, str(tmp_path / "a-"), ari_id(old.leaf), **solve_with(a, Answerer(ca)))
    assert ca.requests("newOrder")[-1].payload["replaces"] == ari_id(old.leaf)


def test_a_ready_order_is_the_sessions_order(ca: FakeCA) -> None:
    ca.preauthorized = {"a.test"}
    a = registered(ca)
    csr, _ = csr_for(["a.test"])
    cert_order(a, ["a.test"], csr, None, **solve_with(a, Answerer(ca)))
    assert a.order is not None and a.order["identifiers"] == [{"type": "dns", "value": "a.test"}]


def slow_for(ca: FakeCA, ident: str, reads: int) -> None:
    """The CA says `processing` for *ident*'s first *reads* challenge reads (then the truth)."""
    seen = [0]
    orig = ca._challenge

    def answer(ch: Any, payload: Any) -> Any:
        resp = orig(ch, payload)
        if payload == "" and ch.authz.ident["value"] == ident and seen[0] < reads:
            seen[0] += 1
            resp.body = json.dumps({**json.loads(resp.body), "status": "processing"}).encode()
        return resp
    ca._challenge = answer  # type: ignore[method-assign]


def test_one_valid_challenge_does_not_end_the_wait_for_the_other(ca: FakeCA) -> None:
    a = registered(ca)
    slow_for(ca, "b.test", 2)
    answerer = Answerer(ca)
    run(a, ca, ["a.test", "b.test"], by_order=False, answerer=answerer)
    assert sorted(answerer.methods()[2:]) == [("done", "http-01", "a.test"), ("done", "http-01", "b.test")]


def test_a_timeout_ends_the_valid_challenge_with_done(ca: FakeCA) -> None:
    ca.order_stays_pending = True  # b.test fails inside the CA, which never says so
    ca.fail_challenge["b.test"] = {"type": NS + "connection", "detail": "no answer"}
    ca.poll_retry_after = "1"
    a = registered(ca, poll_deadline=2.5)
    slow_for(ca, "b.test", 10**6)
    answerer = Answerer(ca)
    with fails(WucmeError, "TIMEOUT"):
        run(a, ca, ["a.test", "b.test"], answerer=answerer)
    assert sorted(answerer.methods()[2:]) == [("done", "http-01", "a.test"), ("failed", "http-01", "b.test")]


def test_a_refused_alternate_chain_chosen_by_fingerprint(ca: FakeCA) -> None:
    ca.alternates = 1
    a = registered(ca, alternate=bytes.fromhex("deadbeef"))
    orig = ca._download
    ca._download = lambda seen, cert, alt: ca._problem(404, "malformed", "gone") if alt else orig(seen, cert, alt)  # type: ignore[method-assign]
    csr, _ = csr_for(["a.test"])
    with fails(AcmeProblem, "failed to retrieve certificate at \\S+/cert/\\d+/1: .*gone"):
        cert_order(a, ["a.test"], csr, None, **solve_with(a, Answerer(ca)))
