"""The wucme script's one WSGI/CGI entry: challenge paths to http-01, /admin/ paths to the admin pages.

The web server runs the wucme image as a CGI script (RFC 3875) for both, as WASD runs the one
image for /.well-known/acme-challenge/ and /cgi-bin/wucme/admin/; the same application can be
mounted in any WSGI server.
"""
from __future__ import annotations

import io
import os
import sys
from collections.abc import Iterable, Mapping
from typing import IO, Any

from wucme.admin import admin_page, make_admin_app
from wucme.challenge.http01 import StartResponse, WsgiApp, make_wsgi_app
from wucme.challenge.store import ChallengeStore
from wucme.vms.msg import format_message

__all__ = ["make_app", "cgi_main"]


def make_app(store: ChallengeStore | None = None) -> WsgiApp:
    """The routing application: /admin/ paths (with or without /cgi-bin/wucme) to the admin app,
    everything else to the http-01 app, which answers 404 for what is not a challenge.

    The challenge store is opened only for a request that needs it, so an admin page works
    even where the store is not configured.
    """
    admin = make_admin_app()
    challenge: list[WsgiApp] = []

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if admin_page(environ) is not None:
            return admin(environ, start_response)
        if not challenge:
            challenge.append(make_wsgi_app(store if store is not None else ChallengeStore()))
        return challenge[0](environ, start_response)

    return app


def cgi_main(
    environ: Mapping[str, str] | None = None,
    stdin: IO[bytes] | None = None,
    stdout: IO[bytes] | None = None,
    store: ChallengeStore | None = None,
) -> int:
    """Answer one CGI request (RFC 3875 §6.3.3: a Status header field, not a status line)."""
    env: dict[str, Any] = dict(os.environ if environ is None else environ)
    out = stdout if stdout is not None else sys.stdout.buffer
    env.setdefault("SCRIPT_NAME", "")
    env.setdefault("PATH_INFO", "")
    env["wsgi.input"] = stdin if stdin is not None else io.BytesIO()
    env["wsgi.errors"] = sys.stderr
    env["wsgi.version"] = (1, 0)
    env["wsgi.url_scheme"] = "https" if env.get("HTTPS", "").lower() in ("on", "1") else "http"
    env["wsgi.multithread"] = env["wsgi.multiprocess"] = False
    env["wsgi.run_once"] = True
    head: list[bytes] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        lines = [f"Status: {status}"] + [f"{k}: {v}" for k, v in headers]
        head[:] = [("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")]

    try:
        body = b"".join(make_app(store)(env, start_response))
    except Exception as e:  # noqa: BLE001 - the server shows our output; never a traceback
        text = format_message("F", "BUG", f"unexpected {type(e).__name__}: {e}") + "\n"
        body = text.encode("utf-8", "replace")
        start_response("500 Internal Server Error", [("Content-Type", "text/plain; charset=utf-8"),
                                                     ("Content-Length", str(len(body))),
                                                     ("Cache-Control", "no-store")])
    out.write(head[0] + body)
    out.flush()
    return 0
