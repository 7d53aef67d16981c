"""The wµCME verbs (`wucme VERB ...`): one module per verb or small group.

`VERBS` is the command table the DCL-style parser matches against; `parse_command` parses a
command line and `run` runs it, returning its Result (wucme.result) for the face to show:
the command line prints it (text, or JSON for /OUTPUT=JSON), the admin pages render it.
Errors propagate as WucmeError / VmsError for the face to show.
"""
from __future__ import annotations

from collections.abc import Callable

from wucme.command import Command, Verb, match_keyword, parse
from wucme.verbs import agent, certificates, check, issue, logicals, manage, register, revoke, version
from wucme.result import Result, Show

__all__ = ["VERBS", "parse_command", "run", "show_help"]

HELP = Verb("help", max_params=1, help="List the verbs, or describe one.")

Runner = Callable[[Command, "Show | None"], Result]

_TABLE: list[tuple[Verb, Runner]] = [
    (agent.VERB, agent.run),
    (certificates.VERB, certificates.run),
    (check.VERB, check.run),
    (logicals.DEASSIGN, logicals.run_deassign),
    (logicals.DEFINE, logicals.run_define),
    (HELP, lambda cmd, show: show_help(cmd, show)),
    (issue.VERB, issue.run),
    (manage.VERB, manage.run),
    (register.VERB, register.run),
    (revoke.VERB, revoke.run),
    (logicals.SHOW, logicals.run_show),
    (version.VERB, version.run),
]
VERBS: tuple[Verb, ...] = tuple(v for v, _ in _TABLE)


def parse_command(argv: list[str]) -> Command:
    return parse(argv, VERBS)


def run(cmd: Command, show: Show | None = None) -> Result:
    """Run a parsed command; *show* gets each block of its result as it is made."""
    runner = next(fn for v, fn in _TABLE if v.name == cmd.verb)
    return runner(cmd, show)


def show_help(cmd: Command, show: Show | None = None) -> Result:
    verbs = VERBS
    if cmd.params:
        name = match_keyword(cmd.params[0], [v.name for v in VERBS], "command verb", ident="IVVERB")
        verbs = tuple(v for v in VERBS if v.name == name)
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
              "Manual: docs/commands.md"]
    return Result("Help", show=show).text("\n".join(lines))
