"""The crypto fast path: the native certificate scan and its pure twin give the same result.

Every test runs on both backends (or runs one against the other); the native one must also
really answer for the certificates ACME CAs issue, not hand them all to the twin.  What
else the fast path tried (JWS in one call, tls-alpn-01 certificates, CSRs) was no faster
than `cryptography` and is gone (docs/performance.md); wucme's keys on the system's
libcrypto are tests/unit/test_native_pkey.py's; the account key's route through
`cryptography` without the RSA check is tested at the end.
"""
from __future__ import annotations

import base64
import datetime as dt
import ipaddress
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.native import require_built
import wucme._native.certscan as cs
from wucme import crypto
from wucme.repository import CertState, Repository

IMPLS = ["native", "pure"]
UTC = dt.timezone.utc
NOW = dt.datetime(2026, 11, 27, 10, 0, 0, tzinfo=UTC)
SCT_OID = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")

needs_native = pytest.mark.skipif(not cs.HAS_CERTSCAN, reason="wucme._native._certscan not built "
                                  "(pip install --no-build-isolation -e .)")


@pytest.fixture(params=IMPLS)
def be(request: pytest.FixtureRequest) -> cs.Scanner:
    if request.param == "native" and not cs.HAS_CERTSCAN:
        pytest.skip("wucme._native._certscan not built (pip install --no-build-isolation -e .)")
    b = cs.backend(native=request.param == "native")
    assert b.name == request.param
    return b


def test_native_is_the_one_in_use_when_built(monkeypatch: pytest.MonkeyPatch) -> None:
    require_built("certscan", cs.HAS_CERTSCAN, "native certificate scan")
    monkeypatch.delenv("WUCME_NO_NATIVE", raising=False)
    assert cs.backend() is cs.NATIVE
    monkeypatch.setenv("WUCME_NO_NATIVE", "1")
    assert cs.native_forced_off() and cs.backend() is cs.PURE
    assert cs.backend(native=True) is cs.NATIVE


# --- certificates to scan ------------------------------------------------------------------------

CA_KEY = ec.generate_private_key(ec.SECP256R1())
CA_NAME = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
                     x509.NameAttribute(NameOID.ORGANIZATION_NAME, "wucme test"),
                     x509.NameAttribute(NameOID.COMMON_NAME, "wucme test CA R1")])
CA = (x509.CertificateBuilder().subject_name(CA_NAME).issuer_name(CA_NAME)
      .public_key(CA_KEY.public_key()).serial_number(0x1234)
      .not_valid_before(NOW - dt.timedelta(days=10)).not_valid_after(NOW + dt.timedelta(days=3650))
      .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
      .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), True)
      .sign(CA_KEY, hashes.SHA256()))
LEAF_EC = ec.generate_private_key(ec.SECP256R1())
LEAF_RSA = rsa.generate_private_key(65537, 2048)


def _sct_list() -> bytes:
    sct = (b"\x00" + b"L" * 32 + (1_700_000_000_000).to_bytes(8, "big") + b"\x00\x00"
           + b"\x04\x03" + len(b"sig-bytes").to_bytes(2, "big") + b"sig-bytes")
    entry = len(sct).to_bytes(2, "big") + sct
    body = (len(entry) * 2).to_bytes(2, "big") + entry + entry
    return b"\x04" + bytes([len(body)]) + body  # the OCTET STRING inside extnValue


