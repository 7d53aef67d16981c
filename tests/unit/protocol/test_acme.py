"""The session and its requests (wucme.uacme.acme): directory, nonces, signing, retries, polling.

Every scenario runs against the in-memory CA; waits are recorded, never taken.
"""
from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor
from email.utils import formatdate

import pytest

from wucme.core.problem import AcmeProblem, BadNonce, RateLimited
from wucme.errors import PollTimeout, ProtocolViolation, WucmeError
from wucme.uacme.acme import AcmeSession, acme_bootstrap, acme_get, acme_nonce, acme_poll, acme_post

from .fakeca import (
    BASE, DIRECTORY, Answer, FakeCA, answer_lost, bad_nonce, link_down, malformed_json, problem, rate_limited,
    unavailable, wrong_type)
from .support import fails, new_session, registered, said, waits

ORDER = {"identifiers": [{"type": "dns", "value": "a.test"}]}


def http_date(seconds_from_now: float) -> str:
    return formatdate(time.time() + seconds_from_now, usegmt=True)


# --- the directory (RFC 8555 §7.1.1) -----------------------------------------------------------

def test_bootstrap_reads_the_directory(ca: FakeCA) -> None:
    a = new_session(ca)
    acme_bootstrap(a)
    assert a.dir["newOrder"] == f"{BASE}/new-order"
    assert ca.trail() == ["GET directory 200"]
    assert "fetching directory at https://ca.test/dir" in said(a)  # uacme 1.7.4's words


def test_a_directory_without_new_order_is_refused(ca: FakeCA) -> None:
    ca.without = {"newOrder"}
    with pytest.raises(ProtocolViolation, match="failed to find newOrder URL in directory"):
        acme_bootstrap(new_session(ca))


@pytest.mark.parametrize(("fault", "match"), [
    (wrong_type("text/html"), "directory at https://ca.test/dir is not a JSON object"),
    (malformed_json(), "unparsable JSON from https://ca.test/dir"),
    (unavailable(), "failed to retrieve directory at https://ca.test/dir: unexpected HTTP 503"),
    (problem(500, "serverInternal", "database on fire"),
     "failed to retrieve directory at .*serverInternal \\(HTTP 500\\): database on fire"),
], ids=["html", "broken-json", "503-html", "500-problem"])
def test_a_bad_directory_answer_is_an_error_not_a_retry(ca: FakeCA, fault: Answer, match: str) -> None:
    ca.inject("directory", fault)
    a = new_session(ca)
    with fails(WucmeError, match):
        acme_bootstrap(a)
    assert len(ca.requests("directory")) == 1 and waits(a) == []


def test_profile_must_be_one_the_ca_offers(ca: FakeCA) -> None:
    ca.profiles = {"classic": "90 days", "shortlived": "6 days"}
    with pytest.raises(WucmeError, match=r"profile 'tlsserver' not offered by the CA \(offered: classic, shortlived\)"):
        acme_bootstrap(new_session(ca, profile="tlsserver"))
    acme_bootstrap(new_session(ca, profile="shortlived"))


# --- rateLimited and transport failures on GET (RFC 8555 §6.6) -------------------------------------

@pytest.mark.parametrize(("status", "retry_after", "wait"), [
    (429, "7", 7.0),
    (503, "7", 7.0),
    (429, None, 60.0),
    (429, "0", 60.0),
    (429, "soon", 60.0),
    (429, "-5", 60.0),
], ids=["429-seconds", "503-seconds", "none", "zero", "garbage", "negative"])
def test_rate_limited_directory_waits_and_retries(ca: FakeCA, status: int, retry_after: str | None,
                                                  wait: float) -> None:
    ca.inject("directory", rate_limited(retry_after, status))
    a = new_session(ca)
    acme_bootstrap(a)
    assert ca.trail() == [f"GET directory {status}", "GET directory 200"]
    assert waits(a) == [wait]
    assert f"rate limited at https://ca.test/dir, waiting {wait:g} seconds" in said(a)


def test_retry_after_as_http_date(ca: FakeCA) -> None:
    ca.inject("directory", rate_limited(http_date(120)))
    a = new_session(ca)
    acme_bootstrap(a)
    (wait,) = waits(a)
    assert 117 < wait <= 121


def test_rate_limited_gives_up_after_three_answers(ca: FakeCA) -> None:
    ca.inject("directory", *[rate_limited("7")] * 3)
    a = new_session(ca)
    with fails(RateLimited, "^%WUCME-E-CAERROR, failed to retrieve directory at https://ca.test/dir: "
               "urn:ietf:params:acme:error:rateLimited \\(HTTP 429\\): too many requests$"):
        acme_bootstrap(a)
    assert waits(a) == [7.0, 7.0]  # no wait after the last answer
    assert len(ca.requests("directory")) == 3


