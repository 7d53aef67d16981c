"""Files: F$SEARCH, F$PARSE, F$FILE_ATTRIBUTES and F$DIRECTORY (DCL Dictionary, each by its name).

What they return are VMS file specifications (wucme.dclproc.rms.vms_name): a concealed device
by its logical name, anything else on SYS$DISK (the Linux root), with a version, so the usual
F$PARSE and F$ELEMENT(0, ";", ...) idioms work; a name ODS-2 cannot spell stays a Linux path.
"""

from __future__ import annotations

import datetime
import os
import re
import stat
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from wucme.dclproc.lexicals.args import Args, keyword, number, text
from wucme.dclproc.lexicals.times import absolute
from wucme.dclproc.rms import is_wild, rms_reason, search, vms_name
from wucme.dclproc.status import DclSignal
from wucme.dclproc.values import Value
from wucme.vms import lnm
from wucme.vms.condition import VmsError
from wucme.vms.filespec import to_path, to_vms

if TYPE_CHECKING:
    from wucme.dclproc.interp import Interpreter

__all__ = ["FUNCTIONS"]


def _rms_signal(exc: VmsError) -> DclSignal:
    reason = rms_reason(exc)  # "-RMS-F-LNE, text": signalled as a message of its own
    head, _, message = reason[1:].partition(", ")
    facility, severity, ident = head.split("-")
    return DclSignal(ident, facility=facility, severity=severity, text=message)


def _found(spec: str) -> list[str]:
    try:
        return [shown for _, shown in search(spec)]
    except VmsError as exc:
        raise _rms_signal(exc) from None


def f_search(ctx: Interpreter, args: Args) -> Value:
    """The next file a wildcard specification names in this stream, "" after the last one.

    A stream (the second argument, default 0) remembers its place while the specification
    stays the same; a new specification starts again (HELP Lexicals F$SEARCH).  A
    specification without wildcards names at most one file, returned every time.
    """
    spec, stream = text(args, 0), number(args, 1, 0)
    if not spec.strip():
        return ""
    if not is_wild(spec):
        hits = _found(spec)
        return hits[0] if hits else ""
    context = ctx.searches.get(stream)
    if context is None or context[0] != spec:
        context = (spec, _found(spec))
        ctx.searches[stream] = context
    if not context[1]:
        del ctx.searches[stream]
        return ""
    return context[1].pop(0)


# --- F$PARSE ------------------------------------------------------------------------------------

_PARTS = re.compile(
    r"(?:(?P<node>[A-Za-z0-9_$-]+)::)?(?:(?P<device>[A-Za-z0-9_$-]+):)?"
    r"(?P<directory>\[[^\[\]<>]*\]|<[^\[\]<>]*>)?"
    r"(?P<name>[A-Za-z0-9_$*%-]*)(?P<type>\.[A-Za-z0-9_$*%-]*)?(?P<version>[;.][-0-9*]*)?")
_FIELDS = ("NODE", "DEVICE", "DIRECTORY", "NAME", "TYPE", "VERSION")


@dataclass(frozen=True)
class Parts:
    """A file specification's fields as F$PARSE returns them (None: not given)."""

    node: str | None = None  # NODE::
    device: str | None = None  # DEV:
    directory: str | None = None  # [DIR]
    name: str | None = None
    type: str | None = None  # .TYPE
    version: str | None = None  # ;N

    def text(self) -> str:
        return "".join(p or "" for p in (self.node, self.device, self.directory, self.name, self.type,
                                          self.version))


def parts(spec: str) -> Parts | None:
    """The fields of *spec*, upper-cased; None for a specification that is not one."""
    m = _PARTS.fullmatch(spec.strip())
    if m is None:
        return None
    g = {k: (v.upper() if v else None) for k, v in m.groupdict().items()}
    directory = g["directory"]
    if directory and directory.startswith("<"):
        directory = "[" + directory[1:-1] + "]"
    return Parts(g["node"] and g["node"] + "::", g["device"] and g["device"] + ":", directory, g["name"],
                 g["type"], g["version"] and ";" + g["version"][1:])


