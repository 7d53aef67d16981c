"""Slow clients against every listener wucme runs (issue 10, item 1): the http-01 listener, the
tls-alpn-01 responder, and `wucme alpn` in front of a real TLS site.

Each scenario is the attack found on loopback, scaled down: a crowd of connections that each
send one byte of a head that never ends every so often (from 127.0.0.2, another address of our
own), while real validations (openssl s_client offering acme-tls/1, curl's GET) and ordinary
HTTPS clients must still be answered.  Then the whole-head deadline (one byte every 0.5 s is cut
at the deadline, not kept alive by each byte) and the per-address limit.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509

from wucme.challenge.alpn import AlpnControl, AlpnLog
from wucme.challenge.alpnauth import AuthTable, handle_command
from wucme.challenge.alpnproxy import AlpnProxy
from wucme.challenge._net import Accepted, Acceptor, Admission, bind_listener, source_key
from wucme.challenge.http01 import HTTP01_LIMITS, Http01Listener
from wucme.challenge.store import ChallengeStore
from wucme.challenge.tlsalpn import TlsAlpnResponder, auth_digest
from harness.pebble import stop_child

from .test_challenge_alpn import start_alpn
from .test_challenge_support import (
    HTTP_HEAD, TLS_HEAD, TlsBackend, Trickle, connect_from, is_dropped, s_client, slow_head, tls_get,
    wait_for, write_self_signed,
)
from .test_challenge_tlsalpn import assert_validation_cert
from .test_http01_listener import newcomer_when_out_of_descriptors
from .test_http01_listener import wait_for as wait_for_lines

TOKEN = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"
KEYAUTH = TOKEN + ".9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"
NAME = "www.example.org"
#: The attack, scaled down: 200 slow clients against a listener that holds 64.
TRICKLERS, LIMIT = 200, 64


def curl_token(port: int) -> tuple[int, str]:
    """Real curl, as a CA's http-01 validation: (status, body)."""
    p = subprocess.run(["curl", "-sS", "--max-time", "5", "-w", "\n%{http_code}",
                        f"http://127.0.0.1:{port}/.well-known/acme-challenge/{TOKEN}"],
                       capture_output=True, timeout=20)
    body, _, status = p.stdout.decode().rpartition("\n")
    return int(status or 0), body


def validates(port: int) -> bool:
    """A real tls-alpn-01 validation handshake: openssl s_client with SNI and ALPN acme-tls/1,
    shown the RFC 8737 validation certificate for NAME."""
    out, cert = s_client(port, ["-servername", NAME, "-alpn", "acme-tls/1"])
    if "ALPN protocol: acme-tls/1" not in out or cert is None:
        return False
    assert_validation_cert(cert, x509.DNSName(NAME), KEYAUTH)
    return True


def under_trickle(port: int, head: bytes, check: Callable[[], None], rounds: int = 5) -> Trickle:
    """Run *check* *rounds* times while TRICKLERS slow clients hammer *port*."""
    with Trickle(port, head, count=TRICKLERS, interval=1.0) as trickle:
        wait_for(lambda: trickle.connects >= TRICKLERS, timeout=30, what="the slow clients to connect")
        time.sleep(1.5)  # every one has trickled a byte or two: the listener is full of them
        for _ in range(rounds):
            check()
            time.sleep(0.2)
    assert trickle.drops > 0  # the listener made room by dropping some of them
    return trickle


# -- the listeners under test ----------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> ChallengeStore:
    s = ChallengeStore(tmp_path / "challenges")
    s.put(TOKEN, KEYAUTH, NAME, "http-01")
    s.alpn_put(NAME, KEYAUTH)
    return s


@dataclass
class Front:
    """`wucme alpn`'s front end with its real TLS site behind."""

    port: int
    backend: TlsBackend


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[TlsBackend]:
    b = TlsBackend(write_self_signed(tmp_path))
    try:
        yield b
    finally:
        b.close()


def in_process_alpn(backend: TlsBackend, hello_timeout: float, max_clients: int,
                    per_source: int) -> tuple[AlpnProxy, int]:
    """The front end of `wucme alpn` in this process, with an auth for NAME (the ualpn control
    command uacme's hook sends)."""
    table = AuthTable()
    assert handle_command(table, f"auth {NAME} {auth_digest(KEYAUTH)}") == "OK"
    listener = bind_listener("127.0.0.1", 0)
    proxy = AlpnProxy([listener], [("127.0.0.1", backend.port)], table, log=AlpnLog(0),
                      hello_timeout=hello_timeout, max_clients=max_clients, per_source=per_source)
    proxy.start()
    return proxy, int(listener.getsockname()[1])


