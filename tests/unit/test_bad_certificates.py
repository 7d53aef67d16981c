"""A certificate whose version field is not v1-v3 (a hostile CA's answer, a damaged repository
file).  Found by atheris (tests/fuzz, certificate_scan): `cryptography` raises InvalidVersion,
which is not a ValueError, so every `except ValueError` around a certificate load let it out
as a traceback."""
from __future__ import annotations

import base64
from pathlib import Path

import pytest

from tests.fuzz.targets import CERTIFICATE
from wucme import crypto
from wucme._native import certscan, certscan_pure
from wucme.uacme.cert import _check_chain
from wucme.errors import ProtocolViolation


def csr() -> bytes:
    """A CSR for the seed certificate's key (P-256, scalar 42) and name."""
    from cryptography import x509 as cx
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.derive_private_key(42, ec.SECP256R1())
    req = (cx.CertificateSigningRequestBuilder().subject_name(cx.Name([]))
           .add_extension(cx.SubjectAlternativeName([cx.DNSName("www.example.org")]), False)
           .sign(key, hashes.SHA256()))
    return req.public_bytes(serialization.Encoding.DER)


def version_66() -> bytes:
    """The fuzz seed certificate with its version INTEGER 2 (v3) changed to 0x42."""
    der = base64.b64decode("".join(CERTIFICATE.splitlines()[1:-1]))
    at = der.index(bytes.fromhex("a003020102"))
    der = der[:at] + bytes.fromhex("a003020142") + der[at + 5:]
    return b"-----BEGIN CERTIFICATE-----\n" + base64.encodebytes(der) + b"-----END CERTIFICATE-----\n"


def test_cert_load_is_a_crypto_error() -> None:
    with pytest.raises(crypto.CryptoError, match="malformed certificate"):
        crypto.cert_load(version_66())
    assert crypto.cert_match(version_66(), b"\x01") is False


def test_both_scanners_say_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        certscan_pure.cert_info(version_66())
    if certscan.NATIVE is not None:
        with pytest.raises(ValueError):
            certscan.NATIVE.cert_info(version_66())
        f = tmp_path / "WUCME_C_X.PEM"
        f.write_bytes(version_66())
        with pytest.raises(ValueError):
            certscan.NATIVE.cert_file(str(f))


def test_a_ca_sending_it_is_a_protocol_violation() -> None:
    with pytest.raises(ProtocolViolation, match="does not parse"):
        _check_chain(version_66(), ["www.example.org"], csr())


def bit_string_subject() -> bytes:
    """The seed certificate with its subject's CN turned into an attribute of type BIT STRING
    (what atheris made of it by shuffling four bytes)."""
    der = base64.b64decode("".join(CERTIFICATE.splitlines()[1:-1]))
    der = der.replace(bytes.fromhex("06035504030c0f"), bytes.fromhex("06030c0455030f"))
    return b"-----BEGIN CERTIFICATE-----\n" + base64.encodebytes(der) + b"-----END CERTIFICATE-----\n"


def test_a_subject_that_does_not_parse_is_a_clean_error() -> None:
    """Found by atheris: cryptography's TypeError from the subject (a BIT STRING attribute that
    is not x500UniqueIdentifier) escaped the scan and crypto.cert_names()."""
    with pytest.raises(ValueError, match="subject does not parse"):
        certscan_pure.cert_info(bit_string_subject())
    if certscan.NATIVE is not None:
        with pytest.raises(ValueError):
            certscan.NATIVE.cert_info(bit_string_subject())
    leaf = crypto.cert_load(bit_string_subject())[0]
    with pytest.raises(crypto.CryptoError, match="subject does not parse"):
        crypto.cert_names(leaf)
    with pytest.raises(crypto.CryptoError, match="subject does not parse"):  # from a CA
        _check_chain(bit_string_subject(), ["www.example.org"], csr())


def test_the_seed_itself_passes_the_chain_check() -> None:
    _check_chain(CERTIFICATE.encode(), ["www.example.org"], csr())


def duplicate_extension() -> bytes:
    """The seed certificate with its SAN's OID changed to the AKI's: two AKI extensions."""
    der = base64.b64decode("".join(CERTIFICATE.splitlines()[1:-1]))
    der = der.replace(bytes.fromhex("0603551d11"), bytes.fromhex("0603551d23"))
    return b"-----BEGIN CERTIFICATE-----\n" + base64.encodebytes(der) + b"-----END CERTIFICATE-----\n"


def test_a_duplicate_extension_counts_as_no_extensions() -> None:
    """Found by atheris: cryptography's DuplicateExtension (no ValueError) escaped the scan and
    crypto.cert_names(); RFC 5280 §4.2 forbids it, and extensions that do not parse count as
    none: the names are the CN's, the same from both scanners."""
    info = certscan_pure.cert_info(duplicate_extension())
    assert info.names == ("www.example.org",) and info.aki is None
    if certscan.NATIVE is not None:
        assert certscan.NATIVE.cert_info(duplicate_extension()) == info
    leaf = crypto.cert_load(duplicate_extension())[0]
    assert crypto.cert_names(leaf) == ["www.example.org"]


def x400_address() -> bytes:
    """The seed certificate with its SAN's first dNSName tagged as an x400Address ([3])."""
    der = base64.b64decode("".join(CERTIFICATE.splitlines()[1:-1]))
    der = der.replace(bytes.fromhex("820f") + b"www.example.org", bytes.fromhex("a30f") + b"www.example.org", 1)
    return b"-----BEGIN CERTIFICATE-----\n" + base64.encodebytes(der) + b"-----END CERTIFICATE-----\n"


def test_an_unsupported_general_name_counts_as_no_extensions() -> None:
    """Found by atheris: cryptography's UnsupportedGeneralNameType (x400Address, no ValueError)
    escaped the scan and crypto.cert_names(); now as any extension that does not parse."""
    info = certscan_pure.cert_info(x400_address())
    assert info.names == ("www.example.org",) and info.aki is None
    if certscan.NATIVE is not None:
        assert certscan.NATIVE.cert_info(x400_address()) == info
    assert crypto.cert_names(crypto.cert_load(x400_address())[0]) == ["www.example.org"]