def _relative(directory: str) -> bool:
    body = directory[1:-1]
    return body == "" or body.startswith((".", "-"))


def join_directory(relative: str, base: str) -> str:
    """`[.SUB]`, `[-]`, `[-.X]` or `[]` applied to the absolute directory *base* (each `-` goes up one)."""
    stack = [p for p in base[1:-1].split(".") if p and p != "000000"]
    for token in relative[1:-1].lstrip(".").replace("-", ".-.").split("."):
        if token == "-":
            if stack:
                stack.pop()
        elif token:
            stack.append(token)
    return "[" + (".".join(stack) or "000000") + "]"


def _logical_file_name(p: Parts) -> Parts:
    """A bare name that is a logical name stands for its translation (RMS translates it)."""
    if p.name is None or any((p.node, p.device, p.directory, p.type, p.version)):
        return p
    entry = lnm.lookup(p.name)
    if entry is None:
        return p
    translated = parts(entry.values[0])
    return translated if translated is not None else p


def _shown_directory(path: Path, conceal: bool) -> Parts | None:
    """The device and directory DCL shows for a Linux directory (None when ODS-2 cannot spell it)."""
    shown = vms_name(path) if conceal else to_vms(path, devices=["SYS$DISK"])
    p = parts(shown)
    return None if p is None or shown.startswith("/") else Parts(device=p.device, directory=p.directory)


def _default_directory() -> Parts:
    """The process default: the current directory as DCL shows it (SYS$DISK:[HOME.USER])."""
    return _shown_directory(Path.cwd(), True) or Parts()


def _place(p: Parts, default: Parts) -> Parts:
    """Device and directory, as text only (SYNTAX_ONLY): the spec's, else the defaults'."""
    process = _default_directory()
    device = p.device or default.device or process.device
    directory = p.directory or default.directory or process.directory or "[000000]"
    if _relative(directory):
        base = next((d for d in (default.directory, process.directory) if d and not _relative(d)), "[000000]")
        directory = join_directory(directory, base)
    return Parts(device=device, directory=directory)


def _path(device: str | None, directory: str | None) -> Path | None:
    spec = (device or "") + (directory or "")
    try:
        return to_path(spec) if spec else Path.cwd()
    except VmsError:
        return None


def _resolve(p: Parts, default: Parts, conceal: bool) -> Parts | None:
    """Device and directory of an existing directory, translated as RMS does (None: there is none).

    A device alone names the directory its logical name gives; a relative directory is
    taken from the default spec's directory, else the current one.
    """
    device = p.device or default.device
    directory = p.directory if p.directory is not None or p.device else default.directory
    if directory is not None and _relative(directory):
        inherited = default.directory if p.device is None and default.directory and \
            not _relative(default.directory) else None
        base_path = _path(device, inherited)
        base = _shown_directory(base_path, True) if base_path is not None else None
        if base is None or base.directory is None:
            return None
        device, directory = base.device, join_directory(directory, base.directory)
    if directory is not None and is_wild(directory):
        return Parts(device=device or _default_directory().device, directory=directory)
    path = _path(device, directory)
    if path is None or not path.is_dir():
        return None
    return _shown_directory(path, conceal)


def f_parse(ctx: Interpreter, args: Args) -> Value:
    """F$PARSE(filespec [,default-spec] [,related-spec] [,field] [,SYNTAX_ONLY|NO_CONCEAL]).

    The full specification (or one field) with the defaults applied: the default spec's,
    the related spec's name and type, then the process default device and directory.
    Unless SYNTAX_ONLY, logical names are translated (a concealed device keeps its name
    unless NO_CONCEAL) and "" is returned when the directory does not exist.
    """
    field = keyword(args, 3, "F$PARSE", _FIELDS) if text(args, 3).strip() else ""
    how = keyword(args, 4, "F$PARSE", ("SYNTAX_ONLY", "NO_CONCEAL")) if text(args, 4).strip() else ""
    spec = text(args, 0)
    if "/" in spec:
        spec = vms_name(os.path.abspath(os.path.expanduser(re.sub(r";[-0-9*]*\Z", "", spec))))
        if spec.startswith("/"):
            return ""
    given = [parts(s) if s.strip() else Parts() for s in (spec, text(args, 1), text(args, 2))]
    p, default, related = given
    if p is None or default is None or related is None:
        return ""
    if how != "SYNTAX_ONLY":
        p = _logical_file_name(p)
    if how == "SYNTAX_ONLY" or p.node:
        place: Parts | None = _place(p, default)
    else:
        place = _resolve(p, default, conceal=how != "NO_CONCEAL")
    if place is None:
        return ""
    result = Parts(p.node or default.node, place.device, place.directory,
                   p.name or default.name or related.name or "",
                   p.type or default.type or related.type or ".",
                   p.version or default.version or ";")
    return result.text() if not field else getattr(result, field.lower()) or ""


