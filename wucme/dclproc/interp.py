"""The command procedure interpreter: procedure levels, control flow, status and ON handling.

Each `@` and each CALL starts a level with its own local symbols, P1..P8, IF-block stack,
GOSUB stack and ON setting (default ON ERROR THEN EXIT).  After every command that has a
status, $STATUS and $SEVERITY are set; a failure at or above the ON severity runs the ON
action, after which the default ON ERROR THEN EXIT is back in force (HELP ON).  Assignments,
IF/THEN/ELSE/ENDIF, GOTO, GOSUB, labels and SHOW SYMBOL leave $STATUS as it was, so
`$ IF .NOT. $STATUS THEN EXIT $STATUS` works.  The verbs themselves are in commands/.
"""

from __future__ import annotations

import io
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Callable

from wucme.dclproc import scan
from wucme.dclproc.blocks import Procedure, classify, strip_labels
from wucme.dclproc.expr import evaluate
from wucme.dclproc.lexicals import call_lexical
from wucme.dclproc.rms import resolve_procedure, vms_name
from wucme.dclproc.scan import Line, split_words
from wucme.dclproc.status import CLI_NORMAL, INHIBIT, DclSignal, is_success, message_lines, signal, status_text
from wucme.dclproc.values import Symbols, Value, to_int
from wucme.errors import WucmeError
from wucme.vms.condition import VmsError

__all__ = ["Interpreter", "Exit", "Frame", "IfBlock", "resolve_procedure", "MAX_DEPTH"]

MAX_DEPTH = 32
_ASSIGN = re.compile(r"\s*([A-Za-z$_][A-Za-z0-9$_]*(?:\*[A-Za-z0-9$_]*)?)\s*(\[[^\]]*\])?\s*(:==|:=|==|=)(.*)\Z",
                     re.DOTALL)
