"""Files as DCL sees them through RMS: file specifications to Linux paths, with RMS's errors, and back.

A specification with a device or directory (`SYS$LOGIN:X.COM`, `[.SUB]Y.TXT`) goes through
wucme's mapping (wucme.vms.filespec); a Linux path (anything with `/`) is used as it is, and a
bare name (`X.TXT`) is in the current directory.  What DCL shows of a file (F$SEARCH,
F$ENVIRONMENT("PROCEDURE"), F$PARSE) is its VMS specification: under a concealed device by
that device's name, else on SYS$DISK (the Linux root), with its version (`;1` for a file with
no earlier versions).  A name ODS-2 cannot spell (`a.b.c`) stays a Linux path.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from wucme.dclproc.status import DclSignal
from wucme.vms.condition import VmsError
from wucme.vms.filespec import is_vms_spec, parse_filespec, to_path, to_vms

__all__ = ["file_path", "is_wild", "open_error", "resolve_procedure", "rms_reason", "search", "vms_name", "RMS_FNF"]

RMS_FNF = "-RMS-E-FNF, file not found"
# wucme.vms's reasons for a specification that maps to no path, as RMS reports them.
_REASONS = {
    "TOOMANYLNAM": "-RMS-F-LNE, logical name translation count exceeded",
    "LNMLOOP": "-RMS-F-LNE, logical name translation count exceeded",
    "NOSUCHDEV": "-RMS-F-DEV, error in device name or inappropriate device type for operation",
    "BADDEVICE": "-RMS-F-DEV, error in device name or inappropriate device type for operation",
    "DIRUNDERFLOW": "-RMS-F-DIR, error in directory name",
    "NOSUCHVER": RMS_FNF,
    "NODENOTSUP": "-RMS-F-NOD, error in node name",
}


def rms_reason(exc: VmsError) -> str:
    """The RMS secondary message for a specification wucme.vms could not map."""
    return _REASONS.get(exc.ident, "-RMS-F-SYN, file specification syntax error")


def open_error(spec: str, kind: str, reason: str) -> DclSignal:
    """%DCL-E-OPENIN (or OPENOUT), error opening SPEC as input, with RMS's reason."""
    ident = "OPENIN" if kind == "input" else "OPENOUT"
    return DclSignal(ident, severity="E", text=f"error opening {spec.upper()} as {kind}", extra=(reason,))


def file_path(spec: str) -> Path:
    """The Linux path of a file a procedure names; VmsError for a specification that maps to none."""
    spec = spec.strip()
    if is_vms_spec(spec):
        return to_path(spec)
    return Path(os.path.expanduser(re.sub(r";[-0-9*]*\Z", "", spec)))


def resolve_procedure(spec: str) -> Path:
    """The file `@spec` runs: default type .COM, names matched case-insensitively.

    DclSignal OPENIN with RMS's reason (FNF, LNE for too many logical name levels, DEV) if none.
    """
    spec = spec.strip()
    if is_vms_spec(spec):
        try:
            if parse_filespec(spec).type is None:
                spec += ".COM"
            path = to_path(spec)
        except VmsError as exc:
            raise open_error(spec, "input", rms_reason(exc)) from None
        if path.is_file():
            return path
        raise open_error(spec, "input", RMS_FNF)
    found = _linux_procedure(Path(os.path.expanduser(spec)))
    if found is None:
        raise open_error(spec, "input", RMS_FNF)
    return found


def _linux_procedure(p: Path) -> Path | None:
    candidates = [p] if "." in p.name else [p.with_name(p.name + ".COM"), p.with_name(p.name + ".com"), p]
    for c in candidates:
        if c.is_file():
            return c
    try:
        names = {e.name.lower(): e for e in candidates[0].parent.iterdir()}
    except OSError:
        return None
    for c in candidates:
        hit = names.get(c.name.lower())
        if hit is not None and hit.is_file():
            return hit
    return None


def vms_name(path: str | os.PathLike[str]) -> str:
    """The VMS specification DCL shows for a Linux path (the path itself when ODS-2 cannot spell it)."""
    try:
        return to_vms(path)
    except (VmsError, OSError):
        return str(path)


# --- wildcard searches (F$SEARCH, DELETE) ----------------------------------------------------------

_HEAD = re.compile(r"((?:[A-Za-z0-9_$-]+::)?(?:[A-Za-z0-9_$-]+:)?)((?:\[[^\]]*\]|<[^>]*>)?)(.*)\Z", re.DOTALL)


def is_wild(spec: str) -> bool:
    return any(c in spec for c in "*%?") or "..." in spec


def _wild_rx(pattern: str) -> re.Pattern[str]:
    """VMS wildcards: `*` any run, `%` one character; names compare without case."""
    return re.compile("".join(".*" if c == "*" else "." if c == "%" else re.escape(c) for c in pattern),
                      re.IGNORECASE | re.DOTALL)


