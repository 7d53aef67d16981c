"""wucme.daemon: the one routine behind `wucme agent /DETACH` and `wucme alpn -d`, run for real."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

SCRIPT = """
import os, sys
from wucme.daemon import Detached, daemonize
d = daemonize(chdir={chdir})
if isinstance(d, Detached):
    print(d.pid, d.report.decode() or "-")
    sys.exit(0)
facts = f"{{os.getpid()}} {{os.getsid(0)}} {{os.getcwd()}} {{os.isatty(0)}}"
open({out!r}, "w").write(facts)
{report}
"""


def run(tmp_path: Path, chdir: bool, report: str) -> tuple[list[str], list[str]]:
    out = tmp_path / "facts"
    code = SCRIPT.format(chdir=chdir, out=str(out), report=report)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30,
                       cwd=tmp_path, env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    assert r.returncode == 0, r.stderr
    for _ in range(200):
        if out.exists() and out.read_text():
            break
        time.sleep(0.01)
    return r.stdout.split(), out.read_text().split()


def test_the_original_process_learns_the_daemons_pid_and_report(tmp_path: Path) -> None:
    said, facts = run(tmp_path, True, 'd.ready(b"OK")')
    pid, sid, cwd, tty = facts
    assert said == [pid, "OK"]
    # A session of its own, whose leader has gone: it can never acquire a controlling terminal.
    assert sid != str(os.getsid(0)) and sid != pid
    assert cwd == "/" and tty == "False"


def test_a_daemon_that_says_nothing_and_keeps_its_directory(tmp_path: Path) -> None:
    said, facts = run(tmp_path, False, "d.close()")
    assert said == [facts[0], "-"] and facts[2] == str(tmp_path)


def test_a_signal_sets_an_event_the_main_thread_is_waiting_on() -> None:
    """The handler runs in the main thread, possibly inside event.wait() with the event's lock
    held: set_from_signal sets the event from another thread, so the wait ends."""
    import signal
    import threading

    from wucme.daemon import set_from_signal

    stopping = threading.Event()
    old = signal.signal(signal.SIGUSR1, set_from_signal(stopping))
    try:
        threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGUSR1)).start()
        assert stopping.wait(10)
    finally:
        signal.signal(signal.SIGUSR1, old)
