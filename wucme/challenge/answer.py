"""The answer to an http-01 challenge request (RFC 8555 §8.3), and the CGI answer that gives it
in a process of its own.

One function decides every answer (`answer`: the method, the token's syntax, the store's key
authorization, the status, the headers), so wucme's listener, any WSGI server and the web
server's script give byte-identical answers (wucme.challenge.http01 serves it).

The web server starts the wucme image for every challenge request (RFC 3875), so what that
process imports is paid for on every validation: `cgi_answer`, called by the entry module
(wucme.entry) before anything else is imported, answers a challenge path with no more than the
logical name lookup (to find the store: wucme.locations) and the store's reader
(wucme.challenge.storefile).  A request it does not answer (an admin page, a store kept in the
cluster database) goes on to the full script, wucme.web (docs/performance.md, "Start-up").
"""

from __future__ import annotations

import os
import re
import sys

from wucme.challenge.storefile import http01_keyauth, is_token
from wucme.locations import challenges_location, store_db
from wucme.vms.message import VmsError, format_message

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import IO, Any

__all__ = ["CHALLENGE_PREFIX", "NO_SUCH_TOKEN", "SCRIPT_PREFIX", "answer", "cgi_answer", "cgi_head",
           "cgi_write", "challenge_token", "failure"]

CHALLENGE_PREFIX = "/.well-known/acme-challenge/"
SCRIPT_PREFIX = "/cgi-bin/wucme"
#: wµCME's answer for a path it owns but a token it does not know (the administrator's curl test).
NO_SUCH_TOKEN = "Challenge received but no such token."

_ALLOWED = "GET, HEAD"
#: The most of a request's body read (and dropped) before the answer, and how long for.
DRAIN_BYTES = 1 << 16
DRAIN_SECONDS = 1.0
#: The methods of RFC 9110 §9 and PATCH (RFC 5789).  Methods are case-sensitive (RFC 9110 §9.1):
#: ``get`` is not GET but a method this server does not implement, answered 501 (§15.6.2);
#: a known method other than GET and HEAD on a challenge is 405 (§15.5.6).
_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"})
_CHALLENGE_PATH = re.compile(r"(?:" + re.escape(SCRIPT_PREFIX) + r")?/\.well-known/acme-challenge/?(.*)", re.S)

#: An answer: the status line's text, the header fields, the body (empty for HEAD).
Answer = tuple[str, list[tuple[str, str]], bytes]


def challenge_token(environ: Mapping[str, Any]) -> str | None:
    """The token part of a challenge request ("" for the bare directory), or None if not one.

    Servers split the URL differently: Apache's ScriptAlias gives SCRIPT_NAME=/cgi-bin/wucme
    and PATH_INFO=/.well-known/acme-challenge/TOKEN, a WSGI server mounted at / gives it all
    in PATH_INFO, and a ScriptAliasMatch may leave it all in SCRIPT_NAME.
    """
    path = str(environ.get("SCRIPT_NAME", "")) + str(environ.get("PATH_INFO", ""))
    match = _CHALLENGE_PATH.fullmatch(path)
    return match.group(1) if match else None


def answer(method: str, token: str | None, lookup: Callable[[str], str | None]) -> Answer:
    """The answer to *method* on the challenge path of *token* (None: not a challenge path),
    the key authorization found by *lookup*.

    The token is checked against the base64url alphabet before any look-up (RFC 8555 §8.3), so a
    request never reaches the file system with a path of its own making.
    """
    if method not in _KNOWN_METHODS:
        return _response(method, "501 Not Implemented", "Not implemented.")
    if token is None:
        return _response(method, "404 Not Found", "Not found.")
    if method not in ("GET", "HEAD"):
        return _response(method, "405 Method Not Allowed", "Method not allowed.", [("Allow", _ALLOWED)])
    keyauth = lookup(token) if is_token(token) else None
    if keyauth is None:
        return _response(method, "404 Not Found", NO_SUCH_TOKEN)
    return _response(method, "200 OK", keyauth)


