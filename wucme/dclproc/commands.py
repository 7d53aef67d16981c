"""The DCL verbs wucme's procedures use, each `handler(interp, rest) -> status or None`.

Verbs are matched case-insensitively and may be abbreviated while unique among DCL's verbs;
a DCL verb wucme does not implement is refused with NOTSUPP, an unknown word with IVVERB.
"""

from __future__ import annotations

import glob
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from wucme.dclproc.scan import (
    QualSpec, find_then, parse_args, split_top, split_words, unquote, upcase_unquoted,
)
from wucme.dclproc.images import command_argv, image_argv, is_wucme_image
from wucme.dclproc.status import CLI_NORMAL, SS_NORMAL, DclSignal, signal
from wucme.dclproc.values import Value, is_name, to_int, to_str, truth
from wucme.vms import lnm
from wucme.vms.dcllex import abbreviations, parse_equivalence_list, quoted_runs

if TYPE_CHECKING:
    from wucme.dclproc.interp import Interpreter

__all__ = ["assign", "at", "foreign", "lookup_verb", "file_path", "VERBS"]

Handler = Callable[["Interpreter", str], "int | None"]

# DCL verbs wucme's DCL knows of but does not run (so abbreviations resolve as on VMS).
_OTHER_VERBS = (
    "ALLOCATE", "ANALYZE", "APPEND", "ATTACH", "BACKUP", "CALL", "CANCEL", "CONVERT", "COPY",
    "CREATE", "DEALLOCATE", "DEBUG", "DECK", "DIFFERENCES", "DIRECTORY", "DISMOUNT", "DUMP",
    "EDIT", "ENDSUBROUTINE", "EOD", "EOJ", "EXAMINE", "HELP", "INITIALIZE", "INSTALL", "LIBRARY",
    "LINK", "LOGOUT", "MAIL", "MERGE", "MESSAGE", "MOUNT", "PATCH", "PIPE", "PRINT", "PURGE",
    "RECALL", "RENAME", "REPLY", "REQUEST", "SEARCH", "SORT", "SPAWN", "START", "STOP", "SUBMIT",
    "SUBROUTINE", "SYNCHRONIZE", "TYPE", "UNLOCK", "WAIT",
)


# --- helpers -------------------------------------------------------------------------------


def file_path(spec: str) -> Path:
    """A file named in a procedure: a VMS specification through wucme's mapping, else a Linux path."""
    from wucme.vms.filespec import is_vms_spec, to_path

    spec = spec.strip()
    if is_vms_spec(spec):
        return to_path(spec)
    return Path(os.path.expanduser(re.sub(r";[-0-9*]*\Z", "", spec)))


def _string_value(text: str) -> str:
    """The value of `X := text` (and INQUIRE input): unquoted text upper-cased and its blanks
    compressed, quoted text kept, ends trimmed."""
    out: list[str] = []
    blank = False
    for piece, quoted in quoted_runs(text.strip(" \t"), strict=False):
        for c in piece:
            if not quoted and c in " \t":
                if not blank:
                    out.append(" ")
                blank = True
            else:
                out.append(c if quoted else c.upper())
                blank = False
    return "".join(out).strip(" ")


def _match(word: str, names: tuple[str, ...] | list[str], ident: str = "IVKEYW") -> str:
    w = word.upper()
    hits = abbreviations(w, names)
    if len(hits) == 1:
        return hits[0]
    if hits:
        raise signal("ABKEYW" if ident == "IVKEYW" else "ABVERB", w)
    raise signal(ident, w)


def _need(parsed_params: list[str], count: int, most: int | None = None) -> None:
    if len(parsed_params) < count:
        raise signal("INSFPRM")
    if most is not None and len(parsed_params) > most:
        raise signal("MAXPARM", unquote(parsed_params[most]).upper())


# --- assignment, @, foreign commands --------------------------------------------------------


