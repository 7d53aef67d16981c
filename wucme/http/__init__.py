"""HTTP for wucme: the transport interface and its two implementations.

wµCME carries its own HTTP/1.1 client because cURL was not available on VMS;
`wucme.http.client` is that client (the default).  `wucme.http.reqs` is a
second transport on `requests`, selected by the logical name WUCME_HTTP=requests.
Both pass one conformance suite (tests/loopback/test_transport_conformance.py).

This package imports nothing of wucme above it.
"""
from __future__ import annotations

from typing import NamedTuple, Protocol

from wucme import __version__
from wucme.http.proxyenv import ProxyRules

USER_AGENT = f"wucme/{__version__} (wuCME; uacme-compatible ACME client)"
#: Default bound on a response body; a larger one raises ResponseTooLarge.
MAX_BODY = 4 * 1024 * 1024


class HttpError(Exception):
    """A transport-level failure: no usable HTTP response was received."""


class ConnectError(HttpError):
    """The TCP connection (or the proxy's CONNECT) could not be made."""


class HttpTimeout(HttpError):
    """Connecting or reading took longer than the configured timeout."""


class TLSError(HttpError):
    """The TLS handshake failed, including certificate verification."""


class ProtocolError(HttpError):
    """The peer's bytes were not valid HTTP/1.1."""


class ResponseTooLarge(HttpError):
    """The response body exceeded HttpConfig.max_body."""


class HttpConfig(NamedTuple):
    """Everything a transport needs to know; built by the caller from logical names.  (The
    immutable records of the HTTP layer are NamedTuples: a frozen dataclass costs six times
    as much to define, at every start; docs/performance.md.)"""

    ca_bundle: str | None = None  # PEM file of trusted roots (WUCME_CA_BUNDLE, UACME_CAINFO)
    ca_path: str | None = None  # directory of hashed roots (UACME_CAPATH)
    proxy: str | None = None  # http://[user:pass@]host:port, used through CONNECT (UACME_PROXY)
    #: Per-URL proxy choice as libcurl makes it (explicit proxy, *_proxy, no_proxy); when
    #: given, it decides instead of `proxy`.
    proxy_rules: ProxyRules | None = None
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    #: The whole request (connect, head and body): a server that answers one byte at a time
    #: cannot hold it longer (WUCME_HTTP_DEADLINE); None: no overall bound.
    deadline: float | None = 120.0
    max_body: int = MAX_BODY
    user_agent: str = USER_AGENT


    def proxy_for(self, url: str) -> str | None:
        """The proxy for `url` (None: direct)."""
        if self.proxy_rules is not None:
            return self.proxy_rules.for_url(url)
        return self.proxy


class Response:
    """One HTTP response, body fully read (a plain class, not a dataclass: `dataclasses`
    brings `inspect` and `ast` into every verb's start)."""

    __slots__ = ("status", "headers", "body", "url")

    def __init__(self, status: int, headers: list[tuple[str, str]] | None = None, body: bytes = b"",
                 url: str = "") -> None:
        self.status = status
        self.headers: list[tuple[str, str]] = [] if headers is None else headers
        self.body = body
        self.url = url

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, Response)
        return ((self.status, self.headers, self.body, self.url)
                == (other.status, other.headers, other.body, other.url))

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"Response(status={self.status!r}, headers={self.headers!r}, body={self.body[:64]!r}, url={self.url!r})"

    def header(self, name: str) -> str | None:
        """First value of a header, case-insensitively (uacme's find_header)."""
        low = name.lower()
        for k, v in self.headers:
            if k.lower() == low:
                return v
        return None

    def header_all(self, name: str) -> list[str]:
        """Every value of a repeated header, in order (e.g. several Link lines)."""
        low = name.lower()
        return [v for k, v in self.headers if k.lower() == low]

    @property
    def content_type(self) -> str:
        return (self.header("Content-Type") or "").split(";")[0].strip().lower()


class Transport(Protocol):
    """What the ACME layer needs from HTTP: one request, one fully read response."""

    def request(
        self,
        method: str,
        url: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response: ...

    def close(self) -> None: ...


def make_transport(kind: str = "builtin", config: HttpConfig | None = None) -> Transport:
    """The transport named `kind`: "builtin" (own client) or "requests"."""
    config = config or HttpConfig()
    k = (kind or "builtin").strip().lower()
    if k in ("builtin", "wucme", "own", ""):
        from wucme.http.client import HttpClient

        return HttpClient(config)
    if k == "requests":
        from wucme.http.reqs import RequestsTransport

        return RequestsTransport(config)
    raise ValueError(f"unknown HTTP transport {kind!r} (builtin or requests)")


__all__ = [
    "USER_AGENT", "MAX_BODY", "HttpError", "ConnectError", "HttpTimeout", "TLSError",
    "ProtocolError", "ResponseTooLarge", "HttpConfig", "Response", "Transport", "make_transport",
    "ProxyRules",
]