def alpn_process(tmp_path: Path, backend: TlsBackend, monkeypatch: pytest.MonkeyPatch,
                 **names: str) -> tuple[subprocess.Popen[bytes], int]:
    """The real `wucme alpn` process, its limits set by logical names in its environment; one
    worker, since each worker holds its own seats (docs/challenges.md)."""
    for name, value in names.items():
        monkeypatch.setenv(name, value)
    proc, port, sock, _, _ = start_alpn(tmp_path, backend.port, "-n", "1")
    assert AlpnControl(sock).auth(NAME, auth_digest(KEYAUTH)) == "OK"
    return proc, port


# -- the trickle attack ----------------------------------------------------------------------


def test_http01_listener_answers_validations_during_a_trickle(store: ChallengeStore) -> None:
    with Http01Listener(store, "127.0.0.1", 0, timeout=60, max_clients=LIMIT, per_source=1000) as server:
        under_trickle(server.port, HTTP_HEAD, lambda: _expect_token(server.port))


def _expect_token(port: int) -> None:
    assert curl_token(port) == (200, KEYAUTH)


def test_tls_alpn_responder_answers_validations_during_a_trickle(store: ChallengeStore) -> None:
    with TlsAlpnResponder(store, "127.0.0.1", 0, timeout=60, max_clients=LIMIT, per_source=1000) as r:
        under_trickle(r.port, TLS_HEAD, lambda: _expect_validation(r.port))
        assert r.validations >= 5


def _expect_validation(port: int) -> None:
    assert validates(port)


def _expect_site(port: int) -> None:
    reply, _ = tls_get(port, NAME, ["h2", "http/1.1"])
    assert reply == b"backend says hello to GET / HTTP/1.0"


def test_alpn_front_end_answers_validations_and_site_clients_during_a_trickle(backend: TlsBackend) -> None:
    proxy, port = in_process_alpn(backend, hello_timeout=60, max_clients=LIMIT, per_source=1000)
    try:
        under_trickle(port, TLS_HEAD, lambda: (_expect_validation(port), _expect_site(port)))
    finally:
        proxy.stop()


