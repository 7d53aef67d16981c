"""Both transports (builtin and requests) against real loopback servers: one behaviour."""
from __future__ import annotations

import base64
import json
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest

from wucme.http import (
    USER_AGENT, ConnectError, HttpTimeout, ProtocolError, ResponseTooLarge, TLSError, Transport,
)

from .conftest import Certs, LoopbackHTTPServer, RawServer, read_request

Make = Callable[..., Transport]


def echo(resp: Any) -> dict[str, Any]:
    assert resp.status == 200, resp
    assert resp.content_type == "application/json"
    return dict(json.loads(resp.body))


def sent(data: dict[str, Any], name: str) -> list[str]:
    return [v for k, v in data["headers"] if k.lower() == name.lower()]


def test_get_sends_host_and_user_agent(make: Make, http_server: LoopbackHTTPServer) -> None:
    url = f"{http_server.base}/echo?x=1"
    resp = make().request("GET", url)
    data = echo(resp)
    assert data["method"] == "GET" and data["path"] == "/echo?x=1" and data["body"] == ""
    assert sent(data, "User-Agent") == [USER_AGENT]
    assert sent(data, "Host") == [f"127.0.0.1:{http_server.server_address[1]}"]
    assert resp.url == url
    assert int(resp.header("content-length") or -1) == len(resp.body)


def test_post_echoes_body_and_extra_headers(make: Make, http_server: LoopbackHTTPServer) -> None:
    body = b'{"protected":"x","payload":"","signature":"\xc3\xa9"}'
    t = make(user_agent="tester/1")
    resp = t.request("POST", f"{http_server.base}/echo", body,
                     {"Content-Type": "application/jose+json", "X-Extra": "a b"})
    data = echo(resp)
    assert data["method"] == "POST"
    assert data["body"].encode("latin-1") == body
    assert sent(data, "Content-Length") == [str(len(body))]
    assert sent(data, "Content-Type") == ["application/jose+json"]
    assert sent(data, "X-Extra") == ["a b"]
    assert sent(data, "User-Agent") == ["tester/1"]


def test_post_without_body_sends_zero_length(make: Make, http_server: LoopbackHTTPServer) -> None:
    data = echo(make().request("POST", f"{http_server.base}/echo"))
    assert sent(data, "Content-Length") == ["0"]


def test_repeated_headers_are_all_kept(make: Make, http_server: LoopbackHTTPServer) -> None:
    resp = make().request("GET", f"{http_server.base}/links")
    assert resp.header_all("link") == ['<http://a/1>;rel="up"', '<http://a/2>;rel="alternate"']
    assert resp.header("X-Other") == "1"
    assert resp.body == b"ok"


@pytest.mark.parametrize(("path", "body"), [
    ("/chunked", b"hello, chunked world"),
    ("/close", b"until the end"),
    ("/big/70000", b"y" * 70000),
    ("/bigchunked/70000", b"x" * 70000),
], ids=["chunked", "until-close", "length", "many-chunks"])
def test_body_framings(make: Make, http_server: LoopbackHTTPServer, path: str, body: bytes) -> None:
    t = make()
    for _ in range(2):  # the second read proves the connection state after each framing
        resp = t.request("GET", http_server.base + path)
        assert (resp.status, resp.body) == (200, body)


def test_head_has_no_body(make: Make, http_server: LoopbackHTTPServer) -> None:
    t = make()
    resp = t.request("HEAD", f"{http_server.base}/big/5000")
    assert (resp.status, resp.body, resp.header("Content-Length")) == (200, b"", "5000")
    assert t.request("GET", f"{http_server.base}/big/10").body == b"y" * 10


def test_204_has_no_body(make: Make, http_server: LoopbackHTTPServer) -> None:
    t = make()
    assert (t.request("GET", f"{http_server.base}/nocontent").status) == 204
    assert t.request("GET", f"{http_server.base}/big/3").body == b"yyy"


@pytest.mark.parametrize("path", ["/big/2000", "/bigchunked/2000", "/close"])
def test_body_too_large(make: Make, http_server: LoopbackHTTPServer, path: str) -> None:
    t = make(max_body=10)
    with pytest.raises(ResponseTooLarge, match="10 bytes"):
        t.request("GET", http_server.base + path)
    # the transport stays usable after refusing a body
    assert make(max_body=10).request("GET", f"{http_server.base}/big/10").body == b"y" * 10


def test_redirect_is_not_followed(make: Make, http_server: LoopbackHTTPServer) -> None:
    resp = make().request("GET", f"{http_server.base}/redirect")
    assert (resp.status, resp.header("Location"), resp.body) == (301, "/echo", b"moved")
    assert http_server.paths == ["/redirect"]


@pytest.mark.parametrize(("url", "headers"), [
    ("ftp://127.0.0.1/", None),
    ("http:///nohost", None),
    ("http://127.0.0.1:1/", {"X-Bad": "a\r\nInjected: 1"}),
], ids=["scheme", "no-host", "header-injection"])
def test_caller_mistakes_are_value_errors(make: Make, url: str,
                                          headers: dict[str, str] | None) -> None:
    with pytest.raises(ValueError):
        make().request("GET", url, None, headers)


