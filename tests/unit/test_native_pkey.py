"""wucme's keys on the system's libcrypto (native/pkey.c, wucme._native.pkey) and their twin,
`cryptography`: the same files, JWKs, thumbprints, CSRs and signatures, and the same errors.

Most tests run on both backends (the `backend` fixture: native, or the twin with the logical
name WUCME_NO_NATIVE defined) or hold one against the other.  A key one backend writes must
load in the other, byte for byte; an RSA signature is deterministic, so it must be the same
bytes; ECDSA signatures differ at each signing, so they are verified with `cryptography`.  A
key file the native loader does not take goes to the twin, so a bad file gives the same error
text whichever backend runs (and the file is left as it was).
"""
from __future__ import annotations

import base64
import os
import stat
import subprocess
from pathlib import Path
from typing import Any, Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.native import require_built
import wucme._native.pkey as pk
from wucme import crypto
from wucme.core import der, jws
from wucme.errors import WucmeError
from wucme.repository import Repository

needs_native = pytest.mark.skipif(not pk.HAS_PKEY, reason="wucme._native._pkey not built "
                                  "(libssl-dev; pip install --no-build-isolation -e .)")
SPECS = [("EC", 256), ("EC", 384), ("RSA", 2048)]
PEM_ARGS = (serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


@pytest.fixture(params=["native", "twin"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The backend wucme.crypto uses in the test: "native" or "twin" (WUCME_NO_NATIVE)."""
    if request.param == "native":
        if not pk.HAS_PKEY:
            pytest.skip("wucme._native._pkey not built")
        monkeypatch.delenv("WUCME_NO_NATIVE", raising=False)
    else:
        monkeypatch.setenv("WUCME_NO_NATIVE", "1")
    return str(request.param)


def is_native(key: object) -> bool:
    return isinstance(key, pk.NativeKey)


def crypto_key(key: crypto.PrivateKey) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    """*key* as a `cryptography` key (a NativeKey through its PKCS#8)."""
    return key.to_cryptography() if isinstance(key, pk.NativeKey) else key


def cryptography_pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(*PEM_ARGS)


def test_native_is_the_one_in_use_when_built(monkeypatch: pytest.MonkeyPatch) -> None:
    require_built("pkey", pk.HAS_PKEY, "native keys")
    monkeypatch.delenv("WUCME_NO_NATIVE", raising=False)
    assert pk.backend() is pk.NATIVE and is_native(crypto.key_gen("EC", 256))
    monkeypatch.setenv("WUCME_NO_NATIVE", "1")
    assert pk.native_forced_off() and pk.backend() is None
    assert isinstance(crypto.key_gen("EC", 256), ec.EllipticCurvePrivateKey)
    assert pk.backend(native=True) is pk.NATIVE and pk.backend(native=False) is None


# --- keys made by one load in the other, byte for byte --------------------------------------------


@pytest.mark.parametrize("kind,bits", SPECS + [("RSA", 3072)])
def test_a_key_made_by_either_is_read_by_both(backend: str, kind: str, bits: int, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    key = crypto.key_gen(kind, bits)
    assert is_native(key) == (backend == "native")
    assert jws.key_type(key) == kind and key.key_size == bits
    path = tmp_path / "k.pem"
    crypto.key_save(path, key)
    pem = path.read_bytes()
    assert pem == crypto.key_pem(key) and pem.startswith(b"-----BEGIN PRIVATE KEY-----\n")
    # cryptography reads it, with its full RSA check, and writes the same bytes
    theirs = serialization.load_pem_private_key(pem, None)
    assert isinstance(theirs, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey))
    assert cryptography_pem(theirs) == pem
    assert crypto.key_pem(crypto.key_load(path)) == pem  # uacme's loader, the checked one
    # and wucme's own loader on each backend gives its own kind of key, the same key
    for other in ("native", "twin"):
        if other == "native" and not pk.HAS_PKEY:
            continue
        if other == "native":
            monkeypatch.delenv("WUCME_NO_NATIVE", raising=False)
        else:
            monkeypatch.setenv("WUCME_NO_NATIVE", "1")
        own = crypto.key_load_own(path)
        assert is_native(own) == (other == "native") and crypto.key_pem(own) == pem
        assert jws.jws_thumbprint(own) == jws.jws_thumbprint(key)


@needs_native
@pytest.mark.parametrize("key", [ec.generate_private_key(ec.SECP256R1()),
                                 ec.generate_private_key(ec.SECP384R1()),
                                 rsa.generate_private_key(65537, 2048)], ids=["P-256", "P-384", "RSA 2048"])
def test_the_native_loader_reads_what_cryptography_writes(key: Any) -> None:
    """PKCS#8 (what wucme writes) and the traditional forms (`openssl` 1.x, other tools)."""
    assert pk.NATIVE is not None
    for fmt in (serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL):
        pem = key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())
        native = pk.NATIVE.load_pem(pem)
        assert native is not None, fmt
        assert native.pkcs8_pem() == cryptography_pem(key)
        assert native.public_der() == key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        assert cryptography_pem(native.to_cryptography()) == cryptography_pem(key)


@needs_native
def test_native_rsa_sizes_and_a_key_larger_than_the_first_buffer(monkeypatch: pytest.MonkeyPatch) -> None:
    assert pk.NATIVE is not None
    for bits in (2048, 2056):
        key = pk.NATIVE.generate("RSA", bits)
        assert key is not None and key.key_size == bits and key.kind == "RSA"
    for kind, bits in (("RSA", 1024), ("RSA", 2049), ("RSA", 8200), ("EC", 521), ("DSA", 2048)):
        assert pk.NATIVE.generate(kind, bits) is None  # crypto.key_gen refuses these first
    monkeypatch.setattr(pk, "_PKCS8_CAP", 16)  # pk_pkcs8 asked again with the size it needs
    assert key is not None and key.pkcs8_pem() == cryptography_pem(key.to_cryptography())


# --- JWK, thumbprint, JWS ---------------------------------------------------------------------


@needs_native
@pytest.mark.parametrize("kind,bits", SPECS)
def test_jwk_thumbprint_and_alg_are_the_same_for_both(kind: str, bits: int) -> None:
    assert pk.NATIVE is not None
    native = pk.NATIVE.generate(kind, bits)
    assert native is not None
    twin = native.to_cryptography()
    assert jws.jws_jwk(native) == jws.jws_jwk(twin) == jws.jws_jwk(twin.public_key())
    assert jws.jws_thumbprint(native) == jws.jws_thumbprint(twin)
    assert jws.key_type(native) == jws.key_type(twin) == kind
    assert jws.jws_protected_jwk("n", "https://ca/acct", native) == jws.jws_protected_jwk("n", "https://ca/acct", twin)
    assert jws.jws_protected_kid("n", "u", "k", native) == jws.jws_protected_kid("n", "u", "k", twin)


def _signing_input(body: bytes) -> tuple[bytes, bytes]:
    import json

    from wucme.core.b64 import b64url_decode
    doc = json.loads(body)
    return f"{doc['protected']}.{doc['payload']}".encode(), b64url_decode(doc["signature"])


@needs_native
def test_rsa_signatures_are_the_same_bytes() -> None:
    """PKCS#1 v1.5 is deterministic: the native JWS is cryptography's, byte for byte."""
    assert pk.NATIVE is not None
    native = pk.NATIVE.generate("RSA", 2048)
    assert native is not None
    twin = native.to_cryptography()
    assert isinstance(twin, rsa.RSAPrivateKey)
    for data in (b"", b"x", os.urandom(5000)):
        assert native.sign(data) == twin.sign(data, padding.PKCS1v15(), hashes.SHA256())
    protected = jws.jws_protected_kid("nonce", "https://ca/order", "https://ca/acct/1", native)
    for payload in ({"identifiers": [{"type": "dns", "value": "www.example.org"}]}, None):
        assert jws.jws_encode(protected, payload, native) == jws.jws_encode(protected, payload, twin)


@needs_native
@pytest.mark.parametrize("bits", [256, 384])
def test_ecdsa_signatures_verify_with_cryptography(bits: int) -> None:
    assert pk.NATIVE is not None
    native = pk.NATIVE.generate("EC", bits)
    assert native is not None
    public = native.to_cryptography().public_key()
    digest = hashes.SHA384() if bits == 384 else hashes.SHA256()
    size = bits // 8
    for i in range(20):  # r or s with a leading zero octet turns up now and then
        protected = jws.jws_protected_kid(f"nonce{i}", "https://ca/order", "https://ca/acct/1", native)
        assert protected["alg"] == f"ES{bits}"
        data, signature = _signing_input(jws.jws_encode(protected, {"i": i}, native))
        assert len(signature) == 2 * size
        r, s = int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
        public.verify(encode_dss_signature(r, s), data, ec.ECDSA(digest))  # raises when wrong


def test_ec_decode_reads_only_strict_der() -> None:
    assert jws.ec_decode(encode_dss_signature(0, 1), 1) == b"\x00\x01"
    for bad in (b"", b"\x30\x00", b"\x30\x03\x02\x01\x01", encode_dss_signature(1, 2) + b"\x00",
                b"\x30\x06\x02\x01\x01\x02\x01\xff",  # s negative
                b"\x30\x07\x02\x02\x00\x01\x02\x01\x01",  # r not in its shortest form
                b"\x30\x06\x02\x01\x01\x04\x01\x01"):  # s not an INTEGER
        with pytest.raises(ValueError):
            jws.ec_decode(bad, 32)


# --- CSRs -------------------------------------------------------------------------------------


@needs_native
@pytest.mark.parametrize("kind,bits", SPECS)
@pytest.mark.parametrize("names,status_req,no_key_usage", [
    (["www.example.org"], False, False),
    (["192.0.2.1", "bücher.example", "a" * 60 + ".example.org"], True, False),
    ([f"n{i}.example.org" for i in range(10)], False, True)])
def test_csr_is_the_same_for_both_but_the_ecdsa_signature(kind: str, bits: int, names: list[str],
                                                          status_req: bool, no_key_usage: bool) -> None:
    assert pk.NATIVE is not None
    native = pk.NATIVE.generate(kind, bits)
    assert native is not None
    twin = native.to_cryptography()
    mine, theirs = (crypto.csr_gen(names, status_req, no_key_usage, k) for k in (native, twin))
    if kind == "RSA":
        assert mine == theirs
    else:  # the request and the signature algorithm the same, the signature not
        assert der.elements(der.tlvs(theirs)[0][1])[:2] == der.elements(der.tlvs(mine)[0][1])[:2]
        assert mine != theirs
    csr = x509.load_der_x509_csr(mine)
    assert csr.is_signature_valid
    assert isinstance(csr.signature_hash_algorithm, hashes.SHA384 if bits == 384 else hashes.SHA256)


# --- bad key files: the same error on both backends, the file left as it was -------------------


def _openssl(*args: str, stdin: bytes = b"") -> bytes:
    return subprocess.run(["openssl", *args], input=stdin, capture_output=True, check=True, timeout=60).stdout


def _pem(label: str, body: bytes) -> bytes:
    return pk.pem(label, body)


def _wrong_point() -> bytes:
    """A P-256 PKCS#8 key whose public point is another key's."""
    a, b = (ec.generate_private_key(ec.SECP256R1()) for _ in range(2))
    da, db = (k.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()) for k in (a, b))
    pa, pb = (k.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
              for k in (a, b))
    assert pa in da
    return _pem("PRIVATE KEY", da.replace(pa, pb))


EC_KEY = ec.generate_private_key(ec.SECP256R1())
BAD_FILES: dict[str, Callable[[], bytes]] = {
    "garbage": lambda: b"garbage",
    "empty": lambda: b"",
    "truncated": lambda: cryptography_pem(EC_KEY)[:120],
    "encrypted PKCS#8": lambda: EC_KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                     serialization.BestAvailableEncryption(b"secret")),
    "encrypted traditional": lambda: EC_KEY.private_bytes(serialization.Encoding.PEM,
                                                          serialization.PrivateFormat.TraditionalOpenSSL,
                                                          serialization.BestAvailableEncryption(b"secret")),
    "DER": lambda: EC_KEY.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()),
    "a certificate": lambda: _openssl("req", "-x509", "-subj", "/CN=x", "-days", "1", "-key", "/dev/stdin",
                                      stdin=cryptography_pem(EC_KEY)),
    "P-521": lambda: cryptography_pem(ec.generate_private_key(ec.SECP521R1())),
    "secp256k1": lambda: cryptography_pem(ec.generate_private_key(ec.SECP256K1())),
    "RSA 1024": lambda: cryptography_pem(rsa.generate_private_key(65537, 1024)),
    "Ed25519": lambda: ed25519.Ed25519PrivateKey.generate().private_bytes(*PEM_ARGS),
    "explicit curve": lambda: _openssl("pkcs8", "-topk8", "-nocrypt", stdin=_openssl(
        "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-param_enc", "explicit")),
    "three primes": lambda: _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                                     "-pkeyopt", "rsa_keygen_primes:3"),
    "wrong public point": _wrong_point,
    "CRLF lines": lambda: cryptography_pem(EC_KEY).replace(b"\n", b"\r\n"),
    "76-character lines": lambda: (b"-----BEGIN PRIVATE KEY-----\n" + base64.encodebytes(EC_KEY.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        + b"-----END PRIVATE KEY-----\n"),
    "text before": lambda: b"a key\n" + cryptography_pem(EC_KEY),
    "EC key without its point": lambda: _pem("EC PRIVATE KEY", der.tlv(der.SEQUENCE, b"\x02\x01\x01" + der.tlv(
        der.OCTET_STRING, EC_KEY.private_numbers().private_value.to_bytes(32, "big"))
        + der.tlv(der.CONTEXT_0, der.oid("1.2.840.10045.3.1.7")))),
}
#: Which of them no backend takes, and a piece of the error each gives.
REFUSED = {"garbage": "is not a PEM private key", "empty": "is not a PEM private key",
           "truncated": "is not a PEM private key", "encrypted PKCS#8": "is encrypted",
           "encrypted traditional": "is encrypted", "DER": "is not a PEM private key",
           "a certificate": "is not a PEM private key", "P-521": "EC curve secp521r1 is not P-256 or P-384",
           "secp256k1": "EC curve secp256k1 is not P-256 or P-384", "RSA 1024": "RSA key size 1024",
           "Ed25519": "only RSA and EC keys are supported"}


