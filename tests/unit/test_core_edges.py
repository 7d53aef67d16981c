"""The protocol core (wucme.core) at its edges: every limit at the limit and one past it, every
refusal by its message.  What mutation testing (`build.py mutate core`) showed was not pinned."""
from __future__ import annotations

import datetime as dt
from typing import Iterator

import pytest

from wucme.core.der import DerError, oid_text, tlvs
from wucme.core.ident import MAX_IDENTIFIERS, validate_identifier_str, validate_identifiers
from wucme.core.problem import MAX_DETAIL, AcmeProblem
from wucme.core.retry import MAX_RETRY_AFTER, Backoff, retry_after
from wucme.core.times import iso, parse_iso, parse_rfc3339, utc_now
from wucme.errors import BadIdentifier

UTC = dt.timezone.utc


# --- DER (wucme.core.der) --------------------------------------------------------------------------

def test_tlvs_reads_short_and_long_lengths_back_to_back() -> None:
    long = b"\x04\x81\x80" + b"x" * 128  # one length byte after 0x81
    longer = b"\x04\x82\x01\x00" + b"y" * 256  # two, big-endian
    assert tlvs(b"\x02\x01\x05" + long + longer + b"\x05\x00") == [
        (0x02, b"\x05"), (0x04, b"x" * 128), (0x04, b"y" * 256), (0x05, b"")]
    assert tlvs(b"") == []
    assert tlvs(b"\x04\x84\x00\x00\x00\x01z") == [(0x04, b"z")]  # four length bytes: the most


@pytest.mark.parametrize(("der", "message"), [
    (b"\x02", "truncated TLV"),  # a tag and no length
    (b"\x02\x01\x05\x02", "truncated TLV"),  # the same after a good element
    (b"\x04\x80", "bad length"),  # indefinite length
    (b"\x04\x85\x00\x00\x00\x00\x01z", "bad length"),  # five length bytes
    (b"\x04\x82\x01", "bad length"),  # the length runs past the buffer
    (b"\x04\x02z", "content runs past its buffer"),
    (b"\x04\x81\x02z", "content runs past its buffer"),
])
def test_tlvs_refuses_what_runs_past_its_buffer(der: bytes, message: str) -> None:
    with pytest.raises(DerError) as e:
        tlvs(der)
    assert str(e.value) == message


def test_tlvs_at_the_exact_end_of_the_buffer() -> None:
    assert tlvs(b"\x04\x02ab") == [(0x04, b"ab")]  # content ends exactly at the end
    assert tlvs(b"\x04\x82\x00\x02ab") == [(0x04, b"ab")]  # so does a long length
    assert tlvs(b"\x04\x00") == [(0x04, b"")]  # two bytes exactly: tag and length


def test_oid_text() -> None:
    assert oid_text(bytes.fromhex("2a8648ce3d030107")) == "1.2.840.10045.3.1.7"
    assert oid_text(bytes.fromhex("2b81040022")) == "1.3.132.0.34"
    assert oid_text(b"\x27") == "0.39"  # first arc 0 up to 39
    assert oid_text(b"\x28") == "1.0"  # 40: the first arc is 1
    assert oid_text(b"\x4f") == "1.39"
    assert oid_text(b"\x50") == "2.0"
    assert oid_text(bytes.fromhex("8837")) == "2.999"  # 2.999: arc 1079, the first stays 2
    with pytest.raises(DerError, match="^empty OID$"):
        oid_text(b"")


# --- identifiers (wucme.core.ident) --------------------------------------------------------------

def name_of(length: int) -> str:
    """A valid DNS name of exactly `length` characters (labels of 63)."""
    labels, left = [], length
    while left > 64:
        labels.append("a" * 63)
        left -= 64
    labels.append("b" * (left - 4) + ".org" if left > 4 else "org")
    return ".".join(labels)


def test_a_name_of_253_characters_is_taken_and_254_is_not() -> None:
    n253, n254 = name_of(253), name_of(254)
    assert (len(n253), len(n254)) == (253, 254)
    assert validate_identifier_str(n253) == n253
    with pytest.raises(BadIdentifier) as e:
        validate_identifier_str(n254)
    assert str(e.value).endswith(": longer than 253 characters")


