"""Just enough of a TLS ClientHello (RFC 8446 §4.1.2) to route a connection before any reply.

The ualpn port must decide from the first flight alone whether a connection is an ACME
tls-alpn-01 validation (ALPN ``acme-tls/1`` with a known SNI) or ordinary traffic to proxy
untouched, so the bytes are parsed here and replayed afterwards, never consumed by a TLS stack.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ClientHello", "NEED_MORE", "NOT_TLS", "parse_client_hello", "looks_like_tls", "MAX_HELLO"]

#: A ClientHello longer than this is not worth waiting for; the connection is proxied as is.
MAX_HELLO = 32 * 1024

_HANDSHAKE = 0x16
_CLIENT_HELLO = 0x01
_EXT_SERVER_NAME = 0
_EXT_ALPN = 16


@dataclass(frozen=True)
class ClientHello:
    """The two extensions routing needs: the SNI host name and the offered ALPN protocols."""

    server_name: str | None
    alpn: tuple[bytes, ...]


class _Sentinel:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


NEED_MORE = _Sentinel("NEED_MORE")
NOT_TLS = _Sentinel("NOT_TLS")


def looks_like_tls(prefix: bytes) -> bool:
    """ualpn's first test: a handshake record of TLS 1.0..1.3 framing (``16 03 01..04``)."""
    return len(prefix) >= 3 and prefix[0] == _HANDSHAKE and prefix[1] == 3 and 1 <= prefix[2] <= 4


def parse_client_hello(data: bytes) -> ClientHello | _Sentinel:
    """Parse the ClientHello at the start of *data* (possibly split over several records).

    Returns NEED_MORE until the whole message is in, NOT_TLS for anything else.
    """
    if len(data) < 3:
        return NEED_MORE if data == bytes([_HANDSHAKE, 3])[: len(data)] else NOT_TLS
    if not looks_like_tls(data):
        return NOT_TLS
    message = bytearray()
    pos = 0
    needed: int | None = None
    while needed is None or len(message) < needed:
        if len(data) < pos + 5:
            return NEED_MORE
        if data[pos] != _HANDSHAKE or data[pos + 1] != 3:
            return NOT_TLS
        length = int.from_bytes(data[pos + 3 : pos + 5], "big")
        if length == 0 or length > 16384 + 256:
            return NOT_TLS
        if len(data) < pos + 5 + length:
            return NEED_MORE
        message += data[pos + 5 : pos + 5 + length]
        pos += 5 + length
        if needed is None and len(message) >= 4:
            if message[0] != _CLIENT_HELLO:
                return NOT_TLS
            needed = 4 + int.from_bytes(message[1:4], "big")
            if needed > MAX_HELLO:
                return NOT_TLS
    try:
        return _parse_body(bytes(message[4:needed]))
    except (IndexError, ValueError):
        return NOT_TLS


def _vector(data: bytes, pos: int, length_bytes: int, stop: int) -> tuple[int, int]:
    """Where the vector at *pos* (its length in *length_bytes* bytes) starts and ends; it must end
    by *stop*, else ValueError.  Offsets rather than slices and readers: the parse runs for every
    connection `wucme alpn` accepts."""
    head = pos + length_bytes
    if head > stop:
        raise ValueError("truncated")
    end = head + int.from_bytes(data[pos:head], "big")
    if end > stop:
        raise ValueError("truncated")
    return head, end


def _parse_body(body: bytes) -> ClientHello:
    stop = len(body)
    pos = 2 + 32  # legacy_version, random
    if pos > stop:
        raise ValueError("truncated")
    pos = _vector(body, pos, 1, stop)[1]  # legacy_session_id
    pos = _vector(body, pos, 2, stop)[1]  # cipher_suites
    pos = _vector(body, pos, 1, stop)[1]  # legacy_compression_methods
    server_name: str | None = None
    alpn: tuple[bytes, ...] = ()
    if pos >= stop:  # no extensions at all (an SSLv3-style hello)
        return ClientHello(None, ())
    pos, extensions_end = _vector(body, pos, 2, stop)
    while pos < extensions_end:  # ~20 extensions in a browser's hello: no call per extension
        start = pos + 4
        if start > extensions_end:
            raise ValueError("truncated")
        kind = body[pos] << 8 | body[pos + 1]
        end = start + (body[pos + 2] << 8 | body[pos + 3])
        if end > extensions_end:
            raise ValueError("truncated")
        pos = end
        if kind == _EXT_SERVER_NAME:
            at, names_end = _vector(body, start, 2, end)
            while at < names_end:  # RFC 6066 §3: at most one host_name (type 0)
                name_type = body[at]
                name_start, at = _vector(body, at + 1, 2, names_end)
                if name_type == 0 and server_name is None:
                    server_name = body[name_start:at].decode("ascii", "replace")
        elif kind == _EXT_ALPN:
            at, protocols_end = _vector(body, start, 2, end)
            offered = []
            while at < protocols_end:
                protocol_start, at = _vector(body, at, 1, protocols_end)
                offered.append(body[protocol_start:at])
            alpn = tuple(offered)
    return ClientHello(server_name, alpn)
