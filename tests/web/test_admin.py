"""The admin pages through real Apache: Basic authentication, an HTTPS vhost, the shipped configuration."""
from __future__ import annotations

import base64
import datetime as dt
import http.client
import os
import pwd
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from harness.pebble import free_port, make_server_cert, make_test_ca
from harness.webservers import APACHE_MODULES, Apache, apache_available, define_system_logical, http_get
from wucme.challenge.store import ChallengeStore
from wucme.repository import Repository

USER, PASSWORD = "admin", "s3cret-for-the-test"
ADMIN = "/cgi-bin/wucme/admin"
_MODULES = ("ssl", "auth_basic", "authn_core", "authn_file", "authz_user", "socache_shmcb")


class AdminApache(Apache):
    """The test Apache with the modules and the htpasswd file the shipped admin Location needs.

    They must be known before docs/servers/apache-wucme.conf is included; the HTTPS vhost
    comes after it (extra_config), inheriting the admin Location as every vhost does.
    """

    def __init__(self, *args: object, users: Path, **kw: object) -> None:
        super().__init__(*args, **kw)  # type: ignore[arg-type]
        self.users = users

    def config(self) -> str:
        assert self.script is not None
        _bring_dependencies(self.script, self.workdir / "deps")
        modules = "".join(f"LoadModule {m}_module {APACHE_MODULES}/mod_{m}.so\n" for m in _MODULES)
        before = modules + f'Define WUCME_ADMIN_USERS "{self.users}"\n'
        text = super().config()
        assert text.count("Define WUCME_SCRIPT") == 1
        return text.replace("Define WUCME_SCRIPT", before + "Define WUCME_SCRIPT", 1)


def _bring_dependencies(script: Path, deps: Path) -> None:
    """Give a test launcher this interpreter's cryptography, pyOpenSSL, idna and typing_extensions.

    When tests run as root on an environment made from a Python under /root (pyenv), out of
    www-data's reach, the script runs as www-data on /usr/bin/python3, whose Debian
    cryptography is older than wucme needs; the admin pages, unlike the challenge path, parse
    certificates.  The environment's own console script has them.
    """
    import importlib

    text = script.read_text() if script.parent.name == "cgi" else ""
    if "sys.path.insert" not in text:
        return  # the installed console script: its interpreter has wucme's dependencies
    deps.mkdir(mode=0o755, exist_ok=True)
    for name in ("cryptography", "idna", "OpenSSL", "typing_extensions"):
        src = Path(importlib.import_module(name).__file__ or "")
        if src.name == "__init__.py":
            shutil.copytree(src.parent, deps / src.parent.name, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, deps / src.name)
    for p in [deps, *deps.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644 if not p.name.endswith(".so") else 0o755)
    script.write_text(text.replace("import sys\n", f"import sys\nsys.path.insert(0, {str(deps)!r})\n", 1))


class Site(NamedTuple):
    web: Apache
    https_port: int
    ca: Path
    repo: Repository


def _make_cert(names: list[str]) -> tuple[bytes, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30.2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM), key


def _give_to(path: Path, user: str | None) -> None:
    """The script runs as the server's user (www-data): it must read the repository it reports."""
    if user is None:
        return
    pw = pwd.getpwnam(user)
    for p in [path, *path.rglob("*")]:
        os.chown(p, pw.pw_uid, pw.pw_gid)


@pytest.fixture
def site(web_dir: Path, store: ChallengeStore) -> Iterator[Site]:
    if not apache_available() or not all((APACHE_MODULES / f"mod_{m}.so").exists() for m in _MODULES):
        pytest.skip("apache2 with mod_ssl and the auth modules not installed (Debian package apache2)")
    if shutil.which("htpasswd") is None:
        pytest.skip("htpasswd not installed (Debian package apache2-utils)")
    users = web_dir / "admin.htpasswd"
    subprocess.run(["htpasswd", "-cbB", str(users), USER, PASSWORD], check=True, capture_output=True)
    users.chmod(0o644)
    ca, ca_key = make_test_ca(web_dir / "tls")
    cert, key = make_server_cert(web_dir / "tls", (ca, ca_key))
    repo = Repository(web_dir / "here")
    repo.ensure_writable()
    pem, certkey = _make_cert(["www.example.org", "example.org"])
    repo.save_certificate(["www.example.org", "example.org"], certkey, pem, "http-01")
    https_port = free_port()
    port = free_port()
    extra = f"""Listen 127.0.0.1:{https_port}
<VirtualHost 127.0.0.1:{https_port}>
    SSLEngine on
    SSLCertificateFile "{cert}"
    SSLCertificateKeyFile "{key}"
</VirtualHost>
"""
    lnm = web_dir / "lnm"
    web = AdminApache(port, store_dir=store.directory, lnm_dir=lnm, workdir=web_dir / "apache",
                      extra_config=extra, users=users)
    _give_to(repo.path, web.user)
    define_system_logical(lnm, "WUCME_HERE", str(repo.path))
    define_system_logical(lnm, "WUCME_HTTP_PORT", str(port))
    with web:
        yield Site(web, https_port, ca, repo)


