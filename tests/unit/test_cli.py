"""The face: VMS messages and exit statuses, never a bare traceback."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import wucme.verbs
from wucme import cli


def boom(cmd: object, show: object = None) -> object:
    raise RuntimeError("kaput")


def test_bug_is_a_message_and_the_traceback_needs_verbose(monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str],
                                                           tmp_path: object) -> None:
    monkeypatch.setenv("WUCME_LNM_DIR", str(tmp_path))
    monkeypatch.delenv("WUCME_VERBOSE", raising=False)
    monkeypatch.setattr(wucme.verbs, "run", boom)
    assert cli.main(["version"]) == 4
    err = capsys.readouterr().err
    assert err.startswith("%WUCME-F-BUG, unexpected RuntimeError: kaput (define WUCME_VERBOSE")
    assert "Traceback" not in err
    monkeypatch.setenv("WUCME_VERBOSE", "*")
    assert cli.main(["version"]) == 4
    err = capsys.readouterr().err
    assert "Traceback" in err and "%WUCME-F-BUG" in err


def test_errors_map_to_exit_statuses(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["frobnicate"]) == 2
    assert capsys.readouterr().err.startswith("%WUCME-E-IVVERB, unrecognized command verb")
    assert cli.main(["VERS"]) == 0
    assert capsys.readouterr().out.startswith("%WUCME-I-VERSION, wucme ")
    assert cli.main(["--version"]) == 0
    assert cli.main(["help"]) == 0
    assert "revoke" in capsys.readouterr().out


def test_at_sign_runs_a_dcl_procedure(tmp_path: object, capsys: pytest.CaptureFixture[str]) -> None:
    from pathlib import Path

    proc = Path(str(tmp_path)) / "HELLO.COM"
    proc.write_text("$ n = 2 + 3\n"
                    "$ write sys$output \"sum ''n' for ''p1'\"\n"
                    "$ exit 42\n")
    assert cli.main([f"@{proc}", "there"]) == 2  # %X2A: severity bits 2, an error
    assert capsys.readouterr().out.strip() == "sum 5 for there"  # Linux argv keeps its case


def test_a_command_with_arguments_in_a_cgi_environment_is_the_command_line(tmp_path: object) -> None:
    """`wucme @proc.com` started by the admin load page used to answer as the CGI script (and
    load again, without end).  Only an invocation without arguments, or with the ones a server
    makes of a query string without '=' (RFC 3875 §4.4), is the script."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    proc = Path(str(tmp_path)) / "PROC.COM"
    proc.write_text('$ write sys$output "the procedure ran"\n')
    env = {**os.environ, "GATEWAY_INTERFACE": "CGI/1.1", "REQUEST_METHOD": "GET",
           "SCRIPT_NAME": "/cgi-bin/wucme", "PATH_INFO": "/admin/check/load", "QUERY_STRING": "",
           "HTTPS": "on", "REMOTE_USER": "admin"}

    def run(*args: str, **more: str) -> str:
        r = subprocess.run([sys.executable, "-c", "import sys; from wucme.cli import main; sys.exit(main())",
                               *args], env={**env, **more}, capture_output=True, text=True, timeout=60)
        return r.stdout + r.stderr

    assert run(f"@{proc}").strip() == "the procedure ran"
    assert run().startswith("Status: 200 OK")  # the script: the load page's form
    assert run("x", QUERY_STRING="x").startswith("Status: ")  # an ISINDEX query: still the script
    assert run("x", QUERY_STRING="a=x").startswith("%WUCME-E-IVVERB")


_VERB = r'''
import os, sys, time
import wucme.verbs
from wucme import cli
from wucme.result import Result

def run(cmd, show=None):
    r = Result("t", show=show)
    for i in range(3):
        r.say("I", "SKIPPED", f"skipped {i}")
    r.say("W", "BUSY", "busy")
    r.say("I", "SKIPPED", "skipped 3")
    r.say("S", "RENEWED", "renewed")
    for i in range(cli._Show.PENDING_LINES):
        r.say("I", "SKIPPED", f"many {i}")
    sys.stderr.write(f"written before the end: {os.fstat(1).st_size > 0}\n")
    r.say("I", "SKIPPED", "last")
    size = os.fstat(1).st_size
    deadline = time.monotonic() + 60  # (a bound for a loaded machine, not a timing)
    while os.fstat(1).st_size == size and time.monotonic() < deadline:
        time.sleep(0.02)
    sys.stderr.write(f"written by the timer: {os.fstat(1).st_size > size}\n")
    return r

wucme.verbs.run = run
sys.exit(cli.main(["version"]))
'''


def test_i_messages_are_written_together_in_their_place(tmp_path: Path) -> None:
    """A run of I messages goes out in one write, before anything else is shown, once
    PENDING_LINES wait, and PENDING_SECONDS after the first at the latest: the order of one
    stream (2>&1) is the order said."""
    out = tmp_path / "out"
    with open(out, "wb") as f:
        p = subprocess.run([sys.executable, "-c", _VERB], stdout=f, stderr=subprocess.STDOUT,
                           env={**os.environ, "WUCME_LNM_DIR": str(tmp_path / "lnm")}, check=False)
    lines = out.read_text().splitlines()
    assert p.returncode == 1  # the W message's status
    assert lines[:6] == ["%WUCME-I-SKIPPED, skipped 0", "%WUCME-I-SKIPPED, skipped 1",
                         "%WUCME-I-SKIPPED, skipped 2", "%WUCME-W-BUSY, busy",
                         "%WUCME-I-SKIPPED, skipped 3", "%WUCME-S-RENEWED, renewed"]
    assert "written before the end: True" in lines
    # The last I line, with nothing said after it for a while, did not wait for the end.
    assert lines[-2:] == ["%WUCME-I-SKIPPED, last", "written by the timer: True"]
    assert len([x for x in lines if x.startswith("%WUCME-I-SKIPPED, many")]) == 256
