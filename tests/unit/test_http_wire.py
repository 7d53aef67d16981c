"""HTTP/1.1 response parsing and framing (wucme.http._wire), table-driven over in-memory buffers.

Each row is one scenario: the bytes a server sends, and either what the client must make of
them or the error it must raise.  The reader is the one _conn.Connection uses (a buffered file),
here over io.BytesIO, and the steps are Connection.exchange's: read_head, framing, read_body,
keep_alive.  Limits are tested at the limit and one past it (RFC 9112 leaves them to us; ours are
MAX_HEAD_BYTES for a whole header section, MAX_HEADERS lines, MAX_INTERIM 1xx responses,
MAX_CHUNK_LINE for a chunk-size line, and the caller's max_body).
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import pytest

from wucme.http import MAX_BODY, ProtocolError, ResponseTooLarge
from wucme.http._conn import Proxy, split_url
from wucme.http._wire import (
    MAX_CHUNK_LINE, MAX_HEAD_BYTES, MAX_HEADERS, MAX_INTERIM, NoResponse, encode_request, framing,
    keep_alive, read_body, read_head)

OK = b"HTTP/1.1 200 OK\r\n"


@dataclass(frozen=True)
class Got:
    """What the client must make of the bytes; None means "not checked by this row"."""

    status: int = 200
    body: bytes = b""
    headers: list[tuple[str, str]] | None = None
    reason: str | None = None
    keep_alive: bool | None = None
    rest: bytes = b""  # bytes left unread for the next response on the connection


@dataclass(frozen=True)
class Fails:
    error: type[Exception]
    match: str


def exchange(raw: bytes, method: str = "GET", limit: int = MAX_BODY) -> Got:
    """The response part of Connection.exchange, over a buffer instead of a socket."""
    fp = io.BufferedReader(io.BytesIO(raw))  # what socket.makefile("rb") gives
    head = read_head(fp)
    frame = framing(method, head)
    body = read_body(fp, frame, limit)
    return Got(head.status, body, head.headers, head.reason, keep_alive(head, frame), fp.read())


def check(raw: bytes, expect: Got | Fails, method: str = "GET", limit: int = MAX_BODY) -> None:
    if isinstance(expect, Fails):
        with pytest.raises(expect.error, match=expect.match):
            exchange(raw, method, limit)
        return
    got = exchange(raw, method, limit)
    assert (got.status, got.body, got.rest) == (expect.status, expect.body, expect.rest)
    for name in ("headers", "reason", "keep_alive"):
        if getattr(expect, name) is not None:
            assert getattr(got, name) == getattr(expect, name), name


def row(id: str, raw: bytes, expect: Got | Fails, method: str = "GET",
        limit: int = MAX_BODY) -> Any:
    return pytest.param(raw, expect, method, limit, id=id)


def section(total: int, headers: int = 1, status: bytes = OK) -> bytes:
    """A status line and `headers` X-Fill lines whose whole header section, final CRLF
    included, is exactly `total` bytes (no body framing: the body runs to the close)."""
    fixed = len(status) + 2 + headers * len(b"X-Fill: \r\n")
    fill = total - fixed
    assert fill >= headers, "section too small for that many headers"
    sizes = [fill // headers] * headers
    sizes[-1] += fill - sum(sizes)
    lines = b"".join(b"X-Fill: " + b"f" * n + b"\r\n" for n in sizes)
    raw = status + lines + b"\r\n"
    assert len(raw) == total
    return raw


def interim(n: int) -> bytes:
    return b"HTTP/1.1 100 Continue\r\n\r\n" * n


FINAL = OK + b"Content-Length: 2\r\n\r\nok"


# --- status lines (RFC 9112 §4) ------------------------------------------------------------

STATUS_LINES = [
    row("reason", OK + b"Content-Length: 0\r\n\r\n", Got(reason="OK", keep_alive=True)),
    row("no-reason-no-space", b"HTTP/1.1 204\r\n\r\n", Got(204, reason="")),
    row("empty-reason", b"HTTP/1.1 204 \r\n\r\n", Got(204, reason="")),
    row("reason-with-spaces", b"HTTP/1.1 404 Not Found Here\r\nContent-Length: 0\r\n\r\n",
        Got(404, reason="Not Found Here")),
    row("reason-obs-text", b"HTTP/1.1 200 Gr\xfc\xdfe\r\nContent-Length: 0\r\n\r\n",
        Got(reason="Gr\u00fc\u00dfe")),
    row("unregistered-code", b"HTTP/1.1 599 Odd\r\nContent-Length: 0\r\n\r\n", Got(599)),
    row("bare-lf", b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok", Got(body=b"ok")),
    row("http-1.0", b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
        Got(body=b"ok", keep_alive=False)),
    row("http2", b"HTTP/2.0 200 OK\r\n\r\n", Fails(ProtocolError, r"unsupported HTTP version 2\.0")),
    row("two-digit-code", b"HTTP/1.1 20 OK\r\n\r\n", Fails(ProtocolError, "malformed status line")),
    row("four-digit-code", b"HTTP/1.1 2000 OK\r\n\r\n", Fails(ProtocolError, "malformed status line")),
    row("lower-case-http", b"http/1.1 200 OK\r\n\r\n", Fails(ProtocolError, "malformed status line")),
    row("double-space", b"HTTP/1.1  200 OK\r\n\r\n", Fails(ProtocolError, "malformed status line")),
    row("nul-in-reason", b"HTTP/1.1 200 O\x00K\r\n\r\n", Fails(ProtocolError, "malformed status line")),
    row("not-http", b"ICY 200 OK\r\n\r\n", Fails(ProtocolError, "malformed status line")),
    row("blank-line-first", b"\r\n" + FINAL, Fails(ProtocolError, "malformed status line")),
    row("nothing", b"", Fails(NoResponse, "without a response")),
    row("cut-in-status-line", b"HTTP/1.1 200 O", Fails(ProtocolError, "middle of the status line")),
    row("status-line-over-budget", b"HTTP/1.1 200 " + b"r" * MAX_HEAD_BYTES + b"\r\n\r\n",
        Fails(ProtocolError, f"status line longer than {MAX_HEAD_BYTES} bytes")),
]


# --- header fields (RFC 9112 §5) -----------------------------------------------------------

HEADERS = [
    row("order-and-ows", OK + b"A:  1 \r\nB:\t2\t\r\nA: 3\r\nContent-Length: 0\r\n\r\n",
        Got(headers=[("A", "1"), ("B", "2"), ("A", "3"), ("Content-Length", "0")])),
    row("empty-value", OK + b"X-Empty:\r\nContent-Length: 0\r\n\r\n",
        Got(headers=[("X-Empty", ""), ("Content-Length", "0")])),
    row("inner-spaces-kept", OK + b"X: a  b\tc\r\nContent-Length: 0\r\n\r\n",
        Got(headers=[("X", "a  b\tc"), ("Content-Length", "0")])),
    row("obs-text-value", OK + b"X: caf\xe9\r\nContent-Length: 0\r\n\r\n",
        Got(headers=[("X", "caf\u00e9"), ("Content-Length", "0")])),
    row("obs-fold", OK + b"X-A: one\r\n two\r\nContent-Length: 0\r\n\r\n",
        Got(headers=[("X-A", "one two"), ("Content-Length", "0")])),
    row("obs-fold-tab-and-twice", OK + b"X-A: one\r\n\t two \r\n   three\r\nContent-Length: 0\r\n\r\n",
        Got(headers=[("X-A", "one two three"), ("Content-Length", "0")])),
    row("obs-fold-after-several", OK + b"A: 1\r\nB: 2\r\nC: 3\r\n folded\r\nD: 4\r\nContent-Length: 0\r\n\r\n",
        Got(headers=[("A", "1"), ("B", "2"), ("C", "3 folded"), ("D", "4"), ("Content-Length", "0")])),
    row("obs-fold-onto-empty", OK + b"X:\r\n  v\r\nContent-Length: 0\r\n\r\n",
        Got(headers=[("X", "v"), ("Content-Length", "0")])),
    row("obs-fold-first", OK + b" X: 1\r\n\r\n",
        Fails(ProtocolError, "header section starts with a continuation line")),
    row("no-colon", OK + b"No colon here\r\n\r\n", Fails(ProtocolError, "malformed header line")),
    row("space-in-name", OK + b"Bad Name: x\r\n\r\n", Fails(ProtocolError, "malformed header line")),
    row("space-before-colon", OK + b"X : x\r\n\r\n", Fails(ProtocolError, "malformed header line")),
    row("empty-name", OK + b": x\r\n\r\n", Fails(ProtocolError, "malformed header line")),
    row("nul-in-value", OK + b"X: a\x00b\r\n\r\n", Fails(ProtocolError, "malformed header line")),
    row("cut-in-headers", OK + b"X: 1\r\n", Fails(ProtocolError, "middle of the header section")),
    row("bare-lf-end", OK + b"X: 1\n\n", Got(headers=[("X", "1")], keep_alive=False)),
    row(f"{MAX_HEADERS}-headers", OK + b"X: 1\r\n" * MAX_HEADERS + b"\r\n",
        Got(headers=[("X", "1")] * MAX_HEADERS)),
    row(f"{MAX_HEADERS + 1}-headers", OK + b"X: 1\r\n" * (MAX_HEADERS + 1) + b"\r\n",
        Fails(ProtocolError, f"more than {MAX_HEADERS} header lines")),
    row("folds-are-not-lines", OK + b"X: 1\r\n" * MAX_HEADERS + b" more\r\n" * 50 + b"\r\n",
        Got(headers=[("X", "1")] * (MAX_HEADERS - 1) + [("X", "1" + " more" * 50)])),
]


# --- the 64 KiB budget of a whole header section ---------------------------------------------

BUDGET = [
    row("one-header-at-budget", section(MAX_HEAD_BYTES), Got()),
    row("one-header-past-budget", section(MAX_HEAD_BYTES + 1),
        Fails(ProtocolError, f"header section larger than {MAX_HEAD_BYTES} bytes")),
    row("several-at-budget", section(MAX_HEAD_BYTES, headers=10), Got()),
    row("several-past-budget", section(MAX_HEAD_BYTES + 1, headers=10),
        Fails(ProtocolError, f"header section larger than {MAX_HEAD_BYTES} bytes")),
    row("several-far-past-budget", OK + (b"X: " + b"a" * 7000 + b"\r\n") * 10 + b"\r\n",
        Fails(ProtocolError, f"header section larger than {MAX_HEAD_BYTES} bytes")),
    row("many-small-at-budget", section(MAX_HEAD_BYTES, headers=MAX_HEADERS), Got()),
    row("long-status-line-counts", section(MAX_HEAD_BYTES, 3, b"HTTP/1.1 200 " + b"r" * 30000 + b"\r\n"),
        Got()),
    row("long-status-line-counts-past",
        section(MAX_HEAD_BYTES + 1, 3, b"HTTP/1.1 200 " + b"r" * 30000 + b"\r\n"),
        Fails(ProtocolError, f"header section larger than {MAX_HEAD_BYTES} bytes")),
    row("folds-count", OK + b"X: 1\r\n" + b" " + b"f" * 40000 + b"\r\n" + b" " + b"f" * 40000 + b"\r\n\r\n",
        Fails(ProtocolError, f"header section larger than {MAX_HEAD_BYTES} bytes")),
    row("budget-per-response", (b"HTTP/1.1 103 Early Hints\r\nLink: " + b"l" * 40000 + b"\r\n\r\n") * 2
        + section(MAX_HEAD_BYTES), Got()),
]


# --- interim responses (RFC 9110 §15.2) ------------------------------------------------------

INTERIM = [
    row("100-continue", interim(1) + FINAL, Got(body=b"ok", headers=[("Content-Length", "2")])),
    row("103-early-hints-headers-dropped",
        b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n" + FINAL,
        Got(body=b"ok", headers=[("Content-Length", "2")])),
    row(f"{MAX_INTERIM}-interim-then-final", interim(MAX_INTERIM) + FINAL, Got(body=b"ok")),
    row(f"{MAX_INTERIM + 1}-interim-then-final", interim(MAX_INTERIM + 1) + FINAL,
        Fails(ProtocolError, rf"more than {MAX_INTERIM} interim \(1xx\) responses")),
    row("interim-then-close", interim(1), Fails(NoResponse, "without a response")),
    row("101-is-final", b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\nraw",
        Got(101, rest=b"raw")),
]


# --- Content-Length (RFC 9112 §6.3, RFC 9110 §8.6) -------------------------------------------

CONTENT_LENGTH = [
    row("exact", OK + b"Content-Length: 5\r\n\r\nhello", Got(body=b"hello", keep_alive=True)),
    row("rest-stays-for-next", OK + b"Content-Length: 5\r\n\r\nhelloHTTP/1.1",
        Got(body=b"hello", rest=b"HTTP/1.1")),
    row("zero", OK + b"Content-Length: 0\r\n\r\n", Got()),
    row("leading-zeros", OK + b"Content-Length: 007\r\n\r\n1234567", Got(body=b"1234567")),
    row("duplicate-lines-same", OK + b"Content-Length: 2\r\nContent-Length: 2\r\n\r\nok", Got(body=b"ok")),
    row("duplicate-list-same", OK + b"Content-Length: 2, 2\r\n\r\nok", Got(body=b"ok")),
    row("conflicting-lines", OK + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\nok",
        Fails(ProtocolError, "invalid Content-Length: 2, 3")),
    row("conflicting-list", OK + b"Content-Length: 2,3\r\n\r\nok",
        Fails(ProtocolError, "invalid Content-Length: 2, 3")),
    row("negative", OK + b"Content-Length: -1\r\n\r\n", Fails(ProtocolError, "invalid Content-Length: -1")),
    row("plus-sign", OK + b"Content-Length: +2\r\n\r\nok", Fails(ProtocolError, "invalid Content-Length")),
    row("hex", OK + b"Content-Length: 0x2\r\n\r\nok", Fails(ProtocolError, "invalid Content-Length")),
    row("trailing-junk", OK + b"Content-Length: 2x\r\n\r\nok", Fails(ProtocolError, "invalid Content-Length")),
    row("empty", OK + b"Content-Length:\r\n\r\nok", Fails(ProtocolError, "invalid Content-Length")),
    row("superscript-digit", OK + b"Content-Length: \xb2\r\n\r\nok",
        Fails(ProtocolError, "invalid Content-Length")),
    row("huge-honest", OK + b"Content-Length: 10737418240\r\n\r\nstart",
        Fails(ResponseTooLarge, f"larger than the limit of {MAX_BODY} bytes")),
    row("huge-absurd", OK + b"Content-Length: " + b"9" * 5000 + b"\r\n\r\nstart",
        Fails(ResponseTooLarge, f"larger than the limit of {MAX_BODY} bytes")),
    row("short-body", OK + b"Content-Length: 10\r\n\r\nabc",
        Fails(ProtocolError, "connection closed after 3 of 10 body bytes")),
    row("missing-means-close", OK + b"\r\nto the end", Got(body=b"to the end", keep_alive=False)),
    row("head-has-no-body", OK + b"Content-Length: 100\r\n\r\n", Got(keep_alive=True), method="HEAD"),
    row("204-has-no-body", b"HTTP/1.1 204 No Content\r\nContent-Length: 100\r\n\r\nnext",
        Got(204, rest=b"next")),
    row("304-has-no-body", b"HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\nnext",
        Got(304, rest=b"next")),
    row("connection-close", OK + b"Connection: keep-alive, Close\r\nContent-Length: 2\r\n\r\nok",
        Got(body=b"ok", keep_alive=False)),
]


# --- chunked (RFC 9112 §7.1) -----------------------------------------------------------------

TE = OK + b"Transfer-Encoding: chunked\r\n\r\n"

CHUNKED = [
    row("one-chunk", TE + b"5\r\nhello\r\n0\r\n\r\n", Got(body=b"hello", keep_alive=True)),
    row("several-upper-hex", TE + b"3\r\nabc\r\nA\r\n0123456789\r\n0\r\n\r\n", Got(body=b"abc0123456789")),
    row("rest-stays-for-next", TE + b"2\r\nok\r\n0\r\n\r\nHTTP/1.1", Got(body=b"ok", rest=b"HTTP/1.1")),
    row("extension", TE + b"2;name=value\r\nok\r\n0;last\r\n\r\n", Got(body=b"ok")),
    row("extension-bws", TE + b"2 ; name\r\nok\r\n0\r\n\r\n", Got(body=b"ok")),
    row("extension-quoted", TE + b'2;a="b;c"\r\nok\r\n0\r\n\r\n', Got(body=b"ok")),
    row("trailers-dropped", TE + b"2\r\nok\r\n0\r\nX-T: 1\r\nY: 2\r\n folded\r\n\r\n",
        Got(body=b"ok", headers=[("Transfer-Encoding", "chunked")])),
    row("bare-lf", TE + b"2\nok\n0\n\n", Got(body=b"ok")),
    row("gzip-then-chunked", OK + b"Transfer-Encoding: gzip, chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
        Got(body=b"ok")),
    row("te-split-over-lines", OK + b"Transfer-Encoding: gzip\r\nTransfer-Encoding: Chunked\r\n\r\n"
        b"2\r\nok\r\n0\r\n\r\n", Got(body=b"ok")),
    row("chunked-not-last-is-close", OK + b"Transfer-Encoding: chunked, gzip\r\n\r\n2\r\nok\r\n",
        Got(body=b"2\r\nok\r\n", keep_alive=False)),
    row("te-beats-content-length", OK + b"Content-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2\r\nok\r\n0\r\n\r\n", Got(body=b"ok", keep_alive=False)),
    row("size-not-hex", TE + b"zz\r\nok\r\n0\r\n\r\n", Fails(ProtocolError, "malformed chunk size line")),
    row("size-negative", TE + b"-2\r\nok\r\n0\r\n\r\n", Fails(ProtocolError, "malformed chunk size line")),
    row("size-0x", TE + b"0x2\r\nok\r\n0\r\n\r\n", Fails(ProtocolError, "malformed chunk size line")),
    row("size-empty", TE + b"\r\nok\r\n0\r\n\r\n", Fails(ProtocolError, "malformed chunk size line")),
    row("size-leading-space", TE + b" 2\r\nok\r\n0\r\n\r\n", Fails(ProtocolError, "malformed chunk size line")),
    row("size-17-digits", TE + b"1" * 17 + b"\r\n", Fails(ProtocolError, "malformed chunk size line")),
    row("size-16-digits", TE + b"F" * 16 + b"\r\n",
        Fails(ResponseTooLarge, f"larger than the limit of {MAX_BODY} bytes")),
    row("size-line-at-limit", TE + b"2;" + b"e" * (MAX_CHUNK_LINE - 4) + b"\r\nok\r\n0\r\n\r\n",
        Got(body=b"ok")),
    row("size-line-past-limit", TE + b"2;" + b"e" * (MAX_CHUNK_LINE - 3) + b"\r\nok\r\n0\r\n\r\n",
        Fails(ProtocolError, f"chunk size line larger than {MAX_CHUNK_LINE} bytes")),
    row("data-longer-than-size", TE + b"2\r\nokay\r\n0\r\n\r\n", Fails(ProtocolError, "chunk terminator")),
    row("data-one-longer", TE + b"2\r\nok!\n0\r\n\r\n",
        Fails(ProtocolError, "chunk data longer than its chunk size")),
    row("cut-in-data", TE + b"5\r\nab", Fails(ProtocolError, "connection closed after 2 of 5 body bytes")),
    row("cut-before-terminator", TE + b"2\r\nok", Fails(ProtocolError, "middle of the chunk terminator")),
    row("cut-before-last-chunk", TE + b"2\r\nok\r\n", Fails(ProtocolError, "middle of the chunk size line")),
    row("cut-in-trailers", TE + b"2\r\nok\r\n0\r\nX-T: 1\r\n",
        Fails(ProtocolError, "middle of the trailer section")),
    row("cut-before-final-crlf", TE + b"0\r\n", Fails(ProtocolError, "middle of the trailer section")),
    row("bad-trailer", TE + b"0\r\nBad Trailer: 1\r\n\r\n", Fails(ProtocolError, "malformed trailer line")),
]


# --- close-delimited bodies and the caller's body limit ----------------------------------------

BIG = bytes(range(256)) * 800  # 204800 bytes: more than one 64 KiB read

BODY_LIMITS = [
    row("close-delimited-big", OK + b"\r\n" + BIG, Got(body=BIG, keep_alive=False)),
    row("close-delimited-empty", OK + b"\r\n", Got(keep_alive=False)),
    row("http-1.0-close", b"HTTP/1.0 200 OK\r\n\r\nold", Got(body=b"old", keep_alive=False)),
    row("length-at-limit", OK + b"Content-Length: 10\r\n\r\n" + b"x" * 10, Got(body=b"x" * 10), limit=10),
    row("length-past-limit", OK + b"Content-Length: 11\r\n\r\n" + b"x" * 11,
        Fails(ResponseTooLarge, "larger than the limit of 10 bytes"), limit=10),
    row("chunked-at-limit", TE + b"6\r\nxxxxxx\r\n4\r\nxxxx\r\n0\r\n\r\n", Got(body=b"x" * 10), limit=10),
    row("chunked-past-limit", TE + b"6\r\nxxxxxx\r\n5\r\nxxxxx\r\n0\r\n\r\n",
        Fails(ResponseTooLarge, "larger than the limit of 10 bytes"), limit=10),
    row("close-at-limit", OK + b"\r\n" + b"x" * 10, Got(body=b"x" * 10), limit=10),
    row("close-past-limit", OK + b"\r\n" + b"x" * 11,
        Fails(ResponseTooLarge, "larger than the limit of 10 bytes"), limit=10),
    row("close-big-past-limit", OK + b"\r\n" + BIG,
        Fails(ResponseTooLarge, f"larger than the limit of {len(BIG) - 1} bytes"), limit=len(BIG) - 1),
    row("head-ignores-limit", OK + b"Content-Length: 1000\r\n\r\n", Got(), method="HEAD", limit=10),
]


@pytest.mark.parametrize(("raw", "expect", "method", "limit"), STATUS_LINES)
def test_status_line(raw: bytes, expect: Got | Fails, method: str, limit: int) -> None:
    check(raw, expect, method, limit)


@pytest.mark.parametrize(("raw", "expect", "method", "limit"), HEADERS)
def test_header_fields(raw: bytes, expect: Got | Fails, method: str, limit: int) -> None:
    check(raw, expect, method, limit)


@pytest.mark.parametrize(("raw", "expect", "method", "limit"), BUDGET)
def test_header_section_budget(raw: bytes, expect: Got | Fails, method: str, limit: int) -> None:
    check(raw, expect, method, limit)


@pytest.mark.parametrize(("raw", "expect", "method", "limit"), INTERIM)
def test_interim_responses(raw: bytes, expect: Got | Fails, method: str, limit: int) -> None:
    check(raw, expect, method, limit)


@pytest.mark.parametrize(("raw", "expect", "method", "limit"), CONTENT_LENGTH)
def test_content_length(raw: bytes, expect: Got | Fails, method: str, limit: int) -> None:
    check(raw, expect, method, limit)


@pytest.mark.parametrize(("raw", "expect", "method", "limit"), CHUNKED)
def test_chunked(raw: bytes, expect: Got | Fails, method: str, limit: int) -> None:
    check(raw, expect, method, limit)


@pytest.mark.parametrize(("raw", "expect", "method", "limit"), BODY_LIMITS)
def test_body_limits(raw: bytes, expect: Got | Fails, method: str, limit: int) -> None:
    check(raw, expect, method, limit)


def test_two_responses_on_one_connection() -> None:
    """Framing leaves the reader at the next response: what keep-alive depends on."""
    fp = io.BufferedReader(io.BytesIO(
        TE + b"2\r\nok\r\n0\r\nX-T: 1\r\n\r\n" + OK + b"Content-Length: 3\r\n\r\nyes"))
    bodies = []
    for _ in range(2):
        head = read_head(fp)
        bodies.append(read_body(fp, framing("GET", head), MAX_BODY))
    assert bodies == [b"ok", b"yes"] and fp.read() == b""


def test_too_large_body_is_refused_before_it_is_read() -> None:
    """A Content-Length past the limit fails at once: nothing of the body is buffered."""
    fp = io.BufferedReader(io.BytesIO(OK + b"Content-Length: 11\r\n\r\n" + b"x" * 11))
    head = read_head(fp)
    with pytest.raises(ResponseTooLarge):
        read_body(fp, framing("GET", head), 10)
    assert fp.read() == b"x" * 11


# --- the request side (RFC 9112 §3): nothing a caller passes may split the message -----------

@pytest.mark.parametrize(("method", "target", "headers", "match"), [
    ("GET\r\nX", "/", [], "invalid HTTP method"),
    ("GET X", "/", [], "invalid HTTP method"),
    ("GET", "/a b", [], "invalid request target"),
    ("GET", "/\r\nX: y", [], "invalid request target"),
    ("GET", "/", [("X\r\nY", "1")], "invalid HTTP header name"),
    ("GET", "/", [("X", "1\r\nInjected: yes")], "invalid value for header X"),
    ("GET", "/", [("X", "1\x00")], "invalid value for header X"),
], ids=["crlf-method", "space-method", "space-target", "crlf-target", "crlf-name",
        "crlf-value", "nul-value"])
def test_request_injection_refused(method: str, target: str, headers: list[tuple[str, str]],
                                   match: str) -> None:
    with pytest.raises(ValueError, match=match):
        encode_request(method, target, headers, b"")


def test_request_bytes() -> None:
    wire = encode_request("POST", "/new-order?x=1", [("Host", "ca.test"), ("Content-Length", "2")], b"{}")
    assert wire == b"POST /new-order?x=1 HTTP/1.1\r\nHost: ca.test\r\nContent-Length: 2\r\n\r\n{}"


# --- where a request goes (_conn.split_url, Proxy.from_url) ------------------------------------

@pytest.mark.parametrize(("url", "origin", "target", "authority"), [
    ("https://ca.test/dir", ("https", "ca.test", 443), "/dir", "ca.test"),
    ("https://ca.test:443", ("https", "ca.test", 443), "/", "ca.test"),
    ("https://ca.test:14000/dir?x=1", ("https", "ca.test", 14000), "/dir?x=1", "ca.test:14000"),
    ("http://[::1]:8080/a?b=c", ("http", "::1", 8080), "/a?b=c", "[::1]:8080"),
    ("HTTPS://CA.Test/Dir", ("https", "ca.test", 443), "/Dir", "ca.test"),
    ("https://b\u00fccher.example/x", ("https", "xn--bcher-kva.example", 443), "/x", "xn--bcher-kva.example"),
], ids=["default-port", "explicit-default", "port-and-query", "ipv6", "case", "idn"])
def test_split_url(url: str, origin: tuple[str, str, int], target: str, authority: str) -> None:
    o, t = split_url(url)
    assert ((o.scheme, o.host, o.port), t, o.authority) == (origin, target, authority)


@pytest.mark.parametrize(("url", "match"), [
    ("ftp://ca.test/", "not an http or https URL"),
    ("https:///dir", "not an http or https URL"),
    ("https://ca.test:99999/", "bad port in URL"),
], ids=["ftp", "no-host", "port-too-big"])
def test_split_url_refuses(url: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        split_url(url)


def test_proxy_credentials_are_basic_auth() -> None:
    p = Proxy.from_url("http://us%40er:p%3Ass@proxy.test:3128")
    assert (p.origin.hostport, p.authorization) == ("proxy.test:3128", "Basic dXNAZXI6cDpzcw==")
    assert Proxy.from_url("proxy.test:3128").authorization is None
    with pytest.raises(ValueError, match="only http:// proxies"):
        Proxy.from_url("https://proxy.test")


# --- the edges mutation testing found unpinned (`build.py mutate http._wire`) -----------------------

class Endless(io.RawIOBase):
    """A server that never stops sending: `prefix`, then `fill` for ever."""

    def __init__(self, prefix: bytes, fill: bytes = b"a") -> None:
        self.prefix, self.fill = prefix, fill

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = len(b)
        data = self.prefix[:n]
        self.prefix = self.prefix[len(data):]
        data += self.fill * (n - len(data))
        b[:n] = data[:n]
        return n


def test_an_endless_header_line_is_cut_at_the_budget() -> None:
    fp = io.BufferedReader(Endless(OK + b"X-A: "))
    with pytest.raises(ProtocolError, match=f"^header section larger than {MAX_HEAD_BYTES} bytes$"):
        read_head(fp)


def test_an_endless_body_without_a_length_is_cut_at_the_limit() -> None:
    fp = io.BufferedReader(Endless(OK + b"\r\n"))
    head = read_head(fp)
    with pytest.raises(ResponseTooLarge, match="^response body larger than the limit of 1000 bytes"):
        read_body(fp, framing("GET", head), 1000)


def test_a_header_section_that_ends_exactly_at_the_budget_then_closes() -> None:
    """The budget used up to the byte, then EOF: over the budget, not a truncated line."""
    left = MAX_HEAD_BYTES - len(OK)
    line = b"X-Fill: " + b"f" * (left - len(b"X-Fill: ") - 2) + b"\r\n"
    assert len(OK + line) == MAX_HEAD_BYTES
    with pytest.raises(ProtocolError, match=f"^header section larger than {MAX_HEAD_BYTES} bytes$"):
        read_head(io.BufferedReader(io.BytesIO(OK + line)))


@pytest.mark.parametrize(("raw", "message"), [
    (b"", "^server closed the connection without a response$"),
    (b"HTTP/1.1 200 O", "^connection closed in the middle of the status line$"),
    (b"H" * MAX_HEAD_BYTES, "^connection closed in the middle of the status line$"),  # at the limit
    (b"H" * (MAX_HEAD_BYTES + 1), f"^status line longer than {MAX_HEAD_BYTES} bytes$"),
])
def test_a_status_line_cut_short(raw: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        read_head(io.BufferedReader(io.BytesIO(raw)))


def test_the_reason_phrase_is_kept_as_sent() -> None:
    assert read_head(io.BufferedReader(io.BytesIO(b"HTTP/1.1 200 OK \r\n\r\n"))).reason == "OK "
    assert read_head(io.BufferedReader(io.BytesIO(b"HTTP/1.1 200 FAX\r\n\r\n"))).reason == "FAX"
    assert read_head(io.BufferedReader(io.BytesIO(b"HTTP/1.1 200 caf\xe9\r\n\r\n"))).reason == "caf\xe9"


def test_long_garbage_is_shown_cut_to_80_bytes() -> None:
    junk = b"J" * 100
    with pytest.raises(ProtocolError) as e:
        read_head(io.BufferedReader(io.BytesIO(junk + b"\r\n")))
    assert str(e.value) == f"malformed status line: {junk[:80]!r}"
    with pytest.raises(ProtocolError) as e:
        read_head(io.BufferedReader(io.BytesIO(OK + junk + b"\r\n\r\n")))
    assert str(e.value) == f"malformed header line: {junk[:80]!r}"
    with pytest.raises(ProtocolError) as e:
        exchange(OK + b"Transfer-Encoding: chunked\r\n\r\n" + b"z" * 100 + b"\r\n")
    assert str(e.value) == f"malformed chunk size line: {b'z' * 80!r}"
    many = ", ".join(str(n) for n in range(100)).encode()
    with pytest.raises(ProtocolError) as e:
        exchange(OK + b"Content-Length: " + many + b"\r\n\r\n")
    assert len(str(e.value)) == 200 and str(e.value).startswith("invalid Content-Length: 0, 1, 10, 11")


@pytest.mark.parametrize(("value", "length"), [
    ("0" * 30 + "5", 5),  # leading zeros do not count
    ("9" * 18, 10**18 - 1),  # 18 digits: read as they are
    ("1" + "0" * 18, 10**18),  # 19 digits: too large for any body, 10**18
    ("1234567890123456789", 10**18),
    ("9" * 4000, 10**18),
])
def test_content_length_digits(value: str, length: int) -> None:
    head = read_head(io.BufferedReader(io.BytesIO(OK + f"Content-Length: {value}\r\n\r\n".encode())))
    assert framing("GET", head).length == length


@pytest.mark.parametrize(("raw", "expect"), [
    (b"10\r\n" + b"s" * 16 + b"\r\n0\r\n\r\n", b"s" * 16),  # the size is hexadecimal
    (b"1A\r\n" + b"t" * 26 + b"\r\n0\r\n\r\n", b"t" * 26),
])
def test_chunk_sizes_are_hex(raw: bytes, expect: bytes) -> None:
    assert exchange(OK + b"Transfer-Encoding: chunked\r\n\r\n" + raw).body == expect


@pytest.mark.parametrize(("chunk", "message"), [
    (b"2\r\nabc\n0\r\n\r\n", "^chunk data longer than its chunk size$"),
    (b"2\r\nabc\r\n0\r\n\r\n", "^chunk terminator larger than 2 bytes$"),
])
def test_chunk_data_past_its_size(chunk: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        exchange(OK + b"Transfer-Encoding: chunked\r\n\r\n" + chunk)


def test_connection_tokens_are_a_comma_list() -> None:
    assert exchange(OK + b"Content-Length: 0\r\nConnection: upgrade,close\r\n\r\n").keep_alive is False
    assert exchange(OK + b"Content-Length: 0\r\nConnection: upgrade, keep-alive\r\n\r\n").keep_alive is True


def test_targets_and_values_may_hold_any_other_character() -> None:
    raw = encode_request("GET", "/X%20Y?a=b", [("X-Any", "XX \t~\xe9")], b"")
    assert raw == b"GET /X%20Y?a=b HTTP/1.1\r\nX-Any: XX \t~\xe9\r\n\r\n"


@pytest.mark.parametrize("host", ["localhost", "acme-v02.api.letsencrypt.org", "127.0.0.1", "::1",
                                  "example.org.", "a" * 63 + ".example", ""])
def test_an_ascii_host_is_what_the_idna_codec_makes_of_it(host: str) -> None:
    """The resolver and TLS get the codec's bytes without importing the codec."""
    from wucme.http._conn import _host

    assert _host(host) == host.encode("idna")


@pytest.mark.parametrize("host", ["bücher.example", "a" * 64 + ".example", "a..example"])
def test_other_hosts_are_left_to_the_codec(host: str) -> None:
    from wucme.http._conn import _host

    assert _host(host) == host
