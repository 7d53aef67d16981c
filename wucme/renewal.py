"""The daily renewal function: renew what is due, skip the rest, report.  Used by `manage` now
and by the agent later (neither imports the other).

When a certificate is due:
- the CA offers renewalInfo (RFC 9773): its suggested window decides (a time picked at random in
  it, §4.2), and the new order names the old certificate in `replaces` (§5);
- otherwise WUCME_DAYS, when defined: fewer days left than that;
- otherwise less than a third of the lifetime left (half for lifetimes of 10 days or less), as
  Let's Encrypt recommends (30 of 90 days).
A certificate whose files or state cannot be read is due (it needs issuance); one revoked by
`wucme revoke` is left alone until `wucme issue` replaces it.  Certificates renew in parallel on
WUCME_WORKERS threads (default 4); one failure never stops the others.
"""
from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from cryptography import x509

from wucme import crypto
from wucme.core.ident import validate_identifiers
from wucme.errors import WucmeError
from wucme.challenge.solver import ChallengeSolver
from wucme.core.jws import jws_thumbprint
from wucme.load import run_load_command
from wucme.obtain import host_list, obtain
from wucme.settings import ca_directory, challenge_config, fixed_days, workers
from wucme.uacme.msg import Msg
from wucme.core.times import iso, utc_now
from wucme.repository import Managed, Repository
from wucme.session import account_session, ensure_account
from wucme.uacme.acme import AcmeSession
from wucme.uacme.ari import ari_check, ari_replaces

#: After a failed renewal, the next attempt (the agent honours it; `manage` always tries).
RETRY_AFTER_FAILURE = _dt.timedelta(hours=6)


@dataclass
class Outcome:
    """What happened to one certificate in a pass."""

    hosts: list[str]
    file: str
    action: str  # "renewed", "skipped", "failed"
    detail: str = ""


@dataclass
class RenewalReport:
    """The result of one pass; `reporters` (mail, OPCOM: the agent adds them) get it at the end."""

    started: str
    outcomes: list[Outcome] = field(default_factory=list)
    load: tuple[bool, str] | None = None
    #: The message of an error that stopped the whole pass (CA down, account key unusable).
    error: str = ""
    error_severity: str = "E"

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
    def ok(self) -> bool:
        return not self.failed and not self.error


#: Hook point for reporting (the agent issue registers mail and OPCOM here).
Reporter = Callable[[RenewalReport], None]


def threshold(leaf: x509.Certificate) -> _dt.timedelta:
    """How long before notAfter renewal starts: a third of the lifetime, half if <= 10 days."""
    lifetime = leaf.not_valid_after_utc - leaf.not_valid_before_utc
    return lifetime / 2 if lifetime <= _dt.timedelta(days=10) else lifetime / 3


def due(m: Managed, now: _dt.datetime, ari: Callable[[x509.Certificate], int] | None = None,
        days: float | None = None) -> tuple[bool, str]:
    """(due, why) for one certificate; *ari* returns ari_check's 1 / 0 / -1."""
    leaf = m.leaf
    if m.state.status == "revoked":
        return False, "revoked: wucme issue replaces it"
    if leaf is None:
        return True, m.problem or "no certificate"
    if m.state.corrupt:
        return True, m.state.last_result or "state unreadable"
    have = set(crypto.cert_names(leaf))
    missing = [h for h in m.state.hosts if h.lower() not in have]
    if missing:
        return True, f"certificate lacks {', '.join(missing)}"
    left = leaf.not_valid_after_utc - now
    if left <= _dt.timedelta(0):
        return True, "expired"
    verdict = ari(leaf) if ari is not None else -1
    if verdict == 1:
        return True, "inside the CA's renewal window (ARI)"
    if verdict == 0:
        return False, "outside the CA's renewal window (ARI)"
    if days is not None:
        if left < _dt.timedelta(days=days):
            return True, f"fewer than {days:g} days left (WUCME_DAYS)"
        return False, f"not due until {iso(leaf.not_valid_after_utc - _dt.timedelta(days=days))}"
    t = threshold(leaf)
    if left < t:
        return True, f"less than {'half' if t * 2 <= _dt.timedelta(days=10) else 'a third'} of its lifetime left"
    return False, f"not due until {iso(leaf.not_valid_after_utc - t)}"


