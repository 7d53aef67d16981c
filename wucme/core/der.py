"""Just enough DER (ITU-T X.690) to read the private value out of an EC key file, write a
PKCS#10 request, find the public key of a certificate or request, and read a public key
and an ECDSA signature (the JWK and JWS of a key held by the system's libcrypto).

`cryptography` refuses EC keys whose private octet string is not exactly the
curve's size, and GnuTLS (Debian's uacme) writes it as a minimal signed integer:
33 bytes when the high bit is set, fewer when it starts with zero bytes.  This
reader takes such a file apart so that wucme.crypto can rebuild the key; it
parses nothing else and trusts nothing: every length is checked against its buffer.

The writer (tlv, oid) is what wucme.crypto.csr_gen builds a CSR with, so that `wucme issue`
needs no `cryptography.x509` (its import is most of issue's start-up: docs/performance.md).
"""
from __future__ import annotations

from typing import NamedTuple

SEQUENCE, INTEGER, OCTET_STRING, BIT_STRING, OID = 0x30, 0x02, 0x04, 0x03, 0x06
CONTEXT_0, CONTEXT_1 = 0xA0, 0xA1
#: The longest OID arc read (20 bytes: 140 bits, beyond any registered arc, UUID arcs included).
MAX_ARC_BYTES = 20

#: id-ecPublicKey (RFC 5480 §2.1.1) and the two curves uacme makes keys on.
EC_PUBLIC_KEY = "1.2.840.10045.2.1"
CURVE_OIDS = {"1.2.840.10045.3.1.7": "secp256r1", "1.3.132.0.34": "secp384r1"}
#: rsaEncryption (RFC 8017 appendix A.1): the algorithm of an RSA key's SubjectPublicKeyInfo
#: and PrivateKeyInfo.
RSA_ENCRYPTION = "1.2.840.113549.1.1.1"


class DerError(ValueError):
    """Not the DER this module expects."""


class EcPrivate(NamedTuple):
    """The parts of an EC private key file (SEC1 ECPrivateKey, RFC 5915 §3)."""

    curve: str | None  # "secp256r1" / "secp384r1", None when the file does not say
    value: int  # the private scalar
    public: bytes | None  # the X9.62 point from the file, if it carries one


def tlvs(data: bytes) -> list[tuple[int, bytes]]:
    """The (tag, content) pairs one after another in `data` (single-byte tags, definite lengths)."""
    out = []
    i = 0
    while i < len(data):
        if i + 2 > len(data):
            raise DerError("truncated TLV")
        tag, n = data[i], data[i + 1]
        i += 2
        if n & 0x80:
            size = n & 0x7F
            if size == 0 or size > 4 or i + size > len(data):
                raise DerError("bad length")
            n = int.from_bytes(data[i:i + size], "big")
            i += size
        if i + n > len(data):
            raise DerError("content runs past its buffer")
        out.append((tag, data[i:i + n]))
        i += n
    return out


