"""VMS file specifications (`DEV:[DIR.SUB]NAME.TYPE;VERSION`): parsing, mapping to Linux paths and back.

Mapping rules (docs/files.md):
- A string containing `/`, or with none of `:` `[` `<`, is a Linux path and is used as is.
- The device is translated through logical names.  A value that is a Linux path
  (`/srv/wasd` or `/srv/wasd/`) is the device's root directory, `[000000]`.  A value
  `DEV:[DIR.]` (rooted, VMS's concealed-device form) roots it at that directory of
  DEV; a value `DEV:[DIR]` (not rooted) behaves as on VMS: `[DIR]` is only the
  default, an explicit directory replaces it.  A value `OTHER:` or `OTHER` is
  translated again (at most MAX_DEPTH levels).  A search list gives one candidate
  per element; to_path picks the first whose file exists, else the first.
- Without a device, `[A.B]` is `/a/b` and `[.A]`, `[-]`, `[]` are relative to the
  current directory.
- Names are matched case-insensitively against what exists; what does not exist
  yet is lower case for directories and upper case (ODS-2) for files.
- `;N` names an earlier version (files.versions), `;0`, `;` or none the highest,
  `;-N` the one N below the highest.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from wucme.vms.dcllex import SPEC as _SPEC, WORD as _WORD, is_vms_spec
from wucme.vms.files import version_path, versions
from wucme.vms.lnm import MAX_DEPTH, MAX_LOOKUPS, concealed_devices, lookup
from wucme.vms.condition import VmsError

__all__ = ["FileSpec", "FileSpecError", "dir_path", "is_vms_spec", "parse_filespec", "to_path", "to_paths",
           "to_vms"]

_COMPONENT = re.compile(rf"{_WORD}+")
_DEVICE_ONLY = re.compile(rf"({_WORD}+):?")


class FileSpecError(VmsError):
    """A file specification that cannot be parsed or mapped to a path."""

    ident = "BADFILESPEC"


@dataclass(frozen=True)
class FileSpec:
    """A parsed specification; parts are upper-cased as ODS-2 does.

    *directory* is None when the spec has none; otherwise its components, where a
    *relative* directory (``[.A]``, ``[-]``, ``[]``) may start with ``-`` elements.
    *rooted* marks ``[A.]``, the form of a concealed root's value.  *type* is None
    without a dot, *version* None without ``;`` (0 for ``;`` alone: the highest).
    """

    node: str | None
    device: str | None
    directory: tuple[str, ...] | None
    name: str
    type: str | None
    version: int | None
    relative: bool = False
    rooted: bool = False

    def __str__(self) -> str:
        out = f"{self.node}::" if self.node else ""
        out += f"{self.device}:" if self.device else ""
        if self.directory is not None:
            if self.relative:
                body = _relative_body(self.directory)
            else:
                body = ".".join(self.directory) or "000000"
            out += f"[{body}{'.' if self.rooted else ''}]"
        out += self.name
        if self.type is not None:
            out += f".{self.type}"
        if self.version is not None:
            out += f";{self.version if self.version else ''}"
        return out

    @property
    def filename(self) -> str:
        """``NAME.TYPE`` as it is stored on Linux (no dot when there is no type)."""
        return f"{self.name}.{self.type}" if self.type else self.name


def _relative_body(parts: tuple[str, ...]) -> str:
    ups = 0
    while ups < len(parts) and parts[ups] == "-":
        ups += 1
    rest = ".".join(parts[ups:])
    return "-" * ups + ("." + rest if rest else "")


def _parse_dir_body(body: str, spec: str) -> tuple[tuple[str, ...], bool, bool]:
    """One bracket's content -> (components, relative, rooted)."""
    rooted = len(body) > 1 and body.endswith(".")
    if rooted:
        body = body[:-1]
    if body == "":
        return (), True, rooted
    relative = body[0] in ".-"
    m = re.match(r"-+", body)
    if m:  # "--.A" is "-.-.A"
        rest = body[m.end():]
        if rest and not rest.startswith("."):
            raise FileSpecError(f"invalid directory in {spec!r}")
        body = ".".join("-" * len(m.group(0))) + rest
    elif body[0] == ".":
        body = body[1:]
    parts: list[str] = []
    for i, c in enumerate(body.split(".")):
        if c == "-" and relative and all(p == "-" for p in parts):
            parts.append("-")
        elif c == "000000" and i == 0 and not relative:
            continue
        elif not _COMPONENT.fullmatch(c) or set(c) == {"-"}:
            raise FileSpecError(f"invalid directory name {c!r} in {spec!r}")
        else:
            parts.append(c.upper())
    return tuple(parts), relative, rooted


