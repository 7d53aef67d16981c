"""`wucme check /CA | /CLUSTER | /HTTP01 | /LOG | /LOAD | /MAIL | /OPCOM`: test one piece of the set-up.

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

from wucme.challenge._net import ANY, show_address
from wucme.challenge.http01 import CHALLENGE_PREFIX, NO_SUCH_TOKEN, Http01Listener
from wucme.challenge.store import ChallengeStore
from wucme.command import Command, Qualifier, Verb
from wucme.errors import UsageError, WucmeError
from wucme.load import load_action
from wucme.repository import Repository
from wucme.session import account_session
from wucme.settings import ca_directory, cluster_mode, http01_listen, http01_probe, lock_db, store_db
from wucme.verbs.common import VerbLog
from wucme.result import Result, Show

VERB = Verb("check", qualifiers=(
    Qualifier("ca", help="query the CA's directory"),
    Qualifier("cluster", help="the cluster database (WUCME_LOCK_DB): the agents' lock, the shared "
              "challenge store and logical-name table"),
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
        listener = Http01Listener(store, host, port).start()
    except OSError as e:
        raise WucmeError(f"cannot listen on {show_address(host, port)}: {e.strerror or e}", ident="NOLISTEN") from None
    r.say("I", "LISTENING", f"http-01 responder on {show_address(host, port)} answering from {store.where}"
          + (f" for {seconds} s" if seconds else "; interrupt (Ctrl-C) to stop"))
    stop = threading.Event()
    try:
        stop.wait(float(seconds) if seconds else None)
    except KeyboardInterrupt:
        sys.stdout.write("\n")
    finally:
        listener.stop()
    return r.say("S", "STOPPED", f"http-01 responder on {show_address(host, port)} stopped")


def check_cluster(r: Result) -> Result:
    """The cluster database (docs/cluster.md): reachable, who holds the agents' lock, whether the
    shared challenge store and the cluster logical-name table are there."""
    from wucme.vms.lnm import cluster_db
    from wucme.vms.pgsql import ClusterDbError, PgSession

    conninfo = lock_db()
    if conninfo is None:
        from wucme.vms.lnm import lookup

        if lookup("WUCME_LOCK_DB", "cluster") is not None:
            r.say("W", "LOCKDBCLUSTER", "WUCME_LOCK_DB is defined in the cluster table, which cannot name "
                  "its own database, so it is not used: define it /SYSTEM on each node")
        return r.say("W", "NOCLUSTER", "WUCME_LOCK_DB is not defined (process or system table): this "
                     "node is no cluster member; its agents' lock is local, its challenge store a "
                     "directory and its cluster logical-name table a file (docs/cluster.md)")
    session = PgSession(conninfo, "wucme check")
    t0 = time.monotonic()
    try:
        version = session.run(lambda c: c.execute("SHOW server_version").fetchone()[0])
    except ClusterDbError as e:
        return r.say("E", "NOCLUSTERDB", f"the cluster database (WUCME_LOCK_DB) does not answer: {e.text}")
    r.say("S", "CLUSTERDB", f"the cluster database answered in {(time.monotonic() - t0) * 1000:.0f} ms "
          f"(PostgreSQL {version})")
    try:
        _check_cluster_lock(r, session)
        store = ChallengeStore(db=store_db() or conninfo)
        if store.shared:
            from wucme.challenge.storepg import PgChallenges

            db = store._db
            assert isinstance(db, PgChallenges)
            if db.present():
                r.say("S", "STORE", f"shared challenge store present: {len(store)} challenge(s) pending")
            else:
                r.say("I", "NOSTORE", "shared challenge store not created yet (its first challenge creates it)")
        from wucme.vms.lnmdb import cluster_table

        if cluster_db() is not None and cluster_table(conninfo).present():
            r.say("S", "LNMTABLE", "cluster logical-name table (LNM$SYSCLUSTER_TABLE) present in the database")
        else:
            r.say("I", "NOLNMTABLE", "cluster logical-name table not created yet (the first DEFINE /CLUSTER "
                  "creates it)")
    except ClusterDbError as e:
        r.say("E", "NOCLUSTERDB", f"the cluster database failed: {e.text}")
    finally:
        session.close()
    return r


def _check_cluster_lock(r: Result, session: Any) -> None:
    """Who holds the agents' lock on this repository: the agent names its node and pid on its
    session (application_name, wucme.lockpg)."""
    from wucme.lockpg import LOCKID_FILE, lock_key

    here = Repository.here().path
    try:
        ident = (here / LOCKID_FILE).read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        r.say("I", "NOLOCK", f"no agent has taken the cluster lock of {here} yet (no {LOCKID_FILE})")
        return
    if cluster_mode() == "SHARED":
        _check_certificate_locks(r, session, here, ident)
        return
    key = lock_key("WUCME_ACTIVE", ident)
    rows = session.run(lambda c: c.execute(
        "SELECT a.application_name, host(a.client_addr), a.pid FROM pg_locks l "
        "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted "
        "AND l.classid = %s AND l.objid = %s AND l.objsubid = 1",
        ((key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF)).fetchall())
    if not rows:
        r.say("W", "NOACTIVE", f"no agent holds the cluster lock of {here}: no node is active")
        return
    name, addr, backend = rows[0]
    holder = str(name or "").removeprefix("wucme ").strip() or "an unnamed session"
    r.say("S", "ACTIVE", f"the cluster lock of {here} is held by {holder}"
          + (f" (from {addr}, server process {backend})" if addr else f" (server process {backend})"))


def _check_certificate_locks(r: Result, session: Any, here: Any, ident: str) -> None:
    """Shared renewals elect no agent: say so, and how many certificates are being worked on
    now (their locks held, by any node)."""
    from wucme.lockpg import lock_key
    from wucme.repository import certificate_resource

    mine = {lock_key(certificate_resource(m.cert_name), ident) for m in Repository(here).managed()}
    rows = session.run(lambda c: c.execute(
        "SELECT (classid::bigint << 32) | objid::bigint FROM pg_locks "
        "WHERE locktype = 'advisory' AND granted AND objsubid = 1").fetchall())
    held = sum(1 for (k,) in rows if k in mine)
    r.say("S", "SHARED", f"renewals of {here} are shared (WUCME_CLUSTER_MODE SHARED): every node's agent "
          f"runs its pass, none is elected; {held} of its {len(mine)} certificate(s) locked now")


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
        return r.say("I", "NOLOAD", "neither WUCME_LOAD nor WUCME_SERVICES is defined: a renewed "
                     "certificate is loaded by nothing (the pass says %WUCME-W-NOTLOADED); define "
                     "WUCME_LOAD as the command that reloads the server (e.g. systemctl reload nginx) "
                     "and WUCME_SERVICES as what to check afterwards (e.g. www.example.org@127.0.0.1:443)")
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


def _ask(host: str, port: int) -> tuple[int, str]:
    """GET the bare challenge directory from *host*:*port*: (status, body); OSError when
    nothing answers."""
    conn = http.client.HTTPConnection(host, port, timeout=CHALLENGE_TIMEOUT)
    try:
        conn.request("GET", CHALLENGE_PREFIX, headers={"Host": "localhost"})
        resp = conn.getresponse()
        return resp.status, resp.read(4096).decode("utf-8", "replace")
    except http.client.HTTPException as e:
        raise OSError(str(e)) from None
    finally:
        conn.close()


def check_challenge(r: Result) -> Result:
    """Ask the http-01 responder for the bare challenge directory, as the seed's curl check does:
    "Challenge received but no such token." (with 404) means the mapping reaches wucme.  Asks
    WUCME_HTTP01's listener when defined, else this server's plain port (WUCME_HTTP_PORT).
    When nothing answers there, the seed's "internal ad hoc responder" is started on that port
    for the check (as `check /http01` would, for a moment) and asked instead."""
    host, port, what = http01_probe()
    url = f"http://{show_address(host, port)}{CHALLENGE_PREFIX}"
    try:
        status, body = _ask(host, port)
    except OSError as e:
        why = getattr(e, "strerror", None) or str(e)
        try:
            listener = Http01Listener(ChallengeStore(), ANY, port).start()
        except OSError as b:
            r.say("W", "NOCHALLENGE", f"{url} did not answer ({why}), and wucme's own http-01 responder "
                  f"cannot listen on port {port} to be checked instead: {b.strerror or b}")
            return r.facts(("responder", what), ("asked", url))
        try:
            status, body = _ask(host, port)
        except OSError as e2:
            r.say("E", "NOCHALLENGE", f"wucme's own http-01 responder on port {port} did not answer: "
                  f"{getattr(e2, 'strerror', None) or e2}")
            return r.facts(("responder", "wucme's own (ad hoc)"), ("asked", url))
        finally:
            listener.stop()
        what = f"wucme's own http-01 responder, started ad hoc on port {port} (nothing answered there)"
        r.say("I", "ADHOC", f"{url} did not answer ({why}): wucme's own http-01 responder was started "
              f"on port {port} for this check, and stopped after it")
    if body.strip() == NO_SUCH_TOKEN:
        r.say("S", "CHALLENGE", f"{url} answered {NO_SUCH_TOKEN!r}: http-01 reaches wucme")
    else:
        r.say("E", "BADCHALLENGE", f"{url} answered status {status} without {NO_SUCH_TOKEN!r}: "
              "the challenge path does not reach wucme")
    r.facts(("responder", what), ("asked", url), ("status", str(status)))
    return r.text(body[:2000])


_CHECKS: dict[str, Callable[[Result, Command], Result]] = {
    "ca": lambda r, cmd: check_ca(r),
    "cluster": lambda r, cmd: check_cluster(r),
    "http01": lambda r, cmd: check_http01(r, cmd.value("seconds")),
    "log": lambda r, cmd: check_log(r),
    "load": lambda r, cmd: check_load(r),
    "mail": lambda r, cmd: check_mail(r),
    "opcom": lambda r, cmd: check_opcom(r),
}


def run(cmd: Command, show: Show | None = None) -> Result:
    chosen = [q for q in _CHECKS if cmd.has(q)]
    if not chosen:
        raise UsageError("check needs /CA, /CLUSTER, /HTTP01, /LOG, /LOAD, /MAIL or /OPCOM", ident="INSFQUAL")
    result = Result("Check", show=show)
    for q in chosen:
        _CHECKS[q](result, cmd)
    return result
