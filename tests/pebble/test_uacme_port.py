"""`wucme --uacme` against a real Pebble: every uacme action, both transports."""
from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from harness.faultproxy import FaultProxy
from harness.pebble import Pebble
from harness.responders import ChallengeDirServer, Ualpn
from wucme import crypto
from wucme.core.b64 import b64url_decode

from .uacme_cli import UacmeRun, ok

pytestmark = pytest.mark.pebble


@pytest.fixture(params=["builtin", "requests"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def run(pebble: Pebble, challenge_dir_server: ChallengeDirServer, hook_scripts: dict[str, str],
        tmp_path: Path, transport: str) -> UacmeRun:
    """`wucme --uacme` with an http-01 webroot hook and a fresh account."""
    r = UacmeRun(pebble.directory_url, pebble.ca_bundle, tmp_path / "conf",
                 {"UACME_CHALLENGE_PATH": str(challenge_dir_server.root_dir),
                  "HOOK_LOG": str(tmp_path / "hook.log")}, transport)
    ok(r("-y", "new", "admin@example.org"))
    return r


def leaf(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificates(path.read_bytes())[0]


def sans(cert: x509.Certificate) -> set[str]:
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(v) for v in ext.get_values_for_type(x509.DNSName)} | {
        str(v) for v in ext.get_values_for_type(x509.IPAddress)}


def test_new_account_creates_key_and_refuses_a_second_new(run: UacmeRun) -> None:
    key = run.confdir / "private" / "key.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o400
    assert stat.S_IMODE((run.confdir / "private").stat().st_mode) == 0o700
    r = ok(run("new"), 2)
    assert "ACCTEXISTS" in r.stderr


def test_new_without_yes_needs_the_terms_agreed(pebble: Pebble, tmp_path: Path) -> None:
    r = UacmeRun(pebble.directory_url, pebble.ca_bundle, tmp_path / "c")
    assert "terms not agreed" in ok(r("new", stdin="n\n"), 2).stderr
    ok(r("new", stdin="y\n"))


def test_issue_http01_through_hook(run: UacmeRun, hook_scripts: dict[str, str],
                                   challenge_dir_server: ChallengeDirServer, tmp_path: Path) -> None:
    ok(run("-h", hook_scripts["http-01"], "issue", "www.example.org", "two.example.org"))
    cert = run.confdir / "www.example.org" / "cert.pem"
    assert sans(leaf(cert)) == {"www.example.org", "two.example.org"}
    assert stat.S_IMODE(cert.stat().st_mode) == 0o444
    key = run.confdir / "private" / "www.example.org" / "key.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o400
    assert leaf(cert).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) == crypto.key_load(str(key)).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    log = (tmp_path / "hook.log").read_text().splitlines()
    begun = {line.split()[2] for line in log if line.startswith("begin http-01")}
    done = {line.split()[2] for line in log if line.startswith("done http-01")}
    assert begun == done == {"www.example.org", "two.example.org"}
    assert challenge_dir_server.requests >= 2
    assert list(challenge_dir_server.root_dir.iterdir()) == []  # `done` cleaned up


def test_issue_again_is_still_current_and_force_keeps_a_hard_linked_backup(
        run: UacmeRun, hook_scripts: dict[str, str]) -> None:
    hook = hook_scripts["http-01"]
    ok(run("-h", hook, "issue", "www.example.org"))
    assert "skipping" in ok(run("-h", hook, "issue", "www.example.org"), 1).stderr
    ok(run("check", "www.example.org"), 1)
    ok(run("check", "www.example.org", "other.example.org"), 0)  # a name the cert lacks
    cert = run.confdir / "www.example.org" / "cert.pem"
    first = cert.read_bytes()
    ok(run("-f", "-h", hook, "issue", "www.example.org"))
    backups = list(cert.parent.glob("cert-*.pem"))
    assert len(backups) == 1 and backups[0].read_bytes() == first
    assert cert.read_bytes() != first


def test_days_option_forces_renewal_of_a_current_certificate(
        run: UacmeRun, hook_scripts: dict[str, str]) -> None:
    ok(run("-h", hook_scripts["http-01"], "issue", "www.example.org"))
    # Pebble's certificates live five years: asking for 3000 days of validity makes it due.
    ok(run("-d", "3000", "-h", hook_scripts["http-01"], "issue", "www.example.org"))
    assert len(list((run.confdir / "www.example.org").glob("cert-*.pem"))) == 1


def test_issue_tls_alpn01_through_ualpn_hook(run: UacmeRun, hook_scripts: dict[str, str],
                                             ualpn: Ualpn, tmp_path: Path) -> None:
    ok(run("-h", hook_scripts["tls-alpn-01"], "issue", "alpn.example.org",
           extra_env={"UALPN_SOCKET": ualpn.socket_path}))
    assert "done tls-alpn-01 alpn.example.org" in (tmp_path / "hook.log").read_text()
    assert sans(leaf(run.confdir / "alpn.example.org" / "cert.pem")) == {"alpn.example.org"}


def test_declined_challenge_falls_back_to_the_next_one(run: UacmeRun, hook_scripts: dict[str, str],
                                                       ualpn: Ualpn, tmp_path: Path) -> None:
    r = ok(run("-h", hook_scripts["decline-http"], "issue", "fallback.example.org",
               extra_env={"UALPN_SOCKET": ualpn.socket_path}))
    log = (tmp_path / "hook.log").read_text()
    assert "begin tls-alpn-01 fallback.example.org" in log
    assert "done tls-alpn-01 fallback.example.org" in log
    assert "declined" in r.stderr


def test_no_challenge_accepted_fails_and_saves_nothing(run: UacmeRun,
                                                       hook_scripts: dict[str, str]) -> None:
    r = ok(run("-h", hook_scripts["decline-all"], "issue", "nobody.example.org"), 2)
    assert "NOCHALLENGE" in r.stderr
    assert not (run.confdir / "nobody.example.org" / "cert.pem").exists()


def test_failed_validation_runs_failed_hook_and_exits_2(
        pebble: Pebble, hook_scripts: dict[str, str], tmp_path: Path) -> None:
    # No responder on Pebble's http port: the validation fails.
    r = UacmeRun(pebble.directory_url, pebble.ca_bundle, tmp_path / "conf",
                 {"UACME_CHALLENGE_PATH": str(tmp_path), "HOOK_LOG": str(tmp_path / "hook.log")})
    ok(r("-y", "new"))
    out = ok(r("-h", hook_scripts["http-01"], "issue", "down.example.org"), 2)
    assert "CHALLFAIL" in out.stderr
    assert "failed http-01 down.example.org" in (tmp_path / "hook.log").read_text()
    assert not (tmp_path / "conf" / "down.example.org" / "cert.pem").exists()


def test_issue_from_csr_file(run: UacmeRun, hook_scripts: dict[str, str], tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())  # the request is built with cryptography's x509
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "csr.example.org")]))
           .add_extension(x509.SubjectAlternativeName(
               [x509.DNSName("csr.example.org"), x509.DNSName("alt.example.org")]), False)
           .sign(key, hashes.SHA256()))
    path = tmp_path / "request.csr"
    path.write_bytes(csr.public_bytes(serialization.Encoding.PEM))
    ok(run("-h", hook_scripts["http-01"], "issue", str(path)))
    cert = tmp_path / "request-cert.pem"
    assert sans(leaf(cert)) == {"csr.example.org", "alt.example.org"}
    ok(run("-h", hook_scripts["http-01"], "issue", str(path)), 1)


