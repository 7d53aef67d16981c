"""The wucme script's one WSGI/CGI entry: challenge paths to http-01, /admin/ paths to the admin pages.

The web server runs the wucme image as a CGI script (RFC 3875) for both, as WASD runs the one
image for /.well-known/acme-challenge/ and /cgi-bin/wucme/admin/; the same application can be
mounted in any WSGI server.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import IO, Any

from wucme.challenge.http01 import StartResponse, WsgiApp, make_wsgi_app, run_cgi
from wucme.challenge.store import ChallengeStore

__all__ = ["make_app", "cgi_main"]


def make_app(store: ChallengeStore | None = None) -> WsgiApp:
    """The routing application: /admin/ paths (with or without /cgi-bin/wucme) to the admin app,
    everything else to the http-01 app, which answers 404 for what is not a challenge.

    The challenge store is opened only for a request that needs it, so an admin page works
    even where the store is not configured; the admin pages' modules are imported only for a
    path that may be one, so a CGI process answering a challenge does not pay for them.
    """
    admin: list[WsgiApp] = []
    challenge: list[WsgiApp] = []

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = str(environ.get("SCRIPT_NAME", "")) + str(environ.get("PATH_INFO", ""))
        if "/admin" in path:
            from wucme.admin import admin_page, make_admin_app

            if admin_page(environ) is not None:
                if not admin:
                    admin.append(make_admin_app())
                return admin[0](environ, start_response)
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
    """Answer one CGI request: challenges and admin pages (what the `wucme` image runs)."""
    return run_cgi(make_app(store), environ, stdin, stdout)