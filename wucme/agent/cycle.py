"""One daily cycle of the agent: the renewal pass, then the backoff decision.

The pass (wucme.renewal.renewal_pass, the same as `wucme manage`) renews what is due, runs the
load action, reports and warns of expiry; the cycle adds only what the schedule needs: the
outcome kept in WUCME_AGENT.JSON (the backoff, docs/agent.md) and the retry time written as each
failed certificate's next_attempt.

The active agent runs it in a child process (`python -m wucme.agent.cycle REPO LOG`) so that
the long-lived process never imports the ACME client, the crypto and the HTTP stack, and stays
small while it waits for the next day; tests call `run_cycle` in-process with a fake clock.
"""
from __future__ import annotations

import datetime as _dt
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

from wucme.agent.log import AgentLog
from wucme.agent.schedule import AgentState
from wucme.core.times import iso, parse_iso, utc_now
from wucme.load import StepResult
from wucme.renewal import RenewalReport, renewal_pass
from wucme.repository import Repository
from wucme.settings import verbosity


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


def run_cycle(repo: Repository, log: AgentLog, now: _dt.datetime) -> CycleResult:
    """One cycle at `now` (the schedule's clock; certificate times are the real clock's)."""
    # A retry time recorded before this pass (by `manage`, or an earlier cycle) that is still
    # ahead: the backoff never retries sooner.
    before = {m.cert_path.name: t for m in repo.managed()
              for t in [parse_iso(m.state.next_attempt)] if t is not None and t > now}
    report = renewal_pass(repo, log, note=log.note, now=now)
    ok = report.ok and report.load_ok
    summary = report.summary() if not report.error else f"{report.error} ({report.summary()})"
    state = AgentState.load(repo.path)
    failed = {o.file for o in report.failed}
    hints = [before[f] for f in failed if f in before]
    state.passed(now, ok, summary, min(hints) if hints else None)
    if failed:
        # The backoff replaces renewal's fixed next_attempt (both say "when to try again").
        _note_retry(repo, failed, state.retry_time, log)
    try:
        repo.ensure_writable()
        state.save(repo.path)
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
    for m in repo.managed():
        if m.cert_path.name in files and not m.state.corrupt and m.state.status == "failed":
            m.state.next_attempt = iso(retry)
            try:
                repo.save_state(m.state)
            except OSError as e:
                log.say("W", "NORETRY", f"cannot note the retry time for {m.cert_path.name}: {e}")


def main(argv: list[str] | None = None) -> int:
    """`python -m wucme.agent.cycle REPOSITORY [LOGFILE]`: one cycle, for the active agent."""
    args = sys.argv[1:] if argv is None else argv
    # The agent stops a cycle with SIGTERM: unwind (closing connections), no traceback.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(3))
    repo = Repository(args[0])
    log = AgentLog(verbosity(), Path(args[1]) if len(args) > 1 and args[1] else None)
    try:
        result = run_cycle(repo, log, utc_now())
    except Exception as e:  # noqa: BLE001 - the agent records the failure and backs off
        log.say("F", "CYCLEBUG", f"unexpected {type(e).__name__}: {e}")
        return 4
    return 0 if result.ok else 2


if __name__ == "__main__":
    sys.exit(main())
