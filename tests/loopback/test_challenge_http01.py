"""http-01 responders on loopback: the WSGI app under wsgiref, the CGI script as a real process,
wucme's own listener under real curl, and hostile clients against it."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest

from wucme.challenge.http01 import NO_SUCH_TOKEN, Http01Listener, make_wsgi_app
from wucme.challenge.store import ChallengeStore

from .test_challenge_support import PYTHON, python_env

TOKEN = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"
KEYAUTH = TOKEN + ".9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"


@pytest.fixture
def store(tmp_path: Path) -> ChallengeStore:
    s = ChallengeStore(tmp_path / "challenges")
    s.put(TOKEN, KEYAUTH, "www.example.org", "http-01")
    return s


@pytest.fixture
def listener(store: ChallengeStore) -> Iterator[Http01Listener]:
    with Http01Listener(store, "127.0.0.1", 0, timeout=1.0) as server:
        yield server


def curl(url: str, *args: str) -> tuple[int, str, str]:
    """Real curl: (status, body, headers)."""
    p = subprocess.run(
        ["curl", "-sS", "-D", "-", "-o", "-", "--max-time", "10", "--path-as-is", *args, url],
        capture_output=True, timeout=20,
    )
    assert p.returncode == 0, p.stderr
    head, _, body = p.stdout.decode().partition("\r\n\r\n")
    status = int(head.split()[1])
    return status, body, head


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def test_wsgi_app_under_wsgiref(store: ChallengeStore) -> None:
    with make_server("127.0.0.1", 0, make_wsgi_app(store), handler_class=_Quiet) as server:
        t = threading.Thread(target=server.serve_forever, daemon=True)
        t.start()
        try:
            base = f"http://127.0.0.1:{server.server_port}"
            status, body, head = curl(f"{base}/.well-known/acme-challenge/{TOKEN}")
            assert (status, body) == (200, KEYAUTH)
            assert "text/plain" in head
            status, body, _ = curl(f"{base}/cgi-bin/wucme/.well-known/acme-challenge/{TOKEN}")
            assert (status, body) == (200, KEYAUTH)
            assert curl(f"{base}/.well-known/acme-challenge/")[:2] == (404, NO_SUCH_TOKEN)
            assert curl(f"{base}/.well-known/acme-challenge/{TOKEN}x")[:2] == (404, NO_SUCH_TOKEN)
        finally:
            server.shutdown()
            t.join()


def run_cgi(store: ChallengeStore, env: dict[str, str]) -> tuple[str, str]:
    """Run cgi_main as a real CGI process; return (status line, body)."""
    full = python_env()
    full.update({"GATEWAY_INTERFACE": "CGI/1.1", "WUCME_CHALLENGES": str(store.directory)})
    full.update(env)
    p = subprocess.run(
        [PYTHON, "-c", "import sys; from wucme.challenge.http01 import cgi_main; sys.exit(cgi_main())"],
        env=full, capture_output=True, timeout=20,
    )
    assert p.returncode == 0, p.stderr
    head, _, body = p.stdout.decode().partition("\r\n\r\n")
    return head.splitlines()[0], body


@pytest.mark.parametrize(
    "script,path",
    [
        ("/cgi-bin/wucme", f"/.well-known/acme-challenge/{TOKEN}"),  # Apache ScriptAlias
        ("", f"/.well-known/acme-challenge/{TOKEN}"),
        ("", f"/cgi-bin/wucme/.well-known/acme-challenge/{TOKEN}"),
        (f"/.well-known/acme-challenge/{TOKEN}", ""),  # ScriptAliasMatch of the whole path
    ],
)
def test_cgi_process(store: ChallengeStore, script: str, path: str) -> None:
    status, body = run_cgi(store, {"REQUEST_METHOD": "GET", "SCRIPT_NAME": script, "PATH_INFO": path})
    assert (status, body) == ("Status: 200 OK", KEYAUTH)


def test_cgi_process_unknown_and_post(store: ChallengeStore) -> None:
    base = {"SCRIPT_NAME": "/cgi-bin/wucme"}
    assert run_cgi(store, {**base, "REQUEST_METHOD": "GET", "PATH_INFO": "/.well-known/acme-challenge/"}) == (
        "Status: 404 Not Found", NO_SUCH_TOKEN)
    assert run_cgi(store, {**base, "REQUEST_METHOD": "GET", "PATH_INFO": "/.well-known/acme-challenge/../x"}) == (
        "Status: 404 Not Found", NO_SUCH_TOKEN)
    status, _ = run_cgi(store, {**base, "REQUEST_METHOD": "POST",
                                "PATH_INFO": f"/.well-known/acme-challenge/{TOKEN}"})
    assert status == "Status: 405 Method Not Allowed"


def test_listener_answers_curl(listener: Http01Listener) -> None:
    base = f"http://127.0.0.1:{listener.port}"
    status, body, head = curl(f"{base}/.well-known/acme-challenge/{TOKEN}")
    assert (status, body) == (200, KEYAUTH)
    assert f"Content-Length: {len(KEYAUTH)}" in head
    status, body, _ = curl(f"{base}/cgi-bin/wucme/.well-known/acme-challenge/{TOKEN}")
    assert (status, body) == (200, KEYAUTH)
    reply = raw_request(listener.port, f"HEAD /.well-known/acme-challenge/{TOKEN} HTTP/1.1\r\n"
                                       f"Host: x\r\n\r\n".encode())
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ") and body == b""
    assert f"Content-Length: {len(KEYAUTH)}".encode() in head
    assert curl(f"{base}/.well-known/acme-challenge/")[:2] == (404, NO_SUCH_TOKEN)


def test_listener_post_is_405_with_allow(listener: Http01Listener) -> None:
    status, _, head = curl(f"http://127.0.0.1:{listener.port}/.well-known/acme-challenge/{TOKEN}", "-X", "POST",
                           "-d", "x")
    assert status == 405
    assert "Allow: GET, HEAD" in head


@pytest.mark.parametrize(
    "path",
    [
        "/.well-known/acme-challenge/../../etc/passwd",
        "/.well-known/acme-challenge/%2e%2e",
        "/.well-known/acme-challenge/%2e%2e%2fWUCME_CHALLENGES",
        f"/.well-known/acme-challenge/{TOKEN}/x",
        f"/.well-known/acme-challenge/{TOKEN[:10]}%2F{TOKEN[10:]}",
        "/.well-known/acme-challenge/tok+en=",
        "/.well-known/acme-challenge/" + "A" * 300,
    ],
)
def test_listener_hostile_tokens(listener: Http01Listener, path: str) -> None:
    status, body, _ = curl(f"http://127.0.0.1:{listener.port}{path}")
    assert (status, body) == (404, NO_SUCH_TOKEN)


def raw_request(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(data)
        reply = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            reply += chunk
        return reply


def test_listener_oversized_head(listener: Http01Listener) -> None:
    big = b"GET /.well-known/acme-challenge/" + TOKEN.encode() + b" HTTP/1.1\r\nX-Pad: " + b"a" * 20000
    assert raw_request(listener.port, big).startswith(b"HTTP/1.1 431 ")


def test_listener_garbage_request(listener: Http01Listener) -> None:
    assert raw_request(listener.port, b"\x16\x03\x01 nonsense\r\n\r\n").startswith(b"HTTP/1.1 400 ")


def test_idle_connections_do_not_block_validation(store: ChallengeStore) -> None:
    """Slowloris: 100 idle and trickling clients, then a real GET still answers at once."""
    with Http01Listener(store, "127.0.0.1", 0, timeout=2.0, max_clients=64) as server:
        idle = []
        try:
            for i in range(100):
                s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
                if i % 2:
                    s.sendall(b"GET /.well-known/acme-challenge/")  # a head that never ends
                idle.append(s)
            start = time.monotonic()
            status, body, _ = curl(f"http://127.0.0.1:{server.port}/.well-known/acme-challenge/{TOKEN}")
            assert (status, body) == (200, KEYAUTH)
            assert time.monotonic() - start < 1.5
            # the idle ones are dropped by the deadline (or to make room), never answered
            s = idle[-1]
            s.settimeout(5)
            assert s.recv(100) == b""
        finally:
            for s in idle:
                s.close()


def test_methods_are_case_sensitive(listener: Http01Listener, store: ChallengeStore) -> None:
    """RFC 9110 §9.1: "get" is not GET but a method nobody implements here: 501, not the key
    authorization; a known method other than GET and HEAD stays 405 (issue 10, item 11)."""
    target = f"/.well-known/acme-challenge/{TOKEN}"
    for method in ("get", "Get", "head", "BREW"):
        reply = raw_request(listener.port, f"{method} {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert reply.startswith(b"HTTP/1.1 501 ") and KEYAUTH.encode() not in reply, method
        status, _ = run_cgi(store, {"REQUEST_METHOD": method, "PATH_INFO": target})
        assert status == "Status: 501 Not Implemented"
    reply = raw_request(listener.port, f"DELETE {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert reply.startswith(b"HTTP/1.1 405 ") and b"Allow: GET, HEAD" in reply
    assert raw_request(listener.port, f"GET {target} HTTP/1.1\r\n\r\n".encode()).endswith(KEYAUTH.encode())
