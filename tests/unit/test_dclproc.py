"""wucme's DCL interpreter: procedures written to a temp dir and run in-process."""

from __future__ import annotations

import io
import os
import socket
import sys
from pathlib import Path

import pytest

from wucme.dclproc import dcl_main, run_procedure, run_procedure_status
from wucme.dclproc.scan import load_lines, substitute_apostrophes
from wucme.dclproc.images import image_argv
from wucme.dclproc.status import linux_exit
from wucme.vms import lnm


def run(tmp_path: Path, text: str, *params: str, name: str = "T.COM",
        stdin: str = "") -> tuple[int, str, str]:
    """Write the procedure, run it; (VMS status, stdout, stderr)."""
    (tmp_path / name).write_text(text)
    out, err = io.StringIO(), io.StringIO()
    status, _ = run_procedure_status(str(tmp_path / name), list(params), out, err, io.StringIO(stdin))
    return status, out.getvalue(), err.getvalue()


def test_symbols_expressions_and_write(tmp_path: Path) -> None:
    status, out, err = run(tmp_path, '''$! comment line
$ x = 7                          ! trailing comment
$ y = "ab""c"                    ! "" is a quote
$ z == x * 3 - 1 + (2 * 2)
$ s = "a" + "bc" - "b"           ! string + and -
$ write sys$output x, "|", y, "|", z, "|", s, "|", "a!b"
$ write sys$output 5 .gt. 3, 5 .lt. 3, "abc" .eqs. "abc", "abc" .lts. "abd", -
    .not. 0, 6 .and. 3, 4 .or. 1, 10 / 3, -10 / 3, %X1F, "12" + 1
$ w := "Keep Case"  upcased   text
$ write sys$output w
''')
    assert status == 0x00030001 and err == ""
    lines = out.splitlines()
    assert lines[0] == '7|ab"c|24|ac|a!b'
    assert lines[1] == "".join(str(v) for v in (1, 0, 1, 1, -1, 2, 5, 3, -3, 31, 13))
    assert lines[2] == "Keep Case UPCASED TEXT"


def test_apostrophe_and_ampersand_substitution(tmp_path: Path) -> None:
    status, out, err = run(tmp_path, '''$ name = "World"
$ verb = "WRITE"
$ 'verb' sys$output "Hello, ''name'! [''undefined'] ''F$LENGTH(name)'"
$ n = 2
$ p'n' = "second"
$ write sys$output p2, " ", p1
$ chan = "SYS$OUTPUT"
$ write &chan "ampersand"
$ say = "write sys$output"
$ say "synonym"
''', "first")
    assert err == "" and status & 1
    assert out.splitlines() == ["Hello, World! [] 5", "second first", "ampersand", "synonym"]


def test_lexical_functions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WUCME_DCLTEST", "from-env")
    lnm.define("WUCME_DCLSYS", ["one", "two"], "system")
    (tmp_path / "there.txt").write_text("x")
    status, out, err = run(tmp_path, f'''$ say = "write sys$output"
$ say f$edit("  a   b  ", "TRIM,COMPRESS"), "|", f$edit(" a b ""q r"" ", "COLLAPSE,UPCASE")
$ say f$element(0, ",", "a,b"), f$element(1, ",", "a,b"), f$element(2, ",", "a,b")
$ say f$length("abcd"), f$locate("c", "abcd"), f$locate("z", "abcd"), f$extract(1, 2, "abcd")
$ say f$integer("42") + 1, f$string(5) + "x", f$integer("yes"), f$integer("%X10")
$ i = 1
$ s = "12"
$ t = "text"
$ say f$type(i), ",", f$type(s), ",", f$type(t), ",", f$type(nope)
$ say f$trnlnm("WUCME_DCLTEST"), "|", f$trnlnm("WUCME_DCLSYS"), "|", -
      f$trnlnm("WUCME_DCLSYS", "LNM$SYSTEM_TABLE", 1), "|", f$trnlnm("WUCME_DCLSYS",,,,, "MAX_INDEX"), "|", -
      f$trnlnm("WUCME_DCLTEST", "LNM$SYSTEM"), "|", f$trnlnm("NO_SUCH_NAME_X")
$ say f$getsyi("NODENAME")
$ say f$search("{tmp_path}/there.txt"), "|", f$search("{tmp_path}/absent.txt"), "|"
$ say f$environment("PROCEDURE"), " ", f$environment("DEPTH")
$ say f$message(44)
''')
    assert err == "", err
    lines = out.splitlines()
    assert lines[0] == 'a b|AB"q r"'
    assert lines[1] == "ab,"
    assert lines[2] == "424bc"
    assert lines[3] == "435x116"
    assert lines[4] == "INTEGER,INTEGER,STRING,"
    assert lines[5] == "from-env|one|two|1||"
    assert lines[6] == socket.gethostname().split(".")[0].upper()[:15]
    assert lines[7] == on_sys_disk(tmp_path / "there.txt") + ";1||"  # a VMS specification, with its version
    assert lines[8] == on_sys_disk((tmp_path / "T.COM").resolve()) + ";1 1"
    assert lines[9] == "%SYSTEM-F-ABORT, abort"