def assign(interp: Interpreter, name: str, op: str, rest: str) -> None:
    glob_ = op in ("==", ":==")
    if op.startswith(":"):
        value: Value = _string_value(rest)
    else:
        value = interp.evaluate(rest) if rest.strip() else ""
    interp.symbols.set(name, value, glob_)


def at(interp: Interpreter, rest: str) -> int:
    words = split_words(interp.ampersands(rest))
    if not words:
        raise signal("INSFPRM")
    if len(words) > 9:
        raise signal("MAXPARM", upcase_unquoted(words[9]))
    params = [upcase_unquoted(w) for w in words[1:]]
    return interp.run_file(unquote(words[0]), params)


def foreign(interp: Interpreter, value: str, rest: str) -> int:
    """A symbol `X == "$image [args]"` used as a verb: run the image with the rest of the line."""
    words = split_words(value)
    if not words:
        raise signal("IVVERB", value)
    image = unquote(words[0])
    argv = image_argv(image) + command_argv(" ".join(words[1:]) + " " + interp.ampersands(rest))
    return interp.run_image(argv, is_wucme_image(image))


def _mcr(interp: Interpreter, rest: str) -> int:
    words = split_words(rest)
    if not words:
        raise signal("INSFPRM")
    image = unquote(words[0])
    argv = image_argv(image) + command_argv(interp.ampersands(rest.strip()[len(words[0]):]))
    return interp.run_image(argv, is_wucme_image(image))


def _run(interp: Interpreter, rest: str) -> int:
    parsed = parse_args(interp.ampersands(rest), ())
    _need(parsed.params, 1, 1)
    image = unquote(parsed.params[0])
    return interp.run_image(image_argv(image), is_wucme_image(image))


# --- control flow -----------------------------------------------------------------------------


def _if(interp: Interpreter, rest: str) -> int | None:
    from wucme.dclproc.interp import IfBlock

    expr, cmd = find_then(rest)
    if not expr.strip():
        raise signal("INSFPRM")
    cond = truth(interp.evaluate(expr))
    frame = interp.frame
    if cmd is None or not cmd.strip().lstrip("$").strip():
        frame.ifs.append(IfBlock("THEN" if cond else "SKIPTHEN", pending_then=cmd is None))
        return None
    return interp.command(cmd) if cond else None


def _then(interp: Interpreter, rest: str) -> int | None:
    frame = interp.frame
    if not frame.ifs or not frame.ifs[-1].pending_then:
        raise signal("INVIFNEST", "THEN")
    frame.ifs[-1].pending_then = False
    return interp.command(rest) if rest.strip() else None


def _else(interp: Interpreter, rest: str) -> int | None:
    frame = interp.frame
    if not frame.ifs or frame.ifs[-1].state != "THEN":
        raise signal("INVIFNEST", "ELSE")
    frame.ifs[-1].state = "SKIPELSE"
    return None


def _endif(interp: Interpreter, rest: str) -> int | None:
    frame = interp.frame
    if not frame.ifs:
        raise signal("INVIFNEST", "ENDIF")
    frame.ifs.pop()
    return None


def _label_word(rest: str) -> str:
    words = split_words(rest)
    _need(words, 1, 1)
    return words[0].rstrip(":")


def _goto(interp: Interpreter, rest: str) -> int | None:
    interp.goto(_label_word(rest))
    return None


def _gosub(interp: Interpreter, rest: str) -> int | None:
    frame = interp.frame
    label = _label_word(rest)
    back = (frame.pc, len(frame.ifs))
    interp.goto(label)
    frame.gosubs.append(back)
    return None


def _return(interp: Interpreter, rest: str) -> int | None:
    frame = interp.frame
    if not frame.gosubs:
        raise signal("NOGOSUB")
    status = to_int(interp.evaluate(rest)) if rest.strip() else None
    frame.pc, depth = frame.gosubs.pop()
    del frame.ifs[depth:]
    return status


def _exit(interp: Interpreter, rest: str) -> int | None:
    from wucme.dclproc.interp import Exit

    status = to_int(interp.evaluate(rest)) if rest.strip() else interp.status
    raise Exit(status)


