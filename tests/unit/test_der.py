"""The DER reader (wucme.core.der) on malformed input: DerError, never another exception."""
from __future__ import annotations

import pytest

from wucme.core import der


def _ec_key_naming_curve(oid: bytes) -> bytes:
    """A SEC1 ECPrivateKey whose [0] parameters carry the OID content *oid*."""
    params = bytes([der.OID, len(oid)]) + oid
    body = (bytes([der.INTEGER, 1, 1, der.OCTET_STRING, 32]) + b"\x01" * 32
            + bytes([der.CONTEXT_0, len(params)]) + params)
    return bytes([der.SEQUENCE, len(body)]) + body


def test_a_good_curve_oid_is_read() -> None:
    assert der.ec_private(_ec_key_naming_curve(bytes.fromhex("2a8648ce3d030107"))).curve == "secp256r1"


@pytest.mark.parametrize("oid", [b"\x80", bytes.fromhex("2a8648ce3d0381"), b"\x2a" + b"\xff" * 21 + b"\x01"],
                         ids=["only-a-continuation", "last-arc-unfinished", "arc-of-22-bytes"])
def test_a_malformed_oid_is_a_der_error(oid: bytes) -> None:
    """Found by the fuzzer (tests/fuzz): an OID ending inside an arc was an IndexError (or a
    wrong arc), and an arc of thousands of bytes an int too big to print (ValueError)."""
    with pytest.raises(der.DerError):
        der.ec_private(_ec_key_naming_curve(oid))
    with pytest.raises(der.DerError):
        der.oid_text(oid)
