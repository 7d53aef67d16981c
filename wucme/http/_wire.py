"""HTTP/1.1 message syntax and framing (RFC 9112), on byte readers; no sockets here.

Everything in this module works on a `Reader` (a buffered file with `readline(limit)`
and `read(n)`), so it runs the same over a socket's makefile() and over io.BytesIO.
"""
from __future__ import annotations

import re
from typing import NamedTuple, Protocol

from wucme.http import ProtocolError, ResponseTooLarge

#: Bounds on what a server may make us hold in memory before the body.
MAX_HEAD_BYTES = 64 * 1024
MAX_HEADERS = 100
#: 1xx responses skipped before the final one; a server may not stall us with endless ones.
MAX_INTERIM = 10
#: A chunk-size line (with extensions) longer than this is not an honest one.
MAX_CHUNK_LINE = 4096
_READ_SIZE = 64 * 1024

# RFC 9110 §5.6.2: token = 1*tchar;
#   tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~"
#           / DIGIT / ALPHA
_TOKEN = r"[-!#$%&'*+.^_`|~0-9A-Za-z]+"
_TOKEN_RE = re.compile(_TOKEN)
# RFC 9112 §4: status-line = HTTP-version SP status-code SP [ reason-phrase ]
#   HTTP-version = "HTTP/" DIGIT "." DIGIT; status-code = 3DIGIT.
# A missing final SP ("HTTP/1.1 200") is accepted: several servers send it.
_STATUS_RE = re.compile(rb"HTTP/([0-9])\.([0-9]) ([0-9]{3})(?: ([^\x00\r\n]*))?")
# RFC 9112 §5: field-line = field-name ":" OWS field-value OWS (no space before the colon).
_FIELD_RE = re.compile(rb"(" + _TOKEN.encode() + rb"):[ \t]*([^\x00\r\n]*?)[ \t]*")
# RFC 9112 §7.1: chunk-size = 1*HEXDIG, then optional chunk-ext.
_CHUNK_RE = re.compile(rb"([0-9A-Fa-f]{1,16})[ \t]*(?:;[^\r\n]*)?")
_DIGITS_RE = re.compile(r"[0-9]+")


class Reader(Protocol):
    def readline(self, size: int = -1, /) -> bytes: ...

    def read(self, size: int = -1, /) -> bytes: ...


class NoResponse(ProtocolError):
    """The connection ended before the first byte of a response (maybe a stale keep-alive)."""


class Head(NamedTuple):
    """The status line and header section of one response."""

    version: tuple[int, int]
    status: int
    reason: str
    headers: list[tuple[str, str]]

    def values(self, name: str) -> list[str]:
        low = name.lower()
        return [v for k, v in self.headers if k.lower() == low]

    def tokens(self, name: str) -> list[str]:
        """Comma-separated list elements of every `name` line, lower-cased (RFC 9110 §5.6.1)."""
        return [t.strip().lower() for v in self.values(name) for t in v.split(",") if t.strip()]


def check_token(what: str, value: str) -> str:
    """Refuse a method or header name that would let a caller inject protocol text."""
    if not _TOKEN_RE.fullmatch(value):
        raise ValueError(f"invalid HTTP {what}: {value!r}")
    return value


def encode_request(method: str, target: str, headers: list[tuple[str, str]], body: bytes) -> bytes:
    """request-line CRLF *( field-line CRLF ) CRLF [ body ] (RFC 9112 §2.1, §3)."""
    check_token("method", method)
    if any(c in target for c in " \r\n\x00"):
        raise ValueError(f"invalid request target: {target!r}")
    lines = [f"{method} {target} HTTP/1.1"]
    for name, value in headers:
        check_token("header name", name)
        if any(c in value for c in "\r\n\x00"):
            raise ValueError(f"invalid value for header {name}: {value!r}")
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _line(fp: Reader, limit: int, what: str, bound: int = 0) -> bytes:
    """One line of at most `limit` bytes, terminator included, returned without it;
    a bare LF is accepted (RFC 9112 §2.2)."""
    raw = fp.readline(limit + 1) if limit > 0 else b"?"
    if len(raw) > limit:
        raise ProtocolError(f"{what} larger than {bound or limit} bytes")
    if not raw.endswith(b"\n"):
        raise ProtocolError(f"connection closed in the middle of the {what}")
    return raw[:-2] if raw.endswith(b"\r\n") else raw[:-1]


def _parse_status(line: bytes) -> tuple[tuple[int, int], int, str]:
    m = _STATUS_RE.fullmatch(line)
    if not m:
        raise ProtocolError(f"malformed status line: {line[:80]!r}")
    major, minor, code = int(m[1]), int(m[2]), int(m[3])
    if major != 1:
        raise ProtocolError(f"unsupported HTTP version {major}.{minor}")
    return (major, minor), code, (m[4] or b"").decode("latin-1")