def _on(interp: Interpreter, rest: str) -> int | None:
    cond, cmd = find_then(rest)
    if cmd is None or not cmd.strip():
        raise signal("INSFPRM")
    kind = _match(cond.strip().split()[0] if cond.strip() else "",
                  ("WARNING", "ERROR", "SEVERE_ERROR", "CONTROL_Y", "CONTROL_C"))
    if kind in ("CONTROL_Y", "CONTROL_C"):
        return CLI_NORMAL  # there is no Ctrl/Y to trap when a procedure runs on Linux
    frame = interp.frame
    frame.on_rank = {"WARNING": 1, "ERROR": 2, "SEVERE_ERROR": 3}[kind]
    frame.on_action = cmd.strip().lstrip("$").strip()
    return CLI_NORMAL


def _continue(interp: Interpreter, rest: str) -> int | None:
    return CLI_NORMAL


def _set(interp: Interpreter, rest: str) -> int | None:
    words = split_words(rest)
    _need(words, 1)
    what = _match(words[0], ("ON", "NOON", "VERIFY", "NOVERIFY", "DEFAULT", "PROCESS", "SYMBOL"))
    if what in ("ON", "NOON"):
        interp.frame.on_enabled = what == "ON"
    elif what in ("VERIFY", "NOVERIFY"):
        interp.verify = what == "VERIFY"
    else:
        raise signal("NOTSUPP", f"SET {what}")
    return CLI_NORMAL


# --- output and files ---------------------------------------------------------------------------


def _channel_name(word: str) -> str:
    return unquote(word).upper().rstrip(":")


def _write(interp: Interpreter, rest: str) -> int | None:
    head = re.match(r"\s*&[A-Za-z$_][A-Za-z0-9$_]*", rest)
    if head:  # the channel is a parameter: & substitution applies to it
        rest = interp.ampersands(head.group(0)) + rest[head.end():]
    m = re.match(r"((?:\s*/[A-Za-z_]+(?:=[^\s/]*)?)*)\s*([A-Za-z0-9$_:]+)((?:/[A-Za-z_]+(?:=[^\s/]*)?)*)\s*(.*)\Z",
                 rest, re.DOTALL)
    if not m or not m.group(2):
        raise signal("INSFPRM")
    channel = _channel_name(m.group(2))
    items = [p for p in split_top(m.group(4))]
    if not m.group(4).strip():
        raise signal("INSFPRM")
    text = "".join(to_str(interp.evaluate(item)) for item in items)
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


_RMS = {
    FileNotFoundError: "-RMS-E-FNF, file not found",
    PermissionError: "-RMS-E-PRV, insufficient privilege or file protection violation",
    IsADirectoryError: "-RMS-E-FLK, file currently locked by another user",
}


def _rms(exc: OSError) -> str:
    for cls, text in _RMS.items():
        if isinstance(exc, cls):
            return text
    return f"-RMS-E-ACC, ACP file access failed ({exc.strerror})"


_OPEN_QUALS = (QualSpec("READ"), QualSpec("WRITE"), QualSpec("APPEND"), QualSpec("SHARE", "optional"),
               QualSpec("ERROR", "required"))


def _open(interp: Interpreter, rest: str) -> int | None:
    parsed = parse_args(interp.ampersands(rest), _OPEN_QUALS)
    _need(parsed.params, 2, 2)
    channel = _channel_name(parsed.params[0])
    spec = unquote(parsed.params[1])
    mode = "a" if parsed.quals.get("APPEND") else "w" if parsed.quals.get("WRITE") else "r"
    try:
        path = file_path(spec)
        stream = open(path, mode, encoding="utf-8")
    except OSError as exc:
        kind = "input" if mode == "r" else "output"
        raise DclSignal("OPENIN" if mode == "r" else "OPENOUT", severity="E",
                        text=f"error opening {spec} as {kind}", extra=(_rms(exc),)) from None
    old = interp.channels.pop(channel, None)
    if old is not None:
        old.close()
    interp.channels[channel] = stream
    return CLI_NORMAL


