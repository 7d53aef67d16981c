"""Authorizations and challenges (wucme.uacme.authorize, RFC 8555 §7.5, §8) against the
in-memory CA, answered by the in-process answerer through uacme's hook protocol."""
from __future__ import annotations

import io
from typing import Any

import pytest

from wucme.core.ident import identifiers
from wucme.core.problem import AcmeProblem
from wucme.errors import PollTimeout, ProtocolViolation, WucmeError
from wucme.uacme.acme import AcmeSession, acme_post
from wucme.uacme.authorize import authorize

from .fakeca import NS, FakeCA, expected_answer, problem, thumbprint, wrong_type
from .support import Answerer, challenge_of, fails, registered, said, solve_with, waits


def order_for(a: AcmeSession, names: list[str]) -> tuple[str, list[str]]:
    r = acme_post(a, a.url("newOrder"), {"identifiers": identifiers(names)}).expect(201, what="order")
    return r.location or "", r.json["authorizations"]


def run(a: AcmeSession, answerer: Answerer | None, names: list[str], by_order: bool = True) -> str:
    """Order `names`, then authorize() them; the order URL."""
    order_url, authzs = order_for(a, names)
    kw: dict[str, Any] = solve_with(a, answerer) if answerer else {}
    authorize(a, authzs, order_url if by_order else None, **kw)
    return order_url


def reads(ca: FakeCA, endpoint: str) -> int:
    return sum(1 for s in ca.requests(endpoint) if s.payload == "")


# --- the hook protocol: begin, then done or failed ---------------------------------------------

def test_begin_then_done_with_uacmes_arguments(ca: FakeCA) -> None:
    a = registered(ca)
    answerer = Answerer(ca)
    run(a, answerer, ["a.test", "b.test"])
    thumb = thumbprint(a.key.public_key())
    ta, tb = challenge_of(ca, "a.test").token, challenge_of(ca, "b.test").token
    assert answerer.calls == [
        ("begin", "http-01", "a.test", ta, f"{ta}.{thumb}"),
        ("begin", "http-01", "b.test", tb, f"{tb}.{thumb}"),
        ("done", "http-01", "a.test", ta, f"{ta}.{thumb}"),
        ("done", "http-01", "b.test", tb, f"{tb}.{thumb}"),
    ]
    assert [s.payload for s in ca.requests("challenge")] == [{}, {}]
    assert [s.url for s in ca.requests("challenge")] == [challenge_of(ca, n).url for n in ("a.test", "b.test")]
    assert ca.published == {}  # done withdrew every answer


@pytest.mark.parametrize("ch_type", ["dns-01", "tls-alpn-01"])
def test_dns_and_tls_alpn_get_the_digest(ca: FakeCA, ch_type: str) -> None:
    ca.challenge_types = [ch_type]
    a = registered(ca)
    answerer = Answerer(ca)
    run(a, answerer, ["a.test"])
    ch = challenge_of(ca, "a.test", ch_type)
    auth = answerer.calls[0][4]
    assert auth == expected_answer(ch_type, ch.token, a.key.public_key())
    assert len(auth) == 43 and "." not in auth and ch.status == "valid"


def test_a_declined_challenge_falls_back_to_the_next(ca: FakeCA) -> None:
    a = registered(ca)
    answerer = Answerer(ca, decline=("http-01",))
    run(a, answerer, ["a.test"])
    assert answerer.methods() == [("begin", "http-01", "a.test"), ("begin", "dns-01", "a.test"),
                                  ("done", "dns-01", "a.test")]
    assert [s.url for s in ca.requests("challenge")] == [challenge_of(ca, "a.test", "dns-01").url]
    assert "challenge http-01 declined" in said(a)


def test_challenges_not_pending_are_not_offered(ca: FakeCA) -> None:
    a = registered(ca)
    order_url, authzs = order_for(a, ["a.test"])
    challenge_of(ca, "a.test", "http-01").status = "invalid"
    answerer = Answerer(ca)
    authorize(a, authzs, order_url, **solve_with(a, answerer))
    assert answerer.methods()[0] == ("begin", "dns-01", "a.test")