def leaf(names: list[str] | None = None, *, cn: str | None = None, key: object = LEAF_EC,
         serial: int = 0x0123456789ABCDEF, extensions: str = "le", subject: x509.Name | None = None,
         not_before: dt.datetime = NOW - dt.timedelta(days=10),
         not_after: dt.datetime = NOW + dt.timedelta(days=80),
         extra: list[tuple[x509.ExtensionType, bool]] | None = None) -> x509.Certificate:
    """A leaf signed by CA; extensions "le" (what Let's Encrypt sends), "min" (SAN only)."""
    pub = key.public_key()  # type: ignore[attr-defined]
    if subject is None:
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn else [])
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(CA_NAME).public_key(pub)
         .serial_number(serial).not_valid_before(not_before).not_valid_after(not_after))
    sans: list[x509.GeneralName] = []
    for n in names or []:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            sans.append(x509.DNSName(n))
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(sans), critical=not cn)
    if extensions == "le":
        b = (b.add_extension(x509.KeyUsage(True, False, isinstance(key, rsa.RSAPrivateKey), False,
                                           False, False, False, False, False), critical=True)
             .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                   ExtendedKeyUsageOID.CLIENT_AUTH]), False)
             .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
             .add_extension(x509.SubjectKeyIdentifier.from_public_key(pub), False)
             .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(CA_KEY.public_key()),
                            False)
             .add_extension(x509.AuthorityInformationAccess([
                 x509.AccessDescription(AuthorityInformationAccessOID.OCSP,
                                        x509.UniformResourceIdentifier("http://r1.o.example/")),
                 x509.AccessDescription(AuthorityInformationAccessOID.CA_ISSUERS,
                                        x509.UniformResourceIdentifier("http://r1.i.example/"))]),
                 False)
             .add_extension(x509.CertificatePolicies([
                 x509.PolicyInformation(x509.ObjectIdentifier("2.23.140.1.2.1"), None),
                 x509.PolicyInformation(x509.ObjectIdentifier("1.3.6.1.4.1.44947.1.1.1"),
                                        ["http://cps.example/"])]), False)
             .add_extension(x509.CRLDistributionPoints([x509.DistributionPoint(
                 [x509.UniformResourceIdentifier("http://r1.c.example/1.crl")], None, None, None)]),
                 False)
             .add_extension(x509.UnrecognizedExtension(SCT_OID, _sct_list()), False))
    for ext, critical in extra or []:
        b = b.add_extension(ext, critical=critical)
    return b.sign(CA_KEY, hashes.SHA256())


def pem(*certs: x509.Certificate, key: object = LEAF_EC, crlf: bool = False) -> bytes:
    data = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)
    if key is not None:
        data += key.private_bytes(serialization.Encoding.PEM,  # type: ignore[attr-defined]
                                  serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return data.replace(b"\n", b"\r\n") if crlf else data


def pem_of_der(der: bytes, label: bytes = b"CERTIFICATE") -> bytes:
    b64 = base64.b64encode(der)
    lines = b"\n".join(b64[i:i + 64] for i in range(0, len(b64), 64))
    return b"-----BEGIN " + label + b"-----\n" + lines + b"\n-----END " + label + b"-----\n"


#: Chains the native scanner must read itself (what CAs issue and wucme writes).
NATIVE_CHAINS: dict[str, Callable[[], bytes]] = {
    "le-ec": lambda: pem(leaf(["www.example.org", "example.org"]), CA),
    "le-rsa": lambda: pem(leaf(["www.example.org"], key=LEAF_RSA), CA, key=LEAF_RSA),
    "cn-and-sans": lambda: pem(leaf(["WWW.Example.org", "192.0.2.7", "2001:db8::1", "www.example.org"],
                                    cn="www.example.org"), CA),
    "ip-only": lambda: pem(leaf(["192.0.2.7", "2001:db8::42"]), CA),
    "idn": lambda: pem(leaf(["xn--bcher-kva.example", "*.example.org"]), CA),
    "min-extensions": lambda: pem(leaf(["a.example"], extensions="min"), CA),
    "no-key-appended": lambda: pem(leaf(["a.example"]), CA, key=None),
    "leaf-only": lambda: pem(leaf(["a.example"]), key=None),
    "crlf": lambda: pem(leaf(["a.example"]), CA, crlf=True),
    "serial-high-bit": lambda: pem(leaf(["a.example"], serial=0x87654321), CA),
    "serial-20-bytes": lambda: pem(leaf(["a.example"], serial=(1 << 159) - 12345), CA),
    "generalized-time": lambda: pem(leaf(["a.example"], not_after=dt.datetime(2051, 2, 28, tzinfo=UTC)), CA),
    "must-staple": lambda: pem(leaf(["a.example"], extra=[
        (x509.TLSFeature([x509.TLSFeatureType.status_request]), False)]), CA),
    "ec-key-traditional": lambda: pem(leaf(["a.example"]), CA, key=None) + LEAF_EC.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption()),
    "no-names": lambda: pem(leaf(None, cn=None, extensions="min"), CA),
}

