"""`wucme version`: the executable version."""
from __future__ import annotations

from wucme import UACME_VERSION, __version__
from wucme.command import Command, Verb
from wucme.result import Result, Show

VERB = Verb("version", help="Display the executable version.")


def run(cmd: Command, show: Show | None = None) -> Result:
    return Result("Version", show=show).say("I", "VERSION", f"wucme {__version__} (uacme {UACME_VERSION} port)")
