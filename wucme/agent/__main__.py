"""`python -m wucme.agent [--once] [--detach]`: the agent process itself (what `wucme agent` runs).

Kept apart from the verbs so the waiting process imports only the lock manager, the logical
names and the schedule: the idle agent stays small.
"""
from __future__ import annotations

import sys

from wucme.vms.condition import format_message


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    once, detach = "--once" in args, "--detach" in args
    unknown = [a for a in args if a not in ("--once", "--detach")]
    if unknown:
        sys.stderr.write(format_message("E", "IVQUAL", f"unknown agent option {unknown[0]}") + "\n")
        return 2
    from wucme.agent.process import Agent
    from wucme.daemon import Detached, daemonize
    from wucme.settings import here_path

    repo = here_path()
    if detach:
        daemon = daemonize()
        if isinstance(daemon, Detached):
            sys.stdout.write(format_message("I", "DETACHED", f"agent pid {daemon.pid} for {repo}") + "\n")
            return 0
        daemon.close()
    return Agent(repo, max_cycles=1 if once else None, immediate=once).serve()


if __name__ == "__main__":
    sys.exit(main())
