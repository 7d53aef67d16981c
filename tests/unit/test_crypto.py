"""Unit tests of wucme.crypto: keys on disk, CSRs, certificate inspection, ARI ids, OCSP, RFC 3339."""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from wucme import crypto
from wucme.core.b64 import b64url_decode, b64url_encode

UTC = dt.timezone.utc
NOW = dt.datetime.now(UTC).replace(microsecond=0)
OCSP_URL = "http://127.0.0.1:9/ocsp"
# RFC 9773 §4.1 example: keyIdentifier 69:88:5B:..., serial 0x87654321 (high bit set).
ARI_KEYID = bytes.fromhex("69885B6B87464041E1B37B847BA0AE2CDE01C8D4")
ARI_SERIAL = 0x87654321


# --- a small CA ---------------------------------------------------------------------------------


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


@dataclass
class Pki:
    ca_key: ec.EllipticCurvePrivateKey
    ca: x509.Certificate
    leaf_key: ec.EllipticCurvePrivateKey
    leaf: x509.Certificate

    def pem(self) -> bytes:
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (self.leaf, self.ca))


def _issue(
    ca_key: ec.EllipticCurvePrivateKey,
    ca: x509.Certificate | None,
    key: ec.EllipticCurvePrivateKey,
    cn: str,
    serial: int,
    *,
    sans: list[x509.GeneralName] | None = None,
    ocsp_url: str | None = None,
    aki: bytes | None = None,
    eku: list[x509.ObjectIdentifier] | None = None,
    days: int = 90,
) -> x509.Certificate:
    issuer = ca.subject if ca is not None else _name(cn)
    b = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=days))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if ca is None:
        b = b.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    elif aki is not None:
        b = b.add_extension(x509.AuthorityKeyIdentifier(aki, None, None), critical=False)
    else:
        b = b.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    if ocsp_url:
        desc = x509.AccessDescription(
            x509.AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp_url)
        )
        b = b.add_extension(x509.AuthorityInformationAccess([desc]), critical=False)
    if eku:
        b = b.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    return b.sign(ca_key, hashes.SHA256())


@pytest.fixture(scope="module")
def pki() -> Pki:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _issue(ca_key, None, ca_key, "Test CA", 1, days=3650)
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = [
        x509.DNSName("www.example.org"),
        x509.DNSName("Example.ORG"),
        x509.IPAddress(ipaddress.ip_address("192.0.2.7")),
    ]
    leaf = _issue(
        ca_key, ca, leaf_key, "www.example.org", (1 << 127) | 12345, sans=sans, ocsp_url=OCSP_URL
    )
    return Pki(ca_key, ca, leaf_key, leaf)


# --- keys ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("ktype,bits", [("RSA", 2048), ("EC", 256), ("EC", 384)])
def test_key_load_generates_then_reloads(tmp_path: Path, ktype: str, bits: int) -> None:
    path = tmp_path / "key.pem"
    key = crypto.key_load(path, ktype, bits)
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8
    again = crypto.key_load(path)
    assert again.private_numbers() == key.private_numbers()
    if ktype == "RSA":
        assert isinstance(again, rsa.RSAPrivateKey) and again.key_size == bits
    else:
        assert isinstance(again, ec.EllipticCurvePrivateKey) and again.curve.key_size == bits


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_key_mode_under_umask_zero(tmp_path: Path, mode: int) -> None:
    old = os.umask(0)
    try:
        crypto.key_load(tmp_path / "k.pem", "EC", 256, mode=mode)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "k.pem").st_mode) == mode
    assert [p.name for p in tmp_path.iterdir()] == ["k.pem"]


def test_key_load_missing_without_type(tmp_path: Path) -> None:
    with pytest.raises(crypto.CryptoError, match="does not exist"):
        crypto.key_load(tmp_path / "absent.pem")
    assert not (tmp_path / "absent.pem").exists()


def _der_key() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _encrypted_key() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    enc = serialization.BestAvailableEncryption(b"secret")
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)


