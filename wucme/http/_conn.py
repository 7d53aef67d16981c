"""One HTTP/1.1 connection: dialling (direct or through a CONNECT proxy), TLS, one exchange.

Only this module touches sockets and ssl; it turns their exceptions into wucme.http errors.
"""
from __future__ import annotations

import base64
import select
import socket
import ssl
from typing import NamedTuple
from urllib.parse import unquote, urlsplit

from wucme.http import ConnectError, HttpError, HttpTimeout, ProtocolError, TLSError
from wucme.http._deadline import watch
from wucme.http._wire import Head, NoResponse, encode_request, framing, keep_alive, read_body, read_head

_DEFAULT_PORT = {"http": 80, "https": 443}


class Origin(NamedTuple):
    """scheme, host, port: what a connection may be reused for (RFC 9110 §4.3.1)."""

    scheme: str
    host: str
    port: int

    @property
    def authority(self) -> str:
        """host[:port] as the Host header and CONNECT want it; IPv6 literals in brackets."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == _DEFAULT_PORT[self.scheme] else f"{host}:{self.port}"

    @property
    def hostport(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def split_url(url: str) -> tuple[Origin, str]:
    """The origin and the origin-form request target (path?query) of an http(s) URL."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORT or not parts.hostname:
        raise ValueError(f"not an http or https URL: {url!r}")
    host = parts.hostname
    if not host.isascii():
        host = host.encode("idna").decode("ascii")
    try:
        port = parts.port or _DEFAULT_PORT[scheme]
    except ValueError as exc:
        raise ValueError(f"bad port in URL {url!r}") from exc
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Origin(scheme, host, port), target


class Proxy(NamedTuple):
    """An http:// proxy with optional basic credentials (uacme's UACME_PROXY)."""

    origin: Origin
    authorization: str | None

    @classmethod
    def from_url(cls, url: str) -> Proxy:
        origin, _ = split_url(url if "://" in url else f"http://{url}")
        if origin.scheme != "http":
            raise ValueError(f"only http:// proxies are supported: {url!r}")
        parts = urlsplit(url if "://" in url else f"http://{url}")
        auth = None
        if parts.username is not None:
            cred = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            auth = "Basic " + base64.b64encode(cred.encode("utf-8")).decode("ascii")
        return cls(origin, auth)


def _host(name: str) -> str | bytes:
    """*name* as the "idna" codec would give it to the resolver and to TLS (SNI, the hostname
    check): for an ASCII name whose labels it accepts, the same bytes, made here so the codec
    (and with it `stringprep` and `unicodedata`) is never imported.  Anything else is left to
    the codec, errors included."""
    if name.isascii():
        labels = name.split(".")
        if all(0 < len(label) < 64 for label in labels[:-1]) and len(labels[-1]) < 64:
            return name.encode("ascii")
    return name


def _tcp(origin: Origin, timeout: float) -> socket.socket:
    try:
        # getaddrinfo() takes the host as bytes too; typeshed names str only.
        sock = socket.create_connection((_host(origin.host), origin.port), timeout=timeout)  # type: ignore[arg-type]
    except TimeoutError as exc:
        raise HttpTimeout(f"connecting to {origin.hostport} timed out after {timeout:g} s") from exc
    except OSError as exc:
        raise ConnectError(f"cannot connect to {origin.hostport}: {exc.strerror or exc}") from exc
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _tunnel(sock: socket.socket, proxy: Proxy, origin: Origin) -> None:
    """CONNECT authority-form through the proxy (RFC 9110 §9.3.6); 2xx opens the tunnel."""
    headers = [("Host", origin.hostport)]
    if proxy.authorization:
        headers.append(("Proxy-Authorization", proxy.authorization))
    where = f"proxy {proxy.origin.hostport}"
    try:
        sock.sendall(encode_request("CONNECT", origin.hostport, headers, b""))
        # Safe to buffer: the proxy says nothing more until the TLS client speaks.
        with sock.makefile("rb") as fp:
            head = read_head(fp)
    except TimeoutError as exc:
        raise HttpTimeout(f"{where} did not answer CONNECT in time") from exc
    except ProtocolError as exc:
        raise ConnectError(f"{where} gave a bad answer to CONNECT: {exc}") from exc
    except OSError as exc:
        raise ConnectError(f"{where} failed during CONNECT: {exc.strerror or exc}") from exc
    if not 200 <= head.status < 300:
        raise ConnectError(
            f"{where} refused CONNECT {origin.hostport}: {head.status} {head.reason}".rstrip()
        )


