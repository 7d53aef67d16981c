"""A bad logical name is a configuration error: %WUCME-E-BADVALUE naming it and its value, exit 2.

Each value below used to end in `%WUCME-F-BUG` (exit 4), or was taken silently.  They run as
real `wucme` processes, as an operator would meet them.
"""
from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest


def wucme(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    here = tmp_path / "here"
    here.mkdir(exist_ok=True)
    e = {k: v for k, v in os.environ.items() if not k.startswith("WUCME_")}
    e.update(WUCME_LNM_DIR=str(tmp_path / "lnm"), WUCME_HERE=str(here), WUCME_VERBOSE="")
    e.update(env)
    return subprocess.run([sys.executable, "-m", "wucme", *args], env=e, capture_output=True,
                          text=True, timeout=60)


def assert_badvalue(r: subprocess.CompletedProcess[str], name: str) -> None:
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "%WUCME-E-BADVALUE, " + name in r.stderr, r.stderr
    assert "BUG" not in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("name, value", [
    ("WUCME_CA", "https://"),
    ("WUCME_CA", "https://ca.example:99999/dir"),
    ("WUCME_CA", "https://ca.example/dir\r\nX-Injected: yes"),
    ("WUCME_CA", "https://[::1/dir"),
    ("WUCME_CA", "ftp://ca.example/dir"),
    ("WUCME_HTTP", "bogus"),
    ("WUCME_PROXY", "::::"),
])
def test_bad_value_is_badvalue_exit_2(tmp_path: Path, name: str, value: str) -> None:
    r = wucme(tmp_path, "check", "/ca", **{name: value})
    assert_badvalue(r, name)
    assert repr(value)[1:-1] in r.stderr


@pytest.mark.parametrize("value", ["-1", "soon", "nan"])
def test_bad_days_is_refused_not_never_due(tmp_path: Path, value: str) -> None:
    """WUCME_DAYS -1 used to be taken: never due, the certificate left to expire."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    from wucme.repository import Repository

    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "www.example.org")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(7)
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("www.example.org")]), False)
            .sign(key, hashes.SHA256()))
    repo = Repository(tmp_path / "here")
    repo.ensure_writable()
    repo.save_certificate(
        ["www.example.org"], key, cert.public_bytes(serialization.Encoding.PEM), "http-01")
    assert wucme(tmp_path, "certificates").returncode == 0
    r = wucme(tmp_path, "certificates", WUCME_DAYS=value)
    assert_badvalue(r, "WUCME_DAYS")


def test_lnm_dir_naming_a_file(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("not a directory\n")
    for args in (("show", "logical"), ("define", "X", "Y"), ("check", "/ca")):
        r = wucme(tmp_path, *args, WUCME_LNM_DIR=str(afile))
        assert_badvalue(r, "WUCME_LNM_DIR")
        assert str(afile) in r.stderr


def test_here_naming_a_file_is_not_no_certificates(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("not a directory\n")
    r = wucme(tmp_path, "certificates", WUCME_HERE=str(afile))
    assert_badvalue(r, "WUCME_HERE")
    assert "no certificates" not in r.stdout + r.stderr


class _Directory(http.server.BaseHTTPRequestHandler):
    body = b"{}"
    seen: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.seen.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def local_ca() -> Iterator[tuple[str, type[_Directory]]]:
    class Handler(_Directory):
        seen: list[str] = []

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/dir", Handler
    finally:
        server.shutdown()
        server.server_close()


def test_directory_with_a_100000_digit_integer_is_a_clean_error(
        tmp_path: Path, local_ca: tuple[str, type[_Directory]]) -> None:
    url, handler = local_ca
    handler.body = b'{"newNonce": ' + b"9" * 100_000 + b"}"
    r = wucme(tmp_path, "check", "/ca", WUCME_CA=url)
    assert r.returncode == 2, r.stderr
    assert "unparsable JSON" in r.stderr and "BUG" not in r.stderr
    assert handler.seen


def test_plain_http_ca_only_on_loopback_or_when_allowed(
        tmp_path: Path, local_ca: tuple[str, type[_Directory]]) -> None:
    url, handler = local_ca
    for other in ("http://ca.example/dir", "http://10.1.2.3:14000/dir", "http://[2001:db8::1]/dir",
                  "http://localhost.ca.example/dir"):
        r = wucme(tmp_path, "check", "/ca", WUCME_CA=other)
        assert_badvalue(r, "WUCME_CA")
        assert "plain http" in r.stderr and "WUCME_ALLOW_HTTP_CA" in r.stderr
    # allowed explicitly: the refusal is gone (the name does not resolve: a network failure)
    r = wucme(tmp_path, "check", "/ca", WUCME_CA="http://ca.invalid/dir", WUCME_ALLOW_HTTP_CA="1")
    assert r.returncode == 2 and "BADVALUE" not in r.stderr and "CAFAIL" in r.stderr
    # loopback: asked (the answer is no ACME directory, but the request was made)
    handler.body = b"{}"
    wucme(tmp_path, "check", "/ca", WUCME_CA=url)
    assert handler.seen == ["/dir"]
