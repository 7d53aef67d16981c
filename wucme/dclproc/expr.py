"""DCL expressions: literals, symbols, lexical function calls and operators, by DCL's precedence.

Precedence, highest first: unary + -; * /; binary + -; the comparisons (.EQ. .EQS. ...);
.NOT.; .AND.; .OR.  `+` joins two strings and adds otherwise; `-` on two strings removes the
first occurrence of the right one from the left; .EQS.-style operators compare strings, the
others integers; .AND., .OR. and .NOT. work on the bits of integers, as DCL's do.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from wucme.dclproc.status import signal
from wucme.dclproc.values import Value, parse_int, to_int, to_str, wrap32

__all__ = ["evaluate", "Evaluator"]

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<str>"(?:[^"]|"")*")
    | (?P<num>%[XxOoDd][0-9A-Fa-f]+|[0-9]+)
    | (?P<op>\.(?:EQS|NES|LTS|GTS|LES|GES|EQ|NE|LT|GT|LE|GE|AND|OR|NOT)\.)
    | (?P<name>[A-Za-z$_][A-Za-z0-9$_]*)
    | (?P<punct>[-+*/(),])
    )""",
    re.VERBOSE | re.IGNORECASE,
)

_STRING_CMP = {
    ".EQS.": lambda a, b: a == b, ".NES.": lambda a, b: a != b,
    ".LTS.": lambda a, b: a < b, ".GTS.": lambda a, b: a > b,
    ".LES.": lambda a, b: a <= b, ".GES.": lambda a, b: a >= b,
}
_INT_CMP = {
    ".EQ.": lambda a, b: a == b, ".NE.": lambda a, b: a != b,
    ".LT.": lambda a, b: a < b, ".GT.": lambda a, b: a > b,
    ".LE.": lambda a, b: a <= b, ".GE.": lambda a, b: a >= b,
}


@dataclass
class _Tok:
    kind: str
    text: str


