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
        _check_chain(version_66(), ["www.example.org"], b"")
