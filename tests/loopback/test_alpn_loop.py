"""`wucme alpn`'s event loop (wucme.challenge.alpnproxy): validations are answered by the loop
itself, everything else by a thread as before, and no client the loop holds can stop it.

The loop peeks at a connection's first bytes and runs the validation handshake with OpenSSL on
the socket; a ClientHello in pieces, a connection to proxy, or anything odd is handed to a
thread.  Hostile clients here: idle ones, half-open ones, ClientHellos that stop half way, and
handshakes that stall after the ClientHello (the last are held by the loop itself).
"""

from __future__ import annotations

import io
import random
import socket
import ssl
import threading
import time
from collections.abc import Iterator

import pytest
from cryptography import x509

from wucme.challenge._net import bind_listener
from wucme.challenge.alpn import AlpnLog
from wucme.challenge.alpnauth import AuthTable, handle_command
from wucme.challenge.alpnproxy import AlpnProxy
from wucme.challenge.clienthello import NEED_MORE, NOT_TLS, ClientHello, parse_client_hello
from wucme.challenge.tlsalpn import auth_digest

from .test_challenge_support import TlsBackend, s_client, tls_get, wait_for
from .test_challenge_tlsalpn import assert_validation_cert
from .test_listener_limits import backend  # noqa: F401 - the fixture: the TLS site behind

NAME = "www.example.org"
KEYAUTH = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"


class Front:
    """`wucme alpn`'s front end in this process, an auth loaded for NAME, its log kept."""

    def __init__(self, backend_port: int, hello_timeout: float = 10.0) -> None:
        self.logged = io.StringIO()
        table = AuthTable()
        assert handle_command(table, f"auth {NAME} {auth_digest(KEYAUTH)}") == "OK"
        listener = bind_listener("127.0.0.1", 0)
        self.port = int(listener.getsockname()[1])
        self.proxy = AlpnProxy([listener], [("127.0.0.1", backend_port)], table,
                               log=AlpnLog(2, self.logged), hello_timeout=hello_timeout)
        self.proxy.start()

    def log(self) -> str:
        return self.logged.getvalue()

    def close(self) -> None:
        self.proxy.stop()


@pytest.fixture
def front(backend: TlsBackend) -> Iterator[Front]:
    f = Front(backend.port, hello_timeout=2.0)
    try:
        yield f
    finally:
        f.close()


def validates(port: int) -> bool:
    """openssl s_client offering acme-tls/1 for NAME, shown the RFC 8737 certificate."""
    out, cert = s_client(port, ["-servername", NAME, "-alpn", "acme-tls/1"])
    if "ALPN protocol: acme-tls/1" not in out or cert is None:
        return False
    assert_validation_cert(cert, x509.DNSName(NAME), KEYAUTH)
    return True


class MemoryClient:
    """A TLS client whose bytes the test sends itself, so that it can cut, delay or stop them."""

    def __init__(self, alpn: list[str] | None = None, name: str = NAME) -> None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        if alpn:
            ctx.set_alpn_protocols(alpn)
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = ctx.wrap_bio(self.incoming, self.outgoing, server_hostname=name)
        self.done = self._step()
        self.hello = self.outgoing.read()

    def _step(self) -> bool:
        try:
            self.tls.do_handshake()
            return True
        except ssl.SSLWantReadError:
            return False

    def finish(self, sock: socket.socket, deadline: float = 5.0) -> str | None:
        """Complete the handshake over *sock* (the ClientHello already sent); the ALPN chosen."""
        sock.settimeout(deadline)
        while not self.done:
            data = sock.recv(16384)
            if not data:
                raise ConnectionError("closed during the handshake")
            self.incoming.write(data)
            self.done = self._step()
            sock.sendall(self.outgoing.read())
        return self.tls.selected_alpn_protocol()


def closed_by_server(sock: socket.socket, wait: float = 0.2) -> bool:
    """True once the server has closed *sock*; whatever it sent before is read and ignored."""
    sock.settimeout(wait)
    try:
        while sock.recv(65536):
            pass
        return True
    except TimeoutError:
        return False
    except OSError:
        return True


