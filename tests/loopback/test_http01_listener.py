"""The http-01 responder byte for byte: wucme's listener on a real socket, the CGI entry and the
WSGI application in this process, each answer compared whole (status, headers, body).

tests/loopback/test_challenge_http01.py checks the responders under curl, wsgiref and as a CGI
process; these scenarios pin what a validation server and an operator's curl are sent for each
kind of request, the head-size limit at the byte, the log line, and the listener's life.
"""
from __future__ import annotations

import contextlib
import errno
import io
import os
import resource
import socket
import struct
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.ports import on_well_known_port
from wucme.challenge.http01 import (NO_SUCH_TOKEN, Http01Listener, cgi_main, challenge_token, make_wsgi_app,
                                    run_cgi)
from wucme.challenge.store import ChallengeStore
from wucme.vms.condition import VmsError

TOKEN = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"
KEYAUTH = TOKEN + ".9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"
PATH = f"/.well-known/acme-challenge/{TOKEN}"


def answer(status: str, body: str, *extra: str, head: bool = False) -> bytes:
    """What the listener sends for a challenge path: the WSGI answer, then Connection: close."""
    lines = [f"HTTP/1.1 {status}", "Content-Type: text/plain; charset=utf-8",
             f"Content-Length: {len(body.encode())}", "Cache-Control: no-store", *extra, "Connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (b"" if head else body.encode())


def simple(code: int, reason: str) -> bytes:
    """The listener's own short answers, for requests the application never sees."""
    return (f"HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {len(reason) + 1}\r\n"
            f"Connection: close\r\n\r\n{reason}.").encode()


OK = answer("200 OK", KEYAUTH)
UNKNOWN = answer("404 Not Found", NO_SUCH_TOKEN)
BAD = simple(400, "Bad Request")
TOO_LARGE = simple(431, "Request Header Fields Too Large")


@pytest.fixture
def store(tmp_path: Path) -> ChallengeStore:
    s = ChallengeStore(tmp_path / "challenges")
    s.put(TOKEN, KEYAUTH, "www.example.org", "http-01")
    s.put("short", "short.thumbprint", "www.example.org", "http-01")  # the token before a "://"
    return s


@pytest.fixture
def logged() -> list[str]:
    return []


@pytest.fixture
def listener(store: ChallengeStore, logged: list[str]) -> Iterator[Http01Listener]:
    with Http01Listener(store, "127.0.0.1", 0, timeout=1.0, max_head=200, log=logged.append) as server:
        yield server


def exchange(port: int, *pieces: bytes, pause: float = 0.0) -> bytes:
    """Send the pieces (with a pause between them), then read until the listener closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        for piece in pieces:
            s.sendall(piece)
            time.sleep(pause)
        reply = b""
        while chunk := s.recv(65536):
            reply += chunk
        return reply


@pytest.mark.parametrize("request_head, reply", [
    (f"GET {PATH} HTTP/1.1\r\nHost: a\r\n\r\n", OK),
    (f"GET {PATH} HTTP/1.0\r\n\r\n", OK),
    (f"GET {PATH} HTTP/1.1\n\n", OK),  # bare LF line ends
    (f"GET {PATH}?probe=1 HTTP/1.1\r\n\r\n", OK),  # the query is not part of the token
    (f"GET {PATH}?a=1?b=2 HTTP/1.1\r\n\r\n", OK),  # ...from its first "?"
    (f"GET http://www.example.org{PATH} HTTP/1.1\r\n\r\n", OK),  # absolute-form (RFC 9112 §3.2.2)
    (f"GET /.well-known/acme-challenge/%4Coq{TOKEN[3:]} HTTP/1.1\r\n\r\n", OK),  # percent-decoded
    (f"GET /cgi-bin/wucme{PATH} HTTP/1.1\r\n\r\n", OK),
    (f"HEAD {PATH} HTTP/1.1\r\n\r\n", answer("200 OK", KEYAUTH, head=True)),
    (f"GET {PATH}x HTTP/1.1\r\n\r\n", UNKNOWN),
    (f"HEAD {PATH}x HTTP/1.1\r\n\r\n", answer("404 Not Found", NO_SUCH_TOKEN, head=True)),
    ("HEAD /index.html HTTP/1.1\r\n\r\n", answer("404 Not Found", "Not found.", head=True)),
    ("GET /.well-known/acme-challenge/ HTTP/1.1\r\n\r\n", UNKNOWN),
    ("GET /.well-known/acme-challenge HTTP/1.1\r\n\r\n", UNKNOWN),
    ("GET /index.html HTTP/1.1\r\n\r\n", answer("404 Not Found", "Not found.")),
    ("OPTIONS /index.html HTTP/1.1\r\n\r\n", answer("404 Not Found", "Not found.")),
    (f"PUT {PATH} HTTP/1.1\r\n\r\n", answer("405 Method Not Allowed", "Method not allowed.", "Allow: GET, HEAD")),
    (f"PATCH {PATH} HTTP/1.1\r\n\r\n", answer("405 Method Not Allowed", "Method not allowed.", "Allow: GET, HEAD")),
    (f"BREW {PATH} HTTP/1.1\r\n\r\n", answer("501 Not Implemented", "Not implemented.")),
    ("\r\n\r\n", BAD),  # a blank line where the request line should be: refused at once
    ("\n\n", BAD),
    (f"GET {PATH} HTTP/2\r\n\r\n", BAD),
    (f"GET {PATH} SPDY/1.1\r\n\r\n", BAD),
    (f"GE7 {PATH} HTTP/1.1\r\n\r\n", BAD),
    (f"GET {PATH}\r\n\r\n", BAD),  # HTTP/0.9 has no version
    (f"GET  {PATH} HTTP/1.1\r\n\r\n", BAD),
    (f"GET {PATH} HTTP/1.1 \r\n\r\n", BAD),  # a fourth, empty part
    (f"GET http://www.example.org{PATH}?from=http://elsewhere/ HTTP/1.1\r\n\r\n", OK),
    ("GET http://www.example.org/.well-known/acme-challenge/short://x HTTP/1.1\r\n\r\n", UNKNOWN),
])
def test_each_request_gets_its_whole_answer(listener: Http01Listener, request_head: str, reply: bytes) -> None:
    assert exchange(listener.port, request_head.encode("latin-1")) == reply


def test_a_head_sent_in_pieces_is_answered_when_it_ends(listener: Http01Listener) -> None:
    pieces = [f"GET {PATH[:20]}".encode(), f"{PATH[20:]} HTTP/1.1\r\n".encode(), b"Host: a\r\n", b"\r\n"]
    assert exchange(listener.port, *pieces, pause=0.05) == OK


def test_a_head_of_max_head_bytes_is_answered_and_one_more_is_too_large(listener: Http01Listener) -> None:
    line = f"GET {PATH} HTTP/1.1\r\n".encode()
    pad = b"X-Pad: " + b"a" * (200 - len(line) - len(b"X-Pad: "))
    assert len(line + pad) == 200  # the listener's max_head: the head before its blank line
    assert exchange(listener.port, line + pad + b"\r\n\r\n") == OK
    assert exchange(listener.port, line + pad + b"a\r\n\r\n") == TOO_LARGE
    # Unfinished: 200 bytes wait for more, 201 are refused at once.
    with socket.create_connection(("127.0.0.1", listener.port), timeout=5) as s:
        s.sendall(line + pad)
        time.sleep(0.3)
        s.sendall(b"\r\n\r\n")
        assert s.recv(65536) + s.recv(65536) == OK
    assert exchange(listener.port, line + pad + b"a") == TOO_LARGE


@pytest.mark.parametrize("eol", ["\r\n", "\n"])
def test_the_head_ends_at_its_first_blank_line_whatever_follows(listener: Http01Listener, eol: str) -> None:
    head = f"GET {PATH} HTTP/1.1{eol}{eol}"
    body = f"X-Not-A-Header: {'b' * 250}{eol}{eol}"  # past max_head (200) up to its own blank line
    assert len(head) < 200 < len(head + body)
    assert exchange(listener.port, (head + body).encode()) == OK


def test_the_log_names_the_peer_the_request_and_the_status(store: ChallengeStore) -> None:
    logged: list[str] = []
    with Http01Listener(store, "127.0.0.1", 0, log=logged.append) as listener:
        with socket.create_connection(("127.0.0.1", listener.port), timeout=5) as s:
            me = "%s:%d" % s.getsockname()[:2]
            s.sendall(f"GET {PATH}?q=1 HTTP/1.1\r\n\r\n".encode())
            while s.recv(65536):
                pass
        long_path = "/.well-known/acme-challenge/" + "A" * 300
        exchange(listener.port, f"GET {long_path} HTTP/1.1\r\n\r\n".encode())
    assert logged[0] == f"{me} GET {PATH} 200"
    assert logged[1].endswith(f" GET {long_path[:200]} 404")  # a long path is cut at 200
    assert len(logged) == 2


def test_clients_that_hang_up_early_leave_the_listener_serving(listener: Http01Listener) -> None:
    for partial in (b"", b"GET /.well-known/acme-", b"GET / HTTP/1.1\r\n"):
        with socket.create_connection(("127.0.0.1", listener.port), timeout=5) as s:
            s.sendall(partial)
        time.sleep(0.05)
    assert exchange(listener.port, f"GET {PATH} HTTP/1.1\r\n\r\n".encode()) == OK


def test_clients_that_reset_their_connection_leave_the_listener_serving(listener: Http01Listener) -> None:
    for partial in (b"GET /.well-known/acme-", f"GET {PATH} HTTP/1.1\r\n\r\n".encode()):
        s = socket.create_connection(("127.0.0.1", listener.port), timeout=5)
        s.sendall(partial)
        time.sleep(0.1)  # read by the listener (and, the second, answered)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()  # an RST: the listener's next read or write fails
        time.sleep(0.1)
    assert exchange(listener.port, f"GET {PATH} HTTP/1.1\r\n\r\n".encode()) == OK


BIG_KEYAUTH = TOKEN + "." + "k" * 60000  # near the store's 64 KiB record; no CA sends this much


def big_answer_listener(tmp_path: Path, logged: list[str], max_clients: int | None = None) -> Http01Listener:
    """A listener holding an answer too large for one send."""
    store = ChallengeStore(tmp_path / "big")
    store.put(TOKEN, BIG_KEYAUTH, "www.example.org", "http-01")
    listener = Http01Listener(store, "127.0.0.1", 0, timeout=10.0, max_clients=max_clients, log=logged.append)
    # what a loaded host does to any answer: connections accepted with a small send buffer
    listener._listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    return listener


@pytest.fixture
def slow_sender(tmp_path: Path, logged: list[str]) -> Iterator[Http01Listener]:
    with big_answer_listener(tmp_path, logged) as listener:
        yield listener


def slow_reader(port: int) -> socket.socket:
    """A client that asks for the challenge and reads nothing yet: the answer waits in the listener."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    s.sendall(f"GET {PATH} HTTP/1.1\r\n\r\n".encode())
    time.sleep(0.3)  # the listener's first send fills the buffers and stops there
    return s


def read_all(s: socket.socket) -> bytes:
    reply = b""
    while chunk := s.recv(65536):
        reply += chunk
    return reply


def test_an_answer_larger_than_the_socket_buffers_reaches_a_slow_reader_whole(slow_sender: Http01Listener) -> None:
    with slow_reader(slow_sender.port) as s:
        assert read_all(s) == answer("200 OK", BIG_KEYAUTH)


def test_a_connection_being_answered_is_not_dropped_for_a_newcomer(tmp_path: Path, logged: list[str]) -> None:
    with big_answer_listener(tmp_path, logged, max_clients=1) as slow_sender, slow_reader(slow_sender.port) as s:
        # the one seat is taken by a connection past its head: the newcomer is refused, not it
        with socket.create_connection(("127.0.0.1", slow_sender.port), timeout=5) as newcomer:
            try:
                newcomer.sendall(f"GET {PATH} HTTP/1.1\r\n\r\n".encode())
                got = newcomer.recv(65536)
            except ConnectionResetError:  # closed with the request unread
                got = b""
        assert got == b""
        assert read_all(s) == answer("200 OK", BIG_KEYAUTH)
    assert logged[0].endswith(f" GET {PATH} 200")  # the request served, then the refusal
    assert logged[1:] == ["too many connections: refusing newcomers while every one held is being served "
                          "(1, the latest from 127.0.0.1)"]


def wait_for(logged: list[str], count: int, seconds: float = 5.0) -> list[str]:
    deadline = time.monotonic() + seconds
    while len(logged) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    return logged


@contextlib.contextmanager
def out_of_descriptors(spare: int = 0) -> Iterator[None]:
    """This process (the listener's) with no descriptor left but *spare*: the limit lowered and
    every number below it taken."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    top = max(int(fd) for fd in os.listdir("/proc/self/fd"))
    fillers: list[int] = []
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (top + 16, hard))
        while True:
            try:
                fillers.append(os.open(os.devnull, os.O_RDONLY))
            except OSError:
                break
        for _ in range(spare):
            os.close(fillers.pop())
        yield
    finally:
        for fd in fillers:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@contextlib.contextmanager
def newcomer_when_out_of_descriptors(port: int) -> Iterator[socket.socket]:
    """A connection made when this process (the listener's) has no descriptor left: the
    newcomer's socket takes the last one."""
    with out_of_descriptors(spare=1):
        newcomer = socket.socket()
        newcomer.settimeout(5)
        newcomer.connect(("127.0.0.1", port))  # the listener's accept fails: EMFILE
        yield newcomer


EMFILE = "accept failed: [Errno 24] Too many open files"


def test_out_of_descriptors_the_listener_drops_the_oldest_unfinished_connection_and_serves_on(
        slow_sender: Http01Listener, logged: list[str]) -> None:
    with slow_reader(slow_sender.port) as served:  # past its head: not dropped while others are not
        # Two unfinished heads: at the limit, Linux's accept fails (EMFILE) even with nothing
        # waiting, so the batch that takes the newcomer sheds one more unfinished connection.
        idle = [socket.create_connection(("127.0.0.1", slow_sender.port), timeout=5) for _ in range(2)]
        for s in idle:
            s.sendall(b"GET /.well-known/acme-")
        time.sleep(0.2)  # held, their heads unfinished
        with newcomer_when_out_of_descriptors(slow_sender.port) as newcomer:
            assert wait_for(logged, 2)[1] == EMFILE
            assert idle[0].recv(100) == b""  # the oldest unfinished one's descriptor went to the newcomer
        for s in idle:
            s.close()
        with newcomer:
            newcomer.sendall(f"GET {PATH} HTTP/1.1\r\n\r\n".encode())
            assert read_all(newcomer) == answer("200 OK", BIG_KEYAUTH)
        assert read_all(served) == answer("200 OK", BIG_KEYAUTH)


def test_out_of_descriptors_with_every_connection_served_the_oldest_goes(
        slow_sender: Http01Listener, logged: list[str]) -> None:
    with slow_reader(slow_sender.port) as served:
        with newcomer_when_out_of_descriptors(slow_sender.port) as newcomer:
            assert wait_for(logged, 2)[1] == EMFILE
            newcomer.close()
        assert len(read_all(served)) < len(answer("200 OK", BIG_KEYAUTH))  # dropped mid-answer
    with socket.create_connection(("127.0.0.1", slow_sender.port), timeout=5) as s:
        s.sendall(f"GET {PATH} HTTP/1.1\r\n\r\n".encode())
        assert read_all(s) == answer("200 OK", BIG_KEYAUTH)  # and the listener serves on


def test_out_of_descriptors_with_nothing_to_drop_the_listener_waits_for_one(listener: Http01Listener,
                                                                            logged: list[str]) -> None:
    assert exchange(listener.port, f"GET {PATH} HTTP/1.1\r\n\r\n".encode()) == OK  # serving: its selector made
    with newcomer_when_out_of_descriptors(listener.port) as newcomer:
        assert wait_for(logged, 2)[1] == EMFILE
    with newcomer:  # descriptors free again: the newcomer is taken at last
        newcomer.sendall(f"GET {PATH} HTTP/1.1\r\n\r\n".encode())
        assert read_all(newcomer) == OK


def test_out_of_descriptors_with_nothing_to_drop_the_listener_pauses_and_logs_the_episode_once(
        listener: Http01Listener, logged: list[str]) -> None:
    assert exchange(listener.port, f"GET {PATH} HTTP/1.1\r\n\r\n".encode()) == OK
    with newcomer_when_out_of_descriptors(listener.port) as newcomer:
        assert wait_for(logged, 2)[1] == EMFILE
        cpu = time.process_time()
        time.sleep(1.0)  # a second of a newcomer waiting and no descriptor to take it with
        spent = time.process_time() - cpu
        assert logged[1:] == [EMFILE]  # once for the episode, not once a try
        assert spent < 0.3  # the listener waits a while between tries instead of spinning
    with newcomer:
        newcomer.sendall(f"GET {PATH} HTTP/1.1\r\n\r\n".encode())
        assert read_all(newcomer) == OK
    assert wait_for(logged, 4)[2] == "accepting connections again"  # the episode's end, once
    assert logged[3].endswith(f" GET {PATH} 200") and len(logged) == 4
    assert exchange(listener.port, f"GET {PATH} HTTP/1.1\r\n\r\n".encode()) == OK
    assert wait_for(logged, 5)[4].endswith(f" GET {PATH} 200")  # served as before: the episode is over
    time.sleep(0.1)
    assert len(logged) == 5


@pytest.mark.parametrize("serve", ["start", "serve_forever"])
def test_a_listener_that_cannot_make_its_selector_says_so_and_gives_up_its_port(
        store: ChallengeStore, logged: list[str], serve: str) -> None:
    server = Http01Listener(store, "127.0.0.1", 0, log=logged.append)
    with out_of_descriptors(), pytest.raises(OSError) as failed:
        getattr(server, serve)()  # no descriptor for the selector's
    assert failed.value.errno == errno.EMFILE
    assert logged == [f"cannot serve on port {server.port}: [Errno 24] Too many open files"]
    with pytest.raises(ConnectionRefusedError):  # not a port that looks served and answers nothing
        socket.create_connection(("127.0.0.1", server.port), timeout=2).close()
    server.stop()
    assert logged == [f"cannot serve on port {server.port}: [Errno 24] Too many open files"]


@pytest.mark.parametrize("serve", ["start", "serve_forever"])
def test_stop_ends_a_serving_listener_at_once(store: ChallengeStore, serve: str) -> None:
    """stop() wakes the loop waiting in select (its idle wait is a second), and the loop, not
    stop(), closes the sockets once it has left select."""
    server = Http01Listener(store, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever) if serve == "serve_forever" else None
    if thread is None:
        server.start()
    else:
        thread.start()
    try:
        assert exchange(server.port, f"GET {PATH} HTTP/1.1\r\n\r\n".encode()) == OK
        time.sleep(0.1)  # the loop back in its idle wait
        begun = time.monotonic()
        server.stop()
        if thread is not None:
            thread.join(5)
        assert time.monotonic() - begun < 0.5
    finally:
        server.stop()
        if thread is not None:
            thread.join(5)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=2).close()


def test_stop_closes_the_sockets_of_a_listener_never_started(store: ChallengeStore) -> None:
    before = sorted(os.listdir("/proc/self/fd"))
    server = Http01Listener(store, "127.0.0.1", 0)
    server.stop()
    assert sorted(os.listdir("/proc/self/fd")) == before  # its port and its wake-up pair
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=2).close()
    server.start()  # stopped: it serves no more, and nothing is left open
    assert sorted(os.listdir("/proc/self/fd")) == before


