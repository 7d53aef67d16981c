"""Files others could write are refused (issue 10, item 2): logical name tables, the lock
directory and the repository, created with safe modes under any umask, and refused with
%WUCME-E-INSECURE, naming the file, when another user owns them or group or others may write.

"Another user" is nobody: the tests run as root and hand files to nobody with os.chown.
"""

from __future__ import annotations

import os
import pwd
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from wucme.lock import LockManager
from wucme.load import run_load_command
from wucme.repository import Repository
from wucme.vms import lnm
from wucme.vms.secure import InsecureError, make_directory, open_private

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="handing a file to another user needs root")

NOBODY = pwd.getpwnam("nobody").pw_uid


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@contextmanager
def umask(value: int) -> Iterator[None]:
    old = os.umask(value)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture
def tables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """WUCME_LNM_DIR two levels below a directory of our own, none of it made yet."""
    monkeypatch.setenv("WUCME_LNM_DIR", str(tmp_path / "var" / "lib" / "lnm"))
    monkeypatch.delenv("WUCME_LNM_CLUSTER_DIR", raising=False)
    for name in ("WUCME_LOAD", "WUCME_T_A"):  # the process table would hide the system table
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv("_WUCME_LNM_" + name, raising=False)
    return tmp_path / "var" / "lib" / "lnm"


def run_wucme(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "wucme", *args], capture_output=True, text=True,
                          timeout=60, env=dict(os.environ))


# -- logical name tables ---------------------------------------------------------------------


def test_define_under_umask_000_makes_safe_modes(tables: Path) -> None:
    with umask(0):
        lnm.define("WUCME_T_A", "/srv/x", "system")
    assert [mode(p) for p in (tables.parent.parent, tables.parent, tables)] == [0o755] * 3
    assert mode(tables / "system.json") == 0o644
    assert mode(tables / "system.json.lock") == 0o644
    assert lnm.trnlnm("WUCME_T_A") == "/srv/x"


def test_table_owned_by_another_user_is_refused_and_its_command_never_runs(
        tables: Path, tmp_path: Path) -> None:
    """The issue's attack: another user's system.json defines WUCME_LOAD; root must not run it."""
    marker = tmp_path / "ran"
    lnm.define("WUCME_LOAD", f"touch {marker}", "system")
    table = tables / "system.json"
    os.chown(table, NOBODY, -1)
    with pytest.raises(InsecureError) as err:
        lnm.trnlnm("WUCME_LOAD")
    assert err.value.message() == (f"%WUCME-E-INSECURE, {table} is writable by its owner nobody "
                                   f"(uid {NOBODY}), who is not root")
    with pytest.raises(InsecureError):
        run_load_command()
    assert not marker.exists()
    r = run_wucme("show", "logical", "WUCME_LOAD")  # a fresh process: no cache to hide behind
    assert r.returncode != 0 and f"%WUCME-E-INSECURE, {table} is writable by its owner nobody" in r.stderr
    with pytest.raises(InsecureError):  # and define does not build on it either
        lnm.define("WUCME_T_A", "x", "system")
    os.chown(table, 0, -1)
    assert lnm.trnlnm("WUCME_LOAD") == f"touch {marker}"  # root's own table again: believed


def test_table_replaced_through_a_world_writable_directory_is_refused(tables: Path) -> None:
    """What umask 000 used to leave: a 0777 table directory; the replaced file is refused, and
    so is the directory itself, even while the file is still root's."""
    lnm.define("WUCME_T_A", "/good", "system")
    os.chmod(tables, 0o777)
    with pytest.raises(InsecureError) as err:
        lnm.trnlnm("WUCME_T_A")
    assert err.value.message() == (f"%WUCME-E-INSECURE, {tables} is writable by every user (mode 0777), "
                                   f"so {tables / 'system.json'} is not trusted")
    os.chmod(tables.parent, 0o775)
    os.chmod(tables, 0o755)
    with pytest.raises(InsecureError, match=rf"{tables.parent} is writable by group root \(mode 0775\)"):
        lnm.trnlnm("WUCME_T_A")


def test_group_writable_table_is_refused(tables: Path) -> None:
    lnm.define("WUCME_T_A", "/good", "system")
    os.chmod(tables / "system.json", 0o664)
    with pytest.raises(InsecureError, match=r"system.json is writable by group root \(mode 0664\)$"):
        lnm.trnlnm("WUCME_T_A")


