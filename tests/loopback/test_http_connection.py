"""The built-in client's connection (wucme/http/_conn.py) against real loopback servers: how a URL
becomes an origin, how a proxy URL is read, and what each failure on the way says.

tests/loopback/test_transport_conformance.py checks that both transports fail with the same
exception class; an operator reads the message, so these scenarios pin its content: which
host and port, which stage (connect, CONNECT, TLS, answer), and the reason.
"""
from __future__ import annotations

import base64
import os
import socket
import ssl
import struct
import time
from collections.abc import Callable, Iterator

import pytest

from wucme.http import ConnectError, HttpConfig, HttpTimeout, ProtocolError, TLSError
from wucme.http._conn import Connection, Origin, Proxy, Stale, split_url
from wucme.http.client import HttpClient

from .conftest import Certs, LoopbackHTTPServer, RawServer, read_request, server_context

Start = Callable[..., RawServer]


@pytest.fixture
def clients() -> Iterator[Callable[..., HttpClient]]:
    made: list[HttpClient] = []

    def make(**kw: object) -> HttpClient:
        made.append(HttpClient(HttpConfig(**kw)))  # type: ignore[arg-type]
        return made[-1]

    yield make
    for c in made:
        c.close()


def port_of(server: RawServer | LoopbackHTTPServer) -> int:
    return int(server.base.rsplit(":", 1)[1])


# --- URLs and origins ----------------------------------------------------------------------------


@pytest.mark.parametrize("url, origin, target, authority", [
    ("http://Example.ORG/a/b?x=1&y=2#frag", ("http", "example.org", 80), "/a/b?x=1&y=2", "example.org"),
    ("HTTPS://example.org", ("https", "example.org", 443), "/", "example.org"),
    ("https://example.org:80/", ("https", "example.org", 80), "/", "example.org:80"),
    ("http://example.org:443/?", ("http", "example.org", 443), "/", "example.org:443"),
    ("https://example.org:8443/dir/", ("https", "example.org", 8443), "/dir/", "example.org:8443"),
    ("http://[2001:db8::1]:8080/x", ("http", "2001:db8::1", 8080), "/x", "[2001:db8::1]:8080"),
    ("https://[::1]/", ("https", "::1", 443), "/", "[::1]"),
    ("http://bücher.example/", ("http", "xn--bcher-kva.example", 80), "/", "xn--bcher-kva.example"),
])
def test_a_url_gives_the_origin_the_host_header_and_the_request_target(
        url: str, origin: tuple[str, str, int], target: str, authority: str) -> None:
    o, t = split_url(url)
    assert (o.scheme, o.host, o.port) == origin and t == target
    assert o.authority == authority  # the Host header: the port only when not the scheme's own
    host = f"[{o.host}]" if ":" in o.host else o.host
    assert o.hostport == f"{host}:{o.port}"  # CONNECT's target and the messages: always the port


@pytest.mark.parametrize("url, message", [
    ("ftp://example.org/", "not an http or https URL: 'ftp://example.org/'"),
    ("http:///nohost", "not an http or https URL: 'http:///nohost'"),
    ("http://example.org:99999/", "bad port in URL 'http://example.org:99999/'"),
    ("http://example.org:port/", "bad port in URL 'http://example.org:port/'"),
])
def test_a_url_the_client_cannot_use_is_refused_by_name(url: str, message: str) -> None:
    with pytest.raises(ValueError) as ei:
        split_url(url)
    assert str(ei.value) == message


@pytest.mark.parametrize("url, origin, authorization", [
    ("proxy.example:3128", ("http", "proxy.example", 3128), None),
    ("http://proxy.example", ("http", "proxy.example", 80), None),
    ("http://us%40er:p%3Ass@proxy.example:8080", ("http", "proxy.example", 8080), b"us@er:p:ss"),
    ("user@proxy.example:8080", ("http", "proxy.example", 8080), b"user:"),
    ("http://:secret@proxy.example:8080", ("http", "proxy.example", 8080), b":secret"),
])
def test_a_proxy_url_gives_the_proxy_and_its_basic_credentials(
        url: str, origin: tuple[str, str, int], authorization: bytes | None) -> None:
    proxy = Proxy.from_url(url)
    assert (proxy.origin.scheme, proxy.origin.host, proxy.origin.port) == origin
    want = None if authorization is None else "Basic " + base64.b64encode(authorization).decode()
    assert proxy.authorization == want