def on_sys_disk(path: Path) -> str:
    """How DCL shows a Linux file under no concealed device: on SYS$DISK, the Linux root."""
    return f"SYS$DISK:[{'.'.join(path.parts[1:-1]).upper()}]{path.name.upper()}"


def test_if_blocks_nested_and_skipped(tmp_path: Path) -> None:
    status, out, err = run(tmp_path, '''$ say = "write sys$output"
$ x = 2
$ if x .eq. 2
$ then
$   say "then"
$   if x .eq. 3 then say "never"
$   if x .gt. 5
$   then
$     say "no"
$   else
$     say "nested else"
$   endif
$ else
$   say "outer else (skipped)"
$   if 1
$   then
$     say "deep (skipped)"
$   endif
$ endif
$ if x .ne. 2 then
$   say "skipped block"
$ else
$   say "else of THEN-at-end"
$ endif
$ if "YES" then say "string truth"
$ if "no" then say "no truth"
''')
    assert err == "" and out.splitlines() == ["then", "nested else", "else of THEN-at-end", "string truth"]


def test_goto_gosub_return_and_loop(tmp_path: Path) -> None:
    status, out, err = run(tmp_path, '''$ n = 0
$ total = 0
$ top:
$   n = n + 1
$   gosub add
$   if n .lt. 4 then goto top
$ write sys$output "total ", total
$ goto end
$ write sys$output "never"
$ add: total = total + n
$   return
$ end:
$ exit 3
''')
    assert err == "" and out == "total 10\n"
    assert status == 3 and linux_exit(status) == 0  # odd: success (an informational status)


def test_continuation_joins_lines_as_written(tmp_path: Path) -> None:
    text = "$ a = \"x\" + -   ! comment after the hyphen\n   \"y\"\n$ write sys$output a, -\n\",\", -\n\"z\"\n"
    lines = load_lines(text)
    assert [ln.number for ln in lines] == [1, 3]
    assert lines[0].text.strip() == 'a = "x" +    "y"'
    status, out, err = run(tmp_path, text)
    assert out == "xy,z\n" and err == ""


def test_undefined_symbol_is_a_warning_with_line_then_continues(tmp_path: Path) -> None:
    status, out, err = run(tmp_path, '''$ write sys$output "before"
$ x = foo + 1
$ write sys$output "after"
$ bogus_verb now
''')
    assert out == "before\nafter\n"
    assert err.splitlines() == [
        "%DCL-W-UNDSYM, undefined symbol - check validity and spelling", " \\FOO\\",
        f"-DCL-I-AT, line 2 of {tmp_path / 'T.COM'}",
        "%DCL-W-IVVERB, unrecognized command verb - check validity and spelling", " \\BOGUS_VERB\\",
        f"-DCL-I-AT, line 4 of {tmp_path / 'T.COM'}",
    ]
    assert status == 0x10038090  # IVVERB, message shown: a warning, so the procedure went on
    assert linux_exit(status) == 1


def test_on_warning_exits_and_set_noon(tmp_path: Path) -> None:
    status, out, err = run(tmp_path, '''$ on warning then goto handler
$ x = undefined_thing
$ write sys$output "not reached"
$ handler:
$ write sys$output "handled ", $status
$ set noon
$ on warning then exit
$ y = another_undefined
$ write sys$output "noon continues"
$ set on
$ z = third_undefined
$ write sys$output "not reached either"
''')
    assert out.splitlines() == ["handled %X10038140", "noon continues"]
    assert status == 0x10038140 and err.count("%DCL-W-UNDSYM") == 3


