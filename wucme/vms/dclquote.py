"""DCL quoting for equivalence lists (`DEFINE NAME "a,b",c`) and VMS-style search-list values."""

from __future__ import annotations

from wucme.vms.msg import VmsError

__all__ = ["QuoteError", "parse_equivalence_list", "split_search_list", "quote"]


class QuoteError(VmsError):
    """An equivalence list DCL would refuse (an unterminated quoted string)."""

    ident = "UNDQUOTE"


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
    plain: list[str] = []  # the unquoted run being collected
    i, n = 0, len(text)
    started = False

    def flush_plain(final: bool) -> None:
        run = "".join(plain)
        plain.clear()
        if not parts:
            run = run.lstrip()
        if final:
            run = run.rstrip()
        parts.append(run.upper() if upcase else run)

    while i < n:
        c = text[i]
        if c == '"':
            flush_plain(False)
            i += 1
            quoted: list[str] = []
            while True:
                if i >= n:
                    raise QuoteError(f"unterminated quoted string in {text!r}")
                if text[i] == '"':
                    if i + 1 < n and text[i + 1] == '"':
                        quoted.append('"')
                        i += 2
                        continue
                    i += 1
                    break
                quoted.append(text[i])
                i += 1
            parts.append("".join(quoted))
            started = True
        elif c == ",":
            flush_plain(True)
            out.append("".join(parts))
            parts.clear()
            i += 1
            started = False
        else:
            plain.append(c)
            started = True
            i += 1
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