def _response(method: str, status: str, text: str, extra: list[tuple[str, str]] | None = None) -> Answer:
    body = text.encode("utf-8")
    headers = [
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Length", str(len(body))),
        ("Cache-Control", "no-store"),
    ]
    return status, headers + (extra or []), b"" if method == "HEAD" else body


def failure(exc: Exception) -> Answer:
    """500 with a VMS message, never a traceback: the server shows the script's output to the
    client (e.g. %WUCME-E-INSECURE for a logical name table others could write)."""
    text = exc.message() if isinstance(exc, VmsError) else format_message(
        "F", "BUG", f"unexpected {type(exc).__name__}: {exc}")
    body = (text + "\n").encode("utf-8", "replace")
    return "500 Internal Server Error", [("Content-Type", "text/plain; charset=utf-8"),
                                         ("Content-Length", str(len(body))),
                                         ("Cache-Control", "no-store")], body


def cgi_head(status: str, headers: list[tuple[str, str]]) -> bytes:
    """The head of a CGI script's answer: a Status header field, not a status line (RFC 3875 §6.3.3)."""
    lines = [f"Status: {status}"] + [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def cgi_answer(environ: Mapping[str, str] | None = None, stdout: IO[bytes] | None = None) -> int | None:
    """Answer the CGI request in *environ* (this process's) when it asks for a challenge; its
    exit status, or None when the full script must answer it: a path that is not a challenge's
    or may be an admin page's, or a store kept in the cluster database (WUCME_STORE_DB or
    WUCME_LOCK_DB), which needs the database client.

    The store is located first, as the full script does before it looks at the request, so a
    broken logical name table gives the same 500 whatever the method."""
    env = os.environ if environ is None else environ
    token = challenge_token(env)
    if token is None or "/admin" in str(env.get("SCRIPT_NAME", "")) + str(env.get("PATH_INFO", "")):
        return None
    try:
        if store_db() is not None:
            return None
        directory = challenges_location()
        status, headers, body = answer(str(env.get("REQUEST_METHOD", "GET")), token,
                                       lambda t: http01_keyauth(directory, t))
    except Exception as e:  # noqa: BLE001 - the server shows our output; never a traceback
        status, headers, body = failure(e)
    if environ is None:
        drain_body(env)
    return cgi_write(stdout if stdout is not None else sys.stdout.buffer, cgi_head(status, headers) + body)


def drain_body(env: Mapping[str, str], fd: int = 0) -> None:
    """Read and drop the request body the server is writing to this script (a POST's 405):
    a script that ends before the server has written it all makes that write fail (EPIPE),
    and Apache then closes the client's connection with no answer at all (one POST in ten,
    tests/web/test_web_hostile.py).  At most DRAIN_BYTES, for at most DRAIN_SECONDS: a
    client that sends its body slowly, or a large one, does not hold the script longer."""
    try:
        left = min(int(env.get("CONTENT_LENGTH") or 0), DRAIN_BYTES)
    except ValueError:
        return
    if left <= 0:
        return
    import select
    import time

    end = time.monotonic() + DRAIN_SECONDS
    try:
        while left > 0:
            wait = end - time.monotonic()
            if wait <= 0 or not select.select([fd], [], [], wait)[0]:
                return
            chunk = os.read(fd, min(left, 65536))
            if not chunk:
                return
            left -= len(chunk)
    except (OSError, ValueError):
        return


def cgi_write(out: IO[bytes], answer: bytes) -> int:
    """Write a CGI script's *answer*; its exit status: 0, or when the server has closed our
    output (its client went away) 141, a command's status when SIGPIPE ended it, quietly, as
    the command line ends: no traceback for the server's error log."""
    try:
        out.write(answer)
        out.flush()
    except BrokenPipeError:
        try:  # nothing more can be written there, not even the interpreter's last flush
            os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())
        except (OSError, ValueError):
            pass
        return 128 + 13
    return 0
