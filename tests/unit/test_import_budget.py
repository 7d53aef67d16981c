"""Start-up budget: `wucme version` and the CGI answer to an http-01 challenge import only what
they need (docs/performance.md, "Start-up").

Both run as a new process each time (the web server starts the wucme image for every challenge
request), so every module they import is paid for on every request.  `python -X importtime`
lists what a real process imported; the modules a path adds to the interpreter's own start (the
same interpreter and environment running `pass`) are compared with what the path needs.  These
tests fail when one of the heavy libraries the other verbs need (cryptography, pyOpenSSL,
requests) or a module of another path creeps in.  The time itself is a benchmark
(tests/bench/bench_challenges.py, docs/performance.md), never asserted here.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.pebble import Pebble
from wucme._native import certscan, pkey
from wucme.challenge.store import ChallengeStore

#: Libraries and wucme parts neither path may import (a name or a package).
HEAVY = ("cryptography", "OpenSSL", "requests", "idna", "urllib3", "certifi", "psycopg", "cffi",
         "wucme.dclproc", "wucme.uacme", "wucme.renewal", "wucme.session", "wucme.verbs", "wucme.command",
         "wucme.result", "wucme.cli", "wucme.web", "wucme.admin", "wucme.agent", "wucme.settings",
         "wucme.challenge.store", "wucme.challenge.http01", "wucme.vms.filespec", "wucme.vms.condition",
         "wucme.http", "wucme.core", "wucme.crypto", "wucme._native")
#: The standard library's heavier modules, none of which the CGI answer needs: each was on its
#: path once (dataclasses brings inspect and ast; pathlib brings urllib.parse and ipaddress;
#: hashlib loads OpenSSL's libcrypto).
STDLIB_HEAVY = ("dataclasses", "inspect", "ast", "typing", "pathlib", "urllib", "ipaddress", "socket",
                "selectors", "threading", "datetime", "hashlib", "_hashlib", "signal", "subprocess",
                "logging", "email", "ssl", "tempfile", "shutil", "traceback", "argparse", "http", "wsgiref")
#: What the CGI answer imports of wucme: the entry, the answer, the store's reader, the logical
#: name lookup that finds the store, and what they raise.
CGI_WUCME = {"wucme", "wucme.entry", "wucme.challenge", "wucme.challenge.answer", "wucme.challenge.storefile",
             "wucme.locations", "wucme.errors", "wucme.vms", "wucme.vms.message", "wucme.vms.secure",
             "wucme.vms.lnm", "wucme.vms.dcllex"}
#: At most this many modules over the interpreter's own start (28 with Python 3.11 in the
#: project's environment, where `re` is already loaded at start; about 45 without it).
CGI_MAX_MODULES = 50
#: How the console script (and the CGI launcher, which runs it) starts wucme.
ENTRY = "import sys; from wucme.entry import main; sys.exit(main())"

TOKEN = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"
KEYAUTH = TOKEN + ".9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"


def imported(code: str, args: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run `python -X importtime -c CODE ARGS`; its result and the modules it imported."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", code, *args], env=env,
                          capture_output=True, text=True, timeout=60)
    names = {m.group(1) for m in re.finditer(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)$", proc.stderr, re.M)}
    assert names, proc.stderr[-2000:]
    return proc, names


def added(code: str, args: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """What running CODE imports beyond the interpreter's own start in the same environment."""
    _, start = imported("pass", [], env)
    proc, names = imported(code, args, env)
    return proc, names - start


def heavy(names: set[str], prefixes: tuple[str, ...] = HEAVY) -> list[str]:
    return sorted(n for n in names if any(n == h or n.startswith(h + ".") for h in prefixes))


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items()
         if not k.startswith(("WUCME_", "_WUCME_", "GATEWAY_", "REQUEST_", "PATH_INFO", "SCRIPT_NAME"))}
    e["WUCME_LNM_DIR"] = str(tmp_path / "lnm")
    e["WUCME_HERE"] = str(tmp_path / "here")
    return e


