"""Hostile clients at the web servers: Apache running the wucme script, nginx routing ClientHellos."""
from __future__ import annotations

import hashlib
import socket
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509

from harness.pebble import TestCA, free_port
from harness.webservers import Apache, Nginx, WebServerError, http_get
from wucme.challenge.store import ChallengeStore
from wucme.challenge.tlsalpn import ACME_IDENTIFIER_OID, TlsAlpnResponder

TOKEN = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"
KEYAUTH = TOKEN + ".9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"
NO_SUCH = b"Challenge received but no such token."
SCRIPT = "/cgi-bin/wucme/.well-known/acme-challenge/"


@pytest.fixture
def web(apache_on: Callable[[int], Apache], store: ChallengeStore) -> Apache:
    store.put(TOKEN, KEYAUTH, "www.example.org", "http-01")
    return apache_on(free_port())


def test_apache_answers_both_paths_and_the_bare_directory(web: Apache) -> None:
    for path in (SCRIPT + TOKEN, "/.well-known/acme-challenge/" + TOKEN):
        r = http_get(web.port, path)
        assert (r.status, r.body) == (200, KEYAUTH.encode())
        assert r.headers["content-type"].startswith("text/plain")
    r = http_get(web.port, "/.well-known/acme-challenge/")
    assert (r.status, r.body) == (404, NO_SUCH)
    r = http_get(web.port, SCRIPT + TOKEN, method="HEAD")
    assert (r.status, r.body) == (200, b"")


@pytest.mark.parametrize("target", [
    SCRIPT + "..%2f..%2fetc%2fpasswd",
    SCRIPT + "..%2F..%2F..%2F..%2Fetc%2Fpasswd",
    SCRIPT + "../../../../etc/passwd",
    "/.well-known/acme-challenge/../../../../etc/passwd",
    SCRIPT + "%2e%2e/%2e%2e/etc/passwd",
    SCRIPT + "%2e%2e",
    SCRIPT + "..%5c..%5cetc%5cpasswd",
])
def test_apache_traversal_never_leaves_the_store(web: Apache, target: str) -> None:
    r = http_get(web.port, target)
    assert r.status in (400, 403, 404), r
    assert b"root:" not in r.body


def test_apache_lower_case_get_is_not_get(web: Apache) -> None:
    """Methods are case-sensitive (RFC 9110 §9.1): the script answers "get" 501, never the key
    authorization (Apache passes an unknown method on to a CGI script as it came)."""
    r = http_get(web.port, SCRIPT + TOKEN, method="get")
    assert r.status == 501 and KEYAUTH.encode() not in r.body
    assert http_get(web.port, SCRIPT + TOKEN).status == 200


@pytest.mark.parametrize("token", [
    TOKEN + ".", TOKEN[:-1] + "%00", TOKEN + "%20", TOKEN + "=", "a.b", TOKEN + "%0a", "%2e%2e%2f",
    TOKEN[:10], "A" * 300,
])
def test_apache_non_base64url_or_unknown_token_is_no_such_token(web: Apache, token: str) -> None:
    r = http_get(web.port, SCRIPT + token)
    assert r.status == 404
    assert KEYAUTH.encode() not in r.body


def test_apache_oversized_requests_are_refused_and_it_keeps_serving(web: Apache) -> None:
    assert http_get(web.port, SCRIPT + "A" * 10000).status == 414  # LimitRequestLine
    assert http_get(web.port, SCRIPT + TOKEN, extra=b"X-Big: " + b"a" * 20000 + b"\r\n").status == 400
    assert http_get(web.port, SCRIPT + TOKEN).body == KEYAUTH.encode()


def test_apache_post_is_405_from_the_script(web: Apache) -> None:
    for path in (SCRIPT + TOKEN, "/.well-known/acme-challenge/" + TOKEN):
        r = http_get(web.port, path, method="POST", body=b"token=" + TOKEN.encode())
        assert r.status == 405
        assert r.headers.get("allow") == "GET, HEAD"
        assert r.body == b"Method not allowed."


