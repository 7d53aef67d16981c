"""The agent process: the active/standby election on the lock, its name, signals and detaching.

Every agent of a repository asks for the lock WUCME_ACTIVE (resource in <repository>/WUCME_LOCKS)
in EX mode.  The one granted it is wuCME-active and runs the daily cycle; the others are
wuCME-standby, asleep in the kernel's lock wait, and one of them is granted the lock the moment
the active one's process dies, however it dies (the kernel drops open-file-description locks
with the last descriptor).  A stopped process (SIGSTOP) keeps its lock, so no second active
appears beside it.  WUCME_ACTIVE defined makes a process active without the lock (one system
per repository, the seed's way).

WUCME_CLUSTER_MODE SHARED (docs/cluster.md, "Shared renewals") holds no election: every agent
is wuCME-shared and runs its daily pass, and each certificate is renewed by whichever node takes
its lock first (the per-certificate lock, on PostgreSQL when WUCME_LOCK_DB is defined).

The lock descriptor is close-on-exec and dropped in forked children, so hooks, the load
command, the cycle's child process and anything they leave running never hold it.

SIGTERM or SIGINT: a running cycle is stopped (its child gets SIGTERM; repository writes are
atomic, so abandoning it is clean), the lock is released, and the process exits 0.
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import datetime as _dt
import os
import signal
import subprocess
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wucme.agent.log import AgentLog, node_name, start_log
from wucme.agent.schedule import AgentState, Clock, RealClock, next_run, state_file
from wucme import settings
from wucme.vms.condition import VmsError, format_message

ACTIVE_NAME = "wuCME-active"
STANDBY_NAME = "wuCME-standby"
SHARED_NAME = "wuCME-shared"
RESOURCE = "WUCME_ACTIVE"
LOCK_DIR = "WUCME_LOCKS"
PR_SET_NAME = 15
#: How long a stopping agent lets a running cycle unwind after SIGTERM before killing it.
STOP_GRACE = 10.0
#: How long past WUCME_PASS_DEADLINE a pass may take (certificates in flight) before it is stopped.
PASS_GRACE = 600.0
#: How soon a schedule that could not be read (a logical-name table down) is read again.
TABLE_RETRY = 10.0


class LockLost(Exception):
    """The cluster lock went with its database session."""


class Stop(Exception):
    """Raised by the SIGTERM/SIGINT handler to end a wait or a cycle."""


# --- the process name -----------------------------------------------------------------------------

def set_process_name(name: str) -> None:
    """Show `name` in /proc/PID/comm (ps -e, top, pgrep) and, where possible, as the command line
    (ps -f, ps aux).  comm is set with prctl(PR_SET_NAME) (15 bytes at most); the command line
    is the memory the kernel set up for argv, overwritten in place through /proc/self/mem and
    padded with NULs (only as long as the original command line)."""
    raw = name.encode()[:15]
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        if libc.prctl(PR_SET_NAME, ctypes.c_char_p(raw), 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl")
    except (OSError, AttributeError):
        with contextlib.suppress(OSError):
            Path("/proc/self/comm").write_bytes(raw)
    with contextlib.suppress(OSError, ValueError, IndexError):
        _set_cmdline(name.encode())


def _set_cmdline(name: bytes) -> None:
    # /proc/self/stat fields 48 and 49 (arg_start, arg_end); the name field may hold spaces.
    fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    start, end = int(fields[45]), int(fields[46])
    size = end - start
    if size < 2:
        return
    data = name[:size - 1].ljust(size, b"\0")
    with open("/proc/self/mem", "r+b", buffering=0) as mem:
        mem.seek(start)
        mem.write(data)


# --- the agent ------------------------------------------------------------------------------------

CycleRunner = Callable[["Agent"], None]


class Agent:
    """One agent process on one repository.

    `cycle` runs one daily cycle; by default in a child process (`child_cycle`); tests pass
    `in_process_cycle` with a fake clock.  `max_cycles` ends `serve` after that many cycles.
    """

    def __init__(self, repo_path: Path, *, clock: Clock | None = None,
                 cycle: CycleRunner | None = None, max_cycles: int | None = None,
                 log: AgentLog | None = None, tz: _dt.tzinfo | None = None,
                 immediate: bool = False, rename: bool = True) -> None:
        self.repo_path = Path(repo_path)
        self.clock = clock or RealClock()
        self.cycle = cycle or child_cycle
        self.max_cycles = max_cycles
        self.log = log or AgentLog(settings.verbosity())
        self.tz = tz
        #: Run the first cycle at once, whatever the schedule says (/ONCE).
        self.immediate = immediate
        #: Rename the process (tests running an agent inside pytest say False).
        self.rename = rename
        self._saved_handlers: dict[int, Any] = {}
        self.node = node_name()
        self.lock: Any = None
        self.role = ""
        #: Shared renewals (WUCME_CLUSTER_MODE SHARED, read once at start): no election.
        self.shared = False
        self.cycles = 0
        self.stopping = False
        self.child: subprocess.Popen[bytes] | None = None

    # signals -----------------------------------------------------------------------------------

    def _on_signal(self, signum: int, _frame: types.FrameType | None) -> None:
        self.stopping = True
        raise Stop(signal.Signals(signum).name)

    def install_signals(self) -> None:
        for s, h in ((signal.SIGTERM, self._on_signal), (signal.SIGINT, self._on_signal),
                     (signal.SIGHUP, signal.SIG_IGN)):  # a closed terminal does not stop the agent
            self._saved_handlers[s] = signal.signal(s, h)

    def restore_signals(self) -> None:
        for s, h in self._saved_handlers.items():
            signal.signal(s, h)
        self._saved_handlers.clear()

    def _name(self, name: str) -> None:
        if self.rename:
            set_process_name(name)

    # roles -------------------------------------------------------------------------------------

    def become_active(self) -> None:
        """Take the lock (waiting as wuCME-standby), or skip it when WUCME_ACTIVE is defined or
        the renewals are shared."""
        from wucme.errors import UsageError

        try:
            mode = settings.cluster_mode()
        except UsageError as e:  # BADVALUE: the nodes must agree on it, so no guess
            self.log.say(e.severity, e.ident, e.text)
            raise SystemExit(2) from None
        if mode == "SHARED":
            self.shared = True
            self.role = "shared"
            self._name(SHARED_NAME)
            db = settings.lock_db()
            self.log.say("I", "SHARED", f"shared renewals (WUCME_CLUSTER_MODE SHARED) on {self.node} for "
                         f"{self.repo_path}: each certificate is renewed by the first node to lock it")
            if not db:
                self.log.say("W", "LOCALLOCKS", "WUCME_LOCK_DB is not defined: the certificates' locks "
                             "are this host's own, which other hosts see only through a file system "
                             "that shares its locks")
            return
        if settings.always_active():
            self.role = "active"
            self._name(ACTIVE_NAME)
            self.log.say("I", "ACTIVE", f"WUCME_ACTIVE is defined: active on {self.node} "
                         f"without the lock for {self.repo_path}")
            return
        from wucme.lock import NotQueued

        try:
            self.lock = self._enqueue(wait=False)
        except NotQueued:
            self.role = "standby"
            self._name(STANDBY_NAME)
            self.log.say("I", "STANDBY", f"pid {os.getpid()} waits to take over {self.repo_path}")
            self.lock = self._enqueue(wait=True)  # asleep in the kernel (or the server) until granted
            self.log.say("I", "TAKEOVER", "the active agent is gone: taking over")
        self.role = "active"
        self._name(ACTIVE_NAME)
        with contextlib.suppress(Exception):
            self.lock.value_block = f"{self.node} pid={os.getpid()}".encode()[:64]

    # --- the lock backend: WUCME_LOCK_DB (docs/agent.md, "Cluster lock") --------------------------

    def _enqueue(self, wait: bool) -> Any:
        """WUCME_ACTIVE in EX mode: on the PostgreSQL server WUCME_LOCK_DB names (a libpq
        connection string; hosts sharing the repository), else the local lock manager."""
        conninfo = settings.lock_db()
        if conninfo:
            from wucme.errors import WucmeError
            from wucme.lock import NotQueued
            from wucme.vms.condition import exit_status

            try:
                from wucme.lockpg import PgLock

                return PgLock(conninfo, RESOURCE, repository=self.repo_path).acquire(wait=wait)
            except NotQueued:
                raise
            except WucmeError as e:  # NOPSYCOPG, LOCKDB: a message and an exit status, no traceback
                self.log.say(e.severity, e.ident, e.text)
                raise SystemExit(exit_status(e.severity)) from None
        from wucme.lock import LockManager, LockMode
        from wucme.vms.condition import exit_status as status_of
        from wucme.vms.secure import InsecureError

        try:
            manager = LockManager(self.repo_path / LOCK_DIR)
        except InsecureError as e:  # a lock directory others may write: a message, no traceback
            self.log.write(e.message())
            raise SystemExit(status_of(e.severity)) from None
        return manager.enqueue(RESOURCE, LockMode.EX, wait=wait)

    # ---------------------------------------------------------------------------------------------

    def release(self) -> None:
        if self.lock is not None:
            with contextlib.suppress(Exception):
                self.lock.release()
            self.lock = None

    # the loop ----------------------------------------------------------------------------------

    def serve(self) -> int:
        """Stand by, become active, run the daily cycles until a signal (or max_cycles); 0."""
        self.install_signals()
        status = 0
        try:
            self._name(STANDBY_NAME)
            self.become_active()
            self._start_log()
            while not self.stopping:
                state = AgentState.load(self.repo_path, state_file(self.shared, self.node))
                now = self.clock.now()
                try:
                    when, why = next_run(state, now, tz=self.tz, node=self.node)
                except VmsError as e:  # WUCME_SCHEDULE unreadable: the cluster table's database down
                    self.log.say("W", e.ident, f"{e.text}: the schedule is read again in {TABLE_RETRY:g} s")
                    self.clock.wait_until(now + _dt.timedelta(seconds=TABLE_RETRY))
                    continue
                if self.immediate:
                    when, why, self.immediate = now, "requested", False
                if when <= now:
                    self._still_holding()
                    self.log.say("I", "CYCLE", f"starting the daily cycle ({why})")
                    self.cycle(self)
                    self.cycles += 1
                    if self.max_cycles is not None and self.cycles >= self.max_cycles:
                        break
                    continue
                self._announce(when, why)
                self.clock.wait_until(when)
        except Stop as e:
            self.log.say("I", "STOPPING", f"{e} received: {'stopping' if self.role else 'leaving'}")
        except LockLost as e:
            self.log.say("F", "LOCKLOST", f"{e}: stopping without a cycle (a standby takes over)")
            status = 2
        finally:
            for s in (signal.SIGTERM, signal.SIGINT):  # one stop is enough: finish it quietly
                signal.signal(s, signal.SIG_IGN)
            self._stop_child()
            self.release()
            self.restore_signals()
        self.log.say("I", "STOPPED", f"agent {os.getpid()} stopped")
        return status

    def _still_holding(self) -> None:
        """A cluster lock ends with its database session, and a standby elsewhere may then be
        active already: never start a cycle without it (the local lock cannot be lost)."""
        check = getattr(self.lock, "check", None)
        if check is None:
            return
        from wucme.lock import LockError

        try:
            check()
        except LockError as e:
            raise LockLost(e.text) from None

    _announced: _dt.datetime | None = None

    def _announce(self, when: _dt.datetime, why: str) -> None:
        if when != self._announced:
            self._announced = when
            self.log.say("I", "NEXT", f"next cycle at {when.astimezone().isoformat(timespec='seconds')} ({why})")

    def _start_log(self) -> None:
        try:
            header = format_message("I", "ACTIVE", f"{SHARED_NAME if self.shared else ACTIVE_NAME} "
                                    f"on {self.node} for {self.repo_path}")
            path = start_log(self.repo_path, f"[{os.getpid()}] {header}", self.node)
            self.log.path = path
        except OSError as e:
            self.log.say("W", "NOLOG", f"cannot start the log in {self.repo_path}: {e}")

    def _stop_child(self) -> None:
        child, self.child = self.child, None
        if child is None or child.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            child.terminate()
        try:
            child.wait(STOP_GRACE)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        except Stop:
            child.kill()
            child.wait()


def child_cycle(agent: Agent) -> None:
    """Run the cycle in a child process, so the waiting agent stays small (imports nothing of
    the ACME stack); a child that crashes counts as a failed pass for the backoff."""
    argv = [sys.executable, "-m", "wucme.agent.cycle", str(agent.repo_path),
            str(agent.log.path or ""), str(os.getpid())] + (["SHARED", agent.node] if agent.shared else [])
    agent.child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, close_fds=True)
    # WUCME_PASS_DEADLINE bounds the pass; a child still running well past it is stuck.
    limit = settings.pass_deadline() + PASS_GRACE
    try:
        status = agent.child.wait(limit)
    except subprocess.TimeoutExpired:
        agent.log.say("E", "PASSDEADLINE", f"the pass did not end within {limit:g} s "
                      "(WUCME_PASS_DEADLINE): stopped")
        agent._stop_child()
        status = -signal.SIGTERM
    agent.child = None
    if status not in (0, 2):
        now = agent.clock.now()
        name = state_file(agent.shared, agent.node)
        state = AgentState.load(agent.repo_path, name)
        if state.last_pass_time is None or state.last_pass_time < now - _dt.timedelta(seconds=5):
            state.passed(now, False, f"the cycle process ended with status {status}")
            with contextlib.suppress(OSError):
                state.save(agent.repo_path, name)
        agent.log.say("E", "CYCLEFAIL", f"the cycle process ended with status {status}")


def in_process_cycle() -> CycleRunner:
    """A cycle runner in this process on the agent's clock (tests; no child process)."""
    def run(agent: Agent) -> None:
        from wucme.agent.cycle import run_cycle
        from wucme.repository import Repository

        run_cycle(Repository(agent.repo_path), agent.log, agent.clock.now(), shared=agent.shared,
                  node=agent.node)
    return run
