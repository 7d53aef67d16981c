"""The face: VMS messages and exit statuses, never a bare traceback."""
from __future__ import annotations

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
