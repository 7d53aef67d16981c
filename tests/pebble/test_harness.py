"""Tests of the test harness itself: Pebble launcher, responders, hook scripts, fault proxy.

They use only the real binaries (pebble, ualpn, uacme, openssl), the stdlib,
`requests` and `cryptography` - never wucme's own ACME client.
"""
from __future__ import annotations

import base64
import ipaddress
import json
import os
import secrets
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from harness.faultproxy import FaultProxy, match_path, problem
from harness.pebble import (Pebble, PebbleError, TestCA, make_server_cert, make_test_ca,
                            stable_test_ca)
from harness.responders import ChallengeDirServer, Ualpn

pytestmark = pytest.mark.pebble
ACME_IDENTIFIER_OID = x509.ObjectIdentifier("1.3.6.1.5.5.7.1.31")  # RFC 8737 section 3
needs_uacme = pytest.mark.skipif(shutil.which("uacme") is None, reason="uacme not installed")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def session(ca_bundle: str) -> requests.Session:
    """A requests session trusting only the test CA (trust_env off: REQUESTS_CA_BUNDLE
    in the environment would otherwise override Session.verify)."""
    s = requests.Session()
    s.trust_env = False
    s.verify = ca_bundle
    return s


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie still answers kill(0); ManagedProcess reaps its child, so this is a live one.
    return False


# --- the test CA ----------------------------------------------------------------------

def test_server_cert_names_and_issuer(tmp_path: Path) -> None:
    ca_cert, ca_key = make_test_ca(tmp_path)
    cert_path, key_path = make_server_cert(tmp_path, (ca_cert, ca_key))
    ca = x509.load_pem_x509_certificate(ca_cert.read_bytes())
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    cert.verify_directly_issued_by(ca)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert oct(key_path.stat().st_mode & 0o777) == "0o600"


def test_stable_ca_is_reused_and_repaired(tmp_path: Path) -> None:
    first = stable_test_ca(tmp_path)
    pem = first.cert.read_bytes()
    again = stable_test_ca(tmp_path)
    assert again.cert.read_bytes() == pem
    first.server_cert.write_text("garbage")  # a damaged CA dir is rebuilt, not trusted
    repaired = stable_test_ca(tmp_path)
    ca = x509.load_pem_x509_certificate(repaired.cert.read_bytes())
    x509.load_pem_x509_certificate(repaired.server_cert.read_bytes()).verify_directly_issued_by(ca)


# --- Pebble and challtestsrv --------------------------------------------------------------

def test_challtestsrv_resolves_every_name_to_loopback(pebble: Pebble) -> None:
    assert pebble.challtestsrv is not None
    assert pebble.challtestsrv.resolve("www.example.org") == ["127.0.0.1"]
    assert pebble.challtestsrv.resolve(f"x{secrets.token_hex(4)}.invalid") == ["127.0.0.1"]


def test_pebble_directory_and_management(pebble: Pebble) -> None:
    with session(pebble.ca_bundle) as s:
        d = s.get(pebble.directory_url, timeout=5).json()
    assert pebble.directory_url.startswith("https://localhost:")
    for key in ("newAccount", "newNonce", "newOrder", "revokeCert", "keyChange"):
        assert d[key].startswith(f"https://localhost:{pebble.port}/"), key
    assert "renewalInfo" not in d  # Pebble 2.4.0: ARI only through the fault proxy
    root = x509.load_pem_x509_certificate(pebble.roots(0).encode())
    inter = x509.load_pem_x509_certificate(pebble.intermediates(0).encode())
    inter.verify_directly_issued_by(root)
    with pytest.raises(KeyError):
        pebble.cert_status("123456789abcdef")


def test_pebble_knobs_reach_pebble(pebble_factory: Callable[..., Pebble]) -> None:
    hmac_key = b64url(secrets.token_bytes(32))
    p = pebble_factory(validity=600, nonce_reject=0, alternate_roots=1, authz_reuse=100,
                       eab_keys={"kid-1": hmac_key})
    log = p.log_path.read_text()
    assert "Using certificate validity period of 600 seconds" in log
    assert "Configured to reject 0% of good nonces" in log
    assert "Disabling random VA sleeps" in log
    assert json.loads(p.config_path.read_text())["pebble"]["externalAccountMACKeys"] == {"kid-1": hmac_key}
    with session(p.ca_bundle) as s:
        assert s.get(p.directory_url, timeout=5).json()["meta"]["externalAccountRequired"] is True
    alt = x509.load_pem_x509_certificate(p.roots(1).encode())
    assert alt.subject != x509.load_pem_x509_certificate(p.roots(0).encode()).subject


