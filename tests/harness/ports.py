"""Ports a test names before something listens there.

A port that is "free a moment ago" and bound later (Pebble's http-01 and tls-alpn-01 ports,
which a test's responder binds only while the test runs) must not be one the kernel hands
out by itself: from the ephemeral range (net.ipv4.ip_local_port_range) any process may get it
as the source port of a connection or for a bind to port 0 while nobody holds it, and the
responder then cannot bind it, or the CA's validation meets somebody else's socket (a
connection closed at once: Pebble reports "EOF").  So these ports come from below the
ephemeral range, where only an explicit bind takes a port, and one process never hands out
the same port twice.
"""
from __future__ import annotations

import errno
import random
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import pytest

__all__ = ["free_port", "free_ports", "ipv6_loopback", "port_holders", "await_port_free", "HeldPort",
           "let_go_log", "on_well_known_port"]

T = TypeVar("T")

_LOW = 10000  # above the registered services a test machine commonly runs
_given: set[int] = set()
#: Ports found held that were then let go, each with who held it: not a failure, but what
#: a run prints at its end (conftest's terminal summary), to find the holder.
let_go_log: list[str] = []
_lock = threading.Lock()


def _ephemeral_start() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def free_port(host: str = "127.0.0.1", kind: int = socket.SOCK_STREAM) -> int:
    """A port below the ephemeral range that *host* could bind a moment ago (TCP or UDP
    by *kind*), never one this process gave before."""
    high = _ephemeral_start() - 1
    if high - _LOW < 1000:  # an unusual range: fall back to the kernel's choice
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind((host, 0))
            return int(s.getsockname()[1])
    rng = random.Random()
    with _lock:
        for _ in range(2000):
            port = rng.randint(_LOW, high)
            if port in _given:
                continue
            with socket.socket(socket.AF_INET, kind) as s:
                try:
                    s.bind((host, port))
                except OSError:
                    continue
            _given.add(port)
            return port
    raise OSError("no free port below the ephemeral range")


def free_ports(n: int) -> list[int]:
    """*n* distinct free ports (for tests that need several responders)."""
    return sorted(free_port() for _ in range(n))


def ipv6_loopback() -> bool:
    """Whether this system has ::1 (some containers have no IPv6 at all): tests over IPv6
    skip, saying so, where it has not."""
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def port_holders(port: int) -> str:
    """Every TCP socket on *port* (either end) with its process, as `ss -tanp` shows them:
    for a message that says who held a port a test needed."""
    try:
        out = subprocess.run(["ss", "-Htanp"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError) as e:
        return f"(ss failed: {e})"
    held = [line for line in out.splitlines() if f":{port} " in line]
    return "\n".join(held) or "(no socket on it now)"


def _bindable(port: int, host: str) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as every responder binds
        try:
            s.bind((host, port))
        except OSError as e:
            if e.errno != errno.EADDRINUSE:
                raise
            return False
    return True


@dataclass(frozen=True)
class HeldPort:
    """A port somebody else held when a responder wanted it: who, and whether they let go."""

    port: int
    let_go: bool
    holders: str
    waited: float

    def __str__(self) -> str:
        how = "held, then let go" if self.let_go else f"still held after {self.waited:g} s"
        return f"{how}; held by:\n{self.holders}"


def await_port_free(port: int, timeout: float, host: str = "127.0.0.1") -> HeldPort | None:
    """Wait up to *timeout* s until a responder could bind *port*: None when it could at
    once, else who held it when first seen (`port_holders`) and whether they let go."""
    if _bindable(port, host):
        return None
    holders = port_holders(port)
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        time.sleep(0.2)
        if _bindable(port, host):
            seen = HeldPort(port, True, holders, time.monotonic() - start)
            let_go_log.append(f"{host}:{port} {seen}")
            return seen
    return HeldPort(port, False, f"{holders}\nnow:\n{port_holders(port)}", timeout)


def on_well_known_port(start: Callable[[], T], port: int) -> T:
    """*start()*, a server that binds its protocol's default *port* (80, 443); the test skips,
    saying why, where that needs privilege or something else holds the port."""
    try:
        return start()
    except PermissionError:
        pytest.skip(f"binding port {port} needs privilege")
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        pytest.skip(f"port {port} is taken on this machine")
