"""Foreign commands, MCR and RUN: which Linux program a VMS image specification runs.

The wucme image, named `WUCME` or `WUCME.EXE` on any device and directory (`$CGI_EXE:WUCME`,
`MCR CGI_EXE:WUCME`, `$WASD_EXE:[X]WUCME.EXE`), is this Python's `-m wucme`.  Any other
image is looked for through wucme's file specifications (logical names, ODS-2 names matched
case-insensitively) with and without the `.EXE` type; a Linux path is used as it is; a bare
name with no device or directory is looked up on PATH (VMS would take SYS$SYSTEM:).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from wucme.dclproc.scan import split_words, unquote
from wucme.dclproc.status import DclSignal

__all__ = ["image_argv", "is_wucme_image", "command_argv"]


def _image_name(spec: str) -> str:
    """The file name of an image specification, without type and version, upper-cased."""
    s = spec.strip()
    if "/" in s:
        name = Path(s).name
    else:
        name = s.rsplit(":", 1)[-1]
        name = name.rsplit("]", 1)[-1].rsplit(">", 1)[-1]
    name = name.split(";", 1)[0]
    if name.upper().endswith(".EXE"):
        name = name[:-4]
    return name.upper()


def is_wucme_image(spec: str) -> bool:
    return _image_name(spec) == "WUCME"


def _not_found(spec: str, where: str) -> DclSignal:
    return DclSignal("ACTIMAGE", text=f"error activating image {spec.upper()}",
                     extra=(f"-CLI-E-IMAGEFNF, image file not found {where}",))


def _executable(path: Path) -> Path | None:
    candidates = [path]
    if path.suffix.upper() == ".EXE":
        candidates.append(path.with_suffix(""))
    else:
        candidates.append(path.with_name(path.name + ".EXE"))
    for c in candidates:
        for variant in (c, c.with_name(c.name.lower())):
            if variant.is_file() and os.access(variant, os.X_OK):
                return variant
    return None


def image_argv(spec: str) -> list[str]:
    """The argv prefix that runs the image *spec* on Linux (DclSignal ACTIMAGE when none)."""
    spec = spec.strip()
    if not spec:
        raise _not_found(spec, "(no image named)")
    if is_wucme_image(spec):
        return [sys.executable, "-m", "wucme"]
    if "/" in spec:
        found = _executable(Path(os.path.expanduser(spec)))
        if found is None:
            raise _not_found(spec, spec)
        return [str(found)]
    if not any(c in spec for c in ":[<"):
        bare = spec.split(";", 1)[0]
        if bare.upper().endswith(".EXE"):
            bare = bare[:-4]
        for name in (bare, bare.lower()):
            hit = shutil.which(name)
            if hit:
                return [hit]
        raise _not_found(spec, f"SYS$SYSTEM:{bare.upper()}.EXE (PATH)")
    from wucme.vms.filespec import to_path
    from wucme.vms.condition import VmsError

    try:
        path = to_path(spec)
    except VmsError as exc:
        raise _not_found(spec, str(exc)) from None
    found = _executable(path)
    if found is None:
        raise _not_found(spec, str(path))
    return [str(found)]


def command_argv(rest: str) -> list[str]:
    """The rest of a foreign command line as the C run-time library's argv: blank-separated
    words, quotes removed (`""` inside quotes is a quote).  Case is kept, as Linux needs."""
    return [unquote(w) for w in split_words(rest)]
