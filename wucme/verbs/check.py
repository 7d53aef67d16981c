"""`wucme check /CA | /HTTP01 | /LOG | /LOAD | /MAIL | /OPCOM`: test one piece of the set-up.

Each check is a function returning its result, which the command line prints and the admin pages
(/admin/check/...) render: the same check, whichever face asks.  `check_challenge` is the admin
page's alone: it asks the web server that runs the page whether its http-01 path reaches wucme.
"""
from __future__ import annotations

import http.client
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from wucme.challenge.http01 import CHALLENGE_PREFIX, NO_SUCH_TOKEN, Http01Listener
from wucme.challenge.store import ChallengeStore
from wucme.command import Command, Qualifier, Verb
from wucme.errors import UsageError, WucmeError
from wucme.load import load_action
from wucme.repository import Repository
from wucme.session import account_session
from wucme.settings import ca_directory, http01_listen, http01_probe
from wucme.verbs.common import VerbLog
from wucme.result import Result, Show

VERB = Verb("check", qualifiers=(
    Qualifier("ca", help="query the CA's directory"),
    Qualifier("http01", help="run the internal http-01 responder in the foreground"),
    Qualifier("log", help="show the most recent agent log"),
    Qualifier("load", help="run the load action: WUCME_LOAD, then the WUCME_SERVICES handshakes"),
    Qualifier("mail", help="send a test message to the WUCME_MAIL targets"),
    Qualifier("opcom", help="send a test message to the WUCME_OPCOM operator classes"),
    Qualifier("output", "required", keywords=("text", "json"), help="TEXT (default) or JSON"),
    Qualifier("seconds", "required", help="with /HTTP01: stop after this many seconds"),
), help="Test the CA, the http-01 responder, the log, the load action and the reporting targets.")

#: How long the admin page's http-01 check waits for the server.
CHALLENGE_TIMEOUT = 5.0


def check_ca(r: Result, retry_delay: float | None = None) -> Result:
    """A directory query to the CA (WUCME_CA): how long it took and what the CA offers.
    *retry_delay* shortens the pause between tries (someone is waiting for a page)."""
    directory = ca_directory()
    t0 = time.monotonic()
    try:
        with account_session(VerbLog(), directory=directory, retry_delay=retry_delay) as a:
            ms = (time.monotonic() - t0) * 1000
    except UsageError:
        raise  # a bad logical name (WUCME_HTTP, WUCME_PROXY, ...): BADVALUE, as itself
    except WucmeError as e:
        raise WucmeError(f"CA at {directory} failed: {e.text}", ident="CAFAIL") from None
    raw_meta = a.dir.get("meta")
    meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
    terms = meta.get("termsOfService")
    profiles = meta.get("profiles")
    r.say("S", "CA", f"{directory} answered in {ms:.0f} ms")
    return r.facts(
        ("terms of service", terms if isinstance(terms, str) else "none"),
        ("renewal information (ARI)", "offered" if a.dir.get("renewalInfo") else "not offered"),
        ("profiles", ", ".join(sorted(profiles)) if isinstance(profiles, dict) and profiles else "none"),
        ("external account binding", "required" if meta.get("externalAccountRequired") is True
         else "not required"))


def check_http01(r: Result, seconds: str | None = None) -> Result:
    """wucme's own http-01 responder on WUCME_HTTP01 (default port 80) in the foreground."""
    host, port = http01_listen()
    if seconds is not None and not seconds.isdigit():
        raise UsageError("/SECONDS needs a whole number", ident="BADVALUE")
    store = ChallengeStore()
    try:
        listener = Http01Listener(store, host, port)
    except OSError as e:
        raise WucmeError(f"cannot listen on {host}:{port}: {e.strerror or e}", ident="NOLISTEN") from None
    r.say("I", "LISTENING", f"http-01 responder on {host}:{port} answering from {store.directory}"
          + (f" for {seconds} s" if seconds else "; interrupt (Ctrl-C) to stop"))
    stop = threading.Event()
    listener.start()
    try:
        stop.wait(float(seconds) if seconds else None)
    except KeyboardInterrupt:
        sys.stdout.write("\n")
    finally:
        listener.stop()
    return r.say("S", "STOPPED", f"http-01 responder on {host}:{port} stopped")


