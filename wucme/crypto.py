"""Keys, CSRs, certificates and OCSP: the file-handling half of uacme's crypto.c (no network).

JWS and hashing live in wucme.core.jws; this module reads and writes PEM files, builds CSRs and
inspects certificates for renewal (ARI identifiers, OCSP requests and responses). The HTTP
exchanges of ari_check() and ocsp_check() belong to callers with a transport.

wucme's own keys (key_gen, key_load_own) are NativeKeys on the system's libcrypto when the
native module is built (wucme._native.pkey), so that `wucme issue` and the renewals never load
`cryptography` and its second OpenSSL; `cryptography`, their twin, is imported where it is
used: keys from elsewhere (key_load), X.509, OCSP.
"""

from __future__ import annotations

import base64
import datetime as _dt
import ipaddress
import os
import re
import secrets
from typing import TYPE_CHECKING, Callable, Union

from wucme._native import certscan, pkey
from wucme._native.certscan import CertInfo
from wucme._native.pkey import NativeKey
from wucme.core import der
from wucme.core.b64 import b64url_encode
from wucme.core.ident import is_ip  # port of crypto.c:is_ip(); one definition for all of wucme
from wucme.core.jws import PrivateKey
from wucme.core.times import parse_rfc3339
from wucme.errors import WucmeError
from wucme.vms.atomic import atomic_write

if TYPE_CHECKING:
    # Imported where used: making and reading wucme's own keys, CSRs and the chain's scan
    # need none of `cryptography` when the native modules are built.
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509 import ocsp

__all__ = [
    "CryptoError",
    "serial_hex",
    "key_bits_problem",
    "key_gen",
    "key_save",
    "key_pem",
    "key_load",
    "key_load_own",
    "write_atomic",
    "is_ip",
    "csr_gen",
    "csr_requests_staple",
    "csr_load",
    "cert_load",
    "cert_info",
    "chain_info",
    "CertInfo",
    "cert_match",
    "crt_ari_url",
    "ari_id",
    "cert_names",
    "cert_days_left",
    "ocsp_request",
    "ocsp_status",
    "parse_rfc3339_timestamp",
]

PathLike = Union[str, "os.PathLike[str]"]

_EC_SIZES = (256, 384)
_CURVE_BITS = {"secp256r1": 256, "secp384r1": 384}
_RSA_MIN, _RSA_MAX = 2048, 8192


class CryptoError(WucmeError):
    """A key, CSR or certificate could not be made, read or trusted. Messages never hold key bytes."""

    ident = "CRYPTO"


# --- keys -------------------------------------------------------------------------------------


def key_bits_problem(type: str, bits: int) -> str | None:  # noqa: A002 - uacme's parameter name
    """What is wrong with a key size, as the end of a sentence naming it, or None when it is fine.

    The one rule (uacme.c main()'s): RSA 2048..8192 in multiples of 8, EC 256 or 384.  key_gen,
    `wucme --uacme -b` and WUCME_KEY_BITS all ask it, each naming the value its own way.
    """
    if type == "RSA":
        if not _RSA_MIN <= bits <= _RSA_MAX:
            return f"must be between {_RSA_MIN} and {_RSA_MAX} for RSA keys"
        if bits % 8:
            return "must be a multiple of 8 for RSA keys"
        return None
    if type == "EC":
        return None if bits in _EC_SIZES else "must be either 256 or 384 for EC keys"
    return "belongs to an unknown key type (RSA or EC)"


def _curve(bits: int) -> ec.EllipticCurve:
    from cryptography.hazmat.primitives.asymmetric import ec
    return ec.SECP384R1() if bits == 384 else ec.SECP256R1()


