"""wucme's keys on the system's libcrypto: the checked layer over native/pkey.c.

`wucme issue` (and every renewal, through obtain()) makes a certificate key, reads the
account key, writes the key, builds a CSR and signs a dozen JWS.  `cryptography` does that
with the OpenSSL it bundles, loaded beside the system's one that `ssl` has mapped already:
about 10 MiB of the process and 11 ms of imports (docs/performance.md, "Crypto fast path").
A `NativeKey` does the same work on the system's libcrypto.

`backend()` gives the native keys when the cffi module `wucme._native._pkey` was built and
the logical name WUCME_NO_NATIVE is not defined, else None: the twin is `cryptography`
itself, whose keys wucme.crypto and wucme.core.jws take as they always did.  `load_pem()`
answers only for a key file exactly as libcrypto (or `cryptography`) writes one of the keys
wucme makes; anything else is None and goes to the twin, which alone decides what an unusual
or bad key file means.  This is the only module where cffi's untyped objects appear.
"""
from __future__ import annotations

import base64
import binascii
import re
from typing import TYPE_CHECKING, Any

from wucme.core import der
from wucme._native import native_forced_off

try:
    from wucme._native._pkey import ffi as _ffi, lib as _lib
except ImportError:  # not built: no compiler or no libssl-dev, or a source checkout
    _ffi = _lib = None

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

__all__ = ["HAS_PKEY", "NativeKey", "NativeKeys", "NATIVE", "backend", "native_forced_off", "pem"]

HAS_PKEY = _lib is not None

#: A private key's PEM, whole file: the label names the form of the DER inside.
_PEM = re.compile(rb"-----BEGIN ([A-Z ]+)-----\n([A-Za-z0-9+/=\n]+)-----END \1-----\n")
_FORMS = {b"PRIVATE KEY": 1, b"RSA PRIVATE KEY": 2, b"EC PRIVATE KEY": 3}  # pkey.h: PK_PKCS8, ...
#: Room for what pk_pkcs8() writes of an RSA-4096 key; larger keys ask again with the size.
_PKCS8_CAP = 2560
#: The longest signature: RSA-8192's (pk_sign asks for what the key can make, never more).
_SIG_CAP = 1024


def pem(label: str, data: bytes) -> bytes:
    """The PEM form (RFC 7468 §2) `cryptography` and OpenSSL write: 64 characters a line, LF."""
    text = base64.b64encode(data)
    lines = b"".join(text[i:i + 64] + b"\n" for i in range(0, len(text), 64))
    return b"-----BEGIN %s-----\n%s-----END %s-----\n" % (label.encode(), lines, label.encode())


def _out(fn: Any, key: Any, cap: int, secret: bool = False) -> bytes:
    """What pk_pkcs8() or pk_spki() writes for *key*: asked once more with the size it
    needs when *cap* was too small.  A *secret* buffer is wiped before it is let go."""
    buf = _ffi.new("unsigned char[]", cap)
    n = fn(key, buf, cap)
    if n > cap:
        cap = n
        buf = _ffi.new("unsigned char[]", cap)
        n = fn(key, buf, cap)
    if not 0 < n <= cap:
        raise RuntimeError(f"libcrypto could not write the key ({n})")
    data: bytes = _ffi.buffer(buf, n)[:]
    if secret:
        _ffi.memmove(buf, bytes(cap), cap)
    return data


def well_formed(form: int, data: bytes) -> bool:
    """Does the private key DER *data* (of the pkey.h form *form*) have the versions and
    INTEGERs `cryptography` reads: a PrivateKeyInfo of version 0 around one of the others; a
    two-prime RSAPrivateKey of version 0 whose INTEGERs are non-negative and minimal; an
    ECPrivateKey of version 1 that carries its public key?  libcrypto keeps the version and
    the signs it read and writes them back, so pk_load()'s own test (that it writes the
    same DER again) does not see them."""
    try:
        items = der.tlvs(data)
        if len(items) != 1 or items[0][0] != der.SEQUENCE:
            return False
        fields = der.tlvs(items[0][1])
        if form == 1:  # PKCS#8 (RFC 5208 §5): the inner key's form from the algorithm's OID
            if len(fields) != 3 or fields[0] != (der.INTEGER, b"\x00") or fields[1][0] != der.SEQUENCE \
                    or fields[2][0] != der.OCTET_STRING:
                return False
            algorithm = der.tlvs(fields[1][1])
            oid = der.oid_text(algorithm[0][1]) if algorithm and algorithm[0][0] == der.OID else ""
            inner = 2 if oid == der.RSA_ENCRYPTION else 3 if oid == der.EC_PUBLIC_KEY else 0
            return inner != 0 and well_formed(inner, fields[2][1])
        if form == 2:  # RSAPrivateKey (RFC 8017 A.1.2): version, n, e, d, p, q, dP, dQ, qInv
            return (len(fields) == 9 and fields[0] == (der.INTEGER, b"\x00")
                    and all(tag == der.INTEGER and der.integer(value) >= 0 for tag, value in fields))
        return (form == 3 and len(fields) in (3, 4) and fields[0] == (der.INTEGER, b"\x01")  # RFC 5915 §3
                and fields[1][0] == der.OCTET_STRING and fields[-1][0] == der.CONTEXT_1)
    except der.DerError:
        return False


