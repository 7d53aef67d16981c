"""Where wucme keeps its files: the logical name WUCME_HERE, as the seed defines it.

One answer for every part (the repository, the challenge store the web server's
script reads, the agent's logs), so they never disagree about the directory.
"""
from __future__ import annotations

from pathlib import Path

from wucme.vms.filespec import is_vms_spec, to_path
from wucme.vms.lnm import trnlnm

#: The repository on Linux when neither WUCME_HERE nor WASD_ROOT is defined.
DEFAULT_LINUX_HERE = "/var/lib/wucme"


def default_here() -> str:
    """WUCME_HERE, else WASD_ROOT:[LOCAL] when WASD_ROOT is defined, else DEFAULT_LINUX_HERE."""
    here = trnlnm("WUCME_HERE")
    if here:
        return here
    if trnlnm("WASD_ROOT"):
        return "WASD_ROOT:[LOCAL]"
    return DEFAULT_LINUX_HERE


def dir_path(spec: str) -> Path:
    """A directory from a Linux path or a VMS directory spec (`ELSE:[WHERE]`)."""
    return to_path(spec) if is_vms_spec(spec) else Path(spec)


def here_path() -> Path:
    """The repository directory, resolved now (logical names are read when used)."""
    return dir_path(default_here())
