"""`wucme alpn` started several times at once, and killed with SIGKILL, on one pid file and one
control socket: what a supervisor that restarts too eagerly, or two administrators, do.

Exactly one server must come out of a start race, answering on the control socket the pid file
and the socket path name; every other copy must stop with a clear error and leave the winner's
files alone.  After `kill -9` of the master (no clean-up runs) its workers follow it and a new
server starts over the pid file and socket it left.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from harness.pebble import stop_child
from wucme.challenge.alpn import AlpnControl

from .test_challenge_alpn import DIGEST, children
from .test_challenge_support import PYTHON, TlsBackend, free_port, python_env, tls_get, wait_for, write_self_signed

COPIES = 6
ROUNDS = 8
#: `wucme alpn ARGS` that, its imports done, says so on descriptor ARGV[2] and waits for the
#: start signal (EOF on descriptor ARGV[1]): every copy starts at the same instant.
AT_THE_SIGNAL = ("import os, sys; from wucme.challenge.alpn import alpn_main; os.write(int(sys.argv[2]), b'.'); "
                 "os.read(int(sys.argv[1]), 1); sys.exit(alpn_main(sys.argv[3:]))")


def args(tmp_path: Path, backend: TlsBackend, port: int, *extra: str) -> list[str]:
    return ["-b", f"127.0.0.1@{port}", "-c", f"127.0.0.1@{backend.port}", "-s", str(tmp_path / "alpn.sock"),
            "-p", str(tmp_path / "alpn.pid"), "-l", str(tmp_path / "alpn.log"), *extra]


def server(tmp_path: Path, backend: TlsBackend, port: int, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([PYTHON, "-m", "wucme.challenge.alpn", *args(tmp_path, backend, port, *extra)],
                            env=python_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def servers_at_once(tmp_path: Path, backend: TlsBackend, ports: list[int]) -> list[subprocess.Popen[bytes]]:
    """A copy of `wucme alpn -n 1` per port, all let go together."""
    go_r, go_w = os.pipe()
    ready_r, ready_w = os.pipe()
    try:
        procs = [subprocess.Popen([PYTHON, "-c", AT_THE_SIGNAL, str(go_r), str(ready_w),
                                   *args(tmp_path, backend, port, "-n", "1")],
                                  env=python_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, pass_fds=(go_r, ready_w)) for port in ports]
        os.close(ready_w)
        ready = b""
        while len(ready) < len(procs):
            got = os.read(ready_r, len(procs))
            assert got, "a copy died before the start signal"
            ready += got
    finally:
        for fd in (go_r, ready_r, go_w):  # closing go_w is the signal
            try:
                os.close(fd)
            except OSError:
                pass
    return procs


def settle(procs: list[subprocess.Popen[bytes]], timeout: float = 30) -> list[subprocess.Popen[bytes]]:
    """Wait until at most one copy is left running (and then a little more); the survivors."""
    deadline = time.monotonic() + timeout
    while sum(p.poll() is None for p in procs) > 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # a loser still cleaning up would show here
    return [p for p in procs if p.poll() is None]


def test_copies_started_at_once_leave_exactly_one_working_server(tmp_path: Path) -> None:
    """Eight rounds of six copies let go at one instant: the window between a copy's look at
    the pid file and its own is short, and one round in three used to meet it."""
    backend = TlsBackend(write_self_signed(tmp_path))
    try:
        for round_ in range(ROUNDS):
            start_race(tmp_path / f"round{round_}", backend)
    finally:
        backend.close()


def start_race(where: Path, backend: TlsBackend) -> None:
    where.mkdir()
    ports = [free_port() for _ in range(COPIES)]
    procs = servers_at_once(where, backend, ports)
    try:
        alive = settle(procs)
        assert len(alive) == 1, [(p.pid, p.poll()) for p in procs]
        winner = alive[0]
        port = ports[procs.index(winner)]
        for p in procs:
            if p is not winner:
                err = p.stderr.read().decode() if p.stderr else ""
                assert p.returncode == 1 and "another instance" in err, (p.returncode, err)
        # The pid file names the winner, and its control socket is the one at the path.
        assert (where / "alpn.pid").read_text().strip() == str(winner.pid)
        assert AlpnControl(where / "alpn.sock").auth("www.example.org", DIGEST) == "OK"
        _, chosen = tls_get(port, "www.example.org", ["acme-tls/1"])
        assert chosen == "acme-tls/1"
    finally:
        for p in procs:
            stop_child(p, grace=10)


def test_kill_9_of_the_master_its_workers_follow_and_a_new_server_starts_over_its_files(tmp_path: Path) -> None:
    backend = TlsBackend(write_self_signed(tmp_path))
    port = free_port()
    first = server(tmp_path, backend, port, "-n", "2")
    second = None
    try:
        wait_for(lambda: len(children(first.pid)) == 2 and AlpnControl(tmp_path / "alpn.sock").available(),
                 what="two workers and the control socket")
        workers = children(first.pid)
        assert AlpnControl(tmp_path / "alpn.sock").auth("www.example.org", DIGEST) == "OK"
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
        # No clean-up ran: the pid file and the socket are left; the workers see their master go.
        assert (tmp_path / "alpn.pid").exists() and (tmp_path / "alpn.sock").exists()
        wait_for(lambda: not any(Path(f"/proc/{w}").exists() and "zombie" not in
                                 Path(f"/proc/{w}/status").read_text(errors="replace") for w in workers),
                 timeout=15, what="the workers to end with their master")
        second = server(tmp_path, backend, port, "-n", "2")  # the same port: the workers let it go
        wait_for(lambda: AlpnControl(tmp_path / "alpn.sock").available() or second.poll() is not None,
                 what="the new server")
        assert second.poll() is None, second.stderr.read() if second.stderr else ""
        assert (tmp_path / "alpn.pid").read_text().strip() == str(second.pid)
        assert AlpnControl(tmp_path / "alpn.sock").auth("www.example.org", DIGEST) == "OK"
        _, chosen = tls_get(port, "www.example.org", ["acme-tls/1"])
        assert chosen == "acme-tls/1"
    finally:
        stop_child(first, grace=10)
        if second is not None:
            stop_child(second, grace=10)
        backend.close()


def test_a_server_answering_its_control_socket_has_written_its_pid(tmp_path: Path) -> None:
    """Whoever finds the server on its control socket (an init script, `wucme alpn` started
    again) finds its pid in the pid file too, at the first moment the socket answers, over a
    stale file a killed server left (whose pid must never be read as the new one's)."""
    backend = TlsBackend(write_self_signed(tmp_path))
    try:
        for round_ in range(10):
            port, here = free_port(), tmp_path / f"round{round_}"
            here.mkdir()
            if round_ % 2:
                (here / "alpn.pid").write_text("99999999\n")  # a killed server's, unlocked
            proc = server(here, backend, port, "-n", "1")
            try:
                control = AlpnControl(here / "alpn.sock")
                deadline = time.monotonic() + 30
                while not control.available():
                    assert proc.poll() is None and time.monotonic() < deadline, \
                        proc.stderr.read() if proc.stderr else ""
                    time.sleep(0.0005)
                assert (here / "alpn.pid").read_text().strip() == str(proc.pid)
            finally:
                stop_child(proc, grace=10)
    finally:
        backend.close()
