"""The admin pages' routing and authorisation rules, through the WSGI app and the CGI entry."""
from __future__ import annotations

import datetime as dt
import io
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from harness.ports import free_port
from wucme.admin import LOG_TAIL, admin_page, refusal
from wucme.challenge.http01 import NO_SUCH_TOKEN, Http01Listener
from wucme.challenge.store import ChallengeStore
from wucme.repository import Repository
from wucme.web import cgi_main, make_app

HOSTILE = '<script>alert("x")</script>.example.org'
TOKEN = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Repository:
    monkeypatch.setenv("WUCME_LNM_DIR", str(tmp_path / "lnm"))
    for name in ("WUCME_HERE", "WASD_ROOT", "WUCME_LOAD", "WUCME_SERVICES", "WUCME_MAIL", "WUCME_OPCOM",
                 "WUCME_HTTP01", "WUCME_HTTP_PORT", "WUCME_CHALLENGES", "WUCME_SYSLOG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WUCME_HERE", str(tmp_path / "here"))
    r = Repository(tmp_path / "here")
    r.ensure_writable()
    return r


def environ(path: str = "/admin/cert", *, user: str = "admin", https: bool = True,
            method: str = "GET", query: str = "", **extra: str) -> dict[str, Any]:
    env: dict[str, Any] = {"REQUEST_METHOD": method, "SCRIPT_NAME": "/cgi-bin/wucme", "PATH_INFO": path,
                           "QUERY_STRING": query, "SERVER_PORT": "443" if https else "80"}
    if user:
        env["REMOTE_USER"] = user
    if https:
        env["HTTPS"] = "on"
    env.update(extra)
    return env


def call(env: dict[str, Any], store: ChallengeStore | None = None) -> tuple[int, dict[str, str], str]:
    got: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        got[:] = [status, headers]

    body = b"".join(make_app(store)(env, start_response))
    status, headers = got
    return int(status.split()[0]), {k.lower(): v for k, v in headers}, body.decode()


def acted(path: str, query: str = "", user: str = "admin", **extra: str) -> dict[str, Any]:
    """An acting page's request as its button sends it: POST with the form's token."""
    from wucme.admin import make_token

    body = f"token={make_token(user, path.removeprefix('/admin/'))}".encode()
    return environ(path, method="POST", query=query, user=user, CONTENT_LENGTH=str(len(body)),
                   CONTENT_TYPE="application/x-www-form-urlencoded", **{"wsgi.input": io.BytesIO(body)},
                   **extra)


def make_cert(names: list[str], days: float = 60) -> tuple[bytes, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test")])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM), key


# -- routing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("script", "path", "page"), [
    ("/cgi-bin/wucme", "/admin/cert", "cert"),
    ("/cgi-bin/wucme", "/admin/check/ca", "check/ca"),
    ("", "/cgi-bin/wucme/admin/log", "log"),
    ("/cgi-bin/wucme/admin/check/load", "", "check/load"),
    ("/cgi-bin/wucme", "/admin", ""),
    ("/cgi-bin/wucme", "/admin/", ""),
    ("/cgi-bin/wucme", "/.well-known/acme-challenge/x", None),
    ("/cgi-bin/wucme", "/administrator", None),
    ("/cgi-bin/wucme", "/x/admin/cert", None),
])
def test_admin_page_names(script: str, path: str, page: str | None) -> None:
    assert admin_page({"SCRIPT_NAME": script, "PATH_INFO": path}) == page


def test_challenge_paths_still_reach_http01(repo: Repository, tmp_path: Path) -> None:
    store = ChallengeStore(tmp_path / "store")
    store.put(TOKEN, TOKEN + ".thumb", "www.example.org", "http-01")
    env = environ(f"/.well-known/acme-challenge/{TOKEN}", user="", https=False)
    assert call(env, store)[::2] == (200, TOKEN + ".thumb")
    assert call(environ("/.well-known/acme-challenge/", user="", https=False), store)[::2] == (404, NO_SUCH_TOKEN)
    assert call(environ("/elsewhere", user="", https=False), store)[0] == 404


# -- authorisation ---------------------------------------------------------------------------


def test_no_remote_user_is_403(repo: Repository) -> None:
    for user in ("", "   "):
        status, headers, body = call(environ(user=user))
        assert status == 403
        assert headers["content-type"].startswith("text/plain")
        assert body.startswith("%WUCME-E-NOTAUTH, ") and "REMOTE_USER" in body
        assert headers["cache-control"] == "no-store"


