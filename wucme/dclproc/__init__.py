"""wucme's DCL: runs the command procedures of com/ (and an administrator's own) on Linux.

`wucme @PROC.COM p1 ...` and `python3 -m wucme.dclproc @PROC.COM p1 ...` run a procedure;
what the interpreter supports, and how images map to Linux programs, is in docs/dcl.md.
"""

from __future__ import annotations

import sys
from typing import IO

from wucme.dclproc.interp import Interpreter, report_exit
from wucme.dclproc.status import DclSignal, INHIBIT, linux_exit
from wucme.vms import lnm

__all__ = ["Interpreter", "dcl_main", "run_procedure", "run_procedure_status"]

USAGE = "usage: wucme @procedure[.COM] [p1 ... p8]"


def run_procedure_status(path: str, params: list[str], stdout: IO[str] | None = None,
                         stderr: IO[str] | None = None, stdin: IO[str] | None = None) -> tuple[int, Interpreter]:
    """Run the procedure at the outermost level; its final VMS status and the interpreter."""
    interp = Interpreter(stdout, stderr, stdin)
    try:  # the outermost procedure is a job: the processes it starts share its job table
        job = lnm.start_job()
    except OSError:  # no temporary directory: a DEFINE /JOB will say so when it is tried
        job = None
    try:
        status = interp.run_file(path, list(params))
    except DclSignal as sig:  # the procedure itself could not be opened
        interp.err_lines(sig.lines())
        status = sig.status | INHIBIT
    finally:
        if job is not None:
            lnm.end_job(job)
    for stream in interp.channels.values():
        stream.close()
    interp.channels.clear()
    report_exit(interp, status)
    interp.stdout.flush()
    return status, interp


def run_procedure(path: str, params: list[str], stdout: IO[str] | None = None,
                  stderr: IO[str] | None = None) -> int:
    """`@path params`: the Linux exit status of the procedure (0 when its $STATUS is success)."""
    status, _ = run_procedure_status(path, params, stdout, stderr)
    return linux_exit(status)


def dcl_main(argv: list[str]) -> int:
    """argv[0] is `@file[.COM]` (or the file, as a `#!` line passes it), the rest P1..P8.

    Parameters from the Linux command line are taken as typed, as if quoted in DCL.
    """
    args = list(argv)
    if args and args[0] == "@":
        args = args[1:]
    if not args or args[0] in ("-h", "--help"):
        sys.stderr.write(USAGE + "\n")
        return 2 if not args else 0
    spec = args[0][1:] if args[0].startswith("@") else args[0]
    params = args[1:]
    if len(params) > 8:
        sys.stderr.write(f"%DCL-W-MAXPARM, too many parameters - reenter command with fewer parameters\n"
                         f" \\{params[8].upper()}\\\n")
        return 1
    return run_procedure(spec, params)
