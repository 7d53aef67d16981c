"""`wucme define`, `deassign` and `show logical`: logical names for Linux administrators.

Without a table qualifier these work on the SYSTEM table, unlike DCL's process default: a wucme
command is a process of its own, so a process-table name would vanish when it exits, and the
seed asks for every wucme logical in the SYSTEM table.
"""
from __future__ import annotations

from wucme.command import Command, Qualifier, Verb, match_keyword
from wucme.errors import UsageError
from wucme.result import Result, Show
from wucme.vms.dcllex import parse_equivalence_list
from wucme.vms.lnm import TABLE_NAMES, deassign, define, format_show
from wucme.vms.lnm import show as show_logical

_TABLE_QUALS = (
    Qualifier("system", help="the system table (default)"),
    Qualifier("cluster", help="the cluster table"),
    Qualifier("process", help="this process only (lasts until wucme exits)"),
    Qualifier("table", "required", help="PROCESS, SYSTEM, CLUSTER or an LNM$ table name"),
)
_MODES = ("user_mode", "supervisor_mode", "executive_mode", "kernel_mode")

DEFINE = Verb("define", qualifiers=_TABLE_QUALS + tuple(Qualifier(m) for m in _MODES) + (
    Qualifier("translation_attributes", "required", help="CONCEALED, TERMINAL or (CONCEALED,TERMINAL)"),
), min_params=2, max_params=None, help="Define a logical name.")
DEASSIGN = Verb("deassign", qualifiers=_TABLE_QUALS + tuple(Qualifier(m) for m in _MODES),
                min_params=1, max_params=1, help="Remove a logical name.")
SHOW = Verb("show", qualifiers=_TABLE_QUALS, min_params=1, max_params=2,
            help="SHOW LOGICAL [pattern]: display logical names.")


def table_of(cmd: Command, default: str | None) -> str | None:
    chosen = [t for t in ("system", "cluster", "process") if cmd.has(t)]
    tq = cmd.value("table")
    if tq:
        by_name = {v.lower(): k for k, v in TABLE_NAMES.items()}
        chosen.append(by_name.get(tq.lower()) or match_keyword(tq, ("process", "system", "cluster"),
                                                               "logical name table", ident="NOSUCHTABLE"))
    if len(set(chosen)) > 1:
        raise UsageError("give one table: /SYSTEM, /CLUSTER or /PROCESS", ident="CONFLICT")
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
    old = define(cmd.params[0], values, table, "concealed" in attrs, "terminal" in attrs, mode)
    name = cmd.params[0].upper()
    result = Result("Define", show=show)
    if table == "process":
        result.say("W", "PROCESS", f"{name} lasts only for this wucme process; "
                   "export it in the shell or use /SYSTEM")
    if old is not None:
        result.say("I", "SUPERSEDE", f"previous value of {name} has been superseded")
    return result


def run_deassign(cmd: Command, show: Show | None = None) -> Result:
    table = table_of(cmd, "system") or "system"
    deassign(cmd.params[0], table)
    return Result("Deassign", show=show)


def run_show(cmd: Command, show: Show | None = None) -> Result:
    what = match_keyword(cmd.params[0], ("logical",), "SHOW keyword", ident="IVKEYW")
    assert what == "logical"
    pattern = cmd.params[1] if len(cmd.params) > 1 else "*"
    entries = show_logical(pattern, table_of(cmd, None))
    result = Result("Show logical", show=show)
    if not entries:
        return result.say("W", "NOTRAN", f"no translation for logical name {pattern.upper()}")
    return result.text("\n".join(format_show(entries, iterate=True)))