def https_get(s: Site, target: str, credentials: tuple[str, str] | None = None,
              method: str = "GET", body: bytes | None = None, timeout: float = 15,
              **more: str) -> tuple[int, dict[str, str], str]:
    ctx = ssl.create_default_context(cafile=str(s.ca))
    conn = http.client.HTTPSConnection("localhost", s.https_port, context=ctx, timeout=timeout)
    headers = {k.replace("_", "-"): v for k, v in more.items()}
    if credentials:
        headers["Authorization"] = "Basic " + base64.b64encode(":".join(credentials).encode()).decode()
    if body is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    try:
        conn.request(method, target, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read().decode()
    finally:
        conn.close()


def basic(user: str, password: str) -> bytes:
    return b"Authorization: Basic " + base64.b64encode(f"{user}:{password}".encode()) + b"\r\n"


def test_admin_pages_through_apache(site: Site) -> None:
    # Without credentials (or with wrong ones) Apache asks for them: 401, the script never runs.
    status, headers, _ = https_get(site, f"{ADMIN}/cert")
    assert status == 401 and headers["www-authenticate"].startswith("Basic")
    assert https_get(site, f"{ADMIN}/cert", (USER, "wrong"))[0] == 401

    # Authenticated over HTTPS: the repository's certificate table.
    status, headers, body = https_get(site, f"{ADMIN}/cert", (USER, PASSWORD))
    assert status == 200, body
    assert headers["content-type"] == "text/html; charset=utf-8" and headers["cache-control"] == "no-store"
    assert '<td><span class="n">www.example.org</span> <span class="n">example.org</span></td>' in body
    assert "<td>WUCME_C_WWW_EXAMPLE_ORG.PEM</td>" in body and "<td>valid</td>" in body
    status, _, text = https_get(site, f"{ADMIN}/cert?format=text", (USER, PASSWORD))
    row = next(line for line in text.splitlines() if line.startswith("www.example.org"))
    cells = row.split()  # hosts (two), file, not after, days, state, last result
    assert cells[2] == "WUCME_C_WWW_EXAMPLE_ORG.PEM" and cells[4:6] == ["30", "valid"]

    # The http-01 check asks this very Apache on its plain port (WUCME_HTTP_PORT): the mapping works.
    status, _, text = https_get(site, f"{ADMIN}/check/challenge?format=text", (USER, PASSWORD))
    assert status == 200 and text.startswith("%WUCME-S-CHALLENGE, "), text

    # Script-level rules still hold behind Apache: POST and an unknown page.
    assert https_get(site, f"{ADMIN}/cert", (USER, PASSWORD), method="POST")[0] == 405
    assert https_get(site, f"{ADMIN}/nonesuch", (USER, PASSWORD))[0] == 404


def test_plain_http_never_serves_the_admin_pages(site: Site) -> None:
    # The shipped Location refuses plain http before asking for a password (403, no 401),
    # with or without credentials, and a forged X-Forwarded-Proto changes nothing.
    for extra in (b"", basic(USER, PASSWORD), basic(USER, PASSWORD) + b"X-Forwarded-Proto: https\r\n"):
        r = http_get(site.web.port, f"{ADMIN}/cert", extra=extra)
        assert r.status == 403, r
        assert "www-authenticate" not in r.headers
        assert b"www.example.org" not in r.body
    # The challenge path stays open on the same server (the CA sends no credentials).
    assert http_get(site.web.port, "/.well-known/acme-challenge/").status == 404


def test_the_script_itself_refuses_authenticated_plain_http(site: Site) -> None:
    """The script's own rule, run as Apache runs it (same executable, user and logical names):
    a server configured without the shipped Location still gets a 403 over plain http."""
    assert site.web.script is not None
    env = {"GATEWAY_INTERFACE": "CGI/1.1", "REQUEST_METHOD": "GET", "SCRIPT_NAME": "/cgi-bin/wucme",
           "PATH_INFO": "/admin/cert", "QUERY_STRING": "", "REMOTE_USER": USER, "REQUEST_SCHEME": "http",
           "SERVER_PORT": str(site.web.port), "HTTP_X_FORWARDED_PROTO": "https",
           "WUCME_LNM_DIR": str(site.web.lnm_dir), "PATH": "/usr/bin:/bin"}
    r = subprocess.run([str(site.web.script)], env=env, capture_output=True, timeout=30, cwd="/",
                       user=site.web.user)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(b"Status: 403 Forbidden\r\n")
    assert b"%WUCME-E-NOTAUTH, the admin pages are served over HTTPS only" in r.stdout
    env["HTTPS"] = "on"
    r = subprocess.run([str(site.web.script)], env=env, capture_output=True, timeout=30, cwd="/",
                       user=site.web.user)
    assert r.stdout.startswith(b"Status: 200 OK\r\n") and b"WUCME_C_WWW_EXAMPLE_ORG.PEM" in r.stdout


# -- acting pages: POST with the form's token (issue 10 item 4) ---------------------------------


def _shared_dir(site: Site, name: str) -> Path:
    """A directory the script's user (www-data) may write, for what its commands leave."""
    d = site.web.workdir.parent / name
    d.mkdir(mode=0o777)
    d.chmod(0o777)
    return d


def _token(body: str) -> str:
    import re

    m = re.search(r'name="token" value="([^"]+)"', body)
    assert m, body
    return m.group(1)


def test_acting_pages_need_post_with_a_token_through_apache(site: Site) -> None:
    out = _shared_dir(site, "acts")
    marker = out / "loaded"
    define_system_logical(site.web.lnm_dir, "WUCME_LOAD", f"touch {marker}")
    creds = (USER, PASSWORD)
    # What an <img src=...> or a link does: GET (and HEAD) show the button and act never.
    status, headers, body = https_get(site, f"{ADMIN}/check/load", creds)
    assert status == 200 and '<form method="post"' in body and headers["cache-control"] == "no-store"
    assert https_get(site, f"{ADMIN}/check/load", creds, method="HEAD")[0] == 200
    assert https_get(site, f"{ADMIN}/check/mail", creds)[0] == 200
    assert not marker.exists()
    token = _token(body)
    origin = f"https://localhost:{site.https_port}"
    # A POST without the token, with another user's, or from another site: refused, nothing run.
    for data, extra in ((b"", {"Origin": origin}), (b"token=1.2", {"Origin": origin}),
                        (f"token={token}".encode(), {"Origin": "https://evil.example"}),
                        (f"token={token}".encode(), {"Referer": "https://evil.example/x.html"})):
        status, _, text = https_get(site, f"{ADMIN}/check/load", creds, method="POST", body=data, **extra)
        assert status == 403 and "%WUCME-E-BADTOKEN, " in text, (data, extra, text)
    # Without credentials Apache still asks first.
    assert https_get(site, f"{ADMIN}/check/load", None, method="POST", body=f"token={token}".encode())[0] == 401
    assert not marker.exists()
    # The button: a POST from the page itself, with its token.
    status, _, text = https_get(site, f"{ADMIN}/check/load?format=text", creds, method="POST",
                                body=f"token={token}".encode(), Origin=origin)
    assert status == 200 and "%WUCME-S-LOADED, " in text, text
    assert marker.exists()
    # The secret the tokens come from: in the repository, the script's user's alone.
    from wucme.admin import SECRET_FILE

    secret = site.repo.path / SECRET_FILE
    assert secret.stat().st_mode & 0o777 == 0o600


def test_load_page_runs_a_wucme_procedure_once_and_its_tree_ends_at_the_timeout(site: Site) -> None:
    """WUCME_LOAD `wucme @load.com` from the admin page: the procedure runs (once), not the CGI
    script again, and its children, also one that left the session and one whose parent
    exited, are gone when WUCME_LOAD_TIMEOUT ends it.  (It used to fork without bound.)"""
    import time

    assert site.web.script is not None
    out = _shared_dir(site, "load")
    child = out / "child.sh"
    child.write_text(f"""#!/bin/sh
echo $$ >> {out}/pids
env > {out}/env.$$
( setsid sleep 300 & echo $! >> {out}/pids )
setsid sleep 301 & echo $! >> {out}/pids
sleep 302 & echo $! >> {out}/pids
wait
""")
    child.chmod(0o755)
    (out / "load.com").write_text(f'$ child == "${child}"\n$ child\n')
    (out / "load.com").chmod(0o644)
    define_system_logical(site.web.lnm_dir, "WUCME_LOAD", f"{site.web.script} @{out}/load.com")
    define_system_logical(site.web.lnm_dir, "WUCME_LOAD_TIMEOUT", "3")
    creds = (USER, PASSWORD)
    token = _token(https_get(site, f"{ADMIN}/check/load", creds)[2])
    t0 = time.monotonic()
    status, _, text = https_get(site, f"{ADMIN}/check/load?format=text", creds, method="POST",
                                body=f"token={token}".encode(), timeout=60)
    assert time.monotonic() - t0 < 30
    assert status == 500 and "did not finish in 3 s" in text, text
    envs = list(out.glob("env.*"))
    assert len(envs) == 1, "the procedure ran once: one level, no recursion"
    seen = envs[0].read_text()
    for name in ("GATEWAY_INTERFACE=", "REQUEST_METHOD=", "HTTP_AUTHORIZATION=", "SCRIPT_NAME=",
                 "REMOTE_USER=", "QUERY_STRING=", "SERVER_NAME=", "HTTPS="):
        assert f"\n{name}" not in "\n" + seen, name
    pids = [int(p) for p in (out / "pids").read_text().split()]
    assert len(pids) == 4
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() and not _zombie(p) for p in pids):
        time.sleep(0.1)
    assert [p for p in pids if Path(f"/proc/{p}").exists() and not _zombie(p)] == []


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rfind(")") + 2:].startswith("Z")
