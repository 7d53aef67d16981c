"""Control flow: IF/THEN/ELSE/ENDIF, GOTO, GOSUB/RETURN, CALL/SUBROUTINE/ENDSUBROUTINE, EXIT, ON, SET."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from wucme.dclproc.commands.common import match_keyword, need
from wucme.dclproc.scan import QualSpec, find_then, parse_args, split_words, unquote, upcase_unquoted
from wucme.dclproc.status import CLI_NORMAL, DclSignal, signal
from wucme.dclproc.values import to_int, truth

if TYPE_CHECKING:
    from wucme.dclproc.interp import Interpreter

__all__ = ["VERBS"]


def _if(interp: Interpreter, rest: str) -> int | None:
    from wucme.dclproc.interp import IfBlock

    expr, cmd = find_then(rest)
    if not expr.strip():
        raise signal("INSFPRM")
    cond = truth(interp.evaluate(expr))
    frame = interp.frame
    if cmd is None or not cmd.strip().lstrip("$").strip():
        frame.ifs.append(IfBlock("THEN" if cond else "SKIPTHEN", pending_then=cmd is None))
        return None
    return interp.command(cmd, substituted=True) if cond else None


def _then(interp: Interpreter, rest: str) -> int | None:
    frame = interp.frame
    if not frame.ifs or not frame.ifs[-1].pending_then:
        raise signal("INVIFNEST", "THEN")
    frame.ifs[-1].pending_then = False
    return interp.command(rest, substituted=True) if rest.strip() else None


def _else(interp: Interpreter, rest: str) -> int | None:
    """ELSE in a THEN branch that ran: the rest of the block, and a command on the ELSE line, is skipped."""
    frame = interp.frame
    if not frame.ifs or frame.ifs[-1].state != "THEN":
        raise signal("INVIFNEST", "ELSE")
    frame.ifs[-1].state = "SKIPELSE"
    return None


def _endif(interp: Interpreter, rest: str) -> int | None:
    frame = interp.frame
    if not frame.ifs:
        raise signal("INVIFNEST", "ENDIF")
    frame.ifs.pop()
    return None


def _label_word(rest: str) -> str:
    words = split_words(rest)
    need(words, 1, 1)
    return words[0].rstrip(":")


def _goto(interp: Interpreter, rest: str) -> int | None:
    interp.goto(_label_word(rest))
    return None


def _gosub(interp: Interpreter, rest: str) -> int | None:
    interp.gosub(_label_word(rest))
    return None


def _return(interp: Interpreter, rest: str) -> int | None:
    status = to_int(interp.evaluate(rest)) if rest.strip() else None
    interp.return_()
    return status


def _exit(interp: Interpreter, rest: str) -> int | None:
    from wucme.dclproc.interp import Exit

    status = to_int(interp.evaluate(rest)) if rest.strip() else interp.status
    raise Exit(status)


def _call(interp: Interpreter, rest: str) -> int | None:
    """CALL label [p1 ... p8] [/OUTPUT=file]: the subroutine runs at a new level (DCL Dictionary, CALL)."""
    parsed = parse_args(interp.ampersands(rest), (QualSpec("OUTPUT", "required"),))
    need(parsed.params, 1, 9)
    label = unquote(parsed.params[0]).rstrip(":")
    params = [upcase_unquoted(w) for w in parsed.params[1:]]
    output = parsed.quals.get("OUTPUT")
    if not isinstance(output, str):
        return interp.call(label, params)
    from wucme.dclproc.commands.files import open_file

    saved = interp.stdout
    interp.stdout.flush()
    with open_file(unquote(output), "w") as stream:
        interp.stdout = stream
        try:
            return interp.call(label, params)
        finally:
            interp.stdout = saved


def _subroutine(interp: Interpreter, rest: str) -> int | None:
    return None  # reached only as the first line of a CALL, which starts after it


def _endsubroutine(interp: Interpreter, rest: str) -> int | None:
    from wucme.dclproc.interp import Exit

    if interp.frame.scope is None:
        raise signal("NOTSUBR", "ENDSUBROUTINE")
    raise Exit(interp.status)


_ON_KINDS = ("WARNING", "ERROR", "SEVERE_ERROR", "CONTROL_Y", "CONTROL_C")


def _on(interp: Interpreter, rest: str) -> int | None:
    cond, cmd = find_then(rest)
    if cmd is None or not cmd.strip():
        raise signal("INSFPRM")
    kind = match_keyword(cond.strip().split()[0] if cond.strip() else "", _ON_KINDS)
    if kind in ("CONTROL_Y", "CONTROL_C"):
        return CLI_NORMAL  # there is no Ctrl/Y to trap when a procedure runs on Linux
    frame = interp.frame
    frame.on_rank = {"WARNING": 1, "ERROR": 2, "SEVERE_ERROR": 3}[kind]
    frame.on_action = cmd.strip().lstrip("$").strip()
    return CLI_NORMAL


def _continue(interp: Interpreter, rest: str) -> int | None:
    return CLI_NORMAL


# SET's keywords in the DCL Dictionary; those wucme runs are in _SET.
_SET_KEYWORDS = (
    "ACCOUNTING", "AUDIT", "BROADCAST", "CARD_READER", "CLUSTER", "COMMAND", "CONTROL", "CPU", "DAY",
    "DEFAULT", "DEVICE", "DIRECTORY", "DISPLAY", "ENTRY", "FILE", "HOST", "KEY", "LOGINS", "MAGTAPE",
    "MESSAGE", "NOCONTROL", "NOON", "NOVERIFY", "ON", "OUTPUT_RATE", "PASSWORD", "PREFIX", "PRINTER",
    "PROCESS", "PROMPT", "PROTECTION", "QUEUE", "RESTART_VALUE", "RMS_DEFAULT", "SECURITY", "SERVER",
    "SHADOW", "SYMBOL", "TERMINAL", "TIME", "UIC", "VERIFY", "VOLUME", "WORKING_SET",
)


def _set(interp: Interpreter, rest: str) -> int | None:
    words = split_words(rest)
    need(words, 1)
    head, _, value = words[0].partition("=")
    what = match_keyword(head, _SET_KEYWORDS)
    if what in ("ON", "NOON"):
        interp.frame.on_enabled = what == "ON"
    elif what in ("VERIFY", "NOVERIFY"):
        interp.verify = what == "VERIFY"
    elif what == "DEFAULT":
        need(words, 2, 2)
        _set_default(unquote(words[1]))
    else:
        raise signal("NOTSUPP", f"SET {what}")
    return CLI_NORMAL


def _set_default(spec: str) -> None:
    """SET DEFAULT: the current directory, named by a directory spec, a logical name or a Linux path."""
    from wucme.dclproc.rms import rms_reason
    from wucme.vms import lnm
    from wucme.vms.condition import VmsError
    from wucme.vms.filespec import is_vms_spec, to_path

    if "/" not in spec and not any(c in spec for c in ":[<") and lnm.lookup(spec) is not None:
        spec += ":"
    try:
        path = to_path(spec) if is_vms_spec(spec) else os.path.expanduser(spec)
        os.chdir(path)
    except VmsError as exc:
        raise DclSignal("IVDEVNAM", facility="SET", severity="E", text=f"error setting default to {spec.upper()}",
                        extra=(rms_reason(exc),)) from None
    except OSError:
        raise DclSignal("DNF", facility="RMS", severity="E", text="directory not found",
                        detail=spec.upper()) from None


VERBS = {
    "CALL": _call, "CONTINUE": _continue, "ELSE": _else, "ENDIF": _endif,
    "ENDSUBROUTINE": _endsubroutine, "EXIT": _exit, "GOSUB": _gosub, "GOTO": _goto, "IF": _if,
    "ON": _on, "RETURN": _return, "SET": _set, "SUBROUTINE": _subroutine, "THEN": _then,
}
