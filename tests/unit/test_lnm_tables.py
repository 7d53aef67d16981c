"""Logical-name tables in the corners: where a table file may live and what is said when it
cannot, what DEFINE writes (and does not) beside a variable, how far a translation may go, and
that a table's open descriptor goes when the table does.

tests/unit/test_vms_lnm.py covers the tables' everyday use; these scenarios pin the refusals by
their whole message, the limits at the limit and one past it, and state read back.
"""
from __future__ import annotations

import fcntl
import json
import os
import pwd
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from harness.lnm import own_tables

from wucme.vms import lnm
from wucme.vms.lnm import (JOB_ENV, MAX_LOOKUPS, InsecureError, LogicalDepthError, LogicalName, LogicalNameError,
                           define, lookup, show, translate)

NAMES = ["WUCME_T_A", "WUCME_T_B", "WUCME_T_C", "WUCME_T_LIST", "WUCME_T_PLAIN", "WUCME_T_TERM",
         "WUCME_T_CONC", "WUCME_T_MODE", "SYS$DISK", "WUCME_LOCK_DB"]
NOBODY = pwd.getpwnam("nobody")


@pytest.fixture(autouse=True)
def tables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return own_tables(monkeypatch, tmp_path / "lnm", NAMES)


def open_paths() -> list[str]:
    """What this process's descriptors point at."""
    out = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            out.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            pass
    return out


# --- where the tables live ---------------------------------------------------------------------


@pytest.mark.parametrize("table, variable", [("system", "WUCME_LNM_DIR"), ("group", "WUCME_LNM_DIR"),
                                             ("cluster", "WUCME_LNM_DIR"), ("cluster", "WUCME_LNM_CLUSTER_DIR"),
                                             ("job", JOB_ENV)])
def test_a_table_directory_that_is_a_file_is_named_with_its_variable(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, table: str, variable: str) -> None:
    plain = tmp_path / "a-file"
    plain.write_text("not a directory")
    if variable == "WUCME_LNM_DIR" and table != "cluster":  # the cluster's own directory is beside the point
        monkeypatch.setenv("WUCME_LNM_CLUSTER_DIR", str(tmp_path / "cluster"))
    monkeypatch.setenv(variable, str(plain / "job_0000ABCD.json") if variable == JOB_ENV else str(plain))
    want = (f"%WUCME-E-BADVALUE, {variable} '{plain}' is not a directory "
            "(it names where the logical name tables are)")
    with pytest.raises(LogicalNameError) as on_define:
        define("WUCME_T_A", "value", table)
    assert on_define.value.message() == want and on_define.value.ident == "BADVALUE"
    with pytest.raises(LogicalNameError) as on_lookup:
        lookup("WUCME_T_A", table)
    assert on_lookup.value.message() == want
    assert plain.read_text() == "not a directory"


def test_a_table_that_does_not_exist_is_named_with_those_that_do() -> None:
    with pytest.raises(LogicalNameError) as ei:
        lookup("WUCME_T_A", "decw")
    assert ei.value.message() == ("%WUCME-E-NOSUCHTABLE, no such logical name table 'decw' "
                                  "(process, job, group, system, cluster)")


def test_the_process_table_has_no_file() -> None:
    with pytest.raises(LogicalNameError) as ei:
        lnm.table_path("process")
    assert ei.value.message() == "%WUCME-E-BADTABLE, the process table is the environment, not a file"
    assert ei.value.ident == "BADTABLE"


def test_a_table_below_a_directory_anyone_may_write_is_not_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    open_dir = tmp_path / "open"
    open_dir.mkdir()
    os.chmod(open_dir, 0o777)
    monkeypatch.setenv("WUCME_LNM_DIR", str(open_dir / "lnm"))
    with pytest.raises(InsecureError) as ei:
        define("WUCME_T_A", "value", "system")
    assert str(open_dir) in ei.value.text and "writable by" in ei.value.text
    assert not (open_dir / "lnm" / "system.json").exists()


