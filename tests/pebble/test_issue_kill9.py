"""`wucme issue` killed with SIGKILL at each step of a renewal, then run again.

The fault proxy in front of Pebble holds one step's request (before it reaches the CA) or the
CA's answer (before it reaches wucme) until the process has been killed there, so the moment is
exact rather than a timer's guess.  What must hold after each kill: the certificate in use is
untouched, byte for byte (a renewal that dies never damages it); no temporary file is left
that the next write would not clear; the certificate's lock is free (the next run does not
wait); and the same command run again renews the certificate, whose files are then a whole
chain and the key of WUCME_K, both 0600.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from harness.faultproxy import FaultProxy, ProxyRequest, Reply, match_path
from harness.pebble import Pebble
from wucme.vms.atomic import TEMP_PREFIX

from .test_wucme_verbs import Wucme, assert_files, chain

pytestmark = pytest.mark.pebble

NAME = "killed.example.org"
PART = "KILLED_EXAMPLE_ORG"
#: (method, path prefix at Pebble, held before the CA sees it or after it answered)
STEPS = [
    ("POST", "/order-plz", "before"),       # newOrder
    ("POST", "/authZ/", "before"),          # the authorization
    ("POST", "/chalZ/", "before"),          # the challenge started
    ("POST", "/my-order/", "before"),       # the order polled
    ("POST", "/finalize-order/", "before"),  # the CSR sent
    ("POST", "/finalize-order/", "after"),   # the CA issued; wucme has not heard
    ("POST", "/certZ/", "after"),            # the certificate downloaded, not yet saved
]


class Hold:
    """Hold the first request (or answer) of one step until released; say when it is held."""

    def __init__(self, proxy: FaultProxy, method: str, prefix: str, when: str) -> None:
        self.held, self.release = threading.Event(), threading.Event()
        if when == "before":
            proxy.add_rule(match_path(method, prefix), self._before, times=1)
        else:
            proxy.add_rule(match_path(method, prefix), lambda _r: None, rewrite=self._after, times=1)

    def _before(self, _req: ProxyRequest) -> Reply | None:
        self.held.set()
        self.release.wait(60)
        return None

    def _after(self, _req: ProxyRequest, status: int, headers: dict[str, str], body: bytes) -> Reply:
        self.held.set()
        self.release.wait(60)
        return status, headers, body


@pytest.mark.parametrize("method,prefix,when", STEPS, ids=[f"{p.strip('/')}-{w}" for _m, p, w in STEPS])
def test_kill_9_at_each_step_leaves_the_certificate_whole_and_the_next_run_renews(
        pebble: Pebble, fault_proxy: FaultProxy, tmp_path: Path, method: str, prefix: str, when: str) -> None:
    w = Wucme(tmp_path, pebble, ca_url=fault_proxy.directory_url)
    w.env["WUCME_CA_BUNDLE"] = fault_proxy.ca_bundle
    w("register", "admin@example.org")
    w("issue", NAME, "/noprogress")
    cert = w.here / f"WUCME_C_{PART}.PEM"
    before = {p.name: p.read_bytes() for p in w.here.glob(f"WUCME_[CK]_{PART}.PEM")}
    first = chain(cert)[0].serial_number

    hold = Hold(fault_proxy, method, prefix, when)
    proc = subprocess.Popen([sys.executable, "-m", "wucme", "issue", NAME, "/noprogress"], env=w.env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert hold.held.wait(60), f"wucme issue never reached {prefix} ({when})"
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=10)
        assert proc.returncode == -signal.SIGKILL
    finally:
        hold.release.set()
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)

    # The certificate in use, untouched; nothing half-written beside it.
    assert {p.name: p.read_bytes() for p in w.here.glob(f"WUCME_[CK]_{PART}.PEM")} == before
    assert_files(w.here, PART, {NAME})
    # The next run is not kept waiting by the dead one's lock, and renews.
    w("issue", NAME, "/noprogress")
    leaf = assert_files(w.here, PART, {NAME})
    assert leaf.serial_number != first
    assert not [p.name for p in w.here.iterdir() if p.name.startswith(TEMP_PREFIX)]
