"""A throwaway certificate hierarchy for the in-memory CA, made with `cryptography`.

One root signs the intermediate that issues every leaf (the default chain).  Each
alternate root cross-signs the same intermediate (same subject, same key), so an
alternate chain (RFC 8555 §7.4.2) is the same leaf with a different intermediate
certificate: another SHA-256 fingerprint and another Authority Key Identifier, which
is what uacme's `-l` selects by.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

Key = ec.EllipticCurvePrivateKey


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _ski(key: Any) -> x509.SubjectKeyIdentifier:
    return x509.SubjectKeyIdentifier.from_public_key(key)


def _ca_cert(subject: str, key: Key, issuer: str, issuer_key: Key) -> x509.Certificate:
    now = dt.datetime.now(dt.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_ski(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                       critical=False)
        .sign(issuer_key, hashes.SHA256())
    )


def pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


class Pki:
    """Root, intermediate and `alternates` cross-signing roots; issues leaves."""

    def __init__(self, alternates: int = 2) -> None:
        self.root_key = ec.generate_private_key(ec.SECP256R1())
        self.root = _ca_cert("wucme test root", self.root_key, "wucme test root", self.root_key)
        self.intermediate_key = ec.generate_private_key(ec.SECP256R1())
        self.intermediate = _ca_cert("wucme test intermediate", self.intermediate_key,
                                     "wucme test root", self.root_key)
        self.alt_root_keys = [ec.generate_private_key(ec.SECP256R1()) for _ in range(alternates)]
        #: cross[i]: the intermediate as alternate root i+1 signs it.
        self.cross = [
            _ca_cert("wucme test intermediate", self.intermediate_key, f"wucme alt root {i + 1}", k)
            for i, k in enumerate(self.alt_root_keys)
        ]

    def issue(self, public_key: Any, names: list[str], serial: int | None = None,
              days: float = 90, not_before: dt.datetime | None = None) -> x509.Certificate:
        """A leaf for `names` (SAN; CN the first DNS name), issued by the intermediate."""
        start = not_before or dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)
        subject = [x509.NameAttribute(NameOID.COMMON_NAME, n) for n in names[:1]
                   if isinstance(general_name(n), x509.DNSName)]
        return (
            x509.CertificateBuilder()
            .subject_name(x509.Name(subject))
            .issuer_name(self.intermediate.subject)
            .public_key(public_key)
            .serial_number(serial or x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + dt.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([general_name(n) for n in names]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                self.intermediate_key.public_key()), critical=False)
            .sign(self.intermediate_key, hashes.SHA256())
        )

    def chain(self, leaf: x509.Certificate, alternate: int = 0) -> bytes:
        """The PEM chain: leaf + intermediate (0), or + the intermediate cross-signed by
        alternate root `alternate` (1-based)."""
        middle = self.intermediate if alternate == 0 else self.cross[alternate - 1]
        return pem(leaf, middle)

    def alt_root_key_id(self, alternate: int) -> bytes:
        """The keyIdentifier an alternate chain's intermediate carries as its AKI."""
        return _ski(self.alt_root_keys[alternate - 1].public_key()).digest