def search(spec: str) -> list[tuple[Path, str]]:
    """The files *spec* names, each as (Linux path, the specification DCL shows), in directory order.

    A Linux path (with `/`) is a glob.  A VMS specification may have `*` and `%` in its
    directory, name, type and version, and `...` in its directory; a missing version is the
    highest, `;*` every version; a missing type is the null type, as RMS reads a search
    (HELP Lexicals F$SEARCH: "does not supply defaults for a file name or type").
    Raises VmsError for a device or logical name that maps to no directory.
    """
    if "/" in spec:
        import glob

        path = os.path.expanduser(spec)
        hits = sorted(glob.glob(path)) if is_wild(path) else ([path] if os.path.exists(path) else [])
        return [(Path(h), vms_name(os.path.abspath(h))) for h in hits]
    m = _HEAD.fullmatch(spec.strip())
    if m is None:
        return []
    device, directory, tail = m.groups()
    if directory.startswith("<"):
        directory = "[" + directory[1:-1] + "]"
    found: list[tuple[Path, str]] = []
    for folder in _directories(device, directory, spec):
        found += _files(folder, tail)
    return found


def _directories(device: str, directory: str, spec: str) -> list[Path]:
    if not is_wild(directory):
        if not device and not directory:
            return [Path.cwd()]
        return [to_path(device + directory)]
    body = directory[1:-1]
    relative = body.startswith((".", "-"))  # [...] too: the default directory and those below it
    tokens = re.findall(r"\.\.\.|[^.]+", body)
    fixed: list[str] = []
    while tokens and not is_wild(tokens[0]):
        fixed.append(tokens.pop(0))
    if fixed:
        base = to_path(device + "[" + ("." if relative and fixed[0] != "-" else "") + ".".join(fixed) + "]")
    elif relative or not device:
        base = Path.cwd() if relative else Path("/")
    else:
        base = to_path(device + "[000000]")
    dirs = [base]
    for token in tokens:
        dirs = _descend(dirs, token)
    return dirs


def _descend(dirs: list[Path], token: str) -> list[Path]:
    out: list[Path] = []
    for d in dirs:
        if token == "...":  # this directory and every one below it
            for root, subdirs, _ in os.walk(d):
                subdirs.sort(key=str.upper)
                out.append(Path(root))
            continue
        rx = _wild_rx(token)
        try:
            names = sorted(os.listdir(d), key=str.upper)
        except OSError:
            continue
        out += [d / n for n in names if rx.fullmatch(n) and (d / n).is_dir()]
    return out


def _split_tail(tail: str) -> tuple[str, str, str | None]:
    """NAME.TYPE;VERSION into its patterns (version None when not given)."""
    base, semi, version = tail.partition(";")
    name, _, typ = base.partition(".")
    return name, typ, (version if semi else None)


def _entries(folder: Path) -> dict[tuple[str, str], list[tuple[int, str]]]:
    """(NAME, TYPE) -> [(version, file name on disk)] highest first; a directory is NAME.DIR;1."""
    from wucme.vms.files import versions

    out: dict[tuple[str, str], list[tuple[int, str]]] = {}
    try:
        names = os.listdir(folder)
    except OSError:
        return out
    for entry in names:
        base, semi, ver = entry.partition(";")
        if semi and not ver.isdigit():
            continue
        if (folder / entry).is_dir():
            out.setdefault((entry.upper(), "DIR"), []).append((1, entry))
            continue
        name, dot, typ = base.rpartition(".")
        if not dot:
            name, typ = base, ""
        number = int(ver) if semi else (versions(folder / base) or [(1, folder / base)])[0][0]
        out.setdefault((name.upper(), typ.upper()), []).append((number, entry))
    for group in out.values():
        group.sort(reverse=True)
    return out


def _pick(group: list[tuple[int, str]], version: str | None) -> list[tuple[int, str]]:
    if version is None or version in ("", "0"):
        return group[:1]
    if is_wild(version):
        rx = _wild_rx(version)
        return [g for g in group if rx.fullmatch(str(g[0]))]
    n = int(version) if re.fullmatch(r"-?[0-9]+", version) else None
    if n is None:
        return []
    if n < 0:
        return group[-n:-n + 1]
    return [g for g in group if g[0] == n]


def _files(folder: Path, tail: str) -> list[tuple[Path, str]]:
    name_pat, type_pat, version = _split_tail(tail)
    name_rx, type_rx = _wild_rx(name_pat), _wild_rx(type_pat)
    shown = vms_name(folder)
    out: list[tuple[Path, str]] = []
    for (name, typ), group in sorted(_entries(folder).items()):
        if not (name_rx.fullmatch(name) and type_rx.fullmatch(typ)):
            continue
        for number, entry in _pick(group, version):
            spec = f"{shown}{name}.{typ};{number}"
            if shown.startswith("/") or not re.fullmatch(r"[A-Z0-9_$-]*", name + typ):
                spec = str(folder / entry)  # ODS-2 cannot spell it: the Linux path
            out.append((folder / entry, spec))
    return out
