"""The two tools of the parity tests, the real uacme 1.7.4 and `wucme --uacme`, side by side.

A `Tool` runs one command line against one Pebble in its own confdir; the
`tools` fixture (tests/pebble/conftest.py) gives one of each.  uacme trusts only
the system store, so these tests need root (the `system_trust` fixture).
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509

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
        for _ in range(2):
            r = subprocess.run(cmd, env={**self.env, **(env or {})}, input=input,
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
                                  f"wanted {code}\n{r.stderr[-3000:]}")


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
