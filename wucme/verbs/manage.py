"""`wucme manage`: one renewal pass in the foreground, the same the agent runs daily."""
from __future__ import annotations

from wucme.command import Command, Verb
from wucme.renewal import renewal_pass
from wucme.repository import Repository
from wucme.verbs.common import VerbLog, say
from wucme.vms.condition import Condition, parse_message

VERB = Verb("manage", help="Renew the certificates that are due, load and report, now, as the agent does daily.")


def run(cmd: Command) -> int:
    repo = Repository.here()
    status = 0

    def note(c: Condition) -> None:
        nonlocal status
        status = max(status, say(c.severity, c.ident, c.text))

    report = renewal_pass(repo, VerbLog(), note=note)
    if report.error:
        c = parse_message(report.error) or Condition(report.error_severity, "PASSFAIL", report.error)
        return max(status, say(c.severity, c.ident, c.text))
    if not report.outcomes and not report.load_steps:
        return max(status, say("I", "NOCERTS", f"no certificates managed in {repo.path}"))
    ok = report.ok and report.load_ok
    return max(status, say("S" if ok else "E", "MANAGED", report.summary()))