def test_a_silent_client_is_closed_at_its_deadline_and_not_before(listener: Http01Listener) -> None:
    with socket.create_connection(("127.0.0.1", listener.port), timeout=5) as s:
        start = time.monotonic()
        assert s.recv(100) == b""
        waited = time.monotonic() - start
    assert 0.8 < waited < 2.5  # timeout=1.0: the whole head must arrive within it


def test_a_short_deadline_is_kept_to_and_not_rounded_to_the_idle_wake_up(store: ChallengeStore) -> None:
    with Http01Listener(store, "127.0.0.1", 0, timeout=0.25) as server:
        time.sleep(0.1)  # the listener waits for its first client (up to a second at a time)
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
            start = time.monotonic()
            assert s.recv(100) == b""
            waited = time.monotonic() - start
    assert 0.2 < waited < 0.9  # closed at its deadline, not at the next one-second wake-up


def listener_cpu_while_sleeping(listener: Http01Listener, seconds: float) -> float:
    """The CPU time the listener's thread used while the test slept (/proc: user + system ticks)."""
    assert listener._thread is not None and listener._thread.native_id is not None
    stat = Path(f"/proc/self/task/{listener._thread.native_id}/stat")

    def ticks() -> int:
        fields = stat.read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime, stime: the 14th and 15th fields

    before = ticks()
    time.sleep(seconds)
    return (ticks() - before) / os.sysconf("SC_CLK_TCK")


