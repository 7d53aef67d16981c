"""Unit tests of wucme.core.b64 and wucme.core.jws: signatures are checked with `cryptography`."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from wucme.core import jws
from wucme.core.b64 import b64url_decode, b64url_encode, is_b64url

URL = "https://ca.example/acme/new-order"
KID = "https://ca.example/acme/acct/1"

# RFC 7638 §3.1: the example RSA key and its thumbprint.
RFC7638_N = (
    "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMs"
    "tn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5"
    "hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
)
RFC7638_THUMBPRINT = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


@pytest.fixture(scope="module")
def keys() -> dict[str, jws.PrivateKey]:
    return {
        "RS256": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ES256": ec.generate_private_key(ec.SECP256R1()),
        "ES384": ec.generate_private_key(ec.SECP384R1()),
    }


def _verify(token: bytes, key: jws.PrivateKey) -> tuple[dict[str, Any], bytes]:
    """Verify a flattened JWS with the public key; return (protected header, payload bytes)."""
    obj = json.loads(token)
    assert set(obj) == {"protected", "payload", "signature"}
    data = f"{obj['protected']}.{obj['payload']}".encode()
    sig = b64url_decode(obj["signature"])
    protected = json.loads(b64url_decode(obj["protected"]))
    pub = key.public_key()
    if isinstance(pub, rsa.RSAPublicKey):
        assert protected["alg"] == "RS256"
        pub.verify(sig, data, padding.PKCS1v15(), hashes.SHA256())
    else:
        assert isinstance(pub, ec.EllipticCurvePublicKey)
        size = {"secp256r1": 32, "secp384r1": 48}[pub.curve.name]
        assert len(sig) == 2 * size
        r, s = int.from_bytes(sig[:size], "big"), int.from_bytes(sig[size:], "big")
        digest = hashes.SHA256() if size == 32 else hashes.SHA384()
        pub.verify(encode_dss_signature(r, s), data, ec.ECDSA(digest))
    return protected, b64url_decode(obj["payload"])


# --- base64url ---


@pytest.mark.parametrize("data", [b"", b"\x00", b"\xff\xfe", b"abc", bytes(range(256))])
def test_b64url_roundtrip(data: bytes) -> None:
    text = b64url_encode(data)
    assert "=" not in text and "+" not in text and "/" not in text
    assert is_b64url(text)
    assert b64url_decode(text) == data
    assert text == base64.urlsafe_b64encode(data).decode().rstrip("=")


@pytest.mark.parametrize("bad", ["a", "ab=", "ab+c", "ab/c", "ab c", "abcde", "AB\n", "YR", "é"])
def test_b64url_decode_strict(bad: str) -> None:
    assert not is_b64url(bad)
    with pytest.raises(ValueError):
        b64url_decode(bad)


# --- JWK and thumbprint ---


def test_thumbprint_rfc7638_example() -> None:
    n = int.from_bytes(b64url_decode(RFC7638_N), "big")
    pub = rsa.RSAPublicNumbers(65537, n).public_key()
    assert jws.jws_jwk(pub) == ({"kty": "RSA", "n": RFC7638_N, "e": "AQAB"}, "RS256")
    assert jws.jws_thumbprint(pub) == RFC7638_THUMBPRINT


def test_thumbprint_ec_canonical(keys: dict[str, jws.PrivateKey]) -> None:
    key = keys["ES256"]
    jwk, alg = jws.jws_jwk(key)
    assert alg == "ES256" and jwk["crv"] == "P-256"
    canonical = '{"crv":"P-256","kty":"EC","x":"%s","y":"%s"}' % (jwk["x"], jwk["y"])
    expect = (
        base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).decode().rstrip("=")
    )
    assert jws.jws_thumbprint(key) == expect
    assert jws.jws_thumbprint(key) == jws.jws_thumbprint(key.public_key())


def test_jwk_rsa_strips_leading_zeros(keys: dict[str, jws.PrivateKey]) -> None:
    jwk, _ = jws.jws_jwk(keys["RS256"])
    n = b64url_decode(jwk["n"])
    assert len(n) == 256 and n[0] != 0
    assert b64url_decode(jwk["e"]) == b"\x01\x00\x01"


def test_jwk_ec_pads_coordinates() -> None:
    # Find a P-256 key whose x has a leading zero byte (1 in 256): it must still be 32 bytes.
    for _ in range(5000):
        key = ec.generate_private_key(ec.SECP256R1())
        if key.public_key().public_numbers().x < 1 << 248:
            break
    else:  # pragma: no cover - probability about 3e-9
        pytest.fail("no short coordinate found")
    jwk, _ = jws.jws_jwk(key)
    x = b64url_decode(jwk["x"])
    assert len(x) == 32 and x[0] == 0 and len(b64url_decode(jwk["y"])) == 32
    assert int.from_bytes(x, "big") == key.public_key().public_numbers().x


def test_jwk_p384(keys: dict[str, jws.PrivateKey]) -> None:
    jwk, alg = jws.jws_jwk(keys["ES384"])
    assert alg == "ES384" and jwk["crv"] == "P-384"
    assert len(b64url_decode(jwk["x"])) == 48 and len(b64url_decode(jwk["y"])) == 48
    assert jws.key_type(keys["ES384"]) == "EC" and jws.key_type(keys["RS256"]) == "RSA"


@pytest.mark.parametrize(
    "make",
    [lambda: ed25519.Ed25519PrivateKey.generate(), lambda: ec.generate_private_key(ec.SECP521R1())],
)
def test_unsupported_keys(make: Any) -> None:
    key = make()
    with pytest.raises(ValueError):
        jws.jws_jwk(key)
    with pytest.raises(ValueError):
        jws.key_type(key)


# --- protected headers and signing ---


@pytest.mark.parametrize("alg", ["RS256", "ES256", "ES384"])
def test_jws_kid_signs_and_verifies(keys: dict[str, jws.PrivateKey], alg: str) -> None:
    key = keys[alg]
    protected = jws.jws_protected_kid("nonce-1", URL, KID, key)
    token = jws.jws_encode(protected, {"identifiers": [{"type": "dns", "value": "a.example"}]}, key)
    header, payload = _verify(token, key)
    assert header == {"alg": alg, "nonce": "nonce-1", "url": URL, "kid": KID}
    assert "jwk" not in header
    assert json.loads(payload) == {"identifiers": [{"type": "dns", "value": "a.example"}]}
    assert b" " not in payload  # compact serialization


@pytest.mark.parametrize("alg", ["RS256", "ES256", "ES384"])
def test_jws_jwk_header(keys: dict[str, jws.PrivateKey], alg: str) -> None:
    key = keys[alg]
    protected = jws.jws_protected_jwk("n2", URL, key)
    header, _ = _verify(jws.jws_encode(protected, {"termsOfServiceAgreed": True}, key), key)
    assert "kid" not in header
    assert header["jwk"] == jws.jws_jwk(key)[0] and header["alg"] == alg and header["nonce"] == "n2"


def test_p384_signature_is_96_bytes(keys: dict[str, jws.PrivateKey]) -> None:
    key = keys["ES384"]
    obj = json.loads(jws.jws_encode(jws.jws_protected_kid("n", URL, KID, key), {}, key))
    assert len(b64url_decode(obj["signature"])) == 96
    assert json.loads(b64url_decode(obj["protected"]))["alg"] == "ES384"


def test_keychange_inner_header_has_no_nonce(keys: dict[str, jws.PrivateKey]) -> None:
    key = keys["ES256"]
    protected = jws.jws_protected_jwk(None, "https://ca.example/acme/key-change", key)
    assert "nonce" not in protected
    inner = jws.jws_encode(
        protected, {"account": KID, "oldKey": jws.jws_jwk(keys["RS256"])[0]}, key
    )
    header, payload = _verify(inner, key)
    assert "nonce" not in header and json.loads(payload)["account"] == KID
    # The inner JWS is the outer payload, passed as serialized bytes.
    outer = jws.jws_encode(
        jws.jws_protected_kid("n", header["url"], KID, keys["RS256"]), inner, keys["RS256"]
    )
    _, outer_payload = _verify(outer, keys["RS256"])
    assert outer_payload == inner


@pytest.mark.parametrize("empty", [None, ""])
def test_post_as_get_empty_payload(keys: dict[str, jws.PrivateKey], empty: str | None) -> None:
    key = keys["ES256"]
    obj = json.loads(jws.jws_encode(jws.jws_protected_kid("n", URL, KID, key), empty, key))
    assert obj["payload"] == ""
    _verify(json.dumps(obj).encode(), key)


def test_empty_object_payload_is_not_empty(keys: dict[str, jws.PrivateKey]) -> None:
    key = keys["ES256"]
    obj = json.loads(jws.jws_encode(jws.jws_protected_kid("n", URL, KID, key), {}, key))
    assert obj["payload"] == "e30"  # "{}": the challenge-start payload (RFC 8555 §7.5.1)


def test_alg_mismatch_rejected(keys: dict[str, jws.PrivateKey]) -> None:
    protected = jws.jws_protected_kid("n", URL, KID, keys["ES256"])
    with pytest.raises(ValueError):
        jws.jws_encode(protected, {}, keys["RS256"])


def test_ec_decode() -> None:
    raw = jws.ec_decode(encode_dss_signature(1, 2**255), 32)
    assert raw == (1).to_bytes(32, "big") + (2**255).to_bytes(32, "big")
    with pytest.raises(ValueError):
        jws.ec_decode(encode_dss_signature(2**256, 1), 32)


# --- External Account Binding ---


@pytest.mark.parametrize(
    "bits,digest", [(256, hashlib.sha256), (384, hashlib.sha384), (512, hashlib.sha512)]
)
def test_eab_hmac(keys: dict[str, jws.PrivateKey], bits: int, digest: Any) -> None:
    mac_key = bytes(range(32))
    protected = jws.jws_protected_eab(bits, "kid-7", URL)
    assert protected == {"alg": f"HS{bits}", "kid": "kid-7", "url": URL}
    account_jwk = jws.jws_jwk(keys["ES256"])[0]
    obj = json.loads(jws.jws_encode_hmac(protected, account_jwk, mac_key, bits))
    data = f"{obj['protected']}.{obj['payload']}".encode()
    assert hmac.compare_digest(
        b64url_decode(obj["signature"]), hmac.new(mac_key, data, digest).digest()
    )
    assert json.loads(b64url_decode(obj["payload"])) == account_jwk
    assert jws.hmac_base64url(bits, b64url_encode(mac_key), data) == obj["signature"]


def test_eab_bad_sizes() -> None:
    with pytest.raises(ValueError):
        jws.jws_protected_eab(128, "k", URL)
    with pytest.raises(ValueError):
        jws.jws_encode_hmac({"alg": "HS256"}, {}, b"k", 384)
    with pytest.raises(ValueError):
        jws.hmac_base64url(256, "not base64!", b"x")


# --- key authorization and hashes ---


def test_key_authorization(keys: dict[str, jws.PrivateKey]) -> None:
    thumb = jws.jws_thumbprint(keys["ES256"])
    keyauth = jws.key_authorization("evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA", thumb)
    assert keyauth == "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA." + thumb
    digest = jws.key_authorization_digest(keyauth)
    assert b64url_decode(digest) == hashlib.sha256(keyauth.encode()).digest()
    assert len(digest) == 43


@pytest.mark.parametrize("token", ["", "../etc/passwd", "a.b", "tok en", "a/b"])
def test_key_authorization_rejects_bad_tokens(token: str) -> None:
    with pytest.raises(ValueError):
        jws.key_authorization(token, "thumb")


def test_sha2_base64url() -> None:
    assert jws.sha2_base64url(256, b"abc") == "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0"
    assert len(b64url_decode(jws.sha2_base64url(384, b"abc"))) == 48
    assert b64url_decode(jws.sha2_base64url(512, b"abc")) == hashlib.sha512(b"abc").digest()
    with pytest.raises(ValueError):
        jws.sha2_base64url(1, b"abc")
