"""The authorised admin pages under /cgi-bin/wucme/admin/: a WSGI face over the verbs.

Each page is built once as data (a `Page`: messages, a table, key/value facts, preformatted
text) and rendered as small HTML or, with `?format=text`, as plain text for curl.  Everything
that came from a file, the CA or a logical name is data: it goes through html.escape.

The pages answer only a request the web server authenticated (REMOTE_USER) and received over
HTTPS (HTTPS, REQUEST_SCHEME or SERVER_PORT_SECURE, all set by the server, never by a request
header), as the seed's WASD_CONFIG_AUTH rule `/cgi-bin/wucme/admin/* read,https:` demands.
The script checks both itself, so a server configured without the rule still refuses.
"""
from __future__ import annotations

import html
import http.client
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from wucme.errors import WucmeError
from wucme.vms.condition import VmsError, format_message

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
#: The plain http port of this server, where `check/challenge` asks when WUCME_HTTP01 is undefined.
DEFAULT_HTTP_PORT = 80
CHECK_TIMEOUT = 5.0
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


# -- pages as data -----------------------------------------------------------------------------


@dataclass
class Page:
    """One admin page before rendering; `failed` when any message is an error."""

    title: str
    messages: list[tuple[str, str, str]] = field(default_factory=list)
    facts: list[tuple[str, str]] = field(default_factory=list)
    table: list[tuple[str, ...]] = field(default_factory=list)  # the first row is the heading
    text: str | None = None
    links: list[tuple[str, str]] = field(default_factory=list)

    def say(self, severity: str, ident: str, text: str) -> Page:
        self.messages.append((severity, ident, text))
        return self

    @property
    def failed(self) -> bool:
        return any(sev in ("E", "F") for sev, _, _ in self.messages)


def page_cert(_env: Mapping[str, Any]) -> Page:
    """The certificates being managed: the same records as `wucme certificates /output=json`."""
    from wucme.repository import Repository
    from wucme.verbs.certificates import record

    repo = Repository.here()
    records = [record(m) for m in repo.managed()]
    page = Page("Certificates")
    page.facts.append(("repository", str(repo.path)))
    if not records:
        return page.say("I", "NOCERTS", f"no certificates managed in {repo.path}")
    page.table.append(("HOSTS", "FILE", "NOT AFTER", "DAYS", "STATE", "LAST RESULT"))
    for r in records:
        days = f"{r['days_left']:.0f}" if r["days_left"] is not None else "-"
        page.table.append((" ".join(r["hosts"]), r["file"].rsplit("/", 1)[-1], r["not_after"] or "-",
                           days, r["state"], r["last_result"] or "-"))
    n = len(records)
    return page.say("S", "CERTS", f"{n} certificate{'s' if n != 1 else ''} in {repo.path}")


def page_log(_env: Mapping[str, Any]) -> Page:
    """The newest agent log (WUCME_LOG_*), its last LOG_TAIL bytes."""
    from wucme.repository import Repository

    repo = Repository.here()
    page = Page("Agent log")
    path = repo.newest_log()
    if path is None:
        return page.say("I", "NOLOG", f"no agent log (WUCME_LOG_*) in {repo.path}")
    try:
        with open(path, "rb") as f:
            size = f.seek(0, 2)
            f.seek(max(0, size - LOG_TAIL))
            data = f.read(LOG_TAIL)
    except OSError as e:
        raise WucmeError(f"cannot read {path}: {e.strerror or e}", ident="NOLOGREAD") from None
    if size > LOG_TAIL:
        data = data.partition(b"\n")[2]  # start at a whole line
        page.say("I", "LOG", f"{path}: its last {len(data)} of {size} bytes")
    else:
        page.say("I", "LOG", f"{path}: {size} bytes")
    page.text = data.decode("utf-8", "replace")
    return page