def oid_text(content: bytes) -> str:
    """An OBJECT IDENTIFIER's dotted form (X.690 §8.19)."""
    if not content:
        raise DerError("empty OID")
    if content[-1] & 0x80:
        raise DerError("OID ends inside an arc")
    arcs: list[int] = []
    n, size = 0, 0
    for b in content:
        n, size = (n << 7) | (b & 0x7F), size + 1
        if size > MAX_ARC_BYTES:
            raise DerError("OID arc too long")
        if not b & 0x80:
            arcs.append(n)
            n, size = 0, 0
    first = min(arcs[0] // 40, 2)
    return ".".join(str(a) for a in [first, arcs[0] - 40 * first, *arcs[1:]])


def _one(data: bytes, tag: int) -> bytes:
    items = tlvs(data)
    if len(items) != 1 or items[0][0] != tag:
        raise DerError(f"expected one element of tag {tag:#x}")
    return items[0][1]


def ec_private(der: bytes) -> EcPrivate:
    """Read a bare SEC1 ECPrivateKey or one wrapped in PKCS#8 (RFC 5208 §5, RFC 5915 §3)."""
    fields = tlvs(_one(der, SEQUENCE))
    if len(fields) >= 3 and fields[0][0] == INTEGER and fields[1][0] == SEQUENCE \
            and fields[2][0] == OCTET_STRING:  # PKCS#8: version, algorithm, privateKey
        alg = tlvs(fields[1][1])
        if not alg or alg[0][0] != OID or oid_text(alg[0][1]) != EC_PUBLIC_KEY:
            raise DerError("not an EC key")
        curve = CURVE_OIDS.get(oid_text(alg[1][1])) if len(alg) > 1 and alg[1][0] == OID else None
        inner = ec_private(fields[2][1])
        if inner.curve and curve and inner.curve != curve:
            raise DerError("curves disagree")
        return EcPrivate(curve or inner.curve, inner.value, inner.public)
    if len(fields) < 2 or fields[0] != (INTEGER, b"\x01") or fields[1][0] != OCTET_STRING:
        raise DerError("not an ECPrivateKey")
    curve, public = None, None
    for tag, content in fields[2:]:
        if tag == CONTEXT_0:
            oid = _one(content, OID)
            curve = CURVE_OIDS.get(oid_text(oid), oid_text(oid))
        elif tag == CONTEXT_1:
            bits = _one(content, BIT_STRING)
            if not bits or bits[0] != 0:
                raise DerError("bad public key bit string")
            public = bits[1:]
    return EcPrivate(curve, int.from_bytes(fields[1][1], "big"), public)


# --- writing (the CSR of wucme.crypto.csr_gen) and taking whole elements apart -----------------

SET, UTF8_STRING, BOOLEAN_TRUE = 0x31, 0x0C, b"\x01\x01\xff"


def tlv(tag: int, content: bytes) -> bytes:
    """One DER element: *tag*, the definite length in its shortest form (X.690 §10.1), *content*."""
    n = len(content)
    if n < 0x80:
        return bytes((tag, n)) + content
    size = (n.bit_length() + 7) // 8
    return bytes((tag, 0x80 | size)) + n.to_bytes(size, "big") + content


def oid(dotted: str) -> bytes:
    """An OBJECT IDENTIFIER element from its dotted form (X.690 §8.19), the inverse of oid_text."""
    arcs = [int(a) for a in dotted.split(".")]
    out = bytearray()
    for arc in [40 * arcs[0] + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out += bytes(reversed(chunk))
    return tlv(OID, bytes(out))


def elements(data: bytes) -> list[tuple[int, bytes, bytes]]:
    """Like tlvs(), with each element's whole encoding too: (tag, element, content)."""
    out = []
    i = 0
    for tag, content in tlvs(data):
        head = 2 if data[i + 1] < 0x80 else 2 + (data[i + 1] & 0x7F)
        end = i + head + len(content)
        out.append((tag, data[i:end], content))
        i = end
    return out


def spki(der: bytes, csr: bool = False) -> bytes:
    """The SubjectPublicKeyInfo element, as encoded, of a certificate (RFC 5280 §4.1: the
    seventh field of tbsCertificate when it carries a version, else the sixth) or of a
    PKCS#10 request (*csr*, RFC 2986 §4.1: the third field of certificationRequestInfo)."""
    inner = elements(_first(der))
    if csr:
        index = 2
    else:
        index = 6 if inner and inner[0][0] == CONTEXT_0 else 5
    if len(inner) <= index or inner[index][0] != SEQUENCE:
        raise DerError("no SubjectPublicKeyInfo")
    return inner[index][1]


def _first(der: bytes) -> bytes:
    """The content of the first element inside the one SEQUENCE *der* is (the signed part)."""
    outer = tlvs(_one(der, SEQUENCE))
    if not outer or outer[0][0] != SEQUENCE:
        raise DerError("no signed part")
    return outer[0][1]


# --- public keys and signatures (wucme.core.jws, for keys of wucme._native.pkey) ---------------


def integer(content: bytes) -> int:
    """A non-negative INTEGER's value from its content octets, which must be minimal (X.690
    §8.3.2): no needless leading 00 or FF octet."""
    if not content:
        raise DerError("empty INTEGER")
    if len(content) > 1 and ((content[0] == 0 and content[1] < 0x80)
                             or (content[0] == 0xFF and content[1] >= 0x80)):
        raise DerError("INTEGER not in its shortest form")
    if content[0] & 0x80:
        raise DerError("negative INTEGER")
    return int.from_bytes(content, "big")


def integers(der: bytes, count: int) -> list[int]:
    """The *count* non-negative INTEGERs of the one SEQUENCE *der* is, and nothing else in it:
    an ECDSA-Sig-Value r, s (RFC 3279 §2.2.3), an RSAPublicKey n, e (RFC 8017 A.1.1)."""
    fields = tlvs(_one(der, SEQUENCE))
    if len(fields) != count or any(tag != INTEGER for tag, _ in fields):
        raise DerError(f"expected a SEQUENCE of {count} INTEGERs")
    return [integer(content) for _, content in fields]


def spki_parts(der: bytes) -> tuple[str, str | None, bytes]:
    """A SubjectPublicKeyInfo (RFC 5280 §4.1.2.7) taken apart: the algorithm's OID, the OID
    of its parameters (the curve of an EC key, RFC 5480 §2.1.1) or None, and the public key
    (the BIT STRING's octets: an RSAPublicKey, an EC point)."""
    fields = tlvs(_one(der, SEQUENCE))
    if len(fields) != 2 or fields[0][0] != SEQUENCE or fields[1][0] != BIT_STRING:
        raise DerError("not a SubjectPublicKeyInfo")
    alg = tlvs(fields[0][1])
    if not alg or alg[0][0] != OID or len(alg) > 2:
        raise DerError("bad AlgorithmIdentifier")
    params = oid_text(alg[1][1]) if len(alg) == 2 and alg[1][0] == OID else None
    bits = fields[1][1]
    if not bits or bits[0] != 0:
        raise DerError("bad public key bit string")
    return oid_text(alg[0][1]), params, bits[1:]
