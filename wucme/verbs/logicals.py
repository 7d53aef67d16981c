"""`wucme define`, `deassign` and `show logical`: logical names for Linux administrators.

Without a table qualifier these work on the SYSTEM table, unlike DCL's process default: a wucme
command is a process of its own, so a process-table name would vanish when it exits, and the
seed asks for every wucme logical in the SYSTEM table.  What they print follows DCL:
%DCL-I-SUPERSEDE, %SYSTEM-F-NOLOGNAM, %SHOW-S-NOTRAN, and SHOW LOGICAL's two forms (the first
definition of a name, iterated; a table-by-table listing for a wildcard or /ALL).
"""
from __future__ import annotations

import os

from wucme.command import Command, Qualifier, Verb, match_keyword
from wucme.errors import UsageError
from wucme.result import Result, Show
from wucme.vms.condition import Condition
from wucme.vms.dcllex import parse_equivalence_list
from wucme.vms.lnm import (JOB_ENV, TABLE_NAMES, NoLogicalNameError, deassign, define, format_listing, format_show,
                           lookup_all, show_tables)

_TABLES = ("system", "cluster", "process", "job", "group")
_TABLE_QUALS = (
    Qualifier("system", help="the system table (default)"),
    Qualifier("cluster", help="the cluster table"),
    Qualifier("process", help="this process only (lasts until wucme exits)"),
    Qualifier("job", help="the job table (shared with the DCL procedure that runs wucme)"),
    Qualifier("group", help="the table of this Linux group"),
    Qualifier("table", "required", help="PROCESS, JOB, GROUP, SYSTEM, CLUSTER or an LNM$ table name"),
)
_MODES = ("user_mode", "supervisor_mode", "executive_mode", "kernel_mode")

DEFINE = Verb("define", qualifiers=_TABLE_QUALS + tuple(Qualifier(m) for m in _MODES) + (
    Qualifier("translation_attributes", "required", help="CONCEALED, TERMINAL or (CONCEALED,TERMINAL)"),
), min_params=2, max_params=None, help="Define a logical name.")
DEASSIGN = Verb("deassign", qualifiers=_TABLE_QUALS + tuple(Qualifier(m) for m in _MODES),
                min_params=1, max_params=1, help="Remove a logical name.")
SHOW = Verb("show", qualifiers=_TABLE_QUALS + (
    Qualifier("all", help="every table's definition of the name"),
    Qualifier("full", help="show the access mode of every name"),
), min_params=1, max_params=2, help="SHOW LOGICAL [pattern]: display logical names.")


def _dcl_message(result: Result, severity: str, facility: str, ident: str, text: str) -> Result:
    """A message DCL itself prints (%DCL-I-SUPERSEDE, %SYSTEM-F-NOLOGNAM), in DCL's facility."""
    return result.add(Condition(severity, ident, text, facility=facility))


def table_of(cmd: Command, default: str | None) -> str | None:
    chosen = [t for t in _TABLES if cmd.has(t)]
    tq = cmd.value("table")
    if tq:
        by_name = {v.lower(): k for k, v in TABLE_NAMES.items()}
        upper = tq.upper()
        if upper.startswith(("LNM$JOB_", "LNM$GROUP_")):
            chosen.append(upper[4:].split("_")[0].lower())
        else:
            chosen.append(by_name.get(tq.lower()) or match_keyword(tq, _TABLES, "logical name table",
                                                                   ident="NOSUCHTABLE"))
    if len(set(chosen)) > 1:
        raise UsageError("give one table: /SYSTEM, /CLUSTER, /GROUP, /JOB or /PROCESS", ident="CONFLICT")
    return chosen[0] if chosen else default


def run_define(cmd: Command, show: Show | None = None) -> Result:
    table = table_of(cmd, "system") or "system"
    mode = next((m.split("_")[0] for m in _MODES if cmd.has(m)), None)
    attrs: set[str] = set()
    ta = cmd.value("translation_attributes")
    if ta:
        for a in ta.strip("()").split(","):
            attrs.add(match_keyword(a.strip(), ("concealed", "terminal"), "translation attribute"))
    values = parse_equivalence_list(",".join(cmd.params[1:]))
    if not values or any(v == "" for v in values):
        raise UsageError("an equivalence string is empty", ident="NULLEQV")
    lasts_here = table == "process" or (table == "job" and not os.environ.get(JOB_ENV))
    old = define(cmd.params[0], values, table, "concealed" in attrs, "terminal" in attrs, mode)
    name = cmd.params[0].upper()
    result = Result("Define", show=show)
    if lasts_here:
        result.say("W", table.upper(), f"{name} lasts only for this wucme process; "
                   "export it in the shell or use /SYSTEM")
    if old is not None:
        _dcl_message(result, "I", "DCL", "SUPERSEDE", f"previous value of {name} has been superseded")
    return result


def run_deassign(cmd: Command, show: Show | None = None) -> Result:
    table = table_of(cmd, "system") or "system"
    result = Result("Deassign", show=show)
    try:
        deassign(cmd.params[0], table)
    except NoLogicalNameError:
        _dcl_message(result, "F", "SYSTEM", "NOLOGNAM", "no logical name match")
    return result


def run_show(cmd: Command, show: Show | None = None) -> Result:
    """SHOW LOGICAL NAME: its first definition in DCL's order, iterated; a wildcard, no name or
    /ALL: each table searched, under its name."""
    what = match_keyword(cmd.params[0], ("logical",), "SHOW keyword", ident="IVKEYW")
    assert what == "logical"
    result = Result("Show logical", show=show)
    table = table_of(cmd, None)
    full = cmd.has("full")
    pattern = cmd.params[1].upper().rstrip(":") if len(cmd.params) > 1 else "*"
    if len(cmd.params) > 1 and not any(c in pattern for c in "*%") and not cmd.has("all"):
        first = lookup_all(pattern, table)[:1]
        if not first:
            return _dcl_message(result, "S", "SHOW", "NOTRAN", f"no translation for logical name {pattern}")
        return result.text("\n".join(format_show(first, iterate=True, full=full)))
    sections = show_tables(pattern, table)
    listing = format_listing(sections, full=full)
    if listing:
        result.text("\n".join(listing))
    if not any(entries for _, entries in sections):
        _dcl_message(result, "S", "SHOW", "NOLNM", "no logical names match")
    return result
