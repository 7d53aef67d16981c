"""The overall deadline of a request, in both transports: a server that answers one byte every
0.05 s never lets a read time out, yet the request ends at HttpConfig.deadline."""
from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from harness.loopback import stop_accepting
from wucme.http import HttpConfig, HttpTimeout, make_transport

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n" + b"x" * 10


@pytest.fixture
def dripping() -> Iterator[int]:
    """A server on loopback that reads a request and drips its answer, a byte at a time."""
    srv = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            threading.Thread(target=drip, args=(conn,), daemon=True).start()

    def drip(conn: socket.socket) -> None:
        with conn:
            conn.recv(65536)
            for i in range(len(ANSWER)):
                if stop.is_set():
                    return
                try:
                    conn.sendall(ANSWER[i:i + 1])
                except OSError:
                    return
                time.sleep(0.05)

    accepting = threading.Thread(target=serve, daemon=True)
    accepting.start()
    try:
        yield srv.getsockname()[1]
    finally:
        stop_accepting(srv, accepting, stop)


@pytest.mark.parametrize("kind", ["builtin", "requests"])
def test_a_dripping_answer_ends_at_the_deadline(dripping: int, kind: str) -> None:
    t = make_transport(kind, HttpConfig(read_timeout=5.0, deadline=0.8))
    t0 = time.monotonic()
    with pytest.raises(HttpTimeout, match=r"within 0.8 s \(WUCME_HTTP_DEADLINE\)"):
        t.request("GET", f"http://127.0.0.1:{dripping}/")
    assert time.monotonic() - t0 < 2.0
    t.close()


@pytest.mark.parametrize("kind", ["builtin", "requests"])
def test_within_the_deadline_the_answer_arrives(dripping: int, kind: str) -> None:
    """Each byte within the read timeout and the whole within the deadline: read in full."""
    t = make_transport(kind, HttpConfig(read_timeout=5.0, deadline=30.0))
    r = t.request("GET", f"http://127.0.0.1:{dripping}/")
    assert r.status == 200 and r.body == b"x" * 10
    t.close()


def test_a_deadline_firing_as_the_request_ends_leaves_its_sockets_alone() -> None:
    """The timer's thread may be past cancel() when the request ends: its socket is back in
    the pool (or closed, its number another socket's), so the late timer must not shut it down."""
    from wucme.http._deadline import Deadline

    a, b = socket.socketpair()
    with a, b:
        with Deadline(60) as d:
            d.watch(a)
        d._fire()  # what the timer thread does when it runs late
        a.sendall(b"still open")
        assert b.recv(100) == b"still open" and not d.expired


def test_one_thread_watches_every_deadline(dripping: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """A request's deadline costs no thread of its own: one watchdog serves them all, also
    several requests at once from several threads (a thread per request was 0.35 ms each)."""
    from wucme.http import _deadline

    monkeypatch.setattr(_deadline, "_watchdog", _deadline._Watchdog())
    started: list[str] = []
    real_start = threading.Thread.start

    def counting(self: threading.Thread) -> None:
        started.append(self.name)
        real_start(self)

    monkeypatch.setattr(threading.Thread, "start", counting)
    t = make_transport("builtin", HttpConfig(read_timeout=5.0, deadline=0.3))

    def one() -> None:
        with pytest.raises(HttpTimeout):
            t.request("GET", f"http://127.0.0.1:{dripping}/")

    one()
    workers = [threading.Thread(target=one) for _ in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    t.close()
    assert [n for n in started if n == "wucme-http-deadlines"] == ["wucme-http-deadlines"]
    assert len(started) == 1 + len(workers) + 4  # the watchdog, the workers, the server's drippers