@pytest.mark.parametrize("hello_timeout", [30.0])  # every deadline still queued at the end
def test_validations_are_answered_by_the_loop_without_a_thread(backend: TlsBackend,
                                                               hello_timeout: float) -> None:
    front = Front(backend.port, hello_timeout)
    try:
        _validations_by_the_loop(front)
    finally:
        front.close()


def _validations_by_the_loop(front: Front) -> None:
    threads = threading.active_count()
    for _ in range(10):
        assert validates(front.port)
        assert threading.active_count() == threads
    assert front.proxy.handed_off == 0
    # their deadlines are still queued, but no finished connection keeps its TLS state meanwhile
    queued = [pending for _, _, pending in front.proxy._acceptor._deadlines]
    assert len(queued) == 20 and all(p.done and p.tls is None for p in queued)
    assert front.log().count(f"handshake with auth {auth_digest(KEYAUTH)} for {NAME} completed") == 10
    assert "new client" in front.log()  # ualpn's line, -v
    reply, chosen = tls_get(front.port, NAME)  # no acme-tls/1: to the site, through a thread
    assert chosen is None and reply.startswith(b"backend says hello")
    reply, chosen = tls_get(front.port, "other.example", ["acme-tls/1"])  # no auth for that name
    assert chosen is None and reply.startswith(b"backend says hello")
    assert front.proxy.handed_off == 2


def test_the_validation_certificate_is_made_once_per_auth(backend: TlsBackend,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """ualpn's auth_crt runs when the auth command arrives; no handshake signs a certificate."""
    from wucme.challenge import alpnauth

    made: list[str] = []
    real = alpnauth.make_validation_cert_from_digest

    def counting(ident: str, digest: bytes) -> tuple[x509.Certificate, object]:
        made.append(ident)
        return real(ident, digest)

    monkeypatch.setattr(alpnauth, "make_validation_cert_from_digest", counting)
    f = Front(backend.port)
    try:
        assert made == [NAME]
        for _ in range(5):
            assert validates(f.port)
        assert made == [NAME]
    finally:
        f.close()


def test_a_client_hello_in_pieces_is_validated_by_a_thread(front: Front) -> None:
    client = MemoryClient(["acme-tls/1"])
    with socket.create_connection(("127.0.0.1", front.port)) as sock:
        sock.sendall(client.hello[:20])
        time.sleep(0.3)
        sock.sendall(client.hello[20:])
        assert client.finish(sock) == "acme-tls/1"
    assert front.proxy.handed_off == 1


def test_hostile_clients_held_by_the_loop_do_not_stop_validations(front: Front) -> None:
    """Idle, half-open, half a ClientHello, and handshakes stalled after a whole ClientHello:
    validations go on meanwhile, and the loop closes each at its deadline (2 s here)."""
    port = front.port
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(20)]
    half_open = [socket.create_connection(("127.0.0.1", port)) for _ in range(10)]
    partial = [socket.create_connection(("127.0.0.1", port)) for _ in range(10)]
    stalled = [socket.create_connection(("127.0.0.1", port)) for _ in range(10)]
    hostile = idle + half_open + partial + stalled
    try:
        for s in half_open:
            s.sendall(MemoryClient(["acme-tls/1"]).hello[:30])
            s.shutdown(socket.SHUT_WR)
        for s in partial:
            s.sendall(MemoryClient(["acme-tls/1"]).hello[:-5])
        for s in stalled:  # the loop answers with its flight, then waits for a Finished never sent
            s.sendall(MemoryClient(["acme-tls/1"]).hello)
        start = time.monotonic()
        for _ in range(5):
            assert validates(port)
        assert time.monotonic() - start < 5
        wait_for(lambda: all(closed_by_server(s, 0.01) for s in hostile), timeout=8,
                 what="every hostile connection to be closed at its deadline")
        assert time.monotonic() - start < 8
        assert validates(port)
    finally:
        for s in hostile:
            s.close()
    log = front.log()
    assert "no complete ClientHello in 2 s, closing" in log  # the idle ones, from the loop
    assert log.count("failed: handshake timed out") == 10  # the stalled handshakes
    assert len(front.proxy._acceptor) == 0  # every seat given back
    assert front.proxy.handed_off == 20  # the half-open and partial ClientHellos; the loop kept the rest


