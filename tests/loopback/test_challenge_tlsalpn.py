"""tls-alpn-01 (RFC 8737, RFC 8738): the validation certificate and wucme's own responder,
probed with the real `openssl s_client` across the ClientHellos a hostile client may send."""

from __future__ import annotations

import hashlib
import ipaddress
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509

from wucme.challenge.clienthello import NEED_MORE, NOT_TLS, ClientHello, parse_client_hello
from wucme.challenge.store import ChallengeStore
from wucme.challenge.tlsalpn import ACME_IDENTIFIER_OID, TlsAlpnResponder, auth_digest, make_validation_cert

from .test_challenge_support import s_client

KEYAUTH = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"
IP_KEYAUTH = "ip-token.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"


def assert_validation_cert(cert: x509.Certificate, san: x509.GeneralName, keyauth: str) -> None:
    """RFC 8737 §3: exactly one SAN naming the identifier, critical acmeIdentifier = SHA-256(keyauth)."""
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert list(sans) == [san]
    ext = cert.extensions.get_extension_for_oid(ACME_IDENTIFIER_OID)
    assert ext.critical
    der = ext.value.value  # type: ignore[attr-defined]
    assert der[:2] == b"\x04\x20" and len(der) == 34
    assert der[2:] == hashlib.sha256(keyauth.encode()).digest()


def test_make_validation_cert_dns_and_ip() -> None:
    cert, key = make_validation_cert("www.example.org", KEYAUTH)
    assert_validation_cert(cert, x509.DNSName("www.example.org"), KEYAUTH)
    assert cert.public_key().public_numbers() == key.public_key().public_numbers()
    assert key.curve.name == "secp256r1"
    cert2, key2 = make_validation_cert("192.0.2.7", IP_KEYAUTH)
    assert_validation_cert(cert2, x509.IPAddress(ipaddress.ip_address("192.0.2.7")), IP_KEYAUTH)
    assert key2.private_numbers() != key.private_numbers()  # a fresh key every time
    assert len(auth_digest(KEYAUTH)) == 43


@pytest.fixture
def responder(tmp_path: Path) -> Iterator[TlsAlpnResponder]:
    store = ChallengeStore(tmp_path / "challenges")
    store.alpn_put("www.example.org", KEYAUTH)
    store.alpn_put("127.0.0.1", IP_KEYAUTH)
    with TlsAlpnResponder(store, "127.0.0.1", 0, timeout=2.0) as r:
        yield r


def test_correct_hello_gets_validation_cert(responder: TlsAlpnResponder) -> None:
    out, cert = s_client(responder.port, ["-servername", "www.example.org", "-alpn", "acme-tls/1"])
    assert "ALPN protocol: acme-tls/1" in out
    assert cert is not None
    assert_validation_cert(cert, x509.DNSName("www.example.org"), KEYAUTH)
    # case-insensitive SNI (RFC 4343)
    out, cert = s_client(responder.port, ["-servername", "WWW.Example.ORG", "-alpn", "acme-tls/1"])
    assert "ALPN protocol: acme-tls/1" in out
    assert responder.validations == 2


def test_ip_identifier_with_reverse_dns_sni(responder: TlsAlpnResponder) -> None:
    out, cert = s_client(responder.port, ["-servername", "1.0.0.127.in-addr.arpa", "-alpn", "acme-tls/1"])
    assert "ALPN protocol: acme-tls/1" in out
    assert cert is not None
    assert_validation_cert(cert, x509.IPAddress(ipaddress.ip_address("127.0.0.1")), IP_KEYAUTH)


@pytest.mark.parametrize(
    "args",
    [
        ["-servername", "www.example.org"],  # no ALPN
        ["-servername", "www.example.org", "-alpn", "h2"],
        ["-servername", "www.example.org", "-alpn", "h2,http/1.1"],
        ["-servername", "unknown.example.org", "-alpn", "acme-tls/1"],
        ["-noservername", "-alpn", "acme-tls/1"],
        ["-servername", "127.0.0.1", "-alpn", "acme-tls/1"],  # an IP is never sent as SNI (RFC 6066 §3)
    ],
)
def test_other_hellos_never_get_validation_cert(responder: TlsAlpnResponder, args: list[str]) -> None:
    out, cert = s_client(responder.port, args)
    assert cert is not None, out
    assert cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName) == ["wucme"]
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_oid(ACME_IDENTIFIER_OID)
    assert "ALPN protocol: acme-tls/1" not in out
    assert responder.validations == 0


def test_stalled_client_is_dropped(responder: TlsAlpnResponder) -> None:
    with socket.create_connection(("127.0.0.1", responder.port), timeout=5) as s:
        s.sendall(b"\x16\x03\x01\x02\x00\x01")  # a ClientHello that never finishes
        assert s.recv(100) == b""  # closed at the 2 s handshake deadline
    out, _ = s_client(responder.port, ["-servername", "www.example.org", "-alpn", "acme-tls/1"])
    assert "ALPN protocol: acme-tls/1" in out


def test_tls12_client(responder: TlsAlpnResponder) -> None:
    out, cert = s_client(responder.port, ["-tls1_2", "-servername", "www.example.org", "-alpn", "acme-tls/1"])
    assert "ALPN protocol: acme-tls/1" in out and "TLSv1.2" in out
    assert cert is not None


def test_client_hello_parser_on_real_hellos() -> None:
    """Capture real ClientHellos from Python's ssl and parse them as `wucme alpn` does."""
    for alpn, name in ((["acme-tls/1"], "a.example"), (["h2", "http/1.1"], "b.example"), (None, None)):
        with socket.socket() as server:
            server.bind(("127.0.0.1", 0))
            server.listen(1)
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            if alpn:
                ctx.set_alpn_protocols(alpn)
            client = socket.create_connection(server.getsockname())
            client.setblocking(False)
            tls = ctx.wrap_socket(client, server_hostname=name, do_handshake_on_connect=False)
            try:
                tls.do_handshake()
            except ssl.SSLWantReadError:
                pass
            conn, _ = server.accept()
            with conn:
                conn.settimeout(2)
                data = b""
                while True:
                    data += conn.recv(65536)
                    hello = parse_client_hello(data)
                    if hello is not NEED_MORE:
                        break
            tls.close()
            assert isinstance(hello, ClientHello)
            assert hello.server_name == name
            assert hello.alpn == tuple(p.encode() for p in alpn or [])
            for cut in (1, 2, 5, 40, len(data) - 1):
                assert parse_client_hello(data[:cut]) is NEED_MORE
    assert parse_client_hello(b"GET / HTTP/1.1\r\n") is NOT_TLS
    assert parse_client_hello(b"\x16\x03\x01\x00\x04\x02\x00\x00\x00") is NOT_TLS  # a ServerHello
