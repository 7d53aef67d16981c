"""The load action after issue and renewals: run WUCME_LOAD, then confirm the servers serve the
new certificates.  Used by `issue`, `manage` and the agent alike.

WUCME_LOAD is split as a shell would split it (shlex) and run directly, never through a shell,
in a process group of its own, with stdin from /dev/null and its output in a temporary file
(not a pipe: a server it starts or a `cmd &` it leaves must not keep us waiting for end of
file), and without the CGI request's variables when the admin load page runs it (else a
`wucme @load.com` would answer as the CGI script and load again).  After WUCME_LOAD_TIMEOUT
seconds (default 60) the command is killed with every process it started: its group and
session, its descendants, and the orphans this process adopted as their subreaper (a command
that forks and calls setsid leaves neither).  The agent's lock is close-on-exec, so nothing the
command leaves behind holds it.

WUCME_SERVICES lists what to check afterwards, comma-separated: `host:port`, `name@host:port`
(SNI `name` sent to `host`), `[v6addr]:port`.  Each gets a TLS handshake with SNI; the leaf
certificate it presents must be the repository's current certificate for that name (same
SHA-256 fingerprint).  A server reloads asynchronously (nginx's new workers start after the
reload command returns, and an old one may still answer a connection or two), so the check
waits for three handshakes in a row showing the new certificate, retrying for
WUCME_LOAD_SETTLE seconds (default 10) before a mismatch counts as a failure.
"""
from __future__ import annotations

import hashlib
import shlex
import socket
import ssl
import subprocess
import tempfile
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from wucme import settings
from wucme.crypto import serial_hex
from wucme.settings import Service, ServiceSpecError
from wucme.vms.subproc import TREE_VARIABLE, become_subreaper, children, clean_environ, kill_tree, tree_mark

if TYPE_CHECKING:
    from wucme.repository import Repository

HANDSHAKE_TIMEOUT = 5.0
#: Handshakes in a row that must show the new certificate (old workers wind down after a reload).
STABLE = 3


@dataclass
class StepResult:
    """The outcome of one step of the load action (the command, or one service's check)."""

    ok: bool
    text: str
    hosts: tuple[str, ...] = ()


# --- the command ---------------------------------------------------------------------------------

def run_load_command(command: str | None = None, timeout: float | None = None) -> StepResult | None:
    """Run WUCME_LOAD (or `command`); None when there is none."""
    cmd = settings.load_command() if command is None else command
    if not cmd or not cmd.strip():
        return None
    timeout = settings.load_timeout() if timeout is None else timeout
    try:
        argv = shlex.split(cmd)
    except ValueError as e:
        return StepResult(False, f"WUCME_LOAD {cmd!r} does not parse: {e}")
    subreaper = become_subreaper()
    before = children()
    mark = tree_mark()
    with tempfile.TemporaryFile() as out:
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True, close_fds=True,
                                    env={**clean_environ(), TREE_VARIABLE: mark})
        except FileNotFoundError:
            return StepResult(False, f"WUCME_LOAD command {argv[0]} not found")
        except OSError as e:
            return StepResult(False, f"WUCME_LOAD {cmd!r} could not start: {e.strerror or e}")
        try:
            status = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            kill_tree(proc.pid, before if subreaper else None, mark)
            proc.wait()
            return StepResult(False, f"WUCME_LOAD {cmd!r} did not finish in {timeout:g} s: "
                                     "it was killed with every process it started")
        except BaseException:
            kill_tree(proc.pid, before if subreaper else None, mark)  # the agent is stopping
            proc.wait()
            raise
        out.seek(0)
        text = out.read(1 << 16).decode("utf-8", "replace").strip()
    if status != 0:
        how = f"signal {-status}" if status < 0 else f"status {status}"
        return StepResult(False, f"WUCME_LOAD {cmd!r} exited with {how}" + (f": {text[-500:]}" if text else ""))
    return StepResult(True, f"certificates loaded by {cmd!r}")


# --- the handshake check -------------------------------------------------------------------------

def served_certificate(service: Service, timeout: float = HANDSHAKE_TIMEOUT) -> bytes:
    """The DER leaf certificate `service` presents for its SNI name (no verification: we compare
    it with our own file, which is stronger than any chain check)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection((service.host, service.port), timeout=timeout) as raw:
        with ctx.wrap_socket(raw, server_hostname=service.name) as tls:
            der = tls.getpeercert(binary_form=True)
    if not der:
        raise ssl.SSLError("no certificate presented")
    return der


def expected_certificate(repo: Repository, name: str) -> tuple[bytes, str] | None:
    """(DER, serial in hex) of the repository's certificate naming `name`, or None."""
    for m in repo.managed():
        leaf = m.info
        if leaf is not None and name in (h.lower() for h in m.hosts):
            return leaf.der, serial_hex(leaf.serial_number)
    return None


def _serial(der: bytes) -> str:
    from cryptography import x509

    try:
        return serial_hex(x509.load_der_x509_certificate(der).serial_number)
    except (ValueError, x509.InvalidVersion):
        return "?"


def check_service(repo: Repository, service: Service, settle: float) -> StepResult:
    """Handshake with `service` until it serves the repository's certificate, or `settle` s pass."""
    deadline = time.monotonic() + settle
    matches = 0
    while True:
        want = expected_certificate(repo, service.name)
        if want is None:
            return StepResult(False, f"{service}: no certificate for {service.name} in {repo.path}",
                              (service.name,))
        try:
            got = served_certificate(service)
            if hashlib.sha256(got).digest() == hashlib.sha256(want[0]).digest():
                matches += 1
                if matches >= STABLE:
                    return StepResult(True, f"{service} serves the current certificate (serial {want[1]})",
                                      (service.name,))
                time.sleep(0.1)
                continue
            matches = 0
            why = f"{service} serves serial {_serial(got)}, not the current {want[1]}"
        except (OSError, ssl.SSLError) as e:
            matches = 0
            why = f"{service}: TLS handshake failed: {e}"
        if time.monotonic() >= deadline:
            return StepResult(False, why, (service.name,))
        time.sleep(0.2)


def load_action(repo: Repository) -> list[StepResult]:
    """The command, then each service of WUCME_SERVICES; an empty list when neither is defined."""
    results: list[StepResult] = []
    cmd = run_load_command()
    if cmd is not None:
        results.append(cmd)
    try:
        services = settings.services()
    except ServiceSpecError as e:
        return results + [StepResult(False, e.text)]
    settle = settings.settle_time()
    for s in services:
        results.append(check_service(repo, s, settle))
    return results
