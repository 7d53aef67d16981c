"""The pure-Python twin of native/fastcrypto.c, built on `cryptography`.

Each function gives, byte for byte, what its native counterpart gives (tests/unit/
test_native_crypto.py runs both); the native module falls back to these for every input
it does not fully understand, so this module alone decides what an unusual or malformed
certificate file means.  Error texts are short reasons; wucme.crypto adds the file name.
"""
from __future__ import annotations

import base64
import datetime as _dt
import ipaddress
import re
from dataclasses import dataclass
from typing import Union

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

PrivateKey = Union[rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey]

#: id-pe-acmeIdentifier (RFC 8737 §6.1).
ACME_IDENTIFIER_OID = x509.ObjectIdentifier("1.3.6.1.5.5.7.1.31")
_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----")
_EC_SIZES = {"secp256r1": (32, hashes.SHA256), "secp384r1": (48, hashes.SHA384)}


class NoCertificate(ValueError):
    """The data holds no PEM certificate at all."""


@dataclass(frozen=True, slots=True)
class CertInfo:
    """What the repository scan needs of a chain's leaf, read once.

    Serial and validity carry `cryptography`'s attribute names, so code that reads only
    those takes either.  `names` are crypto.cert_names(): CN values, then SAN dNSNames,
    then SAN addresses, lower-cased, first occurrence kept.  `aki` is the Authority Key
    Identifier's keyIdentifier (None when absent or empty).
    """

    der: bytes
    serial_number: int
    not_valid_before_utc: _dt.datetime
    not_valid_after_utc: _dt.datetime
    names: tuple[str, ...]
    aki: bytes | None


def b64url(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


# --- the repository scan --------------------------------------------------------------------


def dedup_lower(names: list[str]) -> tuple[str, ...]:
    """Lower-cased, each name once, in first-seen order (crypto.cert_names)."""
    return tuple(dict.fromkeys(n.lower() for n in names))


def cert_names(cert: x509.Certificate) -> tuple[str, ...]:
    """CN values, then SAN DNS and IP entries; extensions that do not parse count as none
    (`cryptography` raises TypeError for some, such as an empty TLS Feature list)."""
    names = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, ValueError, TypeError):
        return dedup_lower(names)
    names += san.get_values_for_type(x509.DNSName)
    names += [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    return dedup_lower(names)


def aki_keyid(cert: x509.Certificate) -> bytes | None:
    try:
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    except (x509.ExtensionNotFound, ValueError, TypeError):
        return None
    return aki.key_identifier or None


def info_of(cert: x509.Certificate) -> CertInfo:
    return CertInfo(cert.public_bytes(serialization.Encoding.DER), cert.serial_number,
                    cert.not_valid_before_utc, cert.not_valid_after_utc, cert_names(cert),
                    aki_keyid(cert))


def cert_info(pem: bytes) -> CertInfo:
    """The leaf of a PEM chain (crypto.cert_load()'s rules: other PEM blocks are skipped).

    Raises NoCertificate, or ValueError for a chain `cryptography` cannot read.
    """
    if not _PEM_CERT.search(pem):
        raise NoCertificate("no PEM certificate")
    return info_of(x509.load_pem_x509_certificates(pem)[0])


# --- keys and JWS -----------------------------------------------------------------------------


def key_load(pem: bytes) -> PrivateKey:
    """A PEM private key without the RSA consistency check (keys wucme generated itself).

    Raises TypeError (encrypted), ValueError or UnsupportedAlgorithm as `cryptography` does,
    and ValueError for a key that is neither RSA nor EC.
    """
    key = serialization.load_pem_private_key(pem, password=None,
                                             unsafe_skip_rsa_key_validation=True)
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        raise ValueError("only RSA and EC keys are supported")
    return key


def jws_sign(key: PrivateKey, protected: bytes, payload: bytes) -> bytes:
    """RFC 7515 §7.2.2 flattened JSON: RS256 for RSA, ES256/ES384 (raw r||s, RFC 7518 §3.4)."""
    p64, y64 = b64url(protected), b64url(payload)
    data = p64 + b"." + y64
    if isinstance(key, rsa.RSAPrivateKey):
        sig = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    elif isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name in _EC_SIZES:
        size, digest = _EC_SIZES[key.curve.name]
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(digest())))
        sig = r.to_bytes(size, "big") + s.to_bytes(size, "big")
    else:
        raise ValueError("signing needs an RSA or EC P-256/P-384 private key")
    return (b'{"protected":"' + p64 + b'","payload":"' + y64 + b'","signature":"' + b64url(sig)
            + b'"}')


# --- tls-alpn-01 ------------------------------------------------------------------------------


def alpn_cert(san: x509.GeneralName, digest: bytes, key: ec.EllipticCurvePrivateKey, serial: int,
              not_before: _dt.datetime, not_after: _dt.datetime) -> x509.Certificate:
    """The RFC 8737 §3 validation certificate: empty subject and issuer, the one SAN and
    the acmeIdentifier (a DER OCTET STRING of the digest) both critical, self-signed."""
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(x509.Name([]))
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName([san]), critical=True)
        .add_extension(x509.UnrecognizedExtension(ACME_IDENTIFIER_OID, b"\x04\x20" + digest),
                       critical=True)
        .sign(key, hashes.SHA256())
    )


# --- CSRs -------------------------------------------------------------------------------------


def csr(key: PrivateKey, cn: str | None, sans: list[x509.GeneralName], key_usage: int,
        status_req: bool) -> bytes:
    """A DER PKCS#10 request as crypto.csr_gen() builds it; key_usage 0 (none), 1
    (digitalSignature) or 2 (and keyEncipherment), critical; SHA-384 for P-384 keys."""
    digest: hashes.SHA256 | hashes.SHA384 = hashes.SHA256()
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp384r1":
        digest = hashes.SHA384()
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn else []
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attrs))
    builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    if key_usage:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=key_usage == 2,
            data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
            encipher_only=False, decipher_only=False), critical=True)
    if status_req:
        builder = builder.add_extension(x509.TLSFeature([x509.TLSFeatureType.status_request]),
                                        critical=False)
    return builder.sign(key, digest).public_bytes(serialization.Encoding.DER)


def general_name(kind: str, value: str) -> x509.GeneralName:
    """A SAN entry: kind "ip" (an address literal) or "dns" (an A-label name)."""
    if kind == "ip":
        return x509.IPAddress(ipaddress.ip_address(value))
    return x509.DNSName(value)
