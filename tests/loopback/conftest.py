"""Real loopback servers for the transport tests: an HTTP(S) server, a scripted raw server, a proxy."""
from __future__ import annotations

import datetime
import ipaddress
import json
import select
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from harness import ports
from harness.loopback import stop_accepting
from wucme.http import HttpConfig, Transport, make_transport

KINDS = ["builtin", "requests"]


# --- certificates ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Certs:
    ca: Path  # PEM of the test root: what config.ca_bundle points at
    ca_dir: Path  # the same root in a hashed directory, for config.ca_path
    cert: Path  # server chain for localhost and 127.0.0.1
    key: Path


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    """A throwaway CA and a server certificate it signed, valid for localhost and 127.0.0.1."""
    out = tmp_path_factory.mktemp("certs")
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (
        x509.CertificateBuilder().subject_name(_name("wucme test root")).issuer_name(_name("wucme test root"))
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder().subject_name(_name("localhost")).issuer_name(ca.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem = ca.public_bytes(serialization.Encoding.PEM)
    (out / "ca.pem").write_bytes(ca_pem)
    ca_dir = out / "capath"
    ca_dir.mkdir()
    # OpenSSL's hashed-directory lookup: <subject_hash>.0; compute it through the ssl module.
    (ca_dir / f"{_subject_hash(out / 'ca.pem')}.0").write_bytes(ca_pem)
    (out / "server.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM) + ca_pem)
    (out / "server.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return Certs(out / "ca.pem", ca_dir, out / "server.pem", out / "server.key")


def _subject_hash(pem: Path) -> str:
    import subprocess

    return subprocess.run(["openssl", "x509", "-noout", "-subject_hash", "-in", str(pem)],
                          check=True, capture_output=True, text=True).stdout.strip()


def server_context(certs: Certs) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certs.cert, certs.key)
    return ctx


# --- an HTTP/1.1 server with a few routes ----------------------------------------------------

class Handler(BaseHTTPRequestHandler):
    """Routes for the conformance suite; `server` is a LoopbackHTTPServer."""

    protocol_version = "HTTP/1.1"
    server: LoopbackHTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def _send(self, status: int, body: bytes, headers: list[tuple[str, str]] = [],  # noqa: B006
              length: bool = True) -> None:
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        if length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _chunked(self, parts: list[bytes], trailer: bytes = b"") -> None:
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for p in parts:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(p), p))
        self.wfile.write(b"0\r\n" + trailer + b"\r\n")

    def _route(self) -> None:
        path = urlsplit(self.path).path
        n = int(path.rsplit("/", 1)[1]) if path[-1:].isdigit() else 0
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.paths.append(self.path)
        if path == "/echo":
            echo = {"method": self.command, "path": self.path, "body": body.decode("latin-1"),
                    "headers": [[k, v] for k, v in self.headers.items()]}
            self._send(200, json.dumps(echo).encode(), [("Content-Type", "application/json")])
        elif path == "/links":
            self._send(200, b"ok", [("Link", '<http://a/1>;rel="up"'), ("X-Other", "1"),
                                    ("Link", '<http://a/2>;rel="alternate"')])
        elif path == "/chunked":
            self._chunked([b"hello, ", b"chunked ", b"world"], b"X-Trailer: yes\r\n")
        elif path.startswith("/bigchunked/"):
            self._chunked([b"x" * 1000] * (n // 1000))
        elif path.startswith("/big/"):
            self._send(200, b"y" * n)
        elif path == "/close":
            self.close_connection = True
            self._send(200, b"until the end", [("Connection", "close")], length=False)
        elif path == "/nocontent":
            self._send(204, b"", length=False)
        elif path == "/redirect":
            self._send(301, b"moved", [("Location", "/echo")])
        else:
            self._send(404, b"no such route")

    do_GET = do_POST = do_HEAD = do_PUT = _route


class LoopbackHTTPServer(ThreadingHTTPServer):
    """Counts accepted connections; speaks TLS when given a context; records SNI names."""

    daemon_threads = True

    def __init__(self, ctx: ssl.SSLContext | None = None) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.ctx = ctx
        self.connections = 0
        self.paths: list[str] = []
        self.sni: list[str | None] = []
        if ctx is not None:
            ctx.sni_callback = lambda sock, name, _ctx: self.sni.append(name)  # type: ignore[assignment]

    def process_request(self, request: Any, client_address: Any) -> None:
        self.connections += 1
        super().process_request(request, client_address)

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.ctx is not None:  # handshake in the connection's thread, not the accept loop
            try:
                request = self.ctx.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return
        try:
            super().finish_request(request, client_address)
        finally:
            if request is not None and self.ctx is not None:
                request.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that go away mid-test are expected

    @property
    def base(self) -> str:
        scheme = "https" if self.ctx else "http"
        return f"{scheme}://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def http_server() -> Iterator[LoopbackHTTPServer]:
    yield from _serve(LoopbackHTTPServer())


@pytest.fixture
def https_server(certs: Certs) -> Iterator[LoopbackHTTPServer]:
    yield from _serve(LoopbackHTTPServer(server_context(certs)))


def _serve(server: LoopbackHTTPServer) -> Iterator[LoopbackHTTPServer]:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


# --- a raw server: each connection runs a script, for framings http.server cannot make ------

def read_request(sock: socket.socket) -> bytes:
    """The head (and Content-Length body) of one request; b"" if the client closed first."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return b""
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            need = int(line.split(b":")[1])
            while len(rest) < need:
                rest += sock.recv(65536)
    return data


Script = Callable[[socket.socket, int], None]


class RawServer:
    """Accepts connections and runs `script(sock, index)` for each, in its own thread."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.connections = 0
        self._socks: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._accepter = threading.Thread(target=self._accept)
        self._accepter.start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}"

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            index = self.connections
            self.connections += 1
            self._socks.append(sock)
            t = threading.Thread(target=self._run, args=(sock, index))
            self._threads.append(t)
            t.start()

    def _run(self, sock: socket.socket, index: int) -> None:
        try:
            self.script(sock, index)
        except OSError:
            pass
        finally:
            sock.close()

    def close(self) -> None:
        stop_accepting(self.listener, self._accepter)
        for s in self._socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in self._threads:
            t.join(5)


@pytest.fixture
def raw_server() -> Iterator[Callable[[Script], RawServer]]:
    """A factory: raw_server(script) starts a RawServer, stopped after the test."""
    servers: list[RawServer] = []

    def start(script: Script) -> RawServer:
        servers.append(RawServer(script))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


# --- a proxy: CONNECT tunnels and absolute-form forwarding, relaying bytes ------------------

class Proxy:
    """A small real HTTP proxy; records each connection's request line and Proxy-Authorization."""

    def __init__(self, require_auth: str | None = None) -> None:
        self.require_auth = require_auth
        self.requests: list[str] = []
        self.auth: list[str | None] = []
        self.server = RawServer(self._serve)

    @property
    def url(self) -> str:
        return self.server.base

    def _serve(self, client: socket.socket, _index: int) -> None:
        data = read_request(client)
        if not data:
            return
        head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        method, target, _ = head[0].split(" ", 2)
        fields = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in head[1:])}
        self.requests.append(head[0])
        self.auth.append(fields.get("proxy-authorization"))
        if self.require_auth and fields.get("proxy-authorization") != self.require_auth:
            client.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                           b"Proxy-Authenticate: Basic realm=\"t\"\r\nContent-Length: 0\r\n\r\n")
            return
        if method == "CONNECT":
            host, _, port = target.rpartition(":")
            upstream = socket.create_connection((host.strip("[]"), int(port)))
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        else:
            parts = urlsplit(target)
            upstream = socket.create_connection((parts.hostname or "", parts.port or 80))
            upstream.sendall(data)  # absolute-form is valid for an origin server too
        with upstream:
            _relay(client, upstream)


