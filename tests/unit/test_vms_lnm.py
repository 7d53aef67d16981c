"""Logical names: tables and their order, iterative translation, search lists, DCL quoting, concurrency."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from wucme.vms import lnm
from wucme.vms.dcllex import QuoteError, parse_equivalence_list, quote, split_search_list

NAMES = ["WUCME_T_A", "WUCME_T_B", "WUCME_T_C", "WUCME_HERE", "WUCME_MAIL", "WUCME_T_LOOP1", "WUCME_T_LOOP2",
         "WUCME_KEEP", "WASD_ROOT", "ELSE", "wucme_t_lower"] + [f"WUCME_T_L{i}" for i in range(13)]


@pytest.fixture(autouse=True)
def tables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private table directory and a process table free of the names these tests use."""
    monkeypatch.setenv("WUCME_LNM_DIR", str(tmp_path / "lnm"))
    monkeypatch.delenv("WUCME_LNM_CLUSTER_DIR", raising=False)
    monkeypatch.delenv(lnm.JOB_ENV, raising=False)
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv("_WUCME_LNM_" + name, raising=False)
    return tmp_path / "lnm"


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], env=dict(os.environ), capture_output=True,
                          text=True, timeout=60, check=True)


# --- DCL quoting ----------------------------------------------------------------------

@pytest.mark.parametrize("text, upcase, expected", [
    ('"system,smtp%""a@b"""', False, ['system,smtp%"a@b"']),
    ('system,smtp%"a@b"', False, ["system", "smtp%a@b"]),
    ('system,smtp%"a@b"', True, ["SYSTEM", "SMTP%a@b"]),
    ("/srv/certs", False, ["/srv/certs"]),
    ("/srv/certs", True, ["/SRV/CERTS"]),
    (" a , b ", False, ["a", "b"]),
    ('abc"Def"', True, ["ABCDef"]),
    ('"a, b"', False, ["a, b"]),
    ('""""', False, ['"']),
    ("central,software,oper2", False, ["central", "software", "oper2"]),
    ("", False, []),
])
def test_parse_equivalence_list(text: str, upcase: bool, expected: list[str]) -> None:
    assert parse_equivalence_list(text, upcase=upcase) == expected


def test_unterminated_quote() -> None:
    with pytest.raises(QuoteError) as err:
        parse_equivalence_list('"abc')
    assert err.value.message().startswith("%WUCME-E-UNDQUOTE, ")


@pytest.mark.parametrize("value", ['system,smtp%"a@b"', 'a"b""c', "", "x,y"])
def test_quote_round_trip(value: str) -> None:
    assert parse_equivalence_list(quote(value)) == [value]


@pytest.mark.parametrize("value, expected", [
    ('system,smtp%"a@b"', ["system", 'smtp%"a@b"']),
    ('smtp%"x,y"@z, other', ['smtp%"x,y"@z', "other"]),
    ("CENTRAL,NETWORK", ["CENTRAL", "NETWORK"]),
    (" a ,, b ,", ["a", "b"]),
    ('a,"open', ["a", '"open']),
])
def test_split_search_list(value: str, expected: list[str]) -> None:
    assert split_search_list(value) == expected


# --- tables ------------------------------------------------------------------------------

def test_undefined() -> None:
    assert lnm.trnlnm("WUCME_T_A") is None
    assert lnm.translate("WUCME_T_A") == []


def test_precedence_process_system_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    lnm.define("WUCME_T_A", ["cluster"], "cluster")
    assert lnm.trnlnm("WUCME_T_A") == "cluster"
    lnm.define("WUCME_T_A", ["system"], "system")
    assert lnm.trnlnm("WUCME_T_A") == "system"
    monkeypatch.setenv("WUCME_T_A", "process")
    assert lnm.trnlnm("WUCME_T_A") == "process"
    assert lnm.trnlnm("WUCME_T_A", tables=["cluster"]) == "cluster"
    assert lnm.trnlnm("WUCME_T_A", tables="system") == "system"
    lnm.deassign("WUCME_T_A", "process")
    lnm.deassign("WUCME_T_A", "system")
    assert lnm.trnlnm("WUCME_T_A") == "cluster"


def test_names_case_insensitive_values_keep_case() -> None:
    lnm.define("wucme_t_a", ["/srv/Certs"], "system")
    assert lnm.trnlnm("WUCME_T_A") == "/srv/Certs"
    assert lnm.trnlnm("Wucme_T_A") == "/srv/Certs"
    assert lnm.show("WUCME_T_A", "system")[0].name == "WUCME_T_A"


