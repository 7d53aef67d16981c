"""Issue 12 item 2: `python3 build.py install` makes a working production system, and
`uninstall` takes it away again, leaving only the repository.

The install goes into a scratch prefix and a scratch root (--root: every /etc, /usr and /var
path under it), so the machine's own /etc is never touched.  It is run by Debian's python3 as
an administrator would, and the CGI script it installs is run by Debian's Apache as www-data
to answer Pebble's http-01 validation.
"""
from __future__ import annotations

import base64
import http.client
import json
import os
import ssl
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.pebble import Pebble, free_port, make_server_cert, make_test_ca
from harness.webservers import APACHE_MODULES, apache_available, shared_dir
from wucme import crypto
from wucme.challenge.store import ChallengeStore
from wucme.repository import Repository
from wucme.uacme.cert import cert_order

from .support import Acme, http01_responder, unique_names
from .test_admin import _MODULES, PASSWORD, USER, AdminApache

CHECKOUT = Path(__file__).resolve().parents[2]
PYTHON = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable


@dataclass
class Installed:
    prefix: Path
    root: Path
    output: str

    def at(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    @property
    def repository(self) -> Path:
        return self.at("/var/lib/wucme")


def build(verb: str, top: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PYTHON, str(CHECKOUT / "build.py"), verb, "--prefix", str(top / "opt" / "wucme"),
                           "--root", str(top / "root"), *extra], capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def installed() -> Iterator[Installed]:
    if os.geteuid() != 0:
        pytest.skip("build.py install runs as root")
    top = shared_dir("wucme-install-")
    try:
        r = build("install", top)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        yield Installed(top / "opt" / "wucme", top / "root", r.stdout)
    finally:
        shutil.rmtree(top, ignore_errors=True)


def mode(p: Path) -> int:
    return stat.S_IMODE(p.lstat().st_mode)


def owner(p: Path) -> tuple[str, str]:
    import grp
    import pwd

    st = p.stat()
    return pwd.getpwuid(st.st_uid).pw_name, grp.getgrgid(st.st_gid).gr_name


def test_install_puts_each_piece_where_debian_expects_it(installed: Installed) -> None:
    venv = installed.prefix / "venv"
    wucme = installed.at("/usr/local/bin/wucme")
    assert wucme.is_symlink() and wucme.resolve() == (venv / "bin" / "wucme").resolve()
    out = subprocess.run([str(wucme), "version"], capture_output=True, text=True, check=True).stdout
    assert "wucme" in out.lower()
    # production: wucme and its dependencies, none of the test packages
    packages = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "list", "--format=json"],
                              capture_output=True, text=True, check=True).stdout
    names = {p["name"].lower() for p in json.loads(packages)}
    assert {"wucme", "cryptography", "pyopenssl", "requests"} <= names
    assert not names & {"pytest", "hypothesis", "mypy", "aiosmtpd"}
    # the CGI script, the agent's unit (not enabled), the server snippets (not enabled)
    cgi = installed.at("/usr/lib/cgi-bin/wucme")
    assert mode(cgi) == 0o755 and str(venv) in cgi.read_text()
    unit = installed.at("/etc/systemd/system/wucme-agent.service")
    assert f"ExecStart={venv}/bin/wucme agent" in unit.read_text()
    assert not installed.at("/etc/systemd/system/multi-user.target.wants/wucme-agent.service").exists()
    apache = installed.at("/etc/apache2/conf-available/wucme.conf")
    assert f"Define WUCME_SCRIPT {cgi}" in apache.read_text()
    assert not installed.at("/etc/apache2/conf-enabled/wucme.conf").exists()
    assert "ssl_preread" in installed.at("/etc/nginx/snippets/wucme.conf").read_text()
    # man wucme and the bash completion
    page = installed.at("/usr/local/share/man/man1/wucme.1")
    assert page.resolve() == installed.prefix / "share/man/man1/wucme.1" and ".TH WUCME 1" in page.read_text()
    assert "complete -F _wucme wucme" in installed.at("/usr/share/bash-completion/completions/wucme").read_text()


