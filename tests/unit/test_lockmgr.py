"""The lock manager, on the native module and on its pure-Python twin alike."""
from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness.native import require_built
from harness.pebble import stop_child

import wucme._native.lockmgr as lmmod
from wucme.errors import WucmeError
from wucme.lock import (COMPATIBLE, Lock, LockError, LockManager, LockMode, LockTimeout,
                        NotQueued, compatible)

MODES = list(LockMode)
IMPLS = ["native", "pure"]


@pytest.fixture(params=IMPLS)
def lm(request: pytest.FixtureRequest, tmp_path: Path) -> LockManager:
    native = request.param == "native"
    if native and not lmmod.HAS_LOCKMGR:
        pytest.skip("wucme._native._lockmgr not built (pip install --no-build-isolation -e .)")
    m = LockManager(tmp_path / "locks", native=native)
    assert m.backend.name == request.param
    return m


def granted(lm: LockManager, mode: LockMode, resource: str = "R") -> bool:
    """Whether a no-wait request for `mode` is granted now (and let it go again)."""
    try:
        lm.enqueue(resource, mode, wait=False).release()
    except NotQueued:
        return False
    return True


def test_native_is_the_one_in_use_when_built(monkeypatch: pytest.MonkeyPatch) -> None:
    require_built("lockmgr", lmmod.HAS_LOCKMGR, "native lock manager")
    monkeypatch.delenv("WUCME_NO_NATIVE", raising=False)
    from wucme._native import _lockmgr  # type: ignore[attr-defined]

    be = lmmod.backend()
    assert be.name == "native" and be.lib is _lockmgr.lib and be is not lmmod.PURE
    monkeypatch.setenv("WUCME_NO_NATIVE", "1")
    assert lmmod.backend() is lmmod.PURE
    assert lmmod.backend(native=True).name == "native"


def test_table_is_the_dlm_one() -> None:
    # Spot checks of the table as published, and its symmetry.
    assert compatible(LockMode.CR, LockMode.PW) and not compatible(LockMode.CW, LockMode.PR)
    assert sum(COMPATIBLE.values()) == 20
    for a, b in itertools.product(MODES, MODES):
        assert COMPATIBLE[(a, b)] == COMPATIBLE[(b, a)]


def test_compatibility_table(lm: LockManager) -> None:
    for held, asked in itertools.product(MODES, MODES):
        with lm.enqueue("R", held):
            assert granted(lm, asked) == compatible(held, asked), (held.name, asked.name)


def test_native_and_pure_share_the_encoding(tmp_path: Path) -> None:
    if not lmmod.HAS_LOCKMGR:
        pytest.skip("native lock manager not built")
    nat = LockManager(tmp_path, native=True)
    pure = LockManager(tmp_path, native=False)
    for (a, b), (held, asked) in itertools.product([(nat, pure), (pure, nat)],
                                                   itertools.product(MODES, MODES)):
        with a.enqueue("R", held):
            assert granted(b, asked) == compatible(held, asked)


def test_groups_of_holders(lm: LockManager) -> None:
    cw1, cw2 = lm.enqueue("R", "CW"), lm.enqueue("R", "CW")
    assert not granted(lm, LockMode.PR) and granted(lm, LockMode.CR)
    cw1.release()
    assert not granted(lm, LockMode.PR)
    cw2.release()
    pr1, pr2 = lm.enqueue("R", "PR"), lm.enqueue("R", "PR")
    assert not granted(lm, LockMode.CW) and not granted(lm, LockMode.PW)
    pr1.release()
    pr2.release()
    assert granted(lm, LockMode.CW) and granted(lm, LockMode.EX)


def test_conversions(lm: LockManager) -> None:
    """Every conversion beside every other holder, then what the lock excludes after it."""
    for other, old, new in itertools.product(MODES, MODES, MODES):
        if not compatible(other, old):
            continue
        with lm.enqueue("R", other), lm.enqueue("R", old) as mine:
            try:
                mine.convert(new, wait=False)
                assert compatible(other, new), (other.name, old.name, new.name)
            except NotQueued:
                assert not compatible(other, new), (other.name, old.name, new.name)
            now = mine.mode
            assert now == (new if compatible(other, new) else old)
            for probe in MODES:
                want = compatible(other, probe) and compatible(now, probe)
                assert granted(lm, probe) == want, (other.name, old.name, new.name, probe.name)