def test_a_name_over_1000_characters_is_refused_before_anything_else() -> None:
    with pytest.raises(BadIdentifier) as e:
        validate_identifier_str("a" * 1001)
    assert str(e.value) == f"invalid identifier {'a' * 80 + '...'!r}: empty or too long"
    with pytest.raises(BadIdentifier) as e:
        validate_identifier_str("a" * 1000)  # 1000 passes that check, then fails on length
    assert str(e.value).endswith("longer than 253 characters")
    with pytest.raises(BadIdentifier) as e:
        validate_identifier_str("")
    assert str(e.value) == "invalid identifier '': empty or too long"


@pytest.mark.parametrize(("name", "message"), [
    ("fe80::1%eth0", "invalid identifier 'fe80::1%eth0': scoped address"),
    ("10.0.0.1%2", "invalid identifier '10.0.0.1%2': scoped address"),
    ("a%b.example", "invalid identifier 'a%b.example': bad label 'a%b'"),
    ("localhost", "invalid identifier 'localhost': needs at least one dot"),
    ("a..example", "invalid identifier 'a..example': bad label ''"),
    ("-a.example", "invalid identifier '-a.example': bad label '-a'"),
    ("a" * 64 + ".example", f"invalid identifier {'a' * 64 + '.example'!r}: bad label {'a' * 64!r}"),
])
def test_refusals_say_what_is_wrong(name: str, message: str) -> None:
    with pytest.raises(BadIdentifier) as e:
        validate_identifier_str(name)
    assert str(e.value) == message


def test_a_wildcard_refused_says_so() -> None:
    with pytest.raises(BadIdentifier) as e:
        validate_identifier_str("*.example.org", wildcard=False)
    assert str(e.value) == "wildcard '*.example.org' not supported here"
    assert validate_identifier_str("*.Example.ORG") == "*.example.org"
    assert validate_identifiers(["*.a.example", "a.example"]) == ["*.a.example", "a.example"]
    with pytest.raises(BadIdentifier, match="wildcard"):
        validate_identifiers(["a.example", "*.a.example"], wildcard=False)


def test_unicode_names_map_to_idna2008_a_labels() -> None:
    assert validate_identifier_str("Bücher.Example") == "xn--bcher-kva.example"  # uts46 lower-cases
    assert validate_identifier_str("faß.de") == "xn--fa-hia.de"  # IDNA2008, not ss
    with pytest.raises(BadIdentifier) as e:
        validate_identifier_str("a\u200db.example")  # ZWJ not allowed in that context
    assert str(e.value).startswith("invalid identifier 'a\\u200db.example': ")
    with pytest.raises(BadIdentifier) as e:
        validate_identifier_str("xn--zz.example")  # an A-label that does not decode
    assert str(e.value).startswith("invalid identifier 'xn--zz.example': ")


def test_exactly_100_identifiers_are_taken_and_101_are_not() -> None:
    names = [f"n{i}.example.org" for i in range(MAX_IDENTIFIERS + 1)]
    assert MAX_IDENTIFIERS == 100
    assert validate_identifiers(names[:100]) == names[:100]
    with pytest.raises(BadIdentifier) as e:
        validate_identifiers(names)
    assert e.value.ident == "TOOMANY"
    assert str(e.value) == "101 identifiers: at most 100 in one certificate"
    with pytest.raises(BadIdentifier) as e:
        validate_identifiers([])
    assert str(e.value) == "no identifier given" and e.value.ident != "TOOMANY"
    # duplicates count once, in the order given
    assert validate_identifiers(["B.example", "a.example", "b.EXAMPLE"]) == ["b.example", "a.example"]


def test_long_names_are_shown_shortened_in_messages() -> None:
    with pytest.raises(BadIdentifier) as e:
        validate_identifier_str("x" * 81 + "_")
    assert f"{'x' * 80 + '...'!r}" in str(e.value)
    with pytest.raises(BadIdentifier) as e:
        validate_identifier_str("x" * 79 + "_")
    assert f"{'x' * 79 + '_'!r}: needs" in str(e.value)
    with pytest.raises(BadIdentifier) as e:
        validate_identifier_str("x" * 80)
    assert f"{'x' * 80!r}: needs" in str(e.value)  # exactly 80: no ellipsis


# --- times (wucme.core.times) ----------------------------------------------------------------------

