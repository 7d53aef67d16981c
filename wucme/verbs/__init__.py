"""The wµCME verbs (`wucme VERB ...`): one module per verb or small group.

`VERBS` is the command table the DCL-style parser matches against; `dispatch` runs one command
line and returns its exit status.  Errors propagate as WucmeError / VmsError for the face to show.
"""
from __future__ import annotations

from collections.abc import Callable

from wucme.command import Command, Verb, parse
from wucme.verbs import agent, certificates, check, issue, logicals, manage, register, revoke, version
from wucme.verbs.common import line

HELP = Verb("help", max_params=1, help="List the verbs, or describe one.")

_TABLE: list[tuple[Verb, Callable[[Command], int]]] = [
    (agent.VERB, agent.run),
    (certificates.VERB, certificates.run),
    (check.VERB, check.run),
    (logicals.DEASSIGN, logicals.run_deassign),
    (logicals.DEFINE, logicals.run_define),
    (HELP, lambda cmd: show_help(cmd)),
    (issue.VERB, issue.run),
    (manage.VERB, manage.run),
    (register.VERB, register.run),
    (revoke.VERB, revoke.run),
    (logicals.SHOW, logicals.run_show),
    (version.VERB, version.run),
]
VERBS: tuple[Verb, ...] = tuple(v for v, _ in _TABLE)


def dispatch(argv: list[str]) -> int:
    cmd = parse(argv, VERBS)
    run = next(fn for v, fn in _TABLE if v.name == cmd.verb)
    return run(cmd)


def show_help(cmd: Command) -> int:
    verbs = VERBS
    if cmd.params:
        from wucme.command import match_keyword

        name = match_keyword(cmd.params[0], [v.name for v in VERBS], "command verb", ident="IVVERB")
        verbs = tuple(v for v in VERBS if v.name == name)
    line("usage: wucme VERB [/QUALIFIER[=value] ...] [parameters]   (also --qualifier[=value])")
    for v in verbs:
        line(f"  {v.name:<13} {v.help}")
        for q in v.qualifiers:
            val = "=value" if q.value == "required" else "[=value]" if q.value == "optional" else ""
            neg = "[NO]" if q.negatable else ""
            line(f"      /{neg}{q.name.upper()}{val}  {q.help}")
    line("  --uacme ARGS  uacme's command line, option for option")
    line("  alpn ARGS     the ualpn port (tls-alpn-01 responder), taking ualpn's options")
    line("  acme_tls_1 SNI  the ACME_TLS_1 agent: validation certificate and key for a host")
    line("Manual: docs/commands.md")
    return 0