def test_waiting_conversion_and_timeout(lm: LockManager) -> None:
    a, b = lm.enqueue("R", "PR"), lm.enqueue("R", "PR")
    t0 = time.monotonic()
    with pytest.raises(LockTimeout):
        b.convert(LockMode.EX, timeout=0.2)
    assert 0.15 < time.monotonic() - t0 < 2
    assert b.mode == LockMode.PR and not granted(lm, LockMode.CW)
    done = threading.Event()

    def up() -> None:
        b.convert(LockMode.EX)
        done.set()

    t = threading.Thread(target=up)
    t.start()
    assert not done.wait(0.2)
    a.release()
    assert done.wait(5)
    t.join()
    assert b.mode == LockMode.EX and granted(lm, LockMode.NL)
    assert not granted(lm, LockMode.CR)
    b.convert(LockMode.NL)
    assert granted(lm, LockMode.EX)
    b.release()


def test_no_wait_failures_and_timeouts(lm: LockManager) -> None:
    with lm.enqueue("R", LockMode.EX):
        with pytest.raises(NotQueued) as ei:
            lm.enqueue("R", LockMode.CR, wait=False)
        assert isinstance(ei.value, WucmeError) and ei.value.ident == "NOTQUEUED"
        t0 = time.monotonic()
        with pytest.raises(LockTimeout):
            lm.enqueue("R", LockMode.CR, timeout=0.25)
        assert 0.2 < time.monotonic() - t0 < 2
        assert granted(lm, LockMode.NL)  # NL is granted beside anything
    assert granted(lm, LockMode.EX)
    assert list(lm.directory.iterdir()) == [lm.directory / "R.LCK"]


def test_bad_arguments(lm: LockManager) -> None:
    for name in ("", "a/b", "..", "x" * 32, "a.b"):
        with pytest.raises(ValueError):
            lm.enqueue(name, LockMode.CR)
    with pytest.raises(ValueError):
        lm.enqueue("R", "XX")
    with pytest.raises(ValueError):
        lm.enqueue("R", LockMode.CR, timeout=-1)
    with pytest.raises(ValueError):
        lm.backend.lock(0, 6)


def test_value_block(lm: LockManager) -> None:
    with lm.enqueue("V", LockMode.CR) as fresh:
        assert fresh.value_block == bytes(64) and fresh.value_valid
        with pytest.raises(LockError):
            fresh.value_block = b"no"
    with lm.enqueue("V", LockMode.EX) as ex:
        ex.value_block = b"first"
        with pytest.raises(ValueError):
            ex.value_block = bytes(65)
    with lm.enqueue("V", LockMode.PW) as pw:
        assert pw.value_block == b"first".ljust(64, b"\0")
        pw.value_block = b"second"
        with lm.enqueue("V", LockMode.CR) as cr:  # CR beside a live PW: the value as written
            assert cr.value_block[:5] == b"first" and cr.value_valid
        pw.convert(LockMode.CR)  # converting down writes it
        assert pw.value_block[:6] == b"second"
        with lm.enqueue("V", LockMode.CR) as cr:
            assert cr.value_block[:6] == b"second"
    with lm.enqueue("V", LockMode.NL) as nl:
        with pytest.raises(LockError):
            nl.value_block
        nl.convert(LockMode.EX)
        assert nl.value_block[:6] == b"second"  # a writer that sets nothing changes nothing
    with lm.enqueue("V", LockMode.PR) as pr:
        assert pr.value_block[:6] == b"second" and pr.value_valid


# --- processes: death of a holder, exec and fork ---------------------------------

HOLDER = """
import sys, time
from wucme.lock import LockManager
lock = LockManager(sys.argv[1], native={native}).enqueue("R", sys.argv[2])
if sys.argv[2] in ("PW", "EX"):
    lock.value_block = b"from the dead"
print("ready", flush=True)
time.sleep(60)
"""


Starter = Callable[[str], "subprocess.Popen[str]"]


@pytest.fixture
def holder(lm: LockManager) -> Iterator[Starter]:
    procs: list[subprocess.Popen[str]] = []

    def start(mode: str) -> subprocess.Popen[str]:
        code = HOLDER.format(native=lm.backend.name == "native")
        p = subprocess.Popen([sys.executable, "-c", code, str(lm.directory), mode],
                             stdout=subprocess.PIPE, text=True)
        procs.append(p)
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        return p

    yield start
    for p in procs:
        stop_child(p, grace=0)


def _blocked_in_kernel(tid: int) -> tuple[str, int]:
    task = Path(f"/proc/self/task/{tid}")
    syscall = (task / "syscall").read_text().split()[0]
    switches = next(int(line.split()[1]) for line in (task / "status").read_text().splitlines()
                    if line.startswith("voluntary_ctxt_switches"))
    return syscall, switches


