"""What a verb returns and how the faces show it: text on the command line (and the admin pages'
?format=text), JSON for /OUTPUT=JSON; messages only through the one formatter."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from wucme import cli
from wucme.result import Facts, Result, Table, Text, render_json, render_text
from wucme.vms.condition import Condition


def sample() -> Result:
    r = Result("Sample")
    r.say("S", "CA", "https://ca.example/dir answered in 12 ms")
    r.facts(("terms of service", "none"), ("renewal information (ARI)", "offered"))
    r.table(("HOSTS", "FILE", "LAST RESULT"),
            [(("www.example.org", "two.example.org", "three.example.org"), "WUCME_C_WWW.PEM", "issued"),
             ("solo.example.org", "WUCME_C_SOLO.PEM", "-")])
    r.say("W", "LOADFAIL", "WUCME_LOAD 'false' exited with status 1")
    return r.text("line one\nline two\n")


def test_text_keeps_the_verbs_order_and_aligns_facts_and_tables() -> None:
    assert render_text(sample()).splitlines() == [
        "%WUCME-S-CA, https://ca.example/dir answered in 12 ms",
        "  terms of service:          none",
        "  renewal information (ARI): offered",
        "HOSTS" + " " * 15 + "FILE" + " " * 14 + "LAST RESULT",
        "www.example.org +2  WUCME_C_WWW.PEM   issued",
        "solo.example.org    WUCME_C_SOLO.PEM  -",
        "%WUCME-W-LOADFAIL, WUCME_LOAD 'false' exited with status 1",
        "line one",
        "line two",
    ]


def test_status_is_the_worst_message() -> None:
    assert Result().status == 0 and not Result().failed
    assert sample().status == 1 and not sample().failed
    assert sample().say("E", "X", "y").status == 2 and sample().say("E", "X", "y").failed
    assert sample().say("F", "X", "y").status == 4


def test_json_of_a_result_without_data_of_its_own() -> None:
    out = json.loads(render_json(sample()))
    assert out["status"] == 1
    assert [m["message"] for m in out["messages"]] == [
        "%WUCME-S-CA, https://ca.example/dir answered in 12 ms",
        "%WUCME-W-LOADFAIL, WUCME_LOAD 'false' exited with status 1"]
    assert out["messages"][1] == {"severity": "W", "ident": "LOADFAIL", "text": "WUCME_LOAD 'false' exited with status 1",
                                  "message": "%WUCME-W-LOADFAIL, WUCME_LOAD 'false' exited with status 1"}
    assert out["facts"] == {"terms of service": "none", "renewal information (ARI)": "offered"}
    assert out["table"][0] == {"HOSTS": ["www.example.org", "two.example.org", "three.example.org"],
                               "FILE": "WUCME_C_WWW.PEM", "LAST RESULT": "issued"}
    assert out["text"] == "line one\nline two\n"


def test_json_of_a_result_with_data_of_its_own() -> None:
    r = Result("Certificates", data={"repository": "/r", "certificates": [{"hosts": ["a.example"]}]})
    r.say("S", "CERTS", "1 certificate in /r").table(("HOSTS",), [(("a.example",),)])
    out = json.loads(render_json(r))
    assert out["repository"] == "/r" and out["certificates"] == [{"hosts": ["a.example"]}]
    assert out["status"] == 0 and "table" not in out


def test_show_gets_each_block_as_it_is_made() -> None:
    seen: list[object] = []
    r = Result(show=seen.append)
    r.say("I", "AUTHORIZING", "2 names by http-01")
    assert seen == [Condition("I", "AUTHORIZING", "2 names by http-01")]
    r.facts(("a", "b")).text("t")
    assert seen[1:] == [Facts((("a", "b"),)), Text("t")] and r.blocks == seen
    assert isinstance(Table(("H",), ()), Table)


@pytest.fixture
def empty_repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("WUCME_LNM_DIR", str(tmp_path / "lnm"))
    monkeypatch.setenv("WUCME_HERE", str(tmp_path / "here"))
    return tmp_path / "here"


def test_the_command_line_puts_messages_on_their_streams(empty_repository: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["check", "/log"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("%WUCME-I-NOLOG, no agent log") and err == ""
    assert cli.main(["deassign", "WUCME_NOT_THERE"]) == 4  # DCL's fatal NOLOGNAM: stderr
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("%SYSTEM-F-NOLOGNAM")


def test_the_command_line_prints_json(empty_repository: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["check", "/log", "/output=json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == 0 and out["messages"][0]["ident"] == "NOLOG"
    assert cli.main(["certificates", "--output=json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["repository"] == str(empty_repository) and out["certificates"] == []
    assert out["messages"][0]["ident"] == "NOCERTS"


def test_a_closed_output_pipe_ends_quietly() -> None:
    """`wucme help /output=man | head -2`: the reader goes away; no %WUCME-F-BUG, the status a
    command killed by SIGPIPE gets in a shell."""
    import subprocess
    import sys

    p = subprocess.Popen([sys.executable, "-m", "wucme", "help", "/output=man"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    assert p.stdout is not None and p.stderr is not None
    p.stdout.close()  # gone before the interpreter has started, let alone written
    with p.stderr:
        err = p.stderr.read().decode()
    assert p.wait(30) == 141 and "BUG" not in err, err


def test_a_show_that_keeps_nothing_gets_every_block_and_the_status_stays() -> None:
    """The command line's show has each I and S message for good (a pass over 100,000
    certificates says "not due" that often): the result keeps only W, E, F and the rest,
    and its exit status is the same as if it had kept them all."""
    seen: list[object] = []

    class Streamed:
        keep_blocks = False

        def __call__(self, block: object) -> None:
            seen.append(block)

    blocks = [Condition("I", "SKIPPED", "a"), Facts((("k", "v"),)), Condition("W", "BUSY", "b"),
              Condition("S", "MANAGED", "c")]
    for severity in ("S", "W"):
        kept, streamed = Result("x", show=seen.append), Result("x", show=Streamed())
        for b in blocks[:3] if severity == "W" else blocks[:2] + blocks[3:]:
            kept.add(b)
            streamed.add(b)
        assert streamed.status == kept.status == (1 if severity == "W" else 0)
        assert not [b for b in streamed.blocks if isinstance(b, Condition) and b.severity in "IS"]
        assert [b for b in streamed.blocks if not isinstance(b, Condition) or b.severity not in "IS"] == \
            [b for b in kept.blocks if not isinstance(b, Condition) or b.severity not in "IS"]
    assert seen[::2] == seen[1::2]  # both shows saw the same blocks, each as it came
    assert cli._show.keep_blocks is False
