"""F$FAO: the Formatted ASCII Output directives a procedure uses (DCL Dictionary, F$FAO).

Directives: !AS !AF (strings), !UL !SL !ZL !XL !OL and their B/W forms (numbers), !/ (new
line: a Linux line end), !_ (tab), !^ (form feed), !! (an exclamation mark), !%S (plural `s`), !%T !%D (the
time, date and time), !n*c (c repeated n times), !- (reuse the last argument), !+ (skip
one), !n(...) (repeat a directive) and !n<...!> (a fixed-width field).  A width before a
directive (`!5UL`, `!10AS`) pads: numbers on the left (!ZL with zeros), strings on the right;
a number too wide for its field is shown as asterisks.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from wucme.dclproc.lexicals.args import Args, text
from wucme.dclproc.status import signal
from wucme.dclproc.values import Value, to_int, to_str

if TYPE_CHECKING:
    from wucme.dclproc.interp import Interpreter

__all__ = ["FUNCTIONS", "fao"]

_DIRECTIVE = re.compile(r"!(#|\d+)?(?:(AS|AF|UB|UW|UL|SB|SW|SL|ZB|ZW|ZL|XB|XW|XL|OB|OW|OL)|(%[STDUI])|(\*.)|"
                        r"(/|_|\^|!|-|\+|<|>)|(\())", re.IGNORECASE | re.DOTALL)
# default width and bits of each numeric directive's size letter
_BITS = {"B": 8, "W": 16, "L": 32}
_HEX_WIDTH = {"B": 2, "W": 4, "L": 8}
_OCT_WIDTH = {"B": 3, "W": 6, "L": 11}


class _Args:
    """The argument list F$FAO's directives consume in order."""

    def __init__(self, values: list[Value]) -> None:
        self.values = values
        self.i = 0
        self.last: Value = 0
        self.last_number = 0

    def take(self) -> Value:
        if self.i >= len(self.values):
            raise signal("INSFARG", "F$FAO")
        self.last = self.values[self.i]
        self.i += 1
        return self.last


def _number(kind: str, size: str, value: int, width: int | None) -> str:
    """One number: decimal too wide for its field is asterisks; hex and octal keep their
    rightmost digits (SYS$FAO's rules); Z, X and O fill with zeros, U and S with blanks."""
    bits = _BITS[size]
    unsigned = value & ((1 << bits) - 1)
    if kind in ("X", "O"):
        digits = f"{unsigned:X}" if kind == "X" else f"{unsigned:o}"
        field = width if width is not None else (_HEX_WIDTH if kind == "X" else _OCT_WIDTH)[size]
        return digits.zfill(field)[-field:] if field else ""
    if kind == "S" and unsigned & (1 << (bits - 1)):
        digits = str(unsigned - (1 << bits))
    else:
        digits = str(unsigned)
    if width is None:
        return digits
    if len(digits) > width:
        return "*" * width
    return digits.rjust(width, "0" if kind == "Z" else " ")


def _now(date: bool) -> str:
    import datetime

    from wucme.dclproc.lexicals.times import absolute

    stamp = absolute(datetime.datetime.now())
    return stamp if date else stamp.split(" ", 1)[1]


def fao(control: str, args: _Args) -> str:
    out: list[str] = []
    pos = 0
    while pos < len(control):
        bang = control.find("!", pos)
        if bang < 0:
            out.append(control[pos:])
            break
        out.append(control[pos:bang])
        m = _DIRECTIVE.match(control, bang)
        if m is None:
            raise signal("ARGERR", control[bang:bang + 4].upper(), text="invalid F$FAO directive")
        pos = _directive(control, m, args, out)
    return "".join(out)


def _width(m: re.Match[str], args: _Args) -> int | None:
    raw = m.group(1)
    if raw is None:
        return None
    return to_int(args.take()) if raw == "#" else int(raw)


def _directive(control: str, m: re.Match[str], args: _Args, out: list[str]) -> int:
    """Apply one directive; the position after it."""
    width = _width(m, args)
    conv, special, repeat, simple, group = m.group(2), m.group(3), m.group(4), m.group(5), m.group(6)
    if conv:
        out.append(_convert(conv.upper(), width, args))
    elif special:
        out.append(_special(special.upper(), args))
    elif repeat:
        out.append(repeat[1] * (width or 0))
    elif simple == "<":
        return _field(control, m.end(), width or 0, args, out)
    elif simple:
        out.append(_simple(simple, width, args))
    elif group:
        return _repeat(control, m.end(), width or 1, args, out)
    return m.end()


def _convert(conv: str, width: int | None, args: _Args) -> str:
    if conv in ("AS", "AF"):
        value = to_str(args.take())
        if conv == "AF":
            value = "".join(c if " " <= c <= "~" else "." for c in value)
        return value if width is None else value[:width].ljust(width)
    n = to_int(args.take())
    args.last_number = n
    return _number(conv[0], conv[1], n, width)


def _special(special: str, args: _Args) -> str:
    if special == "%S":
        return "" if args.last_number == 1 else "s"
    if special in ("%T", "%D"):
        args.take()  # 0: the current time, as F$FAO allows
        return _now(special == "%D")
    raise signal("NOTSUPP", f"F$FAO !{special}")


def _simple(simple: str, width: int | None, args: _Args) -> str:
    if simple in ("-", "+"):
        if simple == "-":
            args.i = max(0, args.i - 1)
        else:
            args.take()
        return ""
    # !/ is a new record: a Linux line end here, where DCL writes CR/LF
    return {"/": "\n", "_": "\t", "^": "\f", "!": "!", ">": ""}[simple] * (width or 1)


def _field(control: str, start: int, width: int, args: _Args, out: list[str]) -> int:
    end = control.find("!>", start)
    if end < 0:
        raise signal("ARGERR", "!<", text="invalid F$FAO directive")
    inner = fao(control[start:end], args)
    out.append(inner[:width].ljust(width))
    return end + 2


def _repeat(control: str, start: int, count: int, args: _Args, out: list[str]) -> int:
    end = control.find(")", start)
    if end < 0:
        raise signal("ARGERR", "!(", text="invalid F$FAO directive")
    for _ in range(count):
        out.append(fao("!" + control[start:end], args))
    return end + 1


def f_fao(ctx: Interpreter, args: Args) -> Value:
    values: list[Value] = [a if a is not None else "" for a in args[1:]]
    return fao(text(args, 0), _Args(values))


FUNCTIONS = {"F$FAO": (f_fao, 1, 16)}
