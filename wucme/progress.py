"""Progress of a long `issue`: each authorization's state, as a bar on a terminal, lines otherwise.

Fed by the challenge responder, which sees uacme's hook protocol for every authorization:
`begin` (the challenge is being answered), then `done` (valid) or `failed` (invalid).
Authorizations the CA already holds as valid never reach the responder; `finish` fills them in.
"""
from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

STATES = ("pending", "answering", "valid", "invalid")


class Progress:
    """Authorization states of one order; thread-safe (the authorizations run in parallel)."""

    def __init__(self, names: list[str], stream: TextIO | None = None, tty: bool | None = None,
                 width: int = 30):
        self.names = list(names)
        self.state = dict.fromkeys(self.names, "pending")
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty() if tty is None else tty
        self.width = width
        self._lock = threading.Lock()
        self._drawn = False
        self._last_draw = 0.0

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(STATES, 0)
        for s in self.state.values():
            out[s] += 1
        return out

    def update(self, name: str, state: str, detail: str = "") -> None:
        if state not in STATES:
            raise ValueError(state)
        with self._lock:
            if name not in self.state:
                self.names.append(name)
            self.state[name] = state
            if self.tty:
                self._draw(force=state in ("valid", "invalid"))
            else:
                self.stream.write(f"  {name}: {state}{(' ' + detail) if detail else ''}\n")
                self.stream.flush()

    def bar(self) -> str:
        """`[#########.........] 12/40 valid, 3 answering, 1 invalid`."""
        c = self.counts()
        total = max(len(self.names), 1)
        done = c["valid"] + c["invalid"]
        filled = self.width * done // total
        text = f"[{'#' * filled}{'.' * (self.width - filled)}] {c['valid']}/{len(self.names)} valid"
        if c["answering"]:
            text += f", {c['answering']} answering"
        if c["invalid"]:
            text += f", {c['invalid']} invalid"
        return text

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_draw < 0.1:
            return
        self._last_draw = now
        self.stream.write("\r" + self.bar() + "\x1b[K")
        self.stream.flush()
        self._drawn = True

    def finish(self, ok: bool) -> None:
        """End the display; on success the authorizations never answered were already valid."""
        with self._lock:
            if ok:
                for n, s in self.state.items():
                    if s == "pending":
                        self.state[n] = "valid"
            if self.tty:
                self._draw(force=True)
                self.stream.write("\n")
                self.stream.flush()
                bad = [n for n, s in self.state.items() if s == "invalid"]
                for n in bad:
                    self.stream.write(f"  {n}: invalid\n")