def test_a_bare_503_is_not_a_rate_limit(ca: FakeCA) -> None:
    ca.inject("directory", unavailable("7"))
    a = new_session(ca)
    r = acme_get(a, DIRECTORY)
    assert r.status == 503 and r.problem() is None and waits(a) == []


def test_link_failures_are_tried_three_times(ca: FakeCA) -> None:
    ca.inject("directory", link_down(), link_down())
    a = new_session(ca)
    acme_bootstrap(a)
    assert waits(a) == [5.0, 5.0]
    assert "GET https://ca.test/dir failed: link down (scripted), retrying in 5 s" in said(a)


def test_link_failure_on_the_third_try_is_fatal_without_a_last_wait(ca: FakeCA) -> None:
    ca.inject("directory", link_down(), link_down(), link_down())
    a = new_session(ca)
    with pytest.raises(WucmeError, match="GET https://ca.test/dir failed: link down") as e:
        acme_bootstrap(a)
    assert e.value.message().startswith("%WUCME-E-NETERR, ")
    assert waits(a) == [5.0, 5.0]


# --- nonces (RFC 8555 §6.5, §7.2) -----------------------------------------------------------------

def test_new_nonce_by_head(ca: FakeCA) -> None:
    a = new_session(ca)
    acme_bootstrap(a)
    n = acme_nonce(a)
    (seen,) = ca.requests("newNonce")
    assert seen.method == "HEAD" and seen.nonce_given == n


@pytest.mark.parametrize(("answer", "match"), [
    (Answer(200), "no Replay-Nonce from https://ca.test/new-nonce"),
    (Answer(200, headers=(("Replay-Nonce", "not a+nonce"),)), "no Replay-Nonce"),
    (Answer(405, body=b"", content_type="text/plain"), "failed to retrieve nonce: unexpected HTTP 405"),
], ids=["missing", "not-base64url", "405"])
def test_new_nonce_failures(ca: FakeCA, answer: Answer, match: str) -> None:
    a = new_session(ca)
    acme_bootstrap(a)
    ca.inject("newNonce", answer)
    with pytest.raises(WucmeError, match=match):
        acme_nonce(a)


def test_each_answer_feeds_the_next_post(ca: FakeCA) -> None:
    """Nonces are pooled from every answer: one newNonce for a whole conversation."""
    a = registered(ca)
    for _ in range(3):
        acme_post(a, a.url("newOrder"), ORDER)
    assert len(ca.requests("newNonce")) == 1
    posts = ca.requests(method="POST")
    for before, after in zip(posts, posts[1:]):
        assert after.protected and after.protected["nonce"] == before.nonce_given


class Thief(list[str]):
    """The session's nonce pool, with another thread taking each nonce the moment it is
    pooled: the interleaving of two authorization threads, made deterministic."""

    def append(self, nonce: str) -> None:
        super().append(nonce)
        self.stolen = getattr(self, "stolen", 0) + 1
        self.pop()


def test_a_fetched_nonce_is_not_lost_to_another_thread(ca: FakeCA) -> None:
    """RFC 8555 §7.2: the nonce newNonce hands out is the one the next request signs with,
    even when other threads share the pool."""
    a = registered(ca)
    a._nonces = Thief()
    for _ in range(3):
        assert acme_post(a, a.url("newOrder"), ORDER).status == 201
    assert len(ca.orders) == 3
    assert [s.method for s in ca.seen[-6:]] == ["HEAD", "POST"] * 3


def test_many_threads_share_the_nonces_of_new_nonce(ca: FakeCA) -> None:
    """Sixteen threads, a CA that hands out nonces only from newNonce: no POST goes without."""
    ca.nonce_on_posts = False
    a = registered(ca)
    url = acme_post(a, a.url("newOrder"), ORDER).location or ""
    errors: list[str] = []
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        with ThreadPoolExecutor(16) as pool:
            for r in pool.map(lambda _: acme_post(a, url, "").status, range(320)):
                if r != 200:
                    errors.append(str(r))
    except WucmeError as e:
        errors.append(e.text)
    finally:
        sys.setswitchinterval(old)
    assert errors == []


def test_jwk_until_the_account_is_known_then_kid(ca: FakeCA) -> None:
    a = registered(ca)
    acme_post(a, a.url("newOrder"), ORDER)
    for seen in ca.requests("newAccount"):
        assert seen.protected and "jwk" in seen.protected and "kid" not in seen.protected
    (order,) = ca.requests("newOrder")
    assert order.protected and order.protected["kid"] == a.kid and "jwk" not in order.protected
    assert order.protected["url"] == f"{BASE}/new-order" and order.protected["alg"] == "ES256"