def key_gen(type: str, bits: int) -> PrivateKey:  # noqa: A002 - uacme's parameter name
    """Port of crypto.c:key_gen(): a new RSA (2048..8192, multiple of 8) or EC (256/384) key.

    A NativeKey (the system's libcrypto) unless the native module is missing or turned off
    (WUCME_NO_NATIVE): then `cryptography`'s, as it does the work the native one could not.
    Differs: generation only; key_save() writes the file (uacme's key_gen did both).
    """
    if type not in ("RSA", "EC"):
        raise CryptoError(f"key type must be RSA or EC, not {type!r}")
    problem = key_bits_problem(type, bits)
    if problem:
        raise CryptoError(f"key size {bits} {problem}")
    keys = pkey.backend()
    key = keys.generate(type, bits) if keys is not None else None
    if key is not None:
        return key
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    if type == "RSA":
        return rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return ec.generate_private_key(_curve(bits))


def write_atomic(path: PathLike, data: bytes, mode: int = 0o600) -> None:
    """Write *data* to *path* so that readers see the old file or the new one, never a torn one.

    wucme.vms.atomic does the work (O_EXCL temporary file created with *mode*, fsync, rename
    over *path* — a symlink there is replaced, not followed — and the directory fsync'ed);
    this only turns its OSError into a CryptoError that names the file.
    """
    try:
        atomic_write(path, data, mode)
    except OSError as exc:
        raise CryptoError(f"cannot write {os.fspath(path)}: {exc.strerror}") from None


def key_pem(key: PrivateKey) -> bytes:
    """*key* as unencrypted PKCS#8 PEM, the form uacme and the servers read; a NativeKey's
    is byte for byte what `cryptography` writes for the same key."""
    if isinstance(key, NativeKey):
        return key.pkcs8_pem()
    from cryptography.hazmat.primitives import serialization
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def key_save(path: PathLike, key: PrivateKey, mode: int = 0o600) -> None:
    """Write *key* as unencrypted PKCS#8 PEM, atomically and with *mode* (uacme uses 0400).

    Port of the writing half of crypto.c:key_gen(); differs in being atomic (write_atomic()).
    """
    write_atomic(path, key_pem(key), mode)


#: Compiled on first use (re's cache): only a key cryptography refuses is read with it.
_PEM_EC_KEY = rb"-----BEGIN (EC PRIVATE KEY|PRIVATE KEY)-----\r?\n([A-Za-z0-9+/=\r\n]+?)-----END \1-----"


def _ec_key_lenient(pem: bytes) -> ec.EllipticCurvePrivateKey | None:
    """An EC key whose private value is not padded to the curve size, or None.

    GnuTLS (Debian's uacme) writes the value as a minimal integer: 33 bytes for
    P-256 when the high bit is set, fewer with leading zero bytes; cryptography
    refuses both.  The value and curve are read with wucme.core.der, the key is
    rebuilt from them and must match the public key the file carries.  The file
    itself is left as it is, so uacme goes on reading it.
    """
    from cryptography.hazmat.primitives.asymmetric import ec
    m = re.search(_PEM_EC_KEY, pem)
    if not m:
        return None
    try:
        parts = der.ec_private(base64.b64decode(m.group(2), validate=False))
    except (der.DerError, ValueError, IndexError):
        return None
    bits = _CURVE_BITS.get(parts.curve or "")
    if bits is None or not 0 < parts.value < (1 << bits):
        return None
    try:
        key = ec.derive_private_key(parts.value, _curve(bits))
    except ValueError:
        return None
    if parts.public is not None:
        try:
            theirs = ec.EllipticCurvePublicKey.from_encoded_point(_curve(bits), parts.public)
        except ValueError:
            return None
        if theirs.public_numbers() != key.public_key().public_numbers():
            return None
    return key


def _check_key(key: object, path: str) -> PrivateKey:
    """Port of crypto.c:rsa_params()/ec_params() as key_load() uses them: supported keys only."""
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    if isinstance(key, rsa.RSAPrivateKey):
        if not _RSA_MIN <= key.key_size <= _RSA_MAX:
            raise CryptoError(
                f"{path}: RSA key size {key.key_size} is outside {_RSA_MIN}..{_RSA_MAX}"
            )
        return key
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if key.curve.name not in _CURVE_BITS:
            raise CryptoError(f"{path}: EC curve {key.curve.name} is not P-256 or P-384")
        return key
    raise CryptoError(f"{path}: only RSA and EC keys are supported")


