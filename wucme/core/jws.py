"""JSON Web Signature for ACME: RFC 7515 flattened JSON, RFC 7638 thumbprints, RFC 8555 §6.2 headers.

This is the no-I/O half of uacme's crypto.c: JWK export, protected headers, signing (RS256,
ES256, ES384 and the HS* MACs of External Account Binding) and key authorizations. JSON is
built with the json module rather than printf, so values are always escaped correctly.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from typing import TYPE_CHECKING, Any, Union

from wucme._native.pkey import NativeKey
from wucme.core import der as _der
from wucme.core.b64 import b64url_decode, b64url_encode

if TYPE_CHECKING:
    # Imported where a `cryptography` key is used: wucme's own keys are NativeKeys when the
    # native module is built, and `wucme issue` then never loads `cryptography`'s OpenSSL.
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

__all__ = [
    "PrivateKey",
    "AnyKey",
    "key_type",
    "jws_jwk",
    "jws_thumbprint",
    "jws_protected_jwk",
    "jws_protected_kid",
    "jws_protected_eab",
    "jws_encode",
    "jws_encode_hmac",
    "ec_decode",
    "key_authorization",
    "key_authorization_digest",
    "sha2_base64url",
    "hmac_base64url",
]

#: A private key: the system libcrypto's (wucme._native.pkey) or `cryptography`'s.
PrivateKey = Union["NativeKey", "rsa.RSAPrivateKey", "ec.EllipticCurvePrivateKey"]
AnyKey = Union[PrivateKey, "rsa.RSAPublicKey", "ec.EllipticCurvePublicKey"]

# JWS curve name and alg per supported curve size (RFC 7518 §3.4, §6.2.1.1).
_EC_PARAMS: dict[int, tuple[str, str]] = {256: ("P-256", "ES256"), 384: ("P-384", "ES384")}
_EC_CURVES: dict[str, int] = {"secp256r1": 256, "secp384r1": 384}
_SHA2 = {256: hashlib.sha256, 384: hashlib.sha384, 512: hashlib.sha512}
_TOKEN = re.compile(r"[A-Za-z0-9_-]+")


def _json(obj: Any, canonical: bool = False) -> str:
    """Compact JSON (no whitespace); canonical adds the sorted member order of RFC 7638 §3."""
    return json.dumps(obj, separators=(",", ":"), sort_keys=canonical)


def _public(key: AnyKey) -> rsa.RSAPublicKey | ec.EllipticCurvePublicKey:
    """The public half of a `cryptography` key."""
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    if isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        return key.public_key()
    if isinstance(key, (rsa.RSAPublicKey, ec.EllipticCurvePublicKey)):
        return key
    raise ValueError("only RSA and EC keys are supported")


def _ec_bits(key: ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey) -> int:
    """Port of crypto.c:ec_params() size test: 256 or 384; other curves raise ValueError."""
    bits = _EC_CURVES.get(key.curve.name)
    if bits is None:
        raise ValueError(f"unsupported EC curve {key.curve.name}")
    return bits


def _ec_hash(bits: int) -> hashes.HashAlgorithm:
    """ES256's or ES384's hash, for a `cryptography` key."""
    from cryptography.hazmat.primitives import hashes
    return hashes.SHA384() if bits == 384 else hashes.SHA256()


def _uint(value: int, size: int = 0) -> str:
    """Port of crypto.c:bn2str(): big-endian, leading zeros stripped, or left-padded to *size*."""
    length = max(size, (value.bit_length() + 7) // 8, 1)
    return b64url_encode(value.to_bytes(length, "big"))


def _alg(key: AnyKey) -> str:
    """The JWS alg of *key*, as jws_jwk() gives it, without exporting the JWK (every POST
    needs the alg; exporting the public numbers cost as much as a third of an ES256 signature)."""
    if isinstance(key, NativeKey):
        return "RS256" if key.kind == "RSA" else _EC_PARAMS[key.key_size][1]
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return "RS256"
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        return _EC_PARAMS[_ec_bits(key)][1]
    raise ValueError("only RSA and EC keys are supported")


def key_type(key: AnyKey) -> str:
    """Port of crypto.c:key_type(): "RSA" or "EC" (P-256/P-384); others raise ValueError, not PK_NONE."""
    if isinstance(key, NativeKey):
        return key.kind
    from cryptography.hazmat.primitives.asymmetric import rsa
    pub = _public(key)
    if isinstance(pub, rsa.RSAPublicKey):
        return "RSA"
    _ec_bits(pub)
    return "EC"


def _native_jwk(key: NativeKey) -> tuple[dict[str, str], str]:
    """jws_jwk() of a NativeKey, read from its SubjectPublicKeyInfo with wucme.core.der:
    RSA n and e (RFC 8017 appendix A.1.1), or the EC point's x and y (SEC 1 §2.3.3,
    uncompressed: 04 || x || y)."""
    algorithm, params, public = _der.spki_parts(key.public_der())
    if key.kind == "RSA":
        if algorithm != _der.RSA_ENCRYPTION:
            raise ValueError("not an RSA public key")
        n, e = _der.integers(public, 2)
        return {"kty": "RSA", "n": _uint(n), "e": _uint(e)}, "RS256"
    bits = key.key_size
    crv, alg = _EC_PARAMS[bits]
    size = bits // 8
    if algorithm != _der.EC_PUBLIC_KEY or _der.CURVE_OIDS.get(params or "") != f"secp{bits}r1" \
            or len(public) != 1 + 2 * size or public[0] != 4:
        raise ValueError(f"not an uncompressed P-{bits} public key")
    return {"kty": "EC", "crv": crv, "x": b64url_encode(public[1:1 + size]),
            "y": b64url_encode(public[1 + size:])}, alg


def jws_jwk(key: AnyKey) -> tuple[dict[str, str], str]:
    """Port of crypto.c:jws_jwk(): the public JWK (RFC 7517/7518 §6) and the JWS alg for *key*.

    Differs: returns a dict, not JSON text, and accepts public keys too (thumbprint vectors).
    """
    if isinstance(key, NativeKey):
        return _native_jwk(key)
    from cryptography.hazmat.primitives.asymmetric import rsa
    pub = _public(key)
    if isinstance(pub, rsa.RSAPublicKey):
        nums = pub.public_numbers()
        return {"kty": "RSA", "n": _uint(nums.n), "e": _uint(nums.e)}, "RS256"
    bits = _ec_bits(pub)
    crv, alg = _EC_PARAMS[bits]
    size = bits // 8
    point = pub.public_numbers()
    return {"kty": "EC", "crv": crv, "x": _uint(point.x, size), "y": _uint(point.y, size)}, alg


def jws_thumbprint(key: AnyKey) -> str:
    """Port of crypto.c:jws_thumbprint(): RFC 7638 SHA-256 thumbprint of the JWK, base64url.

    The required members only (all a JWK from jws_jwk has), lexicographic order, no whitespace.
    """
    jwk, _ = jws_jwk(key)
    return sha2_base64url(256, _json(jwk, canonical=True).encode("utf-8"))


def jws_protected_jwk(nonce: str | None, url: str, key: AnyKey) -> dict[str, Any]:
    """Port of crypto.c:jws_protected_jwk(): header carrying the key itself (RFC 8555 §6.2).

    Used for newAccount and revocation by certificate key; nonce None leaves the nonce out,
    as the keyChange inner JWS requires (RFC 8555 §7.3.5).
    """
    jwk, alg = jws_jwk(key)
    protected: dict[str, Any] = {"alg": alg}
    if nonce is not None:
        protected["nonce"] = nonce
    protected["url"] = url
    protected["jwk"] = jwk
    return protected


def jws_protected_kid(nonce: str, url: str, kid: str, key: AnyKey) -> dict[str, Any]:
    """Port of crypto.c:jws_protected_kid(): header naming the account URL (RFC 8555 §6.2)."""
    return {"alg": _alg(key), "nonce": nonce, "url": url, "kid": kid}


def jws_protected_eab(bits: int, keyid: str, url: str) -> dict[str, Any]:
    """Port of crypto.c:jws_protected_eab(): the EAB inner header (RFC 8555 §7.3.4), no nonce."""
    if bits not in _SHA2:
        raise ValueError(f"unsupported HMAC size {bits}")
    return {"alg": f"HS{bits}", "kid": keyid, "url": url}


def _payload_bytes(payload: dict[str, Any] | str | bytes | None) -> bytes:
    # None and "" are both the empty payload of a POST-as-GET (RFC 8555 §6.3); {} is not.
    if payload is None:
        return b""
    if isinstance(payload, dict):
        return _json(payload).encode("utf-8")
    if isinstance(payload, str):
        return payload.encode("utf-8")
    return bytes(payload)


def _flatten(
    protected: dict[str, Any], payload: dict[str, Any] | str | bytes | None
) -> tuple[str, str]:
    return b64url_encode(_json(protected).encode("utf-8")), b64url_encode(_payload_bytes(payload))


def _serialize(prot64: str, pay64: str, signature: bytes) -> bytes:
    """RFC 7515 §7.2.2 flattened JSON serialization."""
    body = {"protected": prot64, "payload": pay64, "signature": b64url_encode(signature)}
    return _json(body).encode("ascii")


def ec_decode(der: bytes, size: int) -> bytes:
    """Port of crypto.c:ec_decode(): DER ECDSA-Sig-Value -> fixed-length r||s (RFC 7518 §3.4).

    *size* is the byte length of each of r and s (32 for P-256, 48 for P-384).  The DER
    (RFC 3279 §2.2.3) is read with wucme.core.der: strict, two non-negative INTEGERs.
    """
    r, s = _der.integers(der, 2)
    if r.bit_length() > 8 * size or s.bit_length() > 8 * size:
        raise ValueError("ECDSA signature does not fit the curve size")
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def jws_encode(
    protected: dict[str, Any], payload: dict[str, Any] | str | bytes | None, key: PrivateKey
) -> bytes:
    """Port of crypto.c:jws_encode(): sign and return the flattened JWS as JSON bytes.

    A dict payload is serialized compactly; str/bytes are taken as already-serialized text
    (e.g. the keyChange inner JWS); None or "" gives the empty POST-as-GET payload.
    Differs: the protected header's alg must match the key, checked here.
    """
    alg = _alg(key)
    if protected.get("alg") != alg:
        raise ValueError(f"protected header alg does not match the {alg} key")
    prot64, pay64 = _flatten(protected, payload)
    data = f"{prot64}.{pay64}".encode("ascii")
    if isinstance(key, NativeKey):
        signature = key.sign(data)
        if key.kind == "EC":
            signature = ec_decode(signature, key.key_size // 8)
        return _serialize(prot64, pay64, signature)
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
    if isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        bits = _ec_bits(key)
        signature = ec_decode(key.sign(data, ec.ECDSA(_ec_hash(bits))), bits // 8)
    else:
        raise ValueError("signing needs an RSA or EC private key")
    return _serialize(prot64, pay64, signature)


def jws_encode_hmac(
    protected: dict[str, Any], payload: dict[str, Any] | str | bytes, mac_key: bytes, bits: int
) -> bytes:
    """Port of crypto.c:jws_encode_hmac(): the EAB JWS with an HS256/384/512 MAC (RFC 8555 §7.3.4).

    Differs: *mac_key* is the raw key; hmac_base64url() takes the CA's base64url text form.
    """
    if protected.get("alg") != f"HS{bits}":
        raise ValueError(f"protected header alg does not match HS{bits}")
    prot64, pay64 = _flatten(protected, payload)
    mac = hmac.new(mac_key, f"{prot64}.{pay64}".encode("ascii"), _SHA2[bits]).digest()
    return _serialize(prot64, pay64, mac)


def key_authorization(token: str, thumbprint: str) -> str:
    """The key authorization "token.thumbprint" (RFC 8555 §8.1); used verbatim by http-01.

    The token must be base64url characters (RFC 8555 §8.3): a hostile token never reaches a
    file name or response (uacme checks this in authorize()).
    """
    if _TOKEN.fullmatch(token) is None:
        raise ValueError("challenge token is not base64url")
    return f"{token}.{thumbprint}"


def key_authorization_digest(keyauth: str) -> str:
    """base64url SHA-256 of the key authorization: the dns-01 TXT value (RFC 8555 §8.4) and the
    tls-alpn-01 acmeIdentifier content (RFC 8737 §3)."""
    return sha2_base64url(256, keyauth.encode("utf-8"))


def sha2_base64url(bits: int, data: bytes) -> str:
    """Port of crypto.c:sha2_base64url(): SHA-256/384/512 of *data*, base64url.

    Differs: hashes bytes rather than a printf format.
    """
    if bits not in _SHA2:
        raise ValueError(f"unsupported SHA-2 size {bits}")
    return b64url_encode(_SHA2[bits](data).digest())


def hmac_base64url(bits: int, key_b64url: str, data: bytes) -> str:
    """Port of crypto.c:hmac_base64url(): HMAC-SHA-2 keyed by a base64url key (the EAB MAC key).

    A malformed key raises ValueError (strict decoding).
    """
    if bits not in _SHA2:
        raise ValueError(f"unsupported HMAC size {bits}")
    return b64url_encode(hmac.new(b64url_decode(key_b64url), data, _SHA2[bits]).digest())
