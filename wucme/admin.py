"""The authorised admin pages under /cgi-bin/wucme/admin/: a WSGI face over the verbs.

Each page is a verb's result (wucme.result: messages, facts, a table, preformatted text) from
the same function the command line runs (`certificates`, `check /ca`, `check /log`, ...),
rendered as small HTML; with `?format=text` as the command line's text for curl; with `?format=json`
(or `Accept: application/json`) as its `/OUTPUT=JSON` object, from the same Result.  Everything
that came from a file, the CA or a logical name is data: it goes through html.escape.

The pages answer only a request the web server authenticated (REMOTE_USER) and received over
HTTPS (HTTPS, REQUEST_SCHEME or SERVER_PORT_SECURE, all set by the server, never by a request
header), as the seed's WASD_CONFIG_AUTH rule `/cgi-bin/wucme/admin/* read,https:` demands.
The script checks both itself, so a server configured without the rule still refuses.
"""
from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from wucme.errors import WucmeError
from wucme.result import Block, Cell, Facts, Result, Table, render_json, render_text
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
#: A certificate with more host names than this shows its first and a count, opened on a click.
HOSTS_SHOWN = 3
_ALLOWED = "GET, HEAD"
_ALLOWED_ACTING = "GET, HEAD, POST"
#: Pages that act (reload the servers, send mail or operator messages): they run only on a
#: POST carrying a token (CSRF); a GET shows the button.  An <img> on any page an
#: administrator visits would otherwise act with the browser's cached credentials.
ACTING = frozenset({"check/load", "check/mail", "check/opcom"})
#: Seconds a form's token stays good.
TOKEN_WINDOW = 3600
#: The per-repository secret the tokens are made with (0600); where the script may not write
#: the repository, a 0600 file of its own user in the temporary directory.
SECRET_FILE = "WUCME_ADMIN_SECRET.KEY"
_MAX_FORM = 4096
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


# -- acting pages: POST with a token (CSRF) ------------------------------------------------------


def _read_secret(path: Any) -> bytes | None:
    """The secret in *path*, made (0600, atomically) when missing; None when it cannot be had."""
    import os
    import secrets as _secrets
    from pathlib import Path

    path = Path(path)
    for _ in range(2):
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            except FileExistsError:
                continue
            except OSError:
                return None
            try:
                os.write(fd, _secrets.token_hex(32).encode() + b"\n")
            finally:
                os.close(fd)
            continue
        except OSError:
            return None
        try:
            st = os.fstat(fd)
            if st.st_uid != os.geteuid() or st.st_mode & 0o077:
                return None  # another user's, or readable by others: not a secret
            data = os.read(fd, 256).strip()
        finally:
            os.close(fd)
        return data if len(data) >= 32 else None
    return None


def admin_secret() -> bytes:
    """The key of the tokens: the repository's SECRET_FILE, else this user's own in the
    temporary directory (the script's user may not write the repository)."""
    import os
    import tempfile
    from pathlib import Path

    from wucme.settings import here_path

    try:
        found = _read_secret(here_path() / SECRET_FILE)
    except WucmeError:
        found = None
    if found is None:
        found = _read_secret(Path(tempfile.gettempdir()) / f"wucme-admin-{os.geteuid()}.key")
    if found is None:
        raise WucmeError("no secret for the admin forms: the repository and the temporary "
                         "directory refused it", ident="NOSECRET")
    return found


def make_token(user: str, page: str, now: float | None = None, secret: bytes | None = None) -> str:
    """`TIME.HMAC(secret, user, page, TIME)`: good for TOKEN_WINDOW seconds, for this user and page."""
    import hashlib
    import hmac
    import time

    t = str(int(time.time() if now is None else now))
    key = admin_secret() if secret is None else secret
    mac = hmac.new(key, f"{user}\n{page}\n{t}".encode("utf-8", "replace"), hashlib.sha256).hexdigest()
    return f"{t}.{mac}"


