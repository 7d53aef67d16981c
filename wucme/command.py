"""The DCL-style command line: `wucme VERB [/QUALIFIER[=value]] params`, as a VMS user types it.

DCL habits kept: verbs, qualifiers and keyword values are case-insensitive and may be abbreviated
to uniqueness (an exact name always wins); a qualifier may follow the verb or any parameter and
may be glued to it (`check/ca`); `/NOname` negates a negatable qualifier; double quotes protect
text (`""` is a quote); a trailing `-` continues the command on the next token, as a DCL
procedure continues a line.  For Linux users `--name[=value]` is the same as `/name[=value]`.

A token that starts with `/` but names no qualifier of the verb and contains a further `/` or a
`.` (or names an existing file) is a Linux path parameter; `--` ends qualifiers altogether.
"""
from __future__ import annotations

import os
import re
from typing import NamedTuple

from wucme.errors import WucmeError
from wucme.vms.dcllex import QuoteError, abbreviations, quoted_runs


class DclError(WucmeError):
    """A command line DCL would refuse; the ident says why (IVVERB, IVQUAL, ABVERB, ...)."""

    ident = "IVCMD"


class Qualifier(NamedTuple):
    """One qualifier: `value` is "none", "optional" or "required"; `keywords` restrict the value.
    (Immutable records of the command table are NamedTuples: a frozen dataclass costs six
    times as much to define, at every start; docs/performance.md.)"""

    name: str
    value: str = "none"
    keywords: tuple[str, ...] = ()
    negatable: bool = False
    help: str = ""


class Verb(NamedTuple):
    name: str
    qualifiers: tuple[Qualifier, ...] = ()
    min_params: int = 0
    max_params: int | None = 0
    help: str = ""


class Command:
    """A parsed command: qualifier values are True/False for flags, else the (unquoted) value.

    A plain class, not a dataclass (`dataclasses` brings `inspect` and `ast` into every
    verb's start: docs/performance.md)."""

    __slots__ = ("verb", "qualifiers", "params")

    def __init__(self, verb: str, qualifiers: dict[str, str | bool] | None = None,
                 params: list[str] | None = None) -> None:
        self.verb = verb
        self.qualifiers: dict[str, str | bool] = {} if qualifiers is None else qualifiers
        self.params: list[str] = [] if params is None else params

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, Command)
        return (self.verb, self.qualifiers, self.params) == (other.verb, other.qualifiers, other.params)

    __hash__ = None  # type: ignore[assignment]  # mutable, as a dataclass with eq

    def __repr__(self) -> str:
        return f"Command(verb={self.verb!r}, qualifiers={self.qualifiers!r}, params={self.params!r})"

    def has(self, name: str) -> bool:
        return bool(self.qualifiers.get(name))

    def value(self, name: str, default: str | None = None) -> str | None:
        v = self.qualifiers.get(name)
        return v if isinstance(v, str) else default


def match_keyword(word: str, choices: list[str] | tuple[str, ...], what: str = "keyword",
                  ident: str = "IVKEYW") -> str:
    """The one of *choices* that *word* abbreviates (case-insensitive; exact match wins)."""
    if not word:
        raise DclError(f"missing {what}", ident=ident)
    hits = abbreviations(word, choices)
    if len(hits) == 1:
        return hits[0]
    if hits:
        raise DclError(f"ambiguous {what} {word!r}: {', '.join(hits)}", ident=f"AB{ident[2:]}")
    raise DclError(f"unrecognized {what} {word!r}; one of: {', '.join(choices)}", ident=ident)


def _quoted_runs(text: str) -> list[tuple[str, bool]]:
    """wucme.vms.dcllex.quoted_runs, its refusal a DclError as the command line reports it."""
    try:
        return list(quoted_runs(text))
    except QuoteError as e:
        raise DclError(e.text, ident=e.ident) from None


def unquote(text: str) -> str:
    """Remove DCL double quotes: `"a b"` is `a b`, `""` inside quotes is one `"`."""
    return "".join(piece for piece, _ in _quoted_runs(text))


def join_continuations(tokens: list[str]) -> list[str]:
    """DCL's `-` continuation: a token ending in `-` runs on into the next one.

    `a,b,-` `c` gives `a,b,c`; a lone `-` joins its neighbours with a blank, as a line break
    after ` -` does in a procedure.  A trailing `-` with nothing after it is dropped.
    """
    out: list[str] = []
    pending = ""  # how the next token joins the last: "" not at all, "tight", "blank"
    for tok in tokens:
        if tok == "-":
            if out:
                pending = "blank"
            continue
        cont = ""
        if tok.endswith("-") and not tok.startswith("-"):
            tok, cont = tok[:-1], "tight"
        if pending and out:
            out[-1] += ("" if pending == "tight" else " ") + tok
        else:
            out.append(tok)
        pending = cont
    return out


def split_list(params: list[str]) -> list[str]:
    """Items of a space- or comma-separated list (quotes protect commas and blanks), duplicates
    removed in order; used for host lists."""
    items: list[str] = []
    for p in join_continuations(params):
        cur = ""
        for piece, quoted in _quoted_runs(p):
            if quoted:
                cur += piece
                continue
            for c in piece:
                if c == "," or c.isspace():
                    if cur:
                        items.append(cur)
                    cur = ""
                else:
                    cur += c
        if cur:
            items.append(cur)
    seen: list[str] = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return seen