def read_fields(fp: Reader, budget: int, what: str = "header") -> list[tuple[str, str]]:
    """A field section up to its empty line, within `budget` bytes and MAX_HEADERS lines."""
    fields: list[tuple[str, str]] = []
    while True:
        line = _line(fp, budget, f"{what} section", MAX_HEAD_BYTES)
        budget -= len(line) + 2
        if not line:
            return fields
        if line[:1] in (b" ", b"\t"):
            # RFC 9112 §5.2: a user agent replaces obs-fold with SP.
            if not fields:
                raise ProtocolError(f"{what} section starts with a continuation line")
            name, value = fields[-1]
            fields[-1] = (name, f"{value} {line.strip().decode('latin-1')}".strip())
            continue
        m = _FIELD_RE.fullmatch(line)
        if not m:
            raise ProtocolError(f"malformed {what} line: {line[:80]!r}")
        if len(fields) >= MAX_HEADERS:
            raise ProtocolError(f"more than {MAX_HEADERS} {what} lines")
        fields.append((m[1].decode("ascii"), m[2].decode("latin-1")))


def read_head(fp: Reader) -> Head:
    """Status line and headers, skipping 1xx interim responses (RFC 9110 §15.2)."""
    for _ in range(MAX_INTERIM + 1):
        raw = fp.readline(MAX_HEAD_BYTES + 1)
        if not raw:
            raise NoResponse("server closed the connection without a response")
        if not raw.endswith(b"\n"):
            if len(raw) > MAX_HEAD_BYTES:
                raise ProtocolError(f"status line longer than {MAX_HEAD_BYTES} bytes")
            raise ProtocolError("connection closed in the middle of the status line")
        version, status, reason = _parse_status(raw.rstrip(b"\r\n"))
        headers = read_fields(fp, MAX_HEAD_BYTES - len(raw))
        if not 100 <= status < 200 or status == 101:
            return Head(version, status, reason, headers)
    raise ProtocolError(f"more than {MAX_INTERIM} interim (1xx) responses")


class Framing(NamedTuple):
    """How the body is delimited: "none", "length" (with `length`), "chunked" or "close"."""

    kind: str
    length: int = 0


def framing(method: str, head: Head) -> Framing:
    """Message body length of a response, RFC 9112 §6.3 in its order of precedence."""
    if method.upper() == "HEAD" or head.status < 200 or head.status in (204, 304):
        return Framing("none")
    codings = head.tokens("Transfer-Encoding")
    if codings:
        # Transfer-Encoding overrides Content-Length; without chunked last, the body runs to close.
        return Framing("chunked" if codings[-1] == "chunked" else "close")
    lengths = {v.strip() for v in head.values("Content-Length") for v in v.split(",")}
    if not lengths:
        return Framing("close")
    # Content-Length = 1*DIGIT, ASCII digits only (str.isdigit() also takes "²").
    value = min(lengths)
    if len(lengths) != 1 or not _DIGITS_RE.fullmatch(value):
        raise ProtocolError(f"invalid Content-Length: {', '.join(sorted(lengths))}"[:200])
    # More digits than any body could have is simply too large: int() would refuse
    # thousands of digits with a ValueError (sys.get_int_max_str_digits()).
    digits = value.lstrip("0") or "0"
    return Framing("length", int(digits) if len(digits) <= 18 else 10**18)


def keep_alive(head: Head, frame: Framing) -> bool:
    """Whether the connection may carry another request (RFC 9112 §9.3)."""
    if frame.kind == "close" or head.version < (1, 1):
        return False
    return "close" not in head.tokens("Connection") and not (
        frame.kind == "chunked" and head.values("Content-Length")
    )


def _too_large(limit: int) -> ResponseTooLarge:
    return ResponseTooLarge(f"response body larger than the limit of {limit} bytes (max_body)")


def _exactly(fp: Reader, n: int) -> bytes:
    data = fp.read(n)
    if len(data) < n:
        raise ProtocolError(f"connection closed after {len(data)} of {n} body bytes")
    return data


def read_body(fp: Reader, frame: Framing, limit: int) -> bytes:
    """The whole body as `frame` delimits it, refusing more than `limit` bytes."""
    if frame.kind == "none":
        return b""
    if frame.kind == "length":
        if frame.length > limit:
            raise _too_large(limit)
        return _exactly(fp, frame.length)
    if frame.kind == "chunked":
        return _read_chunked(fp, limit)
    parts: list[bytes] = []
    total = 0
    while data := fp.read(_READ_SIZE):
        total += len(data)
        if total > limit:
            raise _too_large(limit)
        parts.append(data)
    return b"".join(parts)


def _read_chunked(fp: Reader, limit: int) -> bytes:
    """chunked-body = *chunk last-chunk trailer-section CRLF (RFC 9112 §7.1); trailers dropped."""
    parts: list[bytes] = []
    total = 0
    while True:
        line = _line(fp, MAX_CHUNK_LINE, "chunk size line")
        m = _CHUNK_RE.fullmatch(line)
        if not m:
            raise ProtocolError(f"malformed chunk size line: {line[:80]!r}")
        size = int(m[1], 16)
        if size == 0:
            read_fields(fp, MAX_HEAD_BYTES, "trailer")
            return b"".join(parts)
        total += size
        if total > limit:
            raise _too_large(limit)
        parts.append(_exactly(fp, size))
        if _line(fp, 2, "chunk terminator"):
            raise ProtocolError("chunk data longer than its chunk size")