def _outcome(load: Callable[[Path], Any], path: Path) -> tuple[str, bytes | str]:
    try:
        key = load(path)
    except (crypto.CryptoError, WucmeError) as e:
        return "error", e.text
    return "key", crypto.key_pem(key)


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_an_unusual_key_file_means_the_same_on_both_backends(name: str, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """crypto.key_load_own() (and the repository's account key) native and twin: the same key
    or the same error text, and the file is never changed."""
    data = BAD_FILES[name]()
    repo = Repository(tmp_path / "here")
    repo.path.mkdir()
    path = repo.account_key_path
    path.write_bytes(data)
    outcomes = {}
    for b in ("native", "twin") if pk.HAS_PKEY else ("twin",):
        if b == "native":
            monkeypatch.delenv("WUCME_NO_NATIVE", raising=False)
            assert pk.NATIVE is not None and pk.NATIVE.load_pem(data) is None  # the twin decides
        else:
            monkeypatch.setenv("WUCME_NO_NATIVE", "1")
        outcomes[b] = (_outcome(crypto.key_load_own, path), _outcome(lambda _p: repo.load_account_key(), path))
        assert path.read_bytes() == data
    first = next(iter(outcomes.values()))
    assert all(o == first for o in outcomes.values()), outcomes
    if name in REFUSED:
        (kind, text), (repo_kind, repo_text) = first
        assert kind == repo_kind == "error" and REFUSED[name] in str(text), text
        assert str(text) in str(repo_text) and "never replaced silently" in str(repo_text)


@needs_native
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(["P-256", "P-384", "RSA"]), form=st.sampled_from(["PKCS8", "traditional"]),
       edits=st.lists(st.tuples(st.integers(0, 2000), st.sampled_from(["flip", "drop", "insert", "cut"]),
                                st.integers(0, 255)), min_size=1, max_size=3))