def token_problem(token: str, user: str, page: str, now: float | None = None,
                  secret: bytes | None = None) -> str | None:
    """Why *token* does not let *user* act on *page* (None: it does); compared in constant time."""
    import hmac
    import time

    t, dot, _ = token.partition(".")
    if not dot or not t.isdigit() or len(t) > 12:
        return "the request carries no valid form token: use the page's button"
    age = (time.time() if now is None else now) - int(t)
    if not -60 <= age <= TOKEN_WINDOW:
        return "the form's token has expired: load the page again"
    want = make_token(user, page, int(t), secret)
    if not hmac.compare_digest(want.encode("ascii", "replace"), token.encode("ascii", "replace")):
        return "the form's token is not valid for this user and page"
    return None


def origin_problem(environ: Mapping[str, Any]) -> str | None:
    """A cross-site POST: an Origin (or, without one, a Referer) naming another site than the
    request's own Host over https."""
    from urllib.parse import urlsplit

    host = str(environ.get("HTTP_HOST") or environ.get("SERVER_NAME") or "").lower()
    origin = str(environ.get("HTTP_ORIGIN", "")).strip()
    what = "Origin"
    if not origin:
        origin, what = str(environ.get("HTTP_REFERER", "")).strip(), "Referer"
    if not origin:
        return None
    if origin == "null":
        return "the request comes from an opaque origin (Origin: null)"
    try:
        parts = urlsplit(origin)
        ok = parts.scheme.lower() == "https" and parts.netloc.lower() in (host, host + ":443") and bool(host)
    except ValueError:
        ok = False
    return None if ok else f"the request comes from another site ({what} {origin[:100]!r})"


def _form_fields(environ: Mapping[str, Any]) -> dict[str, list[str]]:
    try:
        length = int(str(environ.get("CONTENT_LENGTH") or "0"))
    except ValueError:
        length = 0
    if length <= 0:
        return {}
    stream = environ.get("wsgi.input")
    body = stream.read(min(length, _MAX_FORM)) if stream is not None else b""
    return parse_qs(body.decode("latin-1"))


def render_form(name: str, token: str, as_text: bool) -> str:
    """An acting page asked with GET: what it would do, and the button (a POST with the token)."""
    e = html.escape
    desc = PAGES[name][1]
    action = f"{ADMIN_PREFIX}/{name}"
    if as_text:
        return (f"{name}: {desc}\nThis page acts: POST to {action} with token={token}\n"
                f"  curl -u USER -d token={token} https://HOST{action}?format=text\n")
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>wucme: {e(name)}</title></head><body>", f"<h1>{e(name)}</h1>",
        f"<p>{e(desc)}</p>",
        f'<form method="post" action="{e(action)}"><input type="hidden" name="token" value="{e(token)}">'
        f'<button type="submit">Run {e(name)}</button></form>', "</body></html>\n"])


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
          "table{border-collapse:collapse}td,th{border:1px solid #999;padding:.2em .5em;text-align:left;"
          "vertical-align:top;white-space:nowrap}"
          # the host names and the last column wrap (at blanks, a long word anywhere); the rest,
          # short (a file name, a time, a count), never breaks inside a value
          "td:first-child{white-space:normal;max-width:32em}.n{white-space:nowrap}"
          "td:last-child{white-space:normal;overflow-wrap:anywhere;min-width:16em}"
          "summary{cursor:pointer;white-space:nowrap}details ul{margin:.2em 0;padding-left:1.2em}"
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
            if isinstance(c, str):
                return f"<td>{e(c)}</td>"
            if len(c) <= HOSTS_SHOWN:
                return "<td>" + " ".join(f'<span class="n">{e(n)}</span>' for n in c) + "</td>"  # wrap between names
            # A long host list (up to 100 names) collapses to its first name and a count; the
            # reader opens it for every name, so the table stays one line a certificate.
            return (f"<td><details><summary>{e(c[0])} +{len(c) - 1}</summary><ul>"
                    + "".join(f"<li>{e(n)}</li>" for n in c) + "</ul></details></td>")

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


