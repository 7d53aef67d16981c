"""Progress and diagnostics by verbosity level (port of uacme's msg.c).

Level 0 always shows; -v raises the level: 1 progress, 2 payloads and JSON,
3 headers, bodies and whole JWS.  Private keys never reach this module.
"""
from __future__ import annotations

import sys
import threading
from typing import Callable, TextIO


class Msg:
    """A `msg(level, text)` writer, safe to call from the authorization threads."""

    def __init__(self, level: int = 0, stream: TextIO | None = None, prog: str = "wucme"):
        self.level = level
        self.stream = stream
        self.prog = prog
        self._lock = threading.Lock()

    def __call__(self, level: int, text: str) -> None:
        if level <= self.level:
            self.write(text)

    def on(self, level: int) -> bool:
        """Whether `msg(level, ...)` would be shown: costly texts (a JSON dump of every answer)
        are made only then."""
        return level <= self.level

    def write(self, text: str) -> None:
        stream = self.stream or sys.stderr
        with self._lock:
            stream.write(f"{self.prog}: {text}\n")
            stream.flush()

    def at(self, level: int) -> Callable[[str], None]:
        """`msg(level, ...)` as a one-argument writer, for code below the uacme port."""
        return lambda text: self(level, text)

    def warn(self, text: str) -> None:
        """uacme's warnx(): shown at every level."""
        self.write(text)


def scan_char(stream: TextIO | None = None) -> str | None:
    """uacme's scanf(" %c"): skip white space (newlines too), take one character.

    The rest of the line stays unread for the next question, as with stdio; None at end of input.
    """
    stream = stream or sys.stdin
    while True:
        c = stream.read(1)
        if not c:
            return None
        if c not in " \t\n\v\f\r":
            return c