_VERB = re.compile(r"\s*([A-Za-z$_][A-Za-z0-9$_]*)")
# ON severity thresholds: the lowest severity rank that triggers (W=1, E=2, F=3).
_RANK = {0: 1, 2: 2, 4: 3}
_DEFAULT_ON = (2, "EXIT")  # ON ERROR THEN EXIT


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
    """One procedure level: a file run by `@`, or a subroutine run by CALL (*scope* its SUBROUTINE line)."""

    proc: Procedure
    pc: int = 0
    scope: int | None = None
    ifs: list[IfBlock] = field(default_factory=list)
    gosubs: list[tuple[int, list[IfBlock]]] = field(default_factory=list)
    on_enabled: bool = True
    on_rank: int = _DEFAULT_ON[0]
    on_action: str = _DEFAULT_ON[1]
    in_data: bool = False
    line: Line | None = None

    @property
    def path(self) -> Path:
        return self.proc.path

    def skipping(self) -> bool:
        return bool(self.ifs) and self.ifs[-1].state in ("SKIPTHEN", "SKIPELSE", "DEAD")


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
        self.searches: dict[int, tuple[str, list[str]]] = {}  # F$SEARCH stream -> (spec, files left)
        self.contexts: dict[str, object] = {}  # F$PID and other lexical contexts
        self.images: list[list[str]] = []  # argv of every image run, for diagnostics and tests
        self._set_status(CLI_NORMAL)
        from wucme.dclproc import commands

        self.commands = commands

    # --- context for lexicals
    @property
    def procedure(self) -> str:
        """The running procedure's file specification (F$ENVIRONMENT("PROCEDURE"))."""
        return vms_name(self.frames[-1].path.resolve()) if self.frames else ""

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

    def ampersands(self, text: str, quote: bool = False) -> str:
        return scan.substitute_ampersands(text, self.symbols.get, quote)

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

    # --- procedure levels
    def run_file(self, spec: str, params: list[str]) -> int:
        """`@spec params`: run a procedure at a new level; its exit status."""
        if len(self.frames) >= MAX_DEPTH:
            raise signal("TOODEEP", spec)
        path = resolve_procedure(spec)
        try:
            source = path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise DclSignal("OPENIN", text=f"error opening {spec.upper()} as input", severity="E",
                            extra=(f"-RMS-E-PRV, {exc.strerror}",)) from None
        return self.run_level(Frame(Procedure.read(path, source)), params)

    def call(self, label: str, params: list[str]) -> int:
        """CALL label: run the subroutine the label starts at a new level; its exit status."""
        frame = self.frame
        if len(self.frames) >= MAX_DEPTH:
            raise signal("TOODEEP", label.upper())
        hit = frame.proc.label(label, frame.scope, outward=True)
        if hit is None:
            raise signal("USGOTO", label.upper())
        start = self._subroutine_line(frame.proc, hit.index)
        if start is None:
            raise signal("NOTSUBR", label.upper())
        return self.run_level(Frame(frame.proc, pc=start + 1, scope=start), params)

    @staticmethod
    def _subroutine_line(proc: Procedure, index: int) -> int | None:
        """The SUBROUTINE line a label starts: the label's own line or the next command."""
        for i in range(index, min(index + 2, len(proc.lines))):
            if i in proc.sub_end:
                return i
            if i == index and strip_labels(proc.lines[i].text).strip():
                return None
        return None

    def run_level(self, frame: Frame, params: list[str]) -> int:
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
            while frame.pc < len(frame.proc.lines):
                line = frame.proc.lines[frame.pc]
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
        text = strip_labels(line.text)
        kind = classify(text)
        if frame.skipping():
            rest = self._skip(frame, kind, text)
            if rest:
                self._run_line(frame, line, rest)
            return
        if frame.ifs and frame.ifs[-1].pending_then and kind != "THEN":
            self._guarded(frame, lambda: self._raise(signal("INVIFNEST", text.strip()[:40].upper())))
            frame.ifs[-1].pending_then = False
            return
        if kind == "SUBROUTINE":  # a subroutine reached in sequence is skipped, not run
            frame.pc = frame.proc.sub_end.get(frame.pc - 1, len(frame.proc.lines) - 1) + 1
            return
        self._run_line(frame, line, text)

    def _run_line(self, frame: Frame, line: Line, text: str) -> None:
        """Substitute, show the line when verifying, and run it."""
        def run() -> int | None:
            substituted = self.substitute(text)
            if self.verify:
                self._echo(line, text, substituted)
            return self.command(substituted, substituted=True)

        self._guarded(frame, run)

    def _echo(self, line: Line, text: str, substituted: str) -> None:
        """SET VERIFY: the line as DCL reads it, after apostrophe substitution, comments included."""
        if substituted == text or not text.strip():
            for record in line.source.split("\n"):
                self.out(record)
        else:
            labels = line.text[:len(line.text) - len(text)] if line.text.endswith(text) else " "
            self.out("$" + labels + substituted + (" " + line.comment if line.comment else ""))

    @staticmethod
    def _raise(sig: DclSignal) -> int | None:
        raise sig

    @staticmethod
    def _skip(frame: Frame, kind: str, text: str) -> str | None:
        """A line in a branch not taken: track the blocks; the command on a taken ELSE line to run."""
        top = frame.ifs[-1]
        if kind == "IF_BLOCK":
            frame.ifs.append(IfBlock("DEAD"))
        elif kind == "THEN":
            top.pending_then = False
        elif kind == "ELSE" and top.state == "SKIPTHEN":
            top.state = "ELSE"
            rest = _VERB.sub("", text, count=1).strip()
            return rest or None
        elif kind == "ENDIF":
            frame.ifs.pop()
        return None

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
        frame.on_rank, frame.on_action = _DEFAULT_ON  # the action fires once (HELP ON)
        if action.strip().upper() in ("EXIT", "EXI", "EXIT $STATUS"):
            raise Exit(status)
        self._guarded(frame, lambda: self.command(action, substituted=True))

    # --- one command
    def command(self, text: str, synonym_depth: int = 0, substituted: bool = False) -> int | None:
        """Execute one command line (the part after `$`); its status, or None to keep $STATUS."""
        text = text.strip()
        if text.startswith("$"):
            text = text[1:].strip()
        if not text:
            return None
        if synonym_depth == 0 and not substituted:
            text = self.substitute(text).strip()
        m = _ASSIGN.match(text)
        if m:
            self.commands.assign(self, m.group(1), m.group(2), m.group(3), m.group(4))
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
        hit = frame.proc.label(label, frame.scope)
        if hit is None:
            raise signal("USGOTO", label.upper())
        if hit.depth < len(frame.ifs):
            del frame.ifs[hit.depth:]
        frame.pc = hit.index  # the label's line runs next, with any command after the label

    def gosub(self, label: str) -> None:
        """GOSUB: remember where to return and the IF blocks open here, which RETURN restores."""
        frame = self.frame
        back = (frame.pc, list(frame.ifs))
        self.goto(label)
        frame.gosubs.append(back)

    def return_(self) -> None:
        frame = self.frame
        if not frame.gosubs:
            raise signal("NOGOSUB")
        frame.pc, frame.ifs = frame.gosubs.pop()

    def run_image(self, argv: list[str], wucme: bool) -> int:
        """Run an image as a child process; its Linux exit status as a $STATUS value."""
        from wucme.dclproc.rms import file_path
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
                    fin: IO[str] = open(file_path(spec), encoding="utf-8")
                    files.append(fin)
                    stdin = fin
            elif _fileno(self.stdin) is None:
                stdin = subprocess.DEVNULL
            outs: list[int | IO[str] | None] = []
            for name, stream in (("SYS$OUTPUT", self.stdout), ("SYS$ERROR", self.stderr)):
                spec = self.user_files.get(name)
                if spec is not None:
                    f = open(file_path(spec), "w", encoding="utf-8")
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
            self._end_user_names()

    def _end_user_names(self) -> None:
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

