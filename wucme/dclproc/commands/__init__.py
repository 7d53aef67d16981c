"""The DCL verbs, each `handler(interp, rest) -> status or None` (None leaves $STATUS as it was).

Verbs are matched case-insensitively, abbreviated while unique among DCL's verbs, with four
significant characters (wucme.dclproc.verbnames).  A DCL verb wucme does not run is refused
with %DCL-E-NOTSUPP, an error, so under the default ON ERROR THEN EXIT the procedure stops
rather than going on in a state it did not expect; a word that is no verb is IVVERB.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from wucme.dclproc.commands import files, flow, logicals, run
from wucme.dclproc.commands.common import Handler, match_keyword, need
from wucme.dclproc.commands.logicals import LNM_QUALS, show_logical
from wucme.dclproc.commands.run import at, foreign
from wucme.dclproc.commands.symbols import assign, show_symbol
from wucme.dclproc.scan import QualSpec, parse_args, unquote
from wucme.dclproc.status import SS_NORMAL, signal
from wucme.dclproc.values import is_name, to_str
from wucme.dclproc.verbnames import verb_names

if TYPE_CHECKING:
    from wucme.dclproc.interp import Interpreter

__all__ = ["assign", "at", "foreign", "lookup_verb", "VERBS"]

# SHOW's keywords in the DCL Dictionary; those wucme runs are SYMBOL, LOGICAL, TIME and DEFAULT.
_SHOW_KEYWORDS = (
    "ACCOUNTING", "AUDIT", "BROADCAST", "CLUSTER", "CPU", "DEFAULT", "DEVICES", "DISPLAY", "ENTRY", "ERROR",
    "INTRUSION", "KEY", "LICENSE", "LOGICAL", "MAGTAPE", "MEMORY", "NETWORK", "PRINTER", "PROCESS", "PROTECTION",
    "QUEUE", "QUOTA", "RMS_DEFAULT", "SECURITY", "SERVER", "SHADOW", "STATUS", "SYMBOL", "SYSTEM", "TERMINAL",
    "TIME", "TRANSLATION", "USERS", "WORKING_SET", "ZONE",
)


def _show(interp: Interpreter, rest: str) -> int | None:
    parsed = parse_args(interp.ampersands(rest), LNM_QUALS + (QualSpec("GLOBAL"), QualSpec("LOCAL")))
    need(parsed.params, 1)
    what = match_keyword(unquote(parsed.params[0]), _SHOW_KEYWORDS)
    words = parsed.params[1:]
    if what == "SYMBOL":
        return show_symbol(interp, words, parsed.quals)
    if what == "LOGICAL":
        return show_logical(interp, words, parsed.quals)
    if what not in ("TIME", "DEFAULT"):
        raise signal("NOTSUPP", f"SHOW {what}")
    if what == "TIME":
        from wucme.dclproc.lexicals.times import f_time

        interp.out("  " + to_str(f_time(interp, [])).rsplit(".", 1)[0])
        return SS_NORMAL
    from wucme.dclproc.rms import vms_name

    interp.out("  " + vms_name(os.getcwd()))
    return SS_NORMAL


VERBS: dict[str, Handler] = {**flow.VERBS, **files.VERBS, **logicals.VERBS, **run.VERBS, "SHOW": _show}


def lookup_verb(word: str) -> Handler:
    if not is_name(word):
        raise signal("IVVERB", word.upper())
    hits = verb_names(word)
    if not hits:
        raise signal("IVVERB", word.upper())
    if len(hits) > 1:
        raise signal("ABVERB", word.upper())
    handler = VERBS.get(hits[0])
    if handler is None:
        raise signal("NOTSUPP", hits[0])
    return handler
