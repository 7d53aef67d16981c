"""Files and channels: OPEN, CLOSE, READ, WRITE, INQUIRE and DELETE."""

from __future__ import annotations

import glob
import os
import re
from pathlib import Path
from typing import IO, TYPE_CHECKING

from wucme.dclproc.commands.common import need, string_value
from wucme.dclproc.commands.symbols import delete_symbol
from wucme.dclproc.rms import RMS_FNF, file_path, is_wild, open_error, rms_reason, search
from wucme.dclproc.scan import QualSpec, parse_args, split_top, unquote
from wucme.dclproc.status import CLI_NORMAL, SS_NORMAL, DclSignal, signal
from wucme.dclproc.values import to_str
from wucme.vms.condition import VmsError

if TYPE_CHECKING:
    from wucme.dclproc.interp import Interpreter

__all__ = ["VERBS", "open_file"]

_RMS = {
    FileNotFoundError: RMS_FNF,
    PermissionError: "-RMS-E-PRV, insufficient privilege or file protection violation",
    IsADirectoryError: "-RMS-E-FLK, file currently locked by another user",
}


def _rms(exc: OSError) -> str:
    for cls, text in _RMS.items():
        if isinstance(exc, cls):
            return text
    return f"-RMS-E-ACC, ACP file access failed ({exc.strerror})"


def open_file(spec: str, mode: str) -> IO[str]:
    """Open a file a procedure names; OPENIN / OPENOUT with RMS's reason when it cannot be."""
    kind = "input" if mode == "r" else "output"
    try:
        return open(file_path(spec), mode, encoding="utf-8")
    except VmsError as exc:
        raise open_error(spec, kind, rms_reason(exc)) from None
    except OSError as exc:
        raise open_error(spec, kind, _rms(exc)) from None


def _channel_name(word: str) -> str:
    return unquote(word).upper().rstrip(":")


_QUALS = r"(?:/[A-Za-z_]+(?:=[^\s/]*)?)*"
# WRITE [/qualifiers] channel[/qualifiers] expression[,...]
_WRITE_HEAD = re.compile(r"(\s*" + _QUALS + r")\s*([A-Za-z0-9$_:]+)(" + _QUALS + r")\s*(.*)\Z", re.DOTALL)


def _write(interp: Interpreter, rest: str) -> int | None:
    head = re.match(r"\s*&[A-Za-z$_][A-Za-z0-9$_]*", rest)
    if head:  # the channel is a parameter: & substitution applies to it
        rest = interp.ampersands(head.group(0)) + rest[head.end():]
    m = _WRITE_HEAD.match(rest)
    if not m or not m.group(2) or not m.group(4).strip():
        raise signal("INSFPRM")
    channel = _channel_name(m.group(2))
    text = "".join(to_str(interp.evaluate(item)) for item in split_top(m.group(4)))
    if channel in ("SYS$OUTPUT", "TT", "SYS$COMMAND"):
        interp.out(text)
    elif channel == "SYS$ERROR":
        interp.stdout.flush()
        interp.stderr.write(text + "\n")
        interp.stderr.flush()
    else:
        stream = interp.channels.get(channel)
        if stream is None or not stream.writable():
            raise signal("IVCHAN", channel)
        stream.write(text + "\n")
    return CLI_NORMAL


_OPEN_QUALS = (QualSpec("READ"), QualSpec("WRITE"), QualSpec("APPEND"), QualSpec("SHARE", "optional"),
               QualSpec("ERROR", "required"))


def _open(interp: Interpreter, rest: str) -> int | None:
    parsed = parse_args(interp.ampersands(rest), _OPEN_QUALS)
    need(parsed.params, 2, 2)
    channel = _channel_name(parsed.params[0])
    spec = unquote(parsed.params[1])
    mode = "a" if parsed.quals.get("APPEND") else "w" if parsed.quals.get("WRITE") else "r"
    try:
        stream = open_file(spec, mode)
    except DclSignal:
        label = parsed.quals.get("ERROR")
        if isinstance(label, str):
            interp.goto(label)
            return None
        raise
    old = interp.channels.pop(channel, None)
    if old is not None:
        old.close()
    interp.channels[channel] = stream
    return CLI_NORMAL


def _close(interp: Interpreter, rest: str) -> int | None:
    parsed = parse_args(interp.ampersands(rest), (QualSpec("ERROR", "required"), QualSpec("DISPOSITION", "required")))
    need(parsed.params, 1, 1)
    stream = interp.channels.pop(_channel_name(parsed.params[0]), None)
    if stream is None:
        raise signal("IVCHAN", _channel_name(parsed.params[0]))
    stream.close()
    return CLI_NORMAL


