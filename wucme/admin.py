"""The authorised admin pages under /cgi-bin/wucme/admin/: a WSGI face over the verbs.

Each page is a verb's result (wucme.result: messages, facts, a table, preformatted text) from
the same function the command line runs (`certificates`, `check /ca`, `check /log`, ...),
rendered as small HTML or, with `?format=text`, as the command line's text for curl.  Everything
that came from a file, the CA or a logical name is data: it goes through html.escape.

The pages answer only a request the web server authenticated (REMOTE_USER) and received over
HTTPS (HTTPS, REQUEST_SCHEME or SERVER_PORT_SECURE, all set by the server, never by a request
header), as the seed's WASD_CONFIG_AUTH rule `/cgi-bin/wucme/admin/* read,https:` demands.
The script checks both itself, so a server configured without the rule still refuses.
"""
from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from wucme.errors import WucmeError
from wucme.result import Block, Cell, Facts, Result, Table, render_text
from wucme.vms.condition import Condition, VmsError, format_message

__all__ = [
    "ADMIN_PREFIX",
    "PAGES",
    "LOG_TAIL",
    "Page",
    "admin_page",
    "refusal",
    "make_admin_app",
]

ADMIN_PREFIX = "/cgi-bin/wucme/admin"
#: How much of the agent log the log page shows (its end).
LOG_TAIL = 64 * 1024
#: Seconds between the CA directory query's tries (the command line waits 5 s, a page less).
CA_RETRY_DELAY = 0.5
_ALLOWED = "GET, HEAD"
_ADMIN_PATH = re.compile(r"(?:/cgi-bin/wucme)?/admin(?:/(.*))?", re.S)

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


# -- the request -------------------------------------------------------------------------------


def admin_page(environ: Mapping[str, Any]) -> str | None:
    """The page asked for ("" for the index, "check/ca", ...), or None for a path not under admin.

    Servers split the URL differently (see http01.challenge_token), so the two are joined.
    """
    path = str(environ.get("SCRIPT_NAME", "")) + str(environ.get("PATH_INFO", ""))
    match = _ADMIN_PATH.fullmatch(path)
    if match is None:
        return None
    return (match.group(1) or "").strip("/")


def _over_https(environ: Mapping[str, Any]) -> bool:
    """Did the server receive this over TLS?  Only variables the server sets count.

    A client's headers arrive as HTTP_* (HTTP_X_FORWARDED_PROTO, HTTP_HTTPS), never as these,
    and wsgi.url_scheme is left out because WSGI servers may derive it from X-Forwarded-Proto.
    WASD's REQUEST_SCHEME carries a colon ("https:").
    """
    if str(environ.get("HTTPS", "")).strip().lower() in ("on", "1", "yes", "true"):
        return True
    if str(environ.get("REQUEST_SCHEME", "")).strip().lower().rstrip(":") == "https":
        return True
    secure = str(environ.get("SERVER_PORT_SECURE", "")).strip()
    return bool(secure) and secure != "0"


def refusal(environ: Mapping[str, Any]) -> str | None:
    """Why this request may not see the admin pages, or None when it may."""
    if not str(environ.get("REMOTE_USER", "")).strip():
        return ("the admin pages need a request the web server has authenticated "
                "(no REMOTE_USER): subject /cgi-bin/wucme/admin/* to authorisation")
    if not _over_https(environ):
        return "the admin pages are served over HTTPS only"
    return None


# -- the pages: the verbs' results ---------------------------------------------------------------


@dataclass
class Page:
    """One admin page: a verb's result, and for the index the links to the others."""

    result: Result
    links: list[tuple[str, str]] = field(default_factory=list)

    @property
    def title(self) -> str:
        return self.result.title

    @property
    def failed(self) -> bool:
        return self.result.failed


def page_cert() -> Result:
    """The certificates being managed: `wucme certificates`."""
    from wucme.verbs.certificates import certificates

    return certificates()


def page_log() -> Result:
    """The newest agent log, its last LOG_TAIL bytes: `wucme check /log`."""
    from wucme.verbs.check import check_log

    return check_log(Result("Agent log"), tail=LOG_TAIL)


def page_check_ca() -> Result:
    """A directory query to the CA: `wucme check /ca`, with short retries (someone is waiting)."""
    from wucme.verbs.check import check_ca

    return check_ca(Result("Check: CA"), retry_delay=CA_RETRY_DELAY)


def page_check_challenge() -> Result:
    """Whether this server's http-01 path reaches wucme (the admin pages' own check)."""
    from wucme.verbs.check import check_challenge

    return check_challenge(Result("Check: http-01 challenge"))


def page_check_load() -> Result:
    """The load action, each step shown: `wucme check /load`."""
    from wucme.verbs.check import check_load

    return check_load(Result("Check: certificate load"))


def page_check_mail() -> Result:
    """A test message to the WUCME_MAIL targets: `wucme check /mail`."""
    from wucme.verbs.check import check_mail

    return check_mail(Result("Check: mail"))


def page_check_opcom() -> Result:
    """A test message to the WUCME_OPCOM operator classes: `wucme check /opcom`."""
    from wucme.verbs.check import check_opcom

    return check_opcom(Result("Check: OPCOM"))