def test_an_idle_listener_sleeps_before_and_after_serving(listener: Http01Listener) -> None:
    assert listener_cpu_while_sleeping(listener, 0.5) < 0.1  # no client: it waits in select, it does not spin
    assert exchange(listener.port, f"GET {PATH} HTTP/1.1\r\n\r\n".encode()) == OK
    time.sleep(1.2)  # past the served connection's deadline (timeout=1.0): nothing of it is left
    assert listener_cpu_while_sleeping(listener, 0.5) < 0.1


def test_seats_are_given_back_when_connections_close(store: ChallengeStore) -> None:
    with Http01Listener(store, "127.0.0.1", 0, timeout=5.0, max_clients=1) as server:
        for _ in range(3):
            assert exchange(server.port, f"GET {PATH} HTTP/1.1\r\n\r\n".encode()) == OK


def test_a_slow_reader_does_not_hold_up_the_others(slow_sender: Http01Listener) -> None:
    with slow_reader(slow_sender.port) as slow:  # its answer waits in the listener
        start = time.monotonic()
        with socket.create_connection(("127.0.0.1", slow_sender.port), timeout=5) as other:
            other.sendall(b"GET /index.html HTTP/1.1\r\n\r\n")
            assert read_all(other) == answer("404 Not Found", "Not found.")
        assert time.monotonic() - start < 3.0
        assert read_all(slow) == answer("200 OK", BIG_KEYAUTH)