def test_only_an_http_proxy_is_taken() -> None:
    with pytest.raises(ValueError) as ei:
        Proxy.from_url("https://proxy.example:3128")
    assert str(ei.value) == "only http:// proxies are supported: 'https://proxy.example:3128'"


# --- a connection ------------------------------------------------------------------------------


def test_a_dialled_connection_sends_at_once_and_waits_the_read_timeout(http_server: LoopbackHTTPServer) -> None:
    origin, _ = split_url(http_server.base)
    conn = Connection.dial(origin, None, None, 5.0, 7.5)
    try:
        assert conn.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0  # no Nagle delay
        assert conn.sock.gettimeout() == 7.5
        assert conn.reusable and conn.uses == 0 and not conn.dropped()
    finally:
        conn.close()
    assert not conn.reusable


def test_connecting_to_a_closed_port_says_where(clients: Callable[..., HttpClient], free_port: int) -> None:
    with pytest.raises(ConnectError) as ei:
        clients().request("GET", f"http://127.0.0.1:{free_port}/")
    assert str(ei.value) == f"cannot connect to 127.0.0.1:{free_port}: Connection refused"


def test_a_proxy_that_refuses_connect_is_named_with_its_answer(
        clients: Callable[..., HttpClient], https_server: LoopbackHTTPServer, certs: Certs,
        proxy_factory: Callable[..., object]) -> None:
    proxy = proxy_factory(require_auth="Basic nobody")
    pp, sp = port_of(proxy.server), https_server.server_address[1]  # type: ignore[attr-defined]
    with pytest.raises(ConnectError) as ei:
        clients(ca_bundle=str(certs.ca), proxy=proxy.url).request(  # type: ignore[attr-defined]
            "GET", f"{https_server.base}/echo")
    assert str(ei.value) == f"proxy 127.0.0.1:{pp} refused CONNECT 127.0.0.1:{sp}: 407 Proxy Authentication Required"
    assert proxy.auth == [None]  # type: ignore[attr-defined]  # no credentials: no header


@pytest.mark.parametrize("status", [b"300 Multiple Choices", b"404 Not Found"])
def test_connect_opens_a_tunnel_only_on_a_2xx_answer(clients: Callable[..., HttpClient], raw_server: Start,
                                                     status: bytes) -> None:
    def answer(sock: socket.socket, _i: int) -> None:
        read_request(sock)
        sock.sendall(b"HTTP/1.1 " + status + b"\r\nContent-Length: 0\r\n\r\n")
        sock.recv(1)

    proxy = raw_server(answer)
    with pytest.raises(ConnectError) as ei:
        clients(proxy=proxy.base).request("GET", "https://127.0.0.1:9/")
    assert str(ei.value) == f"proxy 127.0.0.1:{port_of(proxy)} refused CONNECT 127.0.0.1:9: {status.decode()}"


