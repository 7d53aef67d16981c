"""The account session: the directory fetched on entry, the transport closed however it ends.

The CA here is a real socket on loopback that answers the directory request and then keeps the
connection open (HTTP/1.1 keep-alive), as a CA does: only the client closing it ends it, so the
server sees end-of-file exactly when the session closed its transport.
"""
from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator

import pytest

from harness.loopback import stop_accepting

from wucme.errors import WucmeError
from wucme.session import account_session
from wucme.uacme.msg import Msg


class KeepAliveCA:
    """Answers every request on a connection with `status` and a directory; notes each close."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/dir"
        self.requests = 0
        self.closed = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            data = b""
            while True:
                chunk = conn.recv(65536)
                if not chunk:
                    self.closed.set()  # the client closed its end
                    return
                data += chunk
                while b"\r\n\r\n" in data:
                    _, _, data = data.partition(b"\r\n\r\n")
                    self.requests += 1
                    body = json.dumps({"newNonce": self.url + "/nonce", "newAccount": self.url + "/acct",
                                       "newOrder": self.url + "/order"}).encode()
                    ctype = b"application/json" if self.status == 200 else b"text/plain"
                    conn.sendall(b"HTTP/1.1 %d X\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n%s"
                                 % (self.status, ctype, len(body), body))

    def close(self) -> None:
        stop_accepting(self.sock, self.thread)


@pytest.fixture
def ca() -> Iterator[KeepAliveCA]:
    c = KeepAliveCA()
    try:
        yield c
    finally:
        c.close()


@pytest.fixture(autouse=True)
def _builtin_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("WUCME_HTTP", "WUCME_POLL_TIMEOUT", "WUCME_CA"):
        monkeypatch.delenv(name, raising=False)


def test_the_directory_is_fetched_and_the_transport_closed_at_the_end(ca: KeepAliveCA) -> None:
    with account_session(Msg(0), directory=ca.url) as a:
        assert a.dir["newOrder"] == ca.url + "/order" and ca.requests == 1
        assert not ca.closed.wait(0.2)  # kept alive while the session lasts
    assert ca.closed.wait(5)


def test_an_error_inside_the_block_still_closes_the_transport(ca: KeepAliveCA) -> None:
    with pytest.raises(RuntimeError, match="half-way"):
        with account_session(Msg(0), directory=ca.url):
            raise RuntimeError("half-way")
    assert ca.closed.wait(5)


def test_a_failed_bootstrap_closes_the_transport() -> None:
    ca = KeepAliveCA(status=500)
    try:
        with pytest.raises(WucmeError, match="retrieve directory"):
            with account_session(Msg(0), directory=ca.url):
                pytest.fail("the block must not run without a directory")
        assert ca.requests == 1 and ca.closed.wait(5)
    finally:
        ca.close()


def test_a_bad_wucme_ca_is_refused_before_any_connection(monkeypatch: pytest.MonkeyPatch, ca: KeepAliveCA) -> None:
    monkeypatch.setenv("WUCME_CA", "not a url")
    with pytest.raises(WucmeError) as info:
        with account_session(Msg(0)):
            pytest.fail("no session without a CA")
    assert info.value.ident == "BADVALUE" and ca.requests == 0
