"""wucme's tls-alpn-01 responder field by field: the validation certificate's every part, the
ordinary certificate given to everyone else, the cache of validation certificates, what the
responder logs, and its life — with real TLS handshakes from Python's ssl on loopback.

tests/loopback/test_challenge_tlsalpn.py probes the responder with openssl s_client across
hostile ClientHellos; these scenarios pin the certificates' content and the responder's bookkeeping.
"""
from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from OpenSSL import SSL

from harness.ports import ipv6_loopback, on_well_known_port
from wucme.challenge.store import ChallengeStore
from wucme.challenge.tlsalpn import (ACME_IDENTIFIER_OID, TlsAlpnResponder, ValidationCache, auth_digest,
                                     make_self_signed, make_validation_cert, make_validation_cert_from_digest)

KEYAUTH = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"
DIGEST = hashlib.sha256(KEYAUTH.encode()).digest()
DAY = datetime.timedelta(days=1)


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def handshake(port: int, sni: str | None, alpn: list[str] | None = None,
              version: ssl.TLSVersion | None = None) -> tuple[x509.Certificate, str | None, bytes]:
    """A TLS client: (the server's certificate, the protocol selected, what the server sent after)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(alpn)
    if version is not None:
        ctx.minimum_version = ctx.maximum_version = version
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=sni) as tls:
            der = tls.getpeercert(binary_form=True)
            assert der is not None
            chosen = tls.selected_alpn_protocol()
            try:
                after = tls.recv(100)
            except (ssl.SSLError, OSError):
                after = b""
    return x509.load_der_x509_certificate(der), chosen, after


def sans(cert: x509.Certificate) -> list[object]:
    return list(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)


# --- the certificates ----------------------------------------------------------------------------


def test_the_digest_ualpn_is_given_is_base64url_sha256_without_padding() -> None:
    assert auth_digest(KEYAUTH) == base64.urlsafe_b64encode(DIGEST).rstrip(b"=").decode()
    assert auth_digest("é") == base64.urlsafe_b64encode(hashlib.sha256("é".encode()).digest()).rstrip(b"=").decode()


@pytest.mark.parametrize("ident, san", [
    ("www.example.org", x509.DNSName("www.example.org")),
    ("www.example.org.", x509.DNSName("www.example.org")),
    ("relay.example.BOX", x509.DNSName("relay.example.BOX")),  # only the root dot is stripped
    ("192.0.2.7", x509.IPAddress(ipaddress.ip_address("192.0.2.7"))),
    ("2001:db8::1", x509.IPAddress(ipaddress.ip_address("2001:db8::1"))),
])
def test_a_validation_certificate_is_rfc_8737s_and_no_more(ident: str, san: x509.GeneralName) -> None:
    cert, key = make_validation_cert(ident, KEYAUTH)
    assert cert.subject == x509.Name([]) and cert.issuer == x509.Name([])
    exts = {e.oid: e for e in cert.extensions}
    assert set(exts) == {x509.ExtensionOID.SUBJECT_ALTERNATIVE_NAME, ACME_IDENTIFIER_OID}
    assert exts[x509.ExtensionOID.SUBJECT_ALTERNATIVE_NAME].critical  # the subject is empty
    assert sans(cert) == [san]
    acme = exts[ACME_IDENTIFIER_OID]
    assert acme.critical and acme.value.value == b"\x04\x20" + DIGEST  # type: ignore[attr-defined]
    assert isinstance(key.curve, ec.SECP256R1) and cert.public_key() == key.public_key()
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA256)
    cert.public_key().verify(cert.signature, cert.tbs_certificate_bytes,  # type: ignore[call-arg]
                             ec.ECDSA(hashes.SHA256()))  # type: ignore[arg-type]
    assert abs(cert.not_valid_before_utc - (now() - DAY)) < datetime.timedelta(minutes=1)
    assert abs(cert.not_valid_after_utc - (now() + 7 * DAY)) < datetime.timedelta(minutes=1)
    assert cert.serial_number % 2 == 1 and 0 < cert.serial_number < 2**127


@pytest.mark.parametrize("size", [31, 33, 0])
def test_a_digest_must_be_32_bytes(size: int) -> None:
    with pytest.raises(ValueError) as ei:
        make_validation_cert_from_digest("a.example", bytes(size))
    assert str(ei.value) == "the acmeIdentifier digest must be 32 bytes"
    cert, _ = make_validation_cert_from_digest("a.example", bytes(32))
    assert cert.extensions.get_extension_for_oid(ACME_IDENTIFIER_OID).value.value == b"\x04\x20" + bytes(32)  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", ["wucme", "node1.example"])
def test_the_ordinary_certificate_is_a_self_signed_server_certificate(name: str) -> None:
    cert, key = make_self_signed(name) if name != "wucme" else make_self_signed()
    cn = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    assert cert.subject == cn and cert.issuer == cn
    exts = {e.oid: e for e in cert.extensions}
    assert set(exts) == {x509.ExtensionOID.SUBJECT_ALTERNATIVE_NAME, x509.ExtensionOID.EXTENDED_KEY_USAGE}
    assert not exts[x509.ExtensionOID.SUBJECT_ALTERNATIVE_NAME].critical and sans(cert) == [x509.DNSName(name)]
    assert list(exts[x509.ExtensionOID.EXTENDED_KEY_USAGE].value) == [ExtendedKeyUsageOID.SERVER_AUTH]  # type: ignore[call-overload]
    assert not exts[x509.ExtensionOID.EXTENDED_KEY_USAGE].critical
    assert isinstance(key.curve, ec.SECP256R1) and cert.public_key() == key.public_key()
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA256)
    assert abs(cert.not_valid_before_utc - (now() - DAY)) < datetime.timedelta(minutes=1)
    assert abs(cert.not_valid_after_utc - (now() + 365 * DAY)) < datetime.timedelta(minutes=1)


def test_the_cache_signs_once_per_identifier_and_digest_and_forgets_the_least_used() -> None:
    cache = ValidationCache(size=2)
    a = cache.get("A.example", DIGEST)
    assert cache.get("a.example", DIGEST) is a  # names compare without case (RFC 4343)
    assert sans(a[0]) == [x509.DNSName("A.example")]
    other_digest = cache.get("a.example", bytes(32))
    assert other_digest is not a
    assert cache.get("a.example", DIGEST) is a  # used again: now the most recent
    cache.get("c.example", DIGEST)  # a third: the least used (other_digest) goes
    assert cache.get("a.example", DIGEST) is a
    assert cache.get("a.example", bytes(32)) is not other_digest
    big = ValidationCache()
    first, second = big.get("x0.example", DIGEST), big.get("x1.example", DIGEST)
    for i in range(2, 256):
        big.get(f"x{i}.example", DIGEST)
    assert big.get("x0.example", DIGEST) is first  # 256 are kept by default
    big.get("x256.example", DIGEST)  # the 257th: the least used, x1, goes
    assert big.get("x0.example", DIGEST) is first and big.get("x1.example", DIGEST) is not second


# --- the responder -----------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> ChallengeStore:
    s = ChallengeStore(tmp_path / "challenges")
    s.alpn_put("www.example.org", KEYAUTH)
    s.alpn_put("127.0.0.1", KEYAUTH)
    return s


@pytest.fixture
def logged() -> list[str]:
    return []


@pytest.fixture
def responder(store: ChallengeStore, logged: list[str]) -> Iterator[TlsAlpnResponder]:
    with TlsAlpnResponder(store, "127.0.0.1", 0, timeout=1.0, log=logged.append) as r:
        yield r


def wait_for(logged: list[str], count: int) -> list[str]:
    deadline = time.monotonic() + 5
    while len(logged) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    return logged


def test_a_validation_handshake_is_counted_logged_and_sent_no_data(responder: TlsAlpnResponder,
                                                                   logged: list[str]) -> None:
    cert, chosen, after = handshake(responder.port, "WWW.example.org", ["h2", "acme-tls/1"])
    assert chosen == "acme-tls/1" and sans(cert) == [x509.DNSName("www.example.org")]
    assert after == b""  # RFC 8737 §3: no application data
    cert, chosen, _ = handshake(responder.port, "1.0.0.127.in-addr.arpa", ["acme-tls/1"])
    assert chosen == "acme-tls/1" and sans(cert) == [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    assert wait_for(logged, 2) == ["127.0.0.1: acme-tls/1 handshake for www.example.org completed",
                                   "127.0.0.1: acme-tls/1 handshake for 127.0.0.1 completed"]
    assert responder.validations == 2


def test_acme_tls_1_for_an_unknown_name_gets_the_ordinary_certificate_and_a_log_line(
        responder: TlsAlpnResponder, logged: list[str]) -> None:
    cert, chosen, _ = handshake(responder.port, "other.example", ["acme-tls/1"])
    assert chosen is None and sans(cert) == [x509.DNSName("wucme")]
    cert, chosen, _ = handshake(responder.port, None, ["acme-tls/1"])
    assert chosen is None and sans(cert) == [x509.DNSName("wucme")]
    cert, chosen, _ = handshake(responder.port, "www.example.org", ["h2"])  # no acme-tls/1: not a validation
    assert chosen is None and sans(cert) == [x509.DNSName("wucme")]
    assert wait_for(logged, 2)[:2] == ["acme-tls/1 offered for unknown name 'other.example': ordinary certificate",
                                       "acme-tls/1 offered for unknown name '': ordinary certificate"]
    time.sleep(0.1)
    assert len(logged) == 2 and responder.validations == 0


def test_a_client_that_is_not_tls_is_logged_by_address(responder: TlsAlpnResponder, logged: list[str]) -> None:
    with socket.create_connection(("127.0.0.1", responder.port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        while s.recv(100):
            pass
    assert wait_for(logged, 1)[0].startswith("127.0.0.1: ")
    assert responder.validations == 0


def test_tls_below_1_2_is_refused(responder: TlsAlpnResponder) -> None:
    """RFC 8737 §4: TLS 1.2 or higher."""
    with pytest.raises((ssl.SSLError, OSError)):
        handshake(responder.port, "www.example.org", ["acme-tls/1"], version=ssl.TLSVersion.TLSv1_1)
    cert, chosen, _ = handshake(responder.port, "www.example.org", ["acme-tls/1"], version=ssl.TLSVersion.TLSv1_2)
    assert chosen == "acme-tls/1"


def test_an_ordinary_certificate_may_be_given_as_a_pair_or_a_pem_file(store: ChallengeStore, tmp_path: Path) -> None:
    cert, key = make_self_signed("site.example")
    pem = tmp_path / "site.pem"
    pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    for fallback in ((cert, key), str(pem), pem):
        with TlsAlpnResponder(store, "127.0.0.1", 0, fallback, timeout=1.0) as r:
            served, chosen, _ = handshake(r.port, "site.example", ["http/1.1"])
            assert served == cert and chosen is None
            validation, chosen, _ = handshake(r.port, "www.example.org", ["acme-tls/1"])
            assert chosen == "acme-tls/1" and validation != cert


def test_serve_forever_until_stopped_from_another_thread(store: ChallengeStore) -> None:
    r = TlsAlpnResponder(store, "127.0.0.1", 0, timeout=1.0)
    assert r.address == ("127.0.0.1", r.port) and r.port > 0
    t = threading.Thread(target=r.serve_forever)
    t.start()
    try:
        _, chosen, _ = handshake(r.port, "www.example.org", ["acme-tls/1"])
        assert chosen == "acme-tls/1"
    finally:
        r.stop()
        t.join(5)
    assert not t.is_alive()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", r.port), timeout=2).close()


def test_certificate_validity_is_reckoned_in_utc_on_a_host_whose_clock_is_not(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A local, naive time would shift both certificates' windows by the host's UTC offset."""
    monkeypatch.setenv("TZ", "WUC-14")  # POSIX: local time 14 hours ahead of UTC
    time.tzset()
    try:
        validation, _ = make_validation_cert("www.example.org", KEYAUTH)
        ordinary, _ = make_self_signed()
    finally:
        monkeypatch.undo()
        time.tzset()
    for cert in (validation, ordinary):
        assert abs(cert.not_valid_before_utc - (now() - DAY)) < datetime.timedelta(minutes=5)