def test_sticky_directory_above_is_accepted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """/tmp (1777, root's) may sit above the tables: others can add names there, not replace ours."""
    monkeypatch.delenv("WUCME_T_A", raising=False)
    sticky = tmp_path / "tmp"
    sticky.mkdir()
    os.chmod(sticky, 0o1777)
    monkeypatch.setenv("WUCME_LNM_DIR", str(sticky / "lnm"))
    lnm.define("WUCME_T_A", "/ok", "system")
    assert lnm.trnlnm("WUCME_T_A") == "/ok"
    os.chown(sticky, NOBODY, -1)  # but a sticky directory of another user's is not
    r = run_wucme("show", "logical", "WUCME_T_A")
    assert f"%WUCME-E-INSECURE, {sticky} is writable by its owner nobody" in r.stderr


def test_symlinked_table_directory_checks_both_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WUCME_T_A", raising=False)
    real = tmp_path / "real"
    real.mkdir()
    links = tmp_path / "links"
    links.mkdir()
    (links / "lnm").symlink_to(real)
    monkeypatch.setenv("WUCME_LNM_DIR", str(links / "lnm"))
    lnm.define("WUCME_T_A", "/ok", "system")
    assert lnm.trnlnm("WUCME_T_A") == "/ok"
    os.chmod(links, 0o777)  # whoever writes here can repoint the link
    r = run_wucme("show", "logical", "WUCME_T_A")  # the next process; one that already read the
    assert f"%WUCME-E-INSECURE, {links} is writable by every user" in r.stderr  # table re-checks
    # when the table changes, which is what repointing the link does


# -- the lock directory and the repository ---------------------------------------------------


def test_lock_directory_made_private_under_umask_000(tmp_path: Path) -> None:
    with umask(0):
        manager = LockManager(tmp_path / "here" / "LOCKS")
        with manager.enqueue("WUCME_AGENT"):
            pass
    assert mode(tmp_path / "here") == 0o755 and mode(tmp_path / "here" / "LOCKS") == 0o700
    assert mode(tmp_path / "here" / "LOCKS" / "WUCME_AGENT.LCK") == 0o600


@pytest.mark.parametrize("owner, dir_mode, says", [
    (0, 0o777, "writable by every user (mode 0777)"),
    (0, 0o1777, "writable by every user (mode 1777)"),
    (NOBODY, 0o700, "writable by its owner nobody"),
])
def test_lock_directory_others_may_write_is_refused_untouched(tmp_path: Path, owner: int, dir_mode: int,
                                                              says: str) -> None:
    d = tmp_path / "LOCKS"
    d.mkdir()
    os.chmod(d, dir_mode)
    os.chown(d, owner, -1)
    with pytest.raises(InsecureError) as err:
        LockManager(d)
    assert err.value.message().startswith(f"%WUCME-E-INSECURE, {d} is {says}")
    assert mode(d) == dir_mode and os.stat(d).st_uid == owner


def test_repository_made_0755_under_umask_000_and_refused_when_others_may_write(tmp_path: Path) -> None:
    with umask(0):
        Repository(tmp_path / "a" / "here").ensure_writable()
    assert mode(tmp_path / "a") == 0o755 and mode(tmp_path / "a" / "here") == 0o755
    open_dir = tmp_path / "open"
    open_dir.mkdir()
    os.chmod(open_dir, 0o777)
    with pytest.raises(InsecureError, match=f"{open_dir} is writable by every user"):
        Repository(open_dir).ensure_writable()
    assert mode(open_dir) == 0o777


# -- the helpers -----------------------------------------------------------------------------


def test_make_directory_leaves_existing_directories_alone(tmp_path: Path) -> None:
    os.chmod(tmp_path, 0o711)
    with umask(0):
        make_directory(tmp_path / "x" / "y", 0o700)
    assert mode(tmp_path) == 0o711 and mode(tmp_path / "x") == 0o755 and mode(tmp_path / "x" / "y") == 0o700


def test_open_private_refuses_links_and_foreign_files(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.write_text("precious\n")
    link = tmp_path / "log"
    link.symlink_to(target)
    with pytest.raises(OSError):
        open_private(link, os.O_WRONLY | os.O_APPEND, 0o640)
    assert target.read_text() == "precious\n"
    foreign = tmp_path / "foreign.log"
    foreign.write_text("")
    os.chown(foreign, NOBODY, -1)
    with pytest.raises(InsecureError, match="foreign.log is writable by its owner nobody"):
        open_private(foreign, os.O_WRONLY | os.O_APPEND, 0o640)
    with umask(0):
        fd = open_private(tmp_path / "new.log", os.O_WRONLY | os.O_APPEND, 0o640)
    os.close(fd)
    assert mode(tmp_path / "new.log") == 0o640