def test_every_post_with_a_body_gets_its_405(web: Apache) -> None:
    """The script reads the body Apache writes to it before answering: ending first made
    Apache's write fail and close the connection with no answer, one POST in ten."""
    body = b"token=" + TOKEN.encode() * 20
    missing = 0
    for i in range(200):
        path = (SCRIPT + TOKEN, "/.well-known/acme-challenge/" + TOKEN)[i % 2]
        try:
            r = http_get(web.port, path, method="POST", body=body)
        except WebServerError:
            missing += 1
            continue
        assert r.status == 405
    assert missing == 0, f"{missing} of 200 POSTs got no answer"


def test_apache_idle_connections_do_not_block_a_validation(web: Apache) -> None:
    idle = [socket.create_connection(("127.0.0.1", web.port)) for _ in range(50)]
    try:
        for s in idle[:25]:
            s.sendall(b"GET " + SCRIPT.encode())
        r = http_get(web.port, SCRIPT + TOKEN, timeout=5)
        assert (r.status, r.body) == (200, KEYAUTH.encode())
    finally:
        for s in idle:
            s.close()


def test_apache_grants_only_the_challenge_paths(web: Apache) -> None:
    assert http_get(web.port, "/cgi-bin/wucme/admin/cert").status == 403
    assert http_get(web.port, "/etc/passwd").status == 403


# --- nginx stream routing --------------------------------------------------------------------

def hello(port: int, sni: str, alpn: list[str] | None, cafile: Path | None = None
          ) -> tuple[str | None, x509.Certificate]:
    """One TLS handshake through nginx's front port: (ALPN selected, certificate shown)."""
    ctx = ssl.create_default_context(cafile=str(cafile)) if cafile else ssl.create_default_context()
    if cafile is None:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(alpn)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=sni) as tls:
            der = tls.getpeercert(binary_form=True)
            assert der is not None
            return tls.selected_alpn_protocol(), x509.load_der_x509_certificate(der)


@pytest.fixture
def nginx_routing(nginx_on: Callable[[int, int], Nginx], store: ChallengeStore
                  ) -> Iterator[tuple[Nginx, TlsAlpnResponder]]:
    """nginx on a free port routing acme-tls/1 to wucme's responder, which knows one name."""
    store.alpn_put("www.example.org", KEYAUTH)
    with TlsAlpnResponder(store, "127.0.0.1", 0) as responder:
        yield nginx_on(free_port(), responder.port), responder


def _is_validation(cert: x509.Certificate) -> bool:
    try:
        ext = cert.extensions.get_extension_for_oid(ACME_IDENTIFIER_OID)
    except x509.ExtensionNotFound:
        return False
    assert ext.critical
    return ext.value.value == b"\x04\x20" + hashlib.sha256(KEYAUTH.encode()).digest()  # type: ignore[attr-defined]


def test_nginx_routes_only_acme_tls_1_to_the_responder(nginx_routing: tuple[Nginx, TlsAlpnResponder],
                                                       pebble_ca: TestCA) -> None:
    ng, responder = nginx_routing
    # A validation: acme-tls/1 and a pending name -> wucme's validation certificate.
    proto, cert = hello(ng.front_port, "www.example.org", ["acme-tls/1"])
    assert proto == "acme-tls/1" and _is_validation(cert)
    # Ordinary ClientHellos reach the site and its certificate verifies for localhost.
    for alpn in (None, ["http/1.1"], ["h2", "http/1.1"]):
        proto, cert = hello(ng.front_port, "localhost", alpn, cafile=pebble_ca.cert)
        assert proto in (None, "http/1.1") and not _is_validation(cert)
    # acme-tls/1 for a name with no pending authorization: routed to wucme, which refuses
    # to negotiate it and shows no validation certificate (RFC 8737 §5).
    proto, cert = hello(ng.front_port, "other.example.org", ["acme-tls/1"])
    assert proto is None and not _is_validation(cert)
    # acme-tls/1 offered beside h2 still counts as a validation attempt for nginx's map.
    proto, cert = hello(ng.front_port, "www.example.org", ["h2", "acme-tls/1"])
    assert proto == "acme-tls/1" and _is_validation(cert)