def key_load(
    path: PathLike, type: str | None = None, bits: int = 0, mode: int = 0o600,
    log: Callable[[str], None] | None = None,
) -> PrivateKey:  # noqa: A002
    """Port of crypto.c:key_load(): read a PEM private key, generating it first if missing.

    A missing file is generated (key_gen + key_save) only when *type* is given. *log* hears
    uacme's -v lines (loading, not found, generating, saved). Anything else
    that is not a usable key (garbage, DER, encrypted, a certificate, a weak key) raises
    CryptoError and the file is left alone, never regenerated over.  The key is always
    `cryptography`'s (the uacme port's keys: GnuTLS's EC keys need _ec_key_lenient()).
    """
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    path = os.fspath(path)
    say = log or (lambda _text: None)
    say(f"loading key from {path}")
    for _ in range(2):
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            say(f"{path} not found")
            if type is None:
                raise CryptoError(f"key_load: {path} does not exist") from None
            say(f"generating new {bits}-bit {type} key")
            key_save(path, key_gen(type, bits), mode)
            say(f"key saved to {path}")
            continue
        except OSError as exc:
            raise CryptoError(f"key_load: cannot read {path}: {exc.strerror}") from None
        key: object
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except TypeError:
            raise CryptoError(
                f"key_load: {path} is encrypted; wucme needs an unencrypted key"
            ) from None
        except (ValueError, UnsupportedAlgorithm):
            key = _ec_key_lenient(data)
            if key is None:
                raise CryptoError(f"key_load: {path} is not a PEM private key") from None
        return _check_key(key, path)
    raise CryptoError(f"key_load: {path} vanished after it was generated")


def key_load_own(path: PathLike) -> PrivateKey:
    """A key from wucme's own repository (the account key), without key_load()'s RSA check.

    wucme generated the key and wrote it 0600, atomically; the check (that p and q are
    prime and match n: 30 ms for 2048 bits, a quarter of a second for 4096, each time a
    verb starts) guards against keys from elsewhere, and OpenSSL verifies its CRT result
    when it signs anyway.  A key this cannot read goes through key_load(), so the errors
    are key_load()'s.  Keys from elsewhere (uacme's confdir, -k) keep key_load().

    A NativeKey when the native module reads the file (a key as wucme writes it: see
    wucme._native.pkey); anything it does not read goes the `cryptography` way, as before.
    """
    where = os.fspath(path)
    try:
        with open(where, "rb") as f:
            data = f.read()
    except OSError:
        return key_load(where)
    keys = pkey.backend()
    native = keys.load_pem(data) if keys is not None else None
    if native is not None:
        return native
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    try:
        key = serialization.load_pem_private_key(data, password=None,
                                                 unsafe_skip_rsa_key_validation=True)
    except (TypeError, ValueError, UnsupportedAlgorithm):
        return key_load(where)
    return _check_key(key, where)


# --- identifiers and CSRs ------------------------------------------------------------------


def _dns_alabel(name: str) -> str:
    """A DNS name in ASCII (A-label) form; a leading "*." wildcard label is kept."""
    if name.isascii():
        return name
    import idna  # only for a name that is not ASCII (issue's names are A-labels already)

    prefix, rest = ("*.", name[2:]) if name.startswith("*.") else ("", name)
    try:
        return prefix + idna.encode(rest, uts46=True).decode("ascii")
    except idna.IDNAError:
        raise CryptoError(f"invalid domain name {name!r}") from None


