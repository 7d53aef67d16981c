"""What a verb returns, and its two plain renderings: text (the command line, the admin pages'
`?format=text`) and JSON (`/OUTPUT=JSON`).  The admin pages render the same result as HTML.

A result is a sequence of blocks in the order the verb made them: VMS messages (Condition,
formatted only by wucme.vms.condition.format_message), key/value facts, a table, preformatted
text.  A face that wants them as they come (the command line, while `issue` or `manage` runs)
passes `show`, which gets each block the moment it is added; a `show` whose `keep_blocks` is
False (the command line's) has seen the I and S messages for good, and the result keeps none
of them (their exit status is 0, the least): a pass over 100,000 certificates says "not due"
100,000 times.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, NamedTuple, Union

from wucme.vms.condition import Condition, exit_status

__all__ = ["Cell", "Facts", "Table", "Text", "Block", "Show", "Result", "block_lines", "render_text",
           "render_json", "cell_text", "one_line"]

#: A table cell: text, or a list of names (text shows the first and a count, HTML all of them).
Cell = Union[str, tuple[str, ...]]


class Facts(NamedTuple):
    """Key/value lines (`  terms of service: https://...`)."""

    items: tuple[tuple[str, str], ...]


class Table(NamedTuple):
    """Rows under a heading; the last column is not padded (it may be long)."""

    heading: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]


class Text(NamedTuple):
    """Preformatted text shown as it is (a log)."""

    text: str


Block = Union[Condition, Facts, Table, Text]
Show = Callable[[Block], None]


class Result:
    """A verb's output; `status` is the exit status its worst message asks for.

    The blocks are named tuples and this a plain class, not dataclasses: `dataclasses`
    brings `inspect` and `ast` into every verb's start (docs/performance.md)."""

    __slots__ = ("title", "blocks", "data", "show")

    def __init__(self, title: str = "", blocks: list[Block] | None = None,
                 data: dict[str, Any] | None = None, show: Show | None = None) -> None:
        self.title = title
        self.blocks: list[Block] = [] if blocks is None else blocks
        #: The verb's own JSON form (`certificates`), when it has one; else render_json builds one.
        self.data = data
        self.show = show

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, Result)
        return (self.title, self.blocks, self.data) == (other.title, other.blocks, other.data)

    __hash__ = None  # type: ignore[assignment]  # mutable, as a dataclass with eq

    def __repr__(self) -> str:
        return f"Result(title={self.title!r}, blocks={self.blocks!r}, data={self.data!r})"

    @property
    def keeps_all(self) -> bool:
        """Does the result keep every block?  Not when its `show` has them for good."""
        return self.show is None or getattr(self.show, "keep_blocks", True)

    def add(self, block: Block) -> Result:
        if not self.keeps_all and isinstance(block, Condition) and block.severity in ("I", "S"):
            self.show(block)  # type: ignore[misc]
            return self  # (I and S ask for exit status 0: not kept, they change no status)
        self.blocks.append(block)
        if self.show is not None:
            self.show(block)
        return self

    def say(self, severity: str, ident: str, text: str) -> Result:
        return self.add(Condition(severity, ident, text))

    def facts(self, *items: tuple[str, str]) -> Result:
        return self.add(Facts(tuple(items)))

    def table(self, heading: tuple[str, ...], rows: list[tuple[Cell, ...]]) -> Result:
        return self.add(Table(heading, tuple(rows)))

    def text(self, text: str) -> Result:
        return self.add(Text(text))

    @property
    def messages(self) -> list[Condition]:
        return [b for b in self.blocks if isinstance(b, Condition)]

    @property
    def status(self) -> int:
        return max([0] + [exit_status(m.severity) for m in self.messages])

    @property
    def failed(self) -> bool:
        return any(m.severity in ("E", "F") for m in self.messages)


def one_line(text: str) -> str:
    """*text* on one line: a multi-line message (a CA's problem document, a traceback's tail)
    folded, its lines joined by " / ", so a table row stays one row."""
    return " / ".join(part for part in (line.strip() for line in text.splitlines()) if part)


def cell_text(cell: Cell) -> str:
    """A cell on one line: a list of names as its first and `+N` for the rest."""
    if isinstance(cell, str):
        return one_line(cell)
    return (cell[0] if cell else "-") + (f" +{len(cell) - 1}" if len(cell) > 1 else "")


def block_lines(block: Block) -> list[str]:
    """The lines of one block as text."""
    if isinstance(block, Condition):
        return [block.message()]
    if isinstance(block, Facts):
        width = max((len(k) for k, _ in block.items), default=0)
        return [f"  {k + ':':<{width + 1}} {v}" for k, v in block.items]
    if isinstance(block, Table):
        rows = [block.heading] + [tuple(cell_text(c) for c in row) for row in block.rows]
        widths = [max(len(r[i]) for r in rows) for i in range(len(block.heading) - 1)]
        return ["  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1] for r in rows]
    return block.text.rstrip("\n").split("\n") if block.text else []


def render_text(result: Result) -> str:
    return "".join(line + "\n" for b in result.blocks for line in block_lines(b))


def render_json(result: Result) -> str:
    """The result as one JSON object: the verb's own data (`certificates`: the repository and
    its records), its messages and exit status, and its facts, table and text when it has no
    data of its own."""
    out: dict[str, Any] = dict(result.data) if result.data is not None else {}
    out["status"] = result.status
    out["messages"] = [{"severity": m.severity, "ident": m.ident, "text": m.text, "message": m.message()}
                       for m in result.messages]
    if result.data is None:
        for b in result.blocks:
            if isinstance(b, Facts):
                out.setdefault("facts", {}).update(dict(b.items))
            elif isinstance(b, Table):
                out["table"] = [dict(zip(b.heading, (list(c) if isinstance(c, tuple) else c for c in row)))
                                for row in b.rows]
            elif isinstance(b, Text):
                out["text"] = out.get("text", "") + b.text
    return json.dumps(out, indent=1)
