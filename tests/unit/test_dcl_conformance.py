"""wucme's DCL against what the OpenVMS documentation says DCL does: the cases in dcl_conformance/.

Every case runs as a procedure file in its own directory, with its own HOME (SYS$LOGIN), job
table and system table, through the same entry a `wucme @proc` uses.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import os
import pwd
import signal
import socket
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from dcl_conformance import Case, all_cases
from wucme.dclproc import run_procedure_status
from wucme.vms import lnm

CASES = all_cases()
_SEVERITY = {0: "W", 1: "S", 2: "E", 3: "I", 4: "F"}


def test_cases_are_well_formed() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)), "case ids are unique"
    assert all(c.cite.strip() for c in CASES), "every case cites the documentation it follows"
    issue_points = {c.issue for c in CASES if c.issue}
    assert {f"16.{n}" for n in range(1, 9)} <= issue_points, "every point of the issue has cases"


@pytest.fixture(autouse=True)
def _own_process_table() -> Iterator[None]:
    """A procedure's DEFINE /PROCESS sets this process's environment: each case gets it back as it was."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def _placeholders(work: Path, home: Path) -> dict[str, str]:
    user = pwd.getpwuid(os.getuid()).pw_name.upper()
    here = _on_sys_disk(work)
    return {
        "{DIR_SUB}": here[:-1] + ".SUB]", "{DIR_NOSUCH}": here[:-1] + ".NOSUCH]", "{ROOT_VMS}": here[:-1],
        "{ROOT}": str(work), "{DIR}": here, "{DIRECTORY}": here.partition(":")[2], "{HOME}": _on_sys_disk(home),
        "{NODE}": socket.gethostname().split(".")[0].upper()[:15],
        "{PID}": f"{os.getpid():08X}", "{USER}": user, "{USER12}": user[:12].ljust(12), "{GID}": f"{os.getgid():06o}",
        "{TODAY}": datetime.date.today().isoformat(), "{YEAR}": str(datetime.date.today().year),
    }


@contextlib.contextmanager
def _time_limit(seconds: int) -> Iterator[None]:
    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"the procedure ran for more than {seconds} s")

    old = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _on_sys_disk(directory: Path) -> str:
    """A Linux directory as DCL shows it when no concealed device covers it: on SYS$DISK, the Linux root."""
    return "SYS$DISK:[" + ".".join(directory.resolve().parts[1:]).upper() + "]"


def _fill(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace(key, value)
    return text


def _messages(err: str) -> list[str]:
    """The `%FAC-S-IDENT` (and `-FAC-S-IDENT`) part of every message line, without wucme's -DCL-I-AT."""
    return [line.split(",", 1)[0] for line in err.splitlines()
            if line[:1] in "%-" and not line.startswith("-DCL-I-AT")]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_dcl_conformance(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv(lnm.JOB_ENV, raising=False)
    for name, value in case.env:
        monkeypatch.setenv(name, value)
    for rel, content in case.files:
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        (work / rel).write_text(content)
    monkeypatch.chdir(work)
    values = _placeholders(work, home)
    (work / "T.COM").write_text(_fill(textwrap.dedent(case.proc).lstrip("\n"), values))
    out, err = io.StringIO(), io.StringIO()
    with _time_limit(20):  # a procedure that never ends (a search loop that never finishes) fails
        status, _ = run_procedure_status(str(work / "T.COM"), list(case.params), out, err, io.StringIO(case.stdin))
    assert out.getvalue().splitlines() == [_fill(line, values) for line in case.out], err.getvalue()
    assert _messages(err.getvalue()) == list(case.errors), err.getvalue()
    if isinstance(case.status, int):
        assert status & 0x0FFFFFFF == case.status & 0x0FFFFFFF, f"%X{status:08X}"
    elif case.status is not None:
        assert _SEVERITY.get(status & 7) == case.status, f"%X{status:08X}"


# --- the command line's DEFINE, DEASSIGN and SHOW LOGICAL (`wucme show logical ...`) -------------------
# Each row: the commands run in order (argv), then what the last one writes to stdout and stderr
# and its exit status.  Values typed on a Linux command line keep their case (docs/dcl.md).

CLI_SHOW = "DCL Dictionary, SHOW LOGICAL"
CLI_CASES = [
    pytest.param([["define", "/cluster", "BOTH", "in cluster"], ["define", "BOTH", "in system"],
                  ["show", "logical", "both"]],
                 ['   "BOTH" = "in system" (LNM$SYSTEM_TABLE)'], [], 0, id="cli-show-first-match"),
    pytest.param([["define", "BOTH", "in system"], ["define", "/cluster", "BOTH", "in cluster"],
                  ["show", "logical", "/all", "both"]],
                 ["", "(LNM$PROCESS_TABLE)", "", "(LNM$JOB_*)", "", "(LNM$GROUP_*)", "", "(LNM$SYSTEM_TABLE)", "",
                  '  "BOTH" = "in system"', "", "(LNM$SYSCLUSTER_TABLE)", "", '  "BOTH" = "in cluster"'], [], 0,
                 id="cli-show-all-every-table"),
    pytest.param([["define", "/exec", "WA_ONE", "one,two"], ["show", "logical", "wa_*"]],
                 ["", "(LNM$PROCESS_TABLE)", "", "(LNM$JOB_*)", "", "(LNM$GROUP_*)", "", "(LNM$SYSTEM_TABLE)", "",
                  '  "WA_ONE" [exec] = "one"', '        = "two"', "", "(LNM$SYSCLUSTER_TABLE)"], [], 0,
                 id="cli-show-wildcard-listing"),
    pytest.param([["define", "PLAIN", "x"], ["show", "logical", "/full", "plain"]],
                 ['   "PLAIN" [super] = "x" (LNM$SYSTEM_TABLE)'], [], 0, id="cli-show-full"),
    pytest.param([["show", "logical", "no_such_name_x"]],
                 ["%SHOW-S-NOTRAN, no translation for logical name NO_SUCH_NAME_X"], [], 0, id="cli-show-notran"),
    pytest.param([["deassign", "no_such_name_x"]], [], ["%SYSTEM-F-NOLOGNAM, no logical name match"], 4,
                 id="cli-deassign-nolognam"),
    pytest.param([["define", "X", "one"], ["define", "X", "two"]],
                 ["%DCL-I-SUPERSEDE, previous value of X has been superseded"], [], 0, id="cli-define-supersede"),
    pytest.param([["define", "/group", "GRP_X", "g"], ["show", "logical", "grp_x"]],
                 ['   "GRP_X" = "g" (LNM$GROUP_*)'], [], 0, id="cli-define-group"),
]


@pytest.mark.parametrize("commands, out, err, code", CLI_CASES)
def test_command_line_logical_names(commands: list[list[str]], out: list[str], err: list[str], code: int,
                                    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """CLI_SHOW and DCL Dictionary, DEFINE and DEASSIGN: the messages and forms DCL prints (issue point 8)."""
    from wucme import cli

    monkeypatch.delenv(lnm.JOB_ENV, raising=False)
    for argv in commands[:-1]:
        cli.main(argv)
    capsys.readouterr()
    assert cli.main(commands[-1]) == code
    got = capsys.readouterr()
    job, group = lnm.table_name("job"), lnm.table_name("group")
    assert got.out.splitlines() == [o.replace("LNM$JOB_*", job).replace("LNM$GROUP_*", group) for o in out]
    assert got.err.splitlines() == err
