"""`wucme check /ca | /http01 | /log | /mail | /opcom`: test one piece of the set-up."""
from __future__ import annotations

import sys
import threading
import time
from typing import Any

from wucme.challenge.http01 import Http01Listener
from wucme.command import Command, Qualifier, Verb
from wucme.errors import UsageError, WucmeError
from wucme.challenge.store import ChallengeStore
from wucme.settings import ca_directory, http01_listen
from wucme.repository import Repository
from wucme.session import account_session
from wucme.verbs.common import VerbLog, line, say

VERB = Verb("check", qualifiers=(
    Qualifier("ca", help="query the CA's directory"),
    Qualifier("http01", help="run the internal http-01 responder in the foreground"),
    Qualifier("log", help="show the most recent agent log"),
    Qualifier("mail", help="send a test message to the WUCME_MAIL targets"),
    Qualifier("opcom", help="send a test message to the WUCME_OPCOM operator classes"),
    Qualifier("seconds", "required", help="with /HTTP01: stop after this many seconds"),
), help="Test the CA, the http-01 responder, the log and the reporting targets.")

_ORDER = ("ca", "http01", "log", "mail", "opcom")


def run(cmd: Command) -> int:
    chosen = [q for q in _ORDER if cmd.has(q)]
    if not chosen:
        raise UsageError("check needs /CA, /HTTP01, /LOG, /MAIL or /OPCOM", ident="INSFQUAL")
    status = 0
    for q in chosen:
        status = max(status, {"ca": check_ca, "http01": check_http01, "log": check_log,
                              "mail": check_mail, "opcom": check_opcom}[q](cmd, q))
    return status


def check_ca(cmd: Command, _q: str) -> int:
    directory = ca_directory()
    t0 = time.monotonic()
    try:
        with account_session(VerbLog(), directory=directory) as a:
            ms = (time.monotonic() - t0) * 1000
    except WucmeError as e:
        raise WucmeError(f"CA at {directory} failed: {e.text}", ident="CAFAIL") from None
    raw_meta = a.dir.get("meta")
    meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
    status = say("S", "CA", f"{directory} answered in {ms:.0f} ms")
    terms = meta.get("termsOfService")
    profiles = meta.get("profiles")
    line(f"  terms of service:          {terms if isinstance(terms, str) else 'none'}")
    line(f"  renewal information (ARI): {'offered' if a.dir.get('renewalInfo') else 'not offered'}")
    line(f"  profiles:                  "
         f"{', '.join(sorted(profiles)) if isinstance(profiles, dict) and profiles else 'none'}")
    line(f"  external account binding:  "
         f"{'required' if meta.get('externalAccountRequired') is True else 'not required'}")
    return status


def check_http01(cmd: Command, _q: str) -> int:
    host, port = http01_listen()
    seconds = cmd.value("seconds")
    if seconds is not None and not seconds.isdigit():
        raise UsageError("/SECONDS needs a whole number", ident="BADVALUE")
    store = ChallengeStore()
    try:
        listener = Http01Listener(store, host, port)
    except OSError as e:
        raise WucmeError(f"cannot listen on {host}:{port}: {e.strerror or e}", ident="NOLISTEN") from None
    say("I", "LISTENING", f"http-01 responder on {host}:{port} answering from {store.directory}"
        + (f" for {seconds} s" if seconds else "; interrupt (Ctrl-C) to stop"))
    stop = threading.Event()
    listener.start()
    try:
        stop.wait(float(seconds) if seconds else None)
    except KeyboardInterrupt:
        sys.stdout.write("\n")
    finally:
        listener.stop()
    return say("S", "STOPPED", f"http-01 responder on {host}:{port} stopped")


def check_log(cmd: Command, _q: str) -> int:
    repo = Repository.here()
    path = repo.newest_log()
    if path is None:
        return say("I", "NOLOG", f"no agent log (WUCME_LOG_*) in {repo.path}")
    say("I", "LOG", f"{path}")
    with open(path, "r", errors="replace") as f:
        for text in f:
            sys.stdout.write(text)
    sys.stdout.flush()
    return 0


def check_mail(cmd: Command, _q: str) -> int:
    from wucme.reporting import mail_test

    return say("S", "MAILED", mail_test())


def check_opcom(cmd: Command, _q: str) -> int:
    from wucme.reporting import opcom_test

    return say("S", "OPCOM", opcom_test())
