"""The renewal pass: the daily function, used by `wucme manage` and by the agent alike (neither
imports the other; each only shows what it says).  One pass, in order:

1. renew what is due (below), concurrently on WUCME_WORKERS threads (default 4); each renewal
   saves its state at once, so a later pass skips it, and one failure never stops the others;
2. the load action (wucme.load: WUCME_LOAD, then the WUCME_SERVICES handshakes) when something
   was renewed or the previous load failed (the repository remembers it: WUCME_LOAD.JSON);
3. the reports (wucme.reporting): every renewal, failure and the load's outcome to WUCME_OPCOM
   and WUCME_MAIL, and the EXPIRING / EXPIRED warnings for certificates whose renewal keeps
   failing.

When a certificate is due:
- the CA offers renewalInfo (RFC 9773): its suggested window decides (a time picked at random in
  it, §4.2), and the new order names the old certificate in `replaces` (§5);
- otherwise WUCME_DAYS, when defined: fewer days left than that;
- otherwise less than a third of the lifetime left (half for lifetimes of 10 days or less), as
  Let's Encrypt recommends (30 of 90 days).
A certificate whose files or state cannot be read is due (it needs issuance); one revoked by
`wucme revoke` is left alone until `wucme issue` replaces it.

Each certificate is renewed over the challenge type its state records (the one it was issued
with: a name answered by http-01 may have no tls-alpn-01 route, and the reverse), unless the
caller's *challenge* (`manage /CHALLENGE=`) or WUCME_RENEW_CHALLENGE names one for all;
WUCME_CHALLENGE applies to new certificates, and to states that record none.  The state then
records the type that was used.

Everything the pass has to say goes to its caller as VMS conditions (`note`), in the order it
happens: the caller prints them (`manage`) or logs them (the agent).
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from wucme import crypto, reporting
from wucme.core.ident import validate_identifiers
from wucme.core.jws import jws_thumbprint
from wucme.core.times import iso, renewal_threshold, utc_now
from wucme.errors import WucmeError
from wucme.lockpg import PgLockError
from wucme.repository import LOAD_FILE, Busy, Managed, Repository
from wucme.scanindex import Entry, from_micros, micros
from wucme.session import account_session, ensure_account
from wucme.reporting import Event, short_hosts
from wucme.settings import (CHALLENGES, ca_directory, challenge_config, fixed_days, load_command,
                            pass_deadline, prometheus_file, renewal_challenge, services, warn_days,
                            workers)
from wucme.uacme.msg import Msg
from wucme.vms.condition import Condition, parse_message
from wucme.vms.ods2 import ods2_name

if TYPE_CHECKING:
    # What only a renewal needs is imported when one is due (a pass with nothing due is
    # most passes): the ACME order, the challenge responders, ARI, the load action.
    from cryptography import x509

    from wucme.challenge.solver import ChallengeSolver
    from wucme.load import StepResult
    from wucme.uacme.acme import AcmeSession

__all__ = ["RETRY_AFTER_FAILURE", "Outcome", "RenewalReport", "due", "expiry_warnings", "renewal_pass",
           "threshold"]

#: After a failed renewal, the next attempt (the agent honours it; `manage` always tries).
RETRY_AFTER_FAILURE = _dt.timedelta(hours=6)

Note = Callable[[Condition], None]
#: Asked before each certificate is started: a reason to start no more ("" to go on).
StopCheck = Callable[[], str]


@dataclass
class Outcome:
    """What happened to one certificate in a pass."""

    hosts: list[str]
    file: str
    action: str  # "renewed", "skipped", "failed"
    detail: str = ""


@dataclass
class RenewalReport:
    """The result of one pass: what `manage` sums up, what the agent's backoff decides on."""

    started: str
    outcomes: list[Outcome] = field(default_factory=list)
    #: The load action's outcome as the reports show it: (all steps ok, their texts), or None.
    load: tuple[bool, str] | None = None
    #: The message of an error that stopped the renewals (CA down, account key unusable).
    error: str = ""
    error_severity: str = "E"
    #: Each step of the load action (the command, each service's handshake), when it ran.
    load_steps: list[StepResult] = field(default_factory=list)
    #: What could not be reported (a mail server down, an unknown OPCOM class).
    report_problems: list[str] = field(default_factory=list)
    #: Renewed, but neither WUCME_LOAD nor WUCME_SERVICES is defined: nothing loads it.
    not_loaded: str = ""
    #: Certificates not due whose outcome was counted, not kept (renewal_pass's keep_skipped).
    skipped_not_kept: int = 0
    #: Why the cluster's lock database was lost in this pass ("" when it was not): the
    #: certificates it left are the next pass's (docs/cluster.md).
    lock_lost: str = ""

    def _of(self, action: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.action == action]

    @property
    def renewed(self) -> list[Outcome]:
        return self._of("renewed")

    @property
    def skipped(self) -> list[Outcome]:
        return self._of("skipped")

    @property
    def failed(self) -> list[Outcome]:
        return self._of("failed")

    @property
    def not_due(self) -> int:
        """How many certificates were not due (or skipped): kept outcomes and counted ones."""
        return len(self.skipped) + self.skipped_not_kept

    @property
    def abandoned(self) -> list[Outcome]:
        """Left untouched because the lock database was lost: nothing ordered or written."""
        return self._of("abandoned")

    @property
    def ok(self) -> bool:
        """Every due certificate renewed and no error stopped the renewals."""
        return not self.failed and not self.error

    @property
    def load_ok(self) -> bool:
        """The load action succeeded, or did not need to run."""
        return all(s.ok for s in self.load_steps)

    def summary(self) -> str:
        """`1 renewed, 3 not due, 0 failed` (`, load ok` / `, load FAILED` when it ran)."""
        text = f"{len(self.renewed)} renewed, {self.not_due} not due, {len(self.failed)} failed"
        if self.abandoned:
            text += f", {len(self.abandoned)} left (lock database lost)"
        return text + (f", load {'ok' if self.load_ok else 'FAILED'}" if self.load_steps else "")