def test_no_challenge_accepted_fails_and_the_others_hear_failed(ca: FakeCA) -> None:
    a = registered(ca)
    answerer = Answerer(ca, decline=("b.test",))
    with fails(WucmeError, "^%WUCME-E-NOCHALLENGE, no challenge accepted for b.test$"):
        run(a, answerer, ["a.test", "b.test"])
    assert answerer.methods() == [
        ("begin", "http-01", "a.test"),
        ("begin", "http-01", "b.test"), ("begin", "dns-01", "b.test"), ("begin", "tls-alpn-01", "b.test"),
        ("failed", "http-01", "a.test"),
    ]
    assert ca.requests("challenge") == [] and ca.published == {}


def test_a_hook_that_aborts_stops_everything(ca: FakeCA) -> None:
    a = registered(ca)
    answerer = Answerer(ca, abort=("http-01",))
    with fails(WucmeError, "HOOKERR, hook .* ended abnormally"):
        run(a, answerer, ["a.test"])
    assert answerer.methods() == [("begin", "http-01", "a.test")]
    assert ca.requests("challenge") == []


def test_a_refused_start_ends_every_hook_with_failed(ca: FakeCA) -> None:
    a = registered(ca)
    answerer = Answerer(ca)
    order_url, authzs = order_for(a, ["a.test", "b.test"])
    ca.inject("challenge", problem(400, "malformed", "challenge already started"))
    with fails(AcmeProblem, f"failed to start challenge at {challenge_of(ca, 'a.test').url}: "
               ".*challenge already started"):
        authorize(a, authzs, order_url, **solve_with(a, answerer))
    assert answerer.methods()[2:] == [("failed", "http-01", "a.test"), ("failed", "http-01", "b.test")]
    assert ca.published == {}


# --- failed challenges (RFC 8555 §7.1.3: the challenge's error) --------------------------------

def test_a_failed_challenge_reports_the_cas_problem(ca: FakeCA) -> None:
    ca.fail_challenge["b.test"] = {
        "type": NS + "unauthorized",
        "detail": "Invalid response from http://b.test/.well-known/acme-challenge/x: 404"}
    a = registered(ca)
    answerer = Answerer(ca)
    with fails(WucmeError, "^%WUCME-E-CHALLFAIL, challenge failed:\n"
               "  b.test \\(http-01\\): invalid: urn:ietf:params:acme:error:unauthorized "
               "Invalid response from http://b.test/.well-known/acme-challenge/x: 404$"):
        run(a, answerer, ["a.test", "b.test"])
    assert answerer.methods()[2:] == [("done", "http-01", "a.test"), ("failed", "http-01", "b.test")]
    # the order said invalid; each challenge was read once to learn which failed and why
    assert reads(ca, "order") == 1 and reads(ca, "challenge") == 2


def test_an_order_left_pending_still_ends_at_the_first_invalid_challenge(ca: FakeCA) -> None:
    """A CA that leaves the order pending after an authorization failed (RFC 8555 §7.1.6 says
    it becomes invalid): the challenges are watched once the order lingers, and the first
    invalid one ends the wait with its problem, long before the poll deadline."""
    ca.order_stays_pending = True
    ca.validation_polls = 3
    ca.fail_challenge["b.test"] = {"type": NS + "unauthorized", "detail": "no such token"}
    a = registered(ca)
    answerer = Answerer(ca)
    with fails(WucmeError, "CHALLFAIL.*b.test \\(http-01\\): invalid: "
               "urn:ietf:params:acme:error:unauthorized no such token"):
        run(a, answerer, ["a.test", "b.test"])
    assert answerer.methods()[2:] == [("done", "http-01", "a.test"), ("failed", "http-01", "b.test")]
    assert sum(waits(a)) < 3.0