def test_plain_http_is_403_even_authenticated(repo: Repository) -> None:
    status, _, body = call(environ(https=False))
    assert status == 403 and "HTTPS only" in body


@pytest.mark.parametrize("spoof", [
    {"HTTP_X_FORWARDED_PROTO": "https"}, {"HTTP_X_FORWARDED_SSL": "on"}, {"HTTP_HTTPS": "on"},
    {"HTTP_FORWARDED": "proto=https"}, {"wsgi.url_scheme": "https"}, {"HTTPS": "off"},
    {"SERVER_PORT_SECURE": "0"}, {"REQUEST_SCHEME": "http"},
])
def test_client_headers_never_make_it_https(repo: Repository, spoof: dict[str, str]) -> None:
    assert call(environ(https=False, **spoof))[0] == 403


@pytest.mark.parametrize("secure", [
    {"HTTPS": "on"}, {"HTTPS": "ON"}, {"REQUEST_SCHEME": "https"}, {"REQUEST_SCHEME": "https:"},
    {"SERVER_PORT_SECURE": "1"},
])
def test_each_server_variable_for_https_counts(repo: Repository, secure: dict[str, str]) -> None:
    env = environ(https=False, **secure)
    assert refusal(env) is None
    assert call(env)[0] == 200


def test_refusal_comes_before_anything_else(repo: Repository) -> None:
    # An unauthenticated client learns neither the methods nor which pages exist.
    assert call(environ("/admin/nonesuch", user=""))[0] == 403
    assert call(environ(method="POST", user=""))[0] == 403


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS"])
def test_other_methods_are_405(repo: Repository, method: str) -> None:
    status, headers, body = call(environ(method=method))
    assert status == 405 and headers["allow"] == "GET, HEAD"
    assert body.startswith("%WUCME-E-BADMETHOD")


def test_unknown_page_is_404(repo: Repository) -> None:
    status, headers, body = call(environ("/admin/check/nonesuch"))
    assert status == 404 and headers["content-type"].startswith("text/html")
    assert "%WUCME-E-NOPAGE" in body and "/cgi-bin/wucme/admin/cert" in body


def test_head_has_headers_and_no_body(repo: Repository) -> None:
    get = call(environ())
    head = call(environ(method="HEAD"))
    assert head[0] == 200 and head[2] == ""
    assert head[1]["content-length"] == get[1]["content-length"] == str(len(get[2].encode()))


def test_index_links_every_page(repo: Repository) -> None:
    status, _, body = call(environ("/admin/"))
    assert status == 200
    for page in ("cert", "log", "check/ca", "check/challenge", "check/load", "check/mail", "check/opcom"):
        assert f'href="/cgi-bin/wucme/admin/{page}"' in body


# -- pages -----------------------------------------------------------------------------------


def test_cert_page_lists_the_repository(repo: Repository) -> None:
    pem, key = make_cert(["www.example.org", "example.org"], days=45.2)
    repo.save_certificate(["www.example.org", "example.org"], key, pem, "http-01")
    status, headers, body = call(environ())
    assert status == 200 and headers["content-type"] == "text/html; charset=utf-8"
    assert '<td><span class="n">www.example.org</span> <span class="n">example.org</span></td>' in body
    assert "<td>WUCME_C_WWW_EXAMPLE_ORG.PEM</td>" in body
    assert "%WUCME-S-CERTS, 1 certificate in" in body
    text = call(environ(query="format=text"))
    assert text[1]["content-type"] == "text/plain; charset=utf-8"
    lines = text[2].splitlines()
    assert lines[0].startswith("%WUCME-S-CERTS")
    row = next(line for line in lines if line.startswith("www.example.org"))
    assert "WUCME_C_WWW_EXAMPLE_ORG.PEM" in row and row.split()[4:6] == ["45", "valid"]


def test_cert_page_escapes_a_hostile_host_name(repo: Repository) -> None:
    state = repo.path / "WUCME_S_EVIL.JSON"
    state.write_text(json.dumps({"hosts": [HOSTILE], "status": "failed",
                                 "last_result": "<img src=x onerror=alert(1)>", "version": 1}))
    status, headers, body = call(environ())
    assert "<script>" not in body and "<img" not in body
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;.example.org" in body
    assert "&lt;img src=x onerror=alert(1)&gt;" in body
    assert "script-src" not in headers["content-security-policy"]
    assert headers["content-security-policy"].startswith("default-src 'none'")
    assert status == 200
    assert HOSTILE in call(environ(query="format=text"))[2]  # text/plain carries it as it is


