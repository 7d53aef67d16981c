"""What the verbs share: keyword matching, parameter counts, DCL's reading of unquoted text."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from wucme.dclproc.status import signal
from wucme.vms.dcllex import abbreviations, quoted_runs

if TYPE_CHECKING:
    from wucme.dclproc.interp import Interpreter

__all__ = ["Handler", "match_keyword", "need", "string_value"]

Handler = Callable[["Interpreter", str], "int | None"]


def match_keyword(word: str, names: tuple[str, ...] | list[str], ident: str = "IVKEYW") -> str:
    """The one keyword *word* abbreviates; IVKEYW (or *ident*) for none, ABKEYW for several."""
    w = word.upper()
    hits = abbreviations(w, names)
    if len(hits) == 1:
        return hits[0]
    if hits:
        raise signal("ABKEYW" if ident == "IVKEYW" else "ABVERB", w)
    raise signal(ident, w)


def need(params: list[str], count: int, most: int | None = None) -> None:
    """INSFPRM when fewer than *count* parameters, MAXPARM when more than *most*."""
    from wucme.dclproc.scan import unquote

    if len(params) < count:
        raise signal("INSFPRM")
    if most is not None and len(params) > most:
        raise signal("MAXPARM", unquote(params[most]).upper())


def string_value(text: str) -> str:
    """The value of `X := text` (and INQUIRE input): unquoted text upper-cased and its blanks
    compressed, quoted text kept, ends trimmed (DCL Dictionary, := String Assignment)."""
    out: list[str] = []
    blank = False
    for piece, quoted in quoted_runs(text.strip(" \t"), strict=False):
        for c in piece:
            if not quoted and c in " \t":
                if not blank:
                    out.append(" ")
                blank = True
            else:
                out.append(c if quoted else c.upper())
                blank = False
    return "".join(out).strip(" ")