def test_iso_is_utc_to_the_second_and_reads_back() -> None:
    paris = dt.timezone(dt.timedelta(hours=1))
    t = dt.datetime(2026, 11, 27, 1, 20, 0, 999999, tzinfo=paris)
    assert iso(t) == "2026-11-27T00:20:00Z"
    assert parse_iso("2026-11-27T00:20:00Z") == dt.datetime(2026, 11, 27, 0, 20, tzinfo=UTC)
    assert parse_iso("2026-11-27T00:20:00Z").tzinfo == UTC  # type: ignore[union-attr]
    assert parse_iso("2026-11-27T00:20:00+00:00") is None and parse_iso(None) is None
    now = utc_now()
    assert now.utcoffset() == dt.timedelta(0) and abs(now.timestamp() - dt.datetime.now().timestamp()) < 5


@pytest.mark.parametrize(("text", "expect"), [
    ("2026-11-27T00:20:00Z", dt.datetime(2026, 11, 27, 0, 20, tzinfo=UTC)),
    ("2026-11-27t00:20:00z", dt.datetime(2026, 11, 27, 0, 20, tzinfo=UTC)),
    ("2026-11-27T01:50:00+01:30", dt.datetime(2026, 11, 27, 0, 20, tzinfo=UTC)),
    ("2026-11-26T23:00:00-01:20", dt.datetime(2026, 11, 27, 0, 20, tzinfo=UTC)),
    ("2026-11-27T00:20:00.1234567Z", dt.datetime(2026, 11, 27, 0, 20, 0, 123456, tzinfo=UTC)),
    ("2026-11-27T00:20:00.05Z", dt.datetime(2026, 11, 27, 0, 20, 0, 50000, tzinfo=UTC)),
    ("2016-12-31T23:59:60Z", dt.datetime(2016, 12, 31, 23, 59, 59, tzinfo=UTC)),
    ("2026-11-27T00:20:00+23:59", dt.datetime(2026, 11, 26, 0, 21, tzinfo=UTC)),
])
def test_parse_rfc3339(text: str, expect: dt.datetime) -> None:
    got = parse_rfc3339(text)
    assert got == expect and got.utcoffset() == dt.timedelta(0) and got.tzinfo == UTC


@pytest.mark.parametrize(("text", "message"), [
    ("2026-11-27", "not an RFC 3339 timestamp: '2026-11-27'"),
    ("2026-11-27T00:20:00+24:00", "bad UTC offset in '2026-11-27T00:20:00+24:00'"),
    ("2026-11-27T00:20:00+01:60", "bad UTC offset in '2026-11-27T00:20:00+01:60'"),
])
def test_parse_rfc3339_refuses(text: str, message: str) -> None:
    with pytest.raises(ValueError) as e:
        parse_rfc3339(text)
    assert str(e.value) == message


# --- Retry-After and the polling schedule (wucme.core.retry) ----------------------------------------

def test_retry_after_dates_in_every_http_form() -> None:
    now = dt.datetime(2026, 5, 1, 10, 0, tzinfo=UTC).timestamp()
    assert retry_after("Fri, 01 May 2026 10:01:00 GMT", 5, now) == 60  # IMF-fixdate
    assert retry_after("Friday, 01-May-26 10:02:00 GMT", 5, now) == 120  # RFC 850
    assert retry_after("Fri May  1 10:03:00 2026", 5, now) == 180  # asctime
    assert retry_after("Fri May  1 09:00:00 2026", 5, now) == 5  # in the past: the default
    assert retry_after("May 2026", 5, now) == 5
    assert retry_after(" 30 ", 5, now) == 30 and retry_after("0", 5, now) == 5
    assert retry_after(str(int(MAX_RETRY_AFTER) + 1), 5) == MAX_RETRY_AFTER == 86400
    assert retry_after("  ", 7) == 7 and retry_after(None, 7) == 7


def test_backoff_deadline_reached_exactly_stops() -> None:
    b = Backoff(first=1, ceiling=4, deadline=7)
    assert [b.next(), b.next(), b.next(), b.next()] == [1, 2, 4, None]  # 1 + 2 + 4 = 7 exactly
    b = Backoff(first=1, ceiling=4, deadline=8)
    assert [b.next(), b.next(), b.next(), b.next(), b.next()] == [1, 2, 4, 1, None]  # the rest
    b = Backoff(first=1, ceiling=100, deadline=100)
    assert [b.next(0), b.next(-3), b.next(10)] == [1, 2, 10]  # a hint of 0 or less is no hint
    assert b.next() == 8  # the doubling went on under the hints