def test_stop_closes_the_port_and_may_be_called_twice(store: ChallengeStore) -> None:
    server = Http01Listener(store, "127.0.0.1", 0, timeout=1.0)
    assert server.address == ("127.0.0.1", server.port) and server.port > 0
    server.start()
    assert exchange(server.port, f"GET {PATH} HTTP/1.1\r\n\r\n".encode()) == OK
    server.stop()
    server.stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=2).close()


def test_the_listener_takes_port_80_unless_told_otherwise(store: ChallengeStore) -> None:
    """RFC 8555 §8.3: the CA fetches the key authorization from port 80."""
    server = on_well_known_port(lambda: Http01Listener(store, "127.0.0.80", timeout=1.0), 80)
    with server:
        assert server.address == ("127.0.0.80", 80)
        with socket.create_connection(("127.0.0.80", 80), timeout=5) as s:
            s.sendall(f"GET {PATH} HTTP/1.1\r\n\r\n".encode())
            assert read_all(s) == OK


def test_a_head_of_8192_bytes_is_answered_by_default_and_one_more_is_too_large(store: ChallengeStore) -> None:
    line = f"GET {PATH} HTTP/1.1\r\n".encode()
    pad = b"X-Pad: " + b"a" * (8192 - len(line) - len(b"X-Pad: "))
    with Http01Listener(store, "127.0.0.1", 0, timeout=5.0) as server:
        assert exchange(server.port, line + pad + b"\r\n\r\n") == OK
        assert exchange(server.port, line + pad + b"a\r\n\r\n") == TOO_LARGE