def test_pebble_stop_ends_both_processes(pebble_factory: Callable[..., Pebble]) -> None:
    p = pebble_factory()
    assert p.process is not None and p.challtestsrv is not None and p.challtestsrv.process
    pids = [p.process.pid, p.challtestsrv.process.pid]
    assert not any(gone(pid) for pid in pids)
    p.stop()
    assert all(gone(pid) for pid in pids)
    p.stop()  # idempotent


def test_pebble_start_failure_shows_log_and_cleans_up(tmp_path: Path, pebble_ca: TestCA) -> None:
    if shutil.which("pebble") is None:
        pytest.skip("pebble not installed")
    p = Pebble(tmp_path, ca=pebble_ca, extra_config={"certificate": str(tmp_path / "missing.pem")})
    t0 = time.monotonic()
    with pytest.raises(PebbleError, match="pebble exited") as info:
        p.start(timeout=10)
    assert "missing.pem" in str(info.value)  # Pebble's own complaint, from its log
    assert time.monotonic() - t0 < 10
    assert p.challtestsrv is not None and p.challtestsrv.process is not None
    assert gone(p.challtestsrv.process.pid)


# --- responders and hooks -----------------------------------------------------------

def test_challenge_dir_server(tmp_path: Path) -> None:
    with ChallengeDirServer(tmp_path / "root") as srv:
        token = b64url(secrets.token_bytes(32))
        (srv.root_dir / token).write_text(f"{token}.thumb")
        r = urllib.request.urlopen(f"{srv.url}/.well-known/acme-challenge/{token}", timeout=5)
        assert r.status == 200 and r.read() == f"{token}.thumb".encode()
        assert r.headers["Content-Type"] == "text/plain"
        r.close()
        for path in ("/.well-known/acme-challenge/missing", "/.well-known/acme-challenge/..%2Fx",
                     "/elsewhere"):
            with pytest.raises(urllib.error.HTTPError) as e:
                urllib.request.urlopen(f"{srv.url}{path}", timeout=5)
            assert e.value.code == 404
            e.value.close()
        assert srv.requests == 4


def _s_client(port: int, servername: str) -> str:
    r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-alpn", "acme-tls/1",
                        "-servername", servername], input=b"", capture_output=True, timeout=15)
    return r.stdout.decode(errors="replace")


def test_ualpn_answers_tls_alpn_01(tmp_path: Path) -> None:
    if shutil.which("ualpn") is None:
        pytest.skip("ualpn not installed")
    from harness.pebble import free_port

    digest = secrets.token_bytes(32)
    with Ualpn(free_port(), tmp_path / "ualpn") as u:
        assert u.auth("www.example.org", b64url(digest)) == "OK"
        out = _s_client(u.port, "www.example.org")
        assert "ALPN protocol: acme-tls/1" in out
        pem = out[out.index("-----BEGIN CERTIFICATE-----"):out.index("-----END CERTIFICATE-----") + 25]
        cert = x509.load_pem_x509_certificate(pem.encode())
        ext = cert.extensions.get_extension_for_oid(ACME_IDENTIFIER_OID)
        assert ext.critical and isinstance(ext.value, x509.UnrecognizedExtension)
        assert ext.value.value == b"\x04\x20" + digest  # DER OCTET STRING of the SHA-256
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.DNSName) == ["www.example.org"]
        assert u.unauth("www.example.org") == "OK"
        assert "ALPN protocol: acme-tls/1" not in _s_client(u.port, "www.example.org")
    assert u.process is not None and gone(u.process.pid)


def _hook(path: str, *args: str, env: dict[str, str]) -> int:
    return subprocess.run([path, *args], env={**os.environ, **env}, timeout=10,
                          capture_output=True).returncode


def test_hook_scripts(hook_scripts: dict[str, str], tmp_path: Path) -> None:
    webroot, log = tmp_path / "www", tmp_path / "hook.log"
    webroot.mkdir()
    env = {"UACME_CHALLENGE_PATH": str(webroot), "HOOK_LOG": str(log)}
    token = b64url(secrets.token_bytes(32))
    http = hook_scripts["http-01"]
    assert _hook(http, "begin", "http-01", "a.example", token, f"{token}.k", env=env) == 0
    assert (webroot / token).read_text() == f"{token}.k"
    assert _hook(http, "done", "http-01", "a.example", token, f"{token}.k", env=env) == 0
    assert not (webroot / token).exists()
    assert _hook(http, "begin", "tls-alpn-01", "a.example", token, "x", env=env) == 1
    assert _hook(http, "begin", "http-01", "a.example", "../evil", "x", env=env) == 1
    assert not (tmp_path / "evil").exists()
    assert _hook(hook_scripts["decline-http"], "begin", "http-01", "a.example", token, "x", env=env) == 1
    assert _hook(hook_scripts["decline-all"], "begin", "tls-alpn-01", "a.example", token, "x", env=env) == 1
    assert _hook(hook_scripts["tls-alpn-01"], "begin", "tls-alpn-01", "a.example", token, "x",
                 env={**env, "UALPN_SOCKET": str(tmp_path / "no.sock")}) == 1
    assert log.read_text().splitlines() == [
        f"begin http-01 a.example {token}", f"done http-01 a.example {token}",
        f"begin tls-alpn-01 a.example {token}", "begin http-01 a.example ../evil",
        f"begin http-01 a.example {token}", f"begin tls-alpn-01 a.example {token}",
        f"begin tls-alpn-01 a.example {token}"]