def test_a_mutated_key_the_native_loader_takes_is_the_twins_key(kind: str, form: str,
                                                                edits: list[tuple[int, str, int]],
                                                                monkeypatch: pytest.MonkeyPatch,
                                                                tmp_path: Path) -> None:
    """The native loader never takes what `cryptography` would read otherwise: a key file
    changed at random is refused by it (then the twin decides), or is a key the twin reads the same."""
    assert pk.NATIVE is not None
    key = MUTATE[kind]
    label, body = ("PRIVATE KEY", MUTATE_DER[kind][0]) if form == "PKCS8" else (
        "RSA PRIVATE KEY" if kind == "RSA" else "EC PRIVATE KEY", MUTATE_DER[kind][1])
    data = bytearray(body)
    for at, how, value in edits:
        at %= len(data) + 1
        if how == "flip" and at < len(data):
            data[at] ^= value or 1
        elif how == "drop" and at < len(data):
            del data[at]
        elif how == "insert":
            data.insert(at, value)
        elif how == "cut":
            del data[at:]
    pem = _pem(label, bytes(data))
    native = pk.NATIVE.load_pem(pem)
    if native is None:
        return
    path = tmp_path / "k.pem"
    path.write_bytes(pem)
    monkeypatch.setenv("WUCME_NO_NATIVE", "1")
    assert crypto.key_pem(crypto.key_load_own(path)) == native.pkcs8_pem()
    if bytes(data) == body:  # the changes undid each other
        assert native.pkcs8_pem() == cryptography_pem(key)


