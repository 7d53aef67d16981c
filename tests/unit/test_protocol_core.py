"""The protocol core without I/O: problem documents, Retry-After, polling, identifiers."""
from __future__ import annotations

import json
from email.utils import format_datetime
from datetime import datetime, timezone

import pytest

from wucme.core.ident import MAX_IDENTIFIERS, identifiers, validate_identifier_str, validate_identifiers
from wucme.core.problem import (
    AcmeProblem, AlreadyReplaced, BadNonce, MAX_DETAIL, RateLimited, problem_code)
from wucme.core.retry import Backoff, retry_after
from wucme.errors import BadIdentifier
from wucme.uacme.authorize import key_auth_for

NOW = datetime(2026, 11, 27, 12, 0, 0, tzinfo=timezone.utc).timestamp()


# --- problem documents (RFC 8555 §6.7) ---------------------------------------

def test_problem_types_map_to_their_classes() -> None:
    p = AcmeProblem.from_json(400, {"type": "urn:ietf:params:acme:error:badNonce", "detail": "old"})
    assert isinstance(p, BadNonce) and p.code == "badNonce" and p.status == 400
    assert isinstance(AcmeProblem.from_json(429, {"type": "urn:ietf:params:acme:error:rateLimited"}),
                      RateLimited)
    assert isinstance(AcmeProblem.from_json(409, {"type": "urn:ietf:params:acme:error:alreadyReplaced"}),
                      AlreadyReplaced)
    unknown = AcmeProblem.from_json(400, {"type": "urn:example:weird", "detail": "x"})
    assert type(unknown) is AcmeProblem and unknown.code == "urn:example:weird"


def test_acme_v1_namespace_is_understood() -> None:
    assert problem_code("urn:acme:error:unauthorized") == "unauthorized"


def test_problem_message_carries_type_detail_and_subproblems() -> None:
    doc = {"type": "urn:ietf:params:acme:error:rejectedIdentifier", "detail": "two bad names",
           "subproblems": [{"type": "urn:ietf:params:acme:error:rejectedIdentifier",
                            "detail": "blocked", "identifier": {"type": "dns", "value": "a.example"}}]}
    p = AcmeProblem.from_json(400, doc)
    text = p.message()
    assert text.startswith("%WUCME-E-CAERROR, urn:ietf:params:acme:error:rejectedIdentifier (HTTP 400): two bad names")
    assert "a.example: urn:ietf:params:acme:error:rejectedIdentifier: blocked" in text
    assert p.subproblems[0].identifier == {"type": "dns", "value": "a.example"}


def test_hostile_detail_is_cleaned_and_bounded() -> None:
    p = AcmeProblem.from_json(400, {"type": "x", "detail": "line\r\nInjected: yes\x1b[31m" + "A" * 10**6})
    assert "\r" not in p.detail and "\n" not in p.detail and "\x1b" not in p.detail
    assert len(p.detail) <= MAX_DETAIL + 20


def test_unparsable_problem_body_still_gives_a_problem() -> None:
    p = AcmeProblem.from_body(500, b"<html>oops</html>")
    assert p.status == 500 and "not JSON" in p.detail
    p = AcmeProblem.from_body(400, json.dumps({"type": "urn:ietf:params:acme:error:malformed"}).encode())
    assert p.code == "malformed"


# --- Retry-After (RFC 9110 §10.2.3) -----------------------------------------

@pytest.mark.parametrize("value, expected", [
    ("120", 120.0),
    (format_datetime(datetime.fromtimestamp(NOW + 90, timezone.utc), usegmt=True), 90.0),
    ((datetime.fromtimestamp(NOW + 60, timezone.utc)).strftime("%A, %d-%b-%y %H:%M:%S GMT"), 60.0),
    ((datetime.fromtimestamp(NOW + 30, timezone.utc)).strftime("%a %b %d %H:%M:%S %Y"), 30.0),
])
def test_retry_after_forms(value: str, expected: float) -> None:
    assert retry_after(value, 7, now=NOW) == pytest.approx(expected)