def page_check_ca(_env: Mapping[str, Any]) -> Page:
    """A directory query to the CA (`check /ca`): the URL, how long it took, what it offers."""
    from wucme.session import account_session
    from wucme.settings import ca_directory
    from wucme.verbs.common import VerbLog

    directory = ca_directory()
    page = Page("Check: CA")
    page.facts.append(("directory", directory))
    t0 = time.monotonic()
    try:  # someone is waiting for the page: short retries
        with account_session(VerbLog(), directory=directory, retry_delay=CA_RETRY_DELAY) as a:
            ms = (time.monotonic() - t0) * 1000
    except WucmeError as e:
        return page.say("E", "CAFAIL", f"CA at {directory} failed: {e.text}")
    raw_meta = a.dir.get("meta")
    meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
    terms = meta.get("termsOfService")
    profiles = meta.get("profiles")
    page.facts += [
        ("answered in", f"{ms:.0f} ms"),
        ("terms of service", terms if isinstance(terms, str) else "none"),
        ("renewal information (ARI)", "offered" if a.dir.get("renewalInfo") else "not offered"),
        ("profiles", ", ".join(sorted(profiles)) if isinstance(profiles, dict) and profiles else "none"),
        ("external account binding",
         "required" if meta.get("externalAccountRequired") is True else "not required"),
    ]
    return page.say("S", "CA", f"{directory} answered in {ms:.0f} ms")


def challenge_target() -> tuple[str, int, str]:
    """(host, port, what) that `check/challenge` asks: WUCME_HTTP01's listener when defined,
    else this server's plain http port (WUCME_HTTP_PORT, default 80) on loopback."""
    from wucme.settings import http01_probe

    return http01_probe()


def page_check_challenge(_env: Mapping[str, Any]) -> Page:
    """Ask the http-01 responder for the bare challenge directory, as the seed's curl check does:
    "Challenge received but no such token." (with 404) means the mapping reaches wucme."""
    from wucme.challenge.http01 import CHALLENGE_PREFIX, NO_SUCH_TOKEN

    host, port, what = challenge_target()
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}{CHALLENGE_PREFIX}"
    page = Page("Check: http-01 challenge")
    page.facts += [("responder", what), ("asked", url)]
    conn = http.client.HTTPConnection(host, port, timeout=CHECK_TIMEOUT)
    try:
        conn.request("GET", CHALLENGE_PREFIX, headers={"Host": "localhost"})
        resp = conn.getresponse()
        status = resp.status
        body = resp.read(4096).decode("utf-8", "replace")
    except (OSError, http.client.HTTPException) as e:
        return page.say("E", "NOCHALLENGE", f"{url} did not answer: {getattr(e, 'strerror', None) or e}")
    finally:
        conn.close()
    page.facts.append(("status", str(status)))
    page.text = body[:2000]
    if body.strip() == NO_SUCH_TOKEN:
        return page.say("S", "CHALLENGE", f"{url} answered {NO_SUCH_TOKEN!r}: http-01 reaches wucme")
    return page.say("E", "BADCHALLENGE",
                    f"{url} answered status {status} without {NO_SUCH_TOKEN!r}: "
                    "the challenge path does not reach wucme")


def page_check_load(_env: Mapping[str, Any]) -> Page:
    """Run the load action (WUCME_LOAD, then the WUCME_SERVICES handshakes) and show each step."""
    from wucme.load import load_action
    from wucme.repository import Repository

    page = Page("Check: certificate load")
    results = load_action(Repository.here())
    if not results:
        return page.say("I", "NOLOAD", "neither WUCME_LOAD nor WUCME_SERVICES is defined: nothing to do")
    for r in results:
        page.say("S" if r.ok else "E", "LOADED" if r.ok else "LOADFAIL", r.text)
    return page


def page_check_mail(_env: Mapping[str, Any]) -> Page:
    """Send the test message to the WUCME_MAIL targets."""
    from wucme.reporting import mail_test

    return Page("Check: mail").say("S", "MAILED", mail_test())


def page_check_opcom(_env: Mapping[str, Any]) -> Page:
    """Send the test message to the WUCME_OPCOM operator classes."""
    from wucme.reporting import opcom_test

    return Page("Check: OPCOM").say("S", "OPCOM", opcom_test())


