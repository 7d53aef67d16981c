"""String and number lexicals: F$EDIT, F$ELEMENT, F$EXTRACT, F$LOCATE, F$LENGTH, F$INTEGER, F$STRING,
F$TYPE, F$CVSI, F$CVUI and F$MATCH_WILD (DCL Dictionary, each by its name)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from wucme.dclproc.lexicals.args import Args, number, text
from wucme.dclproc.status import signal
from wucme.dclproc.values import Value, parse_int, to_int, to_str, wrap32

if TYPE_CHECKING:
    from wucme.dclproc.interp import Interpreter

__all__ = ["FUNCTIONS"]

_EDITS = ("COLLAPSE", "COMPRESS", "LOWERCASE", "TRIM", "UNCOMMENT", "UPCASE")


def _segments(value: str) -> list[tuple[bool, str]]:
    """(quoted, text) runs: F$EDIT leaves quoted text alone."""
    out: list[tuple[bool, str]] = []
    cur, inq = "", False
    for c in value:
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


def _compress(s: str) -> str:
    return re.sub(r"[ \t]+", " ", s)


def _uncomment(segs: list[tuple[bool, str]]) -> list[tuple[bool, str]]:
    kept: list[tuple[bool, str]] = []
    for quoted, s in segs:
        if not quoted and "!" in s:
            kept.append((quoted, s[:s.index("!")]))
            break
        kept.append((quoted, s))
    return kept


def f_edit(ctx: Interpreter, args: Args) -> Value:
    edits = set()
    for k in (k.strip().upper() for k in text(args, 1).split(",") if k.strip()):
        hits = [w for w in _EDITS if w.startswith(k)]
        if len(hits) != 1:
            raise signal("IVKEYW", k)
        edits.add(hits[0])
    segs = _segments(text(args, 0))
    if "UNCOMMENT" in edits:
        segs = _uncomment(segs)
    out = []
    for quoted, s in segs:
        if not quoted:
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
    return result.strip(" \t") if edits & {"TRIM", "UNCOMMENT"} else result


def f_element(ctx: Interpreter, args: Args) -> Value:
    """The element-number'th item delimited by *delimiter*; the delimiter itself past the end."""
    n, delim, value = number(args, 0), text(args, 1), text(args, 2)
    if len(delim) != 1:
        raise signal("INVRANGE", text="the delimiter of F$ELEMENT must be one character")
    parts = value.split(delim)
    return parts[n] if 0 <= n < len(parts) else delim


def f_extract(ctx: Interpreter, args: Args) -> Value:
    start, length, value = number(args, 0), number(args, 1), text(args, 2)
    if start < 0 or length < 0:
        raise signal("INVRANGE", f"{start},{length}")
    return value[start:start + length]


def f_locate(ctx: Interpreter, args: Args) -> Value:
    """The offset of the first occurrence, or the string's length when there is none."""
    sub, value = text(args, 0), text(args, 1)
    at = value.find(sub)
    return len(value) if at < 0 else at


def f_length(ctx: Interpreter, args: Args) -> Value:
    return len(text(args, 0))


def f_integer(ctx: Interpreter, args: Args) -> Value:
    return to_int(args[0] if args[0] is not None else "")


def f_string(ctx: Interpreter, args: Args) -> Value:
    return to_str(args[0] if args[0] is not None else "")


def f_type(ctx: Interpreter, args: Args) -> Value:
    """INTEGER for an integer or a string that reads as one, STRING, or "" for no such symbol."""
    v = ctx.symbols.get(text(args, 0))
    if v is None:
        return ""
    return "INTEGER" if isinstance(v, int) or parse_int(v) is not None else "STRING"


def _bits(args: Args) -> int:
    start, size, value = number(args, 0), number(args, 1), args[2] if len(args) > 2 else None
    if start < 0 or size < 0 or size > 32:
        raise signal("INVRANGE", f"{start},{size}")
    data = to_str(value if value is not None else "").encode("latin-1", errors="replace")
    if start + size > len(data) * 8:
        raise signal("INVRANGE", f"{start},{size}")
    return (int.from_bytes(data, "little") >> start) & ((1 << size) - 1)


def f_cvui(ctx: Interpreter, args: Args) -> Value:
    """The unsigned integer in bits start..start+size-1 of a string (low bit first)."""
    return wrap32(_bits(args))


def f_cvsi(ctx: Interpreter, args: Args) -> Value:
    """The same bits as a signed (two's complement) integer."""
    size = number(args, 1)
    n = _bits(args)
    return wrap32(n - (1 << size) if size and n & (1 << (size - 1)) else n)


def f_match_wild(ctx: Interpreter, args: Args) -> Value:
    """TRUE when the candidate matches the pattern (`*` any run, `%` one character)."""
    candidate, pattern = text(args, 0), text(args, 1)
    rx = "".join(".*" if c == "*" else "." if c == "%" else re.escape(c) for c in pattern)
    return "TRUE" if re.fullmatch(rx, candidate, re.DOTALL) else "FALSE"


FUNCTIONS = {
    "F$EDIT": (f_edit, 2, 2), "F$ELEMENT": (f_element, 3, 3), "F$EXTRACT": (f_extract, 3, 3),
    "F$LOCATE": (f_locate, 2, 2), "F$LENGTH": (f_length, 1, 1), "F$INTEGER": (f_integer, 1, 1),
    "F$STRING": (f_string, 1, 1), "F$TYPE": (f_type, 1, 1), "F$CVUI": (f_cvui, 3, 3),
    "F$CVSI": (f_cvsi, 3, 3), "F$MATCH_WILD": (f_match_wild, 2, 2),
}
