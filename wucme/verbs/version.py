"""`wucme version`: the executable version (wucme.entry answers the plain command line itself, with the same text)."""
from __future__ import annotations

from wucme.command import Command, Verb
from wucme import version_text
from wucme.result import Result, Show

VERB = Verb("version", help="Display the executable version.")


def run(cmd: Command, show: Show | None = None) -> Result:
    return Result("Version", show=show).say("I", "VERSION", version_text())