def test_the_listeners_thread_is_named_for_it_and_does_not_hold_the_process(listener: Http01Listener) -> None:
    (thread,) = [t for t in threading.enumerate() if t.name == "wucme-http01"]
    assert thread.daemon  # an `issue` that ends (or fails) is not kept alive by its listener


@pytest.mark.parametrize("limit", [{"max_clients": 1}, {"per_source": 1}])
def test_a_newcomer_beyond_the_limits_given_drops_the_idle_connection_and_it_is_logged(
        store: ChallengeStore, limit: dict[str, int]) -> None:
    logged: list[str] = []
    with Http01Listener(store, "127.0.0.1", 0, timeout=5.0, log=logged.append,
                        max_clients=limit.get("max_clients"), per_source=limit.get("per_source")) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as idle:
            idle.sendall(b"GET /.well-known/acme-")
            time.sleep(0.2)  # admitted, its head unfinished
            assert exchange(server.port, f"GET {PATH} HTTP/1.1\r\n\r\n".encode()) == OK
            assert idle.recv(100) == b""  # its seat went to the newcomer
            dropped = "127.0.0.1:%d" % idle.getsockname()[1]
    assert logged[0] == ("too many connections: dropping the oldest unfinished one for each newcomer "
                         f"(1, the latest from {dropped} for 127.0.0.1)")
    assert len(logged) == 2 and logged[1].endswith(f" GET {PATH} 200")