@pytest.mark.parametrize("value", [None, "", "soon", "-5", "0",
                                   format_datetime(datetime.fromtimestamp(NOW - 10, timezone.utc), usegmt=True)])
def test_retry_after_falls_back_to_the_default(value: str | None) -> None:
    assert retry_after(value, 7, now=NOW) == 7


def test_retry_after_is_capped_at_a_day() -> None:
    assert retry_after("99999999", 1) == 86400


def test_backoff_starts_below_a_second_doubles_and_stops_at_the_deadline() -> None:
    b = Backoff(first=0.25, ceiling=2, deadline=6)
    waits = []
    while (w := b.next()) is not None:
        waits.append(w)
    assert waits[:4] == [0.25, 0.5, 1, 2] and max(waits) == 2
    assert sum(waits) == pytest.approx(6)


def test_backoff_takes_the_servers_hint_within_the_deadline() -> None:
    b = Backoff(first=0.25, ceiling=30, deadline=10)
    assert b.next(3) == 3
    assert b.next(100) == 7
    assert b.next() is None


# --- identifiers (RFC 8555 §7.1.4, RFC 8738) --------------------------------

@pytest.mark.parametrize("name, canonical", [
    ("WWW.Example.ORG", "www.example.org"),
    ("légô.example", "xn--lg-bja9b.example"),
    ("ß.de", "xn--zca.de"),  # IDNA2008, not IDNA2003's ss.de
    ("*.example.org", "*.example.org"),
    ("192.0.2.1", "192.0.2.1"),
    ("2001:DB8:0:0::1", "2001:db8::1"),
])
def test_identifiers_are_canonical(name: str, canonical: str) -> None:
    assert validate_identifier_str(name) == canonical


@pytest.mark.parametrize("name", [
    "", "-a.com", "a-.com", "a..com", "a.com.", ".a.com", "a_b.com", "a b.com", ";rm -rf /.com",
    "$(id).com", "a\n.com", "localhost", "x" * 64 + ".com", ("a" * 60 + ".") * 5 + "com",
    "a.*.com", "xn--zz.example", "fe80::1%eth0",
])
def test_invalid_identifiers_are_refused(name: str) -> None:
    with pytest.raises(BadIdentifier):
        validate_identifier_str(name)


def test_wildcards_can_be_refused() -> None:
    with pytest.raises(BadIdentifier):
        validate_identifier_str("*.example.org", wildcard=False)


def test_identifier_list_is_deduplicated_and_bounded() -> None:
    assert validate_identifiers(["A.example.org", "a.example.org", "b.example.org"]) == [
        "a.example.org", "b.example.org"]
    names = [f"n{i}.example.org" for i in range(MAX_IDENTIFIERS)]
    assert len(validate_identifiers(names + names)) == MAX_IDENTIFIERS
    with pytest.raises(BadIdentifier) as e:
        validate_identifiers(names + ["one.more.example.org"])
    assert e.value.ident == "TOOMANY"
    with pytest.raises(BadIdentifier):
        validate_identifiers([])


def test_identifier_objects_for_new_order() -> None:
    assert identifiers(["a.example", "192.0.2.1"]) == [
        {"type": "dns", "value": "a.example"}, {"type": "ip", "value": "192.0.2.1"}]


# --- key authorizations by challenge type (RFC 8555 §8.1, RFC 8737 §3) -------

def test_hook_auth_is_raw_for_http01_and_a_digest_otherwise() -> None:
    assert key_auth_for("http-01", "tok_en-1", "THUMB") == "tok_en-1.THUMB"
    digest = key_auth_for("tls-alpn-01", "tok_en-1", "THUMB")
    assert digest == key_auth_for("dns-01", "tok_en-1", "THUMB") and len(digest) == 43


@pytest.mark.parametrize("token", ["../../x", "a/b", "%2e%2e", "", "a" * 300, "tok=", "tök"])
def test_tokens_that_are_not_base64url_are_refused(token: str) -> None:
    with pytest.raises(Exception) as e:
        key_auth_for("http-01", token, "THUMB")
    assert "token" in str(e.value)
