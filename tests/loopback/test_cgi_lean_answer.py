"""The CGI answer to a challenge, taken at the top of the entry (wucme.challenge.answer), says
byte for byte what the full script (wucme.web, the answer before it) says.

Each case sets up a real store and real logical name tables, then runs both as real CGI
processes with the same environment: the `wucme` entry as the console script runs it, and
wucme.web's cgi_main.  The entry's process is run with `-X importtime`, so each case also shows
which of the two answered: the lean path imports no wucme.web, and hands on to it what it does
not answer (an admin path, a store kept in the cluster database, a path that is no challenge).
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from wucme.challenge.answer import NO_SUCH_TOKEN, answer, cgi_answer, cgi_write
from wucme.challenge.store import ChallengeStore
from wucme.vms import lnm

from .test_challenge_support import PYTHON, python_env

TOKEN = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"
KEYAUTH = TOKEN + ".9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"
CHALLENGE = f"/.well-known/acme-challenge/{TOKEN}"
ENTRY = "import sys; from wucme.entry import main; sys.exit(main())"
FULL = "import sys; from wucme.web import cgi_main; sys.exit(cgi_main())"


class Site:
    """A repository with a challenge store and the system table the web server's script reads."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.lnm_dir = root / "lnm"
        self.lnm_dir.mkdir(mode=0o755)
        self.here = root / "here"
        self.store = ChallengeStore(self.here / "WUCME_CHALLENGES")
        self.store.put(TOKEN, KEYAUTH, "www.example.org", "http-01")

    def define(self, name: str, value: str) -> None:
        saved = os.environ.get("WUCME_LNM_DIR")
        os.environ["WUCME_LNM_DIR"] = str(self.lnm_dir)
        try:
            lnm.define(name, value, table="system")
        finally:
            if saved is None:
                os.environ.pop("WUCME_LNM_DIR", None)
            else:
                os.environ["WUCME_LNM_DIR"] = saved

    def env(self, method: str = "GET", path: str = CHALLENGE, script: str = "/cgi-bin/wucme",
            **extra: str) -> dict[str, str]:
        """A web server's CGI environment: nothing of the test run's WUCME_* names leaks in."""
        env = {k: v for k, v in python_env().items() if not k.startswith(("WUCME_", "_WUCME_", "WASD_"))}
        env.update(GATEWAY_INTERFACE="CGI/1.1", REQUEST_METHOD=method, SCRIPT_NAME=script, PATH_INFO=path,
                   SERVER_PROTOCOL="HTTP/1.1", QUERY_STRING="", WUCME_LNM_DIR=str(self.lnm_dir))
        env.update(extra)
        return env


@pytest.fixture
def site(tmp_path: Path) -> Site:
    s = Site(tmp_path)
    s.define("WUCME_HERE", str(s.here))
    return s


def run(code: str, env: dict[str, str], *, importtime: bool = False) -> tuple[bytes, int, set[str]]:
    """One CGI process: its output, its exit status and (with *importtime*) the modules it imported."""
    args = [PYTHON, *(["-X", "importtime"] if importtime else []), "-c", code]
    p = subprocess.run(args, env=env, capture_output=True, timeout=60, cwd="/")
    names = {m.group(1) for m in re.finditer(rb"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)$", p.stderr, re.M)}
    return p.stdout, p.returncode, {n.decode() for n in names}


def in_process(env: dict[str, str]) -> tuple[bytes, int] | None:
    """cgi_answer called in this process with the CGI environment *env* (its WUCME_* names as
    this process's logical names): its output and status, or None when it hands the request on."""
    out = io.BytesIO()
    with pytest.MonkeyPatch.context() as mp:
        for name in [n for n in os.environ if n.startswith(("WUCME_", "_WUCME_", "WASD_"))]:
            mp.delenv(name)
        for name, value in env.items():
            if name.startswith(("WUCME_", "WASD_")):
                mp.setenv(name, value)
        status = cgi_answer(env, out)
    return None if status is None else (out.getvalue(), status)


def both(env: dict[str, str], *, lean: bool = True) -> bytes:
    """The answer of the entry and of the full script, which must be the same; the entry must
    have answered alone (*lean*) or handed the request on to wucme.web.  cgi_answer called in
    this process gives the entry's answer too (or hands the request on as it does)."""
    out, status, names = run(ENTRY, env, importtime=True)
    full, full_status, _ = run(FULL, env)
    assert (out, status) == (full, full_status)
    assert ("wucme.web" not in names) is lean, sorted(n for n in names if n.startswith("wucme"))
    assert in_process(env) == ((out, status) if lean else None)
    return out