# --- the fault proxy ----------------------------------------------------------------

def test_fault_proxy_directory_and_ari(fault_proxy: FaultProxy) -> None:
    with session(fault_proxy.ca_bundle) as s:
        d = s.get(fault_proxy.directory_url, timeout=5).json()
        assert d["newOrder"] == f"{fault_proxy.origin}/order-plz"
        fault_proxy.enable_ari()
        fault_proxy.patch_directory({"meta": {"profiles": {"classic": "90 days", "shortlived": "6 days"}}})
        d = s.get(fault_proxy.directory_url, timeout=5).json()
        assert d["renewalInfo"] == fault_proxy.renewal_info_url
        assert set(d["meta"]["profiles"]) == {"classic", "shortlived"}
        assert "termsOfService" in d["meta"]  # Pebble's own meta survives the merge
        fault_proxy.set_renewal_info("aaa.bbb", "2030-01-01T00:00:00Z", "2030-01-02T00:00:00Z")
        r = s.get(f"{fault_proxy.renewal_info_url}/aaa.bbb", timeout=5)
        assert r.status_code == 200 and r.headers["Retry-After"] == "21600"
        assert r.json()["suggestedWindow"]["start"] == "2030-01-01T00:00:00Z"
        assert s.get(f"{fault_proxy.renewal_info_url}/nope", timeout=5).status_code == 404


def test_fault_proxy_injects_rate_limit_then_forwards(fault_proxy: FaultProxy) -> None:
    rule = fault_proxy.add_rule(match_path("POST", "/order-plz"),
                                problem(429, "rateLimited", "slow down", retry_after=7), times=1)
    hdrs = {"Content-Type": "application/jose+json"}
    with session(fault_proxy.ca_bundle) as s:
        nonce = s.head(f"{fault_proxy.origin}/nonce-plz", timeout=5)
        assert nonce.status_code == 200 and nonce.headers["Replay-Nonce"]
        r = s.post(f"{fault_proxy.origin}/order-plz", data=b"{}", headers=hdrs, timeout=5)
        assert r.status_code == 429 and r.headers["Retry-After"] == "7"
        assert r.json()["type"] == "urn:ietf:params:acme:error:rateLimited"
        assert r.headers["Replay-Nonce"]  # injected errors still carry a nonce (RFC 8555 section 6.5)
        r = s.post(f"{fault_proxy.origin}/order-plz", data=b"{}", headers=hdrs, timeout=5)
        assert r.status_code == 400 and r.json()["type"] == "urn:ietf:params:acme:error:malformed"
    assert rule.hits == 1 and not rule.live()
    logged = fault_proxy.requests_to("/order-plz", "POST")
    assert [(x.status, x.injected) for x in logged] == [(429, True), (400, False)]


def _jws(key: ec.EllipticCurvePrivateKey, url: str, nonce: str, payload: dict[str, Any]) -> bytes:
    """A minimal ES256 flattened JWS with an embedded JWK (RFC 8555 section 6.2)."""
    nums = key.public_key().public_numbers()
    jwk = {"kty": "EC", "crv": "P-256", "x": b64url(nums.x.to_bytes(32, "big")),
           "y": b64url(nums.y.to_bytes(32, "big"))}
    protected = b64url(json.dumps({"alg": "ES256", "jwk": jwk, "nonce": nonce, "url": url}).encode())
    body = b64url(json.dumps(payload).encode())
    r, s = decode_dss_signature(key.sign(f"{protected}.{body}".encode(), ec.ECDSA(hashes.SHA256())))
    sig = b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))
    return json.dumps({"protected": protected, "payload": body, "signature": sig}).encode()