def test_a_full_loop_still_seats_validations(backend: TlsBackend) -> None:
    """More stalled handshakes than seats: the oldest are dropped for newcomers (the listener
    limits hold for connections the loop holds, too)."""
    table = AuthTable()
    assert handle_command(table, f"auth {NAME} {auth_digest(KEYAUTH)}") == "OK"
    listener = bind_listener("127.0.0.1", 0)
    port = int(listener.getsockname()[1])
    proxy = AlpnProxy([listener], [("127.0.0.1", backend.port)], table, log=AlpnLog(0),
                      hello_timeout=30, max_clients=8, per_source=8)
    proxy.start()
    stalled = [socket.create_connection(("127.0.0.1", port)) for _ in range(8)]
    try:
        for s in stalled:
            s.sendall(MemoryClient(["acme-tls/1"]).hello)
        wait_for(lambda: len(proxy._acceptor) == 8, what="the stalled ones to be seated")
        assert validates(port)
        assert closed_by_server(stalled[0], 1.0)
    finally:
        for s in stalled:
            s.close()
        proxy.stop()


# -- the ClientHello parse, against the straightforward one it replaced --------------------------


def _reference_parse(body: bytes) -> ClientHello:
    """The reader-based parse `wucme alpn` used before its offsets version (same answers)."""
    pos = 0

    def take(n: int) -> bytes:
        nonlocal pos
        if pos + n > len(body):
            raise ValueError("truncated")
        pos += n
        return body[pos - n:pos]

    def vector(length_bytes: int) -> bytes:
        return take(int.from_bytes(take(length_bytes), "big"))

    take(34)
    vector(1)
    vector(2)
    vector(1)
    if pos >= len(body):
        return ClientHello(None, ())
    server_name: str | None = None
    alpn: tuple[bytes, ...] = ()
    extensions = vector(2)
    body, pos = extensions, 0
    while pos < len(body):
        kind = int.from_bytes(take(2), "big")
        ext = vector(2)
        saved = body, pos
        body, pos = ext, 0
        if kind == 0:
            names = vector(2)
            body, pos = names, 0
            while pos < len(body):
                name_type = take(1)[0]
                name = vector(2)
                if name_type == 0 and server_name is None:
                    server_name = name.decode("ascii", "replace")
        elif kind == 16:
            protocols = vector(2)
            body, pos = protocols, 0
            offered = []
            while pos < len(body):
                offered.append(vector(1))
            alpn = tuple(offered)
        body, pos = saved
    return ClientHello(server_name, alpn)


def _reference(data: bytes) -> object:
    """parse_client_hello's answer with the reference body parse."""
    from wucme.challenge import clienthello

    real = clienthello._parse_body
    try:
        clienthello._parse_body = _reference_parse  # type: ignore[assignment]
        return parse_client_hello(data)
    finally:
        clienthello._parse_body = real  # type: ignore[assignment]


def test_client_hello_parse_gives_the_reference_answers() -> None:
    hellos = [MemoryClient(alpn, name).hello for alpn, name in
              ((["acme-tls/1"], NAME), (["h2", "http/1.1"], "b.example"), (None, "c.example"))]
    rng = random.Random(8737)
    checked = 0
    for hello in hellos:
        parsed = parse_client_hello(hello)
        assert isinstance(parsed, ClientHello) and parsed == _reference(hello)
        for cut in range(len(hello)):
            assert parse_client_hello(hello[:cut]) == _reference(hello[:cut])
        for _ in range(3000):  # bytes changed inside the body: lengths, types, names
            mutated = bytearray(hello)
            for _ in range(rng.randint(1, 3)):
                mutated[rng.randrange(9, len(mutated))] = rng.randrange(256)
            got, want = parse_client_hello(bytes(mutated)), _reference(bytes(mutated))
            assert got == want, mutated.hex()
            checked += got is not NEED_MORE and got is not NOT_TLS
    assert checked > 1000  # most mutations still parse: the comparison saw real answers
