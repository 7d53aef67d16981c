"""The shipped com/ procedures run by wucme's DCL as real processes, against real servers on loopback."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509

from harness.pebble import Pebble
from harness.responders import ChallengeDirServer
from wucme.challenge.store import ChallengeStore
from wucme.command import split_list
from wucme.dclproc import run_procedure_status
from wucme.dclproc.status import linux_exit
from wucme.challenge.tlsalpn import ACME_IDENTIFIER_OID, TlsAlpnResponder
from wucme.vms import lnm

COM = Path(__file__).resolve().parents[2] / "com"
KEYAUTH = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"
TEN = ["www.example.org", "two.example.org", "three.example.org", "four.example.org", "five.example.org",
       "six.example.org", "seven.example.org", "eight.example.org", "nine.example.org", "ten.example.org"]


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WUCME_", "_WUCME_", "UACME_", "WASD_"))}
    env.update(WUCME_LNM_DIR=os.environ["WUCME_LNM_DIR"], WUCME_HERE=str(tmp_path / "here"),
               WUCME_ALPN_SOCKET=str(tmp_path / "alpn.sock"))
    env.update(extra)
    return env


def dcl(*argv: str, env: dict[str, str], cwd: Path | None = None,
        timeout: float = 60) -> subprocess.CompletedProcess[str]:
    r = subprocess.run([sys.executable, "-m", "wucme.dclproc", *argv], env=env, cwd=cwd, text=True,
                       capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
    assert "Traceback" not in r.stderr, r.stderr
    return r


def test_startup_defines_system_logicals_from_symbols(tmp_path: Path) -> None:
    site = tmp_path / "SITE_STARTUP.COM"
    site.write_text(f'''$! a site startup, as the seed shows it
$ WUCME_MAIL = "SYSTEM,smtp%""webmaster@example.org"""
$ WUCME_OPCOM = "CENTRAL,NETWORK"
$ WUCME_ACTIVE = "*"
$ WUCME_HERE = "{tmp_path}/certs"
$ @{COM}/WUCME_STARTUP.COM
$ WUCME_OPCOM = ""
$ WUCME_VERBOSE = "*"
$ @{COM}/WUCME_STARTUP
''')
    r = dcl(f"@{site}", env=clean_env(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "%WUCME-S-STARTUP, 4 logical name(s) defined" in r.stdout
    assert "%WUCME-I-DEASSIGNED, WUCME_OPCOM" in r.stdout
    mail = lnm.lookup("WUCME_MAIL", "system")
    assert mail is not None and mail.values == ('SYSTEM,smtp%"webmaster@example.org"',)
    assert mail.mode == "EXECUTIVE"
    assert lnm.translate_items("WUCME_MAIL", "system") == ["SYSTEM", 'smtp%"webmaster@example.org"']
    assert lnm.trnlnm("WUCME_ACTIVE", "system") == "*"
    assert lnm.trnlnm("WUCME_HERE", "system") == f"{tmp_path}/certs"
    assert lnm.trnlnm("WUCME_VERBOSE", "system") == "*"
    assert lnm.lookup("WUCME_OPCOM", "system") is None
    assert lnm.lookup("WUCME_CA", "system") is None  # no symbol, no definition


def documented_logical_names() -> set[str]:
    """Every logical name the docs list: the tables of docs/logical-names.md and docs/agent.md
    and the reporting paragraph, less the two that locate the tables (environment only)."""
    import re

    docs = COM.parent / "docs"
    names: set[str] = set()
    for doc in ("logical-names.md", "agent.md"):
        for line in (docs / doc).read_text().splitlines():
            if line.startswith("| ") and "WUCME_" in line.split("|")[1]:
                names |= set(re.findall(r"WUCME_[A-Z0-9_]*[A-Z0-9]", line.split("|")[1]))
    text = (docs / "logical-names.md").read_text()
    names |= set(re.findall(r"`(WUCME_[A-Z0-9_]*[A-Z0-9])`", text.split("Reporting (")[1].split("\n\n")[0]))
    return names - {"WUCME_LNM_DIR", "WUCME_LNM_CLUSTER_DIR"}


def test_startup_takes_every_documented_logical_name(tmp_path: Path) -> None:
    names = documented_logical_names()
    assert {"WUCME_SMTP", "WUCME_SYSLOG", "WUCME_SCHEDULE", "WUCME_SERVICES", "WUCME_LOCK_DB"} <= names
    site = tmp_path / "SITE_STARTUP.COM"
    site.write_text("".join(f'$ {n} = "value of {n.lower()}"\n' for n in sorted(names))
                    + f"$ @{COM}/WUCME_STARTUP.COM\n")
    r = dcl(f"@{site}", env=clean_env(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"%WUCME-S-STARTUP, {len(names)} logical name(s) defined" in r.stdout
    missing = sorted(n for n in names if lnm.trnlnm(n, "system") != f"value of {n.lower()}")
    assert missing == []


@pytest.fixture
def alpn_responder(tmp_path: Path) -> Iterator[tuple[TlsAlpnResponder, ChallengeStore]]:
    store = ChallengeStore(tmp_path / "here" / "WUCME_CHALLENGES")
    store.alpn_put("www.example.org", KEYAUTH)
    with TlsAlpnResponder(store, "127.0.0.1", 0, timeout=2.0) as r:
        yield r, store


def test_test_acme_tls_1_against_wucme_responder(tmp_path: Path,
                                                 alpn_responder: tuple[TlsAlpnResponder, ChallengeStore]) -> None:
    responder, _ = alpn_responder
    r = dcl(f"@{COM}/TEST_ACME_TLS_1", "WWW.example.org,unknown.example.org", f"127.0.0.1:{responder.port}",
            env=clean_env(tmp_path))
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    parts = r.stdout.split("%WUCME-I-TESTING, ")[1:]
    assert [p.splitlines()[0] for p in parts] == [
        f"acme-tls/1 for www.example.org at 127.0.0.1:{responder.port}",
        f"acme-tls/1 for unknown.example.org at 127.0.0.1:{responder.port}"]
    assert "ALPN protocol: acme-tls/1" in parts[0] and "No ALPN negotiated" in parts[1]
    assert responder.validations == 1
    # nothing listening: s_client fails, and so does the procedure
    r = dcl(f"@{COM}/TEST_ACME_TLS_1", "www.example.org", "127.0.0.1:1", env=clean_env(tmp_path))
    assert r.returncode != 0
    r = dcl(f"@{COM}/TEST_ACME_TLS_1", env=clean_env(tmp_path))
    assert r.returncode == 4 and "%WUCME-E-USAGE" in r.stderr


def test_acme_tls_1_agent_wrapper(tmp_path: Path, alpn_responder: tuple[TlsAlpnResponder, ChallengeStore]) -> None:
    r = dcl(f"@{COM}/ACME_TLS_1.COM", "www.example.org", env=clean_env(tmp_path))
    assert r.returncode == 0, r.stderr
    [cert] = x509.load_pem_x509_certificates(r.stdout.encode())
    assert cert.extensions.get_extension_for_oid(ACME_IDENTIFIER_OID).critical
    assert "PRIVATE KEY-----" in r.stdout
    r = dcl(f"@{COM}/ACME_TLS_1.COM", env=clean_env(tmp_path, SERVER_NAME="other.example.org"))
    assert r.returncode == 2 and "%WUCME-E-NOAUTH" in r.stderr and "other.example.org" in r.stderr
    r = dcl(f"@{COM}/ACME_TLS_1.COM", env=clean_env(tmp_path))
    assert r.returncode == 4 and "%WUCME-E-NOSNI" in r.stderr


def test_certify_example_services_fails_fast_without_a_ca(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The continued `wucme issue` line reaches wucme whole, as the C run-time would split it."""
    for k, v in clean_env(tmp_path, WUCME_CA="https://127.0.0.1:1/dir").items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("WUCME_VERBOSE", raising=False)
    out, err = io.StringIO(), io.StringIO()
    status, interp = run_procedure_status(str(COM / "CERTIFY_EXAMPLE_SERVICES.COM"), [], out, err)
    [argv] = interp.images
    assert argv[:4] == [sys.executable, "-m", "wucme", "issue"]
    assert argv[4:] == ["www.example.org,two.example.org,three.example.org,",
                        "four.example.org,five.example.org,six.example.org,seven.example.org,",
                        "eight.example.org,nine.example.org,ten.example.org"]
    assert split_list(argv[4:]) == TEN  # what wucme's own parser makes of it
    assert linux_exit(status) == 2 and "%WUCME-E-" in err.getvalue()  # the CA is not there


@pytest.mark.pebble
def test_certify_example_services_issues_all_ten_names(pebble: Pebble, tmp_path: Path) -> None:
    env = clean_env(tmp_path, WUCME_CA=pebble.directory_url, WUCME_CA_BUNDLE=pebble.ca_bundle,
                    WUCME_HTTP01=f"127.0.0.1:{pebble.http_port}", WUCME_CHALLENGE="http-01")
    reg = tmp_path / "REGISTER.COM"
    reg.write_text("$ wucme = \"$cgi_exe:wucme\"\n$ wucme register webmaster@example.org\n")
    r = dcl(f"@{reg}", env=env)
    assert r.returncode == 0, r.stderr
    r = dcl(f"@{COM}/CERTIFY_EXAMPLE_SERVICES.COM", env=env, timeout=90)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "%WUCME-S-ISSUED, certificate for www.example.org (10 names)" in r.stdout
    leaf = x509.load_pem_x509_certificates((tmp_path / "here" / "WUCME_C_WWW_EXAMPLE_ORG.PEM").read_bytes())[0]
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(names.get_values_for_type(x509.DNSName)) == sorted(TEN)


@pytest.mark.pebble
def test_uacme_hook_procedure_answers_http01(pebble: Pebble, challenge_dir_server: ChallengeDirServer,
                                             tmp_path: Path) -> None:
    """`wucme --uacme -h com/UACME_HOOK.COM`: uacme execs the procedure itself (its #! line)."""
    hook = COM / "UACME_HOOK.COM"
    assert os.access(hook, os.X_OK)
    challenge_dir_server.root_dir.mkdir(parents=True, exist_ok=True)
    env = clean_env(tmp_path, WUCME_CA_BUNDLE=pebble.ca_bundle,
                    UACME_CHALLENGE_PATH=str(challenge_dir_server.root_dir))
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"  # the #! line's python3
    base = [sys.executable, "-m", "wucme", "--uacme", "-v", "-c", str(tmp_path / "conf"), "-a", pebble.directory_url]
    r = subprocess.run(base + ["-y", "new"], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    r = subprocess.run(base + ["-h", str(hook), "issue", "hook.example.org"], env=env, capture_output=True,
                       text=True, timeout=90)
    assert r.returncode == 0, r.stderr[-3000:]
    assert challenge_dir_server.requests >= 1
    assert list(challenge_dir_server.root_dir.iterdir()) == []  # "done" deleted the token file
    assert (tmp_path / "conf" / "hook.example.org" / "cert.pem").is_file()