def test_the_repository_lets_the_web_server_in_but_not_to_the_keys(installed: Installed) -> None:
    repo = installed.repository
    assert owner(repo) == ("root", "www-data") and mode(repo) == 0o750
    assert mode(repo / "WUCME_CHALLENGES") == 0o755
    table = repo / "lnm" / "system.json"
    assert owner(table) == ("root", "www-data") and mode(table) == 0o640
    assert json.loads(table.read_text())["names"]["WUCME_HERE"]["values"] == [str(repo)]
    # www-data may list the challenge store, not read a key written by root
    key = repo / "WUCME_K_WWW_EXAMPLE_ORG.PEM"
    key.write_text("-----BEGIN PRIVATE KEY-----\n")
    key.chmod(0o600)
    try:
        r = subprocess.run(["su", "-s", "/bin/sh", "www-data", "-c", f"ls {repo}/WUCME_CHALLENGES && cat {key}"],
                           capture_output=True, text=True)
        assert r.returncode != 0 and "Permission denied" in r.stderr
    finally:
        key.unlink()


def test_systemd_accepts_the_agent_unit(installed: Installed) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not installed (Debian package systemd)")
    unit = installed.at("/etc/systemd/system/wucme-agent.service")
    r = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
    assert r.returncode == 0 and "wucme-agent" not in r.stderr, r.stderr


def test_apache_runs_the_installed_script_as_www_data_for_pebble_and_the_admin_pages(
        installed: Installed, pebble: Pebble, acme: Acme) -> None:
    if not apache_available() or not all((APACHE_MODULES / f"mod_{m}.so").exists() for m in _MODULES):
        pytest.skip("apache2 with mod_cgid, mod_ssl and the auth modules not installed (Debian package apache2)")
    if shutil.which("htpasswd") is None:
        pytest.skip("htpasswd not installed (Debian package apache2-utils)")
    work = shared_dir("wucme-apache-")
    try:
        users = work / "admin.htpasswd"
        subprocess.run(["htpasswd", "-cbB", str(users), USER, PASSWORD], check=True, capture_output=True)
        users.chmod(0o644)
        ca, ca_key = make_test_ca(work / "tls")
        cert, key = make_server_cert(work / "tls", (ca, ca_key))
        https_port = free_port()
        extra = (f'Listen 127.0.0.1:{https_port}\n<VirtualHost 127.0.0.1:{https_port}>\n    SSLEngine on\n'
                 f'    SSLCertificateFile "{cert}"\n    SSLCertificateKeyFile "{key}"\n</VirtualHost>\n')
        web = AdminApache(pebble.http_port, lnm_dir=installed.repository / "lnm",
                          script=installed.at("/usr/lib/cgi-bin/wucme"), workdir=work / "apache",
                          extra_config=extra, users=users)
        store = ChallengeStore(installed.repository / "WUCME_CHALLENGES")
        with web:
            assert web.user == "www-data"
            # Pebble's http-01 validation, answered by the installed script run by Apache
            names = unique_names(2)
            certkey = crypto.key_gen("EC", 256)
            pem = cert_order(acme.session, names, crypto.csr_gen(names, False, False, certkey),
                             solver=http01_responder(store))
            Repository(installed.repository).save_certificate(names, certkey, pem, "http-01")
            # the admin page, authenticated over HTTPS, as www-data: it lists the certificate
            # by its state file, never reading WUCME_C_/WUCME_K_ (0600 root: they hold the key)
            ctx = ssl.create_default_context(cafile=str(ca))
            conn = http.client.HTTPSConnection("localhost", https_port, context=ctx, timeout=30)
            auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
            conn.request("GET", "/cgi-bin/wucme/admin/cert?format=json", headers={"Authorization": f"Basic {auth}"})
            resp = conn.getresponse()
            body = resp.read().decode()
            conn.close()
            assert resp.status == 200, body
            [rec] = [c for c in json.loads(body)["certificates"] if c["hosts"] == names]
            assert rec["state"] == "valid" and rec["days_left"] > 1 and rec["not_after"]
            for f in (rec["file"], rec["key_file"]):
                assert mode(Path(f)) == 0o600 and owner(Path(f))[0] == "root"
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_install_again_changes_nothing_and_uninstall_leaves_only_the_repository(installed: Installed) -> None:
    top = installed.prefix.parents[1]
    before = {p: p.lstat().st_mtime_ns for p in installed.root.rglob("*")}
    r = build("install", top)
    assert r.returncode == 0 and "pip install" not in r.stdout, r.stdout + r.stderr
    assert {p: p.lstat().st_mtime_ns for p in installed.root.rglob("*") if p in before and p.is_symlink()} == \
        {p: t for p, t in before.items() if p.is_symlink()}
    r = build("install", top, "--enable")
    assert r.returncode == 0, r.stderr
    assert installed.at("/etc/systemd/system/multi-user.target.wants/wucme-agent.service").is_symlink()
    assert installed.at("/etc/apache2/conf-enabled/wucme.conf").resolve() == \
        installed.at("/etc/apache2/conf-available/wucme.conf")

    r = build("uninstall", top)
    assert r.returncode == 0, r.stderr
    assert not installed.prefix.exists()
    left = sorted(str(p.relative_to(installed.root)) for p in installed.root.rglob("*") if not p.is_dir())
    assert left and all(p.startswith("var/lib/wucme/") for p in left), left
    assert (installed.repository / "lnm" / "system.json").exists()