def test_the_per_source_limit_counts_each_address_apart(store: ChallengeStore, logged: list[str]) -> None:
    with Http01Listener(store, "127.0.0.1", 0, timeout=5.0, log=logged.append, per_source=1) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as first:
            first.sendall(b"GET /.well-known/acme-")
            time.sleep(0.2)  # admitted, its head unfinished
            with socket.create_connection(("127.0.0.1", server.port), timeout=5,
                                          source_address=("127.0.0.2", 0)) as other:
                other.sendall(f"GET {PATH} HTTP/1.1\r\n\r\n".encode())
                assert read_all(other) == OK
            first.sendall(f"challenge/{TOKEN} HTTP/1.1\r\n\r\n".encode())  # still held: it ends its head
            assert read_all(first) == OK
    assert [line.split(" ", 1)[1] for line in logged] == [f"GET {PATH} 200"] * 2  # nothing dropped


def test_a_bad_limit_in_a_logical_name_is_logged_and_the_default_used(
        store: ChallengeStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WUCME_CLIENT_LIMIT", "many")
    logged: list[str] = []
    with Http01Listener(store, "127.0.0.1", 0, log=logged.append) as server:
        assert server.limits.max_clients == server.max_clients == 1024
    assert logged == ["logical name WUCME_CLIENT_LIMIT = 'many' is not a positive count: using 1024"]


def test_stop_closes_the_connections_still_open_and_then_the_port(store: ChallengeStore) -> None:
    server = Http01Listener(store, "127.0.0.1", 0, timeout=30.0).start()
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as waiting:
        waiting.sendall(b"GET /.well-known/acme-")
        time.sleep(0.2)  # held, its head unfinished
        server.stop()
        assert waiting.recv(100) == b""  # closed by the stop, long before its deadline
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=2).close()


