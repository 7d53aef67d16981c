"""DCL conformance cases: small procedures whose results the OpenVMS documentation gives.

Each case is data: the procedure, what it writes, the messages it shows (their
`%FACILITY-S-IDENT` part, in order) and, where it matters, its final status.  `cite` names the
documentation the expected result follows (a DCL Dictionary entry, a HELP topic or a section
of the OpenVMS User's Manual, by name); `issue` marks the cases that check a point of the
issue "DCL that runs an administrator's own command procedures" (16.1 to 16.8): each of
them failed on the interpreter as it was before that work.

Expected lines may hold placeholders the driver fills in for the run: {DIR} the run's
directory as DCL shows it (`SYS$DISK:[TMP....]`), {DIRECTORY} its directory part, {HOME} the login directory, {NODE},
{PID}, {USER}, {USER12} (the user name padded to 12), {GID} (octal), {TODAY}
(`yyyy-mm-dd`), {YEAR}.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Case", "all_cases"]


@dataclass(frozen=True)
class Case:
    id: str
    cite: str
    proc: str
    out: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    status: int | str | None = None  # a status value, or the final severity: "S", "W", "E", "F"
    params: tuple[str, ...] = ()
    files: tuple[tuple[str, str], ...] = ()  # (relative path, content) made before the run
    stdin: str = ""
    issue: str = ""
    env: tuple[tuple[str, str], ...] = field(default=())  # process logical names (environment)


def all_cases() -> list[Case]:
    from dcl_conformance import control, expressions, files, lexicals, logicals, status, substitution

    return (expressions.CASES + substitution.CASES + lexicals.CASES + files.CASES + control.CASES
            + status.CASES + logicals.CASES)