def threshold(leaf: x509.Certificate | crypto.CertInfo) -> _dt.timedelta:
    """How long before notAfter renewal starts: a third of the lifetime, half if <= 10 days."""
    return renewal_threshold(leaf.not_valid_before_utc, leaf.not_valid_after_utc)


def due(m: Managed, now: _dt.datetime,
        ari: Callable[[x509.Certificate], int | tuple[int, float | None]] | None = None,
        days: float | None = None) -> tuple[bool, str]:
    """(due, why) for one certificate; *ari* returns ari_check's 1 / 0 / -1, alone or with the
    renewal time it picked in the CA's window (a POSIX time)."""
    leaf = m.info
    if m.state.status == "revoked":
        return False, "revoked: wucme issue replaces it"
    if leaf is None:
        return True, m.problem or "no certificate"
    if m.state.corrupt:
        return True, m.state.last_result or "state unreadable"
    have = set(leaf.names)
    missing = [h for h in m.state.hosts if h.lower() not in have]
    if missing:
        return True, f"certificate lacks {', '.join(missing)}"
    left = leaf.not_valid_after_utc - now
    if left <= _dt.timedelta(0):
        return True, "expired"
    answer = ari(m.leaf) if ari is not None and m.leaf is not None else -1
    verdict, when = answer if isinstance(answer, tuple) else (answer, None)
    if verdict == 1:
        return True, "inside the CA's renewal window (ARI)"
    if verdict == 0:
        until = f"not due until {iso(_dt.datetime.fromtimestamp(when, _dt.timezone.utc))}, " if when else ""
        return False, f"{until}outside the CA's renewal window (ARI)"
    if days is not None:
        if left < _dt.timedelta(days=days):
            return True, f"fewer than {days:g} days left (WUCME_DAYS)"
        return False, f"not due until {iso(leaf.not_valid_after_utc - _dt.timedelta(days=days))}"
    t = threshold(leaf)
    if left < t:
        short = leaf.not_valid_after_utc - leaf.not_valid_before_utc <= _dt.timedelta(days=10)
        return True, f"less than {'half' if short else 'a third'} of its lifetime left"
    return False, f"not due until {iso(leaf.not_valid_after_utc - t)}"