def test_serve_forever_in_the_foreground_until_stopped_from_another_thread(store: ChallengeStore) -> None:
    server = Http01Listener(store, "127.0.0.1", 0)
    t = threading.Thread(target=server.serve_forever)
    t.start()
    try:
        assert exchange(server.port, f"GET {PATH} HTTP/1.1\r\n\r\n".encode()) == OK
    finally:
        server.stop()
        t.join(5)
    assert not t.is_alive()


# --- the WSGI application and the CGI entry, in this process -------------------------------------


@pytest.mark.parametrize("script, path_info, token", [
    ("/cgi-bin/wucme", PATH, TOKEN),
    ("", PATH, TOKEN),
    ("", "/cgi-bin/wucme" + PATH, TOKEN),
    (PATH, "", TOKEN),
    ("", "/.well-known/acme-challenge/", ""),
    ("", "/.well-known/acme-challenge", ""),
    ("", "/cgi-bin/wucmex" + PATH, None),
    ("", "/x/.well-known/acme-challenge/" + TOKEN, None),
    ("", "", None),
])
def test_the_token_is_found_however_the_server_splits_the_url(script: str, path_info: str, token: str | None) -> None:
    assert challenge_token({"SCRIPT_NAME": script, "PATH_INFO": path_info}) == token


def test_the_token_is_found_when_the_server_leaves_a_variable_out() -> None:
    # RFC 3875 §4.1.5: a server may leave PATH_INFO unset when the URL has no path past the script
    assert challenge_token({"SCRIPT_NAME": PATH}) == TOKEN
    assert challenge_token({"PATH_INFO": PATH}) == TOKEN


def call(app: Any, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    got: list[Any] = []
    body = b"".join(app(environ, lambda status, headers, exc_info=None: got.extend([status, headers])))
    return got[0], got[1], body


def test_the_application_takes_a_request_without_a_method_as_get(store: ChallengeStore) -> None:
    status, headers, body = call(make_wsgi_app(store), {"PATH_INFO": PATH})
    assert (status, body) == ("200 OK", KEYAUTH.encode())
    assert headers == [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(KEYAUTH))),
                       ("Cache-Control", "no-store")]