# The fixed parts of csr_gen's request, as `cryptography`'s CertificateSigningRequestBuilder
# encodes them (tests/unit/test_csr_der.py holds the two to the same bytes).
_CN = der.oid("2.5.4.3")  # id-at-commonName (X.520)
_SAN = der.oid("2.5.29.17")  # id-ce-subjectAltName (RFC 5280 §4.2.1.6)
_KEY_USAGE = der.oid("2.5.29.15")  # id-ce-keyUsage (RFC 5280 §4.2.1.3)
_TLS_FEATURE = der.oid("1.3.6.1.5.5.7.1.24")  # id-pe-tlsfeature (RFC 7633 §6)
_EXTENSION_REQUEST = der.oid("1.2.840.113549.1.9.14")  # PKCS#9 extensionRequest (RFC 2985)
#: keyUsage bits as DER BIT STRINGs: digitalSignature; digitalSignature + keyEncipherment.
_USAGE_SIGN, _USAGE_SIGN_ENCIPHER = b"\x03\x02\x07\x80", b"\x03\x02\x05\xa0"
_STATUS_REQUEST = b"\x30\x03\x02\x01\x05"  # TLSFeature ::= SEQUENCE { status_request(5) }
_SIG_RSA_SHA256 = der.tlv(der.SEQUENCE, der.oid("1.2.840.113549.1.1.11") + b"\x05\x00")  # RFC 4055
_SIG_ECDSA = {256: der.tlv(der.SEQUENCE, der.oid("1.2.840.10045.4.3.2")),  # RFC 5758 §3.2
              384: der.tlv(der.SEQUENCE, der.oid("1.2.840.10045.4.3.3"))}


def _general_name_der(name: str) -> bytes:
    """A SAN entry (RFC 5280 §4.2.1.6): iPAddress [7] (the address's 4 or 16 octets) for an
    address, else dNSName [2] (IA5String, the A-label)."""
    if is_ip(name):
        return der.tlv(0x87, ipaddress.ip_address(name).packed)
    return der.tlv(0x82, _dns_alabel(name).encode("ascii"))


def _extension(oid: bytes, critical: bool, value: bytes) -> bytes:
    return der.tlv(der.SEQUENCE, oid + (der.BOOLEAN_TRUE if critical else b"")
                   + der.tlv(der.OCTET_STRING, value))


def csr_gen(names: list[str], status_req: bool, no_key_usage: bool, key: PrivateKey) -> bytes:
    """Port of crypto.c:csr_gen(): a DER PKCS#10 request (RFC 2986) for *names*, signed by *key*.

    CN is names[0] unless it is an IP address (RFC 8738 leaves IPs to the SAN); SAN lists
    every name as DNS: or IP:; keyUsage is critical digitalSignature, plus keyEncipherment
    for RSA, unless *no_key_usage*; *status_req* adds TLS Feature status_request (RFC 7633).
    SHA-384 for P-384 keys, else SHA-256. Differs: returns DER (callers base64url it) and
    omits a CN longer than the 64 characters X.520 allows instead of failing.

    Written with wucme.core.der, byte for byte what `cryptography`'s request builder writes
    (tests/unit/test_csr_der.py), so that issuing needs no `cryptography.x509`.
    """
    if not names:
        raise CryptoError("csr_gen: no names")
    usage, algorithm, public, sign = _csr_signer(key)
    rdns = b""
    if not is_ip(names[0]):
        cn = _dns_alabel(names[0])
        if not cn:
            raise CryptoError("csr_gen: empty name")
        if len(cn) <= 64:
            rdns = der.tlv(der.SET, der.tlv(der.SEQUENCE, _CN + der.tlv(der.UTF8_STRING, cn.encode())))
    extensions = [_extension(_SAN, False, der.tlv(der.SEQUENCE, b"".join(_general_name_der(n) for n in names)))]
    if not no_key_usage:
        extensions.append(_extension(_KEY_USAGE, True, usage))
    if status_req:
        extensions.append(_extension(_TLS_FEATURE, False, _STATUS_REQUEST))
    attributes = der.tlv(der.CONTEXT_0, der.tlv(der.SEQUENCE, _EXTENSION_REQUEST + der.tlv(
        der.SET, der.tlv(der.SEQUENCE, b"".join(extensions)))))
    info = der.tlv(der.SEQUENCE, b"\x02\x01\x00" + der.tlv(der.SEQUENCE, rdns) + public + attributes)
    return der.tlv(der.SEQUENCE, info + algorithm + der.tlv(der.BIT_STRING, b"\x00" + sign(info)))


