"""`wucme help /output=man` and `/output=bash`: the manual page and the bash completion, made
from the same verb table as `wucme help`, so the three never disagree.  `build.py install`
writes both where man(1) and bash-completion look."""
from __future__ import annotations

import datetime as _dt

from wucme import __version__
from wucme.command import Qualifier, Verb

__all__ = ["man_page", "bash_completion", "EXTRA"]

#: The entries outside the DCL-style table: (synopsis, what it does).
EXTRA: tuple[tuple[str, str], ...] = (
    ("--uacme ARGS", "uacme's command line, option for option (see uacme(1))."),
    ("alpn ARGS", "The ualpn port: the tls-alpn-01 responder and proxy, taking ualpn's options (see ualpn(1))."),
    ("acme_tls_1 SNI", "The ACME_TLS_1 agent: the validation certificate and key for a host."),
    ("@FILE.COM [P1 ...]", "Run a DCL command procedure (WUCME_STARTUP.COM and the others in com/)."),
)


def _roff(text: str) -> str:
    """*text* safe in a roff line: backslashes doubled, a leading dot or quote escaped."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\\&" + text if text[:1] in (".", "'") else text


def _qualifier_synopsis(q: Qualifier) -> str:
    val = "=" + "|".join(k.upper() for k in q.keywords) if q.keywords else "=value"
    value = val if q.value == "required" else f"[{val}]" if q.value == "optional" else ""
    return f"/{'[NO]' if q.negatable else ''}{q.name.upper()}{value}"


def man_page(verbs: tuple[Verb, ...]) -> str:
    """wucme(1) in the man macros."""
    date = _dt.date.today().isoformat()
    out = [f'.TH WUCME 1 "{date}" "wucme {__version__}" "User Commands"',
           ".SH NAME", "wucme \\- ACME certificate management (a port of WASD's w\\(mcCME and of uacme)",
           ".SH SYNOPSIS", ".B wucme", ".I verb", "[\\fB/qualifier\\fR[\\fB=\\fIvalue\\fR] ...] [\\fIparameters\\fR]",
           ".br", ".B wucme", "\\fIverb\\fR [\\fB\\-\\-qualifier\\fR[\\fB=\\fIvalue\\fR] ...] [\\fIparameters\\fR]",
           ".SH DESCRIPTION",
           "wucme registers an ACME account, issues certificates for up to a hundred host names each, "
           "answers the CA's http\\-01 and tls\\-alpn\\-01 challenges, and runs an agent that renews every "
           "certificate before it expires, reloads the web server and reports by OPCOM (syslog) and mail.",
           ".PP",
           "Verbs and qualifiers may be abbreviated while they stay unique. A qualifier is written "
           "\\fB/NAME\\fR as in DCL or \\fB\\-\\-name\\fR; \\fB/NONAME\\fR or \\fB\\-\\-no\\-name\\fR negates one.",
           ".SH COMMANDS"]
    for v in verbs:
        out += [".TP", f".B {v.name}", _roff(v.help)]
        for q in v.qualifiers:
            out += [".RS", ".TP", f".B {_roff(_qualifier_synopsis(q))}", _roff(q.help or ""), ".RE"]
    for synopsis, text in EXTRA:
        out += [".TP", f".B {_roff(synopsis)}", _roff(text)]
    out += [".SH ENVIRONMENT",
            "Settings are logical names: environment variables first, then the job, group, system "
            "and cluster tables (\\fBwucme define /system\\fR). \\fBWUCME_CA\\fR names the CA, "
            "\\fBWUCME_HERE\\fR the repository, \\fBWUCME_CHALLENGE\\fR the challenge type; the full "
            "list is in docs/logical\\-names.md.",
            ".SH EXIT STATUS",
            "0 on success or an informational message, 1 for a warning, 2 for an error, 4 for a fatal error.",
            ".SH FILES",
            ".TP", ".I /var/lib/wucme", "The repository (WUCME_HERE, WASD_ROOT:[LOCAL]) installed by build.py install.",
            ".TP", ".I /var/lib/wucme/lnm/system.json", "The system logical-name table.",
            ".SH SEE ALSO", "uacme(1), ualpn(1), systemctl(1)"]
    return "\n".join(out) + "\n"


def bash_completion(verbs: tuple[Verb, ...]) -> str:
    """A bash completion function for the verbs, their qualifiers (/NAME and --name) and
    the qualifiers' keyword values."""
    names = " ".join(v.name for v in verbs) + " alpn acme_tls_1 --uacme --help --version"
    cases = []
    for v in verbs:
        quals = " ".join(f"--{q.name}" + ("=" if q.value == "required" else "") for q in v.qualifiers)
        values = "".join(f"            {q.name}) words='{' '.join(q.keywords)}' ;;\n"
                         for q in v.qualifiers if q.keywords)
        cases.append(f"        {v.name}) quals='{quals}'\n"
                     f"          case \"$qual\" in\n{values}          esac ;;\n")
    return f"""# bash completion for wucme, made by `wucme help /output=bash` from wucme's verb table.
_wucme() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" verb="" w quals="" words="" qual="" value="" slash=""
    COMPREPLY=()
    if [[ $COMP_CWORD -eq 1 ]]; then
        COMPREPLY=($(compgen -W "{names}" -- "$cur"))
        return 0
    fi
    # The verb may be abbreviated: the first one its word begins.
    for w in {" ".join(v.name for v in verbs)}; do
        if [[ -n "${{COMP_WORDS[1]}}" && "$w" == "${{COMP_WORDS[1],,}}"* ]]; then verb="$w"; break; fi
    done
    # bash splits at "=": QUALIFIER = VALUE arrive as three words.
    if [[ "$cur" == "=" || "${{COMP_WORDS[COMP_CWORD-1]}}" == "=" ]]; then
        [[ "$cur" == "=" ]] && cur="" && qual="${{COMP_WORDS[COMP_CWORD-1]}}" \\
                            || qual="${{COMP_WORDS[COMP_CWORD-2]}}"
    elif [[ "$cur" == *=* ]]; then
        qual="${{cur%%=*}}"; value="${{cur#*=}}"
    fi
    qual="${{qual#--}}"; qual="${{qual#/}}"; qual="${{qual,,}}"
    case "$verb" in
{"".join(cases)}    esac
    if [[ -n "$qual" ]]; then
        [[ "$cur" == *=* ]] && cur="$value"
        COMPREPLY=($(compgen -W "$words" -- "${{cur,,}}"))
        return 0
    fi
    if [[ "$cur" == /* ]]; then
        slash=1; cur="--${{cur#/}}"
    fi
    if [[ "$cur" == -* ]]; then
        COMPREPLY=($(compgen -W "$quals" -- "${{cur,,}}"))
        if [[ -n "$slash" ]]; then
            COMPREPLY=("${{COMPREPLY[@]/#--//}}")
        fi
        [[ "${{COMPREPLY[0]}}" == *= ]] && compopt -o nospace 2>/dev/null
        return 0
    fi
    COMPREPLY=($(compgen -f -- "$cur"))
}}
complete -F _wucme wucme
"""