class NativeKey:
    """A private key held by the system's libcrypto, freed with this object (never copied
    out except as its PKCS#8 encoding, on request).

    `kind` is "RSA" or "EC"; `key_size` the modulus size, or the curve's (256 or 384), as
    `cryptography`'s keys name it.  The methods are what wucme does with a key: its public
    half for the JWK and the CSR, its file, a signature.
    """

    __slots__ = ("_key", "kind", "key_size", "_spki")

    def __init__(self, handle: Any) -> None:
        self._key = _ffi.gc(handle, _lib.pk_free)
        self.kind = "RSA" if _lib.pk_kind(handle) == _lib.PK_RSA else "EC"
        self.key_size: int = _lib.pk_bits(handle)
        self._spki: bytes | None = None

    def __repr__(self) -> str:
        return f"<NativeKey {self.kind} {self.key_size}>"

    def public_der(self) -> bytes:
        """The public key as DER SubjectPublicKeyInfo (RFC 5280 §4.1.2.7): what a CSR carries."""
        if self._spki is None:
            self._spki = _out(_lib.pk_spki, self._key, 600)
        return self._spki

    def pkcs8_der(self) -> bytes:
        """The private key as unencrypted PKCS#8 DER (RFC 5208 §5)."""
        return _out(_lib.pk_pkcs8, self._key, _PKCS8_CAP, secret=True)

    def pkcs8_pem(self) -> bytes:
        """The private key as unencrypted PKCS#8 PEM, byte for byte what `cryptography` writes
        for it (crypto.key_save)."""
        return pem("PRIVATE KEY", self.pkcs8_der())

    def sign(self, data: bytes) -> bytes:
        """The signature of *data*: RSA PKCS#1 v1.5 with SHA-256; ECDSA with SHA-256 (P-256)
        or SHA-384 (P-384) as a DER ECDSA-Sig-Value, as `cryptography`'s sign() gives it."""
        buf = _ffi.new("unsigned char[]", _SIG_CAP)
        n = _lib.pk_sign(self._key, data, len(data), buf, _SIG_CAP)
        if not 0 < n <= _SIG_CAP:
            raise RuntimeError(f"libcrypto could not sign ({n})")
        return _ffi.buffer(buf, n)[:]  # type: ignore[no-any-return]

    def to_cryptography(self) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
        """The same key as a `cryptography` key, for what only `cryptography` does with keys
        (pyOpenSSL, X.509 builders)."""
        from cryptography.hazmat.primitives.asymmetric import ec, rsa
        from cryptography.hazmat.primitives.serialization import load_der_private_key

        key = load_der_private_key(self.pkcs8_der(), None, unsafe_skip_rsa_key_validation=True)
        assert isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey))
        return key


class NativeKeys:
    """Making and reading NativeKeys (one object: NATIVE)."""

    name = "native"

    def generate(self, kind: str, bits: int) -> NativeKey | None:
        """A new key: "EC" 256 or 384, "RSA" 2048..8192 (a multiple of 8, exponent 65537).
        None for other sizes, or when libcrypto failed: the twin then makes it."""
        handle = _lib.pk_generate(_lib.PK_RSA if kind == "RSA" else _lib.PK_EC if kind == "EC" else 0,
                                  bits)
        return NativeKey(handle) if handle != _ffi.NULL else None

    def load_pem(self, data: bytes) -> NativeKey | None:
        """The key in the PEM file *data* when it is one of the keys generate() makes (RSA
        2048..8192 with two primes, EC P-256 or P-384 with its public point, unencrypted)
        written exactly as libcrypto writes it: a PKCS#8 or traditional PEM block, the
        whole file.  None for anything else (the twin decides what it is)."""
        m = _PEM.fullmatch(data)
        form = _FORMS.get(m.group(1)) if m else None
        if m is None or form is None:
            return None
        try:
            body = base64.b64decode(m.group(2).replace(b"\n", b""), validate=True)
        except (binascii.Error, ValueError):
            return None
        if pem(m.group(1).decode(), body) != data or not well_formed(form, body):
            return None  # not lines of 64 with nothing else in the file; not what cryptography reads
        handle = _lib.pk_load(form, body, len(body))
        return NativeKey(handle) if handle != _ffi.NULL else None

    def __repr__(self) -> str:
        return f"<pkey {self.name}>"


NATIVE = NativeKeys() if HAS_PKEY else None


def backend(native: bool | None = None) -> NativeKeys | None:
    """The native keys, or None for the twin (`cryptography`): `native` True or False asks
    for one (True raises RuntimeError when the module was not built); None takes the native
    one unless it is missing or WUCME_NO_NATIVE is defined."""
    if native is False or (native is None and (NATIVE is None or native_forced_off())):
        return None
    if NATIVE is None:
        raise RuntimeError("the native keys (wucme._native._pkey) were not built")
    return NATIVE