def cgi(app: Any, environ: dict[str, str]) -> bytes:
    out = io.BytesIO()
    assert run_cgi(app, environ, stdout=out) == 0
    return out.getvalue()


def test_a_cgi_answer_is_a_status_field_then_the_headers_and_body(store: ChallengeStore) -> None:
    out = io.BytesIO()
    assert cgi_main({"REQUEST_METHOD": "GET", "PATH_INFO": PATH}, stdout=out, store=store) == 0
    assert out.getvalue() == (f"Status: 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n"
                              f"Content-Length: {len(KEYAUTH)}\r\nCache-Control: no-store\r\n\r\n{KEYAUTH}").encode()
    assert cgi(make_wsgi_app(store), {"REQUEST_METHOD": "GET"}).endswith(b"\r\n\r\nNot found.")


def test_a_cgi_request_gets_a_wsgi_environment(store: ChallengeStore) -> None:
    def echo(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        keys = ("SCRIPT_NAME", "PATH_INFO", "wsgi.url_scheme", "wsgi.version", "wsgi.multithread",
                "wsgi.multiprocess", "wsgi.run_once")
        return [repr([environ[k] for k in keys]).encode(), environ["wsgi.input"].read()]

    def streams(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [repr([environ["wsgi.errors"] is sys.stderr, environ["wsgi.input"] is sys.stdin.buffer]).encode()]

    assert cgi(streams, {"REQUEST_METHOD": "GET"}).endswith(b"[True, False]")  # a given environment: no stdin
    plain = cgi(echo, {"REQUEST_METHOD": "GET"})
    assert plain.split(b"\r\n\r\n", 1)[1] == repr(["", "", "http", (1, 0), False, False, True]).encode()
    for on in ("on", "ON", "1"):
        secure = cgi(echo, {"REQUEST_METHOD": "GET", "HTTPS": on, "SCRIPT_NAME": "/s", "PATH_INFO": "/p"})
        assert secure.split(b"\r\n\r\n", 1)[1] == repr(["/s", "/p", "https", (1, 0), False, False, True]).encode()
    assert cgi(echo, {"HTTPS": "off"}).split(b"\r\n\r\n", 1)[1].startswith(b"['', '', 'http'")


@pytest.mark.parametrize("failure, message", [
    (VmsError("a table others may write", "INSECURE"), "%WUCME-E-INSECURE, a table others may write"),
    (KeyError("x"), "%WUCME-F-BUG, unexpected KeyError: 'x'"),
])
def test_a_failing_application_answers_500_with_a_message_and_no_traceback(failure: Exception, message: str) -> None:
    def broken(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        raise failure

    body = (message + "\n").encode()
    assert cgi(broken, {"REQUEST_METHOD": "GET"}) == (
        f"Status: 500 Internal Server Error\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\n\r\n").encode() + body


def test_a_real_cgi_request_is_read_from_the_environment_and_answered_on_stdout(
        store: ChallengeStore, monkeypatch: pytest.MonkeyPatch, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    monkeypatch.setenv("REQUEST_METHOD", "GET")
    monkeypatch.setenv("PATH_INFO", PATH)
    monkeypatch.delenv("SCRIPT_NAME", raising=False)
    assert run_cgi(make_wsgi_app(store)) == 0
    out = capsysbinary.readouterr().out
    assert out.startswith(b"Status: 200 OK\r\n") and out.endswith(b"\r\n\r\n" + KEYAUTH.encode())

    def streams(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [repr(environ["wsgi.input"] is sys.stdin.buffer).encode()]

    assert run_cgi(streams) == 0  # no environment given: the request body is stdin (RFC 3875 §4.2)
    assert capsysbinary.readouterr().out.endswith(b"\r\n\r\nTrue")


def test_a_failure_message_that_cannot_be_encoded_is_answered_with_replacements() -> None:
    def broken(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        raise ValueError("bad name \udcff")  # a lone surrogate, as os.fsdecode makes of a bad byte

    out = cgi(broken, {"REQUEST_METHOD": "GET"})
    assert out.startswith(b"Status: 500 Internal Server Error\r\n")
    assert out.endswith(b"\r\n\r\n%WUCME-F-BUG, unexpected ValueError: bad name ?\n")
