"""`wucme agent [/ONCE] [/DETACH]`: run as wuCME-active or wuCME-standby (docs/agent.md)."""
from __future__ import annotations

import os
import sys

from wucme.command import Command, Qualifier, Verb
from wucme.result import Result, Show

VERB = Verb("agent", qualifiers=(
    Qualifier("detach", help="run in the background (default: the foreground, as systemd expects)"),
    Qualifier("once", help="become active, run one daily cycle now, and exit"),
), help="Renew, load and report daily as wuCME-active; or wait as wuCME-standby.")


def run(cmd: Command, show: Show | None = None) -> Result:
    """Replace this process by `python -m wucme.agent`: the verbs' imports (the whole ACME
    stack) would otherwise stay in the long-lived agent's memory."""
    argv = [sys.executable, "-m", "wucme.agent"]
    argv += ["--once"] if cmd.has("once") else []
    argv += ["--detach"] if cmd.has("detach") else []
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, argv)
    return Result()  # pragma: no cover - execv does not return