def _close(interp: Interpreter, rest: str) -> int | None:
    parsed = parse_args(interp.ampersands(rest), (QualSpec("ERROR", "required"), QualSpec("DISPOSITION", "required")))
    _need(parsed.params, 1, 1)
    stream = interp.channels.pop(_channel_name(parsed.params[0]), None)
    if stream is None:
        raise signal("IVCHAN", _channel_name(parsed.params[0]))
    stream.close()
    return CLI_NORMAL


_READ_QUALS = (QualSpec("END_OF_FILE", "required"), QualSpec("ERROR", "required"),
               QualSpec("PROMPT", "required"))


def _read(interp: Interpreter, rest: str) -> int | None:
    parsed = parse_args(interp.ampersands(rest), _READ_QUALS)
    _need(parsed.params, 2, 2)
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
    _need(parsed.params, 1, 2)
    name = unquote(parsed.params[0])
    prompt = unquote(parsed.params[1]) if len(parsed.params) > 1 else name.upper()
    if parsed.quals.get("PUNCTUATION", True):
        prompt += ": "
    interp.stdout.write(prompt)
    interp.stdout.flush()
    line = interp.stdin.readline() if interp.stdin is not None else ""
    interp.symbols.set(name, _string_value(line.rstrip("\r\n")), bool(parsed.quals.get("GLOBAL")))
    return CLI_NORMAL


def _delete(interp: Interpreter, rest: str) -> int | None:
    parsed = parse_args(interp.ampersands(rest), (QualSpec("SYMBOL"), QualSpec("GLOBAL"), QualSpec("LOCAL"),
                                                  QualSpec("LOG", negatable=True), QualSpec("CONFIRM", negatable=True)))
    if parsed.quals.get("SYMBOL"):
        _need(parsed.params, 1, 1)
        name = unquote(parsed.params[0])
        if not interp.symbols.delete(name, bool(parsed.quals.get("GLOBAL"))):
            raise signal("UNDSYM", name.upper())
        return CLI_NORMAL
    _need(parsed.params, 1)
    specs = [s.strip() for s in split_top(" ".join(parsed.params)) if s.strip()]
    status = SS_NORMAL
    for spec in specs:
        path = file_path(unquote(spec))
        hits = sorted(glob.glob(str(path))) if any(c in str(path) for c in "*?") else [str(path)]
        hits = [h for h in hits if os.path.isfile(h)]
        if not hits:
            interp.err_lines([f"%DELETE-W-SEARCHFAIL, error searching for {unquote(spec)}",
                              "-RMS-E-FNF, file not found"])
            status = 0x10000000 | 0x00918000 | (0x10 << 3)  # a warning, message shown
            continue
        for hit in hits:
            try:
                os.unlink(hit)
            except OSError as exc:
                interp.err_lines([f"%DELETE-W-FILNOTDEL, error deleting {hit}", _rms(exc)])
                status = 0x10000000 | 0x00918000 | (0x11 << 3)
                continue
            if parsed.quals.get("LOG"):
                interp.out(f"%DELETE-I-FILDEL, {hit} deleted")
    return status


# --- logical names and symbols ------------------------------------------------------------------

_LNM_QUALS = (
    QualSpec("SYSTEM"), QualSpec("PROCESS"), QualSpec("CLUSTER_SYSTEM"), QualSpec("JOB"), QualSpec("GROUP"),
    QualSpec("TABLE", "required"), QualSpec("EXECUTIVE_MODE"), QualSpec("SUPERVISOR_MODE"),
    QualSpec("USER_MODE"), QualSpec("KERNEL_MODE"), QualSpec("LOG", negatable=True),
    QualSpec("TRANSLATION_ATTRIBUTES", "required"), QualSpec("NAME_ATTRIBUTES", "required"),
    QualSpec("ALL"),
)
_TABLE_NAMES = {
    "LNM$PROCESS": "process", "LNM$PROCESS_TABLE": "process", "LNM$SYSTEM": "system",
    "LNM$SYSTEM_TABLE": "system", "LNM$SYSCLUSTER": "cluster", "LNM$SYSCLUSTER_TABLE": "cluster",
}


