"""Issue 12 item 3: with no address given, every wucme listener answers over IPv4 and IPv6.

Plain clients (urllib, openssl s_client) connect over 127.0.0.1 and ::1 to the http-01
listener and the tls-alpn-01 responder bound with the default address; an explicit address
binds that family only.  Validation by Pebble over ::1 is in tests/pebble/test_ipv6.py.
"""
from __future__ import annotations

import socket
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509

from harness.ports import ipv6_loopback
from wucme.challenge.alpn import _front_listeners, parse_options
from wucme.challenge.http01 import Http01Listener
from wucme.challenge.store import ChallengeStore
from wucme.challenge.tlsalpn import TlsAlpnResponder

from .test_challenge_support import s_client
from .test_challenge_tlsalpn import assert_validation_cert

KEYAUTH = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"
TOKEN = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"
LOOPBACKS = ("127.0.0.1", "::1")


pytestmark = pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback (::1) in this system")


def url(host: str, port: int, path: str) -> str:
    return f"http://[{host}]:{port}{path}" if ":" in host else f"http://{host}:{port}{path}"


def test_http01_listener_answers_both_families_by_default(tmp_path: Path) -> None:
    store = ChallengeStore(tmp_path / "challenges")
    store.put(TOKEN, KEYAUTH, "www.example.org", "http-01")
    with Http01Listener(store, port=0, timeout=2.0) as listener:
        for host in LOOPBACKS:
            with urllib.request.urlopen(url(host, listener.port, f"/.well-known/acme-challenge/{TOKEN}"),
                                        timeout=5) as r:
                assert r.read().decode() == KEYAUTH, host


def test_http01_listener_on_an_explicit_address_binds_that_family_only(tmp_path: Path) -> None:
    store = ChallengeStore(tmp_path / "challenges")
    with Http01Listener(store, "127.0.0.1", 0, timeout=2.0) as listener:
        with pytest.raises(OSError):
            socket.create_connection(("::1", listener.port), timeout=2).close()
    with Http01Listener(store, "::1", 0, timeout=2.0) as listener:
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", listener.port), timeout=2).close()


def test_tls_alpn_responder_answers_both_families_by_default(tmp_path: Path) -> None:
    store = ChallengeStore(tmp_path / "challenges")
    store.alpn_put("www.example.org", KEYAUTH)
    with TlsAlpnResponder(store, port=0, timeout=2.0) as responder:
        for host in LOOPBACKS:
            out, cert = s_client(responder.port, ["-servername", "www.example.org", "-alpn", "acme-tls/1"],
                                 host=host)
            assert "ALPN protocol: acme-tls/1" in out, host
            assert cert is not None
            assert_validation_cert(cert, x509.DNSName("www.example.org"), KEYAUTH)
        assert responder.validations == 2


def test_wucme_alpn_binds_both_families_by_default() -> None:
    """ualpn's default: the wildcard of each family on port 443, on sockets of their own."""
    for host in ("0.0.0.0", "::"):
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            try:
                if ":" in host:
                    probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind((host, 443))
            except PermissionError:
                pytest.skip("binding port 443 needs root")
            except OSError:
                pytest.skip("port 443 is in use on this machine")
    listeners = _front_listeners(parse_options(["-c", "127.0.0.1@8443"]), lambda level, text: None)
    try:
        assert sorted((s.family, s.getsockname()[1]) for s in listeners) == \
            [(socket.AF_INET, 443), (socket.AF_INET6, 443)]
    finally:
        for s in listeners:
            s.close()
