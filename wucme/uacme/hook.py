"""Port of uacme.c:hook_run(): the challenge hook, same argv and environment as uacme.

`PROG METHOD TYPE IDENT TOKEN AUTH`, no shell, UACME_METHOD/TYPE/IDENT/TOKEN/AUTH
in the environment beside UACME_CONFDIR and UACME_VERBOSE.  begin's exit status
decides: 0 accepts, >0 declines (the next challenge is offered), a signal aborts.  A `Solver`
(wucme's own responders) speaks the same protocol in-process.
Unlike uacme's fork(), the child gets its own process group and a timeout, so a
hung hook cannot hang an agent, and its children are killed with it.
"""
from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable

from wucme.errors import WucmeError

#: Something that answers challenges in-process, in the hook's protocol:
#: solver(method, type, ident, token, auth) -> 0 accepted (or done), >0 declined, <0 abort.
Solver = Callable[[str, str, str, str, str], int]

#: A hook that runs longer than this is killed with its process group.
HOOK_TIMEOUT = 300.0


def hook_run(prog: str, method: str, type: str, ident: str, token: str, auth: str,
             timeout: float = HOOK_TIMEOUT, env: dict[str, str] | None = None) -> int:
    """Run the hook; its exit status, or -1 when it died by a signal or timed out."""
    e = dict(os.environ if env is None else env)
    e.update(UACME_METHOD=method, UACME_TYPE=type, UACME_IDENT=ident,
             UACME_TOKEN=token, UACME_AUTH=auth)
    try:
        proc = subprocess.Popen([prog, method, type, ident, token, auth], env=e,
                                stdin=subprocess.DEVNULL, start_new_session=True,
                                close_fds=True)
    except OSError as err:
        raise WucmeError(f"failed to run hook {prog}: {err.strerror}", ident="HOOKERR") from None
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        return -1
    return rc if rc >= 0 else -1


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
