"""Active and standby agents as real processes: the election, takeover, stop, names, start-ups."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .support import Agents, alive, comm, wait_for

ACTIVE, STANDBY = "wuCME-active", "wuCME-standby"


def settle(agents: Agents, procs: list[subprocess.Popen[bytes]]) -> list[str]:
    """Wait until every process has named itself and one is active; the roles."""
    wait_for(lambda: all(r in (ACTIVE, STANDBY) for r in agents.roles(procs))
             and agents.roles(procs).count(ACTIVE) >= 1, 15, "agents named")
    time.sleep(0.3)  # a second active would have appeared by now
    return agents.roles(procs)


@pytest.mark.parametrize("n", [2, 3])
def test_one_active_and_takeover_after_kill_9(agents: Agents, n: int) -> None:
    procs = [agents.start() for _ in range(n)]
    roles = settle(agents, procs)
    assert roles.count(ACTIVE) == 1 and roles.count(STANDBY) == n - 1, roles
    active = procs[roles.index(ACTIVE)]
    # ps shows the role too (the command line was rewritten in place).
    ps = subprocess.run(["ps", "-o", "args=", "-p", str(active.pid)], capture_output=True, text=True)
    assert ps.stdout.strip() == ACTIVE
    os.kill(active.pid, signal.SIGKILL)
    active.wait(5)
    rest = [p for p in procs if p is not active]
    took = wait_for(lambda: agents.roles(rest).count(ACTIVE) == 1, 2.0, "a standby takes over")
    assert took < 2.0
    time.sleep(0.3)
    assert sorted(agents.roles(rest)) == sorted([ACTIVE] + [STANDBY] * (n - 2))
    log = (agents.here / next(p.name for p in agents.here.iterdir()
                              if p.name.startswith("WUCME_LOG_") and ";" not in p.name)).read_text()
    new_active = rest[agents.roles(rest).index(ACTIVE)]
    assert f"[{new_active.pid}] %WUCME-I-ACTIVE, wuCME-active on" in log
    assert "TAKEOVER" in agents.output(new_active)


def test_stopped_active_keeps_the_lock(agents: Agents) -> None:
    procs = [agents.start() for _ in range(2)]
    roles = settle(agents, procs)
    active, standby = (procs[0], procs[1]) if roles[0] == ACTIVE else (procs[1], procs[0])
    os.kill(active.pid, signal.SIGSTOP)
    try:
        time.sleep(1.5)
        assert comm(standby.pid) == STANDBY and standby.poll() is None
    finally:
        os.kill(active.pid, signal.SIGKILL)
        os.kill(active.pid, signal.SIGCONT)
    wait_for(lambda: comm(standby.pid) == ACTIVE, 2.0, "takeover once the stopped one is gone")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_cleanly_and_releases(agents: Agents, sig: int) -> None:
    procs = [agents.start() for _ in range(2)]
    roles = settle(agents, procs)
    active, standby = (procs[0], procs[1]) if roles[0] == ACTIVE else (procs[1], procs[0])
    os.kill(active.pid, sig)
    assert active.wait(10) == 0
    out = agents.output(active)
    assert "%WUCME-I-STOPPED" in out and "Traceback" not in out
    wait_for(lambda: comm(standby.pid) == ACTIVE, 2.0, "takeover after a clean stop")
    os.kill(standby.pid, signal.SIGTERM)  # a standby-turned-active stops as cleanly
    assert standby.wait(10) == 0


def test_standby_stops_on_sigterm_while_waiting(agents: Agents) -> None:
    procs = [agents.start() for _ in range(2)]
    roles = settle(agents, procs)
    standby = procs[roles.index(STANDBY)]
    os.kill(standby.pid, signal.SIGTERM)
    assert standby.wait(10) == 0
    assert comm(procs[roles.index(ACTIVE)].pid) == ACTIVE


def test_wucme_active_needs_no_lock(agents: Agents) -> None:
    first = agents.start()
    wait_for(lambda: comm(first.pid) == ACTIVE, 15, "first active")
    seeded = agents.start(WUCME_ACTIVE="1")
    wait_for(lambda: comm(seeded.pid) == ACTIVE, 15, "WUCME_ACTIVE: active beside the lock holder")
    assert comm(first.pid) == ACTIVE
    wait_for(lambda: "WUCME_ACTIVE is defined" in agents.output(seeded), 5, "the log says why")


def test_proctored_script_start(agents: Agents) -> None:
    """WASD's proctor runs the script image with CGI variables but no request: the agent."""
    p = agents.start(argv=[sys.executable, "-m", "wucme"], GATEWAY_INTERFACE="CGI/1.1")
    wait_for(lambda: comm(p.pid) == ACTIVE, 15, "the proctored script becomes wuCME-active")
    # With a request method it is still the http-01 script, and exits.
    r = subprocess.run([sys.executable, "-m", "wucme"], capture_output=True, timeout=30,
                       env=dict(agents.env, GATEWAY_INTERFACE="CGI/1.1", REQUEST_METHOD="GET",
                                PATH_INFO="/.well-known/acme-challenge/nothing"))
    assert b"no such token" in r.stdout
    os.kill(p.pid, signal.SIGTERM)
    assert p.wait(10) == 0


def test_once_runs_one_cycle_and_the_idle_agent_is_small(agents: Agents) -> None:
    r = agents.wucme("agent", "/once")
    state = json.loads((agents.here / "WUCME_AGENT.JSON").read_text())
    assert state["failures"] == 0 and state["last_pass"]
    assert "no certificates" in r.stderr or "0 renewed" in r.stderr
    # A long-running agent after its first cycle: resident size well under 40 MB.
    p = agents.start()
    wait_for(lambda: "%WUCME-I-NEXT" in agents.output(p), 15, "idle")
    rss_kb = int(next(line.split()[1] for line in Path(f"/proc/{p.pid}/status").read_text().splitlines()
                      if line.startswith("VmRSS:")))
    assert rss_kb < 40 * 1024, rss_kb


def test_detach_returns_and_leaves_an_agent(agents: Agents) -> None:
    r = agents.wucme("agent", "/detach")
    pid = int(r.stdout.split("agent pid ")[1].split()[0])
    agents.extra_pids.append(pid)
    wait_for(lambda: comm(pid) == ACTIVE, 15, "the detached agent is active")
    assert os.getsid(pid) not in (os.getsid(0), pid)  # a session of its own, not its leader
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not alive(pid), 10, "the detached agent stops")


def test_lock_directory_others_may_write_stops_the_agent_with_a_message(agents: Agents) -> None:
    """Whoever can write the lock directory could hold or break the election: refused, named."""
    locks = agents.here / "WUCME_LOCKS"
    locks.mkdir(parents=True)
    os.chmod(locks, 0o777)
    proc = agents.start()
    assert proc.wait(30) != 0
    out = agents.output(proc)
    assert f"%WUCME-E-INSECURE, {locks} is writable by every user (mode 0777)" in out and "Traceback" not in out
    assert os.stat(locks).st_mode & 0o777 == 0o777