def _csr_signer(key: PrivateKey) -> tuple[bytes, bytes, bytes, Callable[[bytes], bytes]]:
    """What csr_gen() needs of *key*: its keyUsage bits, the signature algorithm, its DER
    SubjectPublicKeyInfo and its sign(): SHA-256 with PKCS#1 v1.5 for RSA, ECDSA with
    SHA-256 (P-256) or SHA-384 (P-384)."""
    if isinstance(key, NativeKey):
        if key.kind == "RSA":
            return _USAGE_SIGN_ENCIPHER, _SIG_RSA_SHA256, key.public_der(), key.sign
        return _USAGE_SIGN, _SIG_ECDSA[key.key_size], key.public_der(), key.sign
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
    if isinstance(key, rsa.RSAPrivateKey):
        rsa_key = key
        usage, algorithm = _USAGE_SIGN_ENCIPHER, _SIG_RSA_SHA256

        def sign(data: bytes) -> bytes:
            return rsa_key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    elif isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name in _CURVE_BITS:
        ec_key, bits = key, _CURVE_BITS[key.curve.name]
        usage, algorithm = _USAGE_SIGN, _SIG_ECDSA[bits]

        def sign(data: bytes) -> bytes:
            return ec_key.sign(data, ec.ECDSA(hashes.SHA384() if bits == 384 else hashes.SHA256()))
    else:
        raise CryptoError("csr_gen: only RSA and EC P-256/P-384 keys are supported")
    public = key.public_key().public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return usage, algorithm, public, sign


def csr_requests_staple(csr: bytes) -> bool:
    """Might the DER request *csr* carry the TLS Feature extension?  False means it does not
    (its OID appears nowhere in it); True needs `cryptography.x509` to be sure."""
    return _TLS_FEATURE in csr