def test_exit_statuses_map_to_linux(tmp_path: Path) -> None:
    for body, vms, linux, shown in (
        ("$ exit", 0x00030001, 0, ""),
        ("$ exit 1", 1, 0, ""),
        ("$ exit 44", 44, 4, "%SYSTEM-F-ABORT, abort"),
        ("$ exit 2", 2, 2, "%NONAME-E-NOMSG, Message number 00000002"),
        ("$ exit %X10000000", 0x10000000, 1, ""),
    ):
        status, out, err = run(tmp_path, body + "\n")
        assert (status, linux_exit(status), err.strip()) == (vms, linux, shown), body
    assert run_procedure(str(tmp_path / "T.COM"), [], io.StringIO(), io.StringIO()) == 1


def test_nested_procedures_symbols_and_status(tmp_path: Path) -> None:
    (tmp_path / "INNER.COM").write_text('''$ write sys$output "inner ", p1, "/", p2, "/", outer_local
$ inner_local = 1
$ shared == "from inner"
$ exit 44
''')
    status, out, err = run(tmp_path, f'''$ outer_local = "seen"
$ set noon
$ @{tmp_path}/inner unquoted "Quoted ""x"""
$ write sys$output "status ", $status, " ", shared, " ", f$type(inner_local)
''')
    assert out.splitlines() == ['inner UNQUOTED/Quoted "x"/seen', "status %X0000002C from inner "]
    assert err == ""  # the inner EXIT's message is shown only at the outermost level