def test_post_as_get_has_an_empty_payload(ca: FakeCA) -> None:
    a = registered(ca)
    url = acme_post(a, a.url("newOrder"), ORDER).location or ""
    acme_post(a, url, "")
    assert ca.requests("order")[0].payload == ""


# --- badNonce (RFC 8555 §6.5) ------------------------------------------------------------------

def test_bad_nonce_is_retried_with_the_nonce_it_carried(ca: FakeCA) -> None:
    a = registered(ca, max_badnonce=3)
    ca.inject("newOrder", bad_nonce(), bad_nonce())
    assert acme_post(a, a.url("newOrder"), ORDER).status == 201
    tries = ca.requests("newOrder")
    assert [s.status for s in tries] == [400, 400, 201]
    for refused, retry in zip(tries, tries[1:]):
        assert retry.protected and retry.protected["nonce"] == refused.nonce_given
        assert retry.payload == ORDER
    assert waits(a) == [] and len(ca.orders) == 1
    assert "bad nonce at https://ca.test/new-order, retrying (2)" in said(a)


@pytest.mark.parametrize("bound", [3, 20])
def test_bad_nonce_retries_are_bounded(ca: FakeCA, bound: int) -> None:
    a = registered(ca, **({"max_badnonce": bound} if bound != 20 else {}))
    assert a.max_badnonce == bound
    ca.inject("newOrder", *[bad_nonce()] * bound)
    with pytest.raises(BadNonce, match="badNonce"):
        acme_post(a, a.url("newOrder"), ORDER)
    assert len(ca.requests("newOrder")) == bound and ca.orders == {}


def test_bad_nonce_one_below_the_bound_succeeds(ca: FakeCA) -> None:
    a = registered(ca)
    ca.inject("newOrder", *[bad_nonce()] * (a.max_badnonce - 1))
    assert acme_post(a, a.url("newOrder"), ORDER).status == 201
    assert len(ca.requests("newOrder")) == a.max_badnonce


# --- rateLimited on POST ----------------------------------------------------------------------------

def test_rate_limited_post_waits_then_resends(ca: FakeCA) -> None:
    a = registered(ca)
    ca.inject("newOrder", rate_limited("30"))
    assert acme_post(a, a.url("newOrder"), ORDER).status == 201
    first, second = ca.requests("newOrder")
    assert (first.status, second.status) == (429, 201)
    assert first.payload == second.payload == ORDER
    assert first.protected and second.protected
    assert first.protected["nonce"] != second.protected["nonce"]
    assert waits(a) == [30.0]
    assert "rate limited at https://ca.test/new-order, waiting 30 seconds" in said(a)


def test_rate_limited_post_gives_up_after_three_answers(ca: FakeCA) -> None:
    a = registered(ca)
    ca.inject("newOrder", *[rate_limited("9")] * 3)
    r = acme_post(a, a.url("newOrder"), ORDER)
    assert r.status == 429 and isinstance(r.problem(), RateLimited)
    assert waits(a) == [9.0, 9.0] and len(ca.requests("newOrder")) == 3 and ca.orders == {}


def test_a_lost_answer_is_sent_again(ca: FakeCA) -> None:
    """The CA made the order but its answer was lost: the transport sends the same JWS
    again after 5 s (curlwrap.c's tries), the CA refuses the spent nonce, the badNonce
    answer's nonce signs the third try.  The CA then holds two orders; the client the second."""
    a = registered(ca)
    ca.inject("newOrder", answer_lost())
    r = acme_post(a, a.url("newOrder"), ORDER)
    first, again, third = ca.requests("newOrder")
    assert [s.status for s in (first, again, third)] == [201, 400, 201]
    assert again.protected == first.protected
    assert third.protected and third.protected["nonce"] == again.nonce_given
    assert waits(a) == [5.0] and len(ca.orders) == 2
    assert r.location == list(ca.orders.values())[-1].url


def test_rate_limited_and_bad_nonce_together(ca: FakeCA) -> None:
    a = registered(ca, max_badnonce=3)
    ca.inject("newOrder", bad_nonce(), rate_limited("4"), bad_nonce(), rate_limited("5"))
    assert acme_post(a, a.url("newOrder"), ORDER).status == 201
    assert [s.status for s in ca.requests("newOrder")] == [400, 429, 400, 429, 201]
    assert waits(a) == [4.0, 5.0]


def test_other_problems_come_back_to_the_caller(ca: FakeCA) -> None:
    a = registered(ca)
    ca.inject("newOrder", problem(400, "rejectedIdentifier", "a.test is on a blocklist"))
    r = acme_post(a, a.url("newOrder"), ORDER)
    prob = r.problem()
    assert r.status == 400 and prob is not None and prob.code == "rejectedIdentifier"
    with fails(AcmeProblem, "failed to submit order: .*rejectedIdentifier .*blocklist"):
        r.expect(201, what="submit order")
    assert len(ca.requests("newOrder")) == 1