def _table(quals: dict[str, str | bool], default: str | None) -> str | None:
    for q in ("JOB", "GROUP"):
        if quals.get(q):
            raise signal("NOTSUPP", f"/{q}")
    if quals.get("SYSTEM"):
        return "system"
    if quals.get("CLUSTER_SYSTEM"):
        return "cluster"
    if quals.get("PROCESS"):
        return "process"
    table = quals.get("TABLE")
    if isinstance(table, str):
        name = unquote(table).upper()
        if name not in _TABLE_NAMES:
            raise signal("NOTSUPP", f"/TABLE={name}")
        return _TABLE_NAMES[name]
    return default


def _mode(quals: dict[str, str | bool]) -> str | None:
    for q, mode in (("EXECUTIVE_MODE", "EXECUTIVE"), ("KERNEL_MODE", "KERNEL"),
                    ("SUPERVISOR_MODE", "SUPERVISOR")):
        if quals.get(q):
            return mode
    return None


def _define(interp: Interpreter, rest: str, swap: bool = False) -> int | None:
    parsed = parse_args(interp.ampersands(rest), _LNM_QUALS)
    _need(parsed.params, 2)
    params = parsed.params
    if swap:  # ASSIGN value name
        params = params[-1:] + params[:-1]
    name = unquote(params[0]).upper().rstrip(":") if not params[0].endswith("::") else unquote(params[0])
    value_words = params[1:]
    for a, b in zip(value_words, value_words[1:]):
        if not a.endswith(",") and not b.startswith(","):
            raise signal("MAXPARM", unquote(b).upper())
    values = parse_equivalence_list(" ".join(value_words))
    if not values or any(v == "" for v in values):
        raise signal("INSFPRM")
    attrs = parsed.quals.get("TRANSLATION_ATTRIBUTES")
    attr_set: set[str] = set()
    if isinstance(attrs, str):
        for a in attrs.strip("()").split(","):
            attr_set.add(_match(a.strip(), ("CONCEALED", "TERMINAL", "NOCONCEALED", "NOTERMINAL")))
    if parsed.quals.get("USER_MODE"):
        if name in ("SYS$INPUT", "SYS$OUTPUT", "SYS$ERROR"):
            interp.user_files[name] = values[0]
            return SS_NORMAL
        interp.user_names.append(name)
    table = _table(parsed.quals, "process") or "process"
    old = lnm.define(name, values, table, concealed="CONCEALED" in attr_set,
                     terminal="TERMINAL" in attr_set, mode=_mode(parsed.quals))
    if old is not None and parsed.quals.get("LOG", True):
        interp.out(f"%DCL-I-SUPERSEDE, previous value of {name} has been superseded")
    return SS_NORMAL


def _assign_verb(interp: Interpreter, rest: str) -> int | None:
    return _define(interp, rest, swap=True)


def _deassign(interp: Interpreter, rest: str) -> int | None:
    parsed = parse_args(interp.ampersands(rest), _LNM_QUALS)
    if parsed.quals.get("ALL"):
        raise signal("NOTSUPP", "/ALL")
    _need(parsed.params, 1, 1)
    name = unquote(parsed.params[0]).upper().rstrip(":")
    table = _table(parsed.quals, "process") or "process"
    try:
        lnm.deassign(name, table)
    except lnm.NoLogicalNameError:
        raise DclSignal("NOLOGNAM", facility="SYSTEM", severity="F", text="no logical name match",
                        status=0x000001BC) from None
    return SS_NORMAL