def test_define_system_deassign_show(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WUCME_DCLPROC", raising=False)
    status, out, err = run(tmp_path, '''$ define /system /executive WUCME_HERE /srv/Wucme
$ define /system wucme_mail "system,smtp%""a@b"""
$ define /system /exec /nolog WUCME_HERE /srv/Other
$ define /system WUCME_HERE ELSE:[WHERE]
$ define /cluster WUCME_ACTIVE *
$ define /process WUCME_DCLPROC one, "Two"
$ show logical /system wucme_mail
$ show logical NO_SUCH_LOGICAL_X
$ deassign /system wucme_mail
$ write sys$output "after"
$ deassign /system wucme_mail
$ write sys$output "not reached: NOLOGNAM is severe, ON ERROR THEN EXIT"
''')
    assert lnm.lookup("WUCME_HERE", "system").values == ("ELSE:[WHERE]",)  # type: ignore[union-attr]
    assert lnm.lookup("WUCME_HERE", "system").mode is None  # type: ignore[union-attr]
    assert lnm.lookup("WUCME_ACTIVE", "cluster").values == ("*",)  # type: ignore[union-attr]
    assert lnm.lookup("WUCME_MAIL", "system") is None
    assert lnm.translate("WUCME_DCLPROC") == ["ONE", "Two"]  # unquoted upper-cased, as DCL does
    assert out.splitlines() == [
        "%DCL-I-SUPERSEDE, previous value of WUCME_HERE has been superseded",
        '   "WUCME_MAIL" = "system,smtp%"a@b"" (LNM$SYSTEM_TABLE)',
        "%SHOW-S-NOTRAN, no translation for logical name NO_SUCH_LOGICAL_X",
        "after",
    ]
    assert err.startswith("%SYSTEM-F-NOLOGNAM, no logical name match\n-DCL-I-AT, line 11")
    assert linux_exit(status) == 4


def test_show_symbol(tmp_path: Path) -> None:
    status, out, err = run(tmp_path, '''$ abc = 10
$ abd == "text"
$ show symbol abc
$ show symbol abd
$ show symbol ab*
$ show symbol $status
$ show symbol nothing_here
''')
    assert out.splitlines() == ["  ABC = 10   Hex = 0000000A  Octal = 00000000012", '  ABD == "text"',
                                "  ABC = 10   Hex = 0000000A  Octal = 00000000012", '  $STATUS == "%X00030001"']
    assert err.splitlines()[:2] == ["%DCL-W-UNDSYM, undefined symbol - check validity and spelling",
                                    " \\NOTHING_HERE\\"]


def test_files_open_write_read_delete(tmp_path: Path) -> None:
    f = tmp_path / "data.txt"
    status, out, err = run(tmp_path, f'''$ open /write out "{f}"
$ write out "line one"
$ write out "line ", 2
$ close out
$ open /read in "{f}"
$ loop:
$ read /end_of_file=eof in rec
$ write sys$output "got: ", rec
$ goto loop
$ eof:
$ close in
$ delete "{f};*"
$ if f$search("{f}") .eqs. "" then write sys$output "deleted"
$ inquire answer "Proceed"
$ write sys$output answer
''', stdin="yes  please\n")
    assert err == ""
    assert out.splitlines() == ["got: line one", "got: line 2", "deleted", "Proceed: YES PLEASE"]


def test_foreign_commands_and_image_status(tmp_path: Path) -> None:
    script = tmp_path / "tool"
    script.write_text(f"#!{sys.executable}\nimport sys\nprint('argv', sys.argv[1:])\nsys.exit(int(sys.argv[1]))\n")
    script.chmod(0o755)
    status, out, err = run(tmp_path, f'''$ tool = "${script}"
$ tool 0 "Mixed Case" a,b,-
c
$ write sys$output "status ", $status
$ set noon
$ tool 3 x
$ write sys$output "status ", $status, " severity ", $severity
$ set on
$ tool 5
$ write sys$output "not reached"
''')
    assert out.splitlines() == ["argv ['0', 'Mixed Case', 'a,b,c']", "status %X00000001",
                                "argv ['3', 'x']", "status %X1035A01A severity 2", "argv ['5']"]
    assert err == "" and linux_exit(status) == 5  # the image's own exit status comes back


def test_wucme_image_mapping() -> None:
    me = [sys.executable, "-m", "wucme"]
    for spec in ("cgi_exe:wucme", "CGI_EXE:WUCME.EXE", "WASD_EXE:[X]WUCME.EXE;1", "wucme", "/opt/x/wucme"):
        assert image_argv(spec) == me
    assert image_argv("openssl")[0].endswith("/openssl")
    from wucme.dclproc.status import DclSignal

    with pytest.raises(DclSignal) as exc:
        image_argv("$NO_SUCH_DEVICE_X:[A]NOPE.EXE")
    assert exc.value.lines()[0].startswith("%DCL-E-ACTIMAGE, error activating image")


def test_wucme_foreign_command_runs_the_cli(tmp_path: Path) -> None:
    status, out, err = run(tmp_path, '''$ wucme = "$cgi_exe:wucme"
$ wucme version
$ mcr cgi_exe:wucme version
''')
    assert status == 1 and err == ""
    assert out.count("wucme") >= 2 or out.lower().count("wucme") >= 2


def test_substitution_details() -> None:
    table = {"A": "1", "B": "x y"}
    sub = lambda t: substitute_apostrophes(t, lambda n: table.get(n.upper()), lambda e: "E")  # noqa: E731
    assert sub("'a' 'b'") == "1 x y"
    assert sub("\"'a' ''a'\"") == "\"'a' 1\""
    assert sub("'undefined'x") == "x"
    assert sub("don't") == "don't"
    assert sub("'F$LENGTH(b)'") == "E"


def test_errors_in_structure(tmp_path: Path) -> None:
    status, out, err = run(tmp_path, "$ goto nowhere\n$ write sys$output \"mid\"\n$ set noon\n$ else\n"
                                     "$ set on\n$ return\n$ write sys$output \"end\"\n")
    assert out == "mid\n"  # USGOTO is a warning; NOGOSUB an error, which exits (ON ERROR THEN EXIT)
    idents = [ln.split(",")[0] for ln in err.splitlines() if ln.startswith("%")]
    assert idents == ["%DCL-W-USGOTO", "%DCL-E-INVIFNEST", "%DCL-E-NOGOSUB"]
    assert linux_exit(status) == 2


def test_data_lines_and_shebang(tmp_path: Path) -> None:
    status, out, err = run(tmp_path, "#!/usr/bin/env -S python3 -m wucme.dclproc\n$ write sys$output 1\n"
                           "data line\nmore data\n$ write sys$output 2\n")
    assert out == "1\n2\n"
    assert err.count("%DCL-W-SKPDAT") == 1 and "line 3" in err


def test_dcl_main_default_type_and_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "HELLO.COM").write_text("$ write sys$output \"hi \", p1\n$ exit 44\n")
    monkeypatch.chdir(tmp_path)
    assert dcl_main(["@hello", "there"]) == 4
    cap = capsys.readouterr()
    assert cap.out == "hi there\n" and cap.err == "%SYSTEM-F-ABORT, abort\n"
    assert dcl_main(["@missing"]) == 2
    assert capsys.readouterr().err.splitlines() == ["%DCL-E-OPENIN, error opening MISSING as input",
                                                    "-RMS-E-FNF, file not found"]
    assert os.environ.get("WUCME_LNM_DIR")  # the autouse fixture kept the system table private


