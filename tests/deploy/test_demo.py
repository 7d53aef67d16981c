"""The demo (`python3 build.py demo`) runs end to end against a local Pebble.

build.py runs it as `python -m harness.demo` on the project's environment with tests/ on the
path; so does this test, with the temporary files in the test's own directory.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.pebble import pebble_available

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.pebble


def test_demo_runs_the_uacme_port_and_the_verbs_against_pebble(tmp_path: Path) -> None:
    if not pebble_available():
        pytest.skip("pebble / pebble-challtestsrv not installed (Debian package pebble)")
    env = dict(os.environ, TMPDIR=str(tmp_path), PYTHONPATH=str(ROOT / "tests"))
    r = subprocess.run([sys.executable, "-m", "harness.demo"], capture_output=True, text=True, env=env,
                       cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    out = r.stdout
    assert "%WUCME-S-DEMO," in out
    for step in ("register an account", "issue a certificate for two names", "revoke it",
                 "register the wµCME account", "issue an IDN name", "one renewal pass", "revoke one"):
        assert f"=== {step}" in out, step
    assert "WUCME_C_WWW_EXAMPLE_ORG.PEM" in out and "WUCME_C_XN--BCHER-KVA_EXAMPLE_ORG.PEM" in out
    assert "Traceback" not in out + r.stderr