# --- problem documents (wucme.core.problem) ----------------------------------------------------------

def test_a_detail_of_exactly_max_detail_is_kept_whole() -> None:
    assert MAX_DETAIL == 2000
    p = AcmeProblem(400, "urn:ietf:params:acme:error:malformed", "d" * MAX_DETAIL)
    assert p.detail == "d" * MAX_DETAIL
    p = AcmeProblem(400, "urn:ietf:params:acme:error:malformed", "d" * (MAX_DETAIL + 1))
    assert p.detail == "d" * MAX_DETAIL + "...(truncated)"


@pytest.fixture
def paris_local_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A local time zone that is not UTC, so a conversion to local time would show."""
    import time

    monkeypatch.setenv("TZ", "Europe/Paris")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("paris_local_time")
def test_times_stay_utc_whatever_the_local_zone() -> None:
    assert utc_now().tzinfo == UTC and utc_now().utcoffset() == dt.timedelta(0)
    assert iso(dt.datetime(2026, 7, 1, 12, 0, tzinfo=UTC)) == "2026-07-01T12:00:00Z"
    assert iso(dt.datetime(2026, 7, 1, 14, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))) == "2026-07-01T12:00:00Z"
    got = parse_rfc3339("2026-07-01T14:00:00+02:00")
    assert got == dt.datetime(2026, 7, 1, 12, 0, tzinfo=UTC) and str(got) == "2026-07-01 12:00:00+00:00"
    back = parse_iso("2026-07-01T12:00:00Z")
    assert back is not None and str(back) == "2026-07-01 12:00:00+00:00"


# --- base64url, JWS helpers (wucme.core.b64, wucme.core.jws) ------------------------------------

@pytest.mark.parametrize("text", ["a", "abcde", "ab=", "ab c", "a+b/", "ab\n", "ab_-c", "AB"])
def test_b64url_decode_refuses_with_one_message(text: str) -> None:
    from wucme.core.b64 import b64url_decode

    with pytest.raises(ValueError) as e:
        b64url_decode(text)
    assert str(e.value) == "invalid base64url string"


def test_b64url_decode_takes_what_is_canonical() -> None:
    from wucme.core.b64 import b64url_decode, is_b64url

    assert b64url_decode("") == b"" and b64url_decode("AA") == b"\x00"
    assert b64url_decode("_-8") == b"\xff\xef"
    assert is_b64url("abcd") and not is_b64url("abcde") and not is_b64url(b"abcd")  # type: ignore[arg-type]


def test_jws_helpers_refuse_sizes_and_tokens_by_name() -> None:
    from wucme.core import jws

    with pytest.raises(ValueError, match="^unsupported HMAC size 128$"):
        jws.jws_protected_eab(128, "kid", "https://ca.test/new-account")
    with pytest.raises(ValueError, match="^protected header alg does not match HS384$"):
        jws.jws_encode_hmac({"alg": "HS256"}, {}, b"k", 384)
    with pytest.raises(ValueError, match="^challenge token is not base64url$"):
        jws.key_authorization("a/b", "thumb")
    with pytest.raises(ValueError, match="^unsupported SHA-2 size 224$"):
        jws.sha2_base64url(224, b"")
    with pytest.raises(ValueError, match="^unsupported HMAC size 1$"):
        jws.hmac_base64url(1, "AA", b"")


# --- problem documents: the registry and the body that is not JSON ---------------------------------

def test_every_registered_type_builds_its_class() -> None:
    assert AcmeProblem.registry and all(
        isinstance(k, str) and k and issubclass(v, AcmeProblem) and v.code_name == k
        for k, v in AcmeProblem.registry.items())


def test_from_body_keeps_status_and_retry_after() -> None:
    p = AcmeProblem.from_body(429, b'{"type": "urn:ietf:params:acme:error:rateLimited", "detail": "slow"}', 60.0)
    assert (p.status, p.retry_after, p.code, p.detail) == (429, 60.0, "rateLimited", "slow")
    p = AcmeProblem.from_body(502, b"<html>bad gateway</html>", 5.0)
    assert (p.status, p.type, p.detail) == (502, "", "HTTP 502 with a body that is not JSON")
    assert str(p).endswith("about:blank (HTTP 502): HTTP 502 with a body that is not JSON")


def test_backoff_defaults() -> None:
    b = Backoff()
    steps = [b.next() for _ in range(14)]
    assert steps[0] == 0.01 and steps[1] == 0.02
    assert max(s for s in steps if s is not None) == 30.0  # the ceiling
    assert b.deadline == 1800.0
    total = sum(s for s in steps if s is not None)
    while (s := b.next()) is not None:
        total += s
    assert total == pytest.approx(1800.0)


# --- an EC key file taken apart (wucme.core.der.ec_private) ------------------------------------------

def tlv(tag: int, content: bytes) -> bytes:
    n = len(content)
    head = bytes([n]) if n < 0x80 else bytes([0x80 | ((n.bit_length() + 7) // 8)]) + n.to_bytes(
        (n.bit_length() + 7) // 8, "big")
    return bytes([tag]) + head + content


P256 = bytes.fromhex("2a8648ce3d030107")
P384 = bytes.fromhex("2b81040022")
EC_PUBLIC_KEY = bytes.fromhex("2a8648ce3d0201")
RSA_ENCRYPTION = bytes.fromhex("2a864886f70d010101")


def sec1(value: bytes, curve: bytes | None = None, public: bytes | None = None) -> bytes:
    body = tlv(0x02, b"\x01") + tlv(0x04, value)
    if curve is not None:
        body += tlv(0xA0, tlv(0x06, curve))
    if public is not None:
        body += tlv(0xA1, tlv(0x03, public))
    return tlv(0x30, body)


def pkcs8(inner: bytes, alg: bytes = EC_PUBLIC_KEY, curve: bytes | None = P256) -> bytes:
    algorithm = tlv(0x06, alg) + (tlv(0x06, curve) if curve is not None else b"")
    return tlv(0x30, tlv(0x02, b"\x00") + tlv(0x30, algorithm) + tlv(0x04, inner))


def test_ec_private_reads_sec1_and_pkcs8() -> None:
    from wucme.core.der import EcPrivate, ec_private

    point = b"\x04" + b"\x11" * 64
    assert ec_private(sec1(b"\x01\x02", P256, b"\x00" + point)) == EcPrivate("secp256r1", 0x0102, point)
    assert ec_private(sec1(b"\x00\x05")) == EcPrivate(None, 5, None)  # bare: version and value only
    assert ec_private(sec1(b"\x07", bytes.fromhex("2b8104000a"))).curve == "1.3.132.0.10"  # not ours: its OID
    # PKCS#8 around it: the curve from the algorithm, the value and the point from inside
    assert ec_private(pkcs8(sec1(b"\x09", None, b"\x00" + point), curve=P384)) == EcPrivate(
        "secp384r1", 9, point)
    assert ec_private(pkcs8(sec1(b"\x09", P384), curve=None)) == EcPrivate("secp384r1", 9, None)
    assert ec_private(pkcs8(sec1(b"\x09", P256), curve=P256)).curve == "secp256r1"
    # three fields whose third is an OCTET STRING but whose second is not a SEQUENCE: SEC1
    odd = tlv(0x30, tlv(0x02, b"\x01") + tlv(0x04, b"\x03") + tlv(0x04, b"x"))
    assert ec_private(odd) == EcPrivate(None, 3, None)


@pytest.mark.parametrize(("der", "message"), [
    (pkcs8(sec1(b"\x01"), alg=RSA_ENCRYPTION), "not an EC key"),
    (tlv(0x30, tlv(0x02, b"\x00") + tlv(0x30, tlv(0x05, b"")) + tlv(0x04, sec1(b"\x01"))), "not an EC key"),
    (tlv(0x30, tlv(0x02, b"\x00") + tlv(0x30, b"") + tlv(0x04, sec1(b"\x01"))), "not an EC key"),
    (pkcs8(sec1(b"\x01", P384), curve=P256), "curves disagree"),
    (tlv(0x30, tlv(0x02, b"\x02") + tlv(0x04, b"\x01")), "not an ECPrivateKey"),  # version 2
    (tlv(0x30, tlv(0x02, b"\x01") + tlv(0x02, b"\x01")), "not an ECPrivateKey"),  # no OCTET STRING
    (tlv(0x30, tlv(0x02, b"\x01")), "not an ECPrivateKey"),
    (sec1(b"\x01", public=b""), "bad public key bit string"),
    (sec1(b"\x01", public=b"\x01\x04"), "bad public key bit string"),  # unused bits
    (tlv(0x30, b"") + tlv(0x30, b""), "expected one element of tag 0x30"),
    (tlv(0x31, b""), "expected one element of tag 0x30"),
])
def test_ec_private_refuses(der: bytes, message: str) -> None:
    from wucme.core.der import ec_private

    with pytest.raises(DerError) as e:
        ec_private(der)
    assert str(e.value) == message


# --- JWS: keys, integers, signatures --------------------------------------------------------------

def test_jws_integers_and_refused_keys() -> None:
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    from wucme.core import jws

    assert jws._uint(0) == "AA" and jws._uint(1) == "AQ" and jws._uint(256) == "AQA"
    assert jws._uint(1, 2) == "AAE"
    ed = ed25519.Ed25519PrivateKey.generate()
    for call in (jws.key_type, jws._alg):
        with pytest.raises(ValueError, match="^only RSA and EC keys are supported$"):
            call(ed)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="^unsupported EC curve secp521r1$"):
        jws.key_type(ec.generate_private_key(ec.SECP521R1()))
    with pytest.raises(ValueError, match="^signing needs an RSA or EC private key$"):
        jws.jws_encode({"alg": "ES256"}, {}, ec.generate_private_key(ec.SECP256R1()).public_key())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="^protected header alg does not match the ES256 key$"):
        jws.jws_encode({"alg": "RS256"}, {}, ec.generate_private_key(ec.SECP256R1()))


def test_ec_decode_refuses_an_s_too_long_for_the_curve() -> None:
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    from wucme.core import jws

    assert jws.ec_decode(encode_dss_signature(1, 2), 2) == b"\x00\x01\x00\x02"
    assert jws.ec_decode(encode_dss_signature(0xFFFF, 0xFFFF), 2) == b"\xff\xff\xff\xff"
    for r, s in ((1, 0x10000), (0x10000, 1)):
        with pytest.raises(ValueError, match="^ECDSA signature does not fit the curve size$"):
            jws.ec_decode(encode_dss_signature(r, s), 2)


def test_compact_json_keeps_the_callers_order_unless_canonical() -> None:
    from wucme.core import jws

    assert jws._json({"b": 1, "a": [1, 2]}) == '{"b":1,"a":[1,2]}'
    assert jws._json({"b": 1, "a": 2}, canonical=True) == '{"a":2,"b":1}'


# --- problem documents: every part of the text --------------------------------------------------------

def test_problem_text_and_fields_from_json() -> None:
    doc = {"type": "urn:ietf:params:acme:error:rejectedIdentifier", "detail": "no\r\nway\tout",
           "status": 403, "subproblems": [
               {"type": "urn:ietf:params:acme:error:caa", "detail": "CAA forbids",
                "identifier": {"type": "dns", "value": "a.example"}, "status": 0},
               {"type": "urn:ietf:params:acme:error:dns", "detail": "NXDOMAIN", "status": 400},
               "not a problem"]}
    p = AcmeProblem.from_json(403, doc, 7.0)
    assert p.detail == "no  way out" and p.retry_after == 7.0 and p.raw is doc
    assert str(p).endswith(
        "urn:ietf:params:acme:error:rejectedIdentifier (HTTP 403): no  way out\n"
        "  a.example: urn:ietf:params:acme:error:caa: CAA forbids\n"
        "  ?: urn:ietf:params:acme:error:dns: NXDOMAIN")
    assert [s.status for s in p.subproblems] == [403, 400]  # a status of 0 is the parent's
    assert p.subproblems[0].identifier == {"type": "dns", "value": "a.example"}
    q = AcmeProblem.from_json(400, {"detail": 5, "identifier": "a.example"})
    assert (q.type, q.detail, q.identifier, q.code, q.raw) == ("", "5", None, "", {"detail": 5, "identifier": "a.example"})
    assert str(q).endswith("about:blank (HTTP 400): 5")
    r = AcmeProblem.from_json(500, ["x"] * 100)
    assert (r.status, r.type) == (500, "")
    assert r.detail == f"unparsable problem document: {str(['x'] * 100)[:200]}"
    empty = AcmeProblem.from_json(400, {})
    assert (empty.type, empty.detail) == ("", "")
    bare = AcmeProblem(404)
    assert (bare.type, bare.detail, bare.raw, bare.retry_after) == ("", "", {}, None)
    assert str(bare).endswith("about:blank (HTTP 404)")