def test_malformed_csr_file_is_refused(run: UacmeRun, tmp_path: Path) -> None:
    path = tmp_path / "bad.csr"
    path.write_text("-----BEGIN CERTIFICATE REQUEST-----\nnot base64\n-----END CERTIFICATE REQUEST-----\n")
    r = ok(run("issue", str(path)), 2)
    assert "%WUCME-E-" in r.stderr


def test_hundred_names_in_one_certificate(run: UacmeRun, hook_scripts: dict[str, str],
                                          transport: str) -> None:
    if transport != "builtin":
        pytest.skip("one transport is enough for the 100-name order")
    names = ["n1.example.org"] + [f"n{i}.example.org" for i in range(2, 101)]
    ok(run("-h", hook_scripts["http-01"], "issue", *names), 0)
    assert sans(leaf(run.confdir / "n1.example.org" / "cert.pem")) == set(names)


def test_invalid_names_and_101_names_reach_no_ca(run: UacmeRun, hook_scripts: dict[str, str],
                                                 tmp_path: Path) -> None:
    for bad in (["-a.example.org"], ["a..example.org"], ["a_b.example.org"], ["$(id).example.org"],
                [f"n{i}.example.org" for i in range(101)]):
        r = ok(run("-h", hook_scripts["http-01"], "issue", "--", *bad), 2)
        assert "%WUCME-E-BADHOST" in r.stderr or "%WUCME-E-TOOMANY" in r.stderr
        assert "creating new order" not in r.stderr and "fetching directory" not in r.stderr
    assert not (tmp_path / "hook.log").exists()


