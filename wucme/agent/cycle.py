"""One daily cycle of the agent: renew what is due, load, report, decide the backoff.

The active agent runs it in a child process (`python -m wucme.agent.cycle REPO LOG`) so that
the long-lived process never imports the ACME client, the crypto and the HTTP stack, and stays
small while it waits for the next day; tests call `run_cycle` in-process with a fake clock.

Order: `renewal_pass` (each renewal saves its state at once, so a later pass skips it: nothing
is issued twice for one due date) → the load action when something was renewed or an earlier
load failed → the reporters (OPCOM/syslog, mail; they see the load's outcome in `report.load`)
and the expiry warnings → the backoff decision in WUCME_AGENT.JSON.
"""
from __future__ import annotations

import datetime as _dt
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wucme.agent.log import AgentLog
from wucme.agent.schedule import AgentState
from wucme.core.times import iso, parse_iso
from wucme.repository import Repository


@dataclass
class CycleResult:
    """What a cycle did, for the caller's log and the tests."""

    ok: bool
    renewed: int = 0
    failed: int = 0
    load: list[Any] = field(default_factory=list)
    report_errors: list[str] = field(default_factory=list)
    state: AgentState = field(default_factory=AgentState)
    summary: str = ""


def _note_retry(repo: Repository, files: set[str], retry: _dt.datetime | None, log: AgentLog) -> None:
    """Write the agent's retry time as each failed certificate's next_attempt, so `certificates`
    shows when it is tried again."""
    for m in repo.managed():
        if m.cert_path.name in files and not m.state.corrupt and m.state.status == "failed":
            m.state.next_attempt = iso(retry)
            try:
                repo.save_state(m.state)
            except OSError as e:
                log.warn(f"cannot note the retry time for {m.cert_path.name}: {e}")


def run_cycle(repo: Repository, log: AgentLog, now: _dt.datetime) -> CycleResult:
    """One cycle at `now` (the schedule's clock; certificate times are the real clock's)."""
    from wucme.load import load_action
    from wucme.renewal import renewal_pass

    state = AgentState.load(repo.path)
    import wucme.reporting as reporting
    # A retry time recorded before this pass (by `manage`, or an earlier cycle) that is still
    # ahead: the backoff never retries sooner.
    before = {m.cert_path.name: t for m in repo.managed()
              for t in [parse_iso(m.state.next_attempt)] if t is not None and t > now}
    report = renewal_pass(repo, log, reporters=None, say=log.line, load=None)
    steps = []
    if report.renewed or state.load_pending:
        steps = load_action(repo)
        for s in steps:
            log.line(f"%WUCME-{'S' if s.ok else 'E'}-{'LOADED' if s.ok else 'LOADFAIL'}, {s.text}")
        if steps:
            report.load = (all(s.ok for s in steps), "; ".join(s.text for s in steps))
    load_ok = all(s.ok for s in steps)

    errors: list[str] = []
    for reporter in reporting.reporters_from_logicals():
        try:
            reporter(report)
        except Exception as e:  # noqa: BLE001 - a reporter never spoils the cycle
            errors.append(f"reporter failed: {e}")
    try:
        errors += reporting.send_events(reporting.build_events(report, repo, now))
    except Exception as e:  # noqa: BLE001
        errors.append(f"expiry warnings failed: {e}")
    for problem in errors:
        log.warn(problem)

    failed_files = {o.file for o in report.failed}
    ok = report.ok and load_ok
    summary = (f"{len(report.renewed)} renewed, {len(report.skipped)} not due, {len(report.failed)} failed"
               + (f", load {'ok' if load_ok else 'FAILED'}" if steps else ""))
    if report.error:
        summary = f"{report.error} ({summary})"
    state = AgentState.load(repo.path)  # re-read: nothing else writes it, but be safe
    hints = [before[f] for f in failed_files if f in before]
    state.passed(now, ok, summary, min(hints) if hints else None)
    if failed_files:
        # Our backoff replaces renewal's fixed next_attempt (both say "when to try again").
        _note_retry(repo, failed_files, state.retry_time, log)
    state.load_pending = bool(steps) and not load_ok
    try:
        repo.ensure_writable()
        state.save(repo.path)
    except Exception as e:  # noqa: BLE001 - the pass is done; say why the backoff is not kept
        log.warn(f"cannot save the agent state in {repo.path}: {e}")
    log.line(f"%WUCME-{'S' if ok else 'E'}-CYCLE, {summary}"
             + ("" if ok else f"; retry {state.retry_at or 'at the daily time'}"))
    return CycleResult(ok, len(report.renewed), len(report.failed), steps, errors, state, summary)


def main(argv: list[str] | None = None) -> int:
    """`python -m wucme.agent.cycle REPOSITORY [LOGFILE]`: one cycle, for the active agent."""
    from wucme.settings import verbosity

    args = sys.argv[1:] if argv is None else argv
    # The agent stops a cycle with SIGTERM: unwind (closing connections), no traceback.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(3))
    repo = Repository(args[0])
    log = AgentLog(verbosity(), Path(args[1]) if len(args) > 1 and args[1] else None)
    now = _dt.datetime.now(_dt.timezone.utc)
    try:
        result = run_cycle(repo, log, now)
    except Exception as e:  # noqa: BLE001 - the agent records the failure and backs off
        log.warn(f"%WUCME-F-CYCLEBUG, unexpected {type(e).__name__}: {e}")
        return 4
    return 0 if result.ok else 2


if __name__ == "__main__":
    sys.exit(main())