_READ_QUALS = (QualSpec("END_OF_FILE", "required"), QualSpec("ERROR", "required"),
               QualSpec("PROMPT", "required"))


def _read(interp: Interpreter, rest: str) -> int | None:
    parsed = parse_args(interp.ampersands(rest), _READ_QUALS)
    need(parsed.params, 2, 2)
    channel = _channel_name(parsed.params[0])
    name = unquote(parsed.params[1])
    if channel in ("SYS$INPUT", "SYS$COMMAND"):
        prompt = parsed.quals.get("PROMPT")
        if isinstance(prompt, str):
            interp.stdout.write(unquote(prompt))
            interp.stdout.flush()
        line = interp.stdin.readline() if interp.stdin is not None else ""
    else:
        stream = interp.channels.get(channel)
        if stream is None or not stream.readable():
            raise signal("IVCHAN", channel)
        line = stream.readline()
    if line == "":
        label = parsed.quals.get("END_OF_FILE")
        if isinstance(label, str):
            interp.goto(label)
            return CLI_NORMAL
        raise DclSignal("EOF", facility="RMS", severity="E", text="end of file detected", status=0x0001827A)
    interp.symbols.set(name, line.rstrip("\r\n"))
    return CLI_NORMAL


def _inquire(interp: Interpreter, rest: str) -> int | None:
    parsed = parse_args(rest, (QualSpec("GLOBAL"), QualSpec("LOCAL"), QualSpec("PUNCTUATION", negatable=True)))
    need(parsed.params, 1, 2)
    name = unquote(parsed.params[0])
    prompt = unquote(parsed.params[1]) if len(parsed.params) > 1 else name.upper()
    if parsed.quals.get("PUNCTUATION", True):
        prompt += ": "
    interp.stdout.write(prompt)
    interp.stdout.flush()
    line = interp.stdin.readline() if interp.stdin is not None else ""
    interp.symbols.set(name, string_value(line.rstrip("\r\n")), bool(parsed.quals.get("GLOBAL")))
    return CLI_NORMAL


_DELETE_QUALS = (QualSpec("SYMBOL"), QualSpec("GLOBAL"), QualSpec("LOCAL"), QualSpec("LOG", negatable=True),
                 QualSpec("CONFIRM", negatable=True))
_SEARCHFAIL = 0x10000000 | 0x00918000 | (0x10 << 3)  # DELETE-W-SEARCHFAIL, message shown
_FILNOTDEL = 0x10000000 | 0x00918000 | (0x11 << 3)


def _targets(spec: str) -> list[Path]:
    """The files DELETE removes: a search for a VMS specification; a Linux path (a glob), with
    its earlier versions too when it ends in `;*`."""
    if "/" not in spec:
        return [p for p, _ in search(spec) if p.is_file()]
    from wucme.vms.files import versions

    path = str(file_path(spec))
    hits = [Path(h) for h in sorted(glob.glob(path))] if is_wild(path) else [Path(path)]
    if spec.endswith(";*"):
        return [v for h in hits for _, v in versions(h)]
    return [h for h in hits if h.is_file()]


def _delete(interp: Interpreter, rest: str) -> int | None:
    """DELETE file[,file...] (every version named; `;*` for all) or DELETE /SYMBOL name."""
    parsed = parse_args(interp.ampersands(rest), _DELETE_QUALS)
    if parsed.quals.get("SYMBOL"):
        return delete_symbol(interp, parsed.params, parsed.quals)
    need(parsed.params, 1)
    status = SS_NORMAL
    for spec in (unquote(s.strip()) for s in split_top(" ".join(parsed.params)) if s.strip()):
        try:
            hits = _targets(spec)
        except VmsError as exc:
            interp.err_lines([f"%DELETE-W-SEARCHFAIL, error searching for {spec.upper()}", rms_reason(exc)])
            status = _SEARCHFAIL
            continue
        if not hits:
            interp.err_lines([f"%DELETE-W-SEARCHFAIL, error searching for {spec}", RMS_FNF])
            status = _SEARCHFAIL
            continue
        for hit in hits:
            try:
                os.unlink(hit)
            except OSError as exc:
                interp.err_lines([f"%DELETE-W-FILNOTDEL, error deleting {hit}", _rms(exc)])
                status = _FILNOTDEL
                continue
            if parsed.quals.get("LOG"):
                interp.out(f"%DELETE-I-FILDEL, {hit} deleted")
    return status


VERBS = {"CLOSE": _close, "DELETE": _delete, "INQUIRE": _inquire, "OPEN": _open, "READ": _read, "WRITE": _write}