def render_page_json(page: Page) -> str:
    """The page as JSON (`?format=json` or `Accept: application/json`): the command line's
    /OUTPUT=JSON of the same result; the index adds its pages."""
    if not page.links:
        return render_json(page.result) + "\n"
    out = json.loads(render_json(page.result))
    out["pages"] = [{"path": f"{ADMIN_PREFIX}/{n}", "description": d} for n, d in page.links]
    return json.dumps(out, indent=1) + "\n"


def _format(environ: Mapping[str, Any]) -> str:
    """html, text or json: `?format=` when given, else the Accept header's JSON, else HTML."""
    asked = parse_qs(str(environ.get("QUERY_STRING", ""))).get("format", [""])[-1].lower()
    if asked in ("text", "txt", "plain"):
        return "text"
    if asked == "json":
        return "json"
    accept = str(environ.get("HTTP_ACCEPT", "")).lower()
    if not asked and "application/json" in accept and "text/html" not in accept:
        return "json"
    return "html"


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
    """The admin WSGI application: refuses (403) unless authenticated over HTTPS; GET/HEAD,
    and for the acting pages (ACTING) a POST with the form's token, from this site.

    A page that ran but whose check failed answers 500 with its messages, so `curl -f` notices.
    """

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        name = admin_page(environ)
        why = refusal(environ)
        if why is not None:
            return _send(start_response, method, "403 Forbidden",
                         format_message("E", "NOTAUTH", why) + "\n", "text/plain")
        acting = name in ACTING
        posted = environ.get("REQUEST_METHOD") == "POST"  # methods are case-sensitive (RFC 9110 §9.1)
        if method not in ("GET", "HEAD") and not (acting and posted):
            return _send(start_response, method, "405 Method Not Allowed",
                         format_message("E", "BADMETHOD", f"{method[:20]} is not allowed here") + "\n",
                         "text/plain", [("Allow", _ALLOWED_ACTING if acting else _ALLOWED)])
        form = _format(environ)
        as_text = form == "text"
        user = str(environ.get("REMOTE_USER", "")).strip()
        if acting and not posted:
            try:
                token = make_token(user, name or "")
                if form == "json":  # a script: what to POST, with the token it needs
                    said = Condition("I", "POSTNEEDED", f"{ADMIN_PREFIX}/{name} acts only on a POST "
                                     "with this token (CSRF)")
                    body = json.dumps({"status": 0, "messages": [{"severity": said.severity,
                                       "ident": said.ident, "text": said.text, "message": said.message()}],
                                       "action": f"{ADMIN_PREFIX}/{name}", "method": "POST",
                                       "token": token}, indent=1) + "\n"
                    return _send(start_response, method, "200 OK", body, "application/json")
                button = render_form(name or "", token, as_text)
            except WucmeError as e:
                return _send(start_response, method, "500 Internal Server Error",
                             format_message("E", e.ident, e.text) + "\n", "text/plain")
            return _send(start_response, method, "200 OK", button, "text/plain" if as_text else "text/html")
        if acting:
            token = (_form_fields(environ).get("token") or [""])[-1]
            try:
                why = origin_problem(environ) or token_problem(token, user, name or "")
            except WucmeError as e:
                why = e.text
            if why is not None:
                return _send(start_response, method, "403 Forbidden",
                             format_message("E", "BADTOKEN", why) + "\n", "text/plain")
        if name == "":
            page = Page(Result("wucme administration"), _links())
        elif name in PAGES:
            page = _build(PAGES[name][0], name or "")
        else:
            page = Page(Result("Not found").say("E", "NOPAGE", f"no admin page {(name or '')[:100]!r}"),
                        _links())
            return _page(start_response, method, "404 Not Found", page, form)
        status = "500 Internal Server Error" if page.failed else "200 OK"
        return _page(start_response, method, status, page, form)

    return app


def _page(start_response: StartResponse, method: str, status: str, page: Page, form: str) -> list[bytes]:
    if form == "text":
        return _send(start_response, method, status, render_page_text(page), "text/plain")
    if form == "json":
        return _send(start_response, method, status, render_page_json(page), "application/json")
    return _send(start_response, method, status, render_html(page), "text/html")
