"""Keys either tool writes load in the other (issue 11, point 1).

Debian's uacme is built with GnuTLS, which writes an EC private value as a
minimal integer: 33 bytes for P-256 (49 for P-384) when its high bit is set.
About half the keys `uacme -t EC` makes are like that; wucme must load every one
of them, account keys and certificate keys alike, and uacme must load the keys
wucme writes.
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from wucme import crypto
from wucme._native import pkey

from .uacme_parity import PARITY, Tool, expect, new_accounts

pytestmark = PARITY


def private_octets(pem: Path) -> int:
    """The length of the private OCTET STRING in an EC key file, as openssl sees it."""
    out = subprocess.run(["openssl", "asn1parse", "-in", str(pem)], capture_output=True,
                         text=True, check=True).stdout
    octets = [m.group(1) for m in re.finditer(r" l= *(\d+) prim: OCTET STRING", out)]
    return int(octets[-1])


def spki(key: object) -> bytes:
    return key.public_key().public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.mark.parametrize("bits", [256, 384])
def test_wucme_uses_every_account_key_uacme_makes(tools: tuple[Tool, Tool], bits: int,
                                                  tmp_path: Path) -> None:
    """uacme makes account keys until both shapes occurred (at least 6 keys); wucme signs
    with each: `update` on uacme's confdir finds uacme's account (exit 0)."""
    u, w = tools
    size = bits // 8
    seen: dict[int, int] = {}
    n = 0
    while n < 6 or not {size, size + 1} <= set(seen):
        assert n < 40, f"uacme made no key of both shapes in 40 tries: {seen}"
        confdir = tmp_path / f"acct{n}"
        expect(u("-t", "EC", "-b", str(bits), "-y", "new", confdir=confdir), 0, "uacme")
        key = confdir / "private" / "key.pem"
        octets = private_octets(key)
        seen[octets] = seen.get(octets, 0) + 1
        before = key.read_bytes()
        expect(w("update", f"n{n}@example.org", confdir=confdir), 0,
               f"wucme on uacme's {bits}-bit key with a {octets}-byte private value")
        assert key.read_bytes() == before, "wucme rewrote uacme's key"
        n += 1


@pytest.mark.parametrize("bits", [256, 384])
def test_wucme_issues_with_every_certificate_key_uacme_makes(
        tools: tuple[Tool, Tool], hook_scripts: dict[str, str], bits: int) -> None:
    """uacme makes the certificate key of a name (its issue declined by the hook) until
    both shapes occurred; wucme then issues for that name with uacme's key."""
    u, w = tools
    new_accounts(u)
    size = bits // 8
    seen: set[int] = set()
    n = 0
    while n < 4 or not {size, size + 1} <= seen:
        assert n < 40, f"uacme made no key of both shapes in 40 tries: {seen}"
        name = f"k{n}.example.org"
        expect(u("-t", "EC", "-b", str(bits), "-h", hook_scripts["decline-all"], "issue", name),
               2, "uacme")
        keyfile = u.confdir / "private" / name / "key.pem"
        octets = private_octets(keyfile)
        if octets not in seen or n < 4:
            expect(w("-h", hook_scripts["http-01"], "issue", name, confdir=u.confdir), 0,
                   f"wucme with uacme's {octets}-byte certificate key")
            leaf = x509.load_pem_x509_certificate((u.confdir / name / "cert.pem").read_bytes())
            assert spki(leaf) == spki(crypto.key_load(keyfile))
        seen.add(octets)
        n += 1


def test_uacme_uses_the_ec_keys_wucme_writes(tools: tuple[Tool, Tool],
                                             hook_scripts: dict[str, str]) -> None:
    """wucme's EC account and certificate keys (PKCS#8) work in uacme: it finds the
    account and reissues with wucme's certificate key."""
    u, w = tools
    name = "wk.example.org"
    for bits in ("256", "384"):
        confdir = w.confdir.with_name(f"w{bits}")
        expect(w("-t", "EC", "-b", bits, "-y", "new", confdir=confdir), 0, "wucme")
        expect(w("-t", "EC", "-b", bits, "-h", hook_scripts["http-01"], "issue", name,
                 confdir=confdir), 0, "wucme")
        expect(u("update", "again@example.org", confdir=confdir), 0, "uacme on wucme's key")
        expect(u("-f", "-h", hook_scripts["http-01"], "issue", name, confdir=confdir), 0,
               "uacme with wucme's certificate key")
        leaf = x509.load_pem_x509_certificate((confdir / name / "cert.pem").read_bytes())
        assert spki(leaf) == spki(crypto.key_load(confdir / "private" / name / "key.pem"))


@pytest.mark.parametrize("backend", ["native", "twin"])
@pytest.mark.parametrize("kind,bits", [("EC", 256), ("EC", 384), ("RSA", 2048)])
def test_uacme_uses_the_keys_either_backend_writes(tools: tuple[Tool, Tool], hook_scripts: dict[str, str],
                                                   monkeypatch: pytest.MonkeyPatch, backend: str,
                                                   kind: str, bits: int) -> None:
    """An account key and a certificate key made and written by crypto.key_gen/key_save, on
    the system's libcrypto (wucme._native.pkey) or with `cryptography` (WUCME_NO_NATIVE):
    uacme (GnuTLS) registers with the one and issues with the other, and leaves both as they
    were (it read them: it makes a key only where there is none)."""
    if backend == "native":
        if not pkey.HAS_PKEY:
            pytest.skip("wucme._native._pkey not built")
        monkeypatch.delenv("WUCME_NO_NATIVE", raising=False)
    else:
        monkeypatch.setenv("WUCME_NO_NATIVE", "1")
    u, _ = tools
    name = f"{kind.lower()}{bits}.example.org"
    account, certkey = crypto.key_gen(kind, bits), crypto.key_gen(kind, bits)
    assert isinstance(certkey, pkey.NativeKey) == (backend == "native")
    (u.confdir / "private" / name).mkdir(parents=True, mode=0o700)
    crypto.key_save(u.confdir / "private" / "key.pem", account, 0o400)
    crypto.key_save(u.confdir / "private" / name / "key.pem", certkey, 0o400)
    files = {p: p.read_bytes() for p in (u.confdir / "private").rglob("key.pem")}
    expect(u("-y", "new", "keys@example.org"), 0, "uacme with wucme's account key")
    expect(u("-t", kind, "-b", str(bits), "-h", hook_scripts["http-01"], "issue", name), 0,
           "uacme with wucme's certificate key")
    assert {p: p.read_bytes() for p in (u.confdir / "private").rglob("key.pem")} == files
    leaf = x509.load_pem_x509_certificate((u.confdir / name / "cert.pem").read_bytes())
    assert spki(leaf) == spki(crypto_key(certkey))


def crypto_key(key: crypto.PrivateKey) -> object:
    return key.to_cryptography() if isinstance(key, pkey.NativeKey) else key