def test_update_changes_the_contact(run: UacmeRun) -> None:
    r = ok(run("update", "second@example.org"))
    assert "updated" in r.stderr
    assert "already up to date" in ok(run("update", "second@example.org")).stderr
    assert "removing account email" in ok(run("update")).stderr


def test_newkey_rolls_the_account_key(run: UacmeRun, hook_scripts: dict[str, str]) -> None:
    keyfile = run.confdir / "private" / "key.pem"
    old = keyfile.read_bytes()
    ok(run("-t", "EC", "newkey"))
    assert keyfile.read_bytes() != old
    assert [p.read_bytes() for p in keyfile.parent.glob("key-*.pem")] == [old]
    assert not (keyfile.parent / "newkey.pem").exists()
    # The account answers to the new key.
    ok(run("-h", hook_scripts["http-01"], "issue", "rolled.example.org"))


def test_deactivate_then_nothing_works(run: UacmeRun, hook_scripts: dict[str, str]) -> None:
    ok(run("deactivate"))
    r = ok(run("-h", hook_scripts["http-01"], "issue", "late.example.org"), 2)
    assert "%WUCME-E-" in r.stderr


def test_revoke_with_account_key(run: UacmeRun, hook_scripts: dict[str, str],
                                 pebble: Pebble) -> None:
    ok(run("-h", hook_scripts["http-01"], "issue", "rev.example.org"))
    cert = run.confdir / "rev.example.org" / "cert.pem"
    serial = format(leaf(cert).serial_number, "x")
    ok(run("-r", "4", "revoke", str(cert)))
    assert not cert.exists()
    assert len(list(cert.parent.glob("revoked-*.pem"))) == 1
    assert pebble.cert_status(serial).get("Status") == "Revoked"


def test_revoke_with_certificate_key(run: UacmeRun, hook_scripts: dict[str, str],
                                     pebble: Pebble, tmp_path: Path) -> None:
    ok(run("-h", hook_scripts["http-01"], "issue", "revk.example.org"))
    cert = run.confdir / "revk.example.org" / "cert.pem"
    serial = format(leaf(cert).serial_number, "x")
    key = run.confdir / "private" / "revk.example.org" / "key.pem"
    # No confdir account at all: the certificate key signs (RFC 8555 §7.6, jwk form).
    other = UacmeRun(run.directory_url, run.ca_bundle, tmp_path / "empty", transport=run.transport)
    ok(other("revoke", str(cert), str(key)))
    assert pebble.cert_status(serial).get("Status") == "Revoked"