def check_log(r: Result, tail: int | None = None) -> Result:
    """The newest agent log (WUCME_LOG_*), whole or its last *tail* bytes (from a whole line)."""
    repo = Repository.here()
    path = repo.newest_log()
    if path is None:
        return r.say("I", "NOLOG", f"no agent log (WUCME_LOG_*) in {repo.path}")
    try:
        with open(path, "rb") as f:
            size = f.seek(0, 2)
            f.seek(max(0, size - tail) if tail is not None else 0)
            data = f.read()
    except OSError as e:
        raise WucmeError(f"cannot read {path}: {e.strerror or e}", ident="NOLOGREAD") from None
    if len(data) < size:
        data = data.partition(b"\n")[2]  # start at a whole line
        r.say("I", "LOG", f"{path}: its last {len(data)} of {size} bytes")
    else:
        r.say("I", "LOG", f"{path}: {size} bytes")
    return r.text(data.decode("utf-8", "replace"))


def check_load(r: Result) -> Result:
    """Run the load action (WUCME_LOAD, then the WUCME_SERVICES handshakes), each step a message."""
    steps = load_action(Repository.here())
    if not steps:
        return r.say("I", "NOLOAD", "neither WUCME_LOAD nor WUCME_SERVICES is defined: nothing to do")
    for s in steps:
        r.say("S" if s.ok else "E", "LOADED" if s.ok else "LOADFAIL", s.text)
    return r


def check_mail(r: Result) -> Result:
    """A test message to the WUCME_MAIL targets."""
    from wucme.reporting import mail_test

    return r.say("S", "MAILED", mail_test())


def check_opcom(r: Result) -> Result:
    """A test message to the WUCME_OPCOM operator classes."""
    from wucme.reporting import opcom_test

    return r.say("S", "OPCOM", opcom_test())


def check_challenge(r: Result) -> Result:
    """Ask the http-01 responder for the bare challenge directory, as the seed's curl check does:
    "Challenge received but no such token." (with 404) means the mapping reaches wucme.  Asks
    WUCME_HTTP01's listener when defined, else this server's plain port (WUCME_HTTP_PORT)."""
    host, port, what = http01_probe()
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}{CHALLENGE_PREFIX}"
    conn = http.client.HTTPConnection(host, port, timeout=CHALLENGE_TIMEOUT)
    try:
        conn.request("GET", CHALLENGE_PREFIX, headers={"Host": "localhost"})
        resp = conn.getresponse()
        status = resp.status
        body = resp.read(4096).decode("utf-8", "replace")
    except (OSError, http.client.HTTPException) as e:
        r.say("E", "NOCHALLENGE", f"{url} did not answer: {getattr(e, 'strerror', None) or e}")
        return r.facts(("responder", what), ("asked", url))
    finally:
        conn.close()
    if body.strip() == NO_SUCH_TOKEN:
        r.say("S", "CHALLENGE", f"{url} answered {NO_SUCH_TOKEN!r}: http-01 reaches wucme")
    else:
        r.say("E", "BADCHALLENGE", f"{url} answered status {status} without {NO_SUCH_TOKEN!r}: "
              "the challenge path does not reach wucme")
    r.facts(("responder", what), ("asked", url), ("status", str(status)))
    return r.text(body[:2000])


_CHECKS: dict[str, Callable[[Result, Command], Result]] = {
    "ca": lambda r, cmd: check_ca(r),
    "http01": lambda r, cmd: check_http01(r, cmd.value("seconds")),
    "log": lambda r, cmd: check_log(r),
    "load": lambda r, cmd: check_load(r),
    "mail": lambda r, cmd: check_mail(r),
    "opcom": lambda r, cmd: check_opcom(r),
}


def run(cmd: Command, show: Show | None = None) -> Result:
    chosen = [q for q in _CHECKS if cmd.has(q)]
    if not chosen:
        raise UsageError("check needs /CA, /HTTP01, /LOG, /LOAD, /MAIL or /OPCOM", ident="INSFQUAL")
    result = Result("Check", show=show)
    for q in chosen:
        _CHECKS[q](result, cmd)
    return result