def _dedup(names: list[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for name in names:
        if name.lower() not in seen:
            seen.add(name.lower())
            out.append(name)
    return out


def _subject_names(cn_source: x509.Name, extensions: x509.Extensions) -> list[str]:
    """CN values, then SAN DNS and IP entries, in order (crypto.c:csr_names() order)."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID
    names = [str(a.value) for a in cn_source.get_attributes_for_oid(NameOID.COMMON_NAME)]
    try:
        san = extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return names
    names += san.get_values_for_type(x509.DNSName)
    names += [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    return names


def csr_load(path: PathLike) -> tuple[bytes, list[str]]:
    """Port of crypto.c:csr_load() with csr_names(): a PEM CSR file -> (DER, names).

    Names are the CN(s) then SAN DNS/IP entries, deduplicated case-insensitively.
    Differs: the CSR's self-signature must verify (uacme leaves that to the CA).
    """
    from cryptography import x509
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise CryptoError(f"csr_load: cannot read {path}: {exc.strerror}") from None
    try:
        csr = x509.load_pem_x509_csr(data)
        valid = csr.is_signature_valid
        names = _dedup(_subject_names(csr.subject, csr.extensions))
    except (ValueError, UnsupportedAlgorithm):
        raise CryptoError(f"csr_load: {path} is not a valid PEM certificate request") from None
    if not valid:
        raise CryptoError(f"csr_load: {path}: signature does not verify")
    if not names:
        raise CryptoError(f"csr_load: {path} names no identifiers")
    return csr.public_bytes(serialization.Encoding.DER), names


# --- certificates -----------------------------------------------------------------------------

_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----")


def cert_load(path_or_pem: PathLike | bytes) -> list[x509.Certificate]:
    """Port of crypto.c:cert_load(): every certificate in a PEM chain, leaf first.

    *path_or_pem* is a file name, or the PEM bytes themselves. A missing file gives []; other
    PEM blocks (the private key wucme appends) are skipped; a file with no readable
    certificate raises CryptoError. Differs: reads the whole chain, not just two certificates.
    """
    from cryptography import x509
    if isinstance(path_or_pem, bytes):
        data, where = path_or_pem, "PEM data"
    else:
        where = os.fspath(path_or_pem)
        try:
            with open(where, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise CryptoError(f"cert_load: cannot read {where}: {exc.strerror}") from None
    if not _PEM_CERT.search(data):
        raise CryptoError(f"cert_load: {where} holds no PEM certificate")
    try:
        return x509.load_pem_x509_certificates(data)
    except (ValueError, x509.InvalidVersion):  # InvalidVersion is no ValueError
        raise CryptoError(f"cert_load: {where} holds a malformed certificate") from None


def cert_info(path: PathLike, scanner: certscan.Scanner | None = None) -> CertInfo | None:
    """What the repository scan needs of the chain in *path*: the leaf's serial, validity,
    names (as cert_names() gives them), AKI keyIdentifier and DER, read by the native
    scanner when it was built (*scanner*, or certscan.backend()).  None for a missing
    file; otherwise the CryptoError cert_load() raises for the same file.
    """
    where = os.fspath(path)
    try:
        return (scanner or certscan.backend()).cert_file(where)
    except OSError as exc:
        raise CryptoError(f"cert_load: cannot read {where}: {exc.strerror}") from None
    except certscan.NoCertificate:
        raise CryptoError(f"cert_load: {where} holds no PEM certificate") from None
    except ValueError:
        raise CryptoError(f"cert_load: {where} holds a malformed certificate") from None


def chain_info(pem: bytes) -> CertInfo:
    """cert_info() of PEM bytes (a chain just downloaded): the leaf as the scan reads it, the
    CryptoError cert_load() raises for the same bytes otherwise."""
    try:
        return certscan.backend().cert_info(pem)
    except certscan.NoCertificate:
        raise CryptoError("cert_load: PEM data holds no PEM certificate") from None
    except ValueError:
        raise CryptoError("cert_load: PEM data holds a malformed certificate") from None


def _aki_keyid(cert: x509.Certificate) -> bytes | None:
    from cryptography import x509
    try:
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    except (x509.ExtensionNotFound, x509.DuplicateExtension, x509.UnsupportedGeneralNameType, ValueError):
        return None
    return aki.key_identifier or None


def cert_match(pem: bytes, prefix: bytes) -> bool:
    """Port of crypto.c:cert_match() (uacme -l FP): does any certificate in the chain have a
    SHA-256 fingerprint, or an Authority Key Identifier keyid, starting with *prefix*?

    Differs: an empty prefix or an unreadable chain matches nothing.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    if not prefix:
        return False
    try:
        certs = x509.load_pem_x509_certificates(pem)
    except (ValueError, x509.InvalidVersion):
        return False
    for cert in certs:
        if cert.fingerprint(hashes.SHA256()).startswith(prefix):
            return True
        keyid = _aki_keyid(cert)
        if keyid is not None and keyid.startswith(prefix):
            return True
    return False


def serial_hex(value: int) -> str:
    """A certificate serial as `openssl x509 -serial` prints it: upper-case hex, two digits a
    byte, so an odd count gains a leading zero (0x0ABC shows as 0ABC)."""
    digits = format(abs(value), "X")
    return ("-" if value < 0 else "") + ("0" * (len(digits) % 2)) + digits


def _der_integer_content(value: int) -> bytes:
    """The content octets of a DER INTEGER: minimal two's complement, so 0x80.. gains a 0x00."""
    magnitude = value if value >= 0 else ~value
    return value.to_bytes(magnitude.bit_length() // 8 + 1, "big", signed=True)


def crt_ari_url(cert: x509.Certificate, base: str) -> str:
    """Port of crypto.c:crt_ari_url(): the renewalInfo URL for *cert* (RFC 9773 §4.1).

    base/ + b64url(AKI keyIdentifier) + "." + b64url(serial DER INTEGER content octets).
    Differs: keeps the serial's leading 0x00 when its high bit is set, as RFC 9773 requires
    (uacme's OpenSSL BN_bn2bin drops it); a trailing "/" on *base* is not doubled; a
    certificate without an AKI keyIdentifier raises CryptoError (uacme returned NULL).
    """
    keyid = _aki_keyid(cert)
    if keyid is None:
        raise CryptoError("crt_ari_url: certificate has no Authority Key Identifier")
    return f"{base.rstrip('/')}/{ari_id(keyid, cert.serial_number)}"


def ari_id(keyid: bytes, serial: int) -> str:
    """The RFC 9773 §4.1 certificate identifier from the AKI keyIdentifier and the serial (the
    DER INTEGER's content octets): what crt_ari_url() appends, and `replaces` (§5)."""
    return f"{b64url_encode(keyid)}.{b64url_encode(_der_integer_content(serial))}"


def cert_names(cert: x509.Certificate) -> list[str]:
    """The names *cert* covers, lower-cased: CN then SAN DNS and IP (crypto.c:cert_valid() check)."""
    from cryptography import x509
    try:
        extensions = cert.extensions
    except (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType):  # neither is a ValueError
        extensions = x509.Extensions([])
    try:
        subject = cert.subject
    except (ValueError, TypeError):  # e.g. a CN of type BIT STRING: cryptography's TypeError
        raise CryptoError("the certificate's subject does not parse") from None
    return _dedup([n.lower() for n in _subject_names(subject, extensions)])


def cert_days_left(cert: x509.Certificate, now: _dt.datetime | None = None) -> float:
    """Days until notAfter, fractional and negative once expired (crypto.c:cert_valid() days_left)."""
    now = now or _dt.datetime.now(_dt.timezone.utc)
    return (cert.not_valid_after_utc - now).total_seconds() / 86400.0


# --- OCSP (RFC 6960) --------------------------------------------------------------------------


def _ocsp_url(cert: x509.Certificate) -> str | None:
    from cryptography import x509
    from cryptography.x509.oid import AuthorityInformationAccessOID
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except (x509.ExtensionNotFound, x509.DuplicateExtension, x509.UnsupportedGeneralNameType, ValueError):
        return None
    for desc in aia:
        loc = desc.access_location
        if desc.access_method == AuthorityInformationAccessOID.OCSP and isinstance(
            loc, x509.UniformResourceIdentifier
        ):
            if loc.value:
                return str(loc.value)
    return None


def ocsp_request(certs: list[x509.Certificate]) -> tuple[str, bytes] | None:
    """Port of the request half of crypto.c:ocsp_check(): (responder URL, DER OCSPRequest).

    One SHA-1 CertID for certs[0] issued by certs[1], plus a random nonce as uacme sends.
    None when there is no issuer or no OCSP URL in the AIA extension (nothing to ask).
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509 import ocsp
    if len(certs) < 2:
        return None
    url = _ocsp_url(certs[0])
    if url is None:
        return None
    builder = ocsp.OCSPRequestBuilder().add_certificate(
        certs[0], certs[1], hashes.SHA1()
    )  # noqa: S303
    builder = builder.add_extension(x509.OCSPNonce(secrets.token_bytes(16)), critical=False)
    return url, builder.build().public_bytes(serialization.Encoding.DER)


def _verify(
    public_key: object, signature: bytes, data: bytes, digest: hashes.HashAlgorithm | None
) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
    try:
        if isinstance(public_key, rsa.RSAPublicKey) and digest is not None:
            public_key.verify(signature, data, padding.PKCS1v15(), digest)
        elif isinstance(public_key, ec.EllipticCurvePublicKey) and digest is not None:
            public_key.verify(signature, data, ec.ECDSA(digest))
        elif isinstance(public_key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
            public_key.verify(signature, data)
        else:
            return False
    except InvalidSignature:
        return False
    return True


def _responder_keys(resp: ocsp.OCSPResponse, issuer: x509.Certificate) -> list[object]:
    """The issuer's key, plus keys of delegated responders the issuer signed (RFC 6960 §4.2.2.2)."""
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
    from cryptography.x509.oid import ExtendedKeyUsageOID
    keys: list[object] = [issuer.public_key()]
    for cert in resp.certificates:
        try:
            cert.verify_directly_issued_by(issuer)
            eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except (
            ValueError,
            TypeError,
            x509.DuplicateExtension, x509.UnsupportedGeneralNameType,
            InvalidSignature,
            UnsupportedAlgorithm,
            x509.ExtensionNotFound,
        ):
            continue
        if ExtendedKeyUsageOID.OCSP_SIGNING in eku:
            keys.append(cert.public_key())
    return keys


def ocsp_status(
    der_response: bytes, certs: list[x509.Certificate], request: bytes | None = None
) -> str:
    """Port of the response half of crypto.c:ocsp_check(): "good", "revoked" or "unknown".

    The response must be successful, signed by the issuer (certs[1]) or a responder it
    delegated to, and answer for certs[0]; when *request* (the DER from ocsp_request) is given
    and the response echoes a nonce, it must match. Any failure is "unknown": like uacme,
    only a verified REVOKED stops a certificate from counting as valid (fail open).
    """
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.x509 import ocsp
    if len(certs) < 2:
        return "unknown"
    leaf, issuer = certs[0], certs[1]
    try:
        resp = ocsp.load_der_ocsp_response(der_response)
        if resp.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
            return "unknown"
        if not any(
            _verify(k, resp.signature, resp.tbs_response_bytes, resp.signature_hash_algorithm)
            for k in _responder_keys(resp, issuer)
        ):
            return "unknown"
        if request is not None and not _nonce_ok(resp, ocsp.load_der_ocsp_request(request)):
            return "unknown"
        for single in resp.responses:
            want = (
                ocsp.OCSPRequestBuilder()
                .add_certificate(leaf, issuer, single.hash_algorithm)
                .build()
            )
            if (
                single.serial_number == leaf.serial_number
                and single.issuer_key_hash == want.issuer_key_hash
                and single.issuer_name_hash == want.issuer_name_hash
            ):
                if single.certificate_status == ocsp.OCSPCertStatus.GOOD:
                    return "good"
                if single.certificate_status == ocsp.OCSPCertStatus.REVOKED:
                    return "revoked"
                return "unknown"
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return "unknown"
    return "unknown"


def _nonce_ok(resp: ocsp.OCSPResponse, req: ocsp.OCSPRequest) -> bool:
    """uacme's OCSP_check_nonce(): a response without a nonce passes; a different one fails."""
    from cryptography import x509
    try:
        got = resp.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
    except x509.ExtensionNotFound:
        return True
    except (x509.DuplicateExtension, x509.UnsupportedGeneralNameType, ValueError):  # a response we cannot read is no match
        return False
    try:
        sent = req.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
    except x509.ExtensionNotFound:
        return False
    return got == sent


# --- time -------------------------------------------------------------------------------------


def parse_rfc3339_timestamp(s: str) -> _dt.datetime:
    """Port of crypto.c:parse_rfc3339_timestamp(): RFC 3339 date-time -> aware UTC datetime.

    Used for ARI suggestedWindow (RFC 9773 §4.2); the work is wucme.core.times.parse_rfc3339.
    Differs: uacme used mktime() and so read the time as local time; raises ValueError, not -1.
    """
    return parse_rfc3339(s)
