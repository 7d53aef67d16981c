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
from wucme.issuance import ChallengeConfig, Responder, ca_directory, host_list, issue_certificate, run_load
from wucme.uacme.msg import Msg
from wucme.repository import Managed, Repository, iso, utc_now
from wucme.uacme.account import account_retrieve
from wucme.uacme.acme import AcmeSession, acme_bootstrap
from wucme.uacme.ari import ari_check, ari_replaces
from wucme.vms.lnm import trnlnm

DEFAULT_WORKERS = 4
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


def workers() -> int:
    raw = (trnlnm("WUCME_WORKERS") or "").strip()
    return max(1, min(int(raw), 64)) if raw.isdigit() else DEFAULT_WORKERS


def fixed_days() -> float | None:
    raw = (trnlnm("WUCME_DAYS") or "").strip()
    try:
        return float(raw) if raw else None
    except ValueError:
        return None


def threshold(leaf: x509.Certificate | crypto.CertInfo) -> _dt.timedelta:
    """How long before notAfter renewal starts: a third of the lifetime, half if <= 10 days."""
    lifetime = leaf.not_valid_after_utc - leaf.not_valid_before_utc
    return lifetime / 2 if lifetime <= _dt.timedelta(days=10) else lifetime / 3


def due(m: Managed, now: _dt.datetime, ari: Callable[[x509.Certificate], int] | None = None,
        days: float | None = None) -> tuple[bool, str]:
    """(due, why) for one certificate; *ari* returns ari_check's 1 / 0 / -1."""
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
    verdict = ari(m.leaf) if ari is not None and m.leaf is not None else -1
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


def renewal_pass(repo: Repository, log: Msg, *, session: Callable[[str], AcmeSession],
                 reporters: list[Reporter] | None = None,
                 say: Callable[[str], None] | None = None,
                 load: Callable[[], tuple[bool, str] | None] | None = run_load) -> RenewalReport:
    """One pass over the repository.  *session(directory)* makes the ACME session (the caller
    owns its transport settings); *say* prints a line per certificate as it is decided; *load*
    runs after renewals (WUCME_LOAD by default; None when the caller loads, as the agent does)."""
    say = say or (lambda s: None)
    report = RenewalReport(started=iso(utc_now()) or "")
    try:
        _pass(repo, log, session, report, say)
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


def _pass(repo: Repository, log: Msg, session: Callable[[str], AcmeSession],
          report: RenewalReport, say: Callable[[str], None]) -> None:
    managed = repo.managed()
    if not managed:
        return
    repo.ensure_writable()
    key = repo.load_account_key()
    config = ChallengeConfig.from_logicals()
    days = fixed_days()
    a = session(ca_directory())
    try:
        a.key = key
        acme_bootstrap(a)
        ari_url = a.dir.get("renewalInfo")
        ari = (lambda leaf: ari_check(a, leaf, ari_url)) if isinstance(ari_url, str) else None
        now = utc_now()
        todo: list[tuple[Managed, str]] = []
        for m in managed:
            is_due, why = due(m, now, ari, days)
            if is_due:
                todo.append((m, why))
            else:
                report.outcomes.append(Outcome(m.hosts, m.cert_name, "skipped", why))
                say(f"%WUCME-I-SKIPPED, {m.cert_name} ({', '.join(m.hosts)}): {why}")
        if not todo:
            return
        account_retrieve(a)
        with Responder(a, repo, config, log=lambda s: log(1, s)) as responder:
            def renew(item: tuple[Managed, str]) -> Outcome:
                return _renew(a, repo, responder, item[0], item[1], log, say)

            with ThreadPoolExecutor(max_workers=min(workers(), len(todo))) as pool:
                report.outcomes.extend(pool.map(renew, todo))
    finally:
        a.transport.close()


def _renew(a: AcmeSession, repo: Repository, responder: Responder, m: Managed, why: str,
           log: Msg, say: Callable[[str], None]) -> Outcome:
    state = m.state
    try:
        if m.problem and m.info is None and state.corrupt:
            raise WucmeError(f"cannot tell which hosts {m.cert_path.name} is for ({m.problem}); "
                             "run wucme issue for them", ident="NOHOSTS")
        names = validate_identifiers(state.hosts, wildcard=False)
        replaces = ari_replaces(a, m.leaf) if m.leaf is not None else None
        log(1, f"renewing {m.cert_path.name}: {why}")
        new = issue_certificate(a, repo, responder, names, replaces=replaces, status="renewed")
        msg = f"{m.cert_path.name} for {host_list(new)} renewed ({why}), expires {new.not_after}"
        say(f"%WUCME-S-RENEWED, {msg}")
        return Outcome(new.hosts, m.cert_path.name, "renewed", msg)
    except Exception as e:  # noqa: BLE001 - one failure never blocks the others
        text = e.text if isinstance(e, WucmeError) else f"{type(e).__name__}: {e}"
        try:
            if state.hosts and not (m.problem and m.info is None and state.corrupt):
                repo.record_attempt(state, "failed", f"failed: {text}",
                                    utc_now() + RETRY_AFTER_FAILURE)
        except OSError as w:
            log.warn(f"cannot record the failure for {m.cert_path.name}: {w}")
        say(f"%WUCME-E-RENEWFAIL, {m.cert_path.name} ({', '.join(state.hosts)}): {text}")
        return Outcome(state.hosts, m.cert_path.name, "failed", text)