def _split_glued(tok: str) -> list[str]:
    """`check/ca/x=1` -> `check`, `/ca`, `/x=1` (slashes inside quotes or values after `=`
    stay: `/output="a/b"`)."""
    parts: list[str] = []
    cur = ""
    inq = in_value = False
    for c in tok:
        if c == '"':
            inq = not inq
        elif c == "=" and not inq:
            in_value = True
        elif c == "/" and not inq and not in_value and cur:
            parts.append(cur)
            cur = ""
        elif c == "/" and not inq and in_value:
            # a value runs to the end of the token: DCL needs quotes for a slash in it
            pass
        cur += c
    parts.append(cur)
    return parts


def _looks_like_path(tok: str) -> bool:
    """A second `/`, a `.` in the name (qualifiers have none), or an existing file."""
    return tok.count("/") > 1 or "." in tok.partition("=")[0] or os.path.exists(tok)


def parse(argv: list[str], verbs: list[Verb] | tuple[Verb, ...]) -> Command:
    """Parse a command line (argv after the program name) against *verbs*."""
    tokens = join_continuations(list(argv))
    if not tokens:
        raise DclError("no command verb; try: wucme help", ident="NOVERB")
    first, *rest = _split_glued(tokens[0]) if not tokens[0].startswith("-") else [tokens[0]]
    if first.startswith("--"):
        raise DclError(f"{first} is not a command verb; try: wucme help", ident="IVVERB")
    verb = _verb(first, verbs)
    cmd = Command(verb.name)
    pending = rest + tokens[1:]
    ended = False
    for tok in pending:
        if ended:
            cmd.params.append(tok)
            continue
        if tok == "--":
            ended = True
            continue
        if tok.startswith("--") and len(tok) > 2:
            _qualifier(cmd, verb, tok[2:])
            continue
        if tok.startswith("/") and len(tok) > 1:
            name = re.split(r"[=/]", tok[1:], maxsplit=1)[0]
            if _known(verb, name) or not _looks_like_path(tok):
                for q in _split_glued(tok):
                    _qualifier(cmd, verb, q[1:] if q.startswith("/") else q)
                continue
            cmd.params.append(tok)
            continue
        if "/" in tok and not tok.startswith('"') and not os.path.exists(tok):
            head, *quals = _split_glued(tok)
            if quals and all(_known(verb, re.split(r"[=/]", q[1:], maxsplit=1)[0]) for q in quals):
                cmd.params.append(head)
                for q in quals:
                    _qualifier(cmd, verb, q[1:])
                continue
        cmd.params.append(tok)
    if len(cmd.params) < verb.min_params:
        raise DclError(f"{verb.name} needs {'a parameter' if verb.min_params == 1 else f'{verb.min_params} parameters'}",
                       ident="INSFPRM")
    if verb.max_params is not None and len(cmd.params) > verb.max_params:
        extra = cmd.params[verb.max_params]
        raise DclError(f"too many parameters for {verb.name}: {extra!r}", ident="MAXPARM")
    return cmd


def _verb(word: str, verbs: list[Verb] | tuple[Verb, ...]) -> Verb:
    name = match_keyword(unquote(word), [v.name for v in verbs], "command verb", ident="IVVERB")
    return next(v for v in verbs if v.name == name)


def _known(verb: Verb, name: str) -> bool:
    names = [q.name for q in verb.qualifiers]
    low = name.lower()
    if low.startswith("no") and any(q.negatable for q in verb.qualifiers):
        names += ["no" + q.name for q in verb.qualifiers if q.negatable]
    return bool(low) and any(n.lower().startswith(low) for n in names)


def _qualifier(cmd: Command, verb: Verb, text: str) -> None:
    name, eq, value = text.partition("=")
    if not verb.qualifiers:
        raise DclError(f"{verb.name} takes no qualifiers: /{name}", ident="IVQUAL")
    choices = [q.name for q in verb.qualifiers]
    negated = [f"no{q.name}" for q in verb.qualifiers if q.negatable]
    hit = match_keyword(name, choices + negated, f"qualifier of {verb.name}", ident="IVQUAL")
    neg = hit in negated and hit not in choices
    q = next(q for q in verb.qualifiers if q.name == (hit[2:] if neg else hit))
    if neg:
        if eq:
            raise DclError(f"/{hit} takes no value", ident="NOVALU")
        cmd.qualifiers[q.name] = False
        return
    if eq:
        if q.value == "none":
            raise DclError(f"/{q.name} takes no value", ident="NOVALU")
        v = unquote(value)
        if q.keywords:
            v = match_keyword(v, q.keywords, f"value of /{q.name}", ident="IVKEYW")
        cmd.qualifiers[q.name] = v
        return
    if q.value == "required":
        raise DclError(f"/{q.name} needs a value (/{q.name}=...)", ident="VALREQ")
    cmd.qualifiers[q.name] = True
