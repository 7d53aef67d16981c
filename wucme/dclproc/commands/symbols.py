"""Assignment (=, ==, :=, :==, with abbreviations and overlays), SHOW SYMBOL and DELETE /SYMBOL."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from wucme.dclproc.commands.common import string_value
from wucme.dclproc.scan import unquote
from wucme.dclproc.status import signal
from wucme.dclproc.values import SymbolTable, Value, to_int, to_str, wrap32

if TYPE_CHECKING:
    from wucme.dclproc.interp import Interpreter

__all__ = ["assign", "show_symbol", "delete_symbol"]

#: The longest string a symbol may hold (DCL Dictionary, = Assignment: 255 before V7.3-2, now 8192).
MAX_STRING = 8192


def assign(interp: Interpreter, name: str, subscript: str | None, op: str, rest: str) -> None:
    """`NAME = expr`, `NAME == expr`, `NAME := text`, `NAME :== text`; `SA*Y` abbreviates;
    `NAME[offset,size] := text` overlays characters, `NAME[bit,size] = expr` bits."""
    glob = op in ("==", ":==")
    if subscript is not None:
        _overlay(interp, name.replace("*", ""), subscript, op, rest, glob)
        return
    if op.startswith(":"):
        value: Value = string_value(rest)
    else:
        value = interp.evaluate(rest) if rest.strip() else ""
    interp.symbols.set(name, value, glob)


def _table(interp: Interpreter, glob: bool) -> SymbolTable:
    return interp.symbols.globals if glob else interp.symbols.levels[-1]


def _bounds(interp: Interpreter, subscript: str) -> tuple[int, int]:
    offset_text, comma, size_text = subscript.strip()[1:-1].partition(",")
    if not comma or not offset_text.strip() or not size_text.strip():
        raise signal("EXPSYN", subscript.upper())
    offset, size = to_int(interp.evaluate(offset_text)), to_int(interp.evaluate(size_text))
    if offset < 0 or size < 0:
        raise signal("INVRANGE", subscript.upper())
    return offset, size


def _overlay(interp: Interpreter, name: str, subscript: str, op: str, rest: str, glob: bool) -> None:
    """Substring and bit-field assignment (DCL Dictionary, := and =: "symbol-name[offset,size]")."""
    offset, size = _bounds(interp, subscript)
    table = _table(interp, glob)
    key = table.match(name.upper())
    current = table[key] if key is not None else ""
    old = to_str(current)
    if not op.startswith(":") and isinstance(current, int):  # the bits of an integer's 32-bit value
        if size > 32 or offset + size > 32:
            raise signal("INVRANGE", subscript.upper())
        mask = ((1 << size) - 1) << offset
        number = to_int(interp.evaluate(rest))
        table.define(key or name.upper(), wrap32((current & ~mask) | ((number << offset) & mask)))
        return
    if op.startswith(":"):  # characters: the text padded or cut to size, the symbol padded with blanks
        if offset + size > MAX_STRING:
            raise signal("INVRANGE", subscript.upper())
        new = string_value(rest)[:size].ljust(size)
        old = old.ljust(offset)
        value = old[:offset] + new + old[offset + size:]
    else:  # bits of a string's bytes (an undefined symbol is a null string), low bit first
        if size > 32:
            raise signal("INVRANGE", subscript.upper())
        number = to_int(interp.evaluate(rest))
        data = bytearray(old.encode("latin-1", errors="replace"))
        need = (offset + size + 7) // 8
        data += b" " * max(0, need - len(data))
        bits = int.from_bytes(data, "little")
        mask = ((1 << size) - 1) << offset
        bits = (bits & ~mask) | ((number << offset) & mask)
        value = bits.to_bytes(len(data), "little").decode("latin-1")
    table.define(key or name.upper(), value)


def show_symbol(interp: Interpreter, words: list[str], quals: dict[str, str | bool]) -> int | None:
    pattern = unquote(words[0]) if words else ""
    if not pattern:
        raise signal("INSFPRM")
    wild = any(c in pattern for c in "*%")
    rx = re.compile("".join(".*" if c == "*" else "." if c == "%" else re.escape(c) for c in pattern.upper()))
    shown = 0
    if not wild and not quals.get("GLOBAL") and not quals.get("LOCAL"):
        found = interp.symbols.find(pattern)
        if found is not None:
            table = _holder(interp, pattern.upper())
            key = table.match(pattern.upper()) or pattern.upper()
            _show_one(interp, table.shown_name(key), found[0], found[1])
            shown = 1
    else:
        for op, table in _tables(interp, quals, wild):
            for key in sorted(table):
                if rx.fullmatch(key):
                    _show_one(interp, table.shown_name(key), op, table[key])
                    shown += 1
    if not shown:
        raise signal("UNDSYM", pattern.upper())
    return None


def _holder(interp: Interpreter, key: str) -> SymbolTable:
    for level in reversed(interp.symbols.levels):
        if level.match(key) is not None:
            return level
    return interp.symbols.globals


def _tables(interp: Interpreter, quals: dict[str, str | bool], wild: bool) -> list[tuple[str, SymbolTable]]:
    tables: list[tuple[str, SymbolTable]] = []
    if not quals.get("GLOBAL"):
        levels = interp.symbols.levels if quals.get("ALL") else interp.symbols.levels[-1:]
        tables += [("=", lvl) for lvl in reversed(levels)]
    if quals.get("GLOBAL") or quals.get("ALL") or not (wild or quals.get("LOCAL")):
        tables.append(("==", interp.symbols.globals))
    return tables


def _show_one(interp: Interpreter, name: str, op: str, v: Value) -> None:
    if isinstance(v, int):
        interp.out(f"  {name} {op} {v}   Hex = {v & 0xFFFFFFFF:08X}  Octal = {v & 0xFFFFFFFF:011o}")
    else:
        interp.out(f'  {name} {op} "{v}"')


def delete_symbol(interp: Interpreter, params: list[str], quals: dict[str, str | bool]) -> int | None:
    from wucme.dclproc.commands.common import need
    from wucme.dclproc.status import CLI_NORMAL

    need(params, 1, 1)
    name = unquote(params[0])
    if not interp.symbols.delete(name, bool(quals.get("GLOBAL"))):
        raise signal("UNDSYM", name.upper())
    return CLI_NORMAL
