"""Start-up budget: `wucme version` and the CGI answer to an http-01 challenge import only what
they need (docs/performance.md, "Start-up").

Both run as a new process each time (the web server starts the wucme image for every challenge
request), so every module they import is paid for on every request.  `python -X importtime`
lists what a process imported; these tests fail when one of the heavy libraries the other
verbs need (cryptography, pyOpenSSL, requests, idna) creeps into either path.  The time itself
is a benchmark (tests/bench/bench_startup.py), never asserted here.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from wucme.challenge.store import ChallengeStore

#: Libraries the two paths must not import (top-level package names).
HEAVY = ("cryptography", "OpenSSL", "requests", "idna", "urllib3", "wucme.dclproc", "wucme.uacme",
         "wucme.renewal", "wucme.session")

TOKEN = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"
KEYAUTH = TOKEN + ".9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"


def imported(args: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run `python -X importtime -m wucme ARGS`; its result and the modules it imported."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "wucme", *args], env=env,
                          capture_output=True, text=True, timeout=60)
    names = {m.group(1) for m in re.finditer(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)$", proc.stderr, re.M)}
    assert "wucme" in names, proc.stderr[-2000:]
    return proc, names


def heavy(names: set[str]) -> list[str]:
    return sorted(n for n in names if any(n == h or n.startswith(h + ".") for h in HEAVY))


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith(("WUCME_", "GATEWAY_", "REQUEST_", "PATH_INFO"))}
    e["WUCME_LNM_DIR"] = str(tmp_path / "lnm")
    e["WUCME_HERE"] = str(tmp_path / "here")
    return e


def test_version_imports_no_crypto_and_no_http_client(env: dict[str, str]) -> None:
    proc, names = imported(["version"], env)
    assert proc.returncode == 0 and proc.stdout.startswith("%WUCME-I-VERSION, wucme ")
    assert heavy(names) == []
    assert "wucme.cli" not in names  # answered by the tiny entry module, wucme.entry


def test_the_entry_answers_version_as_the_verb_does(env: dict[str, str]) -> None:
    """The short cut and the verb say the same; an abbreviation or a qualifier goes to the verb."""
    fast, names = imported(["--version"], env)
    verb, verb_names = imported(["VERS"], env)
    assert "wucme.cli" not in names and "wucme.cli" in verb_names
    assert fast.stdout == verb.stdout and fast.returncode == verb.returncode == 0


def test_cgi_challenge_answer_imports_no_crypto_and_no_http_client(env: dict[str, str], tmp_path: Path) -> None:
    store_dir = tmp_path / "challenges"
    ChallengeStore(store_dir).put(TOKEN, KEYAUTH, "www.example.org", "dns")
    env.update(WUCME_CHALLENGES=str(store_dir), GATEWAY_INTERFACE="CGI/1.1", REQUEST_METHOD="GET",
               SCRIPT_NAME="/cgi-bin/wucme", PATH_INFO=f"/.well-known/acme-challenge/{TOKEN}",
               SERVER_PROTOCOL="HTTP/1.1")
    proc, names = imported([], env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("Status: 200") and proc.stdout.rstrip().endswith(KEYAUTH)
    assert heavy(names) == []
    assert not names & {"wucme.admin", "wucme.verbs", "wucme.command", "traceback", "shutil", "tempfile"}


def test_the_budget_sees_a_heavy_import(env: dict[str, str]) -> None:
    """The check can fail: `issue` does need cryptography, and the same parse finds it."""
    _, names = imported(["issue", "/nosuchqualifier", "x.example.org"], env)
    assert "cryptography" in heavy(names)
