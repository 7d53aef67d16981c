"""`python -m wucme.agent [--once] [--detach]`: the agent process itself (what `wucme agent` runs).

Kept apart from the verbs so the waiting process imports only the lock manager, the logical
names and the schedule: the idle agent stays small.
"""
from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    once, detach = "--once" in args, "--detach" in args
    unknown = [a for a in args if a not in ("--once", "--detach")]
    if unknown:
        sys.stderr.write(f"%WUCME-E-IVQUAL, unknown agent option {unknown[0]}\n")
        return 2
    from wucme.agent.process import Agent, detach as become_daemon
    from wucme.vms.here import here_path

    repo = here_path()
    if detach:
        pid = become_daemon()
        if pid is not None:
            sys.stdout.write(f"%WUCME-I-DETACHED, agent pid {pid} for {repo}\n")
            return 0
    return Agent(repo, max_cycles=1 if once else None, immediate=once).serve()


if __name__ == "__main__":
    sys.exit(main())
