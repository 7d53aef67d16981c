"""The lexical functions (F$...): the registry and the call, with DCL's argument checks.

The functions live by subject: strings.py (F$EDIT, F$ELEMENT, ...), fao.py (F$FAO), times.py
(F$TIME, F$CVTIME, F$DELTA_TIME), files.py (F$SEARCH, F$PARSE, ...), logicals.py (F$TRNLNM),
process.py (F$GETJPI, F$GETSYI, F$ENVIRONMENT, ...).  A lexical DCL has but wucme does not
is %DCL-E-NOTSUPP, an error that stops the procedure under the default ON ERROR; a name DCL
does not have is DCL's %DCL-W-UNDFUN.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from wucme.dclproc.lexicals import fao, files, logicals, process, strings, times
from wucme.dclproc.lexicals.args import Args
from wucme.dclproc.status import signal
from wucme.dclproc.values import Value

if TYPE_CHECKING:
    from wucme.dclproc.interp import Interpreter

__all__ = ["LEXICALS", "UNSUPPORTED", "call_lexical"]

Lexical = Callable[["Interpreter", Args], Value]

# name -> (function, required arguments, most arguments)
LEXICALS: dict[str, tuple[Lexical, int, int]] = {
    **strings.FUNCTIONS, **fao.FUNCTIONS, **times.FUNCTIONS, **files.FUNCTIONS, **logicals.FUNCTIONS,
    **process.FUNCTIONS,
}

#: DCL's lexicals wucme does not have.
UNSUPPORTED = ("F$CONTEXT", "F$CSID", "F$CUNITS", "F$DEVICE", "F$FID_TO_NAME", "F$GETDVI", "F$GETQUI",
               "F$IDENTIFIER", "F$LICENSE", "F$LOGICAL", "F$MULTIPATH", "F$READY", "F$SETPRV",
               "F$SYMLINK_ATTRIBUTES")


def call_lexical(ctx: Interpreter, name: str, args: list[Value | None], raw: list[str]) -> Value:
    try:
        fn, least, most = LEXICALS[name]
    except KeyError:
        raise signal("NOTSUPP" if name in UNSUPPORTED else "UNDFUN", name) from None
    given = len(args)
    if given > most:
        raise signal("MAXARG", name)
    if sum(1 for a in args[:least] if a is not None) < least or given < least:
        raise signal("INSFARG", name)
    return fn(ctx, args)