#: page name -> (builder, one-line description for the index).
PAGES: dict[str, tuple[Callable[[], Result], str]] = {
    "cert": (page_cert, "the certificates being managed"),
    "log": (page_log, "the current wuCME-active log"),
    "check/ca": (page_check_ca, "a directory query to the CA"),
    "check/challenge": (page_check_challenge, "test the http-01 challenge responder"),
    "check/load": (page_check_load, "test certificate (re)load"),
    "check/mail": (page_check_mail, "send a test message to WUCME_MAIL"),
    "check/opcom": (page_check_opcom, "send a test message to WUCME_OPCOM"),
}


def _links() -> list[tuple[str, str]]:
    return [(name, desc) for name, (_, desc) in PAGES.items()]


# -- rendering ---------------------------------------------------------------------------------


_STYLE = ("body{font-family:sans-serif;margin:1.5em;max-width:80em}"
          "table{border-collapse:collapse}td,th{border:1px solid #999;padding:.2em .5em;text-align:left}"
          "pre{background:#f4f4f4;padding:.5em;overflow-x:auto}.msg{font-family:monospace}"
          ".E,.F{color:#a00}.W{color:#a60}.S{color:#060}")


def _html_block(block: Block) -> str:
    e = html.escape
    if isinstance(block, Condition):
        return f'<p class="msg {e(block.severity)}">{e(block.message())}</p>'
    if isinstance(block, Facts):
        return "<dl>" + "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in block.items) + "</dl>"
    if isinstance(block, Table):
        def cell(c: Cell) -> str:
            return f"<td>{e(c if isinstance(c, str) else ' '.join(c))}</td>"  # every name: HTML wraps

        return ("<table><thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in block.heading)
                + "</tr></thead><tbody>\n"
                + "\n".join("<tr>" + "".join(cell(c) for c in row) + "</tr>" for row in block.rows)
                + "\n</tbody></table>")
    return f"<pre>{e(block.text)}</pre>"


def render_html(page: Page) -> str:
    e = html.escape
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>wucme: {e(page.title)}</title><style>{_STYLE}</style></head><body>",
           f"<h1>{e(page.title)}</h1>"]
    out += [_html_block(b) for b in page.result.blocks]
    if page.links:
        out.append("<ul>" + "".join(f'<li><a href="{e(ADMIN_PREFIX)}/{e(n)}">{e(n)}</a>: {e(d)}</li>'
                                    for n, d in page.links) + "</ul>")
    out.append("</body></html>\n")
    return "\n".join(out)


def render_page_text(page: Page) -> str:
    """The page as plain text (`?format=text`): the command line's rendering, then the links."""
    return render_text(page.result) + "".join(f"  {ADMIN_PREFIX}/{n}  {d}\n" for n, d in page.links)


# -- the application ---------------------------------------------------------------------------


def _security_headers() -> list[tuple[str, str]]:
    return [
        ("Cache-Control", "no-store"),
        ("X-Content-Type-Options", "nosniff"),
        ("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"),
        ("Referrer-Policy", "no-referrer"),
    ]


def _send(start_response: StartResponse, method: str, status: str, body: str, ctype: str,
          extra: list[tuple[str, str]] | None = None) -> list[bytes]:
    data = body.encode("utf-8")
    start_response(status, [("Content-Type", f"{ctype}; charset=utf-8"), ("Content-Length", str(len(data)))]
                   + _security_headers() + (extra or []))
    return [b""] if method == "HEAD" else [data]


def _build(builder: Callable[[], Result], title: str) -> Page:
    """Run a page's verb; any failure becomes a VMS message on the page, never a traceback."""
    try:
        return Page(builder())
    except (WucmeError, VmsError) as e:
        return Page(Result(title).say(e.severity if e.severity in ("E", "F") else "E", e.ident, e.text))
    except Exception as e:  # noqa: BLE001 - the face never shows a traceback
        return Page(Result(title).say("F", "BUG", f"unexpected {type(e).__name__}: {e}"))


def make_admin_app() -> WsgiApp:
    """The admin WSGI application: refuses (403) unless authenticated over HTTPS, GET/HEAD only.

    A page that ran but whose check failed answers 500 with its messages, so `curl -f` notices.
    """

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        name = admin_page(environ)
        why = refusal(environ)
        if why is not None:
            return _send(start_response, method, "403 Forbidden",
                         format_message("E", "NOTAUTH", why) + "\n", "text/plain")
        if method not in ("GET", "HEAD"):
            return _send(start_response, method, "405 Method Not Allowed",
                         format_message("E", "BADMETHOD", f"{method[:20]} is not allowed here") + "\n",
                         "text/plain", [("Allow", _ALLOWED)])
        query = parse_qs(str(environ.get("QUERY_STRING", "")))
        as_text = query.get("format", [""])[-1].lower() in ("text", "txt", "plain")
        if name == "":
            page = Page(Result("wucme administration"), _links())
        elif name in PAGES:
            page = _build(PAGES[name][0], name or "")
        else:
            page = Page(Result("Not found").say("E", "NOPAGE", f"no admin page {(name or '')[:100]!r}"),
                        _links())
            return _page(start_response, method, "404 Not Found", page, as_text)
        status = "500 Internal Server Error" if page.failed else "200 OK"
        return _page(start_response, method, status, page, as_text)

    return app


def _page(start_response: StartResponse, method: str, status: str, page: Page, as_text: bool) -> list[bytes]:
    if as_text:
        return _send(start_response, method, status, render_page_text(page), "text/plain")
    return _send(start_response, method, status, render_html(page), "text/html")