def _relay(a: socket.socket, b: socket.socket) -> None:
    peers = {a: b, b: a}
    while True:
        ready, _, _ = select.select([a, b], [], [], 10)
        if not ready:
            return
        for s in ready:
            data = s.recv(65536)
            if not data:
                return
            peers[s].sendall(data)


@pytest.fixture
def proxy_factory() -> Iterator[Callable[..., Proxy]]:
    proxies: list[Proxy] = []

    def start(require_auth: str | None = None) -> Proxy:
        proxies.append(Proxy(require_auth))
        return proxies[-1]

    yield start
    for p in proxies:
        p.server.close()


# --- transports ------------------------------------------------------------------------------

@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make(kind: str) -> Iterator[Callable[..., Transport]]:
    """make(**HttpConfig fields) -> a transport of the parametrized kind, closed after the test."""
    made: list[Transport] = []

    def build(**kw: Any) -> Transport:
        made.append(make_transport(kind, HttpConfig(**kw)))
        return made[-1]

    yield build
    for t in made:
        t.close()


@pytest.fixture
def free_port() -> int:
    """A port nobody listens on (bound, then released)."""
    return ports.free_port()


@pytest.fixture
def silent_listener() -> Iterator[str]:
    """host:port of a socket that completes TCP handshakes (backlog) but never answers."""
    with socket.create_server(("127.0.0.1", 0), backlog=16) as s:
        yield f"127.0.0.1:{s.getsockname()[1]}"