def _tokens(text: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            rest = text[pos:].strip()
            if rest.startswith('"'):
                raise signal("UNDQUOTE", rest)
            raise signal("EXPSYN", rest.split()[0] if rest.split() else rest)
        kind = m.lastgroup or ""
        out.append(_Tok(kind, m.group(kind)))
        pos = m.end()
    return out


Lookup = Callable[[str], Value | None]
#: Nesting allowed in one expression (parentheses, F$ calls, unary operators, .NOT.): each
#: level is Python recursion, and 130 parentheses were a RecursionError (found by the fuzzer).
MAX_NESTING = 48
# Lexicals whose argument is a symbol's name, not its value.
_NAME_ARGUMENT = ("F$TYPE", "F$PID")
Lexical = Callable[[str, list["Value | None"], list[str]], Value]


class Evaluator:
    """Parse and evaluate one expression; *lookup* finds symbols, *lexical* runs F$ functions.

    *lexical* gets the function name, the evaluated arguments (None for an omitted one) and
    their raw text (F$TYPE takes a symbol's name, not its value).
    """

    def __init__(self, lookup: Lookup, lexical: Lexical) -> None:
        self.lookup = lookup
        self.lexical = lexical
        self.toks: list[_Tok] = []
        self.i = 0
        self.depth = 0

    def __call__(self, text: str) -> Value:
        self.toks = _tokens(text)
        self.i = 0
        self.depth = 0
        if not self.toks:
            raise signal("EXPSYN", text.strip())
        value = self._or()
        if self.i < len(self.toks):
            raise signal("EXPSYN", self.toks[self.i].text)
        return value

    # --- helpers
    def _peek(self) -> _Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def _is(self, *texts: str) -> str | None:
        t = self._peek()
        if t is not None and t.kind in ("op", "punct") and t.text.upper() in texts:
            return t.text.upper()
        return None

    def _next_text(self, default: str) -> str:
        t = self._peek()
        return t.text if t is not None else default

    def _nested(self, what: Callable[[], Value], text: str) -> Value:
        """what() one level deeper; too deep is a syntax error, not a RecursionError."""
        self.depth += 1
        try:
            if self.depth > MAX_NESTING:
                raise signal("EXPSYN", f"{text} (nested more than {MAX_NESTING} deep)")
            return what()
        finally:
            self.depth -= 1

    def _take(self) -> _Tok:
        t = self._peek()
        if t is None:
            raise signal("EXPSYN", "")
        self.i += 1
        return t

    # --- grammar
    def _or(self) -> Value:
        v = self._and()
        while self._is(".OR."):
            self.i += 1
            v = wrap32(to_int(v) | to_int(self._and()))
        return v

    def _and(self) -> Value:
        v = self._not()
        while self._is(".AND."):
            self.i += 1
            v = wrap32(to_int(v) & to_int(self._not()))
        return v

    def _not(self) -> Value:
        if self._is(".NOT."):
            self.i += 1
            return wrap32(~to_int(self._nested(self._not, ".NOT.")))
        return self._cmp()

    def _cmp(self) -> Value:
        v = self._add()
        while True:
            op = self._is(*_STRING_CMP, *_INT_CMP)
            if not op:
                return v
            self.i += 1
            w = self._add()
            if op in _STRING_CMP:
                v = int(_STRING_CMP[op](to_str(v), to_str(w)))
            else:
                v = int(_INT_CMP[op](to_int(v), to_int(w)))

    def _add(self) -> Value:
        v = self._mul()
        while op := self._is("+", "-"):
            self.i += 1
            w = self._mul()
            if isinstance(v, str) and isinstance(w, str):
                if op == "+":
                    v = v + w
                else:
                    at = v.find(w) if w else -1
                    v = v if at < 0 else v[:at] + v[at + len(w):]
            else:
                v = wrap32(to_int(v) + to_int(w) if op == "+" else to_int(v) - to_int(w))
        return v

    def _mul(self) -> Value:
        v = self._unary()
        while op := self._is("*", "/"):
            self.i += 1
            a, b = to_int(v), to_int(self._unary())
            if op == "*":
                v = wrap32(a * b)
            else:
                if b == 0:
                    raise signal("DIVBYZERO")
                q = abs(a) // abs(b)
                v = wrap32(q if (a < 0) == (b < 0) else -q)
        return v

    def _unary(self) -> Value:
        if op := self._is("+", "-"):
            self.i += 1
            n = to_int(self._nested(self._unary, op))
            return wrap32(-n if op == "-" else n)
        return self._primary()

    def _primary(self) -> Value:
        t = self._take()
        if t.kind == "str":
            return t.text[1:-1].replace('""', '"')
        if t.kind == "num":
            n = parse_int(t.text)
            if n is None:
                raise signal("EXPSYN", t.text)
            return n
        if t.kind == "punct" and t.text == "(":
            v = self._nested(self._or, "(")
            if not self._is(")"):
                raise signal("EXPSYN", self._next_text("("))
            self.i += 1
            return v
        if t.kind == "name":
            if self._is("(") and t.text.upper().startswith("F$"):
                return self._nested(lambda: self._call(t.text.upper()), t.text.upper())
            found = self.lookup(t.text)
            if found is None:
                raise signal("UNDSYM", t.text.upper())
            return found
        raise signal("EXPSYN", t.text)

    def _call(self, name: str) -> Value:
        self.i += 1  # (
        args: list[Value | None] = []
        raw: list[str] = []
        if self._is(")"):
            self.i += 1
            return self.lexical(name, args, raw)
        while True:
            if self._is(",", ")"):
                args.append(None)
                raw.append("")
            elif name in _NAME_ARGUMENT and (nxt := self._peek()) is not None and nxt.kind == "name" \
                    and not (self.i + 1 < len(self.toks) and self.toks[self.i + 1].text == "("):
                tok = self._take()  # F$TYPE(symbol), F$PID(context): the name itself, defined or not
                args.append(tok.text)
                raw.append(tok.text)
            else:
                start = self.i
                args.append(self._or())
                raw.append(" ".join(t.text for t in self.toks[start:self.i]))
            if self._is(")"):
                self.i += 1
                return self.lexical(name, args, raw)
            if not self._is(","):
                raise signal("EXPSYN", self._next_text(name))
            self.i += 1


def evaluate(text: str, lookup: Lookup, lexical: Lexical) -> Value:
    return Evaluator(lookup, lexical)(text)
