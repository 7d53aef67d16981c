"""The load action's command runner and the WUCME_SERVICES parser (real processes, no server)."""
from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from wucme.load import run_load_command
from wucme.settings import Service, ServiceSpecError, parse_services

from .support import alive, wait_for


def test_parse_services() -> None:
    assert parse_services("www.example.org:443, name.example@127.0.0.1:8443 ,x@[::1]:9") == [
        Service("www.example.org", "www.example.org", 443), Service("name.example", "127.0.0.1", 8443),
        Service("x", "::1", 9)]
    assert parse_services("") == [] and parse_services(None) == []
    for bad in ("127.0.0.1:443", "www.example.org", "a@b:0", "a@b:x", "a@[::1:5"):
        with pytest.raises(ServiceSpecError):
            parse_services(bad)


def test_command_runs_without_a_shell_and_reports_status(tmp_path: Path) -> None:
    marker = tmp_path / "ran; echo injected"
    r = run_load_command(f"{sys.executable} -c \"import sys; open(sys.argv[1], 'w').write('ok')\" '{marker}'")
    assert r is not None and r.ok and marker.read_text() == "ok"
    r = run_load_command(f"{sys.executable} -c \"print('boom'); raise SystemExit(3)\"")
    assert r is not None and not r.ok and "status 3: boom" in r.text
    r = run_load_command("/nonexistent/reload")
    assert r is not None and not r.ok and "not found" in r.text
    assert run_load_command("") is None
    r = run_load_command("echo 'unbalanced")
    assert r is not None and not r.ok and "does not parse" in r.text


def test_a_background_child_does_not_hold_up_the_load(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    t0 = time.monotonic()
    r = run_load_command(f"sh -c 'sleep 1000 & echo $! > {pidfile}; echo started'", timeout=30)
    try:
        assert r is not None and r.ok and time.monotonic() - t0 < 5
    finally:
        os.kill(int(pidfile.read_text()), signal.SIGKILL)


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    t0 = time.monotonic()
    r = run_load_command(f"sh -c 'sleep 1000 & echo $! > {pidfile}; sleep 1000'", timeout=0.5)
    assert r is not None and not r.ok and "did not finish in 0.5 s" in r.text
    assert time.monotonic() - t0 < 5
    child = int(pidfile.read_text())
    wait_for(lambda: not alive(child), 5, "the backgrounded child was killed with its group")


def test_timeout_logical(monkeypatch: pytest.MonkeyPatch) -> None:
    from wucme.settings import DEFAULT_LOAD_TIMEOUT, load_timeout

    assert load_timeout() == DEFAULT_LOAD_TIMEOUT == 60
    monkeypatch.setenv("WUCME_LOAD_TIMEOUT", "0.2")
    r = run_load_command("sleep 5")
    assert r is not None and "did not finish in 0.2 s" in r.text
    monkeypatch.setenv("WUCME_LOAD_TIMEOUT", "soon")
    assert load_timeout() == DEFAULT_LOAD_TIMEOUT
