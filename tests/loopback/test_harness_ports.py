"""The harness's own guard for the session Pebble's ports: who held a port, and waiting for it.

A responder binds the CA's http-01 port only while its test runs; when something else holds
it, the failure must name the holder (the CI runs that failed with a bare "Address already in
use" could not tell whose listener it was).
"""
from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import pytest

from harness.loopback import stop_accepting
from harness.ports import await_port_free, free_port, let_go_log, port_holders
from harness.responders import ChallengeDirServer


def listener(port: int) -> socket.socket:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen()
    return s


def test_a_free_port_is_not_waited_for() -> None:
    assert await_port_free(free_port(), 5) is None


def test_a_holder_that_lets_go_is_named_and_waited_for() -> None:
    port = free_port()
    held = listener(port)
    threading.Timer(0.5, held.close).start()
    seen = await_port_free(port, 10)
    assert seen is not None and seen.let_go
    assert f"127.0.0.1:{port}" in seen.holders and f"pid={os.getpid()}" in seen.holders
    assert 0.3 < seen.waited < 10
    assert let_go_log.pop().startswith(f"127.0.0.1:{port} held, then let go")  # (not for the summary)


def test_a_holder_that_stays_is_reported_after_the_wait() -> None:
    port = free_port()
    with listener(port):
        seen = await_port_free(port, 0.6)
        assert seen is not None and not seen.let_go
        assert "still held after 0.6 s" in str(seen) and "LISTEN" in port_holders(port)


def test_the_webroot_server_says_who_holds_its_port(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("harness.loopback.PORT_WAIT", 0.5)
    port = free_port()
    with listener(port), pytest.raises(OSError, match=rf"(?s)127\.0\.0\.1:{port} still held.*pid={os.getpid()}"):
        ChallengeDirServer(tmp_path, port).start()


def test_the_webroot_server_binds_once_the_holder_lets_go(tmp_path: Path) -> None:
    port = free_port()
    held = listener(port)
    threading.Timer(0.5, held.close).start()
    with ChallengeDirServer(tmp_path, port) as srv:
        assert srv.port == port
    assert let_go_log.pop().startswith(f"127.0.0.1:{port} held, then let go")  # (not for the summary)


def accepting(srv: socket.socket) -> threading.Thread:
    def run() -> None:
        try:
            conn, _ = srv.accept()
            conn.close()
        except OSError:
            pass
    t = threading.Thread(target=run, daemon=True)
    t.start()
    time.sleep(0.2)  # in accept()
    return t


def test_a_listener_closed_under_a_waiting_accept_keeps_its_port() -> None:
    """Why stop_accepting exists: close() while another thread waits in accept() leaves the
    socket listening inside that call, with no descriptor left to name its owner."""
    port = free_port()
    srv = listener(port)
    t = accepting(srv)
    srv.close()
    seen = await_port_free(port, 0.3)
    assert seen is not None and not seen.let_go and "users:" not in seen.holders.splitlines()[0]
    socket.create_connection(("127.0.0.1", port)).close()  # the waiting accept() takes it and ends
    t.join(5)
    assert not t.is_alive()


def test_stop_accepting_ends_the_thread_before_closing() -> None:
    port = free_port()
    srv = listener(port)
    t = accepting(srv)
    stop_accepting(srv, t)
    assert not t.is_alive() and srv.fileno() == -1
    assert await_port_free(port, 0) is None
