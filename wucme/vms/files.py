"""VMS-style file versions on Linux: `NAME.TYPE` is the highest version, `NAME.TYPE;N` the earlier ones.

Replacing a file first hard-links the current one to `NAME.TYPE;N` (N one above
the highest kept version), then renames the new file over `NAME.TYPE`, so a
reader always finds a whole file under the plain name, and a version keeps the
owner and mode (0600 for keys) of the file it was.  Versions beyond the keep
count (WUCME_KEEP, default 3) are purged, oldest first.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path

from wucme.vms.atomic import atomic_write, fsync_dir, install_temp, write_temp
from wucme.vms.lnm import trnlnm

__all__ = [
    "DEFAULT_KEEP",
    "atomic_write",
    "keep_count",
    "purge",
    "version_path",
    "versions",
    "write_versioned",
]

#: Earlier versions kept when WUCME_KEEP is not defined.
DEFAULT_KEEP = 3


def keep_count() -> int:
    """Earlier versions to keep: the logical name WUCME_KEEP (0 keeps none), else 3."""
    raw = trnlnm("WUCME_KEEP")
    if raw is None:
        return DEFAULT_KEEP
    try:
        keep = int(raw.strip())
        if keep < 0:
            raise ValueError
    except ValueError:
        # A typo must not stop a renewed certificate from being written.
        import logging  # only for this warning: the CGI challenge answer must not load it

        logging.getLogger("wucme.vms").warning("WUCME_KEEP %r is not a count; keeping %d versions", raw, DEFAULT_KEEP)
        return DEFAULT_KEEP
    return keep


def version_path(path: str | os.PathLike[str], version: int) -> Path:
    """The on-disk name of an earlier version: ``NAME.TYPE;N``."""
    path = Path(path)
    return path.with_name(f"{path.name};{version}")


def _earlier(path: Path) -> list[tuple[int, Path]]:
    rx = re.compile(re.escape(path.name) + r";([0-9]{1,9})")
    out = []
    try:
        with os.scandir(path.parent) as it:
            for entry in it:
                m = rx.fullmatch(entry.name)
                if m:
                    out.append((int(m.group(1)), path.parent / entry.name))
    except FileNotFoundError:
        return []
    out.sort(reverse=True)
    return out


def versions(path: str | os.PathLike[str]) -> list[tuple[int, Path]]:
    """Every version of *path*, highest first, as (version, file); the plain name is the highest.

    The plain file's number is one above the highest earlier version (1 when there
    is none): numbers are those of the versions on disk, as on VMS, restarting only
    when every earlier version has been purged.
    """
    path = Path(path)
    earlier = _earlier(path)
    if not path.exists():
        return earlier
    return [((earlier[0][0] + 1) if earlier else 1, path)] + earlier


def purge(path: str | os.PathLike[str], keep: int | None = None,
          earlier: list[tuple[int, Path]] | None = None, durable: bool = True) -> list[Path]:
    """PURGE /KEEP: remove the earlier versions beyond the *keep* newest; return those removed.

    *earlier* is the versions on disk when the caller already listed them; not *durable*: the
    caller fsyncs the directory itself (once for a set of files).
    """
    keep = keep_count() if keep is None else keep
    removed = []
    for _, old in (_earlier(Path(path)) if earlier is None else earlier)[max(keep, 0):]:
        try:
            os.unlink(old)
            removed.append(old)
        except FileNotFoundError:
            pass
    if removed and durable:
        fsync_dir(Path(path).parent)
    return removed


def _preserve(path: Path) -> list[tuple[int, Path]]:
    """Give the current file a version name as well, without ever removing the plain name.

    Returns the earlier versions now on disk, newest first (one directory listing serves the
    purge that follows: a repository of thousands of certificates lists slowly).
    """
    for _ in range(1000):
        earlier = _earlier(path)
        number = earlier[0][0] + 1 if earlier else 1
        target = version_path(path, number)
        try:
            os.link(path, target)
            return [(number, target)] + earlier
        except FileExistsError:
            continue  # a concurrent writer took that number
        except FileNotFoundError:
            return earlier  # nothing to preserve
        except OSError:  # no hard links on this file system: copy, keeping the mode
            perm = os.stat(path).st_mode & 0o7777
            data = path.read_bytes()
            try:
                fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, perm)
            except FileExistsError:
                continue
            with os.fdopen(fd, "wb") as f:
                os.fchmod(fd, perm)
                f.write(data)
                f.flush()
                os.fsync(fd)
            return [(number, target)] + earlier
    raise FileExistsError(f"cannot choose a version number for {path}")  # pragma: no cover


def write_versioned(
    path: str | os.PathLike[str], data: bytes, mode: int = 0o644, keep: int | None = None
) -> Path:
    """Replace *path* by *data* atomically, keeping the old file as a version and purging beyond *keep*.

    *mode* applies from creation (0o600 for key material).  If anything fails before
    the rename, the old file is untouched and no temporary file remains.
    """
    path = Path(path)
    keep = keep_count() if keep is None else keep
    earlier = install_temp(write_temp(path.parent, data, mode), path,
                           (lambda: _preserve(path)) if keep > 0 else None)
    purge(path, keep, earlier)
    return path


def write_versioned_set(
    files: list[tuple[str | os.PathLike[str], bytes, int]], keep: int | None = None
) -> list[Path]:
    """Replace several files together (path, data, mode): every one written to a temporary
    file first, then each renamed into place, keeping versions as write_versioned does.

    A file system that fills up (ENOSPC) or any other failure while writing leaves every old
    file untouched and no temporary file: a certificate and its key are replaced as a pair or
    not at all.  The renames need no space.  Each file is fsync'ed before its rename; each
    directory once after the last rename and purge (not once a file: a certificate's set
    is three files in one directory).
    """
    keep = keep_count() if keep is None else keep
    temps: list[Path] = []
    try:
        for path, data, mode in files:
            temps.append(write_temp(Path(path).parent, data, mode))
    except BaseException:
        for tmp in temps:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
        raise
    done: list[Path] = []
    for i, (tmp, (path, _, _)) in enumerate(zip(temps, files)):
        p = Path(path)
        try:
            earlier = install_temp(tmp, p, functools.partial(_preserve, p) if keep > 0 else None,
                                   durable=False)
        except BaseException:
            for rest in temps[i + 1:]:
                try:
                    os.unlink(rest)
                except FileNotFoundError:
                    pass
            _fsync_dirs(done)
            raise
        purge(p, keep, earlier, durable=False)
        done.append(p)
    _fsync_dirs(done)
    return done


def _fsync_dirs(paths: list[Path]) -> None:
    """fsync each directory holding one of *paths*, once (the renames and purges in it)."""
    for directory in dict.fromkeys(p.parent for p in paths):
        fsync_dir(directory)
