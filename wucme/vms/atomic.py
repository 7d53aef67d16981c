"""Atomic file replacement: a reader sees the old file or the new one, never a part."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

__all__ = ["atomic_write", "install_temp", "write_temp", "fsync_dir", "TEMP_PREFIX"]

#: Temporary files start with this, so no listing mistakes them for a version.
TEMP_PREFIX = ".wucme-tmp-"


def fsync_dir(directory: str | os.PathLike[str]) -> None:
    """Flush a directory so a rename in it survives a crash (POSIX leaves that to us)."""
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_temp(directory: str | os.PathLike[str], data: bytes, mode: int) -> Path:
    """Write *data* to a new temporary file in *directory*, durable and with *mode*.

    The file is created with O_EXCL and *mode* from the start, so key material is
    never readable by others even for an instant; fchmod then undoes the umask.  On
    any failure the temporary file is removed before the error propagates.
    """
    directory = Path(directory)
    for _ in range(100):
        tmp = directory / f"{TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(6)}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), mode)
            break
        except FileExistsError:
            continue
    else:  # pragma: no cover - 100 collisions of 48 random bits
        raise FileExistsError(f"cannot create a temporary file in {directory}")
    try:
        try:
            os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return tmp


def install_temp(tmp: Path, path: Path, before: Callable[[], T] | None = None) -> T | None:
    """Rename the written temporary file *tmp* over *path* and fsync the directory; *before*
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
    fsync_dir(path.parent)
    return result


def atomic_write(path: str | os.PathLike[str], data: bytes, mode: int = 0o644) -> Path:
    """Replace *path* by a file holding *data*: temp in the same directory, fsync, rename, fsync dir."""
    path = Path(path)
    install_temp(write_temp(path.parent, data, mode), path)
    return path