def test_death_of_the_holder_wakes_a_waiter(lm: LockManager, holder: Starter) -> None:
    child = holder("EX")
    assert not granted(lm, LockMode.CR)
    got: list[Lock] = []
    tids: list[int] = []
    woke = threading.Event()

    def wait() -> None:
        tids.append(threading.get_native_id())
        got.append(lm.enqueue("R", LockMode.EX))
        woke.set()

    t = threading.Thread(target=wait)
    t.start()
    time.sleep(0.2)
    assert not woke.is_set()
    # The waiter sleeps in one fcntl(F_OFD_SETLKW) call: no polling, no wake-ups.
    first = _blocked_in_kernel(tids[0])
    time.sleep(0.3)
    second = _blocked_in_kernel(tids[0])
    assert first == second, (first, second)
    if os.uname().machine == "x86_64":
        assert first[0] == "72"  # __NR_fcntl
    t0 = time.monotonic()
    os.kill(child.pid, signal.SIGKILL)
    assert woke.wait(5)
    assert time.monotonic() - t0 < 1.0
    t.join()
    lock = got[0]
    assert not lock.value_valid  # the EX holder died: SS$_VALNOTVALID
    lock.value_block = b"alive"
    lock.release()
    with lm.enqueue("R", LockMode.CR) as cr:
        assert cr.value_valid and cr.value_block[:5] == b"alive"


def test_death_of_a_holder_frees_a_no_wait_request(lm: LockManager, holder: Starter) -> None:
    child = holder("PW")
    assert granted(lm, LockMode.CR) and not granted(lm, LockMode.PR)
    with lm.enqueue("R", LockMode.CR) as cr:  # a live PW: the value block is valid
        assert cr.value_valid
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert granted(lm, LockMode.EX)
    with lm.enqueue("R", LockMode.CR) as cr:
        assert not cr.value_valid


def test_descriptors_are_not_inherited(lm: LockManager) -> None:
    with lm.enqueue("R", LockMode.EX) as lock:
        target = str(lock.path)
        out = subprocess.run(
            [sys.executable, "-c",
             "import os\nfor f in os.listdir('/proc/self/fd'):\n"
             "    try: print(os.readlink('/proc/self/fd/' + f))\n    except OSError: pass"],
            close_fds=False, capture_output=True, text=True, check=True).stdout
        assert target not in out.split("\n")


def test_forked_child_drops_the_lock(lm: LockManager) -> None:
    lock = lm.enqueue("R", LockMode.EX)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(w, b"1" if lock.released else b"0")
        os._exit(0)
    os.close(w)
    assert os.read(r, 1) == b"1"
    os.close(r)
    os.waitpid(pid, 0)
    assert not lock.released and not granted(lm, LockMode.CR)
    lock.release()
    assert granted(lm, LockMode.EX)


def test_a_signal_ends_a_wait_cleanly(lm: LockManager) -> None:
    class Alarm(Exception):
        pass

    def ring(signum: int, frame: object) -> None:
        raise Alarm

    old = signal.signal(signal.SIGALRM, ring)
    try:
        with lm.enqueue("R", LockMode.EX):
            signal.setitimer(signal.ITIMER_REAL, 0.2)
            with pytest.raises(Alarm):
                lm.enqueue("R", LockMode.PR)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    # Nothing of the interrupted request (nor the queue byte) is left held.
    with lm.enqueue("R", LockMode.EX, timeout=1):
        pass


def test_waiters_are_granted_in_turn(lm: LockManager) -> None:
    first = lm.enqueue("R", LockMode.PR)
    order: list[str] = []
    locks: list[Lock] = []

    def take(name: str, mode: LockMode) -> None:
        lk = lm.enqueue("R", mode)
        order.append(name)
        locks.append(lk)
        if name == "ex":
            time.sleep(0.1)
            lk.release()

    tex = threading.Thread(target=take, args=("ex", LockMode.EX))
    tex.start()
    time.sleep(0.1)
    tcr = threading.Thread(target=take, args=("cr", LockMode.CR))
    tcr.start()
    time.sleep(0.1)
    assert order == []  # a waiting CR queues behind the waiting EX...
    assert granted(lm, LockMode.CR)  # ...a no-wait one is granted beside the holder
    first.release()
    tex.join(5)
    tcr.join(5)
    assert order == ["ex", "cr"]
    for lk in locks:
        lk.release()


def test_a_lock_shows_its_resource_mode_and_backend(lm: LockManager) -> None:
    lock = lm.enqueue("WUCME_REPR", "PR")
    assert repr(lock) == f"<Lock WUCME_REPR PR ({lock.backend.name})>"
    lock.release()
    assert repr(lock) == f"<Lock WUCME_REPR released ({lock.backend.name})>"
