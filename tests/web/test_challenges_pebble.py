"""Pebble validating each challenge responder: Apache's CGI, wucme's listener and responder,
`wucme alpn` in front of a TLS site, and nginx's stream routing (RFC 8555 §8.3, RFC 8737)."""
from __future__ import annotations

import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509

from harness.pebble import Pebble, TestCA, free_port, stop_child
from harness.webservers import Apache, Nginx, processes_in_group
from wucme.challenge.alpn import AlpnControl
from wucme.challenge.http01 import Http01Listener
from wucme.challenge.store import ChallengeStore
from wucme.challenge.tlsalpn import TlsAlpnResponder

from .support import (Acme, alpn_control_responder, alpn_store_responder, http01_responder,
                      unique_names)

pytestmark = pytest.mark.pebble


def sans(pem: bytes) -> set[str]:
    leaf = x509.load_pem_x509_certificates(pem)[0]
    ext = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(v) for v in ext.get_values_for_type(x509.DNSName)} | {
        str(v) for v in ext.get_values_for_type(x509.IPAddress)}


def site_get(port: int, ca: TestCA, alpn: list[str] | None = None) -> bytes:
    """An ordinary https client (verifying the site's certificate for localhost)."""
    ctx = ssl.create_default_context(cafile=str(ca.cert))
    if alpn:
        ctx.set_alpn_protocols(alpn)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
            data = b""
            while chunk := tls.recv(4096):
                data += chunk
    return data


# --- http-01 -------------------------------------------------------------------------------

def test_http01_through_apache_running_the_wucme_cgi_script(
        pebble: Pebble, acme: Acme, store: ChallengeStore,
        apache_on: Callable[[int], Apache]) -> None:
    web = apache_on(pebble.http_port)
    names = unique_names(2)
    pem = acme.issue(names, http01_responder(store))
    assert sans(pem) == set(names)
    assert acme.answered("http-01") == set(names)
    # Pebble's requests reached the script under Apache and were answered 200, on the
    # WASD-style mapped path the CA asks for.
    hits = [line for line in web.access_log_path.read_text().splitlines()
            if '"GET /.well-known/acme-challenge/' in line and "acme-challenge/ HTTP" not in line]
    assert len(hits) >= 2, hits
    assert all(line.split('"')[2].split()[0] == "200" for line in hits), hits
    assert len(store) == 0  # done removed every entry
    if web.user:  # started by root: the script ran as www-data, reading a 0755/0644 store
        assert web.user == "www-data"


def test_http01_through_wucme_http01_listener_with_idle_connections(
        pebble: Pebble, acme: Acme, store: ChallengeStore) -> None:
    seen: list[str] = []
    with Http01Listener(store, "127.0.0.1", pebble.http_port, timeout=20, log=seen.append):
        idle = [socket.create_connection(("127.0.0.1", pebble.http_port)) for _ in range(100)]
        try:
            for s in idle[:50]:
                s.sendall(b"GET /.well-known/acme-chall")  # trickling, never finished
            names = unique_names(1)
            pem = acme.issue(names, http01_responder(store))
        finally:
            for s in idle:
                s.close()
    assert sans(pem) == set(names)
    assert any("/.well-known/acme-challenge/" in line and line.endswith(" 200") for line in seen), seen


# --- tls-alpn-01 -----------------------------------------------------------------------------

def test_tls_alpn01_through_wucme_responder_dns_and_ip(
        pebble: Pebble, acme: Acme, store: ChallengeStore) -> None:
    with TlsAlpnResponder(store, "127.0.0.1", pebble.tls_port) as responder:
        names = unique_names(1) + ["127.0.0.1"]  # RFC 8738: the IP's SNI is its .arpa name
        pem = acme.issue(names, alpn_store_responder(store, acme.thumbprint))
        assert sans(pem) == set(names)
        assert acme.answered("tls-alpn-01") == set(names)
        assert responder.validations >= 2
    assert len(store) == 0


