"""Issue 12 item 5: a real browser (headless Chromium) reads the admin certificate page
through Apache over HTTPS with Basic authentication, after Pebble issued the certificates.

The screenshot is kept: tests/artifacts/admin-cert.png (git-ignored), to be looked at.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.pebble import Pebble
from wucme import crypto
from wucme.challenge.http01 import Http01Listener
from wucme.challenge.store import ChallengeStore
from wucme.uacme.cert import cert_order

from .support import Acme, http01_responder, unique_names
from .test_admin import ADMIN, PASSWORD, USER, Site, _give_to, site  # noqa: F401 - the fixture

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return name
    pytest.skip("no headless browser (Debian package chromium)")


def browse(url: str, tmp_path: Path, *, screenshot: Path | None = None) -> str:
    """The page's DOM after Chromium loaded it (and its screenshot, when asked)."""
    argv = [chromium(), "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--ignore-certificate-errors", "--no-first-run", "--hide-scrollbars",
            f"--user-data-dir={tmp_path / 'chromium-profile'}", "--window-size=1400,1000"]
    if screenshot is not None:
        subprocess.run(argv + [f"--screenshot={screenshot}", url], capture_output=True, timeout=120, check=True)
    r = subprocess.run(argv + ["--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


def test_chromium_reads_the_certificates_pebble_issued(site: Site, pebble: Pebble, acme: Acme,
                                                       tmp_path: Path) -> None:
    store = ChallengeStore(tmp_path / "challenges")
    many = unique_names(100)
    few = unique_names(2)
    with Http01Listener(store, "127.0.0.1", pebble.http_port):
        for names in (few, many):
            key = crypto.key_gen("EC", 256)
            pem = cert_order(acme.session, names, crypto.csr_gen(names, False, False, key),
                             solver=http01_responder(store))
            site.repo.save_certificate(names, key, pem, "http-01")
    _give_to(site.repo.path, site.web.user)

    url = f"https://{USER}:{PASSWORD}@localhost:{site.https_port}{ADMIN}/cert"
    shot = tmp_path / "admin-cert.png"
    dom = browse(url, tmp_path, screenshot=shot)
    assert "%WUCME-S-CERTS, 3 certificates in" in dom
    assert f"<summary>{many[0]} +99</summary>" in dom  # the long list collapsed
    assert f'<td><span class="n">{few[0]}</span> <span class="n">{few[1]}</span></td>' in dom
    rows = re.findall(r"<tr>.*?</tr>", dom, re.S)
    assert len(rows) == 4  # the heading and one row a certificate
    assert shot.stat().st_size > 10_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(shot, ARTIFACTS / "admin-cert.png")

    # without the password: Apache's 401, never the page
    dom = browse(f"https://localhost:{site.https_port}{ADMIN}/cert", tmp_path)
    assert "WUCME_C_" not in dom
