"""One daily cycle of the agent: the renewal pass, then the backoff decision.

The pass (wucme.renewal.renewal_pass, the same as `wucme manage`) renews what is due, runs the
load action, reports and warns of expiry; the cycle adds only what the schedule needs: the
outcome kept in WUCME_AGENT.JSON (the backoff, docs/agent.md) and the retry time written as each
failed certificate's next_attempt.

The active agent runs it in a child process (`python -m wucme.agent.cycle REPO LOG`) so that
the long-lived process never imports the ACME client, the crypto and the HTTP stack, and stays
small while it waits for the next day; tests call `run_cycle` in-process with a fake clock.

The pass belongs to the agent that holds the lock.  The child asks the kernel for SIGUSR1 when
its parent dies (prctl PR_SET_PDEATHSIG): it then starts no further certificate, finishes those
in flight (a certificate half-ordered and abandoned would be ordered again by the next agent),
and ends.  The pass itself holds the lock WUCME_PASS from start to end, so a new active agent's
pass waits until the old one is gone; each certificate's own lock (Repository.lock_certificate)
keeps `issue`, `manage` and the pass from ordering one certificate twice.

In shared renewals (WUCME_CLUSTER_MODE SHARED, docs/cluster.md) every node's agent runs a pass
at once: WUCME_PASS is not taken, each node keeps its own schedule (WUCME_AGENT_<NODE>.JSON),
and the pass takes each certificate's lock without waiting (a busy one is another node's).  A
pass the lock database cut short is retried after LOCKDB_RETRY, doubled after each such pass
in a row (never later than the ordinary backoff): the work resumes soon after the database.
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import datetime as _dt
import os
import signal
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from wucme.agent.log import AgentLog
from wucme.agent.schedule import AgentState, backoff_time, state_file
from wucme.core.times import iso, parse_iso, utc_now
from wucme.load import StepResult
from wucme.renewal import RenewalReport, StopCheck, renewal_pass
from wucme.repository import LOCK_DIR, Repository
from wucme.settings import verbosity
from wucme.vms.condition import VmsError


@dataclass
class CycleResult:
    """What a cycle did, for the caller's log and the tests."""

    ok: bool
    renewed: int = 0
    failed: int = 0
    load: list[StepResult] = field(default_factory=list)
    report_errors: list[str] = field(default_factory=list)
    state: AgentState = field(default_factory=AgentState)
    summary: str = ""


PASS_RESOURCE = "WUCME_PASS"
#: The first retry after a pass that lost the lock database (shared renewals).
LOCKDB_RETRY = _dt.timedelta(seconds=10)
PR_SET_PDEATHSIG = 1
#: The signal the kernel sends the cycle's process when the agent that started it dies.
ORPHAN_SIGNAL = signal.SIGUSR1


def run_cycle(repo: Repository, log: AgentLog, now: _dt.datetime,
              stop: StopCheck | None = None, *, shared: bool = False, node: str = "") -> CycleResult:
    """One cycle at `now` (the agent's clock: every decision of the pass is taken at it),
    holding WUCME_PASS: a pass still running (its agent killed) is waited for.  *shared*: the
    node *node*'s pass in shared renewals, beside the other nodes' (no WUCME_PASS)."""
    from wucme.lock import LockManager, NotQueued

    if shared:
        return _run_cycle(repo, log, now, stop, shared, node)

    manager = LockManager(repo.path / LOCK_DIR) if repo.path.is_dir() else None
    held = None
    if manager is not None:
        try:
            held = manager.enqueue(PASS_RESOURCE, "EX", wait=False)
        except NotQueued:
            log.say("I", "PASSWAIT", "the previous agent's pass is still running: waiting for its end")
            held = manager.enqueue(PASS_RESOURCE, "EX")
    try:
        return _run_cycle(repo, log, now, stop)
    finally:
        if held is not None:
            held.release()


