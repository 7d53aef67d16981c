"""`wucme manage`: one pass of the daily renewal function in the foreground."""
from __future__ import annotations

import sys

from wucme.command import Command, Verb
from wucme.renewal import renewal_pass
from wucme.repository import Repository
from wucme.verbs.common import VerbLog, line, say
from wucme.vms.condition import exit_status

VERB = Verb("manage", help="Renew the certificates that are due, now, as the agent does daily.")


def run(cmd: Command) -> int:
    repo = Repository.here()
    log = VerbLog()
    report = renewal_pass(repo, log, say=line)
    if report.error:
        sys.stderr.write(report.error + "\n")
        return exit_status(report.error_severity)
    if not report.outcomes:
        return say("I", "NOCERTS", f"no certificates managed in {repo.path}")
    status = 0
    if report.load is not None:
        status = say("I", "LOADED", report.load[1]) if report.load[0] else say("W", "LOADFAIL", report.load[1])
    summary = (f"{len(report.renewed)} renewed, {len(report.skipped)} not due, "
               f"{len(report.failed)} failed")
    if report.failed:
        return say("E", "MANAGED", summary)
    return max(status, say("S", "MANAGED", summary))