#: Chains the native scanner hands to the twin (unusual, not wrong): results still equal.
TWIN_CHAINS: dict[str, Callable[[], bytes]] = {
    "unknown-extension": lambda: pem(leaf(["a.example"], extra=[
        (x509.UnrecognizedExtension(x509.ObjectIdentifier("1.2.3.4.5"), b"\x05\x00"), False)]), CA),
    "multi-valued-rdn": lambda: pem(leaf(["a.example"], subject=x509.Name([
        x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COMMON_NAME, "a.example"),
                                        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "O")])])), CA),
    "bmpstring-cn": lambda: pem(leaf(["a.example"], subject=x509.Name([x509.NameAttribute(
        NameOID.COMMON_NAME, "b.example", x509.name._ASN1Type.BMPString)])), CA),
    "x509-certificate-label": lambda: pem_of_der(
        leaf(["a.example"]).public_bytes(serialization.Encoding.DER), b"X509 CERTIFICATE"),
    "text-before": lambda: b"subject=CN = a.example\n" + pem(leaf(["a.example"]), CA),
    "key-first": lambda: pem(leaf(["a.example"]), key=None).join(
        [LEAF_EC.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                               serialization.NoEncryption()), b""]),
    "directory-name-san": lambda: pem(leaf(None, extensions="min", extra=[(x509.SubjectAlternativeName(
        [x509.DirectoryName(CA_NAME), x509.DNSName("a.example")]), False)]), CA),
    "aki-with-issuer": lambda: pem(leaf(["a.example"], extensions="min", extra=[(
        x509.AuthorityKeyIdentifier(b"k" * 20, [x509.DirectoryName(CA_NAME)], 7), False)]), CA),
    "year-1960": lambda: pem(leaf(["a.example"], not_before=dt.datetime(1960, 1, 1, tzinfo=UTC)), CA),
    # Found by fuzzing: the `pem` crate reads what precedes an empty line as headers, and
    # `cryptography` refuses empty lists in extensions (the names then come from the CN).
    "blank-line-in-body": lambda: pem(leaf(["a.example"]), CA).replace(b"\n", b"\n\n", 3)
    .replace(b"-----\n\n", b"-----\n", 1),
    "empty-eku": lambda: pem(leaf(["a.example"], cn="c.example", extensions="min", extra=[(
        x509.UnrecognizedExtension(x509.oid.ExtensionOID.EXTENDED_KEY_USAGE, b"\x30\x00"), False)]), CA),
    "empty-tls-feature": lambda: pem(leaf(["a.example"], extensions="min", extra=[(
        x509.UnrecognizedExtension(x509.oid.ExtensionOID.TLS_FEATURE, b"\x30\x00"), False)]), CA),
}

#: Files that are not a readable chain: both raise the same error.
BAD_FILES: dict[str, tuple[bytes, type[Exception]]] = {
    "empty": (b"", cs.NoCertificate),
    "key-only": (LEAF_EC.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()), cs.NoCertificate),
    "garbage": (b"-----BEGIN CERTIFICATE-----\nxx\n", ValueError),
    "truncated": (pem(leaf(["a.example"]), key=None)[:300] + b"\n-----END CERTIFICATE-----\n",
                  ValueError),
    "der-not-cert": (pem_of_der(b"\x30\x03\x02\x01\x05"), ValueError),
    "bad-base64": (pem(leaf(["a.example"]), key=None).replace(b"M", b"!", 1), ValueError),
}


