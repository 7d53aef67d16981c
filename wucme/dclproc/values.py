"""DCL values (strings and 32-bit integers), their conversions, and the symbol tables.

DCL converts as the operator needs: a string is an integer when it reads as one (decimal, or
%X / %O / %D radix), else 1 when it starts with T or Y and 0 otherwise; it is true when odd or
when it starts with T or Y.  Local symbols live at each procedure level and are visible to the
levels it calls; global symbols (`==`) are seen by all.
"""

from __future__ import annotations

import re

__all__ = ["Value", "SymbolTable", "Symbols", "parse_int", "to_int", "to_str", "truth", "wrap32", "is_name"]

Value = str | int

_INT = re.compile(r"\s*([+-]?)\s*(?:%([XxOoDd]))?([0-9A-Fa-f]+)\s*")
_NAME = re.compile(r"[A-Za-z$_][A-Za-z0-9$_]*")


def is_name(text: str) -> bool:
    return bool(_NAME.fullmatch(text))


def wrap32(n: int) -> int:
    """DCL integers are 32-bit two's complement."""
    n &= 0xFFFFFFFF
    return n - (1 << 32) if n & 0x80000000 else n


def parse_int(text: str) -> int | None:
    """The integer a string spells (`12`, `-3`, `%X2C`, `%o17`), or None."""
    m = _INT.fullmatch(text)
    if not m:
        return None
    sign, radix, digits = m.groups()
    base = {"X": 16, "O": 8, "D": 10}.get((radix or "D").upper(), 10)
    try:
        n = int(digits, base)
    except ValueError:
        return None
    return wrap32(-n if sign == "-" else n)


def to_int(v: Value) -> int:
    if isinstance(v, int):
        return v
    n = parse_int(v)
    if n is not None:
        return n
    return 1 if v[:1] in ("T", "t", "Y", "y") else 0


def to_str(v: Value) -> str:
    return str(v) if isinstance(v, int) else v


def truth(v: Value) -> bool:
    if isinstance(v, int):
        return bool(v & 1)
    n = parse_int(v)
    if n is not None:
        return bool(n & 1)
    return v[:1] in ("T", "t", "Y", "y")


class SymbolTable(dict[str, Value]):
    """One symbol table: names to values, and the abbreviations `SA*Y == ...` allows.

    A name defined with `*` (DCL Dictionary, = Assignment: "abbreviated symbol names") is
    stored by its full name with the shortest abbreviation allowed; a lookup finds it by
    any abbreviation from that one up to the full name.
    """

    def __init__(self) -> None:
        super().__init__()
        self.shortest: dict[str, int] = {}

    def match(self, key: str) -> str | None:
        """The stored name *key* (upper case) names: itself, or a name it abbreviates."""
        if key in self:
            return key
        for name, least in self.shortest.items():
            if least <= len(key) <= len(name) and name.startswith(key):
                return name
        return None

    def define(self, name: str, value: Value) -> None:
        """Set *name*; `SA*Y` stores SAY, abbreviable to SA.  An exact name is its own entry."""
        full, star, _ = name.partition("*")
        key = (full + name[len(full) + 1:]) if star else name
        self[key] = value
        if star:
            self.shortest[key] = len(full)
        else:
            self.shortest.pop(key, None)

    def remove(self, key: str) -> bool:
        name = self.match(key)
        if name is None:
            return False
        del self[name]
        self.shortest.pop(name, None)
        return True

    def shown_name(self, key: str) -> str:
        """SHOW SYMBOL's spelling: `SA*Y` for an abbreviated name."""
        least = self.shortest.get(key)
        return key if least is None else key[:least] + "*" + key[least:]


class Symbols:
    """The global table and one local table per procedure level (innermost last)."""

    def __init__(self) -> None:
        self.globals = SymbolTable()
        self.levels: list[SymbolTable] = [SymbolTable()]

    def push(self, params: list[str]) -> None:
        level = SymbolTable()
        for i in range(1, 9):
            level[f"P{i}"] = params[i - 1] if i <= len(params) else ""
        self.levels.append(level)

    def pop(self) -> None:
        if len(self.levels) > 1:
            self.levels.pop()

    def get(self, name: str) -> Value | None:
        found = self.find(name)
        return None if found is None else found[1]

    def find(self, name: str) -> tuple[str, Value] | None:
        """("=" or "==", value) as SHOW SYMBOL reports it: local levels innermost first, then global."""
        key = name.upper()
        for level in reversed(self.levels):
            hit = level.match(key)
            if hit is not None:
                return "=", level[hit]
        hit = self.globals.match(key)
        if hit is not None:
            return "==", self.globals[hit]
        return None

    def set(self, name: str, value: Value, glob: bool = False) -> None:
        (self.globals if glob else self.levels[-1]).define(name.upper(), value)

    def delete(self, name: str, glob: bool = False) -> bool:
        return (self.globals if glob else self.levels[-1]).remove(name.upper())