def test_connect_refused(make: Make, free_port: int) -> None:
    with pytest.raises(ConnectError):
        make().request("GET", f"http://127.0.0.1:{free_port}/")


def test_server_that_never_answers_times_out(make: Make, silent_listener: str) -> None:
    start = time.monotonic()
    with pytest.raises(HttpTimeout):
        make(read_timeout=0.3).request("GET", f"http://{silent_listener}/")
    assert time.monotonic() - start < 5


def test_tls_handshake_never_answered_times_out(make: Make, silent_listener: str) -> None:
    with pytest.raises(HttpTimeout):
        make(connect_timeout=0.3, read_timeout=0.3).request("GET", f"https://{silent_listener}/")


def test_stall_in_the_body_times_out(make: Make, raw_server: Callable[..., RawServer]) -> None:
    def script(sock: socket.socket, _i: int) -> None:
        read_request(sock)
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nsome, not all")
        sock.recv(1)  # until the client gives up

    srv = raw_server(script)
    with pytest.raises(HttpTimeout):
        make(read_timeout=0.3).request("GET", f"{srv.base}/")


def test_truncated_body(make: Make, raw_server: Callable[..., RawServer]) -> None:
    def script(sock: socket.socket, _i: int) -> None:
        read_request(sock)
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this")

    srv = raw_server(script)
    with pytest.raises(ProtocolError):
        make().request("GET", f"{srv.base}/")


# --- TLS ---------------------------------------------------------------------------------------

def test_tls_untrusted_certificate(make: Make, https_server: LoopbackHTTPServer) -> None:
    with pytest.raises(TLSError):
        make().request("GET", f"{https_server.base}/echo")  # system store: test root unknown


def test_tls_with_ca_bundle(make: Make, https_server: LoopbackHTTPServer, certs: Certs) -> None:
    t = make(ca_bundle=str(certs.ca))
    for _ in range(2):
        data = echo(t.request("POST", f"{https_server.base}/echo", b"secret"))
        assert data["body"] == "secret"


def test_tls_with_ca_path(make: Make, https_server: LoopbackHTTPServer, certs: Certs) -> None:
    assert echo(make(ca_path=str(certs.ca_dir)).request("GET", f"{https_server.base}/echo"))


def test_tls_sni_and_hostname(make: Make, https_server: LoopbackHTTPServer, certs: Certs) -> None:
    port = https_server.server_address[1]
    resp = make(ca_bundle=str(certs.ca)).request("GET", f"https://localhost:{port}/echo")
    assert sent(echo(resp), "Host") == [f"localhost:{port}"]
    assert "localhost" in https_server.sni


def test_tls_missing_ca_bundle(make: Make, https_server: LoopbackHTTPServer, tmp_path: Any) -> None:
    with pytest.raises(TLSError):
        make(ca_bundle=str(tmp_path / "absent.pem")).request("GET", f"{https_server.base}/echo")


# --- proxies -----------------------------------------------------------------------------------

def test_connect_proxy_for_https(make: Make, https_server: LoopbackHTTPServer, certs: Certs,
                                 proxy_factory: Callable[..., Any]) -> None:
    proxy = proxy_factory()
    t = make(ca_bundle=str(certs.ca), proxy=proxy.url)
    assert echo(t.request("POST", f"{https_server.base}/echo", b"via tunnel"))["body"] == "via tunnel"
    port = https_server.server_address[1]
    assert proxy.requests[0].startswith(f"CONNECT 127.0.0.1:{port} HTTP/1.")


def test_connect_proxy_with_credentials(make: Make, https_server: LoopbackHTTPServer,
                                        certs: Certs, proxy_factory: Callable[..., Any]) -> None:
    expect = "Basic " + base64.b64encode(b"user:p@ss").decode()
    proxy = proxy_factory(require_auth=expect)
    url = proxy.url.replace("http://", "http://user:p%40ss@")
    assert echo(make(ca_bundle=str(certs.ca), proxy=url).request("GET", f"{https_server.base}/echo"))
    assert proxy.auth == [expect]


def test_connect_proxy_refusal(make: Make, https_server: LoopbackHTTPServer, certs: Certs,
                               proxy_factory: Callable[..., Any]) -> None:
    proxy = proxy_factory(require_auth="Basic nobody")
    with pytest.raises(ConnectError):
        make(ca_bundle=str(certs.ca), proxy=proxy.url).request("GET", f"{https_server.base}/echo")


def test_proxy_for_http_uses_absolute_form(make: Make, http_server: LoopbackHTTPServer,
                                           proxy_factory: Callable[..., Any]) -> None:
    proxy = proxy_factory()
    url = f"{http_server.base}/echo?q=1"
    assert echo(make(proxy=proxy.url).request("GET", url))["path"] == url
    assert proxy.requests == [f"GET {url} HTTP/1.1"]


@pytest.mark.parametrize("tls", [False, True])
def test_connection_reuse(make: Make, http_server: LoopbackHTTPServer,
                          https_server: LoopbackHTTPServer, certs: Certs, tls: bool) -> None:
    server = https_server if tls else http_server
    t = make(ca_bundle=str(certs.ca))
    for i in range(3):
        assert echo(t.request("POST", f"{server.base}/echo", b"%d" % i))["body"] == str(i)
    assert server.connections == 1
