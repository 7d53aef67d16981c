"""The two tools of the parity tests, the real uacme 1.7.4 and `wucme --uacme`, side by side.

A `Tool` runs one command line against one Pebble in its own confdir; the
`tools` fixture (tests/pebble/conftest.py) gives one of each.  uacme trusts only
the system store, so these tests need root (the `system_trust` fixture).
"""
from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest
from cryptography import x509

from harness.ports import port_holders

UACME = "/usr/bin/uacme"
WUCME = [sys.executable, "-m", "wucme", "--uacme"]

#: Marks for a module of parity tests.
PARITY = [
    pytest.mark.pebble,
    pytest.mark.uacme,
    pytest.mark.skipif(not os.access(UACME, os.X_OK),
                       reason="uacme not installed (Debian package uacme)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="uacme trusts only the system store: needs root"),
]
BAD_NONCE = "urn:ietf:params:acme:error:badNonce"


@dataclass
class Tool:
    """One ACME client binary (uacme or `wucme --uacme`) bound to a confdir and a CA."""

    name: str
    argv0: list[str]
    confdir: Path
    directory_url: str
    env: dict[str, str]
    #: Options put before the command's own: verbosity, confdir, directory.
    verbose: bool = field(default=True)

    def argv(self, *args: str, confdir: Path | None = None, directory_url: str | None = None,
             verbose: bool | None = None) -> list[str]:
        v = self.verbose if verbose is None else verbose
        return [*self.argv0, *(["-v"] if v else []), "-c", str(confdir or self.confdir),
                "-a", directory_url or self.directory_url, *args]

    def __call__(self, *args: str, confdir: Path | None = None,
                 directory_url: str | None = None, verbose: bool | None = None,
                 env: dict[str, str] | None = None, input: str = "",
                 timeout: float = 120) -> subprocess.CompletedProcess[str]:
        cmd = self.argv(*args, confdir=confdir, directory_url=directory_url, verbose=verbose)
        full_env = {**self.env, **(env or {})}
        for attempt in range(2):
            if attempt and full_env.get("HOOK_LOG"):  # the hook calls of the run that counts
                Path(full_env["HOOK_LOG"]).unlink(missing_ok=True)
            r = subprocess.run(cmd, env=full_env, input=input,
                               capture_output=True, text=True, timeout=timeout,
                               umask=0o022)  # EXPECTED_LAYOUT's umask
            # uacme 1.7.4 gives up after three badNonce in a row (1 request in 8000 at
            # Pebble's 5%); that is uacme's limit, not what these tests compare: run again.
            if not (self.name == "uacme" and r.returncode == 2 and BAD_NONCE in r.stderr):
                break
        return r

    def bare(self, *args: str, env: dict[str, str] | None = None, input: str = "",
             cwd: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """The command line exactly as given (no -v, -c or -a added)."""
        return subprocess.run([*self.argv0, *args], env={**self.env, **(env or {})}, input=input,
                              capture_output=True, text=True, timeout=timeout, umask=0o022,
                              cwd=cwd)


def expect(r: subprocess.CompletedProcess[str], code: int, tool: str) -> None:
    assert r.returncode == code, (f"{tool}: {' '.join(r.args[1:])}: exit {r.returncode}, "
                                  f"wanted {code}\n{r.stderr[-3000:]}{sockets_behind(r.stderr)}")


def sockets_behind(stderr: str) -> str:
    """Who held the ports a failed validation went to (`ss`), for a CA's bare "EOF": the
    tool is then not at fault, and this names the process that answered instead."""
    ports = sorted(set(re.findall(r"Get \"https?://[^/:\"]+:(\d+)/", stderr)))
    return "".join(f"\nsockets on port {p}:\n{port_holders(int(p))}" for p in ports)


def layout(confdir: Path) -> dict[str, int]:
    """Every file and directory under `confdir` with its st_mode (file type included)."""
    out = {".": confdir.stat().st_mode}
    for p in confdir.rglob("*"):
        out[str(p.relative_to(confdir))] = p.lstat().st_mode
    return out


def epoch_free(lay: dict[str, int]) -> dict[str, int]:
    """`layout` with backup names cert-EPOCH.pem made comparable across tools."""
    return {re.sub(r"cert-\d+\.pem$", "cert-EPOCH.pem", k): v for k, v in lay.items()}


def serial(cert_pem: Path) -> str:
    return format(x509.load_pem_x509_certificates(cert_pem.read_bytes())[0].serial_number, "x")


def uacme_has_check() -> bool:
    """`check` came after 1.7.4; the Debian build's usage text says whether it has it."""
    r = subprocess.run([UACME, "-?"], capture_output=True, text=True, timeout=10)
    return "check IDENTIFIER" in r.stdout + r.stderr


def new_accounts(*tools: Tool) -> None:
    for t in tools:
        expect(t("-y", "new", f"{t.name}@example.org"), 0, t.name)


Answers = list[tuple[str, str]] | Callable[[str], str | None]


def run_pty(argv: list[str], env: dict[str, str], answers: Answers | None = None,
            cwd: Path | None = None, timeout: float = 120) -> tuple[int, str]:
    """Run `argv` on a new pseudo-terminal (its controlling terminal, stdin, stdout and stderr),
    as an operator at a terminal would.  `answers` are (regex, text): once the output since
    the last answer matches regex, text is typed; or a function given the output since the
    last answer, which returns what to type (None: nothing yet).
    Returns (exit status, everything shown)."""
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            if cwd:
                os.chdir(cwd)
            os.umask(0o022)
            os.execve(argv[0], argv, env)
        finally:
            os._exit(127)
    steps = [] if callable(answers) else list(answers or [])
    out = b""
    mark = 0
    deadline = time.monotonic() + timeout
    try:
        while True:
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                raise AssertionError(f"{argv[0]} still running after {timeout} s:\n{out.decode()}")
            ready, _, _ = select.select([fd], [], [], 0.2)
            if not ready:
                continue
            try:
                data = os.read(fd, 4096)
            except OSError:  # EIO: every holder of the terminal has closed it
                break
            if not data:
                break
            out += data
            if callable(answers):
                typed = answers(out[mark:].decode(errors="replace"))
                if typed is not None:
                    mark = len(out)
                    os.write(fd, typed.encode())
            while steps:
                m = re.search(steps[0][0], out[mark:].decode(errors="replace"))
                if not m:
                    break
                mark = len(out)
                os.write(fd, steps.pop(0)[1].encode())
    finally:
        os.close(fd)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), out.decode(errors="replace")


#: A uacme hook that records how it was run (one JSON line per call in $HOOK_LOG) and
#: answers http-01 through the webroot $UACME_CHALLENGE_PATH; it declines other types
#: and every challenge of the names in $HOOK_DECLINE (comma-separated), and refuses
#: (exit 1) a http-01 begin whose ident is in $HOOK_BREAK (it writes a wrong answer).
#: $HOOK_ASK: on a http-01 begin, ask on /dev/tty and record the line typed.  $HOOK_SLEEP: seconds
#: to sleep in each call.  Overlapping calls are recorded ("overlap": true).
RECORDER = r'''#!{python}
import json, os, sys, time
method, type_, ident, token, auth = sys.argv[1:6]
log = os.environ["HOOK_LOG"]
busy = log + ".busy"
try:
    os.close(os.open(busy, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    overlap = False
except FileExistsError:
    overlap = True
try:
    tty = open("/dev/tty", "r+b", buffering=0)
except OSError:
    tty = None
rec = dict(name=os.environ.get("HOOK_NAME", ""), argv0=sys.argv[0], method=method, type=type_,
           ident=ident, token_in_auth=auth.startswith(token) or type_ != "http-01",
           env={{k: v.replace(auth, "AUTH").replace(token, "TOKEN")
                for k, v in os.environ.items()}},
           stdin_tty=os.isatty(0), dev_tty=tty is not None,
           same_session=os.getsid(0) == os.getsid(os.getppid()),
           same_pgrp=os.getpgrp() == os.getpgid(os.getppid()), overlap=overlap)
if tty is not None and os.environ.get("HOOK_ASK") and method == "begin" and type_ == "http-01":
    tty.write(f"hook: set the record for {{ident}}, then press Enter\n".encode())
    rec["typed"] = tty.readline().decode().strip()
time.sleep(float(os.environ.get("HOOK_SLEEP", "0")))
with open(log, "a") as f:
    f.write(json.dumps(rec) + "\n")
if not overlap:
    os.unlink(busy)
path = os.path.join(os.environ["UACME_CHALLENGE_PATH"], token)
if ident in os.environ.get("HOOK_DECLINE", "").split(",") or type_ != "http-01":
    sys.exit(1)
if method == "begin":
    with open(path, "w") as f:
        f.write("wrong" if ident in os.environ.get("HOOK_BREAK", "").split(",") else auth)
elif os.path.exists(path):
    os.unlink(path)
'''


def write_recorder(path: Path, name: str = "") -> str:
    """The recording hook at `path` (executable); returns the path as a string."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(RECORDER.format(python=sys.executable))
    path.chmod(0o755)
    return str(path)


def hook_calls(log: Path) -> list[dict[str, Any]]:
    """The recorder's calls, in order."""
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]


