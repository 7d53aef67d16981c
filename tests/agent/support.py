"""Helpers for the agent tests. Agents as real processes: `python3 -m wucme agent` with a repository and logical tables of their own.

Every process a test starts is killed at teardown by its pid (also after a failure), and so is
every pid a test registers (children left behind by a load command).
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from harness.pebble import Pebble


def comm(pid: int) -> str:
    """/proc/PID/comm, or "" once the process is gone (or a zombie's name)."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().rstrip("\n")
    except OSError:
        return ""


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_for(pred: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll `pred` every 10 ms; the seconds it took, or fail after `timeout`."""
    t0 = time.monotonic()
    while not pred():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.01)
    return time.monotonic() - t0


class Agents:
    """Starts agents (and other wucme commands) on one repository; kills them all at teardown."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.here = tmp / "here"
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("WUCME_", "_WUCME_", "UACME_", "WASD_", "GATEWAY_", "REQUEST_"))}
        self.env.update(WUCME_HERE=str(self.here), WUCME_LNM_DIR=str(tmp / "lnm"),
                        WUCME_ALPN_SOCKET=str(tmp / "alpn.sock"))
        self.procs: list[subprocess.Popen[bytes]] = []
        self.extra_pids: list[int] = []
        self.n = 0

    def use_pebble(self, p: Pebble) -> None:
        self.env.update(WUCME_CA=p.directory_url, WUCME_CA_BUNDLE=p.ca_bundle, WUCME_CHALLENGE="http-01",
                        WUCME_HTTP01=f"127.0.0.1:{p.http_port}")

    def start(self, *args: str, argv: list[str] | None = None, **env: str) -> subprocess.Popen[bytes]:
        self.n += 1
        out = open(self.tmp / f"agent{self.n}.out", "wb")
        e = dict(self.env, **env)
        for k in [k for k, v in e.items() if v is None]:
            del e[k]
        proc = subprocess.Popen(argv or [sys.executable, "-m", "wucme", "agent", *args], env=e,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        out.close()
        proc.out_path = self.tmp / f"agent{self.n}.out"  # type: ignore[attr-defined]
        self.procs.append(proc)
        return proc

    def output(self, proc: subprocess.Popen[bytes]) -> str:
        return Path(proc.out_path).read_text(errors="replace")  # type: ignore[attr-defined]

    def wucme(self, *args: str, code: int = 0, **env: str) -> subprocess.CompletedProcess[str]:
        r = subprocess.run([sys.executable, "-m", "wucme", *args], env=dict(self.env, **env),
                           capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL)
        assert r.returncode == code, f"wucme {' '.join(args)}: exit {r.returncode}\n{r.stdout}\n{r.stderr}"
        return r

    def roles(self, procs: list[subprocess.Popen[bytes]]) -> list[str]:
        return [comm(p.pid) if p.poll() is None else "" for p in procs]

    def stop_all(self) -> None:
        for pid in self.extra_pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.kill(p.pid, signal.SIGCONT)
                    p.kill()
                except ProcessLookupError:
                    pass
            p.wait(10)


class Syslog:
    """A Unix datagram socket standing in for /dev/log."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.05)
        self.lines: list[str] = []

    def drain(self) -> str:
        while True:
            try:
                self.lines.append(self.sock.recv(65536).decode("utf-8", "replace"))
            except (TimeoutError, BlockingIOError):
                return "\n".join(self.lines)

    def drain_new(self) -> str:
        """What arrived since the last call."""
        seen = len(self.lines)
        self.drain()
        return "\n".join(self.lines[seen:])

    def close(self) -> None:
        self.sock.close()
