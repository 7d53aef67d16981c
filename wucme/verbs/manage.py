"""`wucme manage`: one renewal pass in the foreground, the same the agent runs daily
(wucme.renewal: renew what is due, load, report by OPCOM and mail, warn of expiry)."""
from __future__ import annotations

from dataclasses import asdict

from wucme.command import Command, Qualifier, Verb
from wucme.renewal import renewal_pass
from wucme.repository import Repository
from wucme.settings import CHALLENGES
from wucme.verbs.common import VerbLog
from wucme.result import Result, Show
from wucme.vms.condition import Condition, parse_message

VERB = Verb("manage", qualifiers=(Qualifier("output", "required", keywords=("text", "json"),
                                            help="TEXT (default) or JSON"),
                                  Qualifier("challenge", "required", keywords=CHALLENGES,
                                            help="renew every certificate over this challenge type "
                                                 "(default: the type each was issued with)"),
                                  Qualifier("nowait", help="skip (BUSY) a certificate another "
                                            "process works on, rather than wait")),
            help="Renew the certificates that are due, load and report, now, as the agent does daily.")


def manage(show: Show | None = None, challenge: str | None = None, nowait: bool = False) -> Result:
    """One renewal pass: a message for each step as it happens, then the summary."""
    repo = Repository.here()
    result = Result("Manage", show=show)

    show_now = None if result.keeps_all else show

    def note(c: Condition) -> None:
        if show_now is not None and c.severity in ("I", "S"):
            show_now(c)  # (what Result.add does with them: shown for good, not kept)
        else:
            result.add(c)

    # Shown as it comes, a not-due certificate's message is all there is of it (the JSON form
    # lists every outcome).
    report = renewal_pass(repo, VerbLog(), note=note, challenge=challenge, nowait=nowait,
                          keep_skipped=result.keeps_all)
    data = asdict(report)
    data.pop("skipped_not_kept")
    result.data = {"repository": str(repo.path), **data, "summary": report.summary()}
    if report.error:
        c = parse_message(report.error) or Condition(report.error_severity, "PASSFAIL", report.error)
        return result.add(c)
    if not report.outcomes and not report.not_due and not report.load_steps:
        return result.say("I", "NOCERTS", f"no certificates managed in {repo.path}")
    ok = report.ok and report.load_ok
    return result.say("S" if ok else "E", "MANAGED", report.summary())


def run(cmd: Command, show: Show | None = None) -> Result:
    value = cmd.qualifiers.get("challenge")
    return manage(show, value.lower() if isinstance(value, str) else None,
                  bool(cmd.qualifiers.get("nowait")))
