"""The protocol core (wucme.core) at its edges: every limit at the limit and one past it, every
refusal by its message.  What mutation testing (`build.py mutate core`) showed was not pinned."""
from __future__ import annotations

import datetime as dt

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