def test_cert_page_with_no_certificates(repo: Repository) -> None:
    status, _, body = call(environ(query="format=text"))
    assert status == 200 and body.startswith("%WUCME-I-NOCERTS, no certificates managed in ")


def test_log_page_shows_the_tail_of_the_newest_log(repo: Repository) -> None:
    assert "%WUCME-I-NOLOG" in call(environ("/admin/log", query="format=text"))[2]
    lines = [f"line {i:06d} <b>&</b>\n" for i in range(8000)]
    (repo.path / "WUCME_LOG_ACTIVE.LOG").write_text("".join(lines))
    status, _, body = call(environ("/admin/log"))
    assert status == 200
    assert "line 007999 &lt;b&gt;&amp;&lt;/b&gt;" in body and "<b>" not in body
    assert "line 000000" not in body
    text = call(environ("/admin/log", query="format=text"))[2]
    shown = text.splitlines()[1:]
    assert shown[-1] == lines[-1].rstrip("\n")
    assert shown[0] in (line.rstrip("\n") for line in lines)  # starts at a whole line
    assert len("\n".join(shown)) <= LOG_TAIL


def test_check_challenge_against_wucme_own_listener(repo: Repository, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    with Http01Listener(ChallengeStore(tmp_path / "store"), "127.0.0.1", 0) as listener:
        monkeypatch.setenv("WUCME_HTTP01", f"127.0.0.1:{listener.port}")
        status, _, body = call(environ("/admin/check/challenge", query="format=text"))
    assert status == 200, body
    assert body.startswith("%WUCME-S-CHALLENGE, ") and "WUCME_HTTP01" in body


@pytest.fixture
def not_wucme() -> Iterator[int]:
    """A port that answers HTTP, but not as wucme would: a hostile page."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            body = b"<script>alert(1)</script> It works!"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_check_challenge_reports_a_server_that_is_not_wucme(repo: Repository, not_wucme: int,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WUCME_HTTP_PORT", str(not_wucme))
    status, _, body = call(environ("/admin/check/challenge"))
    assert status == 500
    assert "%WUCME-E-BADCHALLENGE" in body and "port 80 mapping" in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt; It works!" in body and "<script>" not in body


def test_check_challenge_with_nothing_listening_starts_the_ad_hoc_responder(
        repo: Repository, monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()  # nothing answers there
    monkeypatch.setenv("WUCME_HTTP_PORT", str(port))
    status, _, body = call(environ("/admin/check/challenge", query="format=text"))
    assert status == 200, body
    lines = body.splitlines()
    assert lines[0].startswith(f"%WUCME-I-ADHOC, http://127.0.0.1:{port}/.well-known/acme-challenge/ did not "
                               "answer") and "started on port" in lines[0]
    assert lines[1].startswith("%WUCME-S-CHALLENGE, ")
    assert "Challenge received but no such token." in body
    with pytest.raises(ConnectionRefusedError):  # stopped after the check
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_check_challenge_when_the_ad_hoc_responder_cannot_listen(repo: Repository,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: refused, and not free for wucme either
        monkeypatch.setenv("WUCME_HTTP_PORT", str(port))
        status, _, body = call(environ("/admin/check/challenge", query="format=text"))
    assert status == 200 and body.startswith("%WUCME-W-NOCHALLENGE, "), body
    assert "cannot listen on port" in body


def test_check_load_runs_the_command(repo: Repository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert call(acted("/admin/check/load", query="format=text"))[2].startswith("%WUCME-I-NOLOAD")
    marker = tmp_path / "loaded"
    monkeypatch.setenv("WUCME_LOAD", f"touch {marker}")
    status, _, body = call(acted("/admin/check/load", query="format=text"))
    assert status == 200 and body.startswith("%WUCME-S-LOADED, ") and marker.exists()
    monkeypatch.setenv("WUCME_LOAD", "false")
    status, _, body = call(acted("/admin/check/load", query="format=text"))
    assert status == 500 and body.startswith("%WUCME-E-LOADFAIL, ") and "status 1" in body


def test_check_mail_and_opcom_undefined_are_messages(repo: Repository) -> None:
    for page, ident in (("mail", "NOMAIL"), ("opcom", "NOOPCOM")):
        status, _, body = call(acted(f"/admin/check/{page}"))
        assert status == 500
        assert f"%WUCME-E-{ident}, " in body and "Traceback" not in body


def test_check_opcom_sends_to_syslog(repo: Repository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", 0))
        sink.settimeout(5)
        monkeypatch.setenv("WUCME_OPCOM", "CENTRAL")
        monkeypatch.setenv("WUCME_SYSLOG", f"udp:127.0.0.1:{sink.getsockname()[1]}")
        status, _, body = call(acted("/admin/check/opcom", query="format=text"))
        assert status == 200 and body.startswith("%WUCME-S-OPCOM, test message to OPCOM CENTRAL")
        assert b"test message from wucme check /OPCOM" in sink.recv(4096)


def test_check_ca_unreachable_is_a_message(repo: Repository, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"https://127.0.0.1:{s.getsockname()[1]}/dir"
        monkeypatch.setenv("WUCME_CA", url)
        t0 = time.monotonic()
        status, _, body = call(environ("/admin/check/ca"))
    assert status == 500 and "%WUCME-E-CAFAIL, " in body and "Traceback" not in body
    assert url in body
    assert time.monotonic() - t0 < 5  # an admin waits for a page: short retries


def test_bad_logical_value_is_a_message_not_a_traceback(repo: Repository, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WUCME_CA", "<not a url>")
    status, _, body = call(environ("/admin/check/ca"))
    assert status == 500 and "%WUCME-E-BADVALUE, " in body and "&lt;not a url&gt;" in body


# -- the CGI entry -----------------------------------------------------------------------------


def test_cgi_entry_routes_admin_and_writes_a_status_header(repo: Repository) -> None:
    out = io.BytesIO()
    env = {k: v for k, v in environ(query="format=text").items()}
    assert cgi_main(env, stdout=out) == 0
    head, _, body = out.getvalue().partition(b"\r\n\r\n")
    assert head.startswith(b"Status: 200 OK\r\n") and b"Cache-Control: no-store" in head
    assert body.startswith(b"%WUCME-I-NOCERTS")
    out = io.BytesIO()
    cgi_main(environ(https=False, HTTP_X_FORWARDED_PROTO="https"), stdout=out)
    assert out.getvalue().startswith(b"Status: 403 Forbidden\r\n")


# -- formats and long tables (issue 12 item 5) -------------------------------------------------


def hundred_names() -> list[str]:
    return [f"host{i:03d}.with-a-rather-long-label.example.org" for i in range(100)]


@pytest.mark.parametrize("page", ["", "cert", "log", "check/ca", "check/challenge", "check/load",
                                  "check/mail", "check/opcom", "nonesuch"])
def test_every_page_answers_json(repo: Repository, page: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WUCME_CA", "http://127.0.0.1:9/dir")  # refused at once: a failed check, still JSON
    monkeypatch.setenv("WUCME_HTTP_PORT", "9")
    for env in (environ(f"/admin/{page}", query="format=json"),
                environ(f"/admin/{page}", HTTP_ACCEPT="application/json")):
        status, headers, body = call(env)
        assert headers["content-type"] == "application/json; charset=utf-8", page
        data = json.loads(body)
        assert isinstance(data["status"], int) and isinstance(data["messages"], list)
        assert (status >= 400) == any(m["severity"] in ("E", "F") for m in data["messages"]) or page == "nonesuch"
    if page == "":
        assert {p["path"] for p in data["pages"]} >= {"/cgi-bin/wucme/admin/cert", "/cgi-bin/wucme/admin/log"}
    # a browser asking for HTML still gets HTML
    assert call(environ(f"/admin/{page}", HTTP_ACCEPT="text/html,application/json;q=0.9"))[1][
        "content-type"].startswith("text/html")


def test_cert_json_is_the_command_line_json(repo: Repository) -> None:
    import subprocess
    import sys

    pem, key = make_cert(["www.example.org", "example.org"])
    repo.save_certificate(["www.example.org", "example.org"], key, pem, "http-01")
    page = json.loads(call(environ(query="format=json"))[2])
    cli = json.loads(subprocess.run([sys.executable, "-m", "wucme", "certificates", "/output=json"],
                                    capture_output=True, text=True, check=True).stdout)
    for c in page["certificates"] + cli["certificates"]:
        c.pop("days_left")  # a moment apart
    assert page == cli
    assert page["certificates"][0]["hosts"] == ["www.example.org", "example.org"]


def test_a_hundred_names_keep_the_table_readable(repo: Repository) -> None:
    names = hundred_names()
    pem, key = make_cert(names)
    repo.save_certificate(names, key, pem, "http-01")
    pem, key = make_cert(["two.example.org"])
    repo.save_certificate(["two.example.org"], key, pem, "tls-alpn-01")
    body = call(environ())[2]
    # the host list collapses to its first name and a count; every name is one click away
    assert f"<summary>{names[0]} +99</summary>" in body
    assert all(f"<li>{n}</li>" in body for n in names)
    text = call(environ(query="format=text"))[2]
    rows = [line for line in text.splitlines() if "WUCME_C_" in line]
    assert len(rows) == 2 and all(len(r) < 200 for r in rows), rows
    assert rows[0].startswith(f"{names[0]} +99") or rows[1].startswith(f"{names[0]} +99")

# -- acting pages: POST with a token (CSRF) ---------------------------------------------------


def test_acting_pages_do_not_act_on_get_or_head(repo: Repository, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """An <img src=.../check/load> on any page an administrator visits must not reload the server."""
    marker = tmp_path / "loaded"
    monkeypatch.setenv("WUCME_LOAD", f"touch {marker}")
    for method in ("GET", "HEAD"):
        status, headers, body = call(environ("/admin/check/load", method=method))
        assert status == 200 and not marker.exists()
    status, _, body = call(environ("/admin/check/load"))
    assert '<form method="post" action="/cgi-bin/wucme/admin/check/load">' in body
    assert 'name="token" value="' in body
    status, _, body = call(acted("/admin/check/load"))
    assert status == 200 and marker.exists()


def test_post_needs_a_good_token_from_this_site(repo: Repository, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from wucme.admin import make_token

    marker = tmp_path / "loaded"
    monkeypatch.setenv("WUCME_LOAD", f"touch {marker}")

    def post(body: bytes, user: str = "admin", **extra: str) -> tuple[int, str]:
        env = environ("/admin/check/load", method="POST", user=user, CONTENT_LENGTH=str(len(body)),
                      **{"wsgi.input": io.BytesIO(body)}, **extra)
        status, _, text = call(env)
        return status, text

    good = make_token("admin", "check/load")
    for body, user in ((b"", "admin"), (b"token=", "admin"), (b"token=123.abc", "admin"),
                       (f"token={good}".encode(), "mallory"),
                       (f"token={make_token('admin', 'check/mail')}".encode(), "admin"),
                       (f"token={make_token('admin', 'check/load', now=1.0e9)}".encode(), "admin")):
        status, text = post(body, user)
        assert status == 403 and text.startswith("%WUCME-E-BADTOKEN, "), (body, text)
    for origin in ("https://evil.example", "null", "http://www.example.org"):
        status, text = post(f"token={good}".encode(), HTTP_HOST="www.example.org", HTTP_ORIGIN=origin)
        assert status == 403 and "BADTOKEN" in text
    status, text = post(f"token={good}".encode(), HTTP_HOST="www.example.org",
                        HTTP_REFERER="https://evil.example/page")
    assert status == 403 and "Referer" in text
    assert not marker.exists()
    status, _ = post(f"token={good}".encode(), HTTP_HOST="www.example.org",
                     HTTP_ORIGIN="https://www.example.org")
    assert status == 200 and marker.exists()
    # a lower-case post is not POST (RFC 9110 §9.1); a POST to a page that does not act: 405
    assert post(f"token={good}".encode(), REQUEST_METHOD="post")[0] == 405
    status, headers, _ = call(environ("/admin/cert", method="POST"))
    assert status == 405 and headers["allow"] == "GET, HEAD"


def test_the_secret_is_private_to_the_repository(repo: Repository) -> None:
    from wucme.admin import SECRET_FILE, make_token

    make_token("admin", "check/load")
    secret = repo.path / SECRET_FILE
    assert secret.stat().st_mode & 0o777 == 0o600
    from wucme.admin import _read_secret

    assert _read_secret(secret) is not None
    secret.chmod(0o644)  # readable by others: not a secret, not used
    assert _read_secret(secret) is None