def _run_cycle(repo: Repository, log: AgentLog, now: _dt.datetime,
               stop: StopCheck | None, shared: bool = False, node: str = "") -> CycleResult:
    before: dict[str, _dt.datetime] = {}
    try:
        # A retry time recorded before this pass (by `manage`, or an earlier cycle) that is
        # still ahead: the backoff never retries sooner.
        before = {m.cert_path.name: t for m in repo.scan()
                  for t in [parse_iso(m.state.next_attempt)] if t is not None and t > now}
        report = renewal_pass(repo, log, note=log.note, now=now, stop=stop, shared=shared, node=node,
                              keep_skipped=False)  # what the agent holds stays flat
    except VmsError as e:  # a logical name read in the cluster table, its database down
        if e.ident != "CLUSTERDB":
            raise
        log.say(e.severity, e.ident, e.text)
        report = RenewalReport(started=iso(now) or "", error=e.message(), lock_lost=e.text)
    ok = report.ok and report.load_ok
    summary = report.summary() if not report.error else f"{report.error} ({report.summary()})"
    name = state_file(shared, node)
    state = AgentState.load(repo.path, name)
    gone = stop() if stop is not None else ""
    if gone:  # the schedule is the new active agent's now: record nothing of this pass
        log.say("W", "ABANDONED", f"{gone}: pass ended after the certificates in flight ({summary})")
        return _result(report, False, state, summary)
    failed = {o.file for o in report.failed}
    hints = [before[f] for f in failed if f in before]
    state.passed(now, ok, summary, min(hints) if hints else None)
    if report.lock_lost:  # not the CA's fault: try again as soon as the database may be back
        soon = now + LOCKDB_RETRY * 2 ** min(state.failures - 1, 16)
        later = backoff_time(now, min(state.failures, 3))
        state.retry_at = iso(min(soon, later) if later is not None else soon)
    if failed and not shared:  # shared: each node's retry time is its own, not the certificate's
        # The backoff replaces renewal's fixed next_attempt (both say "when to try again").
        _note_retry(repo, failed, state.retry_time, log)
    try:
        repo.ensure_writable()
        state.save(repo.path, name)
    except Exception as e:  # noqa: BLE001 - the pass is done; say why the backoff is not kept
        log.say("W", "NOSTATE", f"cannot save the agent state in {repo.path}: {e}")
    log.say("S" if ok else "E", "CYCLE", summary + ("" if ok else f"; retry {state.retry_at or 'at the daily time'}"))
    return _result(report, ok, state, summary)


def _result(report: RenewalReport, ok: bool, state: AgentState, summary: str) -> CycleResult:
    return CycleResult(ok, len(report.renewed), len(report.failed), report.load_steps,
                       report.report_problems, state, summary)


def _note_retry(repo: Repository, files: set[str], retry: _dt.datetime | None, log: AgentLog) -> None:
    """Write the agent's retry time as each failed certificate's next_attempt, so `certificates`
    shows when it is tried again."""
    for m in repo.scan():
        if m.cert_path.name in files and not m.state.corrupt and m.state.status == "failed":
            m.state.next_attempt = iso(retry)
            try:
                repo.save_state(m.state)
            except OSError as e:
                log.say("W", "NORETRY", f"cannot note the retry time for {m.cert_path.name}: {e}")


def die_with_parent(parent: int) -> StopCheck:
    """Ask for ORPHAN_SIGNAL when the parent dies; the check says why to start nothing more."""
    orphaned = threading.Event()
    signal.signal(ORPHAN_SIGNAL, lambda *_: orphaned.set())
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(ORPHAN_SIGNAL), 0, 0, 0)
    if os.getppid() != parent:  # it died before the request: the signal will never come
        orphaned.set()

    def check() -> str:
        if not orphaned.is_set() and os.getppid() != parent:
            orphaned.set()
        return "the agent that started this pass is gone" if orphaned.is_set() else ""
    return check


def main(argv: list[str] | None = None) -> int:
    """`python -m wucme.agent.cycle REPOSITORY [LOGFILE [PARENT-PID [SHARED NODE]]]`: one cycle,
    for the active agent (PARENT-PID: the agent, whose death stops the pass from starting
    more; SHARED NODE: that node's pass in shared renewals)."""
    args = sys.argv[1:] if argv is None else argv
    # The agent stops a cycle with SIGTERM: unwind (closing connections), no traceback.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(3))
    stop = die_with_parent(int(args[2])) if len(args) > 2 and args[2].isdigit() else None
    repo = Repository(args[0])
    try:
        level = verbosity()
    except VmsError:  # an unreadable table: the pass says so, in the log
        level = 0
    log = AgentLog(level, Path(args[1]) if len(args) > 1 and args[1] else None)
    try:
        shared = len(args) > 4 and args[3] == "SHARED"
        result = run_cycle(repo, log, utc_now(), stop, shared=shared, node=args[4] if shared else "")
    except Exception as e:  # noqa: BLE001 - the agent records the failure and backs off
        log.say("F", "CYCLEBUG", f"unexpected {type(e).__name__}: {e}")
        return 4
    return 0 if result.ok else 2


if __name__ == "__main__":
    sys.exit(main())