@pytest.fixture
def wucme_alpn(tmp_path: Path, pebble: Pebble, web_dir: Path,
               nginx_on: Callable[[int, int], Nginx]) -> Iterator[tuple[subprocess.Popen[bytes], Nginx, Path, Path]]:
    """`wucme alpn` on Pebble's tls port (PROXY v1) in front of nginx's https site."""
    ng = nginx_on(free_port(), free_port())  # only its proxy_protocol site is used here
    sock, pidfile, log = web_dir / "alpn.sock", web_dir / "alpn.pid", web_dir / "alpn.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "wucme", "alpn", "-b", f"127.0.0.1@{pebble.tls_port}",
         "-c", f"127.0.0.1@{ng.proxy_site_port}", "-s", str(sock), "-p", str(pidfile),
         "-l", str(log), "-vv"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        end = time.monotonic() + 15
        while not (AlpnControl(sock).available() and pidfile.exists()):
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else b""
            assert time.monotonic() < end, "wucme alpn did not start"
            time.sleep(0.02)
        yield proc, ng, sock, log
    finally:
        stop_child(proc, grace=10)
        assert processes_in_group(proc.pid) == []


def test_tls_alpn01_through_wucme_alpn_in_front_of_a_tls_site(
        pebble: Pebble, pebble_ca: TestCA, acme: Acme,
        wucme_alpn: tuple[subprocess.Popen[bytes], Nginx, Path, Path]) -> None:
    proc, ng, sock, log = wucme_alpn
    port = pebble.tls_port
    # Before: an ordinary client reaches the site, and nginx saw our address in the PROXY header.
    assert b"wucme test site for 127.0.0.1:" in site_get(port, pebble_ca, ["h2", "http/1.1"])

    # During: ordinary clients keep being served while the validation runs.
    failures: list[BaseException] = []
    served = 0
    stop = threading.Event()

    def ordinary_clients() -> None:
        nonlocal served
        while not stop.is_set():
            try:
                assert b"wucme test site" in site_get(port, pebble_ca)
                served += 1
            except BaseException as exc:  # noqa: BLE001 - reported below
                failures.append(exc)
            time.sleep(0.01)

    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(30)]
    clients = threading.Thread(target=ordinary_clients, daemon=True)
    clients.start()
    try:
        names = unique_names(2)
        pem = acme.issue(names, alpn_control_responder(AlpnControl(sock)))
    finally:
        stop.set()
        clients.join(15)
        for s in idle:
            s.close()
    assert sans(pem) == set(names)
    assert acme.answered("tls-alpn-01") == set(names)
    assert not failures, failures[:3]
    assert served > 0
    # After: still the site, and the auths were withdrawn.
    assert b"wucme test site" in site_get(port, pebble_ca)
    assert AlpnControl(sock).unauth(names[0]) == "ERR not found"
    assert proc.poll() is None


def test_tls_alpn01_through_nginx_stream_routing(
        pebble: Pebble, pebble_ca: TestCA, acme: Acme, store: ChallengeStore,
        nginx_on: Callable[[int, int], Nginx]) -> None:
    with TlsAlpnResponder(store, "127.0.0.1", 0) as responder:
        ng = nginx_on(pebble.tls_port, responder.port)
        names = unique_names(2)
        pem = acme.issue(names, alpn_store_responder(store, acme.thumbprint))
        assert sans(pem) == set(names)
        assert responder.validations >= 2  # the validations went through nginx to wucme
        # Ordinary clients still get the site through the same port: curl and s_client.
        curl = subprocess.run(
            ["curl", "-sS", "--max-time", "10", "--cacert", str(pebble_ca.cert),
             "--resolve", f"localhost:{ng.front_port}:127.0.0.1", f"https://localhost:{ng.front_port}/"],
            capture_output=True, text=True, timeout=20)
        assert curl.returncode == 0 and curl.stdout == "wucme test site\n", curl.stderr
        assert site_get(ng.front_port, pebble_ca, ["h2", "http/1.1"]).endswith(b"wucme test site\n")