def _run_load() -> tuple[bool, str] | None:
    r = run_load_command()
    return None if r is None else (r.ok, r.text)


def renewal_pass(repo: Repository, log: Msg, *,
                 reporters: list[Reporter] | None = None,
                 say: Callable[[str], None] | None = None,
                 load: Callable[[], tuple[bool, str] | None] | None = _run_load) -> RenewalReport:
    """One pass over the repository.  *say* prints a line per certificate as it is decided; *load*
    runs after renewals (WUCME_LOAD by default; None when the caller loads, as the agent does)."""
    say = say or (lambda s: None)
    report = RenewalReport(started=iso(utc_now()) or "")
    try:
        _pass(repo, log, report, say)
    except WucmeError as e:
        report.error, report.error_severity = e.message(), e.severity
    if report.renewed and load is not None:
        report.load = load()
    for r in reporters or ():
        try:
            r(report)
        except Exception as e:  # noqa: BLE001 - a reporter never spoils the pass
            log.warn(f"reporter failed: {e}")
    return report


def _pass(repo: Repository, log: Msg, report: RenewalReport, say: Callable[[str], None]) -> None:
    managed = repo.managed()
    if not managed:
        return
    repo.ensure_writable()
    key = repo.load_account_key()
    config = challenge_config()
    days = fixed_days()
    with account_session(log, key=key, directory=ca_directory()) as a:
        ari_url = a.dir.get("renewalInfo")
        ari = (lambda leaf: ari_check(a, leaf, ari_url)) if isinstance(ari_url, str) else None
        now = utc_now()
        todo: list[tuple[Managed, str]] = []
        for m in managed:
            is_due, why = due(m, now, ari, days)
            if is_due:
                todo.append((m, why))
            else:
                report.outcomes.append(Outcome(m.hosts, m.cert_path.name, "skipped", why))
                say(f"%WUCME-I-SKIPPED, {m.cert_path.name} ({', '.join(m.hosts)}): {why}")
        if not todo:
            return
        ensure_account(a)
        with ChallengeSolver(config, jws_thumbprint(key), log=lambda s: log(1, s)) as solver:
            def renew(item: tuple[Managed, str]) -> Outcome:
                return _renew(a, repo, solver, config.type, item[0], item[1], log, say)

            with ThreadPoolExecutor(max_workers=min(workers(), len(todo))) as pool:
                report.outcomes.extend(pool.map(renew, todo))


def _renew(a: AcmeSession, repo: Repository, solver: ChallengeSolver, challenge: str, m: Managed, why: str,
           log: Msg, say: Callable[[str], None]) -> Outcome:
    state = m.state
    try:
        if m.problem and not m.leaf and state.corrupt:
            raise WucmeError(f"cannot tell which hosts {m.cert_path.name} is for ({m.problem}); "
                             "run wucme issue for them", ident="NOHOSTS")
        names = validate_identifiers(state.hosts, wildcard=False)
        replaces = ari_replaces(a, m.leaf) if m.leaf is not None else None
        log(1, f"renewing {m.cert_path.name}: {why}")
        new = obtain(a, repo, names, solver, challenge=challenge, replaces=replaces, status="renewed")
        msg = f"{m.cert_path.name} for {host_list(new)} renewed ({why}), expires {new.not_after}"
        say(f"%WUCME-S-RENEWED, {msg}")
        return Outcome(new.hosts, m.cert_path.name, "renewed", msg)
    except Exception as e:  # noqa: BLE001 - one failure never blocks the others
        text = e.text if isinstance(e, WucmeError) else f"{type(e).__name__}: {e}"
        try:
            if state.hosts and not (m.problem and not m.leaf and state.corrupt):
                repo.record_attempt(state, "failed", f"failed: {text}",
                                    utc_now() + RETRY_AFTER_FAILURE)
        except OSError as w:
            log.warn(f"cannot record the failure for {m.cert_path.name}: {w}")
        say(f"%WUCME-E-RENEWFAIL, {m.cert_path.name} ({', '.join(state.hosts)}): {text}")
        return Outcome(state.hosts, m.cert_path.name, "failed", text)
