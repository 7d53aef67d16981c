"""Reading a command procedure and scanning its command lines as DCL's first two phases do.

A procedure is read into logical lines: a record starting with `$` is a command (the `$`
and blanks before it dropped), `!` outside quotes starts a comment, and a command ending in
`-` continues on the next record, the `-` removed and the next record appended as it is.
Records not starting with `$` are image data: wucme's DCL runs no image that reads them,
so they are skipped with DCL's SKPDAT warning; blank records and a first-line `#!` (so a
procedure can be a Linux executable) are skipped silently.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from wucme.dclproc.status import signal
from wucme.dclproc.values import Value, to_str
from wucme.vms.dcllex import abbreviations, quoted_runs

__all__ = [
    "Line", "Parsed", "QualSpec", "load_lines", "split_comment", "strip_comment", "substitute_apostrophes",
    "substitute_ampersands", "split_words", "unquote", "parse_args", "find_then", "LABEL",
]

#: `$ NAME:` starts a label (not `:=`, not a device `NAME::`).
LABEL = re.compile(r"\s*([A-Za-z0-9$_]+):(?![=:])\s*")


@dataclass
class Line:
    number: int  # the first record of the command, counting from 1
    text: str  # the command after `$`, comments removed, continuations joined
    data: bool = False  # a record that does not start with `$`
    source: str = ""  # the records as written (SET VERIFY shows them)
    comment: str = ""  # the `!` comment the records end with


def split_comment(text: str) -> tuple[str, str]:
    """(command, comment): the comment is `!` and what follows, outside double quotes."""
    inq = False
    for i, c in enumerate(text):
        if c == '"':
            inq = not inq
        elif c == "!" and not inq:
            return text[:i], text[i:]
    return text, ""


def strip_comment(text: str) -> str:
    """Drop `!` and what follows, outside double quotes."""
    return split_comment(text)[0]


def load_lines(source: str) -> list[Line]:
    records = source.splitlines()
    out: list[Line] = []
    i = 0
    while i < len(records):
        rec = records[i]
        number = i + 1
        i += 1
        stripped = rec.lstrip()
        if not stripped or (number == 1 and rec.startswith("#!")):
            continue
        if not stripped.startswith("$"):
            out.append(Line(number, rec, data=True, source=rec))
            continue
        written = [stripped]
        text, comment = split_comment(stripped[1:])
        text = text.rstrip()
        while text.endswith("-") and i < len(records):
            nxt = records[i]
            i += 1
            written.append(nxt)
            more, comment = split_comment(nxt)
            text = text[:-1] + more.rstrip()
        if text.endswith("-"):
            text = text[:-1]
        out.append(Line(number, text, source="\n".join(written), comment=comment.rstrip()))
    return out


def _scan_name(text: str, i: int) -> int:
    j = i
    while j < len(text) and (text[j].isalnum() or text[j] in "$_"):
        j += 1
    return j


#: How much iterative substitution may add before DCL's command buffer overflows.
MAX_COMMAND = 8192
#: Substitutions one command may go through (a symbol whose value names itself would loop).
MAX_RESCANS = 256


def _lexical_end(text: str, j: int) -> int:
    """The index of the `)` closing the argument list that starts at text[j] == "(" (or len)."""
    depth, k, q = 0, j, False
    while k < len(text):
        ch = text[k]
        if ch == '"':
            q = not q
        elif not q and ch == "(":
            depth += 1
        elif not q and ch == ")":
            depth -= 1
            if depth == 0:
                return k
        k += 1
    return k


def _substitution(text: str, i: int, lookup: Callable[[str], Value | None],
                  evaluate: Callable[[str], Value]) -> tuple[str, int] | None:
    """The value of the `'NAME'` or `'F$X(...)'` whose name starts at text[i], and where it ends."""
    j = _scan_name(text, i)
    name = text[i:j]
    n = len(text)
    if name.upper().startswith("F$") and j < n and text[j] == "(":
        k = _lexical_end(text, j)
        if k + 1 < n and text[k + 1] == "'":
            return to_str(evaluate(text[i:k + 1])), k + 2
        return None
    if name and j < n and text[j] == "'":
        value = lookup(name)
        return ("" if value is None else to_str(value)), j + 1
    return None


def substitute_apostrophes(text: str, lookup: Callable[[str], Value | None],
                           evaluate: Callable[[str], Value]) -> str:
    """Phase 1: `'NAME'` outside quotes and `''NAME'` inside them become the symbol's value.

    An undefined symbol gives the null string, as in DCL; `'F$FUNC(...)'` is evaluated.
    A lone apostrophe inside quotes, or one with no closing apostrophe, stays as it is.
    Substitution is iterative outside quotes: the value is scanned again, so `'FILE'` whose
    value is `'FILE1'` becomes FILE1's value (User's Manual, "Understanding Symbol
    Substitution"); inside quotes the value is taken as it is.
    """
    out: list[str] = []
    i, inq, rescans = 0, False, 0
    while i < len(text):
        c = text[i]
        if c != "'":
            if c == '"':
                inq = not inq
            out.append(c)
            i += 1
            continue
        double = text.startswith("''", i)
        if inq and not double:
            out.append(c)
            i += 1
            continue
        start = i + (2 if double else 1)
        hit = _substitution(text, start, lookup, evaluate)
        if hit is None:
            out.append(text[i:start])
            i = start
            continue
        value, end = hit
        if inq:
            out.append(value)
            i = end
            continue
        text = value + text[end:]  # outside quotes the value is scanned again
        i = 0
        rescans += 1
        if rescans > MAX_RESCANS or len(text) + sum(map(len, out)) > MAX_COMMAND:
            raise signal("BUFOVF")
    return "".join(out)


def substitute_ampersands(text: str, lookup: Callable[[str], Value | None], quote: bool = False) -> str:
    """Phase 2: `&NAME` outside quotes becomes the symbol's value; undefined is UNDSYM.

    DCL substitutes ampersands after the command line is upper-cased, so the value keeps its
    case; with *quote* the value is put in quotes for a parser that would upper-case it.
    """
    if "&" not in text:
        return text
    out: list[str] = []
    i, inq = 0, False
    while i < len(text):
        c = text[i]
        if c == '"':
            inq = not inq
        if c == "&" and not inq:
            j = _scan_name(text, i + 1)
            name = text[i + 1:j]
            if name:
                value = lookup(name)
                if value is None:
                    raise signal("UNDSYM", name.upper())
                value = to_str(value)
                out.append('"' + value.replace('"', '""') + '"' if quote else value)
                i = j
                continue
        out.append(c)
        i += 1
    return "".join(out)


def split_words(text: str) -> list[str]:
    """Blank-separated words; quoted text (with `""` for a quote) stays in its word, quotes kept."""
    words: list[str] = []
    cur: list[str] = []
    inq = False
    for c in text:
        if c == '"':
            inq = not inq
            cur.append(c)
        elif c in " \t" and not inq:
            if cur:
                words.append("".join(cur))
                cur = []
        else:
            cur.append(c)
    if inq:
        raise signal("UNDQUOTE", text.strip())
    if cur:
        words.append("".join(cur))
    return words


def unquote(word: str) -> str:
    """Remove the quotes of a word (a doubled quote inside quotes is one); unquoted parts stay.

    An unterminated quoted string runs to the end of the word (split_words refuses it first)."""
    return "".join(piece for piece, _ in quoted_runs(word, strict=False))


def upcase_unquoted(word: str) -> str:
    """DCL's treatment of a procedure parameter: unquoted text upper-cased, quotes removed."""
    return "".join(piece if quoted else piece.upper() for piece, quoted in quoted_runs(word, strict=False))