@pytest.mark.parametrize(
    "content",
    [
        b"garbage\n",
        b"",
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        _der_key(),
        _encrypted_key(),
    ],
    ids=["garbage", "empty", "bad-pem", "der", "encrypted"],
)
def test_key_load_bad_file_not_overwritten(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "key.pem"
    path.write_bytes(content)
    with pytest.raises(crypto.CryptoError) as info:
        crypto.key_load(path, "EC", 256)
    assert path.read_bytes() == content
    assert "secret" not in str(info.value)


def test_key_load_refuses_weak_and_foreign_keys(tmp_path: Path) -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    crypto.key_save(tmp_path / "weak.pem", weak)
    with pytest.raises(crypto.CryptoError, match="RSA key size 1024"):
        crypto.key_load(tmp_path / "weak.pem", "RSA", 2048)
    p521 = ec.generate_private_key(ec.SECP521R1())
    crypto.key_save(tmp_path / "p521.pem", p521)
    with pytest.raises(crypto.CryptoError, match="secp521r1"):
        crypto.key_load(tmp_path / "p521.pem")


# --- EC keys as GnuTLS and old mbedTLS write them (minimal-integer private value) ----------------


def _tlv(tag: int, content: bytes) -> bytes:
    n = len(content)
    size = bytes([n]) if n < 0x80 else bytes([0x80 | ((n.bit_length() + 7) // 8)]) + n.to_bytes(
        (n.bit_length() + 7) // 8, "big")
    return bytes([tag]) + size + content


_CURVE_OID = {256: bytes.fromhex("2a8648ce3d030107"), 384: bytes.fromhex("2b81040022")}


def _sec1(key: ec.EllipticCurvePrivateKey, value: bytes, public: bool = True) -> bytes:
    """ECPrivateKey (RFC 5915 §3) with the private OCTET STRING given byte for byte."""
    bits = key.curve.key_size
    point = key.public_key().public_bytes(serialization.Encoding.X962,
                                          serialization.PublicFormat.UncompressedPoint)
    body = _tlv(0x02, b"\x01") + _tlv(0x04, value) + _tlv(0xA0, _tlv(0x06, _CURVE_OID[bits]))
    if public:
        body += _tlv(0xA1, _tlv(0x03, b"\x00" + point))
    return _tlv(0x30, body)


def _pkcs8(key: ec.EllipticCurvePrivateKey, value: bytes) -> bytes:
    alg = _tlv(0x30, _tlv(0x06, bytes.fromhex("2a8648ce3d0201"))
               + _tlv(0x06, _CURVE_OID[key.curve.key_size]))
    return _tlv(0x30, _tlv(0x02, b"\x00") + alg + _tlv(0x04, _sec1(key, value)))


def _pem(label: str, der: bytes) -> bytes:
    b = base64.encodebytes(der).decode()
    return f"-----BEGIN {label}-----\n{b}-----END {label}-----\n".encode()


def _key_with_value(curve: ec.EllipticCurve, pred: object) -> ec.EllipticCurvePrivateKey:
    while True:
        k = ec.generate_private_key(curve)
        if pred(k.private_numbers().private_value):  # type: ignore[operator]
            return k


@pytest.mark.parametrize("bits", [256, 384])
@pytest.mark.parametrize("form", ["sec1", "pkcs8", "sec1-no-public"])
@pytest.mark.parametrize("shape", ["high-bit, leading zero", "short, leading zero dropped"])
def test_key_load_reads_minimal_integer_ec_keys(tmp_path: Path, bits: int, form: str,
                                                shape: str) -> None:
    """GnuTLS writes a P-256 value with its high bit set as 33 bytes (0x00 first) and one
    starting with a zero byte as 31; both load as the same key, and the file stays as it is."""
    curve = ec.SECP256R1() if bits == 256 else ec.SECP384R1()
    size = bits // 8
    if shape.startswith("high"):
        key = _key_with_value(curve, lambda v: v >> (bits - 1))
        value = b"\x00" + key.private_numbers().private_value.to_bytes(size, "big")
    else:
        key = _key_with_value(curve, lambda v: v < 1 << (bits - 8))
        value = key.private_numbers().private_value.to_bytes(size, "big").lstrip(b"\x00")
    assert len(value) != size
    if form == "pkcs8":
        pem = _pem("PRIVATE KEY", _pkcs8(key, value))
    else:
        pem = _pem("EC PRIVATE KEY", _sec1(key, value, public=form == "sec1"))
    with pytest.raises(ValueError):
        serialization.load_pem_private_key(pem, None)  # why this loader exists
    path = tmp_path / "key.pem"
    path.write_bytes(pem)
    loaded = crypto.key_load(path, "EC", bits)
    assert isinstance(loaded, ec.EllipticCurvePrivateKey)
    assert loaded.private_numbers() == key.private_numbers()
    assert path.read_bytes() == pem


def test_key_load_refuses_a_minimal_integer_key_whose_public_key_differs(tmp_path: Path) -> None:
    key = _key_with_value(ec.SECP256R1(), lambda v: v >> 255)
    other = ec.generate_private_key(ec.SECP256R1())
    value = b"\x00" + key.private_numbers().private_value.to_bytes(32, "big")
    der = _sec1(key, value)
    point = key.public_key().public_bytes(serialization.Encoding.X962,
                                          serialization.PublicFormat.UncompressedPoint)
    theirs = other.public_key().public_bytes(serialization.Encoding.X962,
                                             serialization.PublicFormat.UncompressedPoint)
    path = tmp_path / "key.pem"
    path.write_bytes(_pem("EC PRIVATE KEY", der.replace(point, theirs)))
    with pytest.raises(crypto.CryptoError, match="is not a PEM private key"):
        crypto.key_load(path)


@pytest.mark.parametrize("der", [b"", b"\x30\x82\xff\xff", b"\x30\x03\x02\x01\x01",
                                 b"\x30\x06\x02\x01\x01\x04\x01\x00"],
                         ids=["empty", "overlong", "no-value", "zero-value"])
def test_key_load_lenient_path_refuses_broken_der(tmp_path: Path, der: bytes) -> None:
    path = tmp_path / "key.pem"
    path.write_bytes(_pem("EC PRIVATE KEY", der))
    with pytest.raises(crypto.CryptoError, match="is not a PEM private key"):
        crypto.key_load(path, "EC", 256)
    assert path.read_bytes() == _pem("EC PRIVATE KEY", der)


@pytest.mark.parametrize(
    "ktype,bits", [("RSA", 1024), ("RSA", 2049), ("RSA", 16384), ("EC", 521), ("DSA", 2048)]
)
def test_key_gen_rejects(ktype: str, bits: int) -> None:
    with pytest.raises(crypto.CryptoError):
        crypto.key_gen(ktype, bits)


def test_key_save_replaces_atomically(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    first = crypto.key_load(path, "EC", 256)
    second = crypto.key_gen("EC", 384)
    crypto.key_save(path, second)
    assert crypto.key_pem(crypto.key_load(path)) == crypto.key_pem(second) != crypto.key_pem(first)
    assert [p.name for p in tmp_path.iterdir()] == ["k.pem"]


def test_key_save_failure_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "dir.pem"
    target.mkdir()  # rename over a directory fails after the temporary file is written
    with pytest.raises(crypto.CryptoError):
        crypto.key_save(target, crypto.key_gen("EC", 256))
    assert [p.name for p in tmp_path.iterdir()] == ["dir.pem"] and target.is_dir()


def test_key_save_failed_rename_keeps_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "k.pem"
    crypto.key_load(path, "EC", 256)
    before = path.read_bytes()

    def refuse(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(crypto.os, "replace", refuse)
    with pytest.raises(crypto.CryptoError, match="No space"):
        crypto.key_save(path, crypto.key_gen("EC", 256))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["k.pem"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_key_save_unwritable_directory(tmp_path: Path) -> None:
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o500)
    try:
        with pytest.raises(crypto.CryptoError):
            crypto.key_load(d / "k.pem", "EC", 256)
        assert list(d.iterdir()) == []
    finally:
        d.chmod(0o700)


def test_key_save_replaces_symlink_not_target(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep me")
    link = tmp_path / "k.pem"
    link.symlink_to(victim)
    crypto.key_save(link, crypto.key_gen("EC", 256))
    assert victim.read_bytes() == b"keep me"
    assert not link.is_symlink() and crypto.key_load(link)


# --- identifiers and CSRs -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "s,expect",
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("2001:db8::7", True),
        ("example.org", False),
        ("1.2.3", False),
        ("", False),
    ],
)
def test_is_ip(s: str, expect: bool) -> None:
    assert crypto.is_ip(s) is expect


def _csr(der: bytes) -> x509.CertificateSigningRequest:
    csr = x509.load_der_x509_csr(der)
    assert csr.is_signature_valid
    return csr


def _san(csr: x509.CertificateSigningRequest) -> x509.SubjectAlternativeName:
    return csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value


def test_csr_gen_rsa_contents() -> None:
    key = crypto.key_gen("RSA", 2048)
    csr = _csr(
        crypto.csr_gen(
            ["www.example.org", "mail.example.org", "192.0.2.1", "2001:db8::1"], False, False, key
        )
    )
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "www.example.org"
    san = _san(csr)
    assert san.get_values_for_type(x509.DNSName) == ["www.example.org", "mail.example.org"]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("192.0.2.1"),
        ipaddress.ip_address("2001:db8::1"),
    ]
    ku = csr.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature and ku.value.key_encipherment
    assert isinstance(csr.signature_hash_algorithm, hashes.SHA256)
    with pytest.raises(x509.ExtensionNotFound):
        csr.extensions.get_extension_for_class(x509.TLSFeature)


def test_csr_gen_ec_must_staple_and_no_cn_for_ip() -> None:
    key = crypto.key_gen("EC", 256)
    csr = _csr(crypto.csr_gen(["192.0.2.9", "a.example.org"], True, False, key))
    assert len(csr.subject) == 0
    ku = csr.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and not ku.key_encipherment
    tls = csr.extensions.get_extension_for_class(x509.TLSFeature).value
    assert list(tls) == [x509.TLSFeatureType.status_request]
    assert isinstance(csr.signature_hash_algorithm, hashes.SHA256)


def test_csr_gen_p384_sha384_and_no_key_usage() -> None:
    key = crypto.key_gen("EC", 384)
    csr = _csr(crypto.csr_gen(["b.example.org"], False, True, key))
    assert isinstance(csr.signature_hash_algorithm, hashes.SHA384)
    with pytest.raises(x509.ExtensionNotFound):
        csr.extensions.get_extension_for_class(x509.KeyUsage)
    assert _san(csr).get_values_for_type(x509.DNSName) == ["b.example.org"]


def test_csr_gen_idn_and_long_cn() -> None:
    key = crypto.key_gen("EC", 256)
    long_name = "a" * 60 + ".example.org"
    csr = _csr(crypto.csr_gen(["bücher.example", long_name], False, False, key))
    assert (
        csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "xn--bcher-kva.example"
    )
    csr = _csr(crypto.csr_gen([long_name], False, False, key))
    assert len(csr.subject) == 0 and _san(csr).get_values_for_type(x509.DNSName) == [long_name]
    with pytest.raises(crypto.CryptoError):
        crypto.csr_gen([], False, False, key)


def _write_csr(path: Path, der: bytes) -> None:
    pem = x509.load_der_x509_csr(der).public_bytes(serialization.Encoding.PEM)
    path.write_bytes(pem)


def test_csr_load_roundtrip_and_dedup(tmp_path: Path) -> None:
    key = crypto.key_gen("EC", 256)
    der = crypto.csr_gen(
        ["www.example.org", "WWW.Example.ORG", "a.example.org", "10.0.0.1"], False, False, key
    )
    _write_csr(tmp_path / "req.pem", der)
    got, names = crypto.csr_load(tmp_path / "req.pem")
    assert got == der
    assert names == ["www.example.org", "a.example.org", "10.0.0.1"]


@pytest.mark.parametrize(
    "content",
    [
        b"garbage",
        b"",
        b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
    ],
)
def test_csr_load_garbage(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "req.pem").write_bytes(content)
    with pytest.raises(crypto.CryptoError):
        crypto.csr_load(tmp_path / "req.pem")


def test_csr_load_bad_signature_and_missing(tmp_path: Path) -> None:
    der = crypto.csr_gen(["www.example.org"], False, False, crypto.key_gen("EC", 256))
    tampered = der.replace(b"www.example.org", b"www.examplf.org")
    assert tampered != der
    _write_csr(tmp_path / "req.pem", tampered)
    with pytest.raises(crypto.CryptoError, match="signature"):
        crypto.csr_load(tmp_path / "req.pem")
    with pytest.raises(crypto.CryptoError):
        crypto.csr_load(tmp_path / "absent.pem")


# --- certificates -------------------------------------------------------------------------------


def test_cert_load(tmp_path: Path, pki: Pki) -> None:
    key_pem = pki.leaf_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (tmp_path / "c.pem").write_bytes(pki.pem() + key_pem)  # wucme's C file: chain then key
    assert crypto.cert_load(tmp_path / "c.pem") == [pki.leaf, pki.ca]
    assert crypto.cert_load(str(tmp_path / "c.pem"))[0] == pki.leaf
    assert crypto.cert_load(pki.pem()) == [pki.leaf, pki.ca]
    assert crypto.cert_load(tmp_path / "absent.pem") == []
    (tmp_path / "bad.pem").write_bytes(b"not a certificate")
    with pytest.raises(crypto.CryptoError):
        crypto.cert_load(tmp_path / "bad.pem")
    with pytest.raises(crypto.CryptoError):
        crypto.cert_load(pki.pem()[:300] + b"\n-----END CERTIFICATE-----\n")


def test_cert_match(pki: Pki) -> None:
    pem = pki.pem()
    fp = pki.leaf.fingerprint(hashes.SHA256())
    assert crypto.cert_match(pem, fp[:4])
    assert crypto.cert_match(pem, fp)
    assert crypto.cert_match(pem, pki.ca.fingerprint(hashes.SHA256())[:3])
    aki = pki.leaf.extensions.get_extension_for_class(
        x509.AuthorityKeyIdentifier
    ).value.key_identifier
    assert aki is not None and crypto.cert_match(pem, aki[:5])
    other = bytes(b ^ 0xFF for b in fp[:4])
    assert other != aki[:4] and not crypto.cert_match(pem, other)
    assert not crypto.cert_match(pem, b"")
    assert not crypto.cert_match(b"garbage", fp[:4])


def test_crt_ari_url_rfc9773_example(pki: Pki) -> None:
    cert = _issue(pki.ca_key, pki.ca, pki.leaf_key, "ari.example", ARI_SERIAL, aki=ARI_KEYID)
    url = crypto.crt_ari_url(cert, "https://ca.example/renewal-info")
    assert url == "https://ca.example/renewal-info/aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"
    assert crypto.crt_ari_url(cert, "https://ca.example/renewal-info/") == url


def test_crt_ari_url_serials(pki: Pki) -> None:
    aki = pki.leaf.extensions.get_extension_for_class(
        x509.AuthorityKeyIdentifier
    ).value.key_identifier
    assert aki is not None
    keyid = b64url_encode(aki)
    serial = crypto.crt_ari_url(pki.leaf, "https://ca.example/ari").split(".")[-1]
    raw = b64url_decode(serial)
    assert raw[0] == 0 and len(raw) == 17 and int.from_bytes(raw, "big") == pki.leaf.serial_number
    low = _issue(pki.ca_key, pki.ca, pki.leaf_key, "low.example", 0x7F01)
    low_serial = b64url_encode(bytes([0x7F, 0x01]))  # high bit clear: no leading zero
    assert (
        crypto.crt_ari_url(low, "https://ca.example/ari")
        == f"https://ca.example/ari/{keyid}.{low_serial}"
    )
    with pytest.raises(crypto.CryptoError):
        crypto.crt_ari_url(pki.ca, "https://ca.example/ari")  # a root has no AKI


def test_cert_names_and_days_left(pki: Pki) -> None:
    assert crypto.cert_names(pki.leaf) == ["www.example.org", "example.org", "192.0.2.7"]
    days = crypto.cert_days_left(pki.leaf)
    assert 89.9 < days < 90.0
    later = NOW + dt.timedelta(days=100)
    assert crypto.cert_days_left(pki.leaf, later) == pytest.approx(-10.0)


# --- OCSP ---------------------------------------------------------------------------------------


def _ocsp_response(
    pki: Pki,
    status: ocsp.OCSPCertStatus,
    signer_key: ec.EllipticCurvePrivateKey | None = None,
    signer_cert: x509.Certificate | None = None,
    nonce: bytes | None = None,
    include_signer: bool = True,
) -> bytes:
    b = ocsp.OCSPResponseBuilder().add_response(
        cert=pki.leaf,
        issuer=pki.ca,
        algorithm=hashes.SHA1(),
        cert_status=status,
        this_update=NOW,
        next_update=NOW + dt.timedelta(days=3),
        revocation_time=(
            NOW - dt.timedelta(hours=1) if status == ocsp.OCSPCertStatus.REVOKED else None
        ),
        revocation_reason=(
            x509.ReasonFlags.key_compromise if status == ocsp.OCSPCertStatus.REVOKED else None
        ),
    )
    responder = signer_cert or pki.ca
    b = b.responder_id(ocsp.OCSPResponderEncoding.HASH, responder)
    if signer_cert is not None and include_signer:
        b = b.certificates([signer_cert])
    if nonce is not None:
        b = b.add_extension(x509.OCSPNonce(nonce), critical=False)
    resp = b.sign(signer_key or pki.ca_key, hashes.SHA256())
    return resp.public_bytes(serialization.Encoding.DER)


def test_ocsp_request(pki: Pki) -> None:
    got = crypto.ocsp_request([pki.leaf, pki.ca])
    assert got is not None
    url, der = got
    assert url == OCSP_URL
    req = ocsp.load_der_ocsp_request(der)
    assert req.serial_number == pki.leaf.serial_number
    assert isinstance(req.hash_algorithm, hashes.SHA1)
    assert len(req.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce) == 16
    assert crypto.ocsp_request([pki.leaf]) is None
    assert crypto.ocsp_request([pki.ca, pki.ca]) is None  # no AIA


def test_ocsp_status_good_and_revoked(pki: Pki) -> None:
    certs = [pki.leaf, pki.ca]
    assert crypto.ocsp_status(_ocsp_response(pki, ocsp.OCSPCertStatus.GOOD), certs) == "good"
    assert crypto.ocsp_status(_ocsp_response(pki, ocsp.OCSPCertStatus.REVOKED), certs) == "revoked"
    assert crypto.ocsp_status(_ocsp_response(pki, ocsp.OCSPCertStatus.UNKNOWN), certs) == "unknown"


def test_ocsp_status_wrong_signer_is_unknown(pki: Pki) -> None:
    rogue = ec.generate_private_key(ec.SECP256R1())
    # An impostor CA: same name as the issuer, another key, responder id by key hash of the impostor.
    impostor = _issue(rogue, None, rogue, "Test CA", 1, days=3650)
    assert impostor.subject == pki.ca.subject
    revoked = _ocsp_response(
        pki,
        ocsp.OCSPCertStatus.REVOKED,
        signer_key=rogue,
        signer_cert=impostor,
        include_signer=False,
    )
    assert crypto.ocsp_status(revoked, [pki.leaf, pki.ca]) == "unknown"
    parsed = ocsp.load_der_ocsp_response(
        revoked
    )  # sanity: well formed, validly signed by the rogue key
    rogue.public_key().verify(
        parsed.signature, parsed.tbs_response_bytes, ec.ECDSA(hashes.SHA256())
    )
    assert parsed.certificate_status == ocsp.OCSPCertStatus.REVOKED
    # A genuine response with one bit of its signature flipped (the signature ends the DER).
    genuine = _ocsp_response(pki, ocsp.OCSPCertStatus.REVOKED)
    assert crypto.ocsp_status(genuine, [pki.leaf, pki.ca]) == "revoked"
    assert (
        crypto.ocsp_status(genuine[:-1] + bytes([genuine[-1] ^ 1]), [pki.leaf, pki.ca]) == "unknown"
    )
    # A self-made "responder" certificate for the rogue key, not issued by the CA, is no better.
    rogue_cert = _issue(rogue, None, rogue, "Rogue", 5, eku=[ExtendedKeyUsageOID.OCSP_SIGNING])
    revoked = _ocsp_response(
        pki, ocsp.OCSPCertStatus.REVOKED, signer_key=rogue, signer_cert=rogue_cert
    )
    assert crypto.ocsp_status(revoked, [pki.leaf, pki.ca]) == "unknown"


def test_ocsp_status_delegated_responder(pki: Pki) -> None:
    rkey = ec.generate_private_key(ec.SECP256R1())
    delegated = _issue(pki.ca_key, pki.ca, rkey, "OCSP", 77, eku=[ExtendedKeyUsageOID.OCSP_SIGNING])
    der = _ocsp_response(pki, ocsp.OCSPCertStatus.REVOKED, signer_key=rkey, signer_cert=delegated)
    assert crypto.ocsp_status(der, [pki.leaf, pki.ca]) == "revoked"
    # Issued by the CA but without the OCSP-signing purpose: not a responder.
    plain = _issue(pki.ca_key, pki.ca, rkey, "Not OCSP", 78)
    der = _ocsp_response(pki, ocsp.OCSPCertStatus.REVOKED, signer_key=rkey, signer_cert=plain)
    assert crypto.ocsp_status(der, [pki.leaf, pki.ca]) == "unknown"


def test_ocsp_status_other_cert_and_junk(pki: Pki) -> None:
    other = _issue(pki.ca_key, pki.ca, pki.leaf_key, "other.example", 999)
    der = _ocsp_response(pki, ocsp.OCSPCertStatus.REVOKED)
    assert crypto.ocsp_status(der, [other, pki.ca]) == "unknown"  # the response is not about it
    assert crypto.ocsp_status(b"junk", [pki.leaf, pki.ca]) == "unknown"
    failed = ocsp.OCSPResponseBuilder.build_unsuccessful(ocsp.OCSPResponseStatus.TRY_LATER)
    assert (
        crypto.ocsp_status(failed.public_bytes(serialization.Encoding.DER), [pki.leaf, pki.ca])
        == "unknown"
    )
    assert crypto.ocsp_status(der, [pki.leaf]) == "unknown"


def test_ocsp_status_nonce(pki: Pki) -> None:
    got = crypto.ocsp_request([pki.leaf, pki.ca])
    assert got is not None
    req = got[1]
    sent = (
        ocsp.load_der_ocsp_request(req)
        .extensions.get_extension_for_class(x509.OCSPNonce)
        .value.nonce
    )
    certs = [pki.leaf, pki.ca]
    echoed = _ocsp_response(pki, ocsp.OCSPCertStatus.REVOKED, nonce=sent)
    assert crypto.ocsp_status(echoed, certs, req) == "revoked"
    wrong = _ocsp_response(pki, ocsp.OCSPCertStatus.REVOKED, nonce=b"\x00" * 16)
    assert crypto.ocsp_status(wrong, certs, req) == "unknown"
    assert crypto.ocsp_status(wrong, certs) == "revoked"  # no request given: nonce not checked
    assert crypto.ocsp_status(_ocsp_response(pki, ocsp.OCSPCertStatus.GOOD), certs, req) == "good"


# --- RFC 3339 -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text,expect",
    [
        ("2025-01-02T03:04:05Z", dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2025-01-02t03:04:05z", dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2025-01-02T03:04:05+02:00", dt.datetime(2025, 1, 2, 1, 4, 5, tzinfo=UTC)),
        ("2025-01-02T03:04:05-05:30", dt.datetime(2025, 1, 2, 8, 34, 5, tzinfo=UTC)),
        ("2025-01-02T03:04:05.5Z", dt.datetime(2025, 1, 2, 3, 4, 5, 500000, tzinfo=UTC)),
        (
            "2025-01-02T03:04:05.123456789+00:00",
            dt.datetime(2025, 1, 2, 3, 4, 5, 123456, tzinfo=UTC),
        ),
        ("2016-12-31T23:59:60Z", dt.datetime(2016, 12, 31, 23, 59, 59, tzinfo=UTC)),
    ],
)
def test_parse_rfc3339(text: str, expect: dt.datetime) -> None:
    got = crypto.parse_rfc3339_timestamp(text)
    assert got == expect and got.utcoffset() == dt.timedelta(0)


@pytest.mark.parametrize(
    "text",
    [
        "garbage",
        "",
        "2025-01-02",
        "2025-01-02 03:04:05Z",
        "2025-01-02T03:04:05",
        "2025-13-02T03:04:05Z",
        "2025-01-02T03:04:05+2:00",
        "2025-01-02T03:04:05+24:00",
        "2025-01-02T03:04:05Z ",
        "2025-01-02T03:04:05.Z",
    ],
)
def test_parse_rfc3339_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        crypto.parse_rfc3339_timestamp(text)


def test_parse_rfc3339_ignores_local_timezone(monkeypatch: pytest.MonkeyPatch) -> None:
    # uacme's mktime() read the stamp as local time; the port must not.
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        got = crypto.parse_rfc3339_timestamp("2025-06-01T12:00:00Z")
    finally:
        monkeypatch.undo()
        time.tzset()
    assert got.timestamp() == dt.datetime(2025, 6, 1, 12, tzinfo=UTC).timestamp() == 1748779200