def split(answer: bytes) -> tuple[str, dict[str, str], bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    return lines[0], dict(line.split(": ", 1) for line in lines[1:]), body


def test_get_answers_the_key_authorization(site: Site) -> None:
    status, headers, body = split(both(site.env()))
    assert (status, body) == ("Status: 200 OK", KEYAUTH.encode())
    assert headers == {"Content-Type": "text/plain; charset=utf-8", "Content-Length": str(len(KEYAUTH)),
                       "Cache-Control": "no-store"}


def test_head_answers_the_headers_alone(site: Site) -> None:
    status, headers, body = split(both(site.env("HEAD")))
    assert (status, headers["Content-Length"], body) == ("Status: 200 OK", str(len(KEYAUTH)), b"")


@pytest.mark.parametrize("script,path", [
    ("", CHALLENGE),  # a server mounting the script at /
    ("", "/cgi-bin/wucme" + CHALLENGE),
    (CHALLENGE, ""),  # a ScriptAliasMatch leaving the whole path in SCRIPT_NAME
])
def test_every_way_a_server_splits_the_path(site: Site, script: str, path: str) -> None:
    assert split(both(site.env(script=script, path=path)))[2] == KEYAUTH.encode()


@pytest.mark.parametrize("path", [
    "/.well-known/acme-challenge/",  # the directory: the administrator's curl test
    "/.well-known/acme-challenge",
    "/.well-known/acme-challenge/../WUCME_CHALLENGES",  # not base64url (RFC 8555 section 8.3)
    "/.well-known/acme-challenge/" + TOKEN + "/x",
    "/.well-known/acme-challenge/" + "A" * 257,  # too long to be hashed
    "/.well-known/acme-challenge/" + TOKEN[:-1],  # well formed, but not pending
])
def test_what_is_no_pending_token_is_404(site: Site, path: str) -> None:
    assert split(both(site.env(path=path)))[::2] == ("Status: 404 Not Found", NO_SUCH_TOKEN.encode())


def test_an_expired_entry_is_not_answered(site: Site) -> None:
    site.store.put(TOKEN, KEYAUTH, "www.example.org", "http-01", ttl=-1)
    assert split(both(site.env()))[2] == NO_SUCH_TOKEN.encode()


def test_a_missing_store_is_no_token(site: Site) -> None:
    site.define("WUCME_CHALLENGES", str(site.root / "nowhere"))
    assert split(both(site.env()))[::2] == ("Status: 404 Not Found", NO_SUCH_TOKEN.encode())


def test_a_store_others_may_write_is_not_believed(site: Site) -> None:
    site.store.directory.chmod(0o777)
    assert split(both(site.env()))[::2] == ("Status: 404 Not Found", NO_SUCH_TOKEN.encode())
    site.store.directory.chmod(0o775)
    assert split(both(site.env()))[2] == NO_SUCH_TOKEN.encode()
    site.store.directory.chmod(0o755)
    assert split(both(site.env()))[2] == KEYAUTH.encode()


def test_an_entry_others_may_write_is_not_believed(site: Site) -> None:
    (entry,) = site.store.directory.iterdir()
    entry.chmod(0o666)
    assert split(both(site.env()))[2] == NO_SUCH_TOKEN.encode()


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_an_entry_another_user_planted_is_not_believed(site: Site) -> None:
    (entry,) = site.store.directory.iterdir()
    os.chown(entry, 65534, 65534)
    assert split(both(site.env()))[2] == NO_SUCH_TOKEN.encode()


@pytest.mark.parametrize("method,status", [
    ("POST", "Status: 405 Method Not Allowed"),
    ("DELETE", "Status: 405 Method Not Allowed"),
    ("get", "Status: 501 Not Implemented"),  # methods are case-sensitive (RFC 9110 section 9.1)
    ("BREW", "Status: 501 Not Implemented"),
])
def test_other_methods(site: Site, method: str, status: str) -> None:
    got, headers, _ = split(both(site.env(method)))
    assert got == status
    assert headers.get("Allow") == ("GET, HEAD" if "405" in status else None)


def test_a_system_table_others_may_write_is_a_500_naming_it(site: Site) -> None:
    (site.lnm_dir / "system.json").chmod(0o666)
    status, _, body = split(both(site.env()))
    assert status == "Status: 500 Internal Server Error"
    assert body.startswith(b"%WUCME-E-INSECURE, ") and b"system.json" in body


def test_a_repository_that_is_a_file_is_a_500_naming_it(site: Site) -> None:
    plain = site.root / "plain-file"
    plain.write_text("not a directory\n")
    site.define("WUCME_HERE", str(plain))
    status, _, body = split(both(site.env()))
    assert status == "Status: 500 Internal Server Error"
    assert body.startswith(b"%WUCME-E-BADVALUE, WUCME_HERE ")


def test_the_store_named_by_wucme_challenges(site: Site, tmp_path: Path) -> None:
    other = ChallengeStore(tmp_path / "elsewhere")
    other.put(TOKEN, "other." + KEYAUTH, "www.example.org", "http-01")
    site.define("WUCME_CHALLENGES", str(other.directory))
    assert split(both(site.env()))[2] == b"other." + KEYAUTH.encode()


def test_the_process_table_comes_first(site: Site, tmp_path: Path) -> None:
    """A name set by the server (Apache's SetEnv) wins over the system table, as for the full script."""
    other = ChallengeStore(tmp_path / "setenv")
    other.put(TOKEN, "setenv." + KEYAUTH, "www.example.org", "http-01")
    assert split(both(site.env(WUCME_CHALLENGES=str(other.directory))))[2] == b"setenv." + KEYAUTH.encode()


@pytest.mark.parametrize("script,path", [
    ("/cgi-bin/wucme", "/admin/"),  # the admin pages
    ("/cgi-bin/wucme", "/.well-known/acme-challenge/admin"),  # may be an admin page: the router decides
    ("/cgi-bin/wucme/.well-known/acme-challenge/admin", ""),  # the same, all in SCRIPT_NAME (ScriptAliasMatch)
    ("/cgi-bin/wucme", "/elsewhere"),  # no challenge: the full script's 404
])
def test_what_the_lean_path_hands_on(site: Site, script: str, path: str) -> None:
    both(site.env(script=script, path=path), lean=False)


def test_a_store_in_the_cluster_database_is_handed_on(site: Site) -> None:
    """The database store needs its client (psycopg): the full script answers, however it fails."""
    both(site.env(WUCME_STORE_DB="host=/nonexistent-wucme-test port=1 connect_timeout=1"), lean=False)


def test_a_server_that_went_away_ends_it_quietly(site: Site) -> None:
    """Output closed before the answer (the server's client hung up): no traceback for the
    server's error log, and the status of a command killed by SIGPIPE, as the command line ends
    (the full script, through wucme.cli, printed a traceback and ended 1 before; both share
    wucme.challenge.answer.cgi_write now)."""
    results = []
    for code in (ENTRY, "import sys; from wucme.cli import main; sys.exit(main())"):
        r, w = os.pipe()
        os.close(r)
        try:
            p = subprocess.run([PYTHON, "-c", code], env=site.env(), stdout=w, stderr=subprocess.PIPE,
                               timeout=60, cwd="/")
        finally:
            os.close(w)
        results.append((p.returncode, p.stderr))
    assert results[0] == results[1] == (141, b"")


def test_a_request_in_this_process_environment_is_answered_on_its_stdout(
        site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    """cgi_answer() as the entry calls it: the request and the logical names in os.environ, the
    answer on sys.stdout's bytes; REQUEST_METHOD left out is a GET."""
    for name in [n for n in os.environ if n.startswith(("WUCME_", "_WUCME_", "WASD_"))]:
        monkeypatch.delenv(name)
    env = site.env()
    del env["REQUEST_METHOD"]
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    written = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(written))
    assert cgi_answer() == 0
    status, headers, body = split(written.getvalue())
    assert (status, body) == ("Status: 200 OK", KEYAUTH.encode())
    assert headers == {"Content-Type": "text/plain; charset=utf-8", "Content-Length": str(len(KEYAUTH)),
                       "Cache-Control": "no-store"}


def test_a_token_outside_the_base64url_alphabet_is_never_looked_up() -> None:
    """RFC 8555 section 8.3: a token is base64url, so a request cannot bring a path of its own
    making to the store, whatever the store's look-up would do with it."""
    asked: list[str] = []

    def lookup(token: str) -> str | None:
        asked.append(token)
        return "planted"

    for token in ("../../etc/passwd", "a.b", "a" * 257, ""):
        assert answer("GET", token, lookup)[0] == "404 Not Found"
    assert asked == []
    assert answer("GET", "a" * 256, lookup)[2] == b"planted" and asked == ["a" * 256]


def test_an_output_the_server_closed_is_pointed_at_the_null_device_and_ends_with_sigpipes_status() -> None:
    """The answer cannot be written (a broken pipe): the status of a command killed by SIGPIPE,
    128 + 13, and the output now the null device, so the interpreter's last flush of what is
    still buffered fails no more (no traceback for the server's error log)."""
    r, w = os.pipe()
    os.close(r)
    with os.fdopen(w, "wb") as out:
        assert cgi_write(out, b"Status: 200 OK\r\n\r\n" + b"x" * 200_000) == 141
        assert os.readlink(f"/proc/self/fd/{w}") == os.devnull
        out.write(b"more")  # what the interpreter would flush at exit: taken by the null device
        out.flush()


def test_an_answer_written_whole_is_flushed_and_ends_with_status_0(tmp_path: Path) -> None:
    with open(tmp_path / "out", "wb") as out:
        assert cgi_write(out, b"Status: 200 OK\r\n\r\nbody") == 0
        assert (tmp_path / "out").read_bytes() == b"Status: 200 OK\r\n\r\nbody"  # flushed, not buffered