def _left(delta: _dt.timedelta) -> str:
    hours = delta.total_seconds() / 3600
    if hours < 24:
        n = max(0, int(hours))
        return f"{n} hour{'s' if n != 1 else ''}"
    n = int(hours // 24)
    return f"{n} day{'s' if n != 1 else ''}"


def expiry_warnings(report: RenewalReport, repo: Repository, now: _dt.datetime,
                    candidates: list[Managed] | None = None) -> list[Event]:
    """The warnings a pass does not carry itself: a certificate that expires within
    WUCME_WARN_DAYS (default 7) while its renewal keeps failing (failed in this pass, the
    pass failed as a whole, or its state records a failure: the agent's back-off skipped it)
    gives `%WUCME-W-EXPIRING`; one already expired gives `%WUCME-E-EXPIRED`.

    The pass shows them and sends them with send_events(); its own events go through the
    reporters (reporters_from_logicals).  *candidates*, when the pass ran without a pass-wide
    error, are the only certificates that can need one (what the pass saw within the limit,
    due, or failed: `now` is the pass's own, so no other can have come within it); each is
    read again, and the repository is not scanned a third time."""
    limit = _dt.timedelta(days=warn_days())
    renewed = {o.file for o in report.renewed}
    failed = {o.file: o.detail for o in report.failed}
    events: list[Event] = []
    if candidates is not None and not report.error:
        seen: set[str] = set()
        for m in sorted(candidates, key=lambda m: m.cert_name):
            if m.cert_name not in seen:
                seen.add(m.cert_name)
                _expiry_warning(repo.reread(m), report, renewed, failed, limit, now, events)
        return events

    def may_warn(e: Entry) -> bool:
        """A certificate the index answers for, passed over when it cannot need a warning."""
        not_after = e.not_after
        if not_after is None or not_after - now >= limit:
            return False
        name = f"WUCME_C_{e.part}.PEM"
        return name in failed or bool(report.error) or e.status == "failed"
    try:
        for m in repo.scan(may_warn):
            _expiry_warning(m, report, renewed, failed, limit, now, events)
    except WucmeError:
        return []  # the pass's own error already says the repository cannot be read
    return events


def _expiry_warning(m: Managed, report: RenewalReport, renewed: set[str], failed: dict[str, str],
                    limit: _dt.timedelta, now: _dt.datetime, events: list[Event]) -> None:
    """expiry_warnings() for one certificate."""
    leaf = m.info
    name = m.cert_name
    if leaf is None or m.state.status == "revoked" or name in renewed:
        return
    failing = name in failed or bool(report.error) or m.state.status == "failed"
    left = leaf.not_valid_after_utc - now
    if not failing or left >= limit:
        return
    c_err = parse_message(report.error) if report.error else None
    why = failed.get(name) or (c_err.text if c_err else report.error) or m.state.last_result
    not_after = iso(leaf.not_valid_after_utc)
    where = f"({name}, not after {not_after})" + (f": {why}" if why else "")
    if left <= _dt.timedelta(0):
        events.append(Event("E", "EXPIRED", f"{short_hosts(m.hosts)} expired {_left(-left)} ago "
                            f"and renewal keeps failing {where}", list(m.hosts)))
    else:
        events.append(Event("W", "EXPIRING", f"{short_hosts(m.hosts)} expires in {_left(left)} "
                            f"and renewal keeps failing {where}", list(m.hosts)))


@dataclass
class _Pass:
    """What every renewal of one pass shares: its clock, its deadline, its stop check."""

    repo: Repository
    log: Msg
    say: Note
    now: _dt.datetime
    deadline: float  # time.monotonic() by which the pass must be done
    seconds: float
    nowait: bool = False
    stop: StopCheck | None = None
    keep_skipped: bool = True
    #: What the expiry warnings need to read again (expiry_warnings' candidates), once known.
    expiring: list[Managed] | None = None
    #: Shared renewals (WUCME_CLUSTER_MODE SHARED): a busy certificate is another node's.
    shared: bool = False
    #: The first loss of the lock database in this pass: no certificate is started after it.
    lost: str = ""

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def stopped(self) -> str:
        """Why no further certificate may be started ("" when it may)."""
        if self.stop is not None:
            why = self.stop()
            if why:
                return why
        return self.deadline_reached() if self.left() <= 0 else ""

    def deadline_reached(self) -> str:
        return f"the pass deadline of {self.seconds:g} s (WUCME_PASS_DEADLINE) was reached before its turn"


def renewal_pass(repo: Repository, log: Msg, *, note: Note | None = None,
                 now: _dt.datetime | None = None, nowait: bool = False,
                 stop: StopCheck | None = None, challenge: str | None = None,
                 keep_skipped: bool = True, shared: bool = False, node: str = "") -> RenewalReport:
    """One pass over *repo*: renew, load, report (the module's docstring).  *log* gets the ACME
    traffic at WUCME_VERBOSE's level; *note* each VMS message as it happens; *now* is the time
    every decision of the pass is taken at (the agent's clock): what is due, when to retry, the
    expiry warnings, the state's timestamps.  Each certificate is worked on under its lock
    (Repository.lock_certificate), waited for, or with *nowait* skipped as busy; *stop* is
    asked before each certificate is started (the agent's pass when its agent is gone).  The
    pass starts no certificate after WUCME_PASS_DEADLINE seconds.  *challenge*, when given, is
    the challenge type of every renewal of this pass.  With *keep_skipped* False the report
    counts the certificates that are not due (RenewalReport.not_due) rather than keeping an
    Outcome for each: what a pass over a large repository holds then does not grow with it.
    *shared* (the agent in WUCME_CLUSTER_MODE SHARED) takes each lock without waiting: a
    certificate another node holds is that node's; the load action then runs whenever the
    repository's certificates differ from those node *node* last loaded, whoever renewed them
    (its record: WUCME_LOAD_<NODE>.JSON)."""
    say: Note = note or (lambda c: None)
    when = now or utc_now()
    seconds = pass_deadline()
    ctx = _Pass(repo, log, say, when, time.monotonic() + seconds, seconds, nowait or shared, stop,
                keep_skipped=keep_skipped, shared=shared)
    report = RenewalReport(started=iso(when) or "")
    try:
        _renew_due(ctx, report, challenge)
    except WucmeError as e:
        report.error, report.error_severity = e.message(), e.severity
    if ctx.lost:
        report.lock_lost = ctx.lost
        if not report.error:
            c = Condition("E", "LOCKDB", f"the lock database was lost: {len(report.abandoned)} "
                          f"certificate(s) left for the next pass ({ctx.lost})")
            report.error, report.error_severity = c.message(), "E"
    record, loaded = LOAD_FILE, ""
    if shared:
        record, loaded = f"WUCME_LOAD_{ods2_name(node or 'LOCALHOST')}.JSON", _certificates_digest(repo)
    if report.renewed or repo.load_pending(record) or (
            shared and repo.load_record(record).get("loaded") != loaded):
        _load(repo, report, say, record, loaded)
    _report(repo, report, when, say, ctx.expiring)
    _metrics(repo, report, when, say)
    return report


def _metrics(repo: Repository, report: RenewalReport, now: _dt.datetime, say: Note) -> None:
    """The node_exporter textfile (WUCME_PROMETHEUS_FILE), rewritten after every pass."""
    try:
        path = prometheus_file()
        if path is None:
            return
        from wucme import metrics

        text = metrics.prometheus_text(repo.scan(), now=now,
                                       pass_ok=report.ok and (report.load_ok or not report.load_steps))
        metrics.write_textfile(path, text)
    except (WucmeError, crypto.CryptoError, OSError) as e:
        say(Condition("W", "NOMETRICS", f"cannot write the Prometheus file: {e}"))


def _challenge_of(m: Managed, override: str | None, default: str) -> str:
    """The challenge type *m* is renewed over: the override, else the one its state records."""
    if override:
        return override
    return m.state.challenge if m.state.challenge in CHALLENGES else default


def _hostless(m: Managed) -> bool:
    """A certificate whose hosts cannot be told (no state, no certificate): _renew says so."""
    return bool(m.problem and m.info is None and m.state.corrupt)


def _renew_due(ctx: _Pass, report: RenewalReport, challenge: str | None = None) -> None:
    repo, log, say = ctx.repo, ctx.log, ctx.say
    # Two looks at the repository, each streamed (wucme.scanindex makes the second cheap):
    # every host of every state checked before any request (RFC 8555 §7.1.4: the CA never
    # sees a name that is not one); a state naming `../../etc/evil` is that certificate's
    # failure, the others go on.  Then the due decisions.
    bad: set[str] = set()
    good = 0

    def may_be_bad(e: Entry) -> bool:
        """A certificate the index answers for, passed over when its state's hosts are good
        (the index keeps the check's answer: Entry.hosts_ok)."""
        nonlocal good
        if e.hosts_ok:
            good += 1
            return False
        return True
    failing: list[Managed] = []
    for m in repo.scan(may_be_bad):
        if _bad_hosts(ctx, report, m):
            bad.add(m.cert_name)
            failing.append(m)
        else:
            good += 1
    if not good:
        ctx.expiring = failing
        return
    try:
        limit: _dt.timedelta | None = _dt.timedelta(days=warn_days())
    except Exception:  # noqa: BLE001 - the expiry warnings say it, in their place
        limit = None
    repo.ensure_writable()
    key = repo.load_account_key()
    override = challenge or renewal_challenge()
    default = challenge_config(override).type
    days = fixed_days()
    with account_session(log, key=key, directory=ca_directory()) as a:
        ari_url = a.dir.get("renewalInfo")

        def ari_picked(leaf: x509.Certificate) -> tuple[int, float | None]:
            from wucme.uacme.ari import ari_check

            picked: list[float] = []
            return ari_check(a, leaf, ari_url, picked=picked), (picked[0] if picked else None)
        ari = ari_picked if isinstance(ari_url, str) else None
        todo: list[tuple[Managed, str]] = []

        now_us = micros(ctx.now)
        keep = ctx.keep_skipped
        limit_us = limit // _MICROSECOND if limit is not None else None

        def undecided(e: Entry) -> bool:
            """Without ARI, a certificate the index says is not due (and not near its expiry)
            is decided here, from the index's line, as due() would decide it: nothing is
            built for it.  Every other one is let through to due()."""
            v = _index_verdict(e, now_us, days, limit_us) if ari is None else None
            if v is None:
                return True
            name = f"WUCME_C_{e.part}.PEM"
            if name not in bad:
                if keep:
                    report.outcomes.append(Outcome(v[0].split(","), name, "skipped", v[1]))
                else:
                    report.skipped_not_kept += 1
                # (_not_due's message: the index joins the hosts by "," and a host has none)
                say(Condition("I", "SKIPPED", f"{name} ({v[0].replace(',', ', ')}): {v[1]}"))
            return False
        for m in repo.scan(undecided, snapshot=True):  # what the first look saw
            if m.cert_name in bad:
                continue  # (a renewal checks its hosts again, as they are when it starts)
            is_due, why = due(m, ctx.now, ari, days)
            if limit is not None and m.info is not None and m.info.not_valid_after_utc - ctx.now < limit \
                    and not is_due:
                failing.append(m)
            if is_due:
                todo.append((m, why))
            else:
                _not_due(ctx, report, m.hosts, m.cert_name, why)
        if limit is not None:
            ctx.expiring = failing + [m for m, _ in todo]
        if not todo:
            return
        ensure_account(a)
        from concurrent.futures import ThreadPoolExecutor

        import wucme.obtain  # noqa: F401 - what _renew() imports, imported before its threads
        import wucme.uacme.ari  # noqa: F401
        from wucme.challenge.solver import ChallengeSolver

        with ExitStack() as stack:
            solvers = {
                t: stack.enter_context(ChallengeSolver(challenge_config(t), jws_thumbprint(key),
                                                       log=lambda s: log(1, s)))
                for t in sorted({_challenge_of(m, override, default) for m, _ in todo})}

            def renew(item: tuple[Managed, str], wait: bool = False) -> Outcome:
                t = _challenge_of(item[0], override, default)
                return _renew_locked(ctx, a, solvers[t], t, item[0], item[1], ari, days, wait)

            with ThreadPoolExecutor(max_workers=min(workers(), len(todo))) as pool:
                outcomes = list(pool.map(renew, todo))
                if ctx.shared:
                    # Those another node held are waited for now (it may have died with them),
                    # then read again: renewed meanwhile is left alone, still due is ours.
                    busy = [i for i, o in enumerate(outcomes) if o.action == "skipped" and o.detail == _HELD]
                    for i, o in zip(busy, pool.map(lambda i: renew(todo[i], True), busy)):
                        outcomes[i] = o
                report.outcomes.extend(outcomes)


def _not_due(ctx: _Pass, report: RenewalReport, hosts: list[str], name: str, why: str) -> None:
    """A certificate the pass leaves alone: its outcome (kept or counted) and its message."""
    if ctx.keep_skipped:
        report.outcomes.append(Outcome(hosts, name, "skipped", why))
    else:
        report.skipped_not_kept += 1
    ctx.say(Condition("I", "SKIPPED", f"{name} ({', '.join(hosts)}): {why}"))


def _index_verdict(e: Entry, now_us: int, days: float | None,
                   limit_us: int | None) -> tuple[str, str] | None:
    """(hosts as the index joins them, why) of a certificate the index answers for, when
    due() without ARI would say "not due" for it and it is not within the expiry warnings'
    limit (*limit_us*, microseconds); None for every other case (the caller then builds the
    certificate and asks due()).  The index's DUE field (wucme.scanindex.Entry) holds what
    due() reads, made of the same fields by the same arithmetic, exact to the microsecond:
    due() says due when less than the threshold is left, `not_after - now < threshold`,
    that is `now > not_after - threshold`, the field's RENEW."""
    field = e.due
    if len(field) < 2:
        return None
    try:
        renew, na, when, hosts = field.split(b"/", 3)
        na_us = int(na)
        if now_us >= na_us or (limit_us is not None and na_us - now_us < limit_us):
            return None  # (expired: due; within the limit: a candidate for the expiry warnings)
        if days is not None:
            if na_us - now_us < _dt.timedelta(days=days) // _MICROSECOND:
                return None
            return hosts.decode(), f"not due until {iso(from_micros(na_us) - _dt.timedelta(days=days))}"
        if now_us > int(renew):
            return None
        return hosts.decode(), f"not due until {when.decode()}"
    except (ValueError, OverflowError):
        return None


_MICROSECOND = _dt.timedelta(microseconds=1)


#: The detail of a certificate another node held in shared renewals' first round.
_HELD = "locked by another node or process"


def _bad_hosts(ctx: _Pass, report: RenewalReport, m: Managed) -> bool:
    """A certificate whose state names a host that is none: its failure, noted and said."""
    try:
        if not _hostless(m):
            validate_identifiers(m.state.hosts, wildcard=False)
    except WucmeError as e:
        report.outcomes.append(_failed(ctx.repo, m, f"its state names a bad host: {e.text}", ctx.log,
                                       ctx.say, ctx.now))
        return True
    return False


def _renew_locked(ctx: _Pass, a: AcmeSession, solver: ChallengeSolver, challenge: str, m: Managed,
                  why: str, ari: Callable[[x509.Certificate], int | tuple[int, float | None]] | None,
                  days: float | None, wait: bool = False) -> Outcome:
    """One certificate under its lock: started only while the pass may start one, and
    decided again once the lock is ours (another process may have renewed it meanwhile).
    *wait*: wait for the lock even in a no-wait pass (shared renewals' second round)."""
    say = ctx.say
    hosts = m.state.hosts or m.hosts
    stopped = ctx.stopped()
    if stopped:
        return _not_started(ctx, m, hosts, stopped)
    if ctx.lost:
        return _abandoned(ctx, m, hosts, ctx.lost, quiet=True)
    nowait = ctx.nowait and not wait
    try:
        lock = ctx.repo.lock_certificate(m.cert_name, wait=not nowait,
                                         timeout=None if nowait else max(ctx.left(), 0.001))
    except Busy as e:
        if not nowait:  # the wait was bounded by the pass deadline: that is what ended it
            return _not_started(ctx, m, hosts, ctx.stopped() or ctx.deadline_reached())
        if ctx.shared:  # the ordinary case of shared renewals: another node took it first
            say(Condition("I", "OTHERNODE", f"{m.cert_name}: {_HELD}; waited for after the others"))
            return Outcome(hosts, m.cert_name, "skipped", _HELD)
        say(Condition("W", "BUSY", f"{m.cert_name}: {e.text}; not renewed in this pass"))
        return Outcome(hosts, m.cert_name, "skipped", e.text)
    except PgLockError as e:  # never a local lock instead: the other nodes would not see it
        return _abandoned(ctx, m, hosts, e.text)
    with lock:
        stopped = ctx.stopped()
        if stopped:
            return _not_started(ctx, m, hosts, stopped)
        # Read again under the lock: another node (or `issue`) may have renewed it between this
        # pass's scan and now; deciding on the scan would order it a second time.
        fresh = ctx.repo.reread(m)
        is_due, why_now = due(fresh, ctx.now, ari, days)
        if not is_due:
            say(Condition("I", "SKIPPED", f"{m.cert_name} ({', '.join(fresh.hosts)}): {why_now} "
                          "(renewed by another process meanwhile)"))
            return Outcome(fresh.hosts, m.cert_name, "skipped", why_now)
        if ctx.shared and fresh.state.status == "failed" and fresh.state.last_attempt != m.state.last_attempt:
            why_now = f"another node tried it meanwhile: {fresh.state.last_result}"
            say(Condition("I", "SKIPPED", f"{m.cert_name} ({', '.join(fresh.hosts)}): {why_now}"))
            return Outcome(fresh.hosts, m.cert_name, "skipped", why_now)
        guard = getattr(lock, "check", None)  # a cluster lock lives as long as its session
        try:
            if guard is not None:
                guard()
            return _renew(a, ctx.repo, solver, challenge, fresh, why, ctx.log, say, ctx.now, guard)
        except PgLockError as e:
            return _abandoned(ctx, m, hosts, e.text)


def _abandoned(ctx: _Pass, m: Managed, hosts: list[str], why: str, quiet: bool = False) -> Outcome:
    """A certificate left because the lock database is gone: nothing written, not even its
    state (another node may hold its lock by now); the next pass takes it up again."""
    if not ctx.lost:
        ctx.lost = why
    if not quiet:
        ctx.say(Condition("W", "LOCKLOST", f"{m.cert_name} ({', '.join(hosts)}): {why}: nothing "
                          "written, left for the next pass"))
    return Outcome(hosts, m.cert_name, "abandoned", why)


def _not_started(ctx: _Pass, m: Managed, hosts: list[str], why: str) -> Outcome:
    """A certificate the pass could not start: a failure past the deadline (retried as any
    other); left alone, unrecorded, when the pass was stopped (the next pass takes it)."""
    if ctx.stop is not None and ctx.stop():
        ctx.say(Condition("W", "ABANDONED", f"{m.cert_name} ({', '.join(hosts)}) not started: {why}"))
        return Outcome(hosts, m.cert_name, "skipped", f"not started: {why}")
    with contextlib.suppress(OSError):
        if m.state.hosts and not m.state.corrupt:
            ctx.repo.record_attempt(m.state, "failed", f"failed: {why}", ctx.now + RETRY_AFTER_FAILURE,
                                    now=ctx.now)
    ctx.say(Condition("E", "PASSDEADLINE", f"{m.cert_name} ({', '.join(hosts)}): {why}"))
    return Outcome(hosts, m.cert_name, "failed", why)


def _renew(a: AcmeSession, repo: Repository, solver: ChallengeSolver, challenge: str, m: Managed,
           why: str, log: Msg, say: Note, now: _dt.datetime,
           guard: Callable[[], None] | None = None) -> Outcome:
    """Order and save *m*; *guard* (the cluster lock's check) raises PgLockError, which goes to
    the caller, when the lock is gone before a challenge is answered or the result saved."""
    from wucme.obtain import host_list, obtain
    from wucme.uacme.ari import ari_replaces

    state = m.state
    try:
        if _hostless(m):
            raise WucmeError(f"cannot tell which hosts {m.cert_path.name} is for ({m.problem}); "
                             "run wucme issue for them", ident="NOHOSTS")
        names = validate_identifiers(state.hosts, wildcard=False)
        replaces = ari_replaces(a, m.leaf) if m.leaf is not None else None
        log(1, f"renewing {m.cert_path.name} over {challenge}: {why}")
        new = obtain(a, repo, names, solver, challenge=challenge, replaces=replaces, status="renewed",
                     now=now, guard=guard)
        msg = f"{m.cert_path.name} for {host_list(new)} renewed ({why}), expires {new.not_after}"
        say(Condition("S", "RENEWED", msg))
        return Outcome(new.hosts, m.cert_path.name, "renewed", msg)
    except PgLockError:
        raise
    except Exception as e:  # noqa: BLE001 - one failure never blocks the others
        if guard is not None:
            guard()  # a failure noted only under the lock (else PgLockError: nothing written)
        text = e.text if isinstance(e, WucmeError) else f"{type(e).__name__}: {e}"
        return _failed(repo, m, text, log, say, now)


def _failed(repo: Repository, m: Managed, text: str, log: Msg, say: Note, now: _dt.datetime) -> Outcome:
    """A certificate's failure: noted in its own state file (never in a file a hostile host
    name would make of it), reported, and the pass goes on."""
    state = m.state
    try:
        if (state.hosts and not _hostless(m)
                and repo.state_path(state.hosts[0]).name == m.state_path.name):
            repo.record_attempt(state, "failed", f"failed: {text}", now + RETRY_AFTER_FAILURE, now=now)
    except (OSError, WucmeError) as w:
        log.warn(f"cannot record the failure for {m.cert_path.name}: {w}")
    hosts = ", ".join(h[:80] for h in state.hosts[:10])
    say(Condition("E", "RENEWFAIL", f"{m.cert_path.name} ({hosts}): {text}"))
    return Outcome(state.hosts, m.cert_path.name, "failed", text)


NOT_LOADED = ("nothing loads the renewed certificates: neither WUCME_LOAD nor WUCME_SERVICES "
              "is defined, so the servers keep the old ones until restarted "
              "(wucme check /load says what to define)")


def _certificates_digest(repo: Repository) -> str:
    """What a node's servers hold once loaded: a digest of every certificate file and serial
    (another node's renewal changes it); "" when the repository cannot be read."""
    try:
        listed = sorted(f"{m.cert_name}:{m.info.serial_number}" for m in repo.managed() if m.info is not None)
    except (WucmeError, OSError):
        return ""
    return hashlib.sha256("\n".join(listed).encode()).hexdigest()[:32]


def _load(repo: Repository, report: RenewalReport, say: Note, record: str = LOAD_FILE,
          loaded: str = "") -> None:
    """The load action; a failure is remembered in the repository, so the next pass (whoever
    runs it) loads again even when nothing is due.  Renewed with nothing to load them:
    `%WUCME-W-NOTLOADED`, in the log and the reports."""
    if report.renewed and not load_command():
        try:
            nothing = not services()
        except WucmeError:
            nothing = False  # a bad WUCME_SERVICES: load_action says so
        if nothing:
            report.not_loaded = NOT_LOADED
            say(Condition("W", "NOTLOADED", NOT_LOADED))
    from wucme.load import load_action

    report.load_steps = load_action(repo)
    for step in report.load_steps:
        say(Condition("S", "LOADED", step.text) if step.ok else Condition("E", "LOADFAIL", step.text))
    if report.load_steps:
        report.load = (report.load_ok, "; ".join(s.text for s in report.load_steps))
    try:
        repo.record_load(report.load_ok, report.load[1] if report.load else "nothing to load",
                         name=record, loaded=loaded)
    except OSError as e:
        say(Condition("W", "NOLOADSTATE", f"cannot note the load's outcome in {repo.path}: {e}"))


def _report(repo: Repository, report: RenewalReport, now: _dt.datetime, say: Note,
            candidates: list[Managed] | None = None) -> None:
    """The pass's events to every configured target, then the expiry warnings; what could not
    be sent is a warning of the pass, never its failure."""
    problems: list[str] = []
    for reporter in reporting.reporters_from_logicals():
        try:
            reporter(report)
        except Exception as e:  # noqa: BLE001 - a report never spoils the pass
            problems.append(f"reporter failed: {e}")
    try:
        warnings = expiry_warnings(report, repo, now, candidates)
        if report.not_loaded:
            warnings.insert(0, Event("W", "NOTLOADED", report.not_loaded,
                                     [h for o in report.renewed for h in o.hosts]))
        for event in warnings:
            if event.ident != "NOTLOADED":  # said as it happened
                say(Condition(event.severity, event.ident, reporting.clean(event.text)))
        problems += reporting.send_events(warnings)
    except Exception as e:  # noqa: BLE001
        problems.append(f"expiry warnings failed: {e}")
    report.report_problems = problems
    for problem in problems:
        say(Condition("W", "REPORTFAIL", problem))
