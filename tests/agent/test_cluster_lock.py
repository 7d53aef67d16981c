"""The cluster lock (wucme/lockpg.py) against a real PostgreSQL server, and agents electing on it."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from .support import Agents, alive, comm, wait_for

psycopg = pytest.importorskip("psycopg", reason="psycopg 3 is not installed (pip install 'psycopg[binary]')")

from wucme.lock import LockTimeout, NotQueued  # noqa: E402
from wucme.lockpg import LOCKID_FILE, PgLock, PgLockError, lock_id, lock_key  # noqa: E402

ACTIVE, STANDBY = "wuCME-active", "wuCME-standby"


def advisory(conninfo: str, key: int) -> tuple[int, int]:
    """(granted, waiting) advisory lock requests on `key`, as the server sees them."""
    with psycopg.connect(conninfo, autocommit=True) as c:
        rows = c.execute("SELECT granted FROM pg_locks WHERE locktype = 'advisory' "
                         "AND classid = %s AND objid = %s AND objsubid = 1",
                         ((key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF)).fetchall()
    return sum(1 for (g,) in rows if g), sum(1 for (g,) in rows if not g)


def test_lock_id_is_created_once_and_names_the_key(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    ident = lock_id(a)
    assert lock_id(a) == ident and len(ident) == 32
    assert not [p for p in a.iterdir() if p.name != LOCKID_FILE]  # no temporary file left
    shutil.copy(a / LOCKID_FILE, b / LOCKID_FILE)  # another host's mount of the same repository
    assert lock_id(b) == ident
    assert lock_key("WUCME_ACTIVE", ident) != lock_key("WUCME_OTHER", ident)
    assert lock_key("WUCME_ACTIVE", ident) != lock_key("WUCME_ACTIVE", lock_id(tmp_path))
    assert -2**63 <= lock_key("WUCME_ACTIVE", ident) < 2**63


def test_two_clients_try_wait_timeout_release(pg_server: str, tmp_path: Path) -> None:
    a = PgLock(pg_server, "WUCME_ACTIVE", repository=tmp_path).acquire(wait=False)
    b = PgLock(pg_server, "WUCME_ACTIVE", repository=tmp_path)
    other = PgLock(pg_server, "WUCME_ACTIVE", ident="another repository")
    try:
        with pytest.raises(NotQueued):
            b.acquire(wait=False)
        assert not b.held
        t0 = time.monotonic()
        with pytest.raises(LockTimeout):
            b.acquire(timeout=0.3)
        assert 0.25 < time.monotonic() - t0 < 3
        with other:  # another repository's lock is another key
            assert other.held
        assert advisory(pg_server, a.key) == (1, 0)
        done = threading.Event()

        def waiter() -> None:
            b.acquire()
            done.set()

        t = threading.Thread(target=waiter)
        t.start()
        wait_for(lambda: advisory(pg_server, a.key) == (1, 1), 5, "b queued on the server")
        assert not done.wait(0.3)
        a.release()
        assert done.wait(3), "the blocking wait did not return after the release"
        t.join(5)
        assert b.held and advisory(pg_server, a.key) == (1, 0)
        with pytest.raises(NotQueued):
            a.acquire(wait=False)
    finally:
        a.release()
        b.release()
        other.release()
    assert advisory(pg_server, a.key) == (0, 0)


HOLDER = """
import fcntl, sys, time
from wucme.lockpg import PgLock
lock = PgLock(sys.argv[1], "WUCME_ACTIVE", ident=sys.argv[2]).acquire()
cloexec = fcntl.fcntl(lock._conn.pgconn.socket, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
print("held" if cloexec else "inheritable", flush=True)
time.sleep(60)
"""


def test_kill_9_of_the_holder_releases(pg_server: str) -> None:
    ident = f"kill9-{os.getpid()}"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, pg_server, ident], stdout=subprocess.PIPE)
    try:
        # held, on a close-on-exec socket (hooks run by exec never keep the session alive)
        assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
        lock = PgLock(pg_server, "WUCME_ACTIVE", ident=ident)
        with pytest.raises(NotQueued):
            lock.acquire(wait=False)
        os.kill(holder.pid, signal.SIGKILL)
        t0 = time.monotonic()
        lock.acquire(timeout=5)
        assert time.monotonic() - t0 < 2.5
        lock.release()
    finally:
        holder.kill()
        holder.wait(5)
        if holder.stdout:
            holder.stdout.close()


def test_check_notices_a_lost_session(pg_server: str) -> None:
    lock = PgLock(pg_server, "WUCME_ACTIVE", ident=f"lost-{os.getpid()}").acquire()
    try:
        lock.check()
        with psycopg.connect(pg_server, autocommit=True) as c:
            pid = lock._conn.info.backend_pid
            assert c.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0]
        with pytest.raises(PgLockError, match="is lost"):
            lock.check()
        other = PgLock(pg_server, "WUCME_ACTIVE", ident=lock.ident).acquire(timeout=3)
        other.release()
    finally:
        lock.release()


def shared_repos(agents: Agents, n: int) -> list[Path]:
    """`n` repository paths with one WUCME_LOCKID: one repository mounted at n places."""
    repos = [agents.tmp / f"mount{i}" / "repo" for i in range(n)]
    for r in repos:
        r.mkdir(parents=True)
    lock_id(repos[0])
    for r in repos[1:]:
        shutil.copy(repos[0] / LOCKID_FILE, r / LOCKID_FILE)
    return repos


def settle(agents: Agents, procs: list[subprocess.Popen[bytes]]) -> list[str]:
    wait_for(lambda: all(r in (ACTIVE, STANDBY) for r in agents.roles(procs))
             and agents.roles(procs).count(ACTIVE) >= 1, 15, "agents named")
    time.sleep(0.3)
    return agents.roles(procs)


@pytest.mark.parametrize("n", [2, 3])
def test_agents_on_different_paths_elect_one_and_take_over(agents: Agents, pg_server: str, n: int) -> None:
    repos = shared_repos(agents, n)
    procs = [agents.start(WUCME_HERE=str(r), WUCME_LOCK_DB=pg_server) for r in repos]
    roles = settle(agents, procs)
    assert roles.count(ACTIVE) == 1 and roles.count(STANDBY) == n - 1, roles
    key = lock_key("WUCME_ACTIVE", lock_id(repos[0]))
    # A standby names itself before its request reaches the server (the wait is one blocking
    # call): on a busy machine the server may see it a moment after the name.
    wait_for(lambda: advisory(pg_server, key) == (1, n - 1), 5, "the standbys queued on the server")
    active = procs[roles.index(ACTIVE)]
    with psycopg.connect(pg_server, autocommit=True) as c:  # the holder says who it is
        names = [r[0] for r in c.execute("SELECT application_name FROM pg_stat_activity").fetchall()]
    assert any(n.startswith("wucme ") and n.endswith(f" pid={active.pid}") for n in names), names
    os.kill(active.pid, signal.SIGKILL)
    active.wait(5)
    rest = [p for p in procs if p is not active]
    wait_for(lambda: agents.roles(rest).count(ACTIVE) == 1, 3.0, "a standby takes over")
    time.sleep(0.3)
    assert sorted(agents.roles(rest)) == sorted([ACTIVE] + [STANDBY] * (n - 2))
    assert "TAKEOVER" in agents.output(rest[agents.roles(rest).index(ACTIVE)])
    wait_for(lambda: advisory(pg_server, key) == (1, n - 2), 5, "the rest still queued")


def test_without_the_cluster_lock_two_mounts_both_go_active(agents: Agents) -> None:
    """The control: the local lock cannot see that two paths are one repository."""
    repos = shared_repos(agents, 2)
    procs = [agents.start(WUCME_HERE=str(r)) for r in repos]
    wait_for(lambda: agents.roles(procs) == [ACTIVE, ACTIVE], 15, "both active")


def test_sigterm_ends_a_standby_waiting_on_the_server(agents: Agents, pg_server: str) -> None:
    repos = shared_repos(agents, 2)
    procs = [agents.start(WUCME_HERE=str(r), WUCME_LOCK_DB=pg_server) for r in repos]
    roles = settle(agents, procs)
    standby = procs[roles.index(STANDBY)]
    key = lock_key("WUCME_ACTIVE", lock_id(repos[0]))
    wait_for(lambda: advisory(pg_server, key) == (1, 1), 5, "the standby queued on the server")
    standby.send_signal(signal.SIGTERM)
    assert standby.wait(5) == 0
    assert "STOPPING" in agents.output(standby)
    wait_for(lambda: advisory(pg_server, key) == (1, 0), 2, "the waiting request is gone")
    assert comm(procs[roles.index(ACTIVE)].pid) == ACTIVE


def test_no_psycopg_is_a_clear_error(agents: Agents, pg_server: str) -> None:
    shim = agents.tmp / "shim" / "psycopg"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text("raise ImportError('psycopg hidden by the test')\n")
    repo = shared_repos(agents, 1)[0]
    p = agents.start(WUCME_HERE=str(repo), WUCME_LOCK_DB=pg_server, PYTHONPATH=str(shim.parent))
    assert p.wait(15) == 2
    out = agents.output(p)
    assert "%WUCME-E-NOPSYCOPG" in out and "Traceback" not in out
    assert not alive(p.pid)


def test_active_agent_that_lost_its_session_runs_no_further_cycle(
        pg_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A standby elsewhere may be active once the session is gone: no double renewals."""
    import datetime as _dt

    from harness.clock import FakeClock
    from wucme.agent import Agent

    monkeypatch.setenv("WUCME_LOCK_DB", pg_server)
    monkeypatch.delenv("WUCME_ACTIVE", raising=False)
    repo = tmp_path / "repo"
    repo.mkdir()
    cycles: list[int] = []

    def cycle(agent: Agent) -> None:
        cycles.append(1)
        with psycopg.connect(pg_server, autocommit=True) as c:  # the session dies mid-day
            c.execute("SELECT pg_terminate_backend(%s)", (agent.lock._conn.info.backend_pid,))

    start = _dt.datetime(2026, 11, 27, 0, 30, tzinfo=_dt.timezone.utc)
    agent = Agent(repo, clock=FakeClock(start), cycle=cycle, max_cycles=5, immediate=True,
                  rename=False)
    assert agent.serve() == 2
    assert cycles == [1]