def test_a_problem_must_say_it_is_one(ca: FakeCA) -> None:
    """RFC 8555 §6.7: problems are application/problem+json; a badNonce labelled plain JSON
    is not one (uacme's acme_error() reads the type the same way) and is not retried."""
    a = registered(ca)
    ca.inject("newOrder", Answer(400, "badNonce", "stale", content_type="application/json"))
    r = acme_post(a, a.url("newOrder"), ORDER)
    assert r.status == 400 and r.problem() is None
    with fails(ProtocolViolation, "failed to submit order: unexpected HTTP 400 from https://ca.test/new-order"):
        r.expect(201, what="submit order")
    assert len(ca.requests("newOrder")) == 1


def test_an_answer_that_is_not_json_after_all(ca: FakeCA) -> None:
    a = registered(ca)
    ca.inject("newOrder", malformed_json())
    with fails(ProtocolViolation, "^%WUCME-E-PROTOCOL, unparsable JSON from https://ca.test/new-order$"):
        acme_post(a, a.url("newOrder"), ORDER)


def test_no_signed_post_to_plain_http(ca: FakeCA) -> None:
    a = registered(ca)
    before = len(ca.seen)
    with pytest.raises(ProtocolViolation, match="refusing non-https URL from the CA: http://ca.test/order/1"):
        acme_post(a, "http://ca.test/order/1", "")
    assert len(ca.seen) == before


# --- polling (RFC 8555 §7.1.6, §7.5.1) -------------------------------------------------------------

def _all_valid_order(ca: FakeCA, a: AcmeSession) -> str:
    ca.preauthorized = {"a.test"}
    return acme_post(a, a.url("newOrder"), ORDER).location or ""


def test_poll_backs_off_from_the_first_wait(ca: FakeCA) -> None:
    ca.order_pending_polls = 4
    a = registered(ca)
    r = acme_poll(a, _all_valid_order(ca, a), ("pending",), "order")
    assert r.jstr("status") == "ready"
    assert waits(a) == pytest.approx([0.01, 0.02, 0.04, 0.08])
    assert len(ca.requests("order")) == 5
    assert "order pending, waiting 0.04 seconds" in said(a)


def test_poll_backoff_stops_at_the_ceiling(ca: FakeCA) -> None:
    ca.order_pending_polls = 6
    a = registered(ca, poll_ceiling=0.1)
    acme_poll(a, _all_valid_order(ca, a), ("pending",), "order")
    assert waits(a) == pytest.approx([0.01, 0.02, 0.04, 0.08, 0.1, 0.1])


@pytest.mark.parametrize(("retry_after", "expect"), [("3", 3.0), ("0", 0.01), ("x", 0.01)],
                         ids=["seconds", "zero-means-ours", "garbage-means-ours"])
def test_poll_honours_retry_after(ca: FakeCA, retry_after: str, expect: float) -> None:
    ca.order_pending_polls, ca.poll_retry_after = 2, retry_after
    a = registered(ca)
    acme_poll(a, _all_valid_order(ca, a), ("pending",), "order")
    assert waits(a)[0] == pytest.approx(expect) and len(waits(a)) == 2


def test_poll_honours_retry_after_as_http_date(ca: FakeCA) -> None:
    ca.order_pending_polls, ca.poll_retry_after = 1, http_date(90)
    a = registered(ca)
    acme_poll(a, _all_valid_order(ca, a), ("pending",), "order")
    (wait,) = waits(a)
    assert 87 < wait <= 91


def test_poll_gives_up_at_the_deadline(ca: FakeCA) -> None:
    ca.order_pending_polls = 10**6
    a = registered(ca, poll_deadline=1.0)
    url = _all_valid_order(ca, a)
    with pytest.raises(PollTimeout, match=f"timeout while polling order status at {url}, giving up"):
        acme_poll(a, url, ("pending",), "order")
    assert sum(waits(a)) == pytest.approx(1.0)
    assert waits(a) == pytest.approx([0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.37])


def test_retry_after_is_bounded_by_the_deadline(ca: FakeCA) -> None:
    ca.order_pending_polls, ca.poll_retry_after = 10**6, "86400"
    a = registered(ca, poll_deadline=100.0)
    with pytest.raises(PollTimeout):
        acme_poll(a, _all_valid_order(ca, a), ("pending",), "order")
    assert waits(a) == [100.0]


def test_poll_refuses_a_problem(ca: FakeCA) -> None:
    a = registered(ca)
    url = _all_valid_order(ca, a)
    ca.inject("order", problem(404, "malformed", "no such order"))
    with fails(AcmeProblem, f"failed to poll order status at {url}: .*no such order"):
        acme_poll(a, url, ("pending",), "order")
