"""Where things are: the repository (WUCME_HERE) and the challenge store (WUCME_CHALLENGES,
WUCME_STORE_DB, WUCME_LOCK_DB).

Part of wucme.settings, which re-exports every name here: the logical names are read and
checked in these two modules only.  Kept apart because the web server's script answering an
http-01 challenge, a new process per request, needs no more of the settings than where the
store is (docs/performance.md, "Start-up"): this module imports the logical name lookup and
nothing of the HTTP, crypto or agent settings.
"""
from __future__ import annotations

import errno
import os
import stat

from wucme.errors import UsageError
from wucme.vms.dcllex import is_vms_spec
from wucme.vms.lnm import LOCAL_TABLES, trnlnm

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["DEFAULT_LINUX_HERE", "challenges_dir", "challenges_location", "default_here", "here_path",
           "lock_db", "store_db"]

#: The repository on Linux when neither WUCME_HERE nor WASD_ROOT is defined.
DEFAULT_LINUX_HERE = "/var/lib/wucme"


def bad_value(name: str, value: str, must: str) -> UsageError:
    """The configuration error: %WUCME-E-BADVALUE naming the logical name and its value (exit 2)."""
    return UsageError(f"{name} {value!r} {must}", ident="BADVALUE")


def _dir_path(spec: str) -> str:
    """wucme.vms.filespec.dir_path as a string; filespec is imported only for a VMS spec
    (`ELSE:[WHERE]`), pathlib not at all for a Linux path."""
    if not is_vms_spec(spec):
        return spec
    from wucme.vms.filespec import dir_path

    return str(dir_path(spec))


def _not_a_directory(path: str) -> bool:
    """Something other than a directory is at *path* (`Path.exists() and not Path.is_dir()`:
    nothing there, a dangling link or a loop is not that; another OSError is raised)."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError, ValueError):
        return False
    except OSError as e:
        if e.errno in (errno.EBADF, errno.ELOOP):  # what pathlib takes for "does not exist"
            return False
        raise
    return not stat.S_ISDIR(st.st_mode)


def default_here() -> str:
    """WUCME_HERE, else WASD_ROOT:[LOCAL] when WASD_ROOT is defined, else DEFAULT_LINUX_HERE."""
    here = trnlnm("WUCME_HERE")
    if here:
        return here
    if trnlnm("WASD_ROOT"):
        return "WASD_ROOT:[LOCAL]"
    return DEFAULT_LINUX_HERE


def here_path() -> Path:
    """The repository directory (a Linux path or a VMS directory spec such as `ELSE:[WHERE]`).

    One answer for every part (the repository, the challenge store the web server's script
    reads, the agent's logs), so they never disagree about the directory.  A repository that
    names a file (not a directory) is refused (BADVALUE), never read as "no certificates"."""
    from pathlib import Path

    return Path(_here())


def _here() -> str:
    spec = default_here()
    path = _dir_path(spec)
    if _not_a_directory(path):
        from pathlib import Path  # the message names the path as here_path() gives it

        raise bad_value("WUCME_HERE" if trnlnm("WUCME_HERE") else "WASD_ROOT:[LOCAL]", spec,
                        f"names {Path(path)}, which is not a directory")
    return path


def challenges_dir() -> Path:
    """The challenge store: WUCME_CHALLENGES, else WUCME_CHALLENGES/ in the repository."""
    from pathlib import Path

    return Path(challenges_location())


def challenges_location() -> str:
    """challenges_dir() as a string, for the CGI answer (which imports no pathlib)."""
    explicit = trnlnm("WUCME_CHALLENGES")
    return _dir_path(explicit) if explicit else os.path.join(_here(), "WUCME_CHALLENGES")


def lock_db() -> str | None:
    """WUCME_LOCK_DB: a libpq connection string for the cluster-wide lock, or None (local lock).

    Read from the process, job, group and system tables only: the cluster table lives in that
    database (docs/cluster.md), so it cannot name it."""
    return trnlnm("WUCME_LOCK_DB", LOCAL_TABLES) or None


def store_db() -> str | None:
    """The database of the shared challenge store: WUCME_STORE_DB, else WUCME_LOCK_DB, else None
    (the store is a directory).  Local tables only, as lock_db."""
    return trnlnm("WUCME_STORE_DB", LOCAL_TABLES) or lock_db()