def test_a_challenge_answered_invalid_at_its_start_ends_the_order_without_polling(ca: FakeCA) -> None:
    """The start POST itself says invalid (the CA validated at once) and the order stays pending:
    nothing is polled, the hook hears `failed` and the CA's error is reported."""
    ca.order_stays_pending = ca.validate_on_start = True
    ca.fail_challenge["a.test"] = {"type": NS + "dns", "detail": "no address for a.test"}
    a = registered(ca)
    answerer = Answerer(ca)
    with fails(WucmeError, "CHALLFAIL.*a.test \\(http-01\\): invalid: "
               "urn:ietf:params:acme:error:dns no address for a.test"):
        run(a, answerer, ["a.test"])
    assert answerer.methods()[-1] == ("failed", "http-01", "a.test")
    assert reads(ca, "order") == 0 and waits(a) == []


def test_a_lingering_order_has_only_the_challenges_not_yet_valid_read(ca: FakeCA) -> None:
    """Order pending past WATCH_AFTER: each round reads the order and the challenges not yet
    known valid; it ends as soon as the order is ready."""
    ca.validation_polls = 12
    a = registered(ca)
    answerer = Answerer(ca)
    run(a, answerer, ["a.test", "b.test"])
    assert [m for m, *_ in answerer.methods()].count("done") == 2
    assert 0 < reads(ca, "challenge") < 2 * reads(ca, "order")


def test_a_wrong_answer_fails_validation(ca: FakeCA) -> None:
    a = registered(ca)
    answerer = Answerer(ca, garble=True)
    with fails(WucmeError, "a.test \\(http-01\\): invalid: urn:ietf:params:acme:error:unauthorized "
               "key authorization .* does not match"):
        run(a, answerer, ["a.test"])
    assert answerer.methods()[-1] == ("failed", "http-01", "a.test")


def test_nothing_answers_without_a_hook_after_y_on_stdin(ca: FakeCA, monkeypatch: pytest.MonkeyPatch) -> None:
    """uacme without -h: the challenge is shown and 'y' accepts it; nothing published, so the
    CA finds nothing."""
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    a = registered(ca)
    with fails(WucmeError, "CHALLFAIL.*a.test \\(http-01\\): invalid: urn:ietf:params:acme:error:connection"):
        run(a, None, ["a.test"])
    assert "type 'y' followed by a newline to accept challenge" in said(a)
    assert len(ca.requests("challenge")) == 2  # started, then read to learn why it failed


def test_skipping_every_challenge_on_stdin(ca: FakeCA, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("n\nn\nn\n"))
    a = registered(ca)
    with fails(WucmeError, "NOCHALLENGE, no challenge accepted for a.test"):
        run(a, None, ["a.test"])
    assert ca.requests("challenge") == []


# --- polling: the order, or each challenge ------------------------------------------------------

def test_with_the_order_url_only_the_order_is_polled(ca: FakeCA) -> None:
    ca.validation_polls = 2
    a = registered(ca)
    run(a, Answerer(ca), ["a.test", "b.test", "c.test"])
    assert reads(ca, "order") == 3 and reads(ca, "challenge") == 0
    assert waits(a) == pytest.approx([0.01, 0.02])


def test_without_the_order_url_each_challenge_is_polled(ca: FakeCA) -> None:
    ca.validation_polls = 2
    a = registered(ca)
    answerer = Answerer(ca)
    run(a, answerer, ["a.test", "b.test", "c.test"], by_order=False)
    assert reads(ca, "order") == 0 and reads(ca, "challenge") == 9
    assert waits(a) == pytest.approx([0.01, 0.02])  # one wait a round, not one per challenge
    assert [m for m, *_ in answerer.methods()].count("done") == 3


@pytest.mark.parametrize("by_order", [True, False], ids=["order", "challenges"])
def test_polls_honour_retry_after(ca: FakeCA, by_order: bool) -> None:
    ca.validation_polls, ca.poll_retry_after = 2, "3"
    a = registered(ca)
    run(a, Answerer(ca), ["a.test", "b.test"], by_order=by_order)
    assert waits(a) == [3.0, 3.0]


@pytest.mark.parametrize(("by_order", "what"), [(True, "order status at https://ca.test/order/\\d+"),
                                                 (False, "challenge status")], ids=["order", "challenges"])
