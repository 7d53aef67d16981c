"""Logical names in procedures: DEFINE, ASSIGN, DEASSIGN and SHOW LOGICAL (wucme.vms.lnm's tables).

As in DCL, DEFINE writes the process table unless a table is named, and unquoted values are
upper-cased (a Linux path, which DCL could not parse, keeps its case).  SHOW LOGICAL NAME shows
the first definition in DCL's search order, iterated; a wildcard, no name, or /ALL lists each
table searched under its name (DCL Dictionary, SHOW LOGICAL).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wucme.dclproc.commands.common import match_keyword, need
from wucme.dclproc.scan import QualSpec, parse_args, unquote
from wucme.dclproc.status import SS_NORMAL, DclSignal, signal
from wucme.vms import lnm
from wucme.vms.dcllex import parse_equivalence_list

if TYPE_CHECKING:
    from wucme.dclproc.interp import Interpreter

__all__ = ["VERBS", "LNM_QUALS", "show_logical"]

LNM_QUALS = (
    QualSpec("SYSTEM"), QualSpec("PROCESS"), QualSpec("CLUSTER_SYSTEM"), QualSpec("JOB"), QualSpec("GROUP"),
    QualSpec("TABLE", "required"), QualSpec("EXECUTIVE_MODE"), QualSpec("SUPERVISOR_MODE"),
    QualSpec("USER_MODE"), QualSpec("KERNEL_MODE"), QualSpec("LOG", negatable=True),
    QualSpec("TRANSLATION_ATTRIBUTES", "required"), QualSpec("NAME_ATTRIBUTES", "required"),
    QualSpec("ALL"), QualSpec("FULL"),
)
TABLE_NAMES = {
    "LNM$PROCESS": "process", "LNM$PROCESS_TABLE": "process", "LNM$JOB": "job", "LNM$GROUP": "group",
    "LNM$SYSTEM": "system", "LNM$SYSTEM_TABLE": "system", "LNM$SYSCLUSTER": "cluster",
    "LNM$SYSCLUSTER_TABLE": "cluster", "LNM$CLUSTER": "cluster", "LNM$CLUSTER_TABLE": "cluster",
}
_TABLE_QUALS = (("PROCESS", "process"), ("JOB", "job"), ("GROUP", "group"), ("SYSTEM", "system"),
                ("CLUSTER_SYSTEM", "cluster"))


def table_of(quals: dict[str, str | bool], default: str | None) -> str | None:
    """The table a qualifier names (/JOB, /TABLE=LNM$SYSTEM, ...), else *default*."""
    for qual, table in _TABLE_QUALS:
        if quals.get(qual):
            return table
    named = quals.get("TABLE")
    if isinstance(named, str):
        name = unquote(named).upper()
        if name.startswith("LNM$JOB_") or name.startswith("LNM$GROUP_"):
            return name[4:].split("_")[0].lower()
        if name not in TABLE_NAMES:
            raise signal("NOTSUPP", f"/TABLE={name}")
        return TABLE_NAMES[name]
    return default


def _mode(quals: dict[str, str | bool]) -> str | None:
    for q, mode in (("EXECUTIVE_MODE", "EXECUTIVE"), ("KERNEL_MODE", "KERNEL"), ("SUPERVISOR_MODE", "SUPERVISOR")):
        if quals.get(q):
            return mode
    return None


def _values(words: list[str]) -> list[str]:
    """DEFINE's equivalence strings: DCL's quoting and commas, unquoted text upper-cased.

    A value with a `/` (a Linux path) keeps its case: DCL would refuse it (a `/` starts a
    qualifier), so no procedure written for VMS depends on it, and Linux needs the case.
    """
    for a, b in zip(words, words[1:]):
        if not a.endswith(",") and not b.startswith(","):
            raise signal("MAXPARM", unquote(b).upper())
    text = " ".join(words)
    kept, upper = parse_equivalence_list(text), parse_equivalence_list(text, upcase=True)
    values = [k if "/" in k else u for k, u in zip(kept, upper)]
    if not values or any(v == "" for v in values):
        raise signal("INSFPRM")
    return values


def _attributes(quals: dict[str, str | bool]) -> set[str]:
    attrs = quals.get("TRANSLATION_ATTRIBUTES")
    if not isinstance(attrs, str):
        return set()
    return {match_keyword(a.strip(), ("CONCEALED", "TERMINAL", "NOCONCEALED", "NOTERMINAL"))
            for a in attrs.strip("()").split(",")}


def _define(interp: Interpreter, rest: str, swap: bool = False) -> int | None:
    parsed = parse_args(interp.ampersands(rest, quote=True), LNM_QUALS)
    need(parsed.params, 2)
    params = parsed.params
    if swap:  # ASSIGN value name
        params = params[-1:] + params[:-1]
    name = unquote(params[0]).upper().rstrip(":") if not params[0].endswith("::") else unquote(params[0])
    values = _values(params[1:])
    attrs = _attributes(parsed.quals)
    if parsed.quals.get("USER_MODE"):
        if name in ("SYS$INPUT", "SYS$OUTPUT", "SYS$ERROR"):
            interp.user_files[name] = values[0]
            return SS_NORMAL
        interp.user_names.append(name)
    table = table_of(parsed.quals, "process") or "process"
    old = lnm.define(name, values, table, concealed="CONCEALED" in attrs, terminal="TERMINAL" in attrs,
                     mode=_mode(parsed.quals))
    if old is not None and parsed.quals.get("LOG", True):
        interp.out(f"%DCL-I-SUPERSEDE, previous value of {name} has been superseded")
    return SS_NORMAL


def _assign(interp: Interpreter, rest: str) -> int | None:
    return _define(interp, rest, swap=True)


def no_logical_name() -> DclSignal:
    return DclSignal("NOLOGNAM", facility="SYSTEM", severity="F", text="no logical name match", status=0x000001BC)


def _deassign(interp: Interpreter, rest: str) -> int | None:
    parsed = parse_args(interp.ampersands(rest), LNM_QUALS)
    if parsed.quals.get("ALL"):
        raise signal("NOTSUPP", "DEASSIGN /ALL")
    need(parsed.params, 1, 1)
    name = unquote(parsed.params[0]).upper().rstrip(":")
    table = table_of(parsed.quals, "process") or "process"
    try:
        lnm.deassign(name, table)
    except lnm.NoLogicalNameError:
        raise no_logical_name() from None
    return SS_NORMAL


def show_logical(interp: Interpreter, words: list[str], quals: dict[str, str | bool]) -> int | None:
    table = table_of(quals, None)
    full = bool(quals.get("FULL"))
    pattern = unquote(words[0]).upper().rstrip(":") if words else "*"
    if words and not any(c in pattern for c in "*%") and not quals.get("ALL"):
        entries = lnm.lookup_all(pattern, table)[:1]
        if not entries:
            interp.out(f"%SHOW-S-NOTRAN, no translation for logical name {pattern}")
            return SS_NORMAL
        for line in lnm.format_show(entries, iterate=True, full=full):
            interp.out(line)
        return SS_NORMAL
    sections = lnm.show_tables(pattern, table)
    for line in lnm.format_listing(sections, full=full):
        interp.out(line)
    if not any(entries for _, entries in sections):
        interp.out("%SHOW-S-NOLNM, no logical names match")
    return SS_NORMAL


VERBS = {"ASSIGN": _assign, "DEASSIGN": _deassign, "DEFINE": _define}