def _show_symbol(interp: Interpreter, words: list[str], quals: dict[str, str | bool]) -> int | None:
    pattern = unquote(words[0]) if words else ""
    if not pattern:
        raise signal("INSFPRM")
    rx = re.compile("".join(".*" if c == "*" else "." if c == "%" else re.escape(c) for c in pattern.upper()))
    tables: list[tuple[str, dict[str, Value]]] = []
    if not quals.get("GLOBAL"):
        levels = interp.symbols.levels if quals.get("ALL") else interp.symbols.levels[-1:]
        tables += [("=", lvl) for lvl in reversed(levels)]
    if quals.get("GLOBAL") or quals.get("ALL") or not any(c in pattern for c in "*%"):
        tables.append(("==", interp.symbols.globals))
    if not quals.get("GLOBAL") and not quals.get("LOCAL") and not any(c in pattern for c in "*%"):
        found = interp.symbols.find(pattern)
        tables = [(found[0], {pattern.upper(): found[1]})] if found else []
    shown = 0
    seen: set[str] = set()
    for op, table in tables:
        for key in sorted(table):
            if key in seen or not rx.fullmatch(key):
                continue
            seen.add(key)
            shown += 1
            v = table[key]
            if isinstance(v, int):
                interp.out(f"  {key} {op} {v}   Hex = {v & 0xFFFFFFFF:08X}  Octal = {v & 0xFFFFFFFF:011o}")
            else:
                interp.out(f'  {key} {op} "{v}"')
    if not shown:
        raise signal("UNDSYM", pattern.upper())
    return None


def _show_logical(interp: Interpreter, words: list[str], quals: dict[str, str | bool]) -> int | None:
    table = _table(quals, None)
    pattern = unquote(words[0]).upper().rstrip(":") if words else "*"
    entries = lnm.show(pattern, table)
    wild = any(c in pattern for c in "*%")
    if not wild:
        entries = entries[:1]
    if not entries:
        if wild:
            interp.out("%SHOW-S-NOLNM, no logical names match")
            return 0x00000001
        interp.out(f"%SHOW-S-NOTRAN, no translation for logical name {pattern}")
        return 0x00000001
    for line in lnm.format_show(entries, iterate=not wild):
        interp.out(line)
    return SS_NORMAL


def _show(interp: Interpreter, rest: str) -> int | None:
    parsed = parse_args(interp.ampersands(rest), _LNM_QUALS + (QualSpec("GLOBAL"), QualSpec("LOCAL")))
    _need(parsed.params, 1)
    what = _match(unquote(parsed.params[0]), ("SYMBOL", "LOGICAL", "TIME", "DEFAULT"))
    words = parsed.params[1:]
    if what == "SYMBOL":
        return _show_symbol(interp, words, parsed.quals)
    if what == "LOGICAL":
        return _show_logical(interp, words, parsed.quals)
    if what == "TIME":
        from wucme.dclproc.lexicals import f_time

        interp.out("  " + to_str(f_time(interp, [])).rsplit(".", 1)[0])
        return SS_NORMAL
    interp.out("  " + os.getcwd())
    return SS_NORMAL


# --- the verb table -----------------------------------------------------------------------------

VERBS: dict[str, Handler] = {
    "ASSIGN": _assign_verb, "CLOSE": _close, "CONTINUE": _continue, "DEASSIGN": _deassign,
    "DEFINE": _define, "DELETE": _delete, "ELSE": _else, "ENDIF": _endif, "EXIT": _exit,
    "GOSUB": _gosub, "GOTO": _goto, "IF": _if, "INQUIRE": _inquire, "MCR": _mcr, "ON": _on,
    "OPEN": _open, "READ": _read, "RETURN": _return, "RUN": _run, "SET": _set, "SHOW": _show,
    "THEN": _then, "WRITE": _write,
}
_ALL = tuple(sorted(set(VERBS) | set(_OTHER_VERBS)))


def lookup_verb(word: str) -> Handler:
    if not is_name(word):
        raise signal("IVVERB", word.upper())
    name = _match(word, _ALL, ident="IVVERB")
    handler = VERBS.get(name)
    if handler is None:
        raise signal("NOTSUPP", name)
    return handler
