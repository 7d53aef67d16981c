"""The relay of proxied `wucme alpn` connections, native (native/splice.c) and pure twin alike:
bytes both ways unchanged, half-closes passed on, an idle limit, a reset ends it."""
from __future__ import annotations

import hashlib
import os
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from wucme._native import splice
from wucme.challenge.alpnproxy import relay

KINDS = [pytest.param(True, id="native"), pytest.param(False, id="pure")]


def pair() -> tuple[socket.socket, socket.socket]:
    """Two ends of a real loopback TCP connection (splice needs sockets, not a socketpair's kind)."""
    with socket.create_server(("127.0.0.1", 0)) as srv:
        a = socket.create_connection(srv.getsockname())
        b, _ = srv.accept()
    return a, b


@pytest.fixture
def wires() -> Iterator[tuple[socket.socket, socket.socket, socket.socket, socket.socket]]:
    """client -- front ==relay== back -- server."""
    client, front = pair()
    back, server = pair()
    yield client, front, back, server
    for s in (client, front, back, server):
        s.close()


def run_relay(front: socket.socket, back: socket.socket, to_back: bytes, idle: float,
              native: bool) -> tuple[threading.Thread, list[float]]:
    took: list[float] = []

    def go() -> None:
        t0 = time.monotonic()
        relay(front, back, to_back, idle, native=native)
        took.append(time.monotonic() - t0)
        front.close()
        back.close()

    t = threading.Thread(target=go, daemon=True)
    t.start()
    return t, took


def drain(s: socket.socket, into: list[bytes]) -> None:
    while chunk := s.recv(1 << 16):
        into.append(chunk)


@pytest.mark.parametrize("native", KINDS)
def test_megabytes_both_ways_and_half_closes(wires: tuple[socket.socket, ...], native: bool) -> None:
    if native and not splice.HAS_NATIVE_SPLICE:
        pytest.skip("native relay not built")
    client, front, back, server = wires
    up, down = os.urandom(3 << 20), os.urandom(5 << 20)
    t, _ = run_relay(front, back, b"HELLO", 10.0, native)
    got_up: list[bytes] = []
    got_down: list[bytes] = []
    readers = [threading.Thread(target=drain, args=(server, got_up)),
               threading.Thread(target=drain, args=(client, got_down))]
    for r in readers:
        r.start()
    client.sendall(up)
    client.shutdown(socket.SHUT_WR)  # the server sees EOF after every byte...
    server.sendall(down)             # ...and can still answer: a half-close, passed on
    server.shutdown(socket.SHUT_WR)
    for r in readers:
        r.join(30)
    t.join(30)
    assert not t.is_alive()
    assert hashlib.sha256(b"".join(got_up)).digest() == hashlib.sha256(b"HELLO" + up).digest()
    assert hashlib.sha256(b"".join(got_down)).digest() == hashlib.sha256(down).digest()


@pytest.mark.parametrize("native", KINDS)
def test_nothing_moving_ends_the_relay_after_idle(wires: tuple[socket.socket, ...], native: bool) -> None:
    if native and not splice.HAS_NATIVE_SPLICE:
        pytest.skip("native relay not built")
    client, front, back, server = wires
    t, took = run_relay(front, back, b"", 0.3, native)
    client.sendall(b"ping")
    assert server.recv(10) == b"ping"
    t.join(10)
    assert not t.is_alive() and 0.25 < took[0] < 5
    assert server.recv(10) == b""  # the relay closed its ends


@pytest.mark.parametrize("native", KINDS)
def test_a_reset_ends_the_relay(wires: tuple[socket.socket, ...], native: bool) -> None:
    if native and not splice.HAS_NATIVE_SPLICE:
        pytest.skip("native relay not built")
    client, front, back, server = wires
    t, took = run_relay(front, back, b"", 30.0, native)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    client.close()  # RST
    t.join(10)
    assert not t.is_alive() and took[0] < 5


def test_no_native_forces_the_twin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WUCME_NO_NATIVE", "1")
    assert splice.backend_name() in ("splice", "copy")
    monkeypatch.delenv("WUCME_NO_NATIVE")
    if splice.HAS_NATIVE_SPLICE:
        assert splice.backend_name() == "native"
    assert splice.backend_name(False) == "splice"  # Linux, Python 3.10+: os.splice
