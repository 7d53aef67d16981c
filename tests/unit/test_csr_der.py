"""csr_gen writes its PKCS#10 request with wucme.core.der (so that `wucme issue` needs no
`cryptography.x509`): the request must be, byte for byte, what `cryptography`'s own builder
writes for the same key, names and options (RFC 2986, RFC 5280 §4.2.1.3 and §4.2.1.6, RFC 7633)."""
from __future__ import annotations

import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from wucme import crypto
from wucme.core import der

KEYS = {"EC P-256": ec.generate_private_key(ec.SECP256R1()),
        "EC P-384": ec.generate_private_key(ec.SECP384R1()),
        "RSA 2048": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "RSA 3072": rsa.generate_private_key(public_exponent=65537, key_size=3072)}


def reference_csr(names: list[str], status_req: bool, no_key_usage: bool, key: crypto.PrivateKey) -> bytes:
    """What csr_gen built with `cryptography`'s CertificateSigningRequestBuilder before."""
    import idna

    def alabel(n: str) -> str:
        return n if n.isascii() else idna.encode(n, uts46=True).decode("ascii")

    def general(n: str) -> x509.GeneralName:
        if crypto.is_ip(n):
            return x509.IPAddress(ipaddress.ip_address(n))
        return x509.DNSName(alabel(n))

    rsa_key = isinstance(key, rsa.RSAPrivateKey)
    digest = hashes.SHA384() if not rsa_key and key.curve.name == "secp384r1" else hashes.SHA256()
    attrs = []
    if not crypto.is_ip(names[0]) and len(alabel(names[0])) <= 64:
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, alabel(names[0])))
    b = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attrs))
    b = b.add_extension(x509.SubjectAlternativeName([general(n) for n in names]), critical=False)
    if not no_key_usage:
        b = b.add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                          key_encipherment=rsa_key, data_encipherment=False,
                                          key_agreement=False, key_cert_sign=False, crl_sign=False,
                                          encipher_only=False, decipher_only=False), critical=True)
    if status_req:
        b = b.add_extension(x509.TLSFeature([x509.TLSFeatureType.status_request]), critical=False)
    return b.sign(key, digest).public_bytes(serialization.Encoding.DER)


def with_signature(csr: bytes, signature: bytes) -> bytes:
    """*csr* with its signature replaced: ECDSA signatures differ from one signing to the next."""
    info, algorithm, _ = der.elements(der.tlvs(csr)[0][1])
    return der.tlv(der.SEQUENCE, info[1] + algorithm[1] + der.tlv(der.BIT_STRING, b"\x00" + signature))


NAME_SETS = {
    "1 name": ["www.example.org"],
    "10 names": [f"n{i}.example.org" for i in range(1, 11)],
    "100 names": [f"host-{i:03d}.a-rather-long-subdomain-label.example.org" for i in range(100)],
    "IDNA": ["bücher.example", "例え.テスト", "www.example.org"],
    "IP first": ["192.0.2.7", "2001:db8::1", "www.example.org"],
    "CN over 64": ["a" * 60 + ".example.org", "b.example.org"],
    "CN of 64": ["a" * 52 + ".example.org"],
}


@pytest.mark.parametrize("keyname", list(KEYS))
@pytest.mark.parametrize("setname", list(NAME_SETS))
@pytest.mark.parametrize("options", [(False, False), (True, False), (False, True), (True, True)],
                         ids=["plain", "staple", "no-key-usage", "staple-no-key-usage"])
def test_csr_matches_cryptography_byte_for_byte(keyname: str, setname: str, options: tuple[bool, bool]) -> None:
    key, names = KEYS[keyname], NAME_SETS[setname]
    ours, theirs = crypto.csr_gen(names, *options, key), reference_csr(names, *options, key)
    parsed, ref = x509.load_der_x509_csr(ours), x509.load_der_x509_csr(theirs)
    assert parsed.is_signature_valid
    assert parsed.tbs_certrequest_bytes == ref.tbs_certrequest_bytes
    assert with_signature(ours, ref.signature) == theirs
    if isinstance(key, rsa.RSAPrivateKey):  # PKCS#1 v1.5 signatures are deterministic
        assert ours == theirs
    assert crypto.csr_requests_staple(ours) is options[0]


def test_csr_names_read_back() -> None:
    names = ["bücher.example", "192.0.2.7", "www.example.org"]
    ours = crypto.csr_gen(names, False, False, KEYS["EC P-256"])
    req = x509.load_der_x509_csr(ours)
    san = req.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["xn--bcher-kva.example", "www.example.org"]
    assert [str(a) for a in san.get_values_for_type(x509.IPAddress)] == ["192.0.2.7"]
    assert req.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "xn--bcher-kva.example"


def test_csr_refuses_what_it_refused() -> None:
    with pytest.raises(crypto.CryptoError, match="no names"):
        crypto.csr_gen([], False, False, KEYS["EC P-256"])
    with pytest.raises(crypto.CryptoError, match="only RSA and EC"):
        crypto.csr_gen(["a.example"], False, False, ec.generate_private_key(ec.SECP521R1()))
    with pytest.raises(crypto.CryptoError, match="invalid domain name"):
        crypto.csr_gen(["bad\u200d.example"], False, False, KEYS["EC P-256"])


def test_spki_of_request_and_certificate() -> None:
    key = KEYS["EC P-384"]
    want = key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    assert der.spki(crypto.csr_gen(["a.example"], False, False, key), csr=True) == want
    import datetime as dt
    now = dt.datetime.now(dt.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "a.example")])
    for version in (x509.Version.v3, x509.Version.v1):
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(7).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
                .sign(key, hashes.SHA384()))
        body = cert.public_bytes(serialization.Encoding.DER)
        if version is x509.Version.v1:  # no [0] version field: the key is one field earlier
            tbs_fields = der.elements(der.elements(der.tlvs(body)[0][1])[0][2])
            tbs = b"".join(e[1] for e in tbs_fields if e[0] != der.CONTEXT_0 and e[0] != 0xA3)
            body = der.tlv(der.SEQUENCE, der.tlv(der.SEQUENCE, tbs) + b"".join(
                e[1] for e in der.elements(der.tlvs(body)[0][1])[1:]))
        assert der.spki(body) == want
    with pytest.raises(der.DerError):
        der.spki(b"\x30\x03\x02\x01\x00")
