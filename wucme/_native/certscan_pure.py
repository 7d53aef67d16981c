"""The pure-Python twin of native/certscan.c, built on `cryptography`.

It gives, for every chain, what the native scanner gives (tests/unit/test_native_crypto.py
runs both), and the native scanner hands it every chain it does not fully understand, so
this module alone decides what an unusual or malformed certificate file means.  Error
texts are short reasons; wucme.crypto.cert_info() adds the file name.
"""
from __future__ import annotations

import datetime as _dt
import os
import re
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    # Imported where a file is read: a scan the index answers for reads none, and `wucme
    # issue` with the native modules none at all.
    from cryptography import x509

_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----")


class NoCertificate(ValueError):
    """The data holds no PEM certificate at all."""


class CertInfo(NamedTuple):
    """What the repository scan needs of a chain's leaf, read once.

    Serial and validity carry `cryptography`'s attribute names, so code that reads only
    those takes either.  `names` are crypto.cert_names(): CN values, then SAN dNSNames,
    then SAN addresses, lower-cased, first occurrence kept.  `aki` is the Authority Key
    Identifier's keyIdentifier (None when absent or empty); `der` the leaf itself.  A
    tuple: the scan makes thousands.
    """

    der: bytes
    serial_number: int
    not_valid_before_utc: _dt.datetime
    not_valid_after_utc: _dt.datetime
    names: tuple[str, ...]
    aki: bytes | None


def dedup_lower(names: list[str]) -> tuple[str, ...]:
    """Lower-cased, each name once, in first-seen order (crypto.cert_names)."""
    if len(names) == 1:
        return (names[0].lower(),)
    return tuple(dict.fromkeys([n.lower() for n in names]))


def cert_names(cert: x509.Certificate) -> tuple[str, ...]:
    """CN values, then SAN DNS and IP entries; extensions that do not parse count as none
    (`cryptography` raises TypeError for some, such as an empty TLS Feature list)."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    try:
        subject = cert.subject
    except TypeError as e:  # a CN of type BIT STRING, say: ValueError, as cert_info() documents
        raise ValueError(f"the certificate's subject does not parse: {e}") from None
    names = [str(a.value) for a in subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, x509.DuplicateExtension, x509.UnsupportedGeneralNameType, ValueError, TypeError):
        return dedup_lower(names)
    names += san.get_values_for_type(x509.DNSName)
    names += [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    return dedup_lower(names)


def aki_keyid(cert: x509.Certificate) -> bytes | None:
    from cryptography import x509

    try:
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    except (x509.ExtensionNotFound, x509.DuplicateExtension, x509.UnsupportedGeneralNameType, ValueError, TypeError):
        return None
    return aki.key_identifier or None


def cert_info(pem: bytes) -> CertInfo:
    """The leaf of a PEM chain, by crypto.cert_load()'s rules (other PEM blocks skipped,
    every certificate read).  Raises NoCertificate, or ValueError for a chain
    `cryptography` cannot read (a subject that does not parse included)."""
    if not _PEM_CERT.search(pem):
        raise NoCertificate("no PEM certificate")
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        leaf = x509.load_pem_x509_certificates(pem)[0]
    except x509.InvalidVersion as e:  # not a ValueError in `cryptography`: made one, as documented
        raise ValueError(str(e)) from None
    return CertInfo(leaf.public_bytes(serialization.Encoding.DER), leaf.serial_number,
                    leaf.not_valid_before_utc, leaf.not_valid_after_utc, cert_names(leaf),
                    aki_keyid(leaf))


def cert_file(path: str) -> CertInfo | None:
    """cert_info() of a file; None when it does not exist, OSError when it cannot be read."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None
    return cert_info(data)


def file_key(st: os.stat_result) -> bytes:
    """A file's key as the scan index holds it (wucme.scanindex): size, mtime_ns, ctime_ns,
    inode."""
    return b"%d,%d,%d,%d" % (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def same_keys(dfd: int, part: bytes, ckey: bytes, skey: bytes) -> bool:
    """Do WUCME_C_<part>.PEM and WUCME_S_<part>.JSON of the directory open as *dfd* still
    have the keys *ckey* and *skey*?  False when either differs, is missing or cannot be
    stat'ed (native/certscan.c: cs_same_keys)."""
    p = os.fsdecode(part)
    if not p or "/" in p or "\0" in p or len(part) > 128:
        return False
    try:
        return (file_key(os.stat(f"WUCME_C_{p}.PEM", dir_fd=dfd)) == ckey
                and file_key(os.stat(f"WUCME_S_{p}.JSON", dir_fd=dfd)) == skey)
    except (OSError, ValueError):
        return False
