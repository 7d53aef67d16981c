"""The lexical functions (F$...) that startup and certification procedures use.

F$TRNLNM translates one level, as VMS's does (a procedure that wants the final value loops or
uses wucme's own iterative translation); tables are wucme's process, system and cluster tables
(wucme.vms.lnm).  F$SEARCH maps VMS file specifications through wucme.vms.filespec.
"""

from __future__ import annotations

import datetime
import glob
import os
import platform
import socket
import sys
from collections.abc import Callable
from typing import Protocol

from wucme.dclproc.status import message_lines, signal
from wucme.dclproc.values import Symbols, Value, parse_int, to_int, to_str
from wucme.vms import lnm
from wucme.vms.condition import VmsError

__all__ = ["Context", "call_lexical", "LEXICALS"]


class Context(Protocol):
    symbols: Symbols

    @property
    def procedure(self) -> str: ...

    @property
    def depth(self) -> int: ...

    @property
    def verifying(self) -> bool: ...


_TABLES = {
    "LNM$FILE_DEV": None, "LNM$DCL_LOGICAL": None,
    "LNM$PROCESS": "process", "LNM$PROCESS_TABLE": "process",
    "LNM$SYSTEM": "system", "LNM$SYSTEM_TABLE": "system",
    "LNM$SYSCLUSTER": "cluster", "LNM$SYSCLUSTER_TABLE": "cluster",
    "LNM$CLUSTER": "cluster", "LNM$CLUSTER_TABLE": "cluster",
}


def _s(args: list[Value | None], i: int, default: str = "") -> str:
    v = args[i] if i < len(args) else None
    return default if v is None else to_str(v)


def _i(args: list[Value | None], i: int, default: int = 0) -> int:
    v = args[i] if i < len(args) else None
    return default if v is None else to_int(v)


def f_trnlnm(ctx: Context, args: list[Value | None]) -> Value:
    name = _s(args, 0)
    table_arg = _s(args, 1).upper()
    if table_arg and table_arg not in _TABLES:
        return ""
    table = _TABLES.get(table_arg) if table_arg else None
    index = _i(args, 2, 0)
    item = _s(args, 5, "VALUE").upper()
    try:
        entry = lnm.lookup(name, table)
    except VmsError:
        entry = None
    if item == "MAX_INDEX":
        return len(entry.values) - 1 if entry else -1
    if entry is None:
        return ""
    if item == "VALUE":
        return entry.values[index] if 0 <= index < len(entry.values) else ""
    if item == "LENGTH":
        return len(entry.values[index]) if 0 <= index < len(entry.values) else 0
    if item == "TABLE_NAME":
        return entry.table_name
    if item in ("CONCEALED", "TERMINAL"):
        return "TRUE" if item in entry.attributes else "FALSE"
    if item == "ACCESS_MODE":
        return entry.mode or "SUPERVISOR"
    if item == "TABLE":
        return "FALSE"
    raise signal("IVKEYW", item)


def _segments(text: str) -> list[tuple[bool, str]]:
    """(quoted, text) runs: F$EDIT leaves quoted text alone."""
    out: list[tuple[bool, str]] = []
    cur, inq = "", False
    for c in text:
        if c == '"':
            if inq:
                out.append((True, cur + c))
                cur, inq = "", False
                continue
            if cur:
                out.append((False, cur))
            cur, inq = c, True
            continue
        cur += c
    if cur:
        out.append((inq, cur))
    return out


def f_edit(ctx: Context, args: list[Value | None]) -> Value:
    text = _s(args, 0)
    keys = [k.strip().upper() for k in _s(args, 1).split(",") if k.strip()]
    known = ("COLLAPSE", "COMPRESS", "LOWERCASE", "UPCASE", "TRIM", "UNCOMMENT")
    edits = set()
    for k in keys:
        hits = [w for w in known if w.startswith(k)]
        if len(hits) != 1:
            raise signal("IVKEYW", k)
        edits.add(hits[0])
    segs = _segments(text)
    if "UNCOMMENT" in edits:
        kept: list[tuple[bool, str]] = []
        for q, s in segs:
            if not q and "!" in s:
                kept.append((q, s[:s.index("!")]))
                break
            kept.append((q, s))
        segs = kept
    out = []
    for q, s in segs:
        if not q:
            if "COLLAPSE" in edits:
                s = s.replace(" ", "").replace("\t", "")
            elif "COMPRESS" in edits:
                s = _compress(s)
            if "UPCASE" in edits:
                s = s.upper()
            elif "LOWERCASE" in edits:
                s = s.lower()
        out.append(s)
    result = "".join(out)
    if "TRIM" in edits or "UNCOMMENT" in edits:
        result = result.strip(" \t")
    return result


def _compress(s: str) -> str:
    out, blank = [], False
    for c in s:
        if c in " \t":
            if not blank:
                out.append(" ")
            blank = True
        else:
            out.append(c)
            blank = False
    return "".join(out)