def test_job_table_is_shared_with_images_and_ends_with_the_procedure(tmp_path: Path) -> None:
    """DEFINE /JOB in the procedure is seen by the wucme image it runs, and the image's DEFINE /JOB
    by the procedure (one job tree); the job table goes when the outermost procedure ends."""
    status, out, err = run(tmp_path, '''$ wucme = "$cgi_exe:wucme"
$ define /job from_procedure "set by DCL"
$ wucme show logical from_procedure
$ wucme define /job from_image "set by the image"
$ write sys$output f$trnlnm("FROM_IMAGE"), " | ", f$trnlnm("FROM_IMAGE",,,,, "TABLE_NAME") - "LNM$JOB_"
$ write sys$output f$getjpi("", "PID")
''')
    assert err == "" and status & 1
    lines = out.splitlines()
    job = lines[-1]
    assert lines[0] == f'   "FROM_PROCEDURE" = "set by DCL" (LNM$JOB_{job})'
    assert lines[-2] == f"set by the image | {job}"
    assert lnm.JOB_ENV not in os.environ
    assert not list(Path("/tmp").glob(f"wucme-job-*/job_{job}.json"))


def test_unsupported_verbs_and_lexicals_stop_the_procedure(tmp_path: Path) -> None:
    """NOTSUPP is an error: under the default ON ERROR THEN EXIT the procedure stops there."""
    for line in ("$ pipe show time | search sys$input x", "$ x = f$getdvi(\"TT\", \"DEVCLASS\")",
                 "$ show process", "$ set process /name=x"):
        status, out, err = run(tmp_path, f"{line}\n$ write sys$output \"not reached\"\n")
        assert out == "" and err.startswith("%DCL-E-NOTSUPP, not supported by wucme's DCL"), (line, err)
        assert status & 7 == 2


def test_verify_echoes_what_runs(tmp_path: Path) -> None:
    status, out, err = run(tmp_path, '''$ set verify
$ ! comment after blanks
$ n = 2
$ label: write sys$output "n=''n'"
$ if n .eq. 2 then -
    write sys$output "continued"
$ set noverify
$ write sys$output "quiet"
''')
    assert out.splitlines() == ["$ ! comment after blanks", "$ n = 2", '$ label: write sys$output "n=2"', "n=2",
                                "$ if n .eq. 2 then -", '    write sys$output "continued"', "continued",
                                "$ set noverify", "quiet"]


@pytest.mark.parametrize("expr", ["(" * 130 + "1" + ")" * 130, "- " * 400 + "1", ".not. " * 400 + "1",
                                  "f$length(" * 200 + '""' + ")" * 200])
def test_deeply_nested_expression_is_a_syntax_error(tmp_path: Path, expr: str) -> None:
    """Found by the fuzzer (tests/fuzz, atheris): 130 parentheses were a RecursionError, a
    traceback from `wucme @x.com`; now %DCL-W-EXPSYN, and the procedure's error handling."""
    status, out, err = run(tmp_path, f"$ x = {expr}\n$ write sys$output \"after\"\n")
    assert "%DCL-W-EXPSYN" in err and "nested more than" in err and "Traceback" not in err, err
    assert out == "after\n"  # a warning: the procedure goes on, as DCL does
    status, out, err = run(tmp_path, "$ x = " + "(" * 40 + "1" + ")" * 40 + "\n$ write sys$output x\n")
    assert out == "1\n" and err == ""