def native_answer(data: bytes) -> int:
    """What the C scanner itself says (CS_OK or CS_EUNSUPP), without the fallback."""
    ffi, lib = cs.NATIVE.ffi, cs.NATIVE.lib  # type: ignore[union-attr]
    buf = ffi.new("unsigned char[]", max(len(data), 1))
    return int(lib.cs_cert_scan(data, len(data), buf, len(data), ffi.new("struct cs_cert *")))


@needs_native
@pytest.mark.parametrize("case", sorted(NATIVE_CHAINS))
def test_scan_reads_what_cas_issue_natively_and_as_the_twin_does(case: str) -> None:
    data = NATIVE_CHAINS[case]()
    assert native_answer(data) == cs.NATIVE.lib.CS_OK  # type: ignore[union-attr]
    got, want = cs.NATIVE.cert_info(data), cs.PURE.cert_info(data)  # type: ignore[union-attr]
    assert got == want
    leaf0 = x509.load_pem_x509_certificates(data)[0]
    assert list(got.names) == crypto.cert_names(leaf0)
    assert got.der == leaf0.public_bytes(serialization.Encoding.DER)
    assert got.serial_number == leaf0.serial_number
    assert got.not_valid_after_utc == leaf0.not_valid_after_utc


def test_scan_fields(be: cs.Scanner) -> None:
    info = be.cert_info(NATIVE_CHAINS["cn-and-sans"]())
    assert info.names == ("www.example.org", "192.0.2.7", "2001:db8::1")
    assert info.aki == x509.AuthorityKeyIdentifier.from_issuer_public_key(
        CA_KEY.public_key()).key_identifier
    assert info.serial_number == 0x0123456789ABCDEF
    assert info.not_valid_before_utc == NOW - dt.timedelta(days=10)
    assert be.cert_info(NATIVE_CHAINS["min-extensions"]()).aki is None
    late = be.cert_info(NATIVE_CHAINS["generalized-time"]())
    assert late.not_valid_after_utc == dt.datetime(2051, 2, 28, tzinfo=UTC)


@needs_native
@pytest.mark.parametrize("case", sorted(TWIN_CHAINS))
def test_scan_leaves_the_unusual_to_the_twin(case: str) -> None:
    data = TWIN_CHAINS[case]()
    assert native_answer(data) == cs.NATIVE.lib.CS_EUNSUPP  # type: ignore[union-attr]
    try:
        want: object = cs.PURE.cert_info(data)
    except ValueError as e:
        want = type(e)
    try:
        got: object = cs.NATIVE.cert_info(data)  # type: ignore[union-attr]
    except ValueError as e:
        got = type(e)
    assert got == want


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_scan_errors(be: cs.Scanner, case: str) -> None:
    data, error = BAD_FILES[case]
    with pytest.raises(error):
        be.cert_info(data)


def test_scan_of_files(be: cs.Scanner, tmp_path: Path) -> None:
    assert be.cert_file(str(tmp_path / "missing.pem")) is None
    with pytest.raises(IsADirectoryError):
        be.cert_file(str(tmp_path))
    big = tmp_path / "big.pem"
    chain = NATIVE_CHAINS["le-ec"]()
    big.write_bytes(chain + b"\n" * 70000)  # past the native scratch buffer: the slow way round
    assert be.cert_file(str(big)) == cs.PURE.cert_info(chain)
    f = tmp_path / "c.pem"
    f.write_bytes(chain)
    assert be.cert_file(str(f)) == cs.PURE.cert_info(chain)


#: One fixed certificate to damage (an ECDSA signature differs each time it is made).
FUZZ_DER = leaf(["www.example.org", "192.0.2.1"], cn="www.example.org").public_bytes(
    serialization.Encoding.DER)


