"""The static structure of a procedure: its labels, IF-block depth and SUBROUTINE blocks.

DCL finds a label wherever it is in the file (a GOTO forward scans ahead).  A label inside a
SUBROUTINE ... ENDSUBROUTINE block belongs to that subroutine, and a label outside belongs to
the procedure body (DCL Dictionary, CALL: "labels in a subroutine are local to it"); the label
that starts a subroutine (`$ NAME: SUBROUTINE`) belongs to the scope that calls it.  Each label
records the IF depth at its line, so a GOTO out of a block leaves the blocks it jumps out of.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from wucme.dclproc.scan import LABEL, Line, find_then, load_lines
from wucme.dclproc.verbnames import verb_names

__all__ = ["Procedure", "Label", "classify", "strip_labels"]

_ASSIGN = re.compile(r"\s*[A-Za-z$_][A-Za-z0-9$_]*(?:\*[A-Za-z0-9$_]*)?\s*(?:\[[^\]]*\])?\s*(?::==|:=|==|=)")
_WORD = re.compile(r"\s*([A-Za-z$_][A-Za-z0-9$_]*)")
_BLOCK_VERBS = {"THEN": "THEN", "ELSE": "ELSE", "ENDIF": "ENDIF", "SUBROUTINE": "SUBROUTINE",
                "ENDSUBROUTINE": "ENDSUBROUTINE"}


def strip_labels(text: str) -> str:
    while (m := LABEL.match(text)) is not None:
        text = text[m.end():]
    return text


def classify(text: str) -> str:
    """IF_BLOCK, IF_LINE, THEN, ELSE, ENDIF, SUBROUTINE, ENDSUBROUTINE or OTHER, from a command's text."""
    if _ASSIGN.match(text):
        return "OTHER"
    m = _WORD.match(text)
    if not m:
        return "OTHER"
    rest = text[m.end():]
    if rest[:1] not in ("", " ", "\t", "/", "$"):
        return "OTHER"
    hits = verb_names(m.group(1))
    if len(hits) != 1:
        return "OTHER"
    if hits[0] == "IF":
        _, cmd = find_then(rest)
        return "IF_BLOCK" if cmd is None or not cmd.strip().lstrip("$").strip() else "IF_LINE"
    return _BLOCK_VERBS.get(hits[0], "OTHER")


@dataclass(frozen=True)
class Label:
    index: int  # the line the label is on
    depth: int  # IF-block depth there, counted from the start of its scope
    scope: int | None  # the SUBROUTINE line of its subroutine, None in the procedure body


@dataclass
class Procedure:
    """A procedure file read once: its lines and structure, shared by every level running it."""

    path: Path
    lines: list[Line]
    labels: dict[tuple[int | None, str], Label]
    sub_end: dict[int, int]  # SUBROUTINE line -> its ENDSUBROUTINE line (or the end of the file)
    parent: dict[int, int | None]  # SUBROUTINE line -> the scope it is defined in

    @classmethod
    def read(cls, path: Path, source: str) -> Procedure:
        proc = cls(path, load_lines(source), {}, {}, {})
        proc._scan()
        return proc

    def _scan(self) -> None:
        scopes: list[tuple[int | None, int]] = [(None, 0)]  # (scope, IF depth) innermost last
        for i, line in enumerate(self.lines):
            if line.data:
                continue
            text = line.text
            scope, depth = scopes[-1]
            while (m := LABEL.match(text)) is not None:
                self.labels.setdefault((scope, m.group(1).upper()), Label(i, depth, scope))
                text = text[m.end():]
            kind = classify(text)
            if kind == "IF_BLOCK":
                scopes[-1] = (scope, depth + 1)
            elif kind == "ENDIF":
                scopes[-1] = (scope, max(0, depth - 1))
            elif kind == "SUBROUTINE":
                self.parent[i] = scope
                self.sub_end[i] = len(self.lines)
                scopes.append((i, 0))
            elif kind == "ENDSUBROUTINE" and len(scopes) > 1:
                self.sub_end[scopes.pop()[0]] = i  # type: ignore[index]

    def label(self, name: str, scope: int | None, outward: bool = False) -> Label | None:
        """The label *name* seen from *scope*; with *outward* (CALL), also from the scopes around it."""
        key = name.upper()
        while True:
            hit = self.labels.get((scope, key))
            if hit is not None or not outward or scope is None:
                return hit
            scope = self.parent.get(scope)
