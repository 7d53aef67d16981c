"""One node's pass in shared renewals at a time given on the command line.

What `python -m wucme.agent.cycle REPO LOG PARENT SHARED NODE` runs for a node's agent
(`run_cycle(..., shared=True, node=NODE)`), with the agent's clock replaced by the simulated
time, so that a test can run several nodes' passes as separate processes (each its own
database sessions, as on separate nodes) across simulated days.  Prints the cycle's outcome as
one line of JSON.

    python cycle_at.py REPOSITORY NODE ISO-TIME
"""
from __future__ import annotations

import io
import json
import sys
from pathlib import Path

from wucme.agent.cycle import run_cycle
from wucme.agent.log import AgentLog
from wucme.core.times import parse_iso
from wucme.repository import Repository


def main(argv: list[str]) -> int:
    repo, node, when = Path(argv[0]), argv[1], parse_iso(argv[2])
    assert when is not None, argv[2]
    log = io.StringIO()
    r = run_cycle(Repository(repo), AgentLog(0, echo=log), when, shared=True, node=node)
    print(json.dumps({"ok": r.ok, "renewed": r.renewed, "failed": r.failed, "summary": r.summary,
                      "log": log.getvalue()}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
