"""Versioned, atomic file writes: keep count, modes, and failure leaving the old file whole."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from wucme.vms import atomic, files
from wucme.vms.files import atomic_write, keep_count, purge, version_path, versions, write_versioned


@pytest.fixture(autouse=True)
def tables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WUCME_LNM_DIR", str(tmp_path / "lnm"))
    monkeypatch.delenv("WUCME_KEEP", raising=False)
    monkeypatch.delenv("_WUCME_LNM_WUCME_KEEP", raising=False)


def listing(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir() if p.name != "lnm")


def test_atomic_write_mode_ignores_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        p = atomic_write(tmp_path / "A.TXT", b"public", 0o644)
    finally:
        os.umask(old)
    assert stat.S_IMODE(p.stat().st_mode) == 0o644 and p.read_bytes() == b"public"
    k = atomic_write(tmp_path / "K.PEM", b"secret", 0o600)
    assert stat.S_IMODE(k.stat().st_mode) == 0o600
    assert listing(tmp_path) == ["A.TXT", "K.PEM"]


def test_default_keep_is_three(tmp_path: Path) -> None:
    p = tmp_path / "WUCME_C_X.PEM"
    for i in range(6):
        write_versioned(p, b"v%d" % i)
    assert listing(tmp_path) == ["WUCME_C_X.PEM", "WUCME_C_X.PEM;3", "WUCME_C_X.PEM;4", "WUCME_C_X.PEM;5"]
    assert [(n, q.read_bytes()) for n, q in versions(p)] == [(6, b"v5"), (5, b"v4"), (4, b"v3"), (3, b"v2")]


@pytest.mark.parametrize("keep", [0, 1, 5])
def test_keep_from_logical_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keep: int) -> None:
    monkeypatch.setenv("WUCME_KEEP", str(keep))
    assert keep_count() == keep
    p = tmp_path / "F.DAT"
    for i in range(8):
        write_versioned(p, b"%d" % i)
    assert len(versions(p)) == keep + 1
    assert p.read_bytes() == b"7"
    assert [q.read_bytes() for _, q in versions(p)[1:]] == [b"%d" % i for i in range(6, 6 - keep, -1)]


def test_keep_from_system_table(tmp_path: Path) -> None:
    from wucme.vms.lnm import define
    define("WUCME_KEEP", ["1"], "system")
    assert keep_count() == 1


def test_bad_keep_falls_back(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("WUCME_KEEP", "lots")
    assert keep_count() == files.DEFAULT_KEEP
    assert "WUCME_KEEP" in caplog.text


def test_key_versions_stay_private(tmp_path: Path) -> None:
    p = tmp_path / "WUCME_K_X.PEM"
    for i in range(3):
        write_versioned(p, b"key%d" % i, mode=0o600)
    assert len(versions(p)) == 3
    for _, q in versions(p):
        assert stat.S_IMODE(q.stat().st_mode) == 0o600


def test_failure_mid_write_leaves_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "WUCME_C_X.PEM"
    write_versioned(p, b"old")
    real_fsync = os.fsync

    def failing_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", failing_fsync)
    with pytest.raises(OSError):
        write_versioned(p, b"new" * 1000)
    with pytest.raises(OSError):
        atomic_write(p, b"new")
    monkeypatch.setattr(atomic.os, "fsync", real_fsync)
    assert p.read_bytes() == b"old"
    assert listing(tmp_path) == ["WUCME_C_X.PEM"]  # no temporary file, no stray version


def test_failed_rename_leaves_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "F.DAT"
    write_versioned(p, b"old")

    def failing_replace(src: str, dst: str) -> None:
        raise OSError(5, "I/O error")

    monkeypatch.setattr(files.os, "replace", failing_replace)
    with pytest.raises(OSError):
        write_versioned(p, b"new", keep=2)
    assert p.read_bytes() == b"old"
    assert not [n for n in listing(tmp_path) if n.startswith(atomic.TEMP_PREFIX)]


def test_readers_always_see_a_whole_file(tmp_path: Path) -> None:
    p = tmp_path / "F.DAT"
    stop = tmp_path / "STOP"
    write_versioned(p, b"A" * 100_000)
    reader = subprocess.Popen([sys.executable, "-c", (
        "import os, sys\n"
        "p, stop, n = sys.argv[1], sys.argv[2], 0\n"
        "while not os.path.exists(stop):\n"
        "    d = open(p, 'rb').read()\n"
        "    assert len(d) == 100000 and len(set(d)) == 1, len(d)\n"
        "    n += 1\n"
        "    if n == 1:\n"
        "        open(stop + '.READY', 'w').close()\n"
        "print(n)\n"
    ), str(p), str(stop)], stdout=subprocess.PIPE, text=True)
    ready = tmp_path / "STOP.READY"
    deadline = time.monotonic() + 30
    while not ready.exists() and time.monotonic() < deadline:  # writes must overlap reads
        time.sleep(0.01)
    for i in range(25):
        write_versioned(p, bytes([66 + i % 20]) * 100_000, keep=2)
    stop.write_text("")
    out, _ = reader.communicate(timeout=60)
    assert reader.returncode == 0 and int(out) > 0


def test_purge_and_version_names(tmp_path: Path) -> None:
    p = tmp_path / "A.B"
    for i in range(4):
        write_versioned(p, b"%d" % i, keep=10)
    assert version_path(p, 2).name == "A.B;2"
    removed = purge(p, keep=1)
    assert sorted(q.name for q in removed) == ["A.B;1", "A.B;2"]
    assert [n for n, _ in versions(p)] == [4, 3]
    (tmp_path / "A.B;x").write_text("not a version")
    (tmp_path / "A.BC;9").write_text("another file")
    assert [n for n, _ in versions(p)] == [4, 3]


def test_versions_of_missing_file(tmp_path: Path) -> None:
    assert versions(tmp_path / "NONE.DAT") == []


def test_crashed_writers_temporaries_are_purged_by_the_next_write(tmp_path: Path) -> None:
    """A writer killed between writing and renaming leaves .wucme-tmp-*; the next write into the
    directory removes those whose writer is gone, or (another node's) that are an hour old."""
    crashed = subprocess.Popen([sys.executable, "-c",
                                "import os, sys\n"
                                "from wucme.vms.atomic import write_temp\n"
                                "write_temp(sys.argv[1], b'half', 0o600)\n"
                                "os._exit(9)  # the crash: never renamed into place\n", str(tmp_path)],
                               env=dict(os.environ))
    assert crashed.wait(30) == 9
    (left,) = [n for n in listing(tmp_path) if n.startswith(atomic.TEMP_PREFIX)]
    assert f"-{crashed.pid}-" in left
    with subprocess.Popen(["sleep", "60"]) as alive:
        try:
            writing = f"{atomic.TEMP_PREFIX}{atomic._NODE}-{alive.pid}-aaaaaaaaaaaa"
            other_node = f"{atomic.TEMP_PREFIX}othernode-{crashed.pid}-bbbbbbbbbbbb"
            other_old = f"{atomic.TEMP_PREFIX}othernode-{crashed.pid}-cccccccccccc"
            old_style = f"{atomic.TEMP_PREFIX}{crashed.pid}-dddddddddddd"
            for name in (writing, other_node, other_old, old_style):
                (tmp_path / name).write_bytes(b"")
            hours_ago = time.time() - 2 * 3600
            for name in (other_old, old_style):
                os.utime(tmp_path / name, (hours_ago, hours_ago))
            atomic_write(tmp_path / "A.TXT", b"next write", 0o644)
            assert listing(tmp_path) == sorted([writing, other_node, "A.TXT"])
        finally:
            alive.kill()


def test_a_set_of_files_syncs_each_file_and_its_directory_once(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A certificate's set (key, chain, state) replaced with versions purged: each new file is
    fsync'ed before it is renamed, the directory once after every rename and purge (it was
    once a file, and again for each purge: six directory syncs a certificate)."""
    real_fsync = os.fsync
    synced: list[str] = []

    def spying_fsync(fd: int) -> None:
        synced.append("dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real_fsync(fd)

    names = [tmp_path / "WUCME_K_A.PEM", tmp_path / "WUCME_C_A.PEM", tmp_path / "WUCME_S_A.JSON"]
    for round_ in range(4):  # versions pile up to the keep count, then each write purges one
        synced.clear()
        monkeypatch.setattr(atomic.os, "fsync", spying_fsync)
        files.write_versioned_set([(n, f"round {round_}".encode(), 0o600) for n in names], keep=2)
        monkeypatch.setattr(atomic.os, "fsync", real_fsync)
        assert synced == ["file", "file", "file", "dir"]
        assert all(n.read_bytes() == f"round {round_}".encode() for n in names)
    assert all(len(versions(n)) == 3 for n in names)  # the file and two versions: purged
