"""tls-alpn-01 (RFC 8737, RFC 8738 §6): the validation certificate and wucme's own responder.

The responder presents the validation certificate only to a ClientHello that offers
``acme-tls/1`` *and* names, by SNI, an identifier with a pending authorization: answering any
other name was the TLS-SNI-01 flaw that let one tenant validate another's (RFC 8737 §5).
Everything else gets the ordinary certificate and no ALPN selection.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from OpenSSL import SSL

from wucme.challenge._net import (Accepted, Acceptor, HandshakeFailed, Limits, bind_listener, close_tls,
                                  handshake, listen_limits)
from wucme.challenge.names import is_ip
from wucme.challenge.store import ChallengeStore
from wucme.core.b64 import b64url_encode

__all__ = [
    "ACME_TLS_1",
    "ACME_IDENTIFIER_OID",
    "auth_digest",
    "make_validation_cert",
    "make_validation_cert_from_digest",
    "make_self_signed",
    "ValidationCache",
    "TlsAlpnResponder",
]

#: The ALPN protocol name of RFC 8737 §6.2.
ACME_TLS_1 = b"acme-tls/1"
#: id-pe-acmeIdentifier (RFC 8737 §6.1); the pre-RFC draft's id-pe 30 is wrong.
ACME_IDENTIFIER_OID = x509.ObjectIdentifier("1.3.6.1.5.5.7.1.31")

CertKey = tuple[x509.Certificate, ec.EllipticCurvePrivateKey]


def auth_digest(key_authorization: str) -> str:
    """base64url SHA-256 of the key authorization: what ualpn's ``auth IDENT AUTH`` carries."""
    return b64url_encode(hashlib.sha256(key_authorization.encode("utf-8")).digest())


def make_validation_cert(ident: str, key_authorization: str) -> CertKey:
    """The RFC 8737 §3 validation certificate for *ident* and a fresh P-256 key."""
    return make_validation_cert_from_digest(
        ident, hashlib.sha256(key_authorization.encode("utf-8")).digest()
    )


def make_validation_cert_from_digest(ident: str, digest: bytes) -> CertKey:
    """The validation certificate from the 32-byte SHA-256 of the key authorization.

    Exactly one SAN: a dNSName, or for an IP identifier an iPAddress (RFC 8738 §6). The
    critical acmeIdentifier extension holds the digest as a DER OCTET STRING (RFC 8737 §3).
    The subject is empty, as ualpn's is, so the SAN is critical (RFC 5280 §4.2.1.6).
    """
    if len(digest) != 32:
        raise ValueError("the acmeIdentifier digest must be 32 bytes")
    san: x509.GeneralName
    if is_ip(ident):
        san = x509.IPAddress(ipaddress.ip_address(ident))
    else:
        san = x509.DNSName(ident.rstrip("."))
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(x509.Name([]))
        .public_key(key.public_key())
        .serial_number(secrets.randbits(127) | 1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=7))
        .add_extension(x509.SubjectAlternativeName([san]), critical=True)
        .add_extension(
            x509.UnrecognizedExtension(ACME_IDENTIFIER_OID, b"\x04\x20" + digest), critical=True
        )
        .sign(key, hashes.SHA256())
    )
    return cert, key


