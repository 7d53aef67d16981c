"""Atomic file replacement: a reader sees the old file or the new one, never a part.

A temporary file is named ``.wucme-tmp-NODE-PID-RANDOM``.  A writer that crashes leaves its
temporary behind; the next write into the same directory removes it, once its writer (same
node, a process that no longer exists) is gone or once it is an hour old (another node's, on
shared storage, where a process number means nothing here).
"""

from __future__ import annotations

import os
import re
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

__all__ = ["atomic_write", "fill_fd", "install_temp", "write_temp", "fsync_dir", "purge_temps", "TEMP_PREFIX",
           "TEMP_MAX_AGE"]

#: Temporary files start with this, so no listing mistakes them for a version.
TEMP_PREFIX = ".wucme-tmp-"
#: A temporary file older than this is a crashed writer's, whoever wrote it.
TEMP_MAX_AGE = 3600.0
_NODE = re.sub(r"[^A-Za-z0-9_.]", "_", socket.gethostname().split(".")[0])[:32] or "node"


def _writer_gone(name: str) -> bool:
    """True when temporary *name* was written on this node by a process that has ended."""
    node, _, rest = name[len(TEMP_PREFIX):].rpartition("-")[0].rpartition("-")
    if node != _NODE or not rest.isdigit():
        return False  # another node's, or an older naming: only its age tells
    pid = int(rest)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # alive, another user's
    return False


def purge_temps(directory: str | os.PathLike[str], now: float | None = None) -> int:
    """Remove crashed writers' temporary files from *directory*; return how many went."""
    now = time.time() if now is None else now
    removed = 0
    try:
        # Only the temporaries are kept: a repository of 100,000 certificates holds 300,000
        # other files, and this runs before every write.
        with os.scandir(directory) as it:
            entries = [e for e in it if e.name.startswith(TEMP_PREFIX)]
    except OSError:
        return 0
    for entry in entries:
        try:
            age = now - entry.stat(follow_symlinks=False).st_mtime
            if _writer_gone(entry.name) or age > TEMP_MAX_AGE:
                os.unlink(entry.path)
                removed += 1
        except OSError:
            continue  # renamed into place or removed meanwhile
    return removed


def fsync_dir(directory: str | os.PathLike[str]) -> None:
    """Flush a directory so a rename in it survives a crash (POSIX leaves that to us)."""
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_temp(directory: str | os.PathLike[str], data: bytes, mode: int, durable: bool = True,
               purge: bool = True) -> Path:
    """Write *data* to a new temporary file in *directory*, durable (unless not *durable*) and
    with *mode*; crashed writers' temporaries are purged first unless not *purge* (a writer
    that purged the directory once already).

    The file is created with O_EXCL and *mode* from the start, so key material is
    never readable by others even for an instant; fchmod then undoes the umask.  On
    any failure the temporary file is removed before the error propagates.
    """
    directory = Path(directory)
    if purge:
        purge_temps(directory)
    for _ in range(100):
        tmp = directory / f"{TEMP_PREFIX}{_NODE}-{os.getpid()}-{os.urandom(6).hex()}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), mode)
            break
        except FileExistsError:
            continue
    else:  # pragma: no cover - 100 collisions of 48 random bits
        raise FileExistsError(f"cannot create a temporary file in {directory}")
    try:
        fill_fd(fd, data, mode, durable)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return tmp


def fill_fd(fd: int, data: bytes, mode: int, durable: bool = True) -> None:
    """Give the open file *fd* its *mode* (undoing the umask), write all of *data*, fsync
    (when *durable*), and close it whatever happens."""
    try:
        os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)


def install_temp(tmp: Path, path: Path, before: Callable[[], T] | None = None,
                 durable: bool = True) -> T | None:
    """Rename the written temporary file *tmp* over *path* and fsync the directory (when
    *durable*); *before*
    runs just ahead of the rename (keeping the old file as a version).  On any failure the
    temporary file is removed and the old file is untouched.  Returns what *before* returned."""
    try:
        result = before() if before is not None else None
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    if durable:
        fsync_dir(path.parent)
    return result


def atomic_write(path: str | os.PathLike[str], data: bytes, mode: int = 0o644, *,
                 durable: bool = True, purge: bool = True) -> Path:
    """Replace *path* by a file holding *data*: temp in the same directory, fsync, rename, fsync dir.

    Not *durable*: no fsync, for a file that matters only while its writer runs (a challenge
    entry): readers still see the old file or the new one whole, and only a crash of the
    machine can leave it torn or empty.  Not *purge*: crashed writers' temporaries are left
    alone (write_temp)."""
    path = Path(path)
    install_temp(write_temp(path.parent, data, mode, durable, purge), path, durable=durable)
    return path