@needs_native
@settings(max_examples=400, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_scan_never_reads_what_the_twin_would_not(data: st.DataObject) -> None:
    """Damage a DER certificate anywhere: whatever the C scanner accepts, the twin reads alike."""
    der = bytearray(FUZZ_DER)
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(der) - 1))
        how = data.draw(st.sampled_from(["set", "insert", "delete"]))
        if how == "set":
            der[at] = data.draw(st.integers(0, 255))
        elif how == "insert":
            der[at:at] = bytes([data.draw(st.integers(0, 255))])
        else:
            del der[at]
    chain = pem_of_der(bytes(der)) + CA.public_bytes(serialization.Encoding.PEM)
    if native_answer(chain) != cs.NATIVE.lib.CS_OK:  # type: ignore[union-attr]
        return
    assert cs.NATIVE.cert_info(chain) == cs.PURE.cert_info(chain)  # type: ignore[union-attr]


@needs_native
@settings(max_examples=300, deadline=None, database=None)
@given(st.binary(max_size=40), st.integers(0, 2000))
def test_scan_of_damaged_pem_text(junk: bytes, at: int) -> None:
    text = NATIVE_CHAINS["le-ec"]()
    at = min(at, len(text))
    damaged = text[:at] + junk + text[at + len(junk) // 2:]
    if native_answer(damaged) == cs.NATIVE.lib.CS_OK:  # type: ignore[union-attr]
        assert cs.NATIVE.cert_info(damaged) == cs.PURE.cert_info(damaged)  # type: ignore[union-attr]


@needs_native
def test_repository_scan_is_the_same_on_both(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = Repository(tmp_path)
    for i, chain in enumerate([NATIVE_CHAINS["le-ec"](), NATIVE_CHAINS["cn-and-sans"](),
                               TWIN_CHAINS["bmpstring-cn"](), BAD_FILES["garbage"][0]]):
        (tmp_path / f"WUCME_C_H{i}_EXAMPLE.PEM").write_bytes(chain)
        if i % 2:
            st_ = CertState(hosts=[f"h{i}.example"], status="issued")
            (tmp_path / f"WUCME_S_H{i}_EXAMPLE.JSON").write_bytes(st_.to_json())
    (tmp_path / "WUCME_S_H9_EXAMPLE.JSON").write_bytes(b"{not json")
    runs = []
    for native in (True, False):
        if native:
            monkeypatch.delenv("WUCME_NO_NATIVE", raising=False)
        else:
            monkeypatch.setenv("WUCME_NO_NATIVE", "1")
        runs.append([(m.host_part, m.state, m.info, m.problem) for m in repo.managed()])
    assert runs[0] == runs[1] and len(runs[0]) == 5


# --- the account key: the pure route, kept ------------------------------------------------------


def test_own_key_loads_without_the_check_and_others_keep_it(tmp_path: Path) -> None:
    """key_load_own() skips only the RSA consistency check: anything else is key_load()'s."""
    for key in (LEAF_RSA, LEAF_EC, ec.generate_private_key(ec.SECP384R1())):
        f = tmp_path / "k.pem"
        f.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                        serialization.PrivateFormat.TraditionalOpenSSL,
                                        serialization.NoEncryption()))
        got = crypto.key_load_own(f)
        assert crypto.key_pem(got) == crypto.key_pem(key)
    weak = rsa.generate_private_key(65537, 1024)
    f.write_bytes(weak.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()))
    for load in (crypto.key_load, crypto.key_load_own):
        with pytest.raises(crypto.CryptoError, match="RSA key size 1024"):
            load(f)
    for junk, why in ((b"garbage", "not a PEM private key"), (None, "does not exist")):
        if junk is None:
            f.unlink()
        else:
            f.write_bytes(junk)
        with pytest.raises(crypto.CryptoError) as own:
            crypto.key_load_own(f)
        with pytest.raises(crypto.CryptoError) as checked:
            crypto.key_load(f)
        assert own.value.text == checked.value.text and why in own.value.text
