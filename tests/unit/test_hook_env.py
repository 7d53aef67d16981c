"""A hook (uacme's -h program) run while the image answers a CGI request: the request's
variables stay behind (issue 10 item 3), and a hook past its timeout ends with what it started."""
from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from wucme.uacme.hook import hook_run

CGI = {"GATEWAY_INTERFACE": "CGI/1.1", "REQUEST_METHOD": "POST", "SCRIPT_NAME": "/cgi-bin/wucme",
       "PATH_INFO": "/admin/check/load", "QUERY_STRING": "", "HTTP_AUTHORIZATION": "Basic eDp5",
       "REMOTE_USER": "admin", "SERVER_NAME": "www.example.org", "HTTPS": "on",
       "CONTENT_LENGTH": "40", "HTTP_PROXY": "http://evil.example:3128"}


def test_hook_gets_no_cgi_variables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in CGI.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("https_proxy", "http://proxy.example:3128")  # the operator's, not the request's
    hook = tmp_path / "hook.sh"
    hook.write_text(f"#!/bin/sh\nenv > {tmp_path}/env\n")
    hook.chmod(0o755)
    assert hook_run(str(hook), "begin", "http-01", "www.example.org", "tok", "tok.auth") == 0
    seen = dict(line.split("=", 1) for line in (tmp_path / "env").read_text().splitlines() if "=" in line)
    assert not set(CGI) & set(seen), sorted(set(CGI) & set(seen))
    assert seen["UACME_METHOD"] == "begin" and seen["https_proxy"] == "http://proxy.example:3128"


def test_hook_past_its_timeout_ends_with_what_it_started(tmp_path: Path) -> None:
    hook = tmp_path / "hook.sh"
    hook.write_text(f"#!/bin/sh\n( setsid sleep 300 & echo $! > {tmp_path}/escaped )\n"
                    f"sleep 301 & echo $! > {tmp_path}/child\nwait\n")
    hook.chmod(0o755)
    # Meanwhile another thread (a parallel authorization) starts a command that leaves an orphan
    # behind, which we adopt as well: not the hook's, it lives on.
    innocent: list[int] = []

    def other_thread() -> None:
        time.sleep(0.3)
        out = subprocess.run(["sh", "-c", "setsid sleep 303 >/dev/null 2>&1 & echo $!"],
                             capture_output=True, text=True, check=True).stdout
        innocent.append(int(out))

    t = threading.Thread(target=other_thread)
    t0 = time.monotonic()
    t.start()
    try:
        assert hook_run(str(hook), "begin", "http-01", "www.example.org", "tok", "tok.auth", timeout=1) == -1
        assert time.monotonic() - t0 < 10
        t.join()
        assert _alive(innocent[0]), "another thread's orphan was killed with the hook"
    finally:
        t.join()
        for pid in innocent:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    for name in ("escaped", "child"):
        pid = int((tmp_path / name).read_text())
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.05)
        assert not _alive(pid), name


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
