"""Files and directories only trusted users may write, and creating them with explicit modes.

wucme runs as root (or a wucme user) and acts on what some of its files say: the system and
cluster logical name tables name commands (WUCME_LOAD) that root runs, the challenge store
decides what a validation server is shown, the lock directory decides who is active. A file
that another user can write, or replace by writing a directory above it, is therefore refused
with ``%WUCME-E-INSECURE, <file> is writable by ...``, as OpenSSH's StrictModes refuses an
authorized_keys file.

The rule (docs/logical-names.md, "Table security"):

- a checked file or directory must be owned by root or by the user wucme runs as, and not be
  writable by its group or by others;
- with *ancestors*, every directory above it up to ``/`` (both along the path as written and
  along its real path, so a symbolic link's own directory counts) must be owned by root or
  that user and not writable by group or others, except that a sticky directory (``/tmp``,
  mode 1777) owned by root or that user is accepted above: there others may add names but
  never rename or remove ours.

Readable by group or others is fine: the web server's script reads the challenge store and
the system table as another user. New directories and files get their mode from mkdir or
open *and* then chmod/fchmod, so the administrator's umask (000 included) never decides it.
On OpenVMS the tables and directories are protected by the system's own means; the checks
are POSIX-only.
"""
from __future__ import annotations

import grp
import os
import pwd
import stat
import sys

from wucme.vms.message import VmsError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

__all__ = [
    "InsecureError",
    "check_ancestors",
    "check_directory",
    "check_stat",
    "make_directory",
    "open_private",
    "trusted_owners",
]

#: The checks apply where modes and owners mean what POSIX says.
ENFORCED = os.name == "posix" and sys.platform != "OpenVMS"


class InsecureError(VmsError):
    """A file or directory that someone other than root or wucme's user could change."""

    ident = "INSECURE"


def trusted_owners() -> frozenset[int]:
    """Root and the user wucme runs as: the only owners a checked file may have."""
    return frozenset({0, os.geteuid()})


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _group(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def _writer(st: os.stat_result, owners: frozenset[int], *, sticky_ok: bool = False) -> str | None:
    """Who besides a trusted owner may write what *st* describes ("every user", ...), or None."""
    mode = stat.S_IMODE(st.st_mode)
    if st.st_uid not in owners:
        me = _user(os.geteuid())
        trusted = "root" if me == "root" else f"root or {me}"
        return f"its owner {_user(st.st_uid)} (uid {st.st_uid}), who is not {trusted}"
    if sticky_ok and stat.S_ISDIR(st.st_mode) and mode & stat.S_ISVTX:
        return None
    if mode & stat.S_IWOTH:
        return f"every user (mode {mode:04o})"
    if mode & stat.S_IWGRP:
        return f"group {_group(st.st_gid)} (mode {mode:04o})"
    return None


def check_stat(st: os.stat_result, path: str | os.PathLike[str], *,
               owners: frozenset[int] | None = None) -> None:
    """Raise InsecureError when *st* (of *path*) is writable by anyone but a trusted owner."""
    if not ENFORCED:
        return
    who = _writer(st, owners if owners is not None else trusted_owners())
    if who is not None:
        raise InsecureError(f"{os.fspath(path)} is writable by {who}")


def check_directory(path: str | os.PathLike[str], *, ancestors: bool = False) -> os.stat_result:
    """Check directory *path* (and, with *ancestors*, every directory above it); its stat."""
    st = os.stat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise NotADirectoryError(20, "Not a directory", os.fspath(path))
    check_stat(st, path)
    if ancestors:
        check_ancestors(path)
    return st


def check_ancestors(path: str | os.PathLike[str]) -> None:
    """Every directory above *path*, as written and as really reached, may be written only by
    root or wucme's user (a sticky directory they own excepted)."""
    if not ENFORCED:
        return
    owners = trusted_owners()
    seen: set[tuple[int, int]] = set()
    for directory in [*_parents(os.path.abspath(path)), *_parents(os.path.realpath(path))]:
        try:
            st = os.stat(directory)
        except OSError:
            continue  # a component that vanished is reported by whoever opens the path
        if (st.st_dev, st.st_ino) in seen:
            continue
        seen.add((st.st_dev, st.st_ino))
        who = _writer(st, owners, sticky_ok=True)
        if who is not None:
            raise InsecureError(f"{directory} is writable by {who}, so {os.fspath(path)} is not trusted")


def _parents(path: str) -> list[str]:
    """The directories above absolute *path*, nearest first, `/` last (PurePath.parents, without
    importing pathlib: the CGI answer to a challenge checks a table's ancestors)."""
    out = []
    while (parent := os.path.dirname(path)) != path:
        out.append(parent)
        path = parent
    return out


def make_directory(path: str | os.PathLike[str], mode: int = 0o755, parents_mode: int = 0o755) -> Path:
    """Create *path* with exactly *mode*, and any missing parents with *parents_mode* (mkdir,
    then chmod: the umask does not decide).  Directories that already exist are left as they are."""
    from pathlib import Path

    path = Path(path)
    missing: list[Path] = []
    p = path
    while not p.exists():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for p in reversed(missing):
        want = mode if p == path else parents_mode
        try:
            os.mkdir(p, want)
        except FileExistsError:
            continue  # made meanwhile by someone else: checked by the caller, never chmodded
        os.chmod(p, want)
    return path


def open_private(path: str | os.PathLike[str], flags: int, mode: int) -> int:
    """Open *path* for writing without following a symbolic link; a new file gets exactly
    *mode*, an existing one must belong to root or wucme's user and not be writable by others.

    For the files a daemon keeps in a shared directory (pid file, log): a link planted there
    by another user is refused (ELOOP), not followed to a file of root's choosing.
    """
    nofollow = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags | os.O_CREAT | os.O_EXCL | nofollow, mode)
    except FileExistsError:
        if flags & os.O_EXCL:
            raise
        fd = os.open(path, flags & ~os.O_CREAT | nofollow)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise InsecureError(f"{os.fspath(path)} is not a regular file")
            check_stat(st, path)
        except BaseException:
            os.close(fd)
            raise
        return fd
    try:
        os.fchmod(fd, mode)
    except BaseException:
        os.close(fd)
        raise
    return fd
