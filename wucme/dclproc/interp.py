"""The command procedure interpreter: procedure levels, control flow, status and ON handling.

Each `@` starts a level with its own local symbols, P1..P8, IF-block stack, GOSUB stack and
ON setting (default ON ERROR THEN EXIT).  After every command that has a status, $STATUS and
$SEVERITY are set; a failure at or above the ON severity runs the ON action.  Assignments,
IF/THEN/ELSE/ENDIF, GOTO, GOSUB, labels and SHOW SYMBOL leave $STATUS as it was, so
`$ IF .NOT. $STATUS THEN EXIT $STATUS` works.  The verbs themselves are in verbs.py.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Callable

from wucme.dclproc import scan
from wucme.dclproc.scan import LABEL, Line, find_then, load_lines, split_words
from wucme.dclproc.expr import evaluate
from wucme.dclproc.lexicals import call_lexical
from wucme.dclproc.status import (
    CLI_NORMAL, INHIBIT, DclSignal, is_success, message_lines, signal, status_text,
)
from wucme.dclproc.values import Symbols, Value, to_int
from wucme.errors import WucmeError
from wucme.vms.condition import VmsError

__all__ = ["Interpreter", "Exit", "Frame", "resolve_procedure", "MAX_DEPTH"]

MAX_DEPTH = 32
_ASSIGN = re.compile(r"\s*([A-Za-z$_][A-Za-z0-9$_]*)\s*(:==|:=|==|=)(.*)\Z", re.DOTALL)
_VERB = re.compile(r"\s*([A-Za-z$_][A-Za-z0-9$_]*)")
# ON severity thresholds: the lowest severity rank that triggers (W=1, E=2, F=3).
_RANK = {0: 1, 2: 2, 4: 3}


class Exit(Exception):
    """EXIT (or an ON action) leaving the current procedure level with *status*."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


@dataclass
class IfBlock:
    state: str  # THEN, SKIPTHEN, ELSE, SKIPELSE, DEAD
    pending_then: bool = False


@dataclass
class Frame:
    path: Path
    lines: list[Line]
    labels: dict[str, tuple[int, int]]  # name -> (index of the line, IF-block depth there)
    pc: int = 0
    ifs: list[IfBlock] = field(default_factory=list)
    gosubs: list[tuple[int, int]] = field(default_factory=list)
    on_enabled: bool = True
    on_rank: int = 2
    on_action: str = "EXIT"
    in_data: bool = False
    line: Line | None = None

    def skipping(self) -> bool:
        return bool(self.ifs) and self.ifs[-1].state in ("SKIPTHEN", "SKIPELSE", "DEAD")


def classify(text: str) -> str:
    """IF_BLOCK, IF_LINE, THEN, ELSE, ENDIF or OTHER, from a command's raw text."""
    m = _VERB.match(text)
    if not m:
        return "OTHER"
    word = m.group(1).upper()
    rest = text[m.end():]
    if word == "IF":
        _, cmd = find_then(rest)
        return "IF_BLOCK" if cmd is None or not cmd.strip().lstrip("$").strip() else "IF_LINE"
    for name, kind in (("THEN", "THEN"), ("ELSE", "ELSE"), ("ENDIF", "ENDIF")):
        if word == name or (len(word) >= 4 and name.startswith(word) and word != "ENDS"):
            if rest[:1] in ("", " ", "\t", "/", "$"):
                return kind
    return "OTHER"


def _scan_labels(lines: list[Line]) -> dict[str, tuple[int, int]]:
    labels: dict[str, tuple[int, int]] = {}
    depth = 0
    for i, line in enumerate(lines):
        if line.data:
            continue
        text = line.text
        while (m := LABEL.match(text)) is not None:
            labels.setdefault(m.group(1).upper(), (i, depth))
            text = text[m.end():]
        kind = classify(text)
        if kind == "IF_BLOCK":
            depth += 1
        elif kind == "ENDIF":
            depth = max(0, depth - 1)
    return labels


def resolve_procedure(spec: str) -> Path | None:
    """The file `@spec` runs: default type .COM, names matched case-insensitively."""
    from wucme.vms.filespec import is_vms_spec, parse_filespec, to_path

    spec = spec.strip()
    if is_vms_spec(spec):
        try:
            if parse_filespec(spec).type is None:
                spec += ".COM"
            return to_path(spec) if to_path(spec).is_file() else None
        except VmsError:
            return None
    p = Path(os.path.expanduser(spec))
    candidates = [p] if "." in p.name else [p.with_name(p.name + ".COM"), p.with_name(p.name + ".com"), p]
    for c in candidates:
        if c.is_file():
            return c
    parent = candidates[0].parent
    try:
        names = {e.name.lower(): e for e in parent.iterdir()}
    except OSError:
        return None
    for c in candidates:
        hit = names.get(c.name.lower())
        if hit is not None and hit.is_file():
            return hit
    return None


def _fileno(stream: IO[str] | None) -> int | None:
    if stream is None:
        return None
    try:
        return stream.fileno()
    except (AttributeError, OSError, io.UnsupportedOperation, ValueError):
        return None