def parse_filespec(spec: str) -> FileSpec:
    """Parse ``NODE::DEV:[DIR.SUB]NAME.TYPE;VERSION`` (any part optional; ``<>`` as ``[]``)."""
    m = _SPEC.fullmatch(spec.strip())
    if m is None or "/" in spec:
        raise FileSpecError(f"invalid file specification {spec!r}")
    directory: tuple[str, ...] | None = None
    relative = rooted = False
    brackets = re.findall(r"[\[<]([^\[\]<>]*)[\]>]", m.group("dir"))
    if brackets:
        comps, relative, rooted = _parse_dir_body(brackets[0], spec)
        if len(brackets) == 2:  # [ROOT.][DIR]: a rooted directory and one below it
            more, rel2, rooted2 = _parse_dir_body(brackets[1], spec)
            if not rooted or relative or rel2:
                raise FileSpecError(f"invalid directory in {spec!r}")
            comps, rooted = comps + more, rooted2
        directory = comps
    version = m.group("version")
    return FileSpec(
        node=m.group("node").upper() if m.group("node") else None,
        device=m.group("device").upper() if m.group("device") else None,
        directory=directory,
        name=m.group("name").upper(),
        type=m.group("type").upper() if m.group("type") is not None else None,
        version=None if version is None else int(version) if version not in ("", "-") else 0,
        relative=relative,
        rooted=rooted,
    )


# --- to Linux ---------------------------------------------------------------------------


def _ci_join(base: Path, comp: str, is_dir: bool) -> Path:
    """*base*/*comp*, matching an existing entry whatever its case; new ones lower (dirs) or upper (files)."""
    preferred = comp.lower() if is_dir else comp.upper()
    for cand in dict.fromkeys((preferred, comp)):
        if os.path.lexists(base / cand):
            return base / cand
    try:
        names = sorted(n for n in os.listdir(base) if n.lower() == comp.lower())
    except OSError:
        names = []
    return base / (names[0] if names else preferred)


def _walk(root: Path, parts: Iterable[str], spec: str) -> Path:
    path = root
    for comp in parts:
        if comp == "-":
            if path == root:
                raise FileSpecError(f"{spec!r} goes above the top of its device", "DIRUNDERFLOW")
            path = path.parent
        else:
            path = _ci_join(path, comp, is_dir=True)
    return path


def _apply_dir(root: Path, default: tuple[str, ...], fs: FileSpec, spec: str) -> Path:
    if fs.directory is None:
        parts = default
    elif fs.relative:
        parts = default + fs.directory
    else:
        parts = fs.directory
    # "-" is resolved on the component list so it cannot climb above the root.
    stack: list[str] = []
    for p in parts:
        if p == "-":
            if not stack:
                raise FileSpecError(f"{spec!r} goes above the top of its device", "DIRUNDERFLOW")
            stack.pop()
        else:
            stack.append(p)
    return _walk(root, stack, spec)


def _device_roots(device: str, chain: list[str],
                  budget: list[int] | None = None) -> list[tuple[Path, tuple[str, ...]]]:
    """(root directory, default directory components) for each element of *device*'s translation
    (at most MAX_LOOKUPS lookups in all: search lists of search lists grow as a tree)."""
    budget = [MAX_LOOKUPS] if budget is None else budget
    budget[0] -= 1
    if budget[0] < 0:
        raise FileSpecError(f"translating device {chain[0] if chain else device}: takes more than "
                            f"{MAX_LOOKUPS} lookups (search lists of search lists)", "TOOMANYLNAM")
    entry = lookup(device)
    if entry is None:
        raise FileSpecError(f"no such device {device}: (define it as a logical name)", "NOSUCHDEV")
    name = entry.name.upper()
    if name in chain:
        raise FileSpecError(f"logical name loop: {' -> '.join(chain + [name])}", "LNMLOOP")
    if len(chain) >= MAX_DEPTH:
        raise FileSpecError(f"more than {MAX_DEPTH} levels of device translation for {chain[0]}:", "TOOMANYLNAM")
    chain = chain + [name]
    out: list[tuple[Path, tuple[str, ...]]] = []
    for value in entry.values:
        value = value.strip()
        if value.startswith("/"):
            out.append((Path(value), ()))
            continue
        m = _DEVICE_ONLY.fullmatch(value)
        if m:
            out += _device_roots(m.group(1).upper(), chain, budget)
            continue
        try:
            sub = parse_filespec(value)
        except FileSpecError:
            sub = None
        if sub is None or sub.device is None or sub.node or sub.name or sub.type is not None \
                or sub.directory is None or sub.relative:
            raise FileSpecError(f"device {name}: translates to {value!r}, which names no directory", "BADDEVICE")
        for root, _default in _device_roots(sub.device, chain, budget):
            if sub.rooted:  # DEV:[DIR.]: a new root
                out.append((_walk(root, sub.directory, value), ()))
            else:  # DEV:[DIR]: a default directory on DEV
                out.append((root, sub.directory))
    return out


