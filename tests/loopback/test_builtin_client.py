"""The builtin client's own promises: pooling, stale-connection retry, threads, strict parsing."""
from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from wucme.http import HttpConfig, HttpError, ProtocolError
from wucme.http.client import HttpClient

from .conftest import LoopbackHTTPServer, RawServer, read_request

Start = Callable[..., RawServer]
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


@pytest.fixture
def client() -> Iterator[HttpClient]:
    c = HttpClient(HttpConfig(read_timeout=5))
    yield c
    c.close()


def test_three_requests_one_connection(client: HttpClient, http_server: LoopbackHTTPServer) -> None:
    for path in ("/big/1", "/chunked", "/nocontent"):
        assert client.request("GET", http_server.base + path).status in (200, 204)
    assert http_server.connections == 1


def test_retry_when_server_closes_on_next_request(client: HttpClient, raw_server: Start) -> None:
    """The race a keep-alive timeout makes: the server drops the connection as we reuse it."""
    def script(sock: socket.socket, index: int) -> None:
        read_request(sock)
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n%d" % index)
        if index == 0:
            read_request(sock)  # the second request arrives, unanswered: close

    srv = raw_server(script)
    assert client.request("GET", srv.base).body == b"0"
    assert client.request("POST", srv.base, b"again").body == b"1"
    assert srv.connections == 2


def test_idle_connection_closed_by_server(client: HttpClient, raw_server: Start) -> None:
    closed = threading.Event()

    def script(sock: socket.socket, _index: int) -> None:
        read_request(sock)
        sock.sendall(OK)
        sock.close()
        closed.set()

    srv = raw_server(script)
    assert client.request("GET", srv.base).body == b"ok"
    assert closed.wait(5)
    assert client.request("GET", srv.base).body == b"ok"
    assert srv.connections == 2


def test_fresh_connection_closed_is_not_retried(client: HttpClient, raw_server: Start) -> None:
    srv = raw_server(lambda sock, _i: read_request(sock) and None)
    with pytest.raises(ProtocolError, match="without a response"):
        client.request("GET", srv.base)
    assert srv.connections == 1


@pytest.mark.parametrize("response", [
    b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
    b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
], ids=["http1.0", "connection-close"])
def test_connection_not_reused_when_server_says_so(client: HttpClient, raw_server: Start,
                                                   response: bytes) -> None:
    def script(sock: socket.socket, _index: int) -> None:
        while read_request(sock):  # would happily serve a second request on this connection
            sock.sendall(response)

    srv = raw_server(script)
    for _ in range(2):
        assert client.request("GET", srv.base).body == b"ok"
    assert srv.connections == 2


def test_concurrent_threads(http_server: LoopbackHTTPServer) -> None:
    client = HttpClient(HttpConfig(read_timeout=5))
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def work(n: int) -> None:
        try:
            barrier.wait()
            for i in range(10):
                body = b"thread %d request %d" % (n, i)
                resp = client.request("POST", f"{http_server.base}/echo", body)
                assert resp.status == 200 and body.decode() in resp.body.decode()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    client.close()
    assert errors == []
    # each thread its own connection, reused: far fewer than the 80 requests
    assert http_server.connections <= 16


@pytest.mark.parametrize(("response", "match"), [
    (b"HTTP/1.1 OK\r\n\r\n", "malformed status line"),
    (b"ICY 200 OK\r\n\r\n", "malformed status line"),
    (b"HTTP/2.0 200 OK\r\n\r\n", "unsupported HTTP version"),
    (b"HTTP/1.1 200 OK\r\nNo colon here\r\n\r\n", "malformed header"),
    (b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", "malformed header"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok", "Content-Length"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "Content-Length"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "chunk size"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokay\r\n0\r\n\r\n", "chunk"),
    (b"HTTP/1.1 200 OK\r\nX: " + b"a" * 70000 + b"\r\n\r\n", "larger than 65536"),
    (b"HTTP/1.1 200 OK\r\n" + b"X: 1\r\n" * 101 + b"\r\n", "more than 100"),
    (b"HTTP/1.1 100 Continue\r\n\r\n" * 11, "interim"),
], ids=["no-code", "not-http", "http2", "no-colon", "space-in-name", "two-lengths",
        "negative-length", "bad-chunk-size", "chunk-overrun", "huge-header", "many-headers",
        "endless-1xx"])
def test_malformed_responses(client: HttpClient, raw_server: Start, response: bytes,
                             match: str) -> None:
    def script(sock: socket.socket, _index: int) -> None:
        read_request(sock)
        sock.sendall(response)

    srv = raw_server(script)
    with pytest.raises(ProtocolError, match=match):
        client.request("GET", srv.base)


@pytest.mark.parametrize(("response", "body", "headers"), [
    (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", b"ok", []),
    (b"HTTP/1.1 200\r\nX-A: one\r\n two\r\nContent-Length: 0\r\n\r\n", b"",
     [("X-A", "one two"), ("Content-Length", "0")]),
    (b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok", b"ok", [("Content-Length", "2")]),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;ext=1\r\nok\r\n0\r\nT: 1\r\n\r\n",
     b"ok", [("Transfer-Encoding", "chunked")]),
], ids=["100-continue", "obs-fold-no-reason", "bare-lf", "chunk-ext-trailer"])
def test_tolerated_responses(client: HttpClient, raw_server: Start, response: bytes,
                             body: bytes, headers: list[tuple[str, str]]) -> None:
    def script(sock: socket.socket, _index: int) -> None:
        read_request(sock)
        sock.sendall(response)

    srv = raw_server(script)
    resp = client.request("GET", srv.base)
    assert (resp.status, resp.body) == (200, body)
    if headers:
        assert resp.headers == headers


def test_request_line_and_headers_on_the_wire(client: HttpClient, raw_server: Start) -> None:
    seen: list[bytes] = []

    def script(sock: socket.socket, _index: int) -> None:
        seen.append(read_request(sock))
        sock.sendall(OK)

    srv = raw_server(script)
    client.request("PUT", f"{srv.base}/a/b?c=d#frag", b"xyz", {"X-Y": "z"})
    head, _, body = seen[0].partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "PUT /a/b?c=d HTTP/1.1"
    assert lines[1:] == [f"Host: {srv.base[7:]}", f"User-Agent: {client.config.user_agent}",
                         "X-Y: z", "Content-Length: 3", "Connection: keep-alive"]
    assert body == b"xyz"


def test_header_injection_refused(client: HttpClient) -> None:
    with pytest.raises(ValueError):
        client.request("GET", "http://127.0.0.1:1/", None, {"X": "a\r\nEvil: 1"})
    with pytest.raises(ValueError):
        client.request("GET\r\n", "http://127.0.0.1:1/")


def test_close_drops_idle_connections(client: HttpClient, http_server: LoopbackHTTPServer) -> None:
    client.request("GET", f"{http_server.base}/big/1")
    client.close()
    client.request("GET", f"{http_server.base}/big/1")
    assert http_server.connections == 2


def test_errors_are_http_errors(client: HttpClient, free_port: int) -> None:
    with pytest.raises(HttpError):
        client.request("GET", f"http://127.0.0.1:{free_port}/")