class Interpreter:
    """One DCL process: global symbols, open channels, and the stack of procedure levels."""

    def __init__(self, stdout: IO[str] | None = None, stderr: IO[str] | None = None,
                 stdin: IO[str] | None = None) -> None:
        self.stdout = stdout if stdout is not None else sys.stdout
        self.stderr = stderr if stderr is not None else sys.stderr
        self.stdin = stdin if stdin is not None else sys.stdin
        self.symbols = Symbols()
        self.frames: list[Frame] = []
        self.channels: dict[str, IO[str]] = {}
        self.user_files: dict[str, str] = {}  # DEFINE/USER SYS$INPUT etc.: for the next image only
        self.user_names: list[str] = []  # other DEFINE/USER names, deassigned after the next image
        self.verify = False
        self.images: list[list[str]] = []  # argv of every image run, for diagnostics and tests
        self._set_status(CLI_NORMAL)
        from wucme.dclproc import commands

        self.commands = commands

    # --- context for lexicals
    @property
    def procedure(self) -> str:
        return str(self.frames[-1].path.resolve()) if self.frames else ""

    @property
    def depth(self) -> int:
        return len(self.frames)

    @property
    def verifying(self) -> bool:
        return self.verify

    @property
    def status(self) -> int:
        return to_int(self.symbols.globals.get("$STATUS", "%X00000001")) & 0xFFFFFFFF

    # --- evaluation
    def evaluate(self, text: str) -> Value:
        return evaluate(text, self.symbols.get, lambda n, a, r: call_lexical(self, n, a, r))

    def substitute(self, text: str) -> str:
        return scan.substitute_apostrophes(text, self.symbols.get, self.evaluate)

    def ampersands(self, text: str) -> str:
        return scan.substitute_ampersands(text, self.symbols.get)

    def _set_status(self, status: int) -> None:
        status &= 0xFFFFFFFF
        self.symbols.globals["$STATUS"] = status_text(status)
        self.symbols.globals["$SEVERITY"] = str(status & 7)

    # --- output
    def out(self, text: str) -> None:
        self.stdout.write(text + "\n")

    def err_lines(self, lines: list[str]) -> None:
        self.stdout.flush()
        for line in lines:
            self.stderr.write(line + "\n")
        self.stderr.flush()

    def _where(self) -> list[str]:
        line = self.frames[-1].line if self.frames else None
        if line is None:
            return []
        return [f"-DCL-I-AT, line {line.number} of {self.frames[-1].path}"]

    # --- procedures
    def run_file(self, spec: str, params: list[str]) -> int:
        """`@spec params`: run a procedure at a new level; its exit status."""
        if len(self.frames) >= MAX_DEPTH:
            raise signal("TOODEEP", spec)
        path = resolve_procedure(spec)
        if path is None:
            raise DclSignal("OPENIN", text=f"error opening {spec.upper()} as input", severity="E",
                            extra=("-RMS-E-FNF, file not found",))
        try:
            source = path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise DclSignal("OPENIN", text=f"error opening {spec.upper()} as input", severity="E",
                            extra=(f"-RMS-E-PRV, {exc.strerror}",)) from None
        lines = load_lines(source)
        frame = Frame(path, lines, _scan_labels(lines))
        self.frames.append(frame)
        self.symbols.push(params)
        saved_verify = self.verify
        try:
            return self._run_frame(frame)
        finally:
            self.frames.pop()
            self.symbols.pop()
            self.verify = saved_verify

    def _run_frame(self, frame: Frame) -> int:
        try:
            while frame.pc < len(frame.lines):
                line = frame.lines[frame.pc]
                frame.pc += 1
                frame.line = line
                self._step(frame, line)
            if frame.ifs:
                self.err_lines(signal("INVIFNEST", "ENDIF").lines() + self._where())
        except Exit as e:
            return e.status & 0xFFFFFFFF
        return self.status

    def _step(self, frame: Frame, line: Line) -> None:
        if line.data:
            if not frame.in_data and not frame.skipping():
                frame.in_data = True
                self._guarded(frame, lambda: self._raise(signal("SKPDAT")))
            return
        frame.in_data = False
        text = line.text
        while (m := LABEL.match(text)) is not None:
            text = text[m.end():]
        if frame.skipping():
            self._skip(frame, classify(text))
            return
        if frame.ifs and frame.ifs[-1].pending_then and classify(text) != "THEN":
            self._guarded(frame, lambda: self._raise(signal("INVIFNEST", text.strip()[:40].upper())))
            frame.ifs[-1].pending_then = False
            return
        if self.verify:
            self.out("$ " + line.text.strip())
        self._guarded(frame, lambda: self.command(text))

    @staticmethod
    def _raise(sig: DclSignal) -> int | None:
        raise sig

    def _skip(self, frame: Frame, kind: str) -> None:
        top = frame.ifs[-1]
        if kind == "IF_BLOCK":
            frame.ifs.append(IfBlock("DEAD"))
        elif kind == "THEN":
            top.pending_then = False
        elif kind == "ELSE" and top.state == "SKIPTHEN":
            top.state = "ELSE"
        elif kind == "ENDIF":
            frame.ifs.pop()

    def _guarded(self, frame: Frame, run: Callable[[], int | None]) -> None:
        """Run one command: report what it signals, set $STATUS, take the ON action."""
        try:
            status = run()
        except DclSignal as sig:
            self.err_lines(sig.lines() + self._where())
            status = sig.status | INHIBIT
        except (VmsError, WucmeError) as exc:
            facility = "SYSTEM" if isinstance(exc, VmsError) else "WUCME"
            sev = exc.severity if exc.severity in "WEF" else "E"
            self.err_lines([f"%{facility}-{sev}-{exc.ident}, {exc.text}"] + self._where())
            status = INHIBIT | 0x00038000 | (0x1FE << 3) | {"W": 0, "E": 2, "F": 4}[sev]
        if status is None:
            return
        self._set_status(status)
        if is_success(status) or not frame.on_enabled:
            return
        rank = _RANK.get(status & 7)
        if rank is None or rank < frame.on_rank:
            return
        action = frame.on_action
        if action.strip().upper() in ("EXIT", "EXI", "EXIT $STATUS"):
            raise Exit(status)
        self._guarded(frame, lambda: self.command(action))

    # --- one command
    def command(self, text: str, synonym_depth: int = 0) -> int | None:
        """Execute one command line (the part after `$`); its status, or None to keep $STATUS."""
        text = text.strip()
        if text.startswith("$"):
            text = text[1:].strip()
        if not text:
            return None
        if synonym_depth == 0:
            text = self.substitute(text).strip()
        m = _ASSIGN.match(text)
        if m:
            self.commands.assign(self, m.group(1), m.group(2), m.group(3))
            return None
        if text.startswith("@"):
            return self.commands.at(self, text[1:])
        m = _VERB.match(text)
        if not m:
            raise signal("IVVERB", split_words(text)[0].upper() if text.split() else text)
        word, rest = m.group(1), text[m.end():]
        if rest[:1] not in ("", " ", "\t", "/", '"', "(") and rest[:1] not in ("'",):
            raise signal("IVVERB", (word + rest).split()[0].upper())
        value = self.symbols.get(word)
        if isinstance(value, str) and value.strip() and synonym_depth < 8:
            if value.lstrip().startswith("$"):
                return self.commands.foreign(self, value.lstrip()[1:], rest)
            return self.command(value + rest, synonym_depth + 1)
        handler = self.commands.lookup_verb(word)
        return handler(self, rest)

    # --- control flow used by the verbs
    @property
    def frame(self) -> Frame:
        return self.frames[-1]

    def goto(self, label: str) -> None:
        frame = self.frame
        hit = frame.labels.get(label.upper())
        if hit is None:
            raise signal("USGOTO", label.upper())
        index, depth = hit
        if depth < len(frame.ifs):
            del frame.ifs[depth:]
        frame.pc = index  # the label's line runs next, with any command after the label

    def run_image(self, argv: list[str], wucme: bool) -> int:
        """Run an image as a child process; its Linux exit status as a $STATUS value."""
        from wucme.dclproc.status import image_status

        self.images.append(list(argv))
        files: list[IO[str]] = []
        try:
            stdin: int | IO[str] | None = None
            spec = self.user_files.get("SYS$INPUT")
            if spec is not None:
                if spec.upper().rstrip(":") in ("NL", "_NL", "NLA0"):
                    stdin = subprocess.DEVNULL
                else:
                    fin: IO[str] = open(self.commands.file_path(spec), encoding="utf-8")
                    files.append(fin)
                    stdin = fin
            elif _fileno(self.stdin) is None:
                stdin = subprocess.DEVNULL
            outs: list[int | IO[str] | None] = []
            for name, stream in (("SYS$OUTPUT", self.stdout), ("SYS$ERROR", self.stderr)):
                spec = self.user_files.get(name)
                if spec is not None:
                    f = open(self.commands.file_path(spec), "w", encoding="utf-8")
                    files.append(f)
                    outs.append(f)
                elif _fileno(stream) is not None:
                    outs.append(stream)
                else:
                    outs.append(subprocess.PIPE)
            self.stdout.flush()
            self.stderr.flush()
            try:
                proc = subprocess.run(argv, stdin=stdin, stdout=outs[0], stderr=outs[1],
                                      text=True, check=False)
            except OSError as exc:
                raise DclSignal("ACTIMAGE", text=f"error activating image {argv[0]}",
                                extra=(f"-CLI-E-IMAGEFNF, {exc.strerror}",)) from None
            if proc.stdout:
                self.stdout.write(proc.stdout)
            if proc.stderr:
                self.stderr.write(proc.stderr)
            return image_status(proc.returncode, wucme)
        finally:
            for opened in files:
                opened.close()
            self.user_files.clear()
            from wucme.vms import lnm

            for name in self.user_names:
                try:
                    lnm.deassign(name, "process")
                except VmsError:
                    pass
            self.user_names.clear()


def report_exit(interp: Interpreter, status: int) -> None:
    """At the outermost level DCL shows the message of a failure status not shown yet."""
    if not is_success(status) and not status & INHIBIT:
        interp.err_lines(message_lines(status))