def test_a_proxy_that_answers_connect_with_garbage_is_a_bad_answer(clients: Callable[..., HttpClient],
                                                                  raw_server: Start) -> None:
    def garbage(sock: socket.socket, _i: int) -> None:
        read_request(sock)
        sock.sendall(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")

    proxy = raw_server(garbage)
    with pytest.raises(ConnectError) as ei:
        clients(proxy=proxy.base).request("GET", "https://127.0.0.1:9/")
    assert str(ei.value).startswith(f"proxy 127.0.0.1:{port_of(proxy)} gave a bad answer to CONNECT: ")


def test_a_proxy_that_resets_during_connect_is_named(clients: Callable[..., HttpClient], raw_server: Start) -> None:
    def reset(sock: socket.socket, _i: int) -> None:
        read_request(sock)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST on close

    proxy = raw_server(reset)
    with pytest.raises(ConnectError) as ei:
        clients(proxy=proxy.base).request("GET", "https://127.0.0.1:9/")
    assert str(ei.value) == f"proxy 127.0.0.1:{port_of(proxy)} failed during CONNECT: Connection reset by peer"


def test_a_proxy_silent_after_connect_times_out(clients: Callable[..., HttpClient], raw_server: Start) -> None:
    def silent(sock: socket.socket, _i: int) -> None:
        read_request(sock)
        sock.recv(1)

    proxy = raw_server(silent)
    with pytest.raises(HttpTimeout) as ei:
        clients(proxy=proxy.base, connect_timeout=0.3).request("GET", "https://127.0.0.1:9/")
    assert str(ei.value) == f"proxy 127.0.0.1:{port_of(proxy)} did not answer CONNECT in time"


def test_an_untrusted_certificate_is_named_with_the_reason(clients: Callable[..., HttpClient],
                                                           https_server: LoopbackHTTPServer) -> None:
    port = https_server.server_address[1]
    with pytest.raises(TLSError) as ei:
        clients().request("GET", f"{https_server.base}/echo")
    assert str(ei.value) == f"certificate of 127.0.0.1:{port} not trusted: self-signed certificate in certificate chain"


def test_tls_to_a_plain_http_server_is_a_failed_handshake(clients: Callable[..., HttpClient],
                                                          http_server: LoopbackHTTPServer) -> None:
    port = http_server.server_address[1]
    with pytest.raises(TLSError) as ei:
        clients().request("GET", f"https://127.0.0.1:{port}/echo")
    assert str(ei.value).startswith(f"TLS handshake with 127.0.0.1:{port} failed: ")


def test_a_silent_tls_server_times_out_the_handshake(clients: Callable[..., HttpClient], silent_listener: str) -> None:
    with pytest.raises(HttpTimeout) as ei:
        clients(connect_timeout=0.3, read_timeout=0.3).request("GET", f"https://{silent_listener}/")
    assert str(ei.value) == f"TLS handshake with {silent_listener} timed out"


def test_a_server_silent_after_the_request_times_out_with_the_wait_named(
        clients: Callable[..., HttpClient], silent_listener: str) -> None:
    with pytest.raises(HttpTimeout) as ei:
        clients(read_timeout=0.3).request("GET", f"http://{silent_listener}/")
    assert str(ei.value) == f"{silent_listener} did not answer within 0.3 s"


def test_a_connection_reset_in_the_body_is_a_lost_connection(clients: Callable[..., HttpClient],
                                                             raw_server: Start) -> None:
    def reset(sock: socket.socket, _i: int) -> None:
        read_request(sock)
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npart")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    srv = raw_server(reset)
    with pytest.raises(ConnectError) as ei:
        clients().request("GET", f"{srv.base}/")
    assert str(ei.value) == f"connection to 127.0.0.1:{port_of(srv)} lost: Connection reset by peer"


def test_a_fresh_connection_closed_unanswered_says_so_and_is_not_reused(
        clients: Callable[..., HttpClient], raw_server: Start) -> None:
    def close(sock: socket.socket, _i: int) -> None:
        read_request(sock)

    srv = raw_server(close)
    with pytest.raises(ProtocolError) as ei:
        clients().request("GET", f"{srv.base}/")
    assert str(ei.value) == "server closed the connection without a response"
    assert srv.connections == 1


def test_the_host_header_names_the_port_only_when_not_the_default(clients: Callable[..., HttpClient],
                                                                  raw_server: Start) -> None:
    seen: list[bytes] = []

    def record(sock: socket.socket, _i: int) -> None:
        seen.append(read_request(sock))
        sock.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")

    srv = raw_server(record)
    assert clients().request("GET", f"{srv.base}/").status == 204
    assert f"\r\nHost: 127.0.0.1:{port_of(srv)}\r\n".encode() in seen[0]
    assert Origin("http", "127.0.0.1", 80).authority == "127.0.0.1"
    assert Origin("https", "127.0.0.1", 80).authority == "127.0.0.1:80"


# --- what the proxy is sent, and what a kept connection does -------------------------------------


def test_connect_names_the_target_in_host_with_the_credentials_and_no_body(
        clients: Callable[..., HttpClient], raw_server: Start) -> None:
    seen: list[bytes] = []

    def refuse(sock: socket.socket, _i: int) -> None:
        seen.append(read_request(sock))
        sock.sendall(b"HTTP/1.1 403 \r\nContent-Length: 0\r\n\r\n")  # a status with no reason phrase
        sock.recv(1)

    proxy = raw_server(refuse)
    url = f"http://us%40er:pw@127.0.0.1:{port_of(proxy)}"
    with pytest.raises(ConnectError) as ei:
        clients(proxy=url).request("GET", "https://127.0.0.1:9/")
    # nothing trails the status when the proxy gives no reason
    assert str(ei.value) == f"proxy 127.0.0.1:{port_of(proxy)} refused CONNECT 127.0.0.1:9: 403"
    cred = base64.b64encode(b"us@er:pw").decode()
    assert seen == [(f"CONNECT 127.0.0.1:9 HTTP/1.1\r\nHost: 127.0.0.1:9\r\n"
                     f"Proxy-Authorization: Basic {cred}\r\n\r\n").encode()]


def keep_then_close(sock: socket.socket, _i: int) -> None:
    """Answers one request on a kept-alive connection, then closes it."""
    read_request(sock)
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")


def test_an_idle_connection_the_server_closed_is_seen_as_dropped(raw_server: Start) -> None:
    srv = raw_server(keep_then_close)
    conn = Connection.dial(split_url(srv.base)[0], None, None, 5.0, 5.0)
    try:
        head, body = conn.exchange("GET", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 1000)
        assert (head.status, body, conn.reusable) == (200, b"ok", True)
        deadline = time.monotonic() + 5
        while not conn.dropped() and time.monotonic() < deadline:  # the FIN arrives soon after
            time.sleep(0.02)
        assert conn.dropped()
    finally:
        conn.close()
    assert conn.dropped()  # a closed socket cannot be reused either


def test_asking_whether_a_live_idle_connection_dropped_does_not_wait(http_server: LoopbackHTTPServer) -> None:
    conn = Connection.dial(split_url(http_server.base)[0], None, None, 5.0, 5.0)
    try:
        began = time.monotonic()
        assert not conn.dropped()
        assert time.monotonic() - began < 0.8  # the pool asks before every reuse (waiting: 1 s)
    finally:
        conn.close()


def test_a_reused_connection_the_server_closed_is_stale(raw_server: Start) -> None:
    srv = raw_server(keep_then_close)
    conn = Connection.dial(split_url(srv.base)[0], None, None, 5.0, 5.0)
    try:
        conn.exchange("GET", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 1000)
        time.sleep(0.2)  # the server's close has arrived
        with pytest.raises(Stale) as ei:
            conn.exchange("GET", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 1000)
        assert str(ei.value) == "kept-alive connection closed by the server"
        assert not conn.reusable
    finally:
        conn.close()


def test_a_connection_whose_answer_was_garbage_is_not_reusable(raw_server: Start) -> None:
    def garbage(sock: socket.socket, _i: int) -> None:
        read_request(sock)
        sock.sendall(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
        sock.recv(1)

    srv = raw_server(garbage)
    conn = Connection.dial(split_url(srv.base)[0], None, None, 5.0, 5.0)
    try:
        with pytest.raises(ProtocolError):
            conn.exchange("GET", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 1000)
        assert not conn.reusable  # the pool must not hand it out again
    finally:
        conn.close()


def test_a_fresh_connection_reset_unanswered_is_no_response(raw_server: Start) -> None:
    def reset(sock: socket.socket, _i: int) -> None:
        read_request(sock)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST on close

    srv = raw_server(reset)
    conn = Connection.dial(split_url(srv.base)[0], None, None, 5.0, 5.0)
    try:
        with pytest.raises(ProtocolError) as ei:
            conn.exchange("GET", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 1000)
        assert str(ei.value) == "server closed the connection without a response"
    finally:
        conn.close()


def test_a_connect_that_is_never_accepted_times_out_with_the_wait_named() -> None:
    with socket.create_server(("127.0.0.1", 0), backlog=0) as full:
        port = full.getsockname()[1]
        fillers = []
        for _ in range(4):  # fill the accept queue: further SYNs are dropped, not refused
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            fillers.append(s)
        try:
            with pytest.raises(HttpTimeout) as ei:
                Connection.dial(Origin("http", "127.0.0.1", port), None, None, 0.3, 5.0)
            assert str(ei.value) == f"connecting to 127.0.0.1:{port} timed out after 0.3 s"
        finally:
            for s in fillers:
                s.close()


def test_a_reused_connection_reset_on_the_request_is_stale(raw_server: Start) -> None:
    def answer_then_reset(sock: socket.socket, _i: int) -> None:
        keep_then_close(sock, _i)
        read_request(sock)  # the second request is read, then the connection reset unanswered
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    srv = raw_server(answer_then_reset)
    conn = Connection.dial(split_url(srv.base)[0], None, None, 5.0, 5.0)
    try:
        conn.exchange("GET", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 1000)
        with pytest.raises(Stale) as ei:  # the client may retry it on a new connection
            conn.exchange("GET", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 1000)
        assert str(ei.value) == "kept-alive connection closed by the server"
    finally:
        conn.close()


# --- the request's deadline reaches every socket it reads --------------------------------------


def drip(sock: socket.socket, first: bytes) -> None:
    """`first` at once, then one header byte every 0.1 s for 3 s: no single read ever times out."""
    sock.sendall(first)
    try:
        for _ in range(30):
            sock.sendall(b"X")
            time.sleep(0.1)
    except OSError:
        pass  # the client gave up


def test_the_deadline_ends_a_proxy_dripping_its_connect_answer(clients: Callable[..., HttpClient],
                                                               raw_server: Start) -> None:
    def dripping(sock: socket.socket, _i: int) -> None:
        read_request(sock)
        drip(sock, b"HTTP/1.1 200 Connection established\r\n")

    proxy = raw_server(dripping)
    began = time.monotonic()
    with pytest.raises(HttpTimeout) as ei:
        clients(proxy=proxy.base, connect_timeout=2.0, deadline=0.5).request("GET", "https://127.0.0.1:9/")
    assert time.monotonic() - began < 2.0  # at the deadline, not when the proxy stops dripping
    assert str(ei.value) == "https://127.0.0.1:9/: no complete answer within 0.5 s (WUCME_HTTP_DEADLINE)"


def test_the_deadline_ends_a_dripping_answer_on_a_reused_connection(clients: Callable[..., HttpClient],
                                                                    raw_server: Start) -> None:
    def answer_then_drip(sock: socket.socket, _i: int) -> None:
        read_request(sock)
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        read_request(sock)
        drip(sock, b"HTTP/1.1 200 OK\r\n")

    srv = raw_server(answer_then_drip)
    client = clients(read_timeout=2.0, deadline=0.5)
    assert client.request("GET", f"{srv.base}/").body == b"ok"
    began = time.monotonic()
    with pytest.raises(HttpTimeout) as ei:
        client.request("GET", f"{srv.base}/again")
    assert time.monotonic() - began < 2.0  # the second request's deadline watches the kept socket
    assert str(ei.value) == f"{srv.base}/again: no complete answer within 0.5 s (WUCME_HTTP_DEADLINE)"
    assert srv.connections == 1


def test_garbage_in_place_of_a_tls_record_is_a_tls_failure_named_with_the_server(
        clients: Callable[..., HttpClient], raw_server: Start, certs: Certs) -> None:
    def broken_tls(sock: socket.socket, _i: int) -> None:
        with server_context(certs).wrap_socket(sock, server_side=True) as tls:
            read_request(tls)
            os.write(tls.fileno(), b"HTTP/1.1 200 OK\r\n\r\n")  # plain text after the handshake
            try:
                tls.recv(1)
            except (OSError, ssl.SSLError):
                pass  # the client hung up

    srv = raw_server(broken_tls)
    port = port_of(srv)
    with pytest.raises(TLSError) as ei:
        clients(ca_bundle=str(certs.ca)).request("GET", f"https://127.0.0.1:{port}/")
    assert str(ei.value).startswith(f"TLS failure talking to 127.0.0.1:{port}: ")
