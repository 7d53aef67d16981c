"""The console entry ends a process whose verb ran to its end without the interpreter's
teardown (wucme.entry._exit_now; docs/performance.md, "`wucme issue`: the lean path"), and
nothing is lost by it: the atexit functions run, the output is flushed, the status is the
verb's.  Anything unusual (a verb that failed, a thread still working, a profiler) gets the
normal exit.  Real processes, since the point is how they end."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

#: A process as the console script starts one, with an atexit function and an object whose
#: finalizer only the interpreter's teardown runs (it says "teardown").
SCRIPT = """
import atexit, os, sys, threading
class Witness:
    def __del__(self):
        os.write(1, b"teardown\\n")
witness = Witness()
atexit.register(lambda: sys.stdout.write("atexit ran\\n"))
if "--busy-thread" in sys.argv:
    sys.argv.remove("--busy-thread")
    threading.Thread(target=threading.main_thread().join).start()  # ends when the main thread does
from wucme.entry import main
sys.exit(main())
"""


def environment(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WUCME_", "_WUCME_", "GATEWAY_"))}
    env.update(WUCME_LNM_DIR=str(tmp_path / "lnm"), WUCME_HERE=str(tmp_path / "here"))
    return env


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", SCRIPT, *args], env=environment(tmp_path),
                          capture_output=True, text=True, timeout=60)


def test_a_finished_verb_skips_the_teardown_and_loses_nothing(tmp_path: Path) -> None:
    p = run(tmp_path, "help")
    assert p.returncode == 0
    assert "usage: wucme VERB" in p.stdout and p.stdout.endswith("atexit ran\n")
    assert "teardown" not in p.stdout


def test_the_status_is_the_verbs(tmp_path: Path) -> None:
    p = run(tmp_path, "deassign", "WUCME_NO_SUCH_NAME")  # the verb ends with its result: no such name
    assert p.returncode == 4 and "teardown" not in p.stdout
    assert p.stdout.endswith("atexit ran\n")


@pytest.mark.parametrize("args", [["issue", "bad_name"], ["--busy-thread", "help"]],
                         ids=["failed-verb", "thread-still-running"])
def test_otherwise_the_normal_exit(tmp_path: Path, args: list[str]) -> None:
    p = run(tmp_path, *args)
    assert "atexit ran\n" in p.stdout and p.stdout.count("atexit ran") == 1
    assert p.stdout.endswith("teardown\n")


def test_a_profiled_run_still_writes_its_profile(tmp_path: Path) -> None:
    """cProfile writes its file at the normal exit: `python -m cProfile -o OUT -m wucme VERB`
    is how docs/performance.md's profiles are made."""
    out = tmp_path / "prof.out"
    p = subprocess.run([sys.executable, "-m", "cProfile", "-o", str(out), "-m", "wucme", "help"],
                       env=environment(tmp_path), capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and "usage: wucme VERB" in p.stdout
    assert out.stat().st_size > 0