@pytest.fixture
def cgi_env(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    store_dir = tmp_path / "challenges"
    ChallengeStore(store_dir).put(TOKEN, KEYAUTH, "www.example.org", "dns")
    return dict(env, WUCME_CHALLENGES=str(store_dir), GATEWAY_INTERFACE="CGI/1.1", REQUEST_METHOD="GET",
                SCRIPT_NAME="/cgi-bin/wucme", PATH_INFO=f"/.well-known/acme-challenge/{TOKEN}",
                SERVER_PROTOCOL="HTTP/1.1")


def test_version_imports_the_entry_alone(env: dict[str, str]) -> None:
    proc, names = added(ENTRY, ["version"], env)
    assert proc.returncode == 0 and proc.stdout.startswith("%WUCME-I-VERSION, wucme ")
    assert names == {"wucme", "wucme.entry"}


def test_the_entry_answers_version_as_the_verb_does(env: dict[str, str]) -> None:
    """The short cut and the verb say the same; an abbreviation or a qualifier goes to the verb."""
    fast, names = imported(ENTRY, ["--version"], env)
    verb, verb_names = imported(ENTRY, ["VERS"], env)
    assert "wucme.cli" not in names and "wucme.cli" in verb_names
    assert fast.stdout == verb.stdout and fast.returncode == verb.returncode == 0


def test_cgi_challenge_answer_imports_what_it_needs(cgi_env: dict[str, str]) -> None:
    proc, names = added(ENTRY, [], cgi_env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("Status: 200") and proc.stdout.rstrip().endswith(KEYAUTH)
    assert heavy(names) == []
    assert heavy(names, STDLIB_HEAVY) == []
    assert {n for n in names if n.split(".")[0] == "wucme"} == CGI_WUCME
    assert len(names) <= CGI_MAX_MODULES, sorted(names)


def test_cgi_head_request_and_unknown_token_stay_on_the_small_path(cgi_env: dict[str, str]) -> None:
    for env in (dict(cgi_env, REQUEST_METHOD="HEAD"),
                dict(cgi_env, PATH_INFO="/.well-known/acme-challenge/unknown"),
                dict(cgi_env, PATH_INFO="/.well-known/acme-challenge/..%2f")):
        proc, names = added(ENTRY, [], env)
        assert proc.returncode == 0 and proc.stdout.startswith("Status: "), proc.stderr[-2000:]
        assert {n for n in names if n.split(".")[0] == "wucme"} == CGI_WUCME


def test_the_budget_sees_a_heavy_import(env: dict[str, str], cgi_env: dict[str, str]) -> None:
    """The checks can fail: `issue` does need cryptography, and an admin page goes to the full
    script (wucme.web and the settings), and the same parse finds both."""
    _, names = added(ENTRY, ["issue", "/nosuchqualifier", "x.example.org"], env)
    assert "wucme.crypto" in heavy(names)
    proc, names = added(ENTRY, [], dict(cgi_env, PATH_INFO="/admin/"))
    assert proc.returncode == 0
    assert {"wucme.web", "wucme.settings"} <= set(heavy(names)) and heavy(names, STDLIB_HEAVY)


#: What `wucme issue` leaves out (docs/performance.md, "`wucme issue`: the lean path"): the X.509
#: classes (the CSR is written with wucme.core.der, the chain read by the native scanner), IDNA
#: for names that are ASCII already, and the parts of wucme other verbs need.
ISSUE_NEVER = ("cryptography.x509", "idna", "OpenSSL", "requests", "wucme.renewal", "wucme.reporting",
               "wucme.load", "wucme.challenge.alpn", "wucme.challenge.tlsalpn", "wucme.web", "wucme.dclproc")


def key_matches_chain(here: Path, host: str) -> bool:
    """Do the key file and the chain `issue` wrote for *host* go together?  Read with
    `cryptography`, with its full key check, whichever backend wrote them."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from wucme.repository import Repository
    repo = Repository(here)
    key = serialization.load_pem_private_key(repo.key_path(host).read_bytes(), None)
    leaf = x509.load_pem_x509_certificates(repo.cert_path(host).read_bytes())[0]
    fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return bool(key.public_key().public_bytes(*fmt) == leaf.public_key().public_bytes(*fmt))


@pytest.mark.pebble
@pytest.mark.skipif(not certscan.HAS_CERTSCAN or not pkey.HAS_PKEY,
                    reason="the native certificate scan or keys are not built")
def test_issue_imports_no_cryptography(env: dict[str, str], pebble: Pebble) -> None:
    """A real `wucme register` and `wucme issue` against Pebble, twice (a first certificate, then
    one for its first name over it, whose old chain is read too): the keys, the CSR and the
    signatures are made on the system's libcrypto (wucme._native.pkey), the chain is read by the
    native scan, so `cryptography`, and the OpenSSL of its own it loads, are never imported."""
    env = dict(env, WUCME_CA=pebble.directory_url, WUCME_CA_BUNDLE=pebble.ca_bundle,
               WUCME_CHALLENGE="http-01", WUCME_HTTP01=f"127.0.0.1:{pebble.http_port}")
    proc, names = added(ENTRY, ["register", "budget@example.org"], env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert heavy(names, ("cryptography",)) == [] and "wucme._native._pkey" in names
    for hosts in ("budget.example.org,www.budget.example.org", "budget.example.org"):
        proc, names = added(ENTRY, ["issue", "/noprogress", hosts], env)
        assert proc.returncode == 0 and "%WUCME-S-ISSUED" in proc.stdout, proc.stderr[-2000:]
        assert heavy(names, ("cryptography",)) == [] and "wucme.uacme.cert" in names
        assert heavy(names, ISSUE_NEVER) == []
        assert key_matches_chain(Path(env["WUCME_HERE"]), "budget.example.org")
    # One name: one authorization, answered without a thread pool (concurrent.futures brings
    # logging); and no `idna` codec for the CA's ASCII host name (stringprep, unicodedata).
    assert heavy(names, ("concurrent", "logging", "encodings.idna", "stringprep", "unicodedata")) == []
    # Its records are named tuples and plain classes: no `dataclasses`, which brings `inspect`,
    # `ast`, `dis` and `tokenize` (about 6 ms of a start on this machine).
    assert heavy(names, ("dataclasses", "inspect", "ast")) == []
    # ... and without the native modules the twins do it all with `cryptography` (its keys, its
    # X.509 for the chain), reading the account key the native one wrote.
    proc, names = added(ENTRY, ["issue", "/noprogress", "budget.example.org"], dict(env, WUCME_NO_NATIVE="1"))
    assert proc.returncode == 0 and "%WUCME-S-ISSUED" in proc.stdout, proc.stderr[-2000:]
    assert {"cryptography.x509", "cryptography.hazmat.primitives.asymmetric.ec"} <= names
    assert key_matches_chain(Path(env["WUCME_HERE"]), "budget.example.org")