def make_self_signed(name: str = "wucme") -> CertKey:
    """An ordinary self-signed certificate, served when no validation is under way."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


class ValidationCache:
    """Validation certificates by (identifier, digest), so a burst of validation handshakes
    (several CA perspectives, retries) signs once rather than per handshake."""

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._items: OrderedDict[tuple[str, bytes], CertKey] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, ident: str, digest: bytes) -> CertKey:
        key = (ident.lower(), digest)
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
                return found
        made = make_validation_cert_from_digest(ident, digest)
        with self._lock:
            self._items[key] = made
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return made


#: The responder's limits unless the caller or WUCME_CLIENT_LIMIT, WUCME_ADDRESS_LIMIT and
#: WUCME_HELLO_TIMEOUT say otherwise: a validation is one short handshake.
RESPONDER_LIMITS = Limits(max_clients=256, per_source=64, head_timeout=10.0)


class TlsAlpnResponder:
    """wucme's own tls-alpn-01 responder (WUCME_ALPN during `issue`), answering from *store*.

    The ALPN select callback runs after the SNI is known: it selects ``acme-tls/1`` only when
    offered and the SNI has a pending entry, and then swaps the validation certificate and key
    onto that connection. *fallback_cert* is a (certificate, key) pair or a PEM file with chain
    and key; without one a self-signed certificate is made.  *timeout* bounds a whole
    handshake; *max_clients* and *per_source* bound the connections held (wucme.challenge._net).
    """

    def __init__(
        self,
        store: ChallengeStore,
        host: str = "0.0.0.0",
        port: int = 443,
        fallback_cert: CertKey | tuple[object, object] | str | os.PathLike[str] | None = None,
        *,
        timeout: float | None = None,
        max_clients: int | None = None,
        per_source: int | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.store = store
        self.log = log or (lambda message: None)
        self.limits = listen_limits(max_clients, per_source, timeout, RESPONDER_LIMITS, self.log)
        self.timeout = self.limits.head_timeout
        self.cache = ValidationCache()
        self.validations = 0
        self._stopped = threading.Event()
        self._ctx = self._context(fallback_cert)
        self._listener = bind_listener(host, port)
        self.host, self.port = self._listener.getsockname()[:2]
        self._acceptor = Acceptor(
            [self._listener], self._serve, limits=self.limits, name="wucme-tlsalpn", log=self.log
        )

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    def _context(self, fallback: object) -> SSL.Context:
        ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
        ctx.set_min_proto_version(SSL.TLS1_2_VERSION)  # RFC 8737 §4: TLS 1.2 or higher
        if fallback is None:
            cert, key = make_self_signed()
            ctx.use_certificate(cert)
            ctx.use_privatekey(key)
        elif isinstance(fallback, (str, os.PathLike)):
            ctx.use_certificate_chain_file(os.fspath(fallback))
            ctx.use_privatekey_file(os.fspath(fallback))
        else:
            cert, key = fallback  # type: ignore[misc]
            ctx.use_certificate(cert)
            ctx.use_privatekey(key)
        ctx.set_alpn_select_callback(self._select_alpn)
        return ctx

    def _select_alpn(self, conn: SSL.Connection, offered: list[bytes]) -> Any:
        """RFC 8737 §3: negotiate acme-tls/1 only for a known SNI, then present its certificate."""
        if ACME_TLS_1 not in offered:
            return SSL.NO_OVERLAPPING_PROTOCOLS
        raw = conn.get_servername()
        sni = raw.decode("ascii", "replace") if raw else ""
        entry = self.store.alpn_lookup(sni, sni=True) if sni else None
        if entry is None:
            self.log(f"acme-tls/1 offered for unknown name {sni!r}: ordinary certificate")
            return SSL.NO_OVERLAPPING_PROTOCOLS
        ident = entry.ident  # the SAN names the identifier itself, even for an .arpa SNI
        digest = hashlib.sha256(entry.key_authorization.encode("utf-8")).digest()
        cert, key = self.cache.get(ident, digest)
        conn.use_certificate(cert)
        conn.use_privatekey(key)
        conn.set_app_data(ident)
        return ACME_TLS_1

    def _serve(self, client: Accepted) -> None:
        sock, addr = client.sock, client.addr
        conn = SSL.Connection(self._ctx, None)
        conn.set_accept_state()
        deadline = client.since + self.timeout  # the whole handshake, however it trickles
        try:
            handshake(conn, sock, b"", deadline)
        except HandshakeFailed as exc:
            if not client.dropped:
                self.log(f"{addr[0]}: {exc}")
            return
        if conn.get_alpn_proto_negotiated() == ACME_TLS_1:
            self.validations += 1
            self.log(f"{addr[0]}: acme-tls/1 handshake for {conn.get_app_data()} completed")
        # RFC 8737 §3: no application data on an acme-tls/1 connection; an ordinary client
        # gets nothing from this responder either, which exists only for validations.
        close_tls(conn, sock, deadline)

    def start(self) -> TlsAlpnResponder:
        self._acceptor.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self._acceptor.stop()

    def serve_forever(self) -> None:
        """Serve in the foreground until `stop` is called from another thread or a signal."""
        self.start()
        try:
            self._stopped.wait()
        finally:
            self.stop()

    def __enter__(self) -> TlsAlpnResponder:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