def to_paths(spec: str | FileSpec) -> list[Path]:
    """Every Linux path *spec* may name, one per element of its device's search list."""
    if isinstance(spec, str):
        if not is_vms_spec(spec):
            return [Path(spec)]
        fs = parse_filespec(spec)
        text = spec
    else:
        fs, text = spec, str(spec)
    if fs.node:
        raise FileSpecError(f"remote node {fs.node}:: is not supported in {text!r}", "NODENOTSUP")
    bases: list[tuple[Path, tuple[str, ...]]]
    if fs.device is None:
        bases = [(Path.cwd(), ()) if (fs.directory is None or fs.relative) else (Path("/"), ())]
    else:
        bases = _device_roots(fs.device, [])
    out = []
    for root, default in bases:
        directory = _apply_dir(root, default, fs, text)
        if not fs.filename:
            out.append(directory)
            continue
        plain = _ci_join(directory, fs.filename, is_dir=False)
        out.append(_pick_version(plain, fs.version, text))
    return out


def _pick_version(plain: Path, version: int | None, spec: str) -> Path:
    if not version:
        return plain
    have = versions(plain)
    if version > 0:
        for n, p in have:
            if n == version:
                return p
        return version_path(plain, version)
    if -version < len(have):
        return have[-version][1]
    raise FileSpecError(f"no version {version} of {spec!r}", "NOSUCHVER")


def to_path(spec: str | FileSpec) -> Path:
    """The Linux path of *spec*: the first candidate that exists, else the first (where to create it)."""
    cands = to_paths(spec)
    for cand in cands:
        if os.path.lexists(cand):
            return cand
    return cands[0]


# --- back to VMS, for display -----------------------------------------------------------------


def to_vms(path: str | os.PathLike[str], devices: Iterable[str] | None = None, version: bool = True) -> str:
    """``DEV:[DIR]NAME.TYPE;V`` for a path under a concealed device, else the path itself.

    *devices* are the device names to try (default: every CONCEALED logical name);
    the one with the longest root wins.  Names that ODS-2 cannot spell (several
    dots, other characters) leave the path as it is.
    """
    real = Path(os.path.realpath(path))
    names = list(devices) if devices is not None else [e.name for e in concealed_devices()]
    best: tuple[int, str, Path] | None = None
    for name in names:
        try:
            roots = to_paths(f"{name}:[000000]")
        except VmsError:
            continue
        for root in roots:
            r = Path(os.path.realpath(root))
            if (real == r or r in real.parents) and (best is None or len(r.parts) > best[0]):
                best = (len(r.parts), name.upper(), r)
    if best is None:
        return str(path)
    _, dev, root = best
    rel = real.relative_to(root).parts
    is_dir = real.is_dir()
    dirs, leaf = (rel, None) if is_dir else (rel[:-1], rel[-1])
    if not all(_COMPONENT.fullmatch(d) for d in dirs):
        return str(path)
    out = f"{dev}:[{'.'.join(d.upper() for d in dirs) or '000000'}]"
    if leaf is None:
        return out
    base, _, ver = leaf.partition(";")
    name, dot, typ = base.rpartition(".") if "." in base else (base, "", "")
    if not re.fullmatch(rf"{_WORD}*", name) or not re.fullmatch(rf"{_WORD}*", typ) or \
            (ver and not ver.isdigit()) or not (name or typ):
        return str(path)
    out += f"{name.upper()}.{typ.upper()}"
    if ver:
        out += f";{int(ver)}"
    elif version:
        have = versions(real)
        if have and have[0][1] == real:
            out += f";{have[0][0]}"
    return out


def dir_path(spec: str) -> Path:
    """A directory from a Linux path or a VMS directory spec (`ELSE:[WHERE]`)."""
    return to_path(spec) if is_vms_spec(spec) else Path(spec)