def test_fault_proxy_signed_request_passes_pebble_url_check(pebble_factory: Callable[..., Pebble]) -> None:
    p = pebble_factory(nonce_reject=0)
    with FaultProxy(p) as proxy, session(p.ca_bundle) as s:
        d = s.get(proxy.directory_url, timeout=5).json()
        nonce = s.head(d["newNonce"], timeout=5).headers["Replay-Nonce"]
        key = ec.generate_private_key(ec.SECP256R1())
        r = s.post(d["newAccount"], data=_jws(key, d["newAccount"], nonce, {"termsOfServiceAgreed": True}),
                   headers={"Content-Type": "application/jose+json"}, timeout=5)
        assert r.status_code == 201, r.text
        assert r.headers["Location"].startswith(f"{proxy.origin}/my-account/")
        assert proxy.requests_to("/sign-me-up")[0].jws_protected()["url"] == d["newAccount"]


# --- the real uacme, end to end ----------------------------------------------------------

def _uacme(confdir: Path, url: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["uacme", "-v", "-c", str(confdir), "-a", url, *args], capture_output=True,
                          text=True, timeout=60, env={**os.environ, **env})


def _new_account(confdir: Path, url: str) -> None:
    r = _uacme(confdir, url, "-y", "new", env={})
    assert r.returncode == 0, r.stderr


@needs_uacme
def test_uacme_issues_with_http01(system_trust: TestCA, pebble: Pebble, hook_scripts: dict[str, str],
                                  challenge_dir_server: ChallengeDirServer, tmp_path: Path) -> None:
    conf, log = tmp_path / "conf", tmp_path / "hook.log"
    _new_account(conf, pebble.directory_url)
    env = {"UACME_CHALLENGE_PATH": str(challenge_dir_server.root_dir), "HOOK_LOG": str(log)}
    r = _uacme(conf, pebble.directory_url, "-h", hook_scripts["http-01"], "issue", "www.example.org", env=env)
    assert r.returncode == 0, r.stderr
    cert = x509.load_pem_x509_certificate((conf / "www.example.org" / "cert.pem").read_bytes())
    assert pebble.cert_status(format(cert.serial_number, "x"))["Status"] == "Valid"
    assert challenge_dir_server.requests >= 1
    calls = [line.split()[:2] for line in log.read_text().splitlines()]
    assert ["begin", "http-01"] in calls and ["done", "http-01"] in calls
    assert list(challenge_dir_server.root_dir.iterdir()) == []  # the done hook cleaned up


@needs_uacme
def test_uacme_issues_with_tls_alpn01(system_trust: TestCA, pebble: Pebble, hook_scripts: dict[str, str],
                                      ualpn: Ualpn, tmp_path: Path) -> None:
    conf, log = tmp_path / "conf", tmp_path / "hook.log"
    _new_account(conf, pebble.directory_url)
    env = {"UALPN_SOCKET": ualpn.socket_path, "HOOK_LOG": str(log)}
    r = _uacme(conf, pebble.directory_url, "-h", hook_scripts["decline-http"], "issue", "www.example.org",
               env=env)
    assert r.returncode == 0, r.stderr
    assert (conf / "www.example.org" / "cert.pem").exists()
    assert "acme-tls/1 handshake with auth" in ualpn.log_path.read_text()
    assert any(line.startswith("done tls-alpn-01 www.example.org") for line in log.read_text().splitlines())


@needs_uacme
def test_uacme_through_fault_proxy_retries_bad_nonce(system_trust: TestCA, fault_proxy: FaultProxy,
                                                     hook_scripts: dict[str, str],
                                                     challenge_dir_server: ChallengeDirServer,
                                                     tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    _new_account(conf, fault_proxy.directory_url)
    rule = fault_proxy.add_rule(match_path("POST", "/order-plz"),
                                problem(400, "badNonce", "injected by the fault proxy"), times=1)
    env = {"UACME_CHALLENGE_PATH": str(challenge_dir_server.root_dir)}
    r = _uacme(conf, fault_proxy.directory_url, "-h", hook_scripts["http-01"], "issue", "www.example.org",
               env=env)
    assert r.returncode == 0, r.stderr
    assert rule.hits == 1
    orders = fault_proxy.requests_to("/order-plz", "POST")
    assert orders[0].injected and orders[0].status == 400
    assert orders[-1].status == 201  # Pebble's own 5% badNonce may add retries in between
    # The retry used the nonce the injected error carried (RFC 8555 section 6.5).
    assert orders[1].jws_protected()["nonce"] == orders[0].response_headers["Replay-Nonce"]
    assert orders[1].jws_payload()["identifiers"] == [{"type": "dns", "value": "www.example.org"}]
    assert (conf / "www.example.org" / "cert.pem").exists()