def test_poll_timeout_ends_with_failed(ca: FakeCA, by_order: bool, what: str) -> None:
    ca.validation_polls = 10**6
    a = registered(ca, poll_deadline=1.0)
    answerer = Answerer(ca)
    with fails(PollTimeout, f"^%WUCME-E-TIMEOUT, timeout while polling {what}, giving up$"):
        run(a, answerer, ["a.test", "b.test"], by_order=by_order)
    assert sum(waits(a)) == pytest.approx(1.0)
    assert answerer.methods()[2:] == [("failed", "http-01", "a.test"), ("failed", "http-01", "b.test")]


# --- authorizations the CA already holds, or will not have ---------------------------------------

def test_valid_authorizations_are_skipped(ca: FakeCA) -> None:
    ca.preauthorized = {"a.test"}
    a = registered(ca)
    answerer = Answerer(ca)
    run(a, answerer, ["a.test", "b.test"])
    assert {ident for _, _, ident in answerer.methods()} == {"b.test"}


def test_all_valid_means_no_hook_and_no_challenge(ca: FakeCA) -> None:
    ca.preauthorized = {"a.test", "b.test"}
    a = registered(ca)
    answerer = Answerer(ca)
    run(a, answerer, ["a.test", "b.test"])
    assert answerer.calls == [] and ca.requests("challenge") == [] and reads(ca, "order") == 0


def test_an_authorization_neither_pending_nor_valid(ca: FakeCA) -> None:
    a = registered(ca)
    order_url, authzs = order_for(a, ["a.test"])
    ca.authzs[int(authzs[0].rsplit("/", 1)[1])].status = "deactivated"
    answerer = Answerer(ca)
    with fails(WucmeError, f"AUTHSTATUS, unexpected auth status \\(deactivated\\) at {authzs[0]}$"):
        authorize(a, authzs, order_url, **solve_with(a, answerer))
    assert answerer.calls == []


def test_an_authorization_that_is_not_json(ca: FakeCA) -> None:
    a = registered(ca)
    order_url, authzs = order_for(a, ["a.test"])
    ca.inject("authz", wrong_type("text/html"))
    with fails(ProtocolViolation, f"authorization at {authzs[0]} is not a JSON object"):
        authorize(a, authzs, order_url, **solve_with(a, Answerer(ca)))


def test_an_identifier_of_another_kind(ca: FakeCA) -> None:
    a = registered(ca)
    order_url, authzs = order_for(a, ["a.test"])
    ca.authzs[int(authzs[0].rsplit("/", 1)[1])].ident = {"type": "email", "value": "me@a.test"}
    answerer = Answerer(ca)
    with fails(ProtocolViolation, f"no valid identifier in auth {authzs[0]}"):
        authorize(a, authzs, order_url, **solve_with(a, answerer))
    assert answerer.calls == []


def test_a_hostile_token_never_reaches_the_hook(ca: FakeCA) -> None:
    ca.make_token = lambda ident, ch_type: "../../../etc/passwd"
    a = registered(ca)
    answerer = Answerer(ca)
    with fails(ProtocolViolation, "failed to validate token '../../../etc/passwd' from the CA"):
        run(a, answerer, ["a.test"])
    assert answerer.calls == []


# --- many names at once --------------------------------------------------------------------------

def test_many_authorizations_in_parallel(ca: FakeCA) -> None:
    names = [f"n{i}.test" for i in range(40)]
    ca.validation_polls = 1
    a = registered(ca, workers=16)
    answerer = Answerer(ca)
    run(a, answerer, names)
    for name in names:
        mine = [m for m, _, ident in answerer.methods() if ident == name]
        assert mine == ["begin", "done"], name
    assert len(ca.requests("authz")) == 40
    assert sorted(s.url for s in ca.requests("challenge")) == sorted(challenge_of(ca, n).url for n in names)
    assert all(challenge_of(ca, n).status == "valid" for n in names)
    assert reads(ca, "order") == 2
