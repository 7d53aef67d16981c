"""DCL values (strings and 32-bit integers), their conversions, and the symbol tables.

DCL converts as the operator needs: a string is an integer when it reads as one (decimal, or
%X / %O / %D radix), else 1 when it starts with T or Y and 0 otherwise; it is true when odd or
when it starts with T or Y.  Local symbols live at each procedure level and are visible to the
levels it calls; global symbols (`==`) are seen by all.
"""

from __future__ import annotations

import re

__all__ = ["Value", "Symbols", "parse_int", "to_int", "to_str", "truth", "wrap32", "is_name"]

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


class Symbols:
    """The global table and one local table per procedure level (innermost last)."""

    def __init__(self) -> None:
        self.globals: dict[str, Value] = {}
        self.levels: list[dict[str, Value]] = [{}]

    def push(self, params: list[str]) -> None:
        level: dict[str, Value] = {f"P{i}": "" for i in range(1, 9)}
        for i, p in enumerate(params[:8], 1):
            level[f"P{i}"] = p
        self.levels.append(level)

    def pop(self) -> None:
        if len(self.levels) > 1:
            self.levels.pop()

    def get(self, name: str) -> Value | None:
        key = name.upper()
        for level in reversed(self.levels):
            if key in level:
                return level[key]
        return self.globals.get(key)

    def find(self, name: str) -> tuple[str, Value] | None:
        """("=" or "==", value) as SHOW SYMBOL reports it."""
        key = name.upper()
        for level in reversed(self.levels):
            if key in level:
                return "=", level[key]
        if key in self.globals:
            return "==", self.globals[key]
        return None

    def set(self, name: str, value: Value, glob: bool = False) -> None:
        key = name.upper()
        if glob:
            self.globals[key] = value
        else:
            self.levels[-1][key] = value

    def delete(self, name: str, glob: bool = False) -> bool:
        table = self.globals if glob else self.levels[-1]
        return table.pop(name.upper(), None) is not None
