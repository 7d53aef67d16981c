"""The wµCME verbs (`wucme VERB ...`): one module per verb or small group.

`VERBS` is the command table the DCL-style parser matches against; `parse_command` parses a
command line and `run` runs it, returning its Result (wucme.result) for the face to show:
the command line prints it (text, or JSON for /OUTPUT=JSON), the admin pages render it.
Errors propagate as WucmeError / VmsError for the face to show.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from wucme.command import (Command, Qualifier, Verb, _split_glued, join_continuations, match_keyword, parse,
                           unquote)
from wucme.result import Result, Show

__all__ = ["VERBS", "parse_command", "run", "show_help"]

HELP = Verb("help", max_params=1, help="List the verbs, or describe one.",
            qualifiers=(Qualifier("output", "required", keywords=("text", "man", "bash"),
                                  help="TEXT (default), MAN (the manual page wucme(1), roff) or BASH (bash completion)"),))

Runner = Callable[[Command, "Show | None"], Result]

#: verb name -> (module under wucme.verbs, its Verb attribute, its runner).  A verb's module is
#: imported only when that verb runs, so `wucme version` does not pay for cryptography,
#: the HTTP client or the renewal pass (docs/performance.md, "Start-up").
_TABLE: dict[str, tuple[str, str, str]] = {
    "agent": ("agent", "VERB", "run"),
    "certificates": ("certificates", "VERB", "run"),
    "check": ("check", "VERB", "run"),
    "deassign": ("logicals", "DEASSIGN", "run_deassign"),
    "define": ("logicals", "DEFINE", "run_define"),
    "help": ("", "HELP", "show_help"),
    "issue": ("issue", "VERB", "run"),
    "manage": ("manage", "VERB", "run"),
    "register": ("register", "VERB", "run"),
    "revoke": ("revoke", "VERB", "run"),
    "show": ("logicals", "SHOW", "run_show"),
    "version": ("version", "VERB", "run"),
}


def _module(name: str) -> Any:
    return importlib.import_module(f"wucme.verbs.{name}") if name else importlib.import_module(__name__)


def _entry(verb: str) -> tuple[Verb, Runner]:
    modname, attr, fn = _TABLE[verb]
    mod = _module(modname)
    runner: Runner = getattr(mod, fn)
    if not modname:
        return HELP, lambda cmd, show: show_help(cmd, show)
    return getattr(mod, attr), runner


def __getattr__(name: str) -> Any:
    """VERBS, the whole command table, imports every verb: only help and the tests need it."""
    if name == "VERBS":
        return tuple(_entry(v)[0] for v in _TABLE)
    raise AttributeError(name)


def parse_command(argv: list[str]) -> Command:
    """Parse a command line: the verb word is matched on the names alone, then only that
    verb's module is imported for its qualifiers."""
    tokens = join_continuations(list(argv))
    if tokens and not tokens[0].startswith("-"):
        first = (_split_glued(tokens[0]) or [""])[0]
        if first and not first.startswith("--"):
            name = match_keyword(unquote(first), list(_TABLE), "command verb", ident="IVVERB")
            return parse(argv, [_entry(name)[0]])
    return parse(argv, __getattr__("VERBS"))


def run(cmd: Command, show: Show | None = None) -> Result:
    """Run a parsed command; *show* gets each block of its result as it is made."""
    return _entry(cmd.verb)[1](cmd, show)


def show_help(cmd: Command, show: Show | None = None) -> Result:
    verbs: tuple[Verb, ...] = __getattr__("VERBS")
    form = str(cmd.qualifiers.get("output", "text"))
    if form in ("man", "bash"):
        from wucme.verbs import manual

        if form == "man":
            return Result("Manual", show=show).text(manual.man_page(verbs))
        return Result("Completion", show=show).text(manual.bash_completion(verbs))
    if cmd.params:
        name = match_keyword(cmd.params[0], list(_TABLE), "command verb", ident="IVVERB")
        verbs = tuple(v for v in verbs if v.name == name)
    lines = ["usage: wucme VERB [/QUALIFIER[=value] ...] [parameters]   (also --qualifier[=value])"]
    for v in verbs:
        lines.append(f"  {v.name:<13} {v.help}")
        for q in v.qualifiers:
            val = "=value" if q.value == "required" else "[=value]" if q.value == "optional" else ""
            neg = "[NO]" if q.negatable else ""
            lines.append(f"      /{neg}{q.name.upper()}{val}  {q.help}")
    lines += ["  --uacme ARGS  uacme's command line, option for option",
              "  alpn ARGS     the ualpn port (tls-alpn-01 responder), taking ualpn's options",
              "  acme_tls_1 SNI  the ACME_TLS_1 agent: validation certificate and key for a host",
              "Manual: man wucme, docs/commands.md"]
    return Result("Help", show=show).text("\n".join(lines))