REAL_PATHS = ["/opt/wucme", "/usr/local/bin/wucme", "/usr/lib/cgi-bin/wucme", "/etc/systemd/system/wucme-agent.service",
              "/etc/apache2/conf-available/wucme.conf", "/etc/nginx/snippets/wucme.conf",
              "/usr/local/share/man/man1/wucme.1", "/usr/share/bash-completion/completions/wucme", "/var/lib/wucme"]


@pytest.mark.skipif(os.environ.get("WUCME_TEST_REAL_INSTALL") != "1",
                    reason="installs into the machine's own / (set WUCME_TEST_REAL_INSTALL=1 on a scratch machine)")
def test_real_install_into_the_root_and_uninstall() -> None:
    if os.geteuid() != 0:
        pytest.skip("build.py install runs as root")
    present = [p for p in REAL_PATHS if os.path.lexists(p)]
    if present:
        pytest.skip(f"wucme is already installed here ({', '.join(present)}): not touched")
    try:
        r = subprocess.run([PYTHON, str(CHECKOUT / "build.py"), "install"], capture_output=True, text=True, timeout=900)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        out = subprocess.run(["wucme", "version"], capture_output=True, text=True, env={"PATH": "/usr/local/bin:/usr/bin:/bin"})
        assert out.returncode == 0 and "wucme" in out.stdout.lower()
        man = subprocess.run(["man", "-w", "wucme"], capture_output=True, text=True)
        assert Path(man.stdout.strip()).resolve() == Path("/opt/wucme/share/man/man1/wucme.1"), man.stderr
        if shutil.which("systemd-analyze"):
            v = subprocess.run(["systemd-analyze", "verify", "/etc/systemd/system/wucme-agent.service"],
                               capture_output=True, text=True)
            assert v.returncode == 0, v.stderr
        r = subprocess.run([PYTHON, str(CHECKOUT / "build.py"), "uninstall"], capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        assert [p for p in REAL_PATHS if os.path.lexists(p)] == ["/var/lib/wucme"]
    finally:
        subprocess.run([PYTHON, str(CHECKOUT / "build.py"), "uninstall"], capture_output=True, timeout=300)
        shutil.rmtree("/var/lib/wucme", ignore_errors=True)  # the test's own repository
