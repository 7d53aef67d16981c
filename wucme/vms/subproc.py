"""The processes wucme starts: a clean environment, and a way to end a whole tree of them.

A web server runs the wucme image as a CGI script (RFC 3875 §4.1) with GATEWAY_INTERFACE,
REQUEST_METHOD and the request's HTTP_* variables in its environment.  A command it starts
(WUCME_LOAD from the admin load page, a hook) must not inherit them: a `wucme @load.com` that
saw GATEWAY_INTERFACE answered as the CGI script again, which loaded again, without end.  And
a command that outlives its timeout is ended with everything it started, also the processes
that left its session (setsid) or whose parent exited (adopted by us: PR_SET_CHILD_SUBREAPER).
"""
from __future__ import annotations

import os
import signal
from collections.abc import Iterable, Mapping

__all__ = ["CGI_VARIABLES", "clean_environ", "is_cgi_variable", "become_subreaper", "children",
           "kill_tree", "TREE_VARIABLE", "tree_mark"]

#: The variables RFC 3875 §4.1 defines (and the ones servers add: HTTPS, REQUEST_URI, ...).
CGI_VARIABLES = frozenset({"GATEWAY_INTERFACE", "PATH_INFO", "PATH_TRANSLATED", "QUERY_STRING",
                           "HTTPS", "AUTH_TYPE", "CONTENT_LENGTH", "CONTENT_TYPE",
                           "DOCUMENT_ROOT", "CONTEXT_DOCUMENT_ROOT", "CONTEXT_PREFIX"})
_CGI_PREFIXES = ("REQUEST_", "SCRIPT_", "HTTP_", "REMOTE_", "SERVER_", "SSL_", "REDIRECT_",
                 "WWW_")
_PR_SET_CHILD_SUBREAPER = 36
#: Set (to a fresh value) in the environment of a command whose tree may be killed: an orphan we
#: adopted is only taken for that command's when it carries the command's value.  Hooks and
#: load commands of other threads (parallel renewals, authorizations) also leave orphans here.
TREE_VARIABLE = "WUCME_TREE"


def tree_mark() -> str:
    """A fresh value for TREE_VARIABLE."""
    return os.urandom(12).hex()


def _carries(pid: int, mark: str) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return f"{TREE_VARIABLE}={mark}".encode() in f.read().split(b"\0")
    except OSError:
        return False


def is_cgi_variable(name: str) -> bool:
    """Is *name* one a web server sets for a CGI request (never to be passed to a child)?

    The proxy variables (http_proxy, HTTPS_PROXY) are not request variables and stay; a
    request's own Proxy header arrives as HTTP_PROXY, which goes (httpoxy)."""
    if name in CGI_VARIABLES:
        return True
    if name.startswith(("HTTPS_", "https_")) and name.upper() == "HTTPS_PROXY":
        return False
    return name.startswith(_CGI_PREFIXES)


#: OpenSSL's own variables, which share mod_ssl's SSL_ prefix.
_KEPT = frozenset({"SSL_CERT_FILE", "SSL_CERT_DIR"})


def clean_environ(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """*env* (default os.environ) without the CGI request's variables, when it is a CGI
    request's (GATEWAY_INTERFACE set); any other environment is passed on whole, as uacme does."""
    source = os.environ if env is None else env
    if "GATEWAY_INTERFACE" not in source:
        return dict(source)
    return {k: v for k, v in source.items() if k in _KEPT or not is_cgi_variable(k)}


def become_subreaper() -> bool:
    """Make this process adopt its orphaned descendants (Linux prctl PR_SET_CHILD_SUBREAPER), so
    a double-forked daemon of a command stays findable as our child; False where unavailable."""
    import ctypes  # (here: most commands never start one; ctypes costs a process 2 MB)
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return int(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def _table() -> dict[int, tuple[int, int, int]]:
    """pid -> (parent, process group, session) of every process /proc shows."""
    out: dict[int, tuple[int, int, int]] = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return out
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2:].split()
        try:
            out[int(name)] = (int(fields[1]), int(fields[2]), int(fields[3]))
        except (IndexError, ValueError):
            continue
    return out


def children(pid: int | None = None) -> set[int]:
    """The live children of *pid* (default: this process)."""
    me = os.getpid() if pid is None else pid
    return {p for p, (ppid, _, _) in _table().items() if ppid == me}


def _members(table: Mapping[int, tuple[int, int, int]], roots: Iterable[int]) -> set[int]:
    """*roots* that exist, the processes in their groups or sessions, and all their descendants."""
    roots = set(roots)
    found = {p for p, (_, pgid, sid) in table.items() if p in roots or pgid in roots or sid in roots}
    todo = list(found)
    while todo:
        parent = todo.pop()
        for p, (ppid, _, _) in table.items():
            if ppid == parent and p not in found:
                found.add(p)
                todo.append(p)
    found.discard(os.getpid())
    return found


def kill_tree(root: int, not_before: set[int] | None = None, mark: str | None = None) -> set[int]:
    """SIGKILL *root* (started in a session of its own), its group and session, every descendant,
    and the children this process adopted that were not its children before (*not_before*, a
    set taken with children() before *root* was started) and that carry *mark* in their
    environment (TREE_VARIABLE), when one is given.  The tree is stopped (SIGSTOP) until
    no new member appears, so nothing forks its way out, then killed; the adopted ones are
    reaped.  Returns the pids killed."""
    me = os.getpid()
    stopped: set[int] = set()
    for _ in range(100):
        table = _table()
        adopted = {p for p, (ppid, _, _) in table.items()
                   if ppid == me and not_before is not None and p not in not_before
                   and p not in stopped and (mark is None or _carries(p, mark))}
        new = _members(table, {root} | adopted | stopped) - stopped
        if not new:
            break
        for p in new:
            try:
                os.kill(p, signal.SIGSTOP)
            except (ProcessLookupError, PermissionError):
                pass
        stopped |= new
    for p in stopped:
        try:
            os.kill(p, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    for p in stopped - {root}:
        try:
            os.waitpid(p, 0)  # only our own (adopted) children can be reaped here
        except ChildProcessError:
            pass
    return stopped
