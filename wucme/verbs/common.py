"""What every verb shares: VMS messages on the right stream, the log of the ACME traffic."""
from __future__ import annotations

import sys

from wucme.settings import verbosity
from wucme.uacme.msg import Msg
from wucme.vms.condition import exit_status, format_message


def say(severity: str, ident: str, text: str) -> int:
    """Print `%WUCME-S-IDENT, text` (S and I on stdout, W, E, F on stderr); return its exit status."""
    line = format_message(severity, ident, text)
    stream = sys.stdout if severity.upper() in ("S", "I") else sys.stderr
    stream.write(line + "\n")
    stream.flush()
    return exit_status(severity)


def line(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


class VerbLog(Msg):
    """The uacme port's log for the verbs: level from WUCME_VERBOSE (read when the verb runs).

    uacme's "terms autoaccepted (-y)" warning is dropped: `register` shows the terms itself.
    """

    def __init__(self) -> None:
        super().__init__(verbosity(), prog="wucme")

    def warn(self, text: str) -> None:
        if "autoaccepted" in text:
            return
        super().warn(text)