@dataclass(frozen=True)
class QualSpec:
    """A verb's qualifier: `value` is "none", "optional" or "required"."""

    name: str
    value: str = "none"
    negatable: bool = False


@dataclass
class Parsed:
    params: list[str] = field(default_factory=list)
    quals: dict[str, str | bool] = field(default_factory=dict)


def _match_qual(word: str, specs: tuple[QualSpec, ...]) -> tuple[QualSpec, bool] | None:
    """The qualifier *word* (without `/`, without value) abbreviates, and whether it is negated."""
    w = word.upper()
    for neg in (False, True):
        if neg and not w.startswith("NO"):
            continue
        allowed = [q for q in specs if q.negatable or not neg]
        hits = abbreviations(w[2:] if neg else w, [q.name for q in allowed])
        if len(hits) == 1:
            return next(q for q in allowed if q.name == hits[0]), neg
    return None


def split_top(text: str, sep: str = ",") -> list[str]:
    """Split at *sep* outside quotes and parentheses (quotes kept): a WRITE list, a word's `/`."""
    parts: list[str] = []
    cur, inq, depth = "", False, 0
    for c in text:
        if c == '"':
            inq = not inq
        elif not inq and c == "(":
            depth += 1
        elif not inq and c == ")":
            depth -= 1
        elif c == sep and not inq and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        cur += c
    parts.append(cur)
    return parts


def parse_args(text: str, specs: tuple[QualSpec, ...]) -> Parsed:
    """Words into parameters and qualifiers.

    A word splits at `/` only where every part after a slash names one of the verb's
    qualifiers; otherwise it is a parameter as typed, so a Linux path (`/srv/wucme`) stays
    a parameter.  A word that starts with `/` and names no qualifier is refused (IVQUAL)
    unless it looks like a path (a second `/` or a `.`).
    """
    parsed = Parsed()
    for word in split_words(text):
        parts = split_top(word, "/")
        quals = parts[1:]
        matched = [(_match_qual(q.split("=", 1)[0], specs), q) for q in quals]
        if quals and all(m is not None for m, _ in matched):
            if parts[0]:
                parsed.params.append(parts[0])
            for m, q in matched:
                assert m is not None
                spec, neg = m
                _, eq, value = q.partition("=")
                if neg:
                    if eq:
                        raise signal("NOVALU", q.upper())
                    parsed.quals[spec.name] = False
                elif eq:
                    if spec.value == "none":
                        raise signal("NOVALU", q.upper())
                    parsed.quals[spec.name] = value
                else:
                    if spec.value == "required":
                        raise signal("VALREQ", spec.name)
                    parsed.quals[spec.name] = True
            continue
        if word.startswith("/") and word.count("/") < 2 and "." not in word:
            raise signal("IVQUAL", word[1:].split("=", 1)[0].upper())
        parsed.params.append(word)
    return parsed


_THEN = re.compile(r"(?:(?<=[\s)\"])|^)THEN(?=\s|$|\$)", re.IGNORECASE)


def find_then(text: str) -> tuple[str, str | None]:
    """Split `expr THEN command` at THEN outside quotes: (expr, command or None when absent)."""
    inq = False
    quoted = [False] * len(text)
    for i, c in enumerate(text):
        if c == '"':
            inq = not inq
        quoted[i] = inq
    for m in _THEN.finditer(text):
        if not quoted[m.start()]:
            return text[:m.start()], text[m.end():]
    return text, None