def calls(log: Path, every_type: bool = False) -> list[tuple[str, str, str]]:
    """(method, type, ident) of each call: what uacme's hook sequence is compared on.

    Pebble lists an authorization's challenges in a random order, so the recorder
    declines a varying number of dns-01 and tls-alpn-01 begins before it sees http-01:
    only http-01 calls are kept, or with `every_type` every call, the begins offered
    one after another for one name sorted by type."""
    out: list[tuple[str, str, str]] = []
    group: list[tuple[str, str, str]] = []
    for c in hook_calls(log):
        call = (c["method"], c["type"], c["ident"])
        if not every_type:
            if call[1] == "http-01":
                out.append(call)
            continue
        if group and (call[0] != "begin" or call[2] != group[0][2]):
            out += sorted(group)
            group = []
        if call[0] == "begin":
            group.append(call)
        else:
            out.append(call)
    return out + sorted(group)


def canon(seq: list[tuple[str, str, str]], keep: tuple[str, ...] = ()) -> list[tuple[str, str, str]]:
    """`seq` with each name but those in `keep` replaced by name1, name2, ... in the order
    they first appear: Pebble lists an order's authorizations in a random order too."""
    names: dict[str, str] = {}
    out = []
    for method, type_, ident in seq:
        if ident not in keep:
            ident = names.setdefault(ident, f"name{len(names) + 1}")
        out.append((method, type_, ident))
    return out