#: page name -> (builder, one-line description for the index).
PAGES: dict[str, tuple[Callable[[Mapping[str, Any]], Page], str]] = {
    "cert": (page_cert, "the certificates being managed"),
    "log": (page_log, "the current wuCME-active log"),
    "check/ca": (page_check_ca, "a directory query to the CA"),
    "check/challenge": (page_check_challenge, "test the http-01 challenge responder"),
    "check/load": (page_check_load, "test certificate (re)load"),
    "check/mail": (page_check_mail, "send a test message to WUCME_MAIL"),
    "check/opcom": (page_check_opcom, "send a test message to WUCME_OPCOM"),
}


def page_index(_env: Mapping[str, Any]) -> Page:
    page = Page("wucme administration")
    page.links = [(name, desc) for name, (_, desc) in PAGES.items()]
    return page


# -- rendering ---------------------------------------------------------------------------------


_STYLE = ("body{font-family:sans-serif;margin:1.5em;max-width:80em}"
          "table{border-collapse:collapse}td,th{border:1px solid #999;padding:.2em .5em;text-align:left}"
          "pre{background:#f4f4f4;padding:.5em;overflow-x:auto}.msg{font-family:monospace}"
          ".E,.F{color:#a00}.W{color:#a60}.S{color:#060}")


def render_html(page: Page) -> str:
    e = html.escape
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>wucme: {e(page.title)}</title><style>{_STYLE}</style></head><body>",
           f"<h1>{e(page.title)}</h1>"]
    for sev, ident, text in page.messages:
        out.append(f'<p class="msg {e(sev)}">{e(format_message(sev, ident, text))}</p>')
    if page.facts:
        out.append("<dl>" + "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in page.facts) + "</dl>")
    if page.table:
        head, *rows = page.table
        out.append("<table><thead><tr>" + "".join(f"<th>{e(c)}</th>" for c in head) + "</tr></thead><tbody>")
        out += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in rows]
        out.append("</tbody></table>")
    if page.text is not None:
        out.append(f"<pre>{e(page.text)}</pre>")
    if page.links:
        out.append("<ul>" + "".join(f'<li><a href="{e(ADMIN_PREFIX)}/{e(n)}">{e(n)}</a>: {e(d)}</li>'
                                    for n, d in page.links) + "</ul>")
    out.append("</body></html>\n")
    return "\n".join(out)


def render_text(page: Page) -> str:
    out = [format_message(sev, ident, text) for sev, ident, text in page.messages]
    width = max((len(k) for k, _ in page.facts), default=0)
    out += [f"  {k + ':':<{width + 1}} {v}" for k, v in page.facts]
    if page.table:
        widths = [max(len(row[i]) for row in page.table) for i in range(len(page.table[0]) - 1)]
        out += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[-1] for row in page.table]
    if page.text is not None:
        out.append(page.text.rstrip("\n"))
    out += [f"  {ADMIN_PREFIX}/{n}  {d}" for n, d in page.links]
    return "\n".join(out) + "\n"


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


def _build(builder: Callable[[Mapping[str, Any]], Page], environ: Mapping[str, Any], title: str) -> Page:
    """Run a page builder; any failure becomes a VMS message on the page, never a traceback."""
    try:
        return builder(environ)
    except (WucmeError, VmsError) as e:
        return Page(title).say(e.severity if e.severity in ("E", "F") else "E", e.ident, e.text)
    except Exception as e:  # noqa: BLE001 - the face never shows a traceback
        return Page(title).say("F", "BUG", f"unexpected {type(e).__name__}: {e}")


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
        builder: Callable[[Mapping[str, Any]], Page]
        if name == "":
            builder, title = page_index, "wucme administration"
        elif name in PAGES:
            builder, title = PAGES[name][0], name
        else:
            page = Page("Not found").say("E", "NOPAGE", f"no admin page {(name or '')[:100]!r}")
            page.links = [(n, d) for n, (_, d) in PAGES.items()]
            return _page(start_response, method, "404 Not Found", page, as_text)
        page = _build(builder, environ, title)
        status = "500 Internal Server Error" if page.failed else "200 OK"
        return _page(start_response, method, status, page, as_text)

    return app


def _page(start_response: StartResponse, method: str, status: str, page: Page, as_text: bool) -> list[bytes]:
    if as_text:
        return _send(start_response, method, status, render_text(page), "text/plain")
    return _send(start_response, method, status, render_html(page), "text/html")
