"""A lock's life beyond the compatibility table: its files, its refusals, its value block across
conversions and the death of other holders, and a lock dropped without release.

tests/unit/test_lockmgr.py checks the DLM table and the kernel waits; these scenarios pin what
the Lock object itself decides (wucme/lock.py), each with real resource files and, where another
holder is needed, a real process holding the lock.
"""
from __future__ import annotations

import gc
import os
import signal
import stat
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.pebble import stop_child

import wucme.lock
from wucme.lock import Lock, LockError, LockManager, LockMode, NotQueued

#: Another process holding "R" in the mode named by argv[2]; a writer sets a value in memory
#: only (VMS writes the value block when the holder converts down or releases).
HOLDER = """
import sys, time
from wucme.lock import LockManager
lock = LockManager(sys.argv[1]).enqueue("R", sys.argv[2])
if sys.argv[2] in ("PW", "EX"):
    lock.value_block = b"never written"
print("ready", flush=True)
time.sleep(60)
"""


@pytest.fixture
def lm(tmp_path: Path) -> LockManager:
    return LockManager(tmp_path / "locks")


@pytest.fixture
def other_process(lm: LockManager) -> Iterator[list[subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for p in procs:
        stop_child(p, grace=0)


def hold_elsewhere(lm: LockManager, procs: list[subprocess.Popen[str]], mode: str) -> subprocess.Popen[str]:
    p = subprocess.Popen([sys.executable, "-c", HOLDER, str(lm.directory), mode],
                         stdout=subprocess.PIPE, text=True)
    procs.append(p)
    assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    return p


def kill(p: subprocess.Popen[str]) -> None:
    os.kill(p.pid, signal.SIGKILL)
    p.wait()


def free_for(lm: LockManager, mode: str) -> bool:
    try:
        lm.enqueue("R", mode, wait=False).release()
    except NotQueued:
        return False
    return True


# --- files and refusals ------------------------------------------------------------------------


def test_the_directory_and_resource_files_are_private_even_with_umask_zero(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        lm = LockManager(tmp_path / "new" / "locks")
        with lm.enqueue("R", "CR") as lock:
            assert lock.path == lm.directory / "R.LCK" == lm.path("R")
        shared = LockManager(tmp_path / "new" / "locks", perm=0o640)
        shared.enqueue("G", "CR").release()
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "new" / "locks").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(lm.directory / "R.LCK").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(lm.directory / "G.LCK").st_mode) == 0o640


def test_refusals_say_what_was_wrong(lm: LockManager) -> None:
    with pytest.raises(ValueError) as bad_mode:
        lm.enqueue("R", "XX")
    assert str(bad_mode.value) == "lock mode 'XX' is not one of NL CR CW PR PW EX"
    with pytest.raises(ValueError) as bad_name:
        lm.enqueue("a.b", "CR")
    assert str(bad_name.value) == "resource name 'a.b': 1 to 31 of A-Z a-z 0-9 _ $ -"
    with lm.enqueue("x" * 31, "CR") as longest:  # 31 bytes: the DLM's limit
        assert longest.path.name == "x" * 31 + ".LCK"
    with pytest.raises(ValueError):
        lm.enqueue("x" * 32, "CR")
    assert list(lm.directory.iterdir()) == [lm.directory / ("x" * 31 + ".LCK")]


def test_a_released_lock_holds_nothing_and_refuses_use(lm: LockManager) -> None:
    lock = lm.enqueue("R", "EX")
    lock.value_block = b"set"
    lock.release()
    assert lock.released and lock.mode == LockMode.NL
    for use in (lambda: lock.convert("CR"), lambda: lock.value_block, lambda: lock.value_valid):
        with pytest.raises(LockError) as ei:
            use()
        assert ei.value.text == "lock on R was released"
    lock.release()  # a second release is harmless
    assert free_for(lm, "EX")


def test_a_null_lock_reads_no_value_block_and_reports_nothing_wrong(lm: LockManager) -> None:
    with lm.enqueue("R", "NL") as nl:
        assert nl.value_valid is True
        with pytest.raises(LockError) as ei:
            nl.value_block
        assert ei.value.text == "lock on R: NL cannot read the value block"


# --- the value block across conversions --------------------------------------------------------


def test_a_writer_converting_between_pw_and_ex_keeps_the_value_it_set(lm: LockManager) -> None:
    with lm.enqueue("R", "EX") as writer:
        writer.value_block = b"set under EX"
        writer.convert("PW")  # still a writer: nothing is written or read again
        assert writer.value_block[:12] == b"set under EX"
        with lm.enqueue("R", "CR") as reader:  # beside the PW: the value as last written
            assert reader.value_block == bytes(64)
    with lm.enqueue("R", "CR") as reader:
        assert reader.value_block == b"set under EX".ljust(64, b"\0") and reader.value_valid


def test_after_a_writer_died_the_block_stays_invalid_until_the_next_writer_sets_it(
        lm: LockManager, other_process: list[subprocess.Popen[str]]) -> None:
    kill(hold_elsewhere(lm, other_process, "PW"))
    with lm.enqueue("R", "PW") as repairer:
        assert not repairer.value_valid
        with lm.enqueue("R", "CR") as reader:  # a live writer that has set nothing yet
            assert not reader.value_valid
        repairer.value_block = b"repaired"
        repairer.convert("NL")  # converting down writes it, and this holder knows it is good
        assert repairer.value_valid is True
        with lm.enqueue("R", "CR") as reader:
            assert reader.value_valid and reader.value_block[:8] == b"repaired"


def test_a_writer_that_sets_nothing_after_a_dead_one_leaves_the_block_invalid(
        lm: LockManager, other_process: list[subprocess.Popen[str]]) -> None:
    kill(hold_elsewhere(lm, other_process, "EX"))
    with lm.enqueue("R", "EX") as writer:
        assert not writer.value_valid
        writer.convert("NL")
        assert writer.value_valid is False
    with lm.enqueue("R", "PR") as reader:
        assert not reader.value_valid and reader.value_block == bytes(64)


def test_a_reader_refused_a_conversion_beside_a_live_writer_leaves_the_writers_mark(
        lm: LockManager, other_process: list[subprocess.Popen[str]]) -> None:
    writer = hold_elsewhere(lm, other_process, "PW")
    with lm.enqueue("R", "CR") as reader:
        assert reader.value_valid  # the writer is alive
        with pytest.raises(NotQueued):
            reader.convert("PR", wait=False)
        assert reader.mode == LockMode.CR
        kill(writer)  # it dies holding PW: whatever it meant to write is lost
    with lm.enqueue("R", "CR") as after:
        assert not after.value_valid


# --- a lock dropped without release ------------------------------------------------------------


def test_a_lock_dropped_without_release_warns_and_frees_the_resource(lm: LockManager) -> None:
    lock: Lock | None = lm.enqueue("R", "EX")
    assert not free_for(lm, "CR")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        del lock
        gc.collect()
    assert [(w.category, str(w.message)) for w in seen] == [
        (ResourceWarning, f"unreleased <Lock R EX ({lm.backend.name})>")]
    assert seen[0].filename == wucme.lock.__file__  # the warning points at the lock manager
    assert free_for(lm, "EX")


def test_a_grant_that_fails_late_closes_its_descriptor_once(lm: LockManager,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The value block cannot be read after the grant: enqueue fails and closes the lock's
    descriptor.  The Lock it had built must not close that number again when collected, by
    then perhaps another file's (a socket's, whose peer would see the connection end)."""
    def unreadable(self: Lock, old: LockMode, new: LockMode) -> None:
        raise OSError(5, "Input/output error")
    monkeypatch.setattr(Lock, "_granted", unreadable)
    with pytest.raises(OSError):
        lm.enqueue("LATE", "EX")
    r, w = os.pipe()  # the lowest free numbers: the one enqueue closed among them
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", ResourceWarning)
            gc.collect()
        os.fstat(r)
        os.fstat(w)
    finally:
        os.close(r)
        os.close(w)
    monkeypatch.undo()
    assert free_for(lm, "EX")


def test_two_threads_releasing_at_once_close_the_number_once(lm: LockManager) -> None:
    """An agent stopping while its pass gives the lock up: the second release must not close
    the number again (by then it may be another file's or socket's)."""
    import threading

    lock = lm.enqueue("TWICE", "EX")
    inside, go = threading.Event(), threading.Event()
    closed: list[int] = []
    backend = lock.backend

    class Slow:  # the first release waits inside the unlock until the second has tried
        def __getattr__(self, name: str) -> object:
            return getattr(backend, name)

        def unlock(self, fd: int) -> None:
            inside.set()
            go.wait(5)
            backend.unlock(fd)

        def close(self, fd: int) -> None:
            closed.append(fd)
            backend.close(fd)

    lock.backend = Slow()  # type: ignore[assignment]
    first = threading.Thread(target=lock.release)
    first.start()
    assert inside.wait(5)
    lock.release()  # the second, while the first is inside
    go.set()
    first.join(5)
    assert len(closed) == 1 and lock.released and free_for(lm, "EX")
