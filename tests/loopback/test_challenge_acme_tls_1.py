"""The ACME_TLS_1 agent as a real process: SNI in, validation certificate and key (PEM) out."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from wucme.challenge.store import ChallengeStore
from wucme.challenge.tlsalpn import ACME_IDENTIFIER_OID, auth_digest

from .test_challenge_support import PYTHON, python_env
from .test_challenge_tlsalpn import assert_validation_cert

KEYAUTH = "tok-en_1.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"


def agent(store: ChallengeStore, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    full = python_env()
    full["WUCME_CHALLENGES"] = str(store.directory)
    full.update(env or {})
    return subprocess.run([PYTHON, "-m", "wucme.challenge.acme_tls_1", *args], env=full, capture_output=True, timeout=20)


def test_agent_prints_cert_then_key(tmp_path: Path) -> None:
    store = ChallengeStore(tmp_path / "ch")
    store.alpn_put("www.example.org", KEYAUTH)
    p = agent(store, "WWW.example.org")
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert out.index(b"BEGIN CERTIFICATE") < out.index(b"BEGIN PRIVATE KEY")
    cert = x509.load_pem_x509_certificate(out)
    key = serialization.load_pem_private_key(out[out.index(b"-----BEGIN PRIVATE KEY"):], None)
    assert_validation_cert(cert, x509.DNSName("www.example.org"), KEYAUTH)
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()  # type: ignore[union-attr]


def test_agent_sni_from_environment_and_ip(tmp_path: Path) -> None:
    store = ChallengeStore(tmp_path / "ch")
    store.alpn_put("192.0.2.7", KEYAUTH)
    p = agent(store, env={"WUCME_SNI": "7.2.0.192.in-addr.arpa"})
    assert p.returncode == 0, p.stderr
    cert = x509.load_pem_x509_certificate(p.stdout)
    ext = cert.extensions.get_extension_for_oid(ACME_IDENTIFIER_OID)
    assert ext.value.value[2:] == hashlib.sha256(KEYAUTH.encode()).digest()  # type: ignore[attr-defined]
    p = agent(store, "--digest", "7.2.0.192.in-addr.arpa")
    assert p.stdout.decode().strip() == auth_digest(KEYAUTH)


def test_agent_refuses_unknown_names(tmp_path: Path) -> None:
    store = ChallengeStore(tmp_path / "ch")
    store.alpn_put("www.example.org", KEYAUTH)
    for name in ("other.example.org", "../../etc", "192.0.2.7"):
        p = agent(store, name)
        assert p.returncode == 2 and p.stdout == b""
        assert p.stderr.startswith(b"%WUCME-E-NOAUTH, ")
    p = agent(store, env={"WUCME_SNI": "", "SERVER_NAME": ""})
    assert p.returncode == 1 and p.stderr.startswith(b"%WUCME-E-NOSNI, ")


def test_the_wucme_command_runs_the_agent(tmp_path: Path) -> None:
    store = ChallengeStore(tmp_path / "ch")
    store.alpn_put("www.example.org", KEYAUTH)
    env = python_env()
    env["WUCME_CHALLENGES"] = str(store.directory)
    p = subprocess.run([PYTHON, "-m", "wucme", "acme_tls_1", "www.example.org"], env=env,
                       capture_output=True, timeout=20)
    assert p.returncode == 0, p.stderr
    assert_validation_cert(x509.load_pem_x509_certificate(p.stdout), x509.DNSName("www.example.org"),
                           KEYAUTH)
    assert b"NOAUTH" in subprocess.run([PYTHON, "-m", "wucme", "acme_tls_1", "none.example.org"],
                                       env=env, capture_output=True, timeout=20).stderr