def test_key_types_and_sizes(run: UacmeRun, hook_scripts: dict[str, str]) -> None:
    ok(run("-t", "EC", "-b", "384", "-h", hook_scripts["http-01"], "issue", "p384.example.org"))
    key = crypto.key_load(str(run.confdir / "private" / "p384.example.org" / "key.pem"))
    assert key.curve.name == "secp384r1"  # type: ignore[union-attr]
    assert "BITS" in ok(run("-t", "EC", "-b", "512", "issue", "x.example.org"), 2).stderr
    assert "BITS" in ok(run("-b", "1024", "issue", "x.example.org"), 2).stderr


def test_rotate_key_replaces_the_certificate_key(run: UacmeRun, hook_scripts: dict[str, str]) -> None:
    hook = hook_scripts["http-01"]
    ok(run("-h", hook, "issue", "rot.example.org"))
    keyfile = run.confdir / "private" / "rot.example.org" / "key.pem"
    old = keyfile.read_bytes()
    ok(run("-f", "-k", "-h", hook, "issue", "rot.example.org"))
    assert keyfile.read_bytes() != old
    assert [p.read_bytes() for p in keyfile.parent.glob("key-*.pem")] == [old]
    assert not (keyfile.parent / "newkey.pem").exists()


def test_never_create_refuses_to_make_keys(pebble: Pebble, tmp_path: Path) -> None:
    r = UacmeRun(pebble.directory_url, pebble.ca_bundle, tmp_path / "conf")
    ok(r("-n", "-y", "new"), 2)
    assert not (tmp_path / "conf").exists()


def test_must_staple_asks_for_the_tls_feature(run: UacmeRun, hook_scripts: dict[str, str],
                                              fault_proxy: FaultProxy) -> None:
    # Pebble 2.4.0 drops must-staple from what it issues, so look at the CSR the CA received.
    via = UacmeRun(fault_proxy.directory_url, fault_proxy.ca_bundle, run.confdir, run.env,
                   run.transport)
    ok(via("-m", "-h", hook_scripts["http-01"], "issue", "staple.example.org"))
    (final,) = [r for r in fault_proxy.requests_to("/finalize-order/", "POST") if r.status == 200]
    csr = x509.load_der_x509_csr(b64url_decode(final.jws_payload()["csr"]))
    feature = csr.extensions.get_extension_for_class(x509.TLSFeature).value
    assert list(feature) == [x509.TLSFeatureType.status_request]


def test_alternate_chain_by_number_and_by_fingerprint(
        pebble_factory: object, hook_scripts: dict[str, str], tmp_path: Path) -> None:
    p: Pebble = pebble_factory(alternate_roots=2)  # type: ignore[operator]
    with ChallengeDirServer(tmp_path / "www", p.http_port) as web:
        r = UacmeRun(p.directory_url, p.ca_bundle, tmp_path / "conf",
                     {"UACME_CHALLENGE_PATH": str(web.root_dir)})
        ok(r("-y", "new"))
        hook = hook_scripts["http-01"]
        ok(r("-h", hook, "issue", "default.example.org"))
        ok(r("-l", "2", "-h", hook, "issue", "alt.example.org"))
        default_chain = x509.load_pem_x509_certificates(
            (tmp_path / "conf" / "default.example.org" / "cert.pem").read_bytes())
        alt_chain = x509.load_pem_x509_certificates(
            (tmp_path / "conf" / "alt.example.org" / "cert.pem").read_bytes())
        assert default_chain[-1].issuer != alt_chain[-1].issuer
        # Select by a prefix of the alternate intermediate's SHA-256 fingerprint.
        fp = alt_chain[1].fingerprint(hashes.SHA256())[:4].hex(":")
        ok(r("-l", fp, "-h", hook, "issue", "fp.example.org"))
        fp_chain = x509.load_pem_x509_certificates(
            (tmp_path / "conf" / "fp.example.org" / "cert.pem").read_bytes())
        assert fp_chain[1].fingerprint(hashes.SHA256()) == alt_chain[1].fingerprint(hashes.SHA256())


