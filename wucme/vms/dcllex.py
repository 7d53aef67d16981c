"""DCL's lexical rules that its parsers share: double quotes, keyword abbreviation, equivalence lists.

Both DCL faces (the verbs' command line, wucme.command, and the procedure interpreter,
wucme.dclproc) read quotes and abbreviations by these, so the rules live once, here below them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from wucme.vms.message import VmsError

__all__ = [
    "QuoteError", "SPEC", "WORD", "abbreviations", "is_vms_spec", "parse_equivalence_list", "quote",
    "quoted_runs", "split_search_list",
]

#: One character of a VMS name (node, device, directory, file name or type).
WORD = r"[A-Za-z0-9_$-]"
#: A VMS file specification, `NODE::DEV:[DIR.SUB]NAME.TYPE;VERSION`, every part optional
#: (parsed by wucme.vms.filespec; here so a caller can tell a spec from a Linux path cheaply).
SPEC = re.compile(
    rf"(?:(?P<node>{WORD}+)::)?"
    rf"(?:(?P<device>{WORD}+):)?"
    r"(?P<dir>(?:\[[^\[\]<>]*\]|<[^\[\]<>]*>){0,2})"
    rf"(?P<name>{WORD}*)"
    rf"(?:\.(?P<type>{WORD}*))?"
    r"(?:[;.](?P<version>-?[0-9]*))?"
)


def is_vms_spec(spec: str) -> bool:
    """True when *spec* is to be read as a VMS specification rather than a Linux path."""
    if "/" in spec or not any(c in spec for c in ":[<"):
        return False
    return SPEC.fullmatch(spec.strip()) is not None


class QuoteError(VmsError):
    """Text DCL would refuse (an unterminated quoted string)."""

    ident = "UNDQUOTE"


def quoted_runs(text: str, strict: bool = True) -> Iterator[tuple[str, bool]]:
    """*text* as DCL reads its double quotes: runs of (text, quoted), the delimiting quotes gone.

    Inside quotes ``""`` is one literal quote.  Every quoted string is a run of its own, an
    empty one too (``""`` is the empty string, which DEFINE must see), while unquoted runs are
    never empty.  An unterminated quoted string raises QuoteError, or with ``strict=False``
    runs to the end, as DCL's procedure parameters let it.
    """
    i, n = 0, len(text)
    while i < n:
        if text[i] != '"':
            j = text.find('"', i)
            j = n if j < 0 else j
            yield text[i:j], False
            i = j
            continue
        run: list[str] = []
        i += 1
        while True:
            j = text.find('"', i)
            if j < 0:
                if strict:
                    raise QuoteError(f"unterminated quoted string in {text!r}")
                run.append(text[i:])
                i = n
                break
            run.append(text[i:j])
            if text.startswith('""', j):
                run.append('"')
                i = j + 2
                continue
            i = j + 1
            break
        yield "".join(run), True


def abbreviations(word: str, choices: Iterable[str]) -> list[str]:
    """The *choices* that *word* names, case-insensitively: the one it equals (an exact name
    wins over longer ones it abbreviates), else all it abbreviates; none for an empty word.

    One hit is a match; more are DCL's ambiguous abbreviation, which each caller reports
    in its own way (a DclError, a procedure's signal).
    """
    w = word.lower()
    if not w:
        return []
    names = list(choices)
    for c in names:
        if c.lower() == w:
            return [c]
    return [c for c in names if c.lower().startswith(w)]


def parse_equivalence_list(text: str, upcase: bool = False) -> list[str]:
    """Split DEFINE's value parameter into equivalence strings, by DCL's rules.

    Commas outside double quotes separate elements; inside quotes case, commas and
    spaces are kept and ``""`` is one literal quote; an element may mix quoted and
    unquoted parts (``abc"Def"`` is ``ABCDef`` under DCL).  Blanks around unquoted
    text are dropped.  DCL upper-cases unquoted text; wucme does so only with
    *upcase* because Linux paths are case-sensitive (``/srv/certs`` must stay so).
    Empty elements are returned as ``""``; DEFINE refuses them.
    """
    out: list[str] = []
    parts: list[str] = []  # pieces of the current element
    plain: list[str] = []  # the unquoted text being collected
    started = False

    def flush_plain(final: bool) -> None:
        run = "".join(plain)
        plain.clear()
        if not parts:
            run = run.lstrip()
        if final:
            run = run.rstrip()
        parts.append(run.upper() if upcase else run)

    for piece, quoted in quoted_runs(text):
        if quoted:
            flush_plain(False)
            parts.append(piece)
            started = True
            continue
        for k, chunk in enumerate(piece.split(",")):
            if k:  # a comma ends the element
                flush_plain(True)
                out.append("".join(parts))
                parts.clear()
                started = False
            if chunk:
                plain.append(chunk)
                started = True
    if started or out or parts or plain:
        flush_plain(True)
        out.append("".join(parts))
    return out


def quote(value: str) -> str:
    """The DCL quoted form of one equivalence string (inverse of parse for one element)."""
    return '"' + value.replace('"', '""') + '"'


def split_search_list(value: str) -> list[str]:
    """Split a value such as ``system,smtp%"a@b"`` at commas outside double quotes.

    This is the second level: the value already came out of DEFINE (or an
    environment variable), so its quotes are literal characters and stay in the
    items (``smtp%"a@b"`` is a VMS MAIL address).  Blanks around items are dropped,
    empty items skipped; an unbalanced quote runs to the end of the value.
    """
    items: list[str] = []
    cur: list[str] = []
    inq = False
    for c in value:
        if c == '"':
            inq = not inq
        if c == "," and not inq:
            items.append("".join(cur).strip())
            cur.clear()
        else:
            cur.append(c)
    items.append("".join(cur).strip())
    return [item for item in items if item]