def f_element(ctx: Context, args: list[Value | None]) -> Value:
    n, delim, text = _i(args, 0), _s(args, 1), _s(args, 2)
    if len(delim) != 1:
        raise signal("INSFARG", text="the delimiter of F$ELEMENT must be one character")
    parts = text.split(delim)
    return parts[n] if 0 <= n < len(parts) else delim


def f_extract(ctx: Context, args: list[Value | None]) -> Value:
    start, length, text = _i(args, 0), _i(args, 1), _s(args, 2)
    if start < 0 or length < 0:
        raise signal("EXPSYN", text="F$EXTRACT needs a start and length of 0 or more")
    return text[start:start + length]


def f_locate(ctx: Context, args: list[Value | None]) -> Value:
    sub, text = _s(args, 0), _s(args, 1)
    at = text.find(sub)
    return len(text) if at < 0 else at


def f_type(ctx: Context, args: list[Value | None]) -> Value:
    name = _s(args, 0)
    v = ctx.symbols.get(name)
    if v is None:
        return ""
    if isinstance(v, int) or parse_int(v) is not None:
        return "INTEGER"
    return "STRING"


def f_getsyi(ctx: Context, args: list[Value | None]) -> Value:
    item = _s(args, 0).upper()
    if item == "NODENAME":
        return socket.gethostname().split(".")[0].upper()[:15]
    if item == "ARCH_NAME":
        return platform.machine()
    if item == "HW_NAME":
        return platform.platform()
    if item == "VERSION":
        return platform.release()
    if item == "CLUSTER_MEMBER":
        return "FALSE"
    raise signal("IVKEYW", item)


def f_environment(ctx: Context, args: list[Value | None]) -> Value:
    item = _s(args, 0).upper()
    if item == "PROCEDURE":
        return ctx.procedure
    if item == "DEPTH":
        return ctx.depth
    if item == "DEFAULT":
        return os.getcwd() + "/"
    if item == "VERIFY_PROCEDURE":
        return "TRUE" if ctx.verifying else "FALSE"
    if item == "INTERACTIVE":
        return "FALSE"
    if item == "MAX_DEPTH":
        return 32
    raise signal("IVKEYW", item)


def f_search(ctx: Context, args: list[Value | None]) -> Value:
    spec = _s(args, 0)
    if not spec:
        return ""
    from wucme.vms.filespec import is_vms_spec, to_path

    if is_vms_spec(spec):
        try:
            path = str(to_path(spec))
        except VmsError:
            return ""
    else:
        path = os.path.expanduser(spec)
    hits = sorted(glob.glob(path)) if any(c in path for c in "*?[") else ([path] if os.path.exists(path) else [])
    return os.path.abspath(hits[0]) if hits else ""


def f_message(ctx: Context, args: list[Value | None]) -> Value:
    return message_lines(_i(args, 0) & 0xFFFFFFFF)[0]


def f_time(ctx: Context, args: list[Value | None]) -> Value:
    now = datetime.datetime.now()
    return f"{now.day:2d}-{now.strftime('%b').upper()}-{now.year} {now:%H:%M:%S}.{now.microsecond // 10000:02d}"


def f_mode(ctx: Context, args: list[Value | None]) -> Value:
    return "INTERACTIVE" if sys.stdin is not None and sys.stdin.isatty() else "OTHER"


def f_integer(ctx: Context, args: list[Value | None]) -> Value:
    return to_int(args[0] if args[0] is not None else "")


def f_string(ctx: Context, args: list[Value | None]) -> Value:
    return to_str(args[0] if args[0] is not None else "")


def f_length(ctx: Context, args: list[Value | None]) -> Value:
    return len(_s(args, 0))


# name -> (function, required arguments, most arguments)
LEXICALS: dict[str, tuple[Callable[[Context, list[Value | None]], Value], int, int]] = {
    "F$TRNLNM": (f_trnlnm, 1, 6),
    "F$EDIT": (f_edit, 2, 2),
    "F$ELEMENT": (f_element, 3, 3),
    "F$EXTRACT": (f_extract, 3, 3),
    "F$LOCATE": (f_locate, 2, 2),
    "F$LENGTH": (f_length, 1, 1),
    "F$INTEGER": (f_integer, 1, 1),
    "F$STRING": (f_string, 1, 1),
    "F$TYPE": (f_type, 1, 1),
    "F$GETSYI": (f_getsyi, 1, 1),
    "F$ENVIRONMENT": (f_environment, 1, 1),
    "F$SEARCH": (f_search, 1, 2),
    "F$MESSAGE": (f_message, 1, 1),
    "F$TIME": (f_time, 0, 0),
    "F$MODE": (f_mode, 0, 0),
}


def call_lexical(ctx: Context, name: str, args: list[Value | None], raw: list[str]) -> Value:
    try:
        fn, least, most = LEXICALS[name]
    except KeyError:
        raise signal("UNDFUN", name) from None
    given = len(args)
    if given > most:
        raise signal("MAXARG", name)
    if sum(1 for a in args[:least] if a is not None) < least or given < least:
        raise signal("INSFARG", name)
    return fn(ctx, args)
