"""Port of uacme.c:hook_run(): the challenge hook, run as uacme runs it.

`PROG METHOD TYPE IDENT TOKEN AUTH`, no shell, UACME_METHOD/TYPE/IDENT/TOKEN/AUTH
in the environment beside UACME_CONFDIR and UACME_VERBOSE (uacme HEAD).  begin's
exit status decides: 0 accepts, >0 declines (the next challenge is offered), a
signal aborts.  A `Solver` (wucme's own responders) speaks the same protocol
in-process.

Like uacme's fork() and execl(): PROG is executed as given (a name without a
slash is a file in the current directory, never looked up in PATH), the hook
inherits stdin, the terminal and the session, so a manual dns-01 hook can ask
the operator, and it may take as long as it needs.  A timeout is opt-in: the
logical name WUCME_HOOK_TIMEOUT (seconds) runs the hook in a process group of
its own (still in the session) and kills that group when the time is up.
"""
from __future__ import annotations

import os
import select
import signal
from collections.abc import Callable

from wucme.vms.subproc import TREE_VARIABLE, become_subreaper, children, clean_environ, kill_tree, tree_mark
from wucme.errors import WucmeError
from wucme.settings import hook_timeout

#: Something that answers challenges in-process, in the hook's protocol:
#: solver(method, type, ident, token, auth) -> 0 accepted (or done), >0 declined, <0 abort.
Solver = Callable[[str, str, str, str, str], int]

#: The attribute that marks a Solver as quick: true when each call answers at once, in this
#: process (a file written or removed), so that concurrent calls would gain nothing; the port
#: then calls it from one thread (wucme.uacme.authorize).
QUICK = "quick"


def hook_run(prog: str, method: str, type: str, ident: str, token: str, auth: str,
             timeout: float | None = None, env: dict[str, str] | None = None) -> int:
    """Run the hook; its exit status, or -1 when it died by a signal or timed out.

    posix_spawn(), not posix_spawnp(): PROG is the path execl() gets, so the hook's
    $0 is PROG too.  `timeout` (default: WUCME_HOOK_TIMEOUT, none when unset) bounds the run.
    """
    if timeout is None:
        timeout = hook_timeout()
    e = clean_environ(os.environ if env is None else env)  # never a CGI request's variables
    mark = None
    if timeout is not None:  # only then is the tree killed; else the environment is uacme's
        mark = tree_mark()
        e[TREE_VARIABLE] = mark
    e.update(UACME_METHOD=method, UACME_TYPE=type, UACME_IDENT=ident,
             UACME_TOKEN=token, UACME_AUTH=auth)
    # A hook that outlives its timeout is ended with all it started, also what left its group
    # (setsid) and was orphaned: we adopt those as subreaper and tell them by who came before.
    before = children() if timeout is not None and become_subreaper() else None
    try:
        # Python ignores SIGPIPE and SIGXFSZ; the hook gets the defaults uacme's child has.
        argv = [prog, method, type, ident, token, auth]
        sigdef = (signal.SIGPIPE, signal.SIGXFSZ)
        if timeout is None:
            pid = os.posix_spawn(prog, argv, e, setsigdef=sigdef)
        else:
            pid = os.posix_spawn(prog, argv, e, setsigdef=sigdef, setpgroup=0)
    except OSError as err:
        raise WucmeError(f"failed to run hook {prog}: {err.strerror}", ident="HOOKERR") from None
    try:
        if timeout is not None and not _exits_within(pid, timeout):
            _kill_group(pid, before, mark)
            return -1
        _, status = os.waitpid(pid, 0)
    except BaseException:
        # Interrupted: ^C reached the hook too (same process group), as with uacme;
        # a hook in a group of its own is killed with its children.
        if timeout is not None:
            _kill_group(pid, before, mark)
        raise
    rc = os.waitstatus_to_exitcode(status)
    return rc if rc >= 0 else -1


def _exits_within(pid: int, timeout: float) -> bool:
    fd = os.pidfd_open(pid)
    try:
        ready, _, _ = select.select([fd], [], [], timeout)
    finally:
        os.close(fd)
    return bool(ready)


def _kill_group(pid: int, not_before: set[int] | None = None, mark: str | None = None) -> None:
    """The hook, its group, and whatever it started, also outside its group (/proc) and the
    orphans we adopted since it started (not among *not_before*) that carry its *mark*."""
    kill_tree(pid, not_before, mark)
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