def test_wucme_alpn_process_under_a_trickle_with_limits_from_logical_names(
        tmp_path: Path, backend: TlsBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    proc, port = alpn_process(tmp_path, backend, monkeypatch, WUCME_CLIENT_LIMIT=str(LIMIT),
                              WUCME_ADDRESS_LIMIT="1000", WUCME_HELLO_TIMEOUT="60")
    try:
        under_trickle(port, TLS_HEAD, lambda: (_expect_validation(port), _expect_site(port)), rounds=3)
        assert "dropping the oldest unfinished one" in (tmp_path / "alpn.log").read_text()
    finally:
        stop_child(proc, grace=10)


# -- the whole-head deadline -----------------------------------------------------------------


def assert_cut_at(port: int, head: bytes, deadline: float) -> None:
    """One byte every 0.5 s keeps no connection alive past *deadline* seconds for its head."""
    took = slow_head(port, head, every=0.5, limit=deadline + 6)
    assert deadline - 0.6 <= took <= deadline + 1.5, took


def test_http01_listener_head_deadline(store: ChallengeStore) -> None:
    with Http01Listener(store, "127.0.0.1", 0, timeout=2.0) as server:
        assert_cut_at(server.port, HTTP_HEAD, 2.0)
        assert curl_token(server.port) == (200, KEYAUTH)


def test_tls_alpn_responder_handshake_deadline(store: ChallengeStore) -> None:
    with TlsAlpnResponder(store, "127.0.0.1", 0, timeout=2.0) as r:
        assert_cut_at(r.port, TLS_HEAD, 2.0)
        assert validates(r.port)


def test_wucme_alpn_client_hello_deadline(tmp_path: Path, backend: TlsBackend,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """ualpn restarts its 60 s timer with every byte; `wucme alpn` gives the whole ClientHello
    WUCME_HELLO_TIMEOUT seconds."""
    proc, port = alpn_process(tmp_path, backend, monkeypatch, WUCME_HELLO_TIMEOUT="2")
    try:
        assert_cut_at(port, TLS_HEAD, 2.0)
        assert validates(port)
        _expect_site(port)
    finally:
        stop_child(proc, grace=10)


# -- one address may hold only so many -------------------------------------------------------


def assert_per_source_limit(port: int, head: bytes, per_source: int) -> None:
    """A source opening more than *per_source* unfinished connections loses its own oldest ones;
    another source's connections are untouched."""
    greedy = [connect_from("127.0.0.2", port) for _ in range(per_source + 12)]
    other = [connect_from("127.0.0.3", port) for _ in range(per_source)]
    try:
        for s in greedy + other:
            s.sendall(head[:3])
        wait_for(lambda: is_dropped(greedy[11], 0.05), timeout=5, what="the greedy source's oldest to go")
        assert [is_dropped(s, 0.05) for s in greedy[:12]] == [True] * 12
        assert [is_dropped(s, 0.05) for s in greedy[12:]] == [False] * per_source
        assert [is_dropped(s, 0.05) for s in other] == [False] * per_source
    finally:
        for s in greedy + other:
            s.close()


def test_http01_listener_per_source_limit(store: ChallengeStore) -> None:
    with Http01Listener(store, "127.0.0.1", 0, timeout=30, max_clients=LIMIT, per_source=8) as server:
        assert_per_source_limit(server.port, HTTP_HEAD, 8)
        assert curl_token(server.port) == (200, KEYAUTH)


def test_tls_alpn_responder_per_source_limit(store: ChallengeStore) -> None:
    with TlsAlpnResponder(store, "127.0.0.1", 0, timeout=30, max_clients=LIMIT, per_source=8) as r:
        assert_per_source_limit(r.port, TLS_HEAD, 8)
        assert validates(r.port)


def test_wucme_alpn_per_source_limit(tmp_path: Path, backend: TlsBackend,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    proc, port = alpn_process(tmp_path, backend, monkeypatch, WUCME_ADDRESS_LIMIT="8")
    try:
        assert_per_source_limit(port, TLS_HEAD, 8)
        assert validates(port)
        _expect_site(port)
    finally:
        stop_child(proc, grace=10)


# -- the bookkeeping -------------------------------------------------------------------------


def test_admission_drops_oldest_unfinished_and_refuses_only_when_all_are_served() -> None:
    seats: Admission[str] = Admission(max_clients=3, per_source=2)
    assert seats.admit("a1", "A") == [] and seats.admit("b1", "B") == [] and seats.admit("a2", "A") == []
    assert seats.admit("a3", "A") == ["a1"]  # A at its limit: its own oldest goes
    seats.settle("b1")
    assert seats.admit("c1", "C") == ["a2"]  # full: the oldest unfinished one goes, not b1
    for conn in ("a3", "c1"):
        seats.settle(conn)
    assert seats.admit("d1", "D") is None and "d1" not in seats  # everyone is being served
    seats.release("b1")
    assert seats.admit("d1", "D") == [] and len(seats) == 3


def test_source_key_groups_an_ipv6_host_by_its_64() -> None:
    assert source_key("192.0.2.7") == "192.0.2.7"
    assert source_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert source_key("2001:db8:1:2:aaaa::1") == source_key("2001:db8:1:2:bbbb::9") == "2001:db8:1:2::/64"
    assert source_key("2001:db8:1:3::1") != source_key("2001:db8:1:2::1")


def test_a_connection_its_handler_closed_is_never_shut_down_by_a_late_drop() -> None:
    """The acceptor drops a victim from its own thread while the victim's handler may be closing
    it: once closed, its number can be a new socket's, which a shutdown would cut (a CA's
    validation then reads a bare EOF).  drop() after close() does nothing."""
    shutdowns: list[int] = []

    class Recording(socket.socket):
        def shutdown(self, how: int) -> None:
            shutdowns.append(how)
            super().shutdown(how)

    a, b = socket.socketpair()
    mine = Recording(a.family, a.type, fileno=a.detach())
    with b:
        acceptor = Acceptor([], lambda conn: None, limits=HTTP01_LIMITS)
        conn = Accepted(acceptor, mine, ("127.0.0.1", 1))
        conn.drop()  # while served: the handler's read ends
        assert shutdowns == [socket.SHUT_RDWR] and conn.dropped
        conn.close()
        conn.drop()
        assert shutdowns == [socket.SHUT_RDWR] and mine.fileno() == -1


def test_out_of_descriptors_the_acceptor_logs_the_episode_once() -> None:
    """The tls-alpn-01 responder's and `wucme alpn`'s accept loop, with no descriptor to take a
    newcomer and nothing to shed: one line when it starts, one when it ends, not 20 a second."""
    logged: list[str] = []
    listener = bind_listener("127.0.0.1", 0)
    port = listener.getsockname()[1]
    acceptor = Acceptor([listener], lambda conn: conn.sock.sendall(b"hi"), limits=HTTP01_LIMITS,
                        log=logged.append)
    acceptor.start()
    try:
        with newcomer_when_out_of_descriptors(port) as newcomer:
            wait_for_lines(logged, 1)
            time.sleep(1.0)  # twenty tries
            assert logged == ["accept failed: [Errno 24] Too many open files"]
        with newcomer:
            assert newcomer.recv(2) == b"hi"
        assert wait_for_lines(logged, 2)[1:] == ["accepting connections again"]
    finally:
        acceptor.stop()