def test_define_process_sets_environment() -> None:
    old = lnm.define("WUCME_T_A", ["/srv/x"], "process")
    assert old is None and os.environ["WUCME_T_A"] == "/srv/x"
    old = lnm.define("WUCME_T_A", ["/srv/y", "/srv/z"], "process", concealed=True)
    assert old is not None and old.values == ("/srv/x",)
    assert os.environ["WUCME_T_A"] == "/srv/y"
    assert lnm.translate("WUCME_T_A") == ["/srv/y", "/srv/z"]
    assert lnm.lookup("WUCME_T_A").concealed  # type: ignore[union-attr]
    # a child process inherits the process table, as a spawned subprocess does on VMS
    out = run_python("from wucme.vms.lnm import translate; print(translate('WUCME_T_A'))").stdout
    assert out.strip() == "['/srv/y', '/srv/z']"
    # someone resets the variable by other means: the stale extra elements are ignored
    os.environ["WUCME_T_A"] = "/srv/w"
    assert lnm.translate("WUCME_T_A") == ["/srv/w"]


def test_environment_value_is_one_element(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WUCME_MAIL", 'system,smtp%"a@b"')
    assert lnm.translate("WUCME_MAIL") == ['system,smtp%"a@b"']
    assert lnm.translate_items("WUCME_MAIL") == ["system", 'smtp%"a@b"']


def test_empty_environment_variable_is_undefined(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WUCME_T_A", "")
    lnm.define("WUCME_T_A", ["sys"], "system")
    assert lnm.trnlnm("WUCME_T_A") == "sys"


def test_dcl_quoted_mail_value_in_system_table() -> None:
    values = parse_equivalence_list('"system,smtp%""whomever@wherever"""')
    lnm.define("WUCME_MAIL", values, "system", mode="EXECUTIVE")
    assert lnm.trnlnm("WUCME_MAIL") == 'system,smtp%"whomever@wherever"'
    assert lnm.translate_items("WUCME_MAIL") == ["system", 'smtp%"whomever@wherever"']


def test_search_list_and_iteration() -> None:
    lnm.define("WUCME_T_A", ["WUCME_T_B", "/last"], "system")
    lnm.define("WUCME_T_B", ["WUCME_T_C", "/middle"], "cluster")
    lnm.define("WUCME_T_C", ["/first"], "process")
    assert lnm.translate("WUCME_T_A") == ["/first", "/middle", "/last"]
    assert lnm.trnlnm("WUCME_T_A") == "/first"


def test_terminal_stops_iteration() -> None:
    lnm.define("WUCME_T_B", ["/b"], "system")
    lnm.define("WUCME_T_A", ["WUCME_T_B"], "system", terminal=True)
    assert lnm.translate("WUCME_T_A") == ["WUCME_T_B"]


def test_values_match_names_case_sensitively() -> None:
    lnm.define("WUCME_T_B", ["/b"], "system")
    lnm.define("WUCME_T_A", ["wucme_t_b", "WUCME_T_B:", "WUCME_T_B"], "system")
    assert lnm.translate("WUCME_T_A") == ["wucme_t_b", "WUCME_T_B:", "/b"]


def test_loop_detected() -> None:
    lnm.define("WUCME_T_LOOP1", ["WUCME_T_LOOP2"], "system")
    lnm.define("WUCME_T_LOOP2", ["x", "WUCME_T_LOOP1"], "process")
    with pytest.raises(lnm.LogicalLoopError) as err:
        lnm.trnlnm("WUCME_T_LOOP1")
    assert "WUCME_T_LOOP1 -> WUCME_T_LOOP2 -> WUCME_T_LOOP1" in err.value.text
    assert err.value.ident == "LNMLOOP"
    lnm.define("WUCME_T_LOOP1", ["WUCME_T_LOOP1"], "system")
    with pytest.raises(lnm.LogicalLoopError):
        lnm.translate("WUCME_T_LOOP1")


def test_ten_levels_allowed_eleven_refused() -> None:
    # L0 -> L1 -> ... -> L9 -> "/end": ten translations.
    for i in range(9):
        lnm.define(f"WUCME_T_L{i}", [f"WUCME_T_L{i + 1}"], "system")
    lnm.define("WUCME_T_L9", ["/end"], "system")
    assert lnm.trnlnm("WUCME_T_L0") == "/end"
    lnm.define("WUCME_T_L9", ["WUCME_T_L10"], "system")
    lnm.define("WUCME_T_L10", ["/end"], "system")
    with pytest.raises(lnm.LogicalDepthError) as err:
        lnm.trnlnm("WUCME_T_L0")
    assert err.value.ident == "TOOMANYLNAM"
    assert lnm.trnlnm("WUCME_T_L1") == "/end"


def within(seconds: int, fn: Callable[[], object]) -> object:
    """fn(), or TimeoutError once *seconds* have passed (a hang fails instead of blocking)."""
    def alarm(signum: int, frame: object) -> None:
        raise TimeoutError(f"still translating after {seconds} s")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        return fn()
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def test_search_lists_of_search_lists_are_bounded() -> None:
    """Found writing the translation fuzz target (tests/fuzz): ten names of twenty elements each naming the next are
    within MAX_DEPTH at every step, but 20**9 translations in all: the translation hung."""
    for i in range(9):
        lnm.define(f"WUCME_T_L{i}", [f"WUCME_T_L{i + 1}"] * 20, "system")
    lnm.define("WUCME_T_L9", ["/end"], "system")
    assert within(10, lambda: lnm.translate("WUCME_T_L8")) == ["/end"] * 20  # 21 lookups: fine
    with pytest.raises(lnm.LogicalDepthError) as err:
        within(10, lambda: lnm.translate("WUCME_T_L0"))
    assert err.value.ident == "TOOMANYLNAM" and "more than 512 lookups" in err.value.text


def test_define_validation() -> None:
    for bad in ["", "A=B", "A B", "x" * 256]:
        with pytest.raises(lnm.LogicalNameError):
            lnm.define(bad, ["v"], "system")
    with pytest.raises(lnm.LogicalNameError):
        lnm.define("WUCME_T_A", [], "system")
    with pytest.raises(lnm.LogicalNameError):
        lnm.define("WUCME_T_A", ["ok", ""], "system")
    with pytest.raises(lnm.LogicalNameError) as err:
        lnm.define("WUCME_T_A", ["v"], "decw")
    assert err.value.ident == "NOSUCHTABLE"
    with pytest.raises(lnm.LogicalNameError):
        lnm.define("WUCME_T_A", ["v"], "system", mode="ROOT")


def test_deassign_missing() -> None:
    for table in ("process", "system", "cluster"):
        with pytest.raises(lnm.NoLogicalNameError) as err:
            lnm.deassign("WUCME_T_A", table)
        assert err.value.message().startswith("%WUCME-E-NOLOGNAM, ")


def test_table_file_and_cluster_dir(tables: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lnm.define("WUCME_T_A", ["/s"], "system", concealed=True, mode="exec")
    obj = json.loads((tables / "system.json").read_text())
    assert obj["names"]["WUCME_T_A"] == {"values": ["/s"], "attributes": ["CONCEALED"], "mode": "EXECUTIVE"}
    assert (tables / "system.json").stat().st_mode & 0o777 == 0o644
    shared = tmp_path / "shared"
    monkeypatch.setenv("WUCME_LNM_CLUSTER_DIR", str(shared))
    lnm.define("WUCME_T_B", ["/c"], "cluster")
    assert (shared / "cluster.json").exists() and not (tables / "cluster.json").exists()
    assert lnm.table_path("cluster") == shared / "cluster.json"


def test_damaged_table_is_reported(tables: Path) -> None:
    tables.mkdir(parents=True)
    (tables / "system.json").write_text("{not json")
    with pytest.raises(lnm.LogicalNameError) as err:
        lnm.trnlnm("WUCME_T_A")
    assert err.value.ident == "BADTABLE"


def test_define_in_another_process_seen_without_restart() -> None:
    assert lnm.trnlnm("WUCME_T_A") is None
    run_python("from wucme.vms.lnm import define; define('WUCME_T_A', ['one'], 'system')")
    assert lnm.trnlnm("WUCME_T_A") == "one"
    # same size, same second: still seen (the cache keys on the inode it holds open)
    for value in ("two", "six", "ten"):
        run_python(f"from wucme.vms.lnm import define; define('WUCME_T_A', ['{value}'], 'system')")
        assert lnm.trnlnm("WUCME_T_A") == value
    run_python("from wucme.vms.lnm import deassign; deassign('WUCME_T_A', 'system')")
    assert lnm.trnlnm("WUCME_T_A") is None


def test_rapid_rewrites_in_process_are_seen() -> None:
    for i in range(200):
        lnm.define("WUCME_T_A", [f"v{i % 10}"], "system")
        assert lnm.trnlnm("WUCME_T_A") == f"v{i % 10}"


def test_concurrent_defines_lose_nothing(tables: Path) -> None:
    code = (
        "import sys\n"
        "from wucme.vms.lnm import define\n"
        "for i in range(50):\n"
        "    define(f'WUCME_P{sys.argv[1]}_{i}', [f'/v/{sys.argv[1]}/{i}'], 'system')\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, str(n)], env=dict(os.environ)) for n in (1, 2)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    entries = {e.name: e.values for e in lnm.show("WUCME_P*", "system")}
    assert len(entries) == 100
    assert entries["WUCME_P2_49"] == ("/v/2/49",)
    assert not [p for p in tables.iterdir() if p.name.startswith(".wucme-tmp-")]


def test_show_and_format() -> None:
    lnm.define("WUCME_T_A", ["/srv/x"], "system")
    lnm.define("WUCME_T_B", ["WUCME_T_A", "/second"], "cluster", concealed=True, terminal=True, mode="EXECUTIVE")
    lnm.define("WUCME_T_C", ["WUCME_T_A"], "process")
    entries = lnm.show("WUCME_T_%")
    assert [(e.name, e.table) for e in entries] == [
        ("WUCME_T_C", "process"), ("WUCME_T_A", "system"), ("WUCME_T_B", "cluster")]
    assert lnm.format_show(entries) == [
        '   "WUCME_T_C" = "WUCME_T_A" (LNM$PROCESS_TABLE)',
        '   "WUCME_T_A" = "/srv/x" (LNM$SYSTEM_TABLE)',
        '   "WUCME_T_B" [exec] = "WUCME_T_A" [concealed,terminal] (LNM$SYSCLUSTER_TABLE)',
        '        = "/second"',
    ]
    assert lnm.format_show(lnm.show("wucme_t_c"), iterate=True) == [
        '   "WUCME_T_C" = "WUCME_T_A" (LNM$PROCESS_TABLE)',
        '1  "WUCME_T_A" = "/srv/x" (LNM$SYSTEM_TABLE)',
    ]
    assert lnm.show("nothing*") == []
    assert [e.name for e in lnm.show("*T_?", "system")] == []  # ? is no VMS wildcard


# --- the job and group tables, the names VMS creates at login --------------------------------------

def test_search_order_process_job_group_system_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    job = lnm.start_job()
    assert job is not None
    try:
        for table in ("cluster", "system", "group", "job"):
            lnm.define("WUCME_T_A", [table], table)
            assert lnm.trnlnm("WUCME_T_A") == table
        monkeypatch.setenv("WUCME_T_A", "process")
        assert [e.table for e in lnm.lookup_all("WUCME_T_A")] == ["process", "job", "group", "system", "cluster"]
        assert lnm.lookup("WUCME_T_A", "job").table_name == f"LNM$JOB_{os.getpid():08X}"  # type: ignore[union-attr]
        assert lnm.lookup("WUCME_T_A", "group").table_name == f"LNM$GROUP_{os.getgid():06o}"  # type: ignore[union-attr]
    finally:
        lnm.end_job(job)
    assert not job.parent.exists() and lnm.JOB_ENV not in os.environ
    assert lnm.trnlnm("WUCME_T_A") == "process"


def test_job_table_is_shared_with_the_processes_a_job_starts(tables: Path) -> None:
    """A subprocess's DEFINE /JOB is seen by its parent, as in a VMS job tree."""
    job = lnm.start_job()
    assert job is not None and lnm.start_job() is None  # one job per tree
    try:
        lnm.define("WUCME_T_A", ["from parent"], "job")
        out = run_python("from wucme.vms import lnm; print(lnm.trnlnm('WUCME_T_A')); "
                         "lnm.define('WUCME_T_B', ['from child'], 'job')").stdout
        assert out.strip() == "from parent"
        assert lnm.trnlnm("WUCME_T_B") == "from child"
        assert (job.parent.stat().st_mode & 0o777) == 0o700
    finally:
        lnm.end_job(job)
    assert lnm.trnlnm("WUCME_T_B") is None


def test_job_table_made_on_first_define_and_gone_with_the_process(tables: Path) -> None:
    code = ("import os; from wucme.vms import lnm; lnm.define('WUCME_T_A', ['x'], 'job'); "
            "print(os.environ[lnm.JOB_ENV]); print(lnm.lookup('WUCME_T_A').table_name)")
    path, name = run_python(code).stdout.split()
    assert name.startswith("LNM$JOB_") and not Path(path).exists()
    with pytest.raises(lnm.NoLogicalNameError):
        lnm.deassign("WUCME_T_A", "job")


def test_group_table_is_a_file_per_group(tables: Path) -> None:
    lnm.define("WUCME_T_A", ["grp"], "group")
    assert json.loads((tables / f"group_{os.getgid():06o}.json").read_text())["names"]["WUCME_T_A"]["values"] == ["grp"]
    lnm.deassign("WUCME_T_A", "group")
    assert lnm.trnlnm("WUCME_T_A") is None


def test_login_names_are_built_in(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    home = tmp_path / "home" / "smith"
    monkeypatch.setenv("HOME", str(home))
    login = "SYS$DISK:[" + ".".join(home.parts[1:]).upper() + "]"
    assert lnm.trnlnm("SYS$LOGIN") == login and lnm.trnlnm("SYS$SCRATCH") == login
    assert lnm.lookup("SYS$LOGIN").table == "job"  # type: ignore[union-attr]
    assert lnm.trnlnm("SYS$LOGIN_DEVICE") == "SYS$DISK:"
    disk = lnm.lookup("SYS$DISK")
    assert disk is not None and disk.values == ("/",) and disk.concealed and disk.table == "process"
    node = lnm.lookup("SYS$NODE")
    assert node is not None and node.table == "system" and node.values[0].endswith("::")
    monkeypatch.setenv("HOME", "/home/john.doe")  # ODS-2 cannot spell it: the Linux path
    assert lnm.trnlnm("SYS$LOGIN") == "/home/john.doe/"
    lnm.define("SYS$NODE", ["OTHER::"], "system")  # a DEFINE overrides a built-in name
    assert lnm.trnlnm("SYS$NODE") == "OTHER::"
    assert [e.name for e in lnm.show("SYS$DISK")] == ["SYS$DISK"]


def test_listing_format(monkeypatch: pytest.MonkeyPatch) -> None:
    """SHOW LOGICAL WA*: each table searched as a header, its names indented (DCL Dictionary, SHOW LOGICAL)."""
    lnm.define("WUCME_T_A", ["/srv/x"], "system")
    lnm.define("WUCME_T_B", ["one", "two"], "cluster", mode="EXECUTIVE")
    sections = lnm.show_tables("WUCME_T_%", ("process", "system", "cluster"))
    assert lnm.format_listing(sections) == [
        "", "(LNM$PROCESS_TABLE)",
        "", "(LNM$SYSTEM_TABLE)", "", '  "WUCME_T_A" = "/srv/x"',
        "", "(LNM$SYSCLUSTER_TABLE)", "", '  "WUCME_T_B" [exec] = "one"', '        = "two"',
    ]
    assert lnm.format_listing(sections[1:2], full=True)[-1] == '  "WUCME_T_A" [super] = "/srv/x"'


def test_a_table_file_that_vanishes_between_stat_and_open_is_an_empty_table(
        tables: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lnm.define("WUCME_T_A", ["one"], "system")
    assert lnm.trnlnm("WUCME_T_A") == "one"
    lnm.define("WUCME_T_B", ["two"], "system")  # the file changed: the next read opens it again
    path = lnm.table_path("system")
    real_stat, deleted = os.stat, list[Path]()

    def stat_then_delete(p: object, *args: object, **kwargs: object) -> os.stat_result:
        st = real_stat(p, *args, **kwargs)  # type: ignore[arg-type]
        if str(p) == str(path) and not deleted:
            os.unlink(path)  # another process deletes the table right after our stat
            deleted.append(path)
        return st

    monkeypatch.setattr(lnm.os, "stat", stat_then_delete)
    assert lnm.trnlnm("WUCME_T_A", "system") is None
    assert deleted == [path]
    assert lnm.trnlnm("WUCME_T_B", "system") is None and lnm.show("WUCME_T_*", "system") == []


# --- SHOW LOGICAL's iteration at its limits; the job table; the login names -------------------------

def test_show_iterates_a_chain_to_max_depth_and_no_further() -> None:
    """WUCME_T_L0 -> L1 -> ... -> L12: levels numbered 1 to MAX_DEPTH - 1, then the chain is cut."""
    for i in range(12):
        lnm.define(f"WUCME_T_L{i}", [f"WUCME_T_L{i + 1}"], "system")
    lnm.define("WUCME_T_L12", ["/end"], "system")
    lines = lnm.format_show(lnm.show("WUCME_T_L0", "system"), iterate=True)
    assert lines[0] == '   "WUCME_T_L0" = "WUCME_T_L1" (LNM$SYSTEM_TABLE)'
    assert lines[1] == '1  "WUCME_T_L1" = "WUCME_T_L2" (LNM$SYSTEM_TABLE)'
    assert lines[-1] == f'{lnm.MAX_DEPTH - 1:<3}"WUCME_T_L{lnm.MAX_DEPTH - 1}" = "WUCME_T_L{lnm.MAX_DEPTH}" (LNM$SYSTEM_TABLE)'
    assert len(lines) == lnm.MAX_DEPTH == 10


def test_show_iterates_every_value_of_a_search_list_once_and_stops_at_loops() -> None:
    """Each value that is a name is translated as it is written (exact: a lower-case value is
    another name); a name already in the chain is not shown again."""
    lnm.define("WUCME_T_A", ["WUCME_T_B", "wucme_t_c", "WUCME_T_C", "/plain"], "system")
    lnm.define("WUCME_T_B", ["WUCME_T_A"], "system")  # back to the start: a loop
    lnm.define("WUCME_T_C", ["/c"], "system", mode="EXECUTIVE")
    assert lnm.format_show(lnm.show("WUCME_T_A", "system"), iterate=True) == [
        '   "WUCME_T_A" = "WUCME_T_B" (LNM$SYSTEM_TABLE)',
        '        = "wucme_t_c"',
        '        = "WUCME_T_C"',
        '        = "/plain"',
        '1  "WUCME_T_B" = "WUCME_T_A" (LNM$SYSTEM_TABLE)',
        '1  "WUCME_T_C" [exec] = "/c" (LNM$SYSTEM_TABLE)',
    ]
    assert lnm.format_show(lnm.show("WUCME_T_A", "system"), iterate=True, full=True)[4:] == [
        '1  "WUCME_T_B" [super] = "WUCME_T_A" (LNM$SYSTEM_TABLE)',
        '1  "WUCME_T_C" [exec] = "/c" (LNM$SYSTEM_TABLE)',
    ]
    assert lnm.format_show(lnm.show("WUCME_T_B", "system"), full=True) == [
        '   "WUCME_T_B" [super] = "WUCME_T_A" (LNM$SYSTEM_TABLE)']
    # several entries: each iterates on its own
    two = lnm.format_show(lnm.show("WUCME_T_B", "system") + lnm.show("WUCME_T_C", "system"), iterate=True)
    assert two == ['   "WUCME_T_B" = "WUCME_T_A" (LNM$SYSTEM_TABLE)',
                   '1  "WUCME_T_A" = "WUCME_T_B" (LNM$SYSTEM_TABLE)',
                   '        = "wucme_t_c"', '        = "WUCME_T_C"', '        = "/plain"',
                   '2  "WUCME_T_C" [exec] = "/c" (LNM$SYSTEM_TABLE)',
                   '   "WUCME_T_C" [exec] = "/c" (LNM$SYSTEM_TABLE)']


def test_show_iteration_translates_in_every_table(monkeypatch: pytest.MonkeyPatch) -> None:
    lnm.define("WUCME_T_A", ["WUCME_T_B"], "cluster")
    monkeypatch.setenv("WUCME_T_B", "/from/process")
    assert lnm.format_show(lnm.show("WUCME_T_A", "cluster"), iterate=True) == [
        '   "WUCME_T_A" = "WUCME_T_B" (LNM$SYSCLUSTER_TABLE)',
        '1  "WUCME_T_B" = "/from/process" (LNM$PROCESS_TABLE)']


def test_lookup_all_and_translate_items_in_the_tables_named(monkeypatch: pytest.MonkeyPatch) -> None:
    lnm.define("WUCME_T_A", ["sys1,sys2"], "system")
    monkeypatch.setenv("WUCME_T_A", "proc")
    assert [e.table for e in lnm.lookup_all("WUCME_T_A", "system")] == ["system"]
    assert lnm.translate_items("WUCME_T_A", "system") == ["sys1", "sys2"]
    assert lnm.translate_items("WUCME_T_A") == ["proc"]


def test_no_job_table_is_an_error_that_says_so() -> None:
    with pytest.raises(lnm.LogicalNameError) as e:
        lnm._job_path()
    assert e.value.ident == "NOJOBTABLE"
    assert str(e.value).endswith("this process has no job logical name table (see start_job)")


def test_a_job_table_lives_in_a_private_directory_named_for_wucme() -> None:
    job = lnm.start_job()
    assert job is not None
    try:
        assert job.parent.name.startswith("wucme-job-") and job.name == f"job_{os.getpid():08X}.json"
        (job.parent / "left behind").mkdir()
    finally:
        lnm.end_job(job)
    assert not job.parent.exists()  # all of it, whatever was left in it
    lnm.end_job(job)  # twice: nothing to do, no error


@pytest.mark.parametrize(("home", "login"), [
    ("/home/alice", "SYS$DISK:[HOME.ALICE]"),
    ("/", "SYS$DISK:[000000]"),
    ("/home/my.dir", "/home/my.dir/"),
    ("/home/my.dir/", "/home/my.dir/"),
])
def test_sys_login_is_the_home_directory_as_vms_spells_it(home: str, login: str) -> None:
    assert lnm._login_directory(home) == login


def test_concealed_devices_take_the_first_definition_whatever_its_case(monkeypatch: pytest.MonkeyPatch) -> None:
    lnm.define("WUCME_T_A", ["/concealed/"], "system", concealed=True)
    assert "WUCME_T_A" in [e.name.upper() for e in lnm.concealed_devices()]
    monkeypatch.setenv("wucme_t_a", "/plain/")  # a process-table name hides the system one
    assert "WUCME_T_A" not in [e.name.upper() for e in lnm.concealed_devices()]


@pytest.mark.parametrize(("host", "node"), [
    ("web01.example.org", "WEB01::"),
    ("averyveryverylonghostname", "AVERYVERYVERYLO::"),  # 15 characters, as on VMS
    ("", "LOCALHOST::"),
    (".example", "LOCALHOST::"),
])
def test_sys_node_is_the_short_host_name(monkeypatch: pytest.MonkeyPatch, host: str, node: str) -> None:
    import socket

    monkeypatch.setattr(socket, "gethostname", lambda: host)
    lnm.define("WUCME_T_A", ["x"], "system")  # a table file of stored names: SYS$NODE is still there
    entry = lnm.lookup("SYS$NODE")
    assert entry is not None and (entry.name, entry.values, entry.table) == ("SYS$NODE", (node,), "system")
    assert lnm.lookup("sys$node", "system") == entry


def test_the_login_names_are_executive_mode_and_built_in() -> None:
    job = lnm.start_job()
    assert job is not None
    try:
        login = lnm._login_directory(os.path.expanduser("~"))
        got = {n: lnm.lookup(n) for n in ("SYS$LOGIN", "SYS$LOGIN_DEVICE", "SYS$SCRATCH", "SYS$DISK")}
        assert {n: (e.name, e.values, e.table, e.mode, e.concealed, e.source)
                for n, e in got.items() if e is not None} == {
            "SYS$LOGIN": ("SYS$LOGIN", (login,), "job", "EXECUTIVE", False, "built in"),
            "SYS$LOGIN_DEVICE": ("SYS$LOGIN_DEVICE", ("SYS$DISK:",), "job", "EXECUTIVE", False, "built in"),
            "SYS$SCRATCH": ("SYS$SCRATCH", (login,), "job", "EXECUTIVE", False, "built in"),
            "SYS$DISK": ("SYS$DISK", ("/",), "process", "EXECUTIVE", True, "built in"),
        }
    finally:
        lnm.end_job(job)


def test_the_job_table_is_named_for_the_process_that_made_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(lnm.JOB_ENV, "/tmp/wucme-job-x/job_0000ABCD.json")
    assert lnm.table_name("job") == "LNM$JOB_0000ABCD"
    monkeypatch.setenv(lnm.JOB_ENV, "/tmp/wucme-job-x/job_0000abcd.json")  # not one start_job makes
    assert lnm.table_name("job") == f"LNM$JOB_{os.getpid():08X}"
    monkeypatch.delenv(lnm.JOB_ENV)
    assert lnm.table_name("job") == f"LNM$JOB_{os.getpid():08X}"


def test_a_job_define_without_a_job_makes_one_that_ends_with_the_process(monkeypatch: pytest.MonkeyPatch) -> None:
    import atexit

    registered: list[tuple[object, ...]] = []
    monkeypatch.setattr(atexit, "register", lambda *a: registered.append(a))
    lnm.define("WUCME_T_A", ["in the job"], "job")
    path = Path(os.environ[lnm.JOB_ENV])
    try:
        assert registered == [(lnm.end_job, path)]
        assert lnm.trnlnm("WUCME_T_A") == "in the job"
        lnm.define("WUCME_T_B", ["again"], "job")
        assert len(registered) == 1  # the job exists: nothing more to end
    finally:
        lnm.end_job(path)


def test_a_table_file_is_indented_utf8_json_naming_its_table(tables: Path) -> None:
    lnm.define("WUCME_T_A", ["caf\u00e9"], "system")
    path = lnm.table_path("system")
    text = path.read_bytes().decode("utf-8")
    assert '"caf\u00e9"' in text  # not \\u00e9
    assert text.startswith('{\n "table": "LNM$SYSTEM_TABLE",\n "names": {') and text.endswith("}\n")
    assert json.loads(text)["table"] == "LNM$SYSTEM_TABLE"


def test_deassign_refusals_name_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(lnm.NoLogicalNameError) as e:
        lnm.deassign("wucme_t_a")
    assert str(e.value).endswith("no logical name match for WUCME_T_A in LNM$PROCESS_TABLE")
    with pytest.raises(lnm.NoLogicalNameError) as e:
        lnm.deassign("WUCME_T_A", "system")
    assert str(e.value).endswith("no logical name match for WUCME_T_A in LNM$SYSTEM_TABLE")
    monkeypatch.setenv("WUCME_T_C", "x")
    assert lnm.deassign("wucme_t_c").values == ("x",)  # a name is upper-cased, as DCL does
    assert "WUCME_T_C" not in os.environ
    lnm.define("WUCME_T_B", ["y"], "system")
    assert lnm.deassign("wucme_t_b", "system").values == ("y",)
    assert lnm.trnlnm("WUCME_T_B") is None


def test_show_defaults_to_every_name_of_every_table(monkeypatch: pytest.MonkeyPatch) -> None:
    lnm.define("WUCME_T_A", ["sys"], "system")
    monkeypatch.setenv("WUCME_T_A", "proc")
    everything = lnm.show()
    assert [e.table for e in everything if e.name == "WUCME_T_A"] == ["process", "system"]
    assert [e.table for e in lnm.show("")] == [e.table for e in everything]
    assert [(t, [e.name for e in es if e.name == "WUCME_T_A"]) for t, es in lnm.show_tables()] == [
        ("process", ["WUCME_T_A"]), ("job", []), ("group", []), ("system", ["WUCME_T_A"]), ("cluster", [])]
    assert [e.table for e in lnm.show("WUCME_T_A", "system")] == ["system"]


def test_names_and_values_of_255_characters_are_taken_and_256_are_not(monkeypatch: pytest.MonkeyPatch) -> None:
    """LNM$C_NAMLENGTH: 255 at most, for a name and for each equivalence string."""
    value = "v" * 255
    lnm.define("WUCME_T_A", [value, "w" * 255], "system")
    assert lnm.translate("WUCME_T_A") == [value, "w" * 255]
    with pytest.raises(lnm.LogicalNameError) as e:
        lnm.define("WUCME_T_A", ["ok", "v" * 256], "system")
    assert e.value.ident == "IVEQVNAM" and str(e.value).endswith(f"invalid equivalence string {'v' * 256!r} for WUCME_T_A")
    assert lnm.translate("WUCME_T_A") == [value, "w" * 255]  # unchanged
    long_name = "WUCME_T_" + "N" * 247
    assert len(long_name) == 255
    lnm.define(long_name, ["x"], "system")
    assert lnm.trnlnm(long_name) == "x"
    with pytest.raises(lnm.LogicalNameError) as e:
        lnm.define(long_name + "N", ["x"], "system")
    assert e.value.ident == "IVLOGNAM" and str(e.value).endswith(f"invalid logical name {long_name + 'N'!r}")
    with pytest.raises(lnm.LogicalNameError) as e:
        lnm.define("WUCME_T_A", [], "system")
    assert e.value.ident == "NULLEQV" and str(e.value).endswith("no equivalence string for WUCME_T_A")
    with pytest.raises(lnm.LogicalNameError) as e:
        lnm.define("WUCME_T_A", ["v"], "system", mode="ROOT")
    assert e.value.ident == "IVMODE" and str(e.value).endswith("invalid access mode 'ROOT'")
    with pytest.raises(lnm.LogicalNameError) as e:
        lnm.define("_wucme_lnm_x", ["v"], "system")
    assert e.value.ident == "IVLOGNAM" and "is reserved" in str(e.value)


def test_a_logical_name_is_an_immutable_value_compared_without_its_source() -> None:
    """LogicalName is written out (no dataclasses on the CGI answer's path) and keeps what the
    frozen dataclass it was gave: equality and hash on everything but `source`, no assignment."""
    a = lnm.LogicalName("WUCME_T_A", ("x", "y"), "system", concealed=True, mode="EXECUTIVE", source="/a.json")
    b = lnm.LogicalName("WUCME_T_A", ("x", "y"), "system", True, False, "EXECUTIVE", "/b.json")
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert a != lnm.LogicalName("WUCME_T_A", ("x", "y"), "system", concealed=True, source="/a.json")
    assert a != lnm.LogicalName("WUCME_T_A", ("x",), "system", concealed=True, mode="EXECUTIVE")
    assert a.__eq__(("WUCME_T_A", ("x", "y"))) is NotImplemented
    assert (a.name, a.values, a.table, a.concealed, a.terminal, a.mode, a.source) == (
        "WUCME_T_A", ("x", "y"), "system", True, False, "EXECUTIVE", "/a.json")
    assert a.attributes == ("CONCEALED",) and a.table_name == "LNM$SYSTEM_TABLE"
    with pytest.raises(AttributeError):
        a.values = ("z",)
    with pytest.raises(AttributeError):
        del a.name
    assert repr(a) == ("LogicalName(name='WUCME_T_A', values=('x', 'y'), table='system', concealed=True, "
                       "terminal=False, mode='EXECUTIVE', source='/a.json')")
    import copy
    import pickle

    for again in (copy.copy(a), copy.deepcopy(a), pickle.loads(pickle.dumps(a))):
        assert again == a and again.source == "/a.json" and again is not a