def test_the_responder_listens_on_port_443_unless_told_otherwise(store: ChallengeStore) -> None:
    """RFC 8737 §3: the CA connects to port 443 of the identifier."""
    r = on_well_known_port(lambda: TlsAlpnResponder(store, "127.0.0.44", timeout=1.0), 443)
    with r:
        assert r.address == ("127.0.0.44", 443)
        with socket.create_connection(("127.0.0.44", 443), timeout=5) as raw:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
            ctx.set_alpn_protocols(["acme-tls/1"])
            with ctx.wrap_socket(raw, server_hostname="www.example.org") as tls:
                assert tls.selected_alpn_protocol() == "acme-tls/1"


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback (::1) in this system")
def test_the_responder_serves_an_ipv6_listener(store: ChallengeStore) -> None:
    with TlsAlpnResponder(store, "::1", 0, timeout=1.0) as r:
        assert r.address == ("::1", r.port)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        ctx.set_alpn_protocols(["acme-tls/1"])
        with socket.create_connection(("::1", r.port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="www.example.org") as tls:
                assert tls.selected_alpn_protocol() == "acme-tls/1"


def test_the_responders_threads_are_named_for_it(responder: TlsAlpnResponder) -> None:
    assert "wucme-tlsalpn" in [t.name for t in threading.enumerate()]


def test_an_sni_that_is_not_ascii_gets_the_ordinary_certificate(responder: TlsAlpnResponder,
                                                                logged: list[str]) -> None:
    """A ClientHello may carry any bytes as its host name; they must not break the handshake."""
    ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
    with socket.create_connection(("127.0.0.1", responder.port), timeout=5) as raw:
        raw.settimeout(None)  # pyOpenSSL blocks; the responder's 1 s handshake limit bounds the wait
        conn = SSL.Connection(ctx, raw)
        conn.set_tlsext_host_name("café.example".encode())
        conn.set_alpn_protos([b"acme-tls/1"])
        conn.set_connect_state()
        conn.do_handshake()
        cert = conn.get_peer_certificate()
        assert cert is not None and conn.get_alpn_proto_negotiated() == b""
        assert sans(cert.to_cryptography()) == [x509.DNSName("wucme")]
    assert wait_for(logged, 1)[0] == ("acme-tls/1 offered for unknown name 'caf\ufffd\ufffd.example': "
                                      "ordinary certificate")


@pytest.mark.parametrize("limit", [{"max_clients": 1}, {"per_source": 1}])
def test_a_newcomer_beyond_the_limits_given_drops_the_idle_connection_and_it_is_logged(
        store: ChallengeStore, limit: dict[str, int]) -> None:
    logged: list[str] = []
    with TlsAlpnResponder(store, "127.0.0.1", 0, timeout=5.0, log=logged.append,
                          max_clients=limit.get("max_clients"), per_source=limit.get("per_source")) as r:
        with socket.create_connection(("127.0.0.1", r.port), timeout=5) as idle:
            time.sleep(0.2)  # admitted, and sends no ClientHello
            _, chosen, _ = handshake(r.port, "www.example.org", ["acme-tls/1"])
            assert chosen == "acme-tls/1"
            assert idle.recv(100) == b""  # its seat went to the newcomer
        assert any(line.startswith("too many connections: dropping the oldest unfinished one")
                   for line in wait_for(logged, 2))


def test_a_bad_limit_in_a_logical_name_is_logged_and_the_default_used(
        store: ChallengeStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WUCME_CLIENT_LIMIT", "many")
    logged: list[str] = []
    r = TlsAlpnResponder(store, "127.0.0.1", 0, log=logged.append)
    try:
        assert r.limits.max_clients == 256
        assert logged == ["logical name WUCME_CLIENT_LIMIT = 'many' is not a positive count: using 256"]
    finally:
        r.stop()