MUTATE = {"P-256": ec.generate_private_key(ec.SECP256R1()), "P-384": ec.generate_private_key(ec.SECP384R1()),
          "RSA": rsa.generate_private_key(65537, 2048)}
MUTATE_DER = {k: tuple(v.private_bytes(serialization.Encoding.DER, f, serialization.NoEncryption())
                       for f in (serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL))
              for k, v in MUTATE.items()}


@needs_native
def test_the_c_functions_check_their_arguments() -> None:
    from wucme._native._pkey import ffi, lib
    assert lib.pk_generate(lib.PK_EC, 521) == ffi.NULL and lib.pk_generate(3, 2048) == ffi.NULL
    assert lib.pk_generate(lib.PK_RSA, 2047) == ffi.NULL and lib.pk_generate(lib.PK_RSA, 8200) == ffi.NULL
    good = MUTATE_DER["P-256"][0]
    assert lib.pk_load(lib.PK_PKCS8, good, 0) == ffi.NULL
    assert lib.pk_load(lib.PK_PKCS8, good, len(good) - 1) == ffi.NULL
    assert lib.pk_load(lib.PK_PKCS8, good + b"\0", len(good) + 1) == ffi.NULL  # nothing after the key
    assert lib.pk_load(lib.PK_TRAD_RSA, good, len(good)) == ffi.NULL  # the form must be the DER's
    assert lib.pk_load(9, good, len(good)) == ffi.NULL
    assert lib.pk_load(lib.PK_TRAD_RSA, MUTATE_DER["P-256"][1], len(MUTATE_DER["P-256"][1])) == ffi.NULL
    key = ffi.gc(lib.pk_load(lib.PK_PKCS8, good, len(good)), lib.pk_free)
    assert key != ffi.NULL and lib.pk_kind(key) == lib.PK_EC and lib.pk_bits(key) == 256
    assert lib.pk_pkcs8(key, ffi.NULL, 0) == len(good)  # the length it needs, nothing written
    small = ffi.new("unsigned char[]", 8)
    assert lib.pk_spki(key, small, 8) == 91 and bytes(small) == bytes(8)
    assert lib.pk_sign(key, b"data", 4, small, 8) == 72  # the longest P-256 signature, not signed
    assert lib.pk_pkcs8(ffi.NULL, small, 8) == lib.PK_EARG == lib.pk_sign(ffi.NULL, b"", 0, small, 8)


# --- files: 0600 and atomic, whichever key ---------------------------------------------------


def test_keys_are_written_0600_and_atomically(backend: str, tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    path.write_bytes(b"old")
    inode = path.stat().st_ino
    key = crypto.key_gen("EC", 256)
    crypto.key_save(path, key)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.stat().st_ino != inode
    assert path.read_bytes() == crypto.key_pem(key) and sorted(os.listdir(tmp_path)) == ["k.pem"]
    crypto.key_save(path, key, 0o400)
    assert stat.S_IMODE(path.stat().st_mode) == 0o400
    repo = Repository(tmp_path / "here")
    repo.ensure_writable()
    repo.save_account_key(key)
    assert stat.S_IMODE(repo.account_key_path.stat().st_mode) == 0o600
    assert crypto.key_pem(repo.load_account_key()) == crypto.key_pem(key)
    assert is_native(repo.load_account_key()) == (backend == "native")
