"""The control socket of `wucme alpn` under hostile load: idle, trickling, half-open and
reset controllers must not keep `issue` (a controller with one command to give) waiting.

The socket is the owner's only (mode 0644: connecting needs write), so the load comes from a
buggy or stuck local client rather than the network; it must still never stop validations.
"""
from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.pebble import stop_child
from wucme.challenge.alpn import AlpnControl
from wucme.challenge.alpnproxy import CONTROL_IDLE

from .test_challenge_alpn import DIGEST, Alpn, start_alpn
from .test_challenge_support import TlsBackend, tls_get, wait_for, write_self_signed

EACH = 20


@pytest.fixture
def alpn(tmp_path: Path) -> Iterator[Alpn]:
    backend = TlsBackend(write_self_signed(tmp_path))
    proc, port, sock, pidfile, log = start_alpn(tmp_path, backend.port, "-n", "2")
    try:
        yield Alpn(proc, port, sock, pidfile, log, backend)
    finally:
        stop_child(proc, grace=10)
        backend.close()


def controller(path: Path) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(str(path))
    return s


def closed_by_server(s: socket.socket) -> bool:
    s.settimeout(0.01)
    try:
        return s.recv(64) == b""
    except TimeoutError:
        return False
    except OSError:
        return True


def test_idle_trickling_half_open_and_reset_controllers_do_not_hold_up_a_command(alpn: Alpn) -> None:
    idle = [controller(alpn.sock) for _ in range(EACH)]
    half = [controller(alpn.sock) for _ in range(EACH)]
    for s in half:  # a command without its end of line, then the write side closed
        s.sendall(b"auth half.example ")
        s.shutdown(socket.SHUT_WR)
    trickling = [controller(alpn.sock) for _ in range(EACH)]
    stop = threading.Event()

    def trickle() -> None:  # a byte a second each, never a whole line
        while not stop.wait(1.0):
            for s in trickling:
                try:
                    s.sendall(b"a")
                except OSError:
                    pass
    t = threading.Thread(target=trickle, daemon=True)
    t.start()
    try:
        # A controller with a command to give is answered at once, and a validation works.
        for i in range(5):
            t0 = time.monotonic()
            assert AlpnControl(alpn.sock, timeout=2).auth(f"v{i}.example.org", DIGEST) == "OK"
            assert time.monotonic() - t0 < 1.0
            _, chosen = tls_get(alpn.port, f"v{i}.example.org", ["acme-tls/1"])
            assert chosen == "acme-tls/1"
        # The idle ones are let go after CONTROL_IDLE; the half-open at once (their command
        # never ended: nothing applied).
        wait_for(lambda: all(closed_by_server(s) for s in half), timeout=3, what="half-open controllers closed")
        wait_for(lambda: all(closed_by_server(s) for s in idle), timeout=CONTROL_IDLE + 3,
                 what="idle controllers closed")
        _, chosen = tls_get(alpn.port, "half.example", ["acme-tls/1"])
        assert chosen is None  # the half-open controllers' unfinished command was never applied
        # Reset controllers (RST, no FIN) leave the server answering.
        for s in trickling:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
        assert AlpnControl(alpn.sock, timeout=2).auth("after.example.org", DIGEST) == "OK"
        assert alpn.proc.poll() is None
    finally:
        stop.set()
        t.join(5)
        for s in idle + half + trickling:
            s.close()
