"""F$TRNLNM: one level of a logical name's translation (DCL Dictionary, F$TRNLNM).

Without a table it searches LNM$DCL_LOGICAL: process, job, group, system, then cluster
(wucme.vms.lnm's order).  A table DCL knows but wucme does not keep (LNM$PROCESS_DIRECTORY,
a table made by CREATE/NAME_TABLE) translates nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wucme.dclproc.lexicals.args import Args, keyword, number, text
from wucme.dclproc.values import Value
from wucme.vms import lnm
from wucme.vms.condition import VmsError

if TYPE_CHECKING:
    from wucme.dclproc.interp import Interpreter

__all__ = ["FUNCTIONS", "TABLES"]

TABLES: dict[str, tuple[str, ...] | None] = {
    "LNM$FILE_DEV": None, "LNM$DCL_LOGICAL": None,
    "LNM$PROCESS": ("process",), "LNM$PROCESS_TABLE": ("process",), "LNM$JOB": ("job",),
    "LNM$GROUP": ("group",), "LNM$SYSTEM": ("system", "cluster"), "LNM$SYSTEM_TABLE": ("system",),
    "LNM$SYSCLUSTER": ("cluster",), "LNM$SYSCLUSTER_TABLE": ("cluster",), "LNM$CLUSTER": ("cluster",),
    "LNM$CLUSTER_TABLE": ("cluster",),
}
_ITEMS = ("ACCESS_MODE", "CLUSTERWIDE", "CONCEALED", "CONFINE", "CRELOG", "LENGTH", "MAX_INDEX", "NO_ALIAS",
          "TABLE", "TABLE_NAME", "TERMINAL", "VALUE")
_MODES = ("USER", "SUPERVISOR", "EXECUTIVE", "KERNEL")  # outermost first


def _tables(name: str) -> tuple[str, ...] | None:
    """The tables a table argument names (None: the default search); none for one wucme does not keep."""
    upper = name.upper()
    if upper in TABLES:
        return TABLES[upper]
    for prefix, table in (("LNM$JOB_", "job"), ("LNM$GROUP_", "group")):
        if upper.startswith(prefix):
            return (table,)
    return ()


def _entry(name: str, tables: tuple[str, ...] | None, mode: str) -> lnm.LogicalName | None:
    """The first definition at *mode* or an inner (more privileged) one."""
    allowed = _MODES[_MODES.index(mode):]
    try:
        for entry in lnm.lookup_all(name, tables):
            if (entry.mode or "SUPERVISOR") in allowed:
                return entry
    except VmsError:
        return None
    return None


def f_trnlnm(ctx: Interpreter, args: Args) -> Value:
    """F$TRNLNM(name [,table] [,index] [,mode] [,case] [,item])."""
    tables = _tables(text(args, 1)) if text(args, 1).strip() else None
    index = number(args, 2, 0)
    mode = keyword(args, 3, "F$TRNLNM", _MODES, default="USER")
    keyword(args, 4, "F$TRNLNM", ("CASE_BLIND", "CASE_SENSITIVE"), default="CASE_BLIND")
    item = keyword(args, 5, "F$TRNLNM", _ITEMS, default="VALUE")
    entry = _entry(text(args, 0), tables, mode)
    if item == "MAX_INDEX":
        return len(entry.values) - 1 if entry else -1
    if entry is None:
        return ""
    value = entry.values[index] if 0 <= index < len(entry.values) else None
    answers: dict[str, Value] = {
        "VALUE": value or "", "LENGTH": len(value or ""), "TABLE_NAME": entry.table_name,
        "ACCESS_MODE": entry.mode or "SUPERVISOR", "CLUSTERWIDE": "TRUE" if entry.table == "cluster" else "FALSE",
        "CONCEALED": "TRUE" if entry.concealed else "FALSE", "TERMINAL": "TRUE" if entry.terminal else "FALSE",
        "CONFINE": "FALSE", "CRELOG": "FALSE", "NO_ALIAS": "FALSE", "TABLE": "FALSE",
    }
    return answers[item]


FUNCTIONS = {"F$TRNLNM": (f_trnlnm, 1, 6)}
