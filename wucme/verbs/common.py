"""What every verb shares: the log of the ACME traffic (the results are wucme.result)."""
from __future__ import annotations

from wucme.settings import verbosity
from wucme.uacme.msg import Msg


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