# --- F$FILE_ATTRIBUTES and F$DIRECTORY ------------------------------------------------------------

_FILE_ITEMS = ("ALQ", "BDT", "BKS", "BLS", "CBT", "CDT", "CTG", "DEQ", "DID", "DIRECTORY", "DVI", "EDT",
               "EOF", "ERASE", "FFB", "FID", "FSZ", "GBC", "GRP", "KNOWN", "LOCKED", "LRL", "MBM",
               "MRN", "MRS", "NOA", "NOK", "ORG", "PRO", "PVN", "RAT", "RCK", "RDT", "RFM", "RVN",
               "UIC", "VERLIMIT", "WCK")
_FILE_SUPPORTED = ("ALQ", "CDT", "DIRECTORY", "EDT", "EOF", "FFB", "FID", "GRP", "MRS", "ORG", "PRO", "RAT",
                   "RDT", "RFM", "UIC")


def _protection(mode: int) -> str:
    def rights(bits: int, owner: bool) -> str:
        out = ("R" if bits & 4 else "") + ("W" if bits & 2 else "") + ("E" if bits & 1 else "")
        return out + ("D" if owner and bits & 2 else "")

    return (f"SYSTEM=RWED, OWNER={rights((mode >> 6) & 7, True)}, GROUP={rights((mode >> 3) & 7, False)}, "
            f"WORLD={rights(mode & 7, False)}")


def _stamp(seconds: float) -> str:
    return absolute(datetime.datetime.fromtimestamp(seconds), pad=False)


def f_file_attributes(ctx: Interpreter, args: Args) -> Value:
    """One attribute of a file: size (EOF, ALQ, FFB in 512-byte blocks), dates, owner, protection."""
    item = keyword(args, 1, "F$FILE_ATTRIBUTES", _FILE_ITEMS, _FILE_SUPPORTED)
    found = search(text(args, 0)) if text(args, 0).strip() else []
    if not found:
        raise DclSignal("FNF", facility="RMS", severity="E", text="file not found", detail=text(args, 0).upper())
    st = found[0][0].stat()
    blocks = (st.st_size + 511) // 512
    values: dict[str, Value] = {
        "ALQ": blocks, "EOF": blocks, "FFB": st.st_size % 512, "MRS": 0,
        "CDT": _stamp(st.st_ctime), "RDT": _stamp(st.st_mtime), "EDT": "",
        "DIRECTORY": "TRUE" if stat.S_ISDIR(st.st_mode) else "FALSE",
        "FID": f"({st.st_ino},0,0)", "GRP": st.st_gid, "UIC": f"[{st.st_gid:o},{st.st_uid:o}]",
        "ORG": "SEQ", "RFM": "STMLF", "RAT": "CR", "PRO": _protection(st.st_mode),
    }
    return values[item]


def f_directory(ctx: Interpreter, args: Args) -> Value:
    """The current default directory, `[HOME.USER]`, as DCL shows it."""
    return _default_directory().directory or str(Path.cwd())


FUNCTIONS = {
    "F$SEARCH": (f_search, 1, 2), "F$PARSE": (f_parse, 1, 5), "F$FILE_ATTRIBUTES": (f_file_attributes, 2, 2),
    "F$DIRECTORY": (f_directory, 0, 0),
}