def _tls(sock: socket.socket, ctx: ssl.SSLContext, origin: Origin) -> ssl.SSLSocket:
    """TLS with SNI and hostname check; failures of any kind here are TLS failures."""
    try:
        return ctx.wrap_socket(sock, server_hostname=_host(origin.host))
    except ssl.SSLCertVerificationError as exc:
        raise TLSError(
            f"certificate of {origin.hostport} not trusted: {exc.verify_message or exc.reason}"
        ) from exc
    except TimeoutError as exc:
        raise HttpTimeout(f"TLS handshake with {origin.hostport} timed out") from exc
    except (ssl.SSLError, OSError) as exc:
        raise TLSError(f"TLS handshake with {origin.hostport} failed: {exc}") from exc


class Stale(HttpError):
    """A reused connection turned out closed before the server read our request."""


class Connection:
    """A socket (plain or TLS) with a buffered reader; carries requests one at a time."""

    def __init__(self, sock: socket.socket, origin: Origin) -> None:
        self.sock = sock
        self.origin = origin
        self.fp = sock.makefile("rb")
        self.reusable = True
        self.uses = 0

    @classmethod
    def dial(
        cls, origin: Origin, ctx: ssl.SSLContext | None, proxy: Proxy | None,
        connect_timeout: float, read_timeout: float,
    ) -> Connection:
        """TCP to the origin (or proxy), the CONNECT tunnel for https via a proxy, then TLS."""
        sock = _tcp(proxy.origin if proxy else origin, connect_timeout)
        watch(sock)  # the request's deadline ends a dripping CONNECT or handshake too
        try:
            if origin.scheme == "https":
                assert ctx is not None
                if proxy:
                    _tunnel(sock, proxy, origin)
                sock = _tls(sock, ctx, origin)
            sock.settimeout(read_timeout)
        except BaseException:
            sock.close()
            raise
        return cls(sock, origin)

    def dropped(self) -> bool:
        """An idle connection with something to read has been closed (or spoilt) by the server."""
        try:
            return bool(select.select([self.sock], [], [], 0)[0])
        except (OSError, ValueError):
            return True

    def exchange(self, method: str, request: bytes, max_body: int) -> tuple[Head, bytes]:
        """Send one request, read its whole response; Stale if nothing came back on a reuse."""
        self.uses += 1
        self.reusable = False
        watch(self.sock)
        try:
            try:
                self.sock.sendall(request)
                started = bool(self.fp.peek(1))
            except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
                started = False
            if not started:
                if self.uses > 1:
                    raise Stale("kept-alive connection closed by the server")
                raise NoResponse("server closed the connection without a response")
            head = read_head(self.fp)
            frame = framing(method, head)
            body = read_body(self.fp, frame, max_body)
        except TimeoutError as exc:
            wait = self.sock.gettimeout()
            raise HttpTimeout(f"{self.origin.hostport} did not answer within {wait:g} s") from exc
        except ssl.SSLError as exc:
            raise TLSError(f"TLS failure talking to {self.origin.hostport}: {exc}") from exc
        except OSError as exc:
            raise ConnectError(
                f"connection to {self.origin.hostport} lost: {exc.strerror or exc}"
            ) from exc
        self.reusable = keep_alive(head, frame)
        return head, body

    def close(self) -> None:
        self.reusable = False
        self.fp.close()
        self.sock.close()


__all__ = ["Origin", "Proxy", "Connection", "Stale", "split_url"]