def _as_nobody(fn: "object") -> str:
    """Run *fn* in a forked child that has become nobody; the message it raised, or "ok"."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.setgid(NOBODY.pw_gid)
            os.setuid(NOBODY.pw_uid)
            try:
                fn()  # type: ignore[operator]
                out = "ok"
            except LogicalNameError as exc:
                out = f"{exc.ident}: {exc.message()}"
            os.write(w, out.encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        out = f.read().decode()
    os.waitpid(pid, 0)
    return out


@pytest.mark.skipif(os.geteuid() != 0, reason="becoming another user needs root")
def test_a_user_who_may_not_write_the_table_is_told_so(monkeypatch: pytest.MonkeyPatch) -> None:
    where = Path(tempfile.mkdtemp(prefix="wucme-lnm-"))  # under /tmp: nobody may reach it (pytest's is 0700)
    os.chmod(where, 0o755)
    try:
        _as_nobody_is_refused(where / "lnm", monkeypatch)
    finally:
        shutil.rmtree(where)


def _as_nobody_is_refused(tables: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WUCME_LNM_DIR", str(tables))
    define("WUCME_T_A", "first", "system")  # root made the directory (0755), the table and its lock
    path = tables / "system.json"
    want = f"NOPRIV: %WUCME-E-NOPRIV, no privilege to write logical name table {path}"
    assert _as_nobody(lambda: define("WUCME_T_B", "v", "system")) == want  # the lock file: root's, 0644
    os.chown(tables / "system.json.lock", NOBODY.pw_uid, -1)  # the lock is nobody's: the rename fails
    assert _as_nobody(lambda: define("WUCME_T_B", "v", "system")) == want
    assert lookup("WUCME_T_B", "system") is None and lookup("WUCME_T_A", "system") is not None


@pytest.mark.skipif(os.geteuid() != 0, reason="becoming another user needs root")
def test_a_user_who_may_not_read_the_table_is_told_so(monkeypatch: pytest.MonkeyPatch) -> None:
    where = Path(tempfile.mkdtemp(prefix="wucme-lnm-"))
    os.chmod(where, 0o755)
    tables = where / "lnm"
    path = tables / "system.json"
    want = f"NOPRIV: %WUCME-E-NOPRIV, cannot read logical name table {path}"
    monkeypatch.setenv("WUCME_LNM_DIR", str(tables))
    try:
        define("WUCME_T_A", "root's", "system")
        os.chmod(path, 0o600)  # the table may not be opened by nobody
        assert _as_nobody(lambda: lookup("WUCME_T_A", "system")) == want
        os.chmod(path, 0o644)
        os.chmod(tables, 0o700)  # nor may its directory be searched: not even its status is known
        assert _as_nobody(lambda: lookup("WUCME_T_A", "system")) == want
        os.chmod(tables, 0o755)
        assert _as_nobody(lambda: lookup("WUCME_T_A", "system")) == "ok"
    finally:
        shutil.rmtree(where)


def test_concurrent_defines_in_threads_lose_nothing(tables: Path) -> None:
    def writer(i: int) -> None:
        for j in range(10):
            define(f"WUCME_T_{i}_{j}", f"v{i}.{j}", "system")

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    stored = json.loads((tables / "system.json").read_text())["names"]
    assert sorted(stored) == sorted(f"WUCME_T_{i}_{j}" for i in range(6) for j in range(10))


def test_a_damaged_table_is_named_with_what_is_wrong(tables: Path) -> None:
    tables.mkdir()
    (tables / "system.json").write_text('{"table": "LNM$SYSTEM_TABLE", "names": ["WUCME_T_A"]}')
    with pytest.raises(LogicalNameError) as ei:
        lookup("WUCME_T_A", "system")
    assert ei.value.message() == (f"%WUCME-E-BADTABLE, logical name table {tables / 'system.json'} is damaged: "
                                  "'names' is not an object")


@pytest.mark.parametrize("entry, what", [
    (["value"], "entry 'WUCME_T_A' has no list of values"),
    ({"attributes": ["TERMINAL"]}, "entry 'WUCME_T_A' has no list of values"),
    ({"values": []}, "entry 'WUCME_T_A' has no list of values"),
])
def test_a_damaged_entry_is_named_with_what_is_wrong(tables: Path, entry: object, what: str) -> None:
    tables.mkdir()
    (tables / "system.json").write_text(json.dumps({"table": "LNM$SYSTEM_TABLE", "names": {"wucme_t_a": entry}}))
    with pytest.raises(LogicalNameError) as ei:
        lookup("WUCME_T_A", "system")
    assert ei.value.message() == f"%WUCME-E-BADTABLE, logical name table {tables / 'system.json'} is damaged: {what}"


def test_an_entry_remembers_the_table_file_it_came_from(tables: Path) -> None:
    define("WUCME_T_A", "value", "system")
    entry = lookup("WUCME_T_A", "system")
    assert entry is not None and entry.source == str(tables / "system.json")


def test_a_table_file_removed_lets_go_of_its_descriptor(tables: Path) -> None:
    define("WUCME_T_A", "value", "system")
    assert lookup("WUCME_T_A", "system") is not None  # read and kept open (the cache)
    table = str(tables / "system.json")
    assert table in open_paths()
    os.unlink(table)
    assert lookup("WUCME_T_A", "system") is None
    assert not [p for p in open_paths() if p.startswith(table)]


def test_an_unchanged_table_is_read_once_and_a_changed_one_again(tables: Path) -> None:
    define("WUCME_T_A", "value", "system")
    first = lookup("WUCME_T_A", "system")
    assert first is not None and lookup("WUCME_T_A", "system") is first  # the parsed table kept
    define("WUCME_T_B", "other", "system")  # the file replaced: read again
    again = lookup("WUCME_T_A", "system")
    assert again == first and again is not first
    assert lookup("WUCME_T_B", "system") == LogicalName("WUCME_T_B", ("other",), "system",
                                                        source=str(tables / "system.json"))


def test_a_program_started_after_a_lookup_does_not_inherit_the_table(tables: Path) -> None:
    define("WUCME_T_A", "value", "system")
    assert lookup("WUCME_T_A", "system") is not None  # the table is held open (the cache)
    table = str(tables / "system.json")
    assert table in open_paths()
    # what a hook or DCL command started with exec gets: every descriptor not marked close-on-exec
    held = subprocess.run(["sh", "-c", "readlink /proc/$$/fd/*"], close_fds=False,
                          capture_output=True, text=True).stdout.split("\n")
    assert "/dev/null" in held or any(p.startswith("pipe:") for p in held)  # the list was read
    assert table not in held


def test_a_table_read_again_lets_go_of_the_file_it_replaced(tables: Path) -> None:
    table = str(tables / "system.json")
    for n in range(3):
        define(f"WUCME_T_{n}", "value", "system")  # each DEFINE writes a new file in its place
        assert lookup(f"WUCME_T_{n}", "system") is not None
        assert [p for p in open_paths() if p.startswith(table)] == [table]  # not "... (deleted)"


def test_at_most_eight_tables_are_held_open(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for n in range(9):
        monkeypatch.setenv("WUCME_LNM_DIR", str(tmp_path / f"node{n}"))
        define("WUCME_T_A", f"node {n}", "system")
        assert lookup("WUCME_T_A", "system") is not None
    held = sorted(p for p in open_paths() if p.startswith(str(tmp_path)))
    assert held == [str(tmp_path / f"node{n}" / "system.json") for n in range(1, 9)]  # the oldest let go


def test_a_table_larger_than_one_read_is_read_whole(tables: Path) -> None:
    tables.mkdir()
    names = {f"WUCME_T_{n:03}": {"values": [f"{n:03}" + "v" * 252]} for n in range(300)}
    text = json.dumps({"table": "LNM$SYSTEM_TABLE", "names": names}, indent=1)
    assert len(text) > 1 << 16  # read in 64 KiB pieces
    (tables / "system.json").write_text(text)
    last = lookup("WUCME_T_299", "system")
    assert last is not None and last.values == ("299" + "v" * 252,)
    assert len(show("WUCME_T_*", "system")) == 300


def test_an_ended_job_lets_go_of_its_table() -> None:
    created = lnm.start_job()
    # end_job removes the table's directory: be sure it is the private one start_job made
    assert created is not None and created.is_absolute() and created.parent.name.startswith("wucme-job-")
    define("WUCME_T_A", "job value", "job")
    assert lookup("WUCME_T_A", "job") is not None
    assert str(created) in open_paths()
    lnm.end_job(created)
    assert not [p for p in open_paths() if p.startswith(str(created))]
    assert not created.parent.exists() and JOB_ENV not in os.environ


def test_a_name_deassigned_by_another_process_while_waiting_for_the_table_is_not_there(tables: Path) -> None:
    define("WUCME_T_A", "value", "system")
    other = os.open(tables / "system.json.lock", os.O_RDWR)
    fcntl.flock(other, fcntl.LOCK_EX)  # another process's DEASSIGN holds the table
    outcome: list[object] = []

    def ours() -> None:
        try:
            outcome.append(lnm.deassign("WUCME_T_A", "system"))
        except LogicalNameError as exc:
            outcome.append(exc)

    t = threading.Thread(target=ours)
    t.start()
    try:
        time.sleep(0.3)  # ours has seen the name and waits for the lock
        gone = tables / "system.json.new"
        gone.write_text(json.dumps({"table": "LNM$SYSTEM_TABLE", "names": {}}))
        os.replace(gone, tables / "system.json")  # the other one's DEASSIGN, written
    finally:
        fcntl.flock(other, fcntl.LOCK_UN)
        os.close(other)
        t.join(5)
    (error,) = outcome
    assert isinstance(error, LogicalNameError) and error.ident == "NOLOGNAM"
    assert error.message() == "%WUCME-E-NOLOGNAM, no logical name match for WUCME_T_A in LNM$SYSTEM_TABLE"


# --- the cluster database named ------------------------------------------------------------------


DEAD_DB = "host=127.0.0.1 port=9 dbname=postgres user=postgres connect_timeout=1"


def test_with_a_cluster_database_only_the_cluster_table_goes_there(tables: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WUCME_LOCK_DB", DEAD_DB)
    assert lnm.cluster_db() == DEAD_DB
    define("WUCME_T_A", "local", "system")  # a node's own table stays a file
    assert json.loads((tables / "system.json").read_text())["names"]["WUCME_T_A"] == {"values": ["local"]}
    with pytest.raises(LogicalNameError) as ei:
        define("WUCME_T_A", "shared", "cluster")
    assert ei.value.message().startswith("%WUCME-E-")
    assert "cluster logical name table (database WUCME_LOCK_DB): " in ei.value.text
    assert not (tables / "cluster.json").exists()
    monkeypatch.delenv("WUCME_LOCK_DB")
    assert lnm.cluster_db() is None


# --- DEFINE and what it writes -------------------------------------------------------------------


def test_define_without_a_table_is_a_process_name() -> None:
    assert define("WUCME_T_PLAIN", "value") is None
    assert os.environ["WUCME_T_PLAIN"] == "value" and "_WUCME_LNM_WUCME_T_PLAIN" not in os.environ
    assert define("WUCME_T_PLAIN", "again") == LogicalName("WUCME_T_PLAIN", ("value",), "process")


@pytest.mark.parametrize("kw, attrs", [
    ({"terminal": True}, {"values": ["v"], "attributes": ["TERMINAL"]}),
    ({"concealed": True}, {"values": ["v"], "attributes": ["CONCEALED"]}),
    ({"mode": "exec"}, {"values": ["v"], "mode": "EXECUTIVE"}),
])
def test_a_process_name_with_one_attribute_keeps_it_beside_the_variable(kw: dict[str, object],
                                                                        attrs: dict[str, object]) -> None:
    define("WUCME_T_TERM", "v", **kw)  # type: ignore[arg-type]
    assert json.loads(os.environ["_WUCME_LNM_WUCME_T_TERM"]) == attrs
    entry = lookup("WUCME_T_TERM", "process")
    assert entry is not None and entry.to_json() == attrs
    assert entry.table == "process" and entry.source == "environment"


@pytest.mark.parametrize("companion", ["not JSON", '["a list"]', '{"values": "v"}'])
def test_a_damaged_companion_variable_leaves_the_plain_variable(monkeypatch: pytest.MonkeyPatch,
                                                                companion: str) -> None:
    monkeypatch.setenv("WUCME_T_A", "value")
    monkeypatch.setenv("_WUCME_LNM_WUCME_T_A", companion)
    assert lookup("WUCME_T_A", "process") == LogicalName("WUCME_T_A", ("value",), "process")


def test_a_value_holding_nul_is_refused_in_every_table() -> None:
    for table in ("process", "system"):
        with pytest.raises(LogicalNameError) as ei:
            define("WUCME_T_A", "a\x00b", table)
        assert ei.value.message() == "%WUCME-E-IVEQVNAM, invalid equivalence string 'a\\x00b' for WUCME_T_A"
    assert lookup("WUCME_T_A") is None


def test_define_in_a_file_table_returns_what_it_replaced() -> None:
    assert define("WUCME_T_A", ["one", "two"], "system", terminal=True) is None
    old = define("WUCME_T_A", "three", "system")
    assert old is not None and old.values == ("one", "two") and old.terminal and old.table == "system"


def test_the_builtin_names_of_a_table_are_shown_and_a_define_overrides_them() -> None:
    assert [e.name for e in show("*", "system")] == ["SYS$NODE"]
    define("WUCME_T_A", "v", "system")
    assert [e.name for e in show("*", "system")] == ["SYS$NODE", "WUCME_T_A"]
    define("SYS$NODE", "ELSEWHERE::", "system")
    (node,) = show("SYS$NODE", "system")
    assert node.values == ("ELSEWHERE::",) and node.mode is None


def test_a_process_definition_of_a_builtin_name_is_the_only_one_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYS$DISK", "/srv/")
    (disk,) = show("SYS$DISK", "process")
    assert disk.values == ("/srv/",) and disk.source == "environment"


@pytest.mark.parametrize("home, login", [("/srv/my.boX", "/srv/my.boX/"), ("/srv/my.dir/", "/srv/my.dir/")])
def test_a_home_ods2_cannot_spell_is_kept_as_a_path(monkeypatch: pytest.MonkeyPatch, home: str, login: str) -> None:
    monkeypatch.setenv("HOME", home)
    assert translate("SYS$LOGIN") == [login]


# --- how far a translation goes ------------------------------------------------------------------


def test_a_chain_past_max_depth_names_every_link(tables: Path) -> None:
    names = [f"WUCME_T_D{i}" for i in range(12)]
    for a, b in zip(names, names[1:]):
        define(a, b, "system")
    with pytest.raises(LogicalDepthError) as ei:
        translate(names[0])
    assert ei.value.text == f"more than 10 levels of logical name translation: {' -> '.join(names[:11])}"


@pytest.mark.parametrize("elements, refused", [(MAX_LOOKUPS, False), (MAX_LOOKUPS + 1, True)])
def test_a_search_list_may_take_max_lookups_and_no_more(elements: int, refused: bool) -> None:
    values = [f"V{i}" for i in range(elements)]  # each looks like a name: each is looked up
    define("WUCME_T_LIST", values, "system")
    if refused:
        with pytest.raises(LogicalDepthError) as ei:
            translate("WUCME_T_LIST")
        assert ei.value.text == ("translating WUCME_T_LIST takes more than 512 lookups "
                                 "(search lists of search lists)")
    else:
        assert translate("WUCME_T_LIST") == values


def test_a_translation_in_named_tables_looks_only_there(monkeypatch: pytest.MonkeyPatch) -> None:
    define("WUCME_T_A", "WUCME_T_B", "system")
    define("WUCME_T_B", "WUCME_T_C", "system")
    monkeypatch.setenv("WUCME_T_C", "from the process table")
    assert translate("WUCME_T_A", "system") == ["WUCME_T_C"]
    assert translate("WUCME_T_A") == ["from the process table"]


def test_a_value_names_a_process_logical_only_in_its_own_case(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WUCME_T_C", "from the process table")
    define("WUCME_T_A", "wucme_t_c", "system")  # values are names case-sensitively, as on VMS
    define("WUCME_T_B", "WUCME_T_C", "system")
    assert translate("WUCME_T_A") == ["wucme_t_c"]
    assert translate("WUCME_T_B") == ["from the process table"]


def test_a_builtin_name_is_looked_up_in_any_case_but_named_by_a_value_in_its_own() -> None:
    disk = lookup("sys$disk", "process")  # DCL upper-cases what is typed
    assert disk is not None and disk.name == "SYS$DISK"
    define("WUCME_T_A", "sys$disk", "system")
    define("WUCME_T_B", "SYS$DISK", "system")
    assert translate("WUCME_T_A") == ["sys$disk"]
    assert translate("WUCME_T_B") == list(disk.values)


def test_show_iteration_stops_at_a_loop_of_three() -> None:
    define("WUCME_T_A", "WUCME_T_B", "system")
    define("WUCME_T_B", "WUCME_T_C", "system")
    define("WUCME_T_C", "WUCME_T_B", "system")
    lines = lnm.format_show(show("WUCME_T_A", "system"), iterate=True)
    assert lines == ['   "WUCME_T_A" = "WUCME_T_B" (LNM$SYSTEM_TABLE)',
                     '1  "WUCME_T_B" = "WUCME_T_C" (LNM$SYSTEM_TABLE)',
                     '2  "WUCME_T_C" = "WUCME_T_B" (LNM$SYSTEM_TABLE)']