def test_half_of_all_nonces_rejected(pebble_factory: object, hook_scripts: dict[str, str],
                                     tmp_path: Path) -> None:
    p: Pebble = pebble_factory(nonce_reject=50)  # type: ignore[operator]
    with ChallengeDirServer(tmp_path / "www", p.http_port) as web:
        r = UacmeRun(p.directory_url, p.ca_bundle, tmp_path / "conf",
                     {"UACME_CHALLENGE_PATH": str(web.root_dir)})
        ok(r("-y", "new"))
        out = ok(r("-h", hook_scripts["http-01"], "issue", "a.example.org", "b.example.org"))
        assert "bad nonce" in out.stderr
        ok(r("revoke", str(tmp_path / "conf" / "a.example.org" / "cert.pem")))


def test_two_renewals_within_one_second_lose_no_certificate(run: UacmeRun,
                                                            hook_scripts: dict[str, str]) -> None:
    # uacme 1.7.4 fails the second one ("File exists") and drops the new certificate.
    hook = hook_scripts["http-01"]
    ok(run("-h", hook, "issue", "quick.example.org"))
    cert = run.confdir / "quick.example.org" / "cert.pem"
    seen = [cert.read_bytes()]
    for _ in range(2):
        ok(run("-f", "-h", hook, "issue", "quick.example.org"))
        seen.append(cert.read_bytes())
    backups = sorted(p.read_bytes() for p in cert.parent.glob("cert-*.pem"))
    assert len(set(seen)) == 3 and backups == sorted(seen[:2])


def test_ip_identifier_through_http01(run: UacmeRun, hook_scripts: dict[str, str]) -> None:
    # RFC 8738: Pebble's VA connects to the address itself; the certificate has an IP SAN, no CN.
    ok(run("-h", hook_scripts["http-01"], "issue", "127.0.0.1"))
    cert = leaf(run.confdir / "127.0.0.1" / "cert.pem")
    assert sans(cert) == {"127.0.0.1"}


def test_corrupt_account_key_is_an_error_not_a_new_account(run: UacmeRun,
                                                           hook_scripts: dict[str, str]) -> None:
    key = run.confdir / "private" / "key.pem"
    key.chmod(0o600)
    key.write_text("-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----\n")
    for args in (("-y", "new"), ("-h", hook_scripts["http-01"], "issue", "k.example.org")):
        r = ok(run(*args), 2)
        assert "%WUCME-E-CRYPTO" in r.stderr and "garbage" not in r.stderr
        assert "creating new account" not in r.stderr and "fetching directory" not in r.stderr
    assert "garbage" in key.read_text()


def test_external_account_binding(pebble_factory: object, tmp_path: Path) -> None:
    mac = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W"
    p: Pebble = pebble_factory(eab_keys={"kid-1": mac})  # type: ignore[operator]
    r = UacmeRun(p.directory_url, p.ca_bundle, tmp_path / "conf")
    assert "EABREQ" in ok(r("-y", "new"), 2).stderr
    assert "EAB" in ok(r("-y", "-e", "kid-1:not base64!", "new"), 2).stderr
    assert ok(r("-y", "-e", "kid-1:" + mac[:-4] + "AAAA", "new"), 2).returncode == 2
    ok(r("-y", "-e", f"kid-1:{mac}", "new"))
    for bits in ("256", "384", "512"):  # HS256/384/512 (uacme HEAD; its parser is fixed here)
        other = UacmeRun(p.directory_url, p.ca_bundle, tmp_path / f"conf{bits}")
        ok(other("-y", "-e", f"kid-1:{mac}:{bits}", "new"))
    assert "256, 384 or 512" in ok(r("-y", "-e", f"kid-1:{mac}:128", "new"), 2).stderr
