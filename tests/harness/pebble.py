"""Launch Pebble 2.4.0 and pebble-challtestsrv on loopback for tests and the demo.

Real parts, not mocks: the Debian `pebble` binaries run as child processes on free
ports.  challtestsrv serves DNS only, answering 127.0.0.1 for every name, so Pebble's
validation authority reaches whatever responder listens on `http_port` / `tls_port`.
Pebble's API certificate is signed by a test CA that can be shared by every instance
of a run (and installed in the system store once, for the real uacme, which trusts
nothing else).
"""
from __future__ import annotations

import atexit
import contextlib
import ctypes
import datetime
import fcntl
import ipaddress
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Self, Sequence

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from harness.ports import free_port

__all__ = [
    "PebbleError", "TestCA", "ChallTestSrv", "Pebble", "ManagedProcess", "ManagedServer",
    "log_tail", "wait_port", "stop_child",
    "free_port", "make_test_ca", "make_server_cert", "stable_test_ca",
    "install_system_trust", "pebble_available", "DEFAULT_CA_DIR",
]

PEBBLE = "pebble"
CHALLTESTSRV = "pebble-challtestsrv"
#: Where the run-wide test CA lives unless WUCME_TEST_CA_DIR says otherwise; a
#: stable path so the system store (for uacme) is updated once, not every run.
DEFAULT_CA_DIR = Path(tempfile.gettempdir()) / f"wucme-test-ca-{os.getuid()}"
SYSTEM_TRUST_PATH = Path("/usr/local/share/ca-certificates/wucme-test-ca.crt")
START_TIMEOUT = 15.0
STOP_GRACE = 5.0


class PebbleError(RuntimeError):
    """The test CA, Pebble or challtestsrv could not be set up or did not answer."""


def pebble_available() -> bool:
    """True when both Debian `pebble` binaries are on PATH."""
    return shutil.which(PEBBLE) is not None and shutil.which(CHALLTESTSRV) is not None


# --- the test CA ---------------------------------------------------------------

@dataclass(frozen=True)
class TestCA:
    """A CA directory: the CA pair and one server pair for localhost / 127.0.0.1."""

    __test__ = False  # not a pytest test class, despite the name

    dir: Path
    cert: Path
    key: Path
    server_cert: Path
    server_key: Path


def _write_private(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write atomically (temp file + rename) so concurrent readers never see half a key."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def make_test_ca(directory: str | os.PathLike[str], name: str = "wucme test CA") -> tuple[Path, Path]:
    """Create a self-signed P-256 CA in `directory`: returns (ca.pem, ca.key)."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} {secrets.token_hex(4)}")])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    ca_cert, ca_key = d / "ca.pem", d / "ca.key"
    _write_private(ca_key, key.private_bytes(serialization.Encoding.PEM,
                                             serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption()))
    _write_private(ca_cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return ca_cert, ca_key


def make_server_cert(directory: str | os.PathLike[str],
                     ca: tuple[str | os.PathLike[str], str | os.PathLike[str]],
                     names: Sequence[str] = ("localhost", "127.0.0.1"),
                     stem: str = "server") -> tuple[Path, Path]:
    """Issue a TLS server certificate from `ca` = (cert, key): returns (STEM.pem, STEM.key).

    Names that parse as IP addresses become iPAddress SANs, the rest dNSName SANs
    (RFC 6125: clients match an IP only against an iPAddress SAN).
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    ca_cert = x509.load_pem_x509_certificate(Path(ca[0]).read_bytes())
    ca_key = serialization.load_pem_private_key(Path(ca[1]).read_bytes(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise PebbleError(f"test CA key {ca[1]} is not an EC key")
    sans: list[x509.GeneralName] = []
    for n in names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            sans.append(x509.DNSName(n))
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=825))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = d / f"{stem}.pem", d / f"{stem}.key"
    _write_private(key_path, key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    _write_private(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return cert_path, key_path


def _ca_usable(ca: TestCA) -> bool:
    """All four files exist, the server cert is signed by this CA, and neither expires within a week."""
    try:
        ca_cert = x509.load_pem_x509_certificate(ca.cert.read_bytes())
        srv = x509.load_pem_x509_certificate(ca.server_cert.read_bytes())
        if not ca.key.exists() or not ca.server_key.exists():
            return False
        srv.verify_directly_issued_by(ca_cert)
    except (OSError, ValueError, TypeError, InvalidSignature):
        return False
    soon = _now() + datetime.timedelta(days=7)
    return ca_cert.not_valid_after_utc > soon and srv.not_valid_after_utc > soon


def stable_test_ca(directory: str | os.PathLike[str] | None = None) -> TestCA:
    """The run-wide test CA in `directory` (default WUCME_TEST_CA_DIR or DEFAULT_CA_DIR).

    Created once and reused across runs, under a file lock, because several test
    processes may start at the same moment and the system store must keep matching it.
    """
    d = Path(directory or os.environ.get("WUCME_TEST_CA_DIR") or DEFAULT_CA_DIR)
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    ca = TestCA(d, d / "ca.pem", d / "ca.key", d / "server.pem", d / "server.key")
    with open(d / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not _ca_usable(ca):
                make_test_ca(d)
                make_server_cert(d, (ca.cert, ca.key))
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return ca


def install_system_trust(ca_cert_path: str | os.PathLike[str],
                         target: Path = SYSTEM_TRUST_PATH) -> bool:
    """Add the test CA to the system store (for uacme's libcurl-gnutls); needs root.

    Returns True when the store already held it or now holds it; False when not
    root or `update-ca-certificates` is missing (callers skip what needs it).
    """
    if os.geteuid() != 0 or shutil.which("update-ca-certificates") is None:
        return False
    pem = Path(ca_cert_path).read_bytes()
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(Path(tempfile.gettempdir()) / "wucme-system-trust.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            bundle = Path("/etc/ssl/certs/ca-certificates.crt")
            current = target.read_bytes() if target.exists() else b""
            installed = bundle.exists() and pem.strip() in bundle.read_bytes()
            if current == pem and installed:
                return True
            _write_private(target, pem, 0o644)
            r = subprocess.run(["update-ca-certificates"], capture_output=True, text=True,
                               timeout=120)
            if r.returncode != 0:
                raise PebbleError(f"update-ca-certificates failed: {r.stderr.strip()}")
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return True


# --- child processes -------------------------------------------------------------

_PR_SET_PDEATHSIG = 1
_live: "weakref.WeakSet[ManagedProcess]" = weakref.WeakSet()


def _die_with_parent() -> None:  # runs in the child between fork and exec
    """Ask Linux to SIGTERM the child if the test process dies without cleaning up."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def stop_child(proc: subprocess.Popen[Any], grace: float = STOP_GRACE) -> None:
    """End a child the test started itself: SIGTERM, SIGKILL after `grace` seconds, then close
    the pipes it was given (pytest's filterwarnings=error turns a leaked pipe into a failure)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream:
            stream.close()


class ManagedProcess:
    """A child in its own process group, logged to a file, always reaped by stop().

    The group is signalled (not just the child) because ualpn forks workers.
    """

    def __init__(self, argv: Sequence[str], log_path: Path, env: dict[str, str] | None = None,
                 cwd: Path | None = None) -> None:
        self.argv = list(argv)
        self.log_path = log_path
        self._log = open(log_path, "ab")
        # PR_SET_PDEATHSIG follows the creating *thread*; only use it from the main thread.
        pre = _die_with_parent if threading.current_thread() is threading.main_thread() else None
        try:
            self.proc = subprocess.Popen(  # noqa: S603 - fixed argv of a test binary
                self.argv, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
                env=env, cwd=cwd, start_new_session=True, preexec_fn=pre)
        except BaseException:
            self._log.close()
            raise
        _live.add(self)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def running(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the log, for error messages."""
        return log_tail(self.log_path, lines)

    def stop(self, grace: float = STOP_GRACE) -> None:
        """SIGTERM the group, SIGKILL it after `grace` seconds; idempotent."""
        try:
            if self.proc.poll() is None:
                self._signal(signal.SIGTERM)
                try:
                    self.proc.wait(grace)
                except subprocess.TimeoutExpired:
                    self._signal(signal.SIGKILL)
                    self.proc.wait(grace)
            # Workers of a group leader that exited may linger: end them too.
            self._signal(signal.SIGKILL)
        finally:
            self._log.close()
            _live.discard(self)

    def _signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)


@atexit.register
def _stop_all() -> None:
    for p in list(_live):
        with contextlib.suppress(Exception):
            p.stop(grace=1.0)


def _clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The parent's environment without stray PEBBLE_* knobs, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PEBBLE_")}
    env.update(extra or {})
    return env


def log_tail(path: Path, lines: int = 30) -> str:
    """The last `lines` lines of the log file `path` ("" if unreadable), for error messages."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def wait_port(port: int, proc: ManagedProcess, what: str, deadline: float, *,
              error: type[Exception] = PebbleError, log: Path | None = None) -> None:
    """Return once 127.0.0.1:`port` accepts a connection.

    Raises `error` with the tail of `log` (default: the child's own output) if the
    child exits first or the monotonic `deadline` passes.
    """
    def tail() -> str:
        return log_tail(log or proc.log_path)

    while True:
        if not proc.running():
            raise error(f"{what} exited with status {proc.proc.returncode}:\n{tail()}")
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        if time.monotonic() > deadline:
            raise error(f"{what} did not listen on 127.0.0.1:{port} in time:\n{tail()}")
        time.sleep(0.02)


class ManagedServer:
    """A server the harness runs as a ManagedProcess (`process`): its start/stop life cycle.

    start() is a no-op while the child runs; if starting fails in any way, it stops
    what was started before re-raising.  stop() is idempotent, safe after a failed
    start, and always reaches _cleanup(), where a subclass releases what else it holds.
    """

    process: ManagedProcess | None

    def start(self, timeout: float = START_TIMEOUT) -> Self:
        """Start the server (see _start()) unless it runs already."""
        if self.running():
            return self
        try:
            self._start(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self, timeout: float) -> None:
        """Start the child; return once it serves, within `timeout` seconds."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop the child's whole process group (workers, helpers too), then _cleanup()."""
        try:
            if self.process:
                self.process.stop()
        finally:
            self._cleanup()

    def _cleanup(self) -> None:
        """Release what the server holds besides its process (here: nothing)."""

    def running(self) -> bool:
        return bool(self.process and self.process.running())

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- pebble-challtestsrv as DNS ------------------------------------------------------

def dns_query_a(server: tuple[str, int], name: str, timeout: float = 2.0) -> list[str]:
    """Ask `server` for the A records of `name` over UDP; returns the addresses."""
    qid = secrets.randbits(16)
    qname = b"".join(bytes([len(p)]) + p.encode("ascii") for p in name.rstrip(".").split(".")) + b"\0"
    query = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + qname + struct.pack("!HH", 1, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(query, server)
        data, _ = s.recvfrom(4096)
    rid, _flags, qd, an, _ns, _ar = struct.unpack("!HHHHHH", data[:12])
    if rid != qid:
        raise PebbleError("DNS reply id mismatch")
    pos = 12
    for _ in range(qd):
        pos = _skip_name(data, pos) + 4
    out = []
    for _ in range(an):
        pos = _skip_name(data, pos)
        rtype, _cls, _ttl, rdlen = struct.unpack("!HHIH", data[pos:pos + 10])
        pos += 10
        if rtype == 1 and rdlen == 4:
            out.append(socket.inet_ntoa(data[pos:pos + 4]))
        pos += rdlen
    return out


def _skip_name(data: bytes, pos: int) -> int:
    while True:
        n = data[pos]
        if n == 0:
            return pos + 1
        if n & 0xC0 == 0xC0:
            return pos + 2
        pos += n + 1


class ChallTestSrv(ManagedServer):
    """pebble-challtestsrv serving DNS only: every name is *ipv4* (default 127.0.0.1) and, when
    given, *ipv6* (AAAA); `ipv4=""` with `ipv6="::1"` makes the CA's VA connect over IPv6."""

    def __init__(self, workdir: str | os.PathLike[str], dns_port: int | None = None,
                 management_port: int | None = None, *, ipv4: str = "127.0.0.1", ipv6: str = "") -> None:
        self.ipv4, self.ipv6 = ipv4, ipv6
        self.workdir = Path(workdir)
        self.dns_port = dns_port or free_port(kind=socket.SOCK_DGRAM)
        self.management_port = management_port or free_port()
        self.log_path = self.workdir / "challtestsrv.log"
        self.process: ManagedProcess | None = None

    @property
    def dns_address(self) -> str:
        return f"127.0.0.1:{self.dns_port}"

    @property
    def management_url(self) -> str:
        return f"http://127.0.0.1:{self.management_port}"

    def _start(self, timeout: float) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        argv = [CHALLTESTSRV, "-dns01", self.dns_address, "-http01", "", "-https01", "",
                "-tlsalpn01", "", "-management", f"127.0.0.1:{self.management_port}",
                "-defaultIPv4", self.ipv4, "-defaultIPv6", self.ipv6]
        self.process = ManagedProcess(argv, self.log_path, env=_clean_env(), cwd=self.workdir)
        deadline = time.monotonic() + timeout
        wait_port(self.management_port, self.process, "pebble-challtestsrv", deadline)
        self._wait_dns(deadline)

    def _wait_dns(self, deadline: float) -> None:
        assert self.process is not None
        while True:
            try:
                if dns_query_a(("127.0.0.1", self.dns_port), "ready.wucme.test", timeout=0.3) or not self.ipv4:
                    return  # (with no A records, any answer at all says it is up)
            except OSError:
                pass
            if not self.process.running() or time.monotonic() > deadline:
                raise PebbleError(f"pebble-challtestsrv DNS on {self.dns_address} did not answer:\n"
                                  f"{self.process.log_tail()}")
            time.sleep(0.05)

    def resolve(self, name: str) -> list[str]:
        """The A records challtestsrv gives for `name` (what Pebble's VA will dial)."""
        return dns_query_a(("127.0.0.1", self.dns_port), name)


# --- Pebble --------------------------------------------------------------------------

class Pebble(ManagedServer):
    """Pebble 2.4.0 on 127.0.0.1 with its own challtestsrv; see DESIGN.md, Test environment.

    `http_port` / `tls_port` are where Pebble's VA connects for http-01 and
    tls-alpn-01 (where the client's responders must listen).  Knobs map onto the
    PEBBLE_* variables and config keys of 2.4.0 (reliability.md, section 1).
    """

    def __init__(self, workdir: str | os.PathLike[str] | None = None, *,
                 http_port: int | None = None, tls_port: int | None = None,
                 nonce_reject: int = 5, va_nosleep: bool = True, alternate_roots: int = 0,
                 authz_reuse: int = 0, validity: int | None = None, strict: bool = True,
                 eab_keys: dict[str, str] | None = None, eab_required: bool | None = None,
                 extra_env: dict[str, str] | None = None, extra_config: dict[str, Any] | None = None,
                 ca: TestCA | str | os.PathLike[str] | None = None,
                 dns_ipv4: str = "127.0.0.1", dns_ipv6: str = "") -> None:
        #: The addresses challtestsrv gives every name (ChallTestSrv): where the VA connects.
        self.dns_ipv4, self.dns_ipv6 = dns_ipv4, dns_ipv6
        self._own_workdir = workdir is None
        self.workdir = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="wucme-pebble-"))
        self.http_port = http_port or free_port()
        self.tls_port = tls_port or free_port()
        self.nonce_reject = nonce_reject
        self.va_nosleep = va_nosleep
        self.alternate_roots = alternate_roots
        self.authz_reuse = authz_reuse
        self.validity = validity
        self.strict = strict
        self.eab_keys = dict(eab_keys or {})
        self.eab_required = bool(self.eab_keys) if eab_required is None else eab_required
        self.extra_env = dict(extra_env or {})
        self.extra_config = dict(extra_config or {})
        self.ca = ca if isinstance(ca, TestCA) else stable_test_ca(ca)
        self.port = 0
        self.management_port = 0
        self.log_path = self.workdir / "pebble.log"
        self.config_path = self.workdir / "pebble-config.json"
        self.challtestsrv: ChallTestSrv | None = None
        self.process: ManagedProcess | None = None
        self._ssl = ssl.create_default_context(cafile=str(self.ca.cert))

    # The public view.
    @property
    def ca_bundle(self) -> str:
        """PEM file of the test CA that signed Pebble's API certificate."""
        return str(self.ca.cert)

    @property
    def directory_url(self) -> str:
        return f"https://localhost:{self.port}/dir"

    @property
    def base_url(self) -> str:
        return f"https://localhost:{self.port}"

    @property
    def management_url(self) -> str:
        return f"https://localhost:{self.management_port}"

    @property
    def dns_address(self) -> str:
        assert self.challtestsrv is not None
        return self.challtestsrv.dns_address

    def env(self) -> dict[str, str]:
        """The PEBBLE_* variables this instance runs with."""
        env = {
            "PEBBLE_WFE_NONCEREJECT": str(self.nonce_reject),
            "PEBBLE_ALTERNATE_ROOTS": str(self.alternate_roots),
            "PEBBLE_AUTHZREUSE": str(self.authz_reuse),
        }
        if self.va_nosleep:
            env["PEBBLE_VA_NOSLEEP"] = "1"
        env.update(self.extra_env)
        return env

    def config(self) -> dict[str, Any]:
        """The JSON config of this instance (after start() has chosen the ports)."""
        cfg: dict[str, Any] = {
            "listenAddress": f"127.0.0.1:{self.port}",
            "managementListenAddress": f"127.0.0.1:{self.management_port}",
            "certificate": str(self.ca.server_cert),
            "privateKey": str(self.ca.server_key),
            "httpPort": self.http_port,
            "tlsPort": self.tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": self.eab_required,
        }
        if self.eab_keys:
            cfg["externalAccountMACKeys"] = self.eab_keys
        if self.validity is not None:
            cfg["certificateValidityPeriod"] = int(self.validity)
        cfg.update(self.extra_config)
        return {"pebble": cfg}

    def _start(self, timeout: float) -> None:
        """Start challtestsrv and Pebble; return once /dir answers over verified TLS."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        for attempt in range(3):  # its two free ports may be taken meanwhile, too
            cts = self.challtestsrv = ChallTestSrv(self.workdir, ipv4=self.dns_ipv4, ipv6=self.dns_ipv6)
            try:
                cts.start(timeout)
                break
            except PebbleError:
                if attempt == 2 or "address already in use" not in \
                        cts.log_path.read_text(errors="replace").lower():
                    raise
        # A free port can be taken between choosing and binding: retry with new ones.
        for attempt in range(3):
            self.port, self.management_port = free_port(), free_port()
            self.config_path.write_text(json.dumps(self.config(), indent=2))
            argv = [PEBBLE, "-config", str(self.config_path),
                    "-dnsserver", cts.dns_address]
            if self.strict:
                argv.append("-strict")
            self.process = ManagedProcess(argv, self.log_path, env=_clean_env(self.env()),
                                          cwd=self.workdir)
            try:
                self._wait_ready(time.monotonic() + timeout)
                return
            except PebbleError:
                if self.process.running() or attempt == 2 or "address already in use" not in \
                        self.process.log_tail().lower():
                    raise
                self.process.stop()
        raise PebbleError("unreachable")  # pragma: no cover

    def _wait_ready(self, deadline: float) -> None:
        """Poll /dir and the management API (both must serve before tests may run)."""
        assert self.process is not None
        last = ""
        for url in (self.directory_url, f"{self.management_url}/roots/0"):
            while True:
                if not self.process.running():
                    raise PebbleError(f"pebble exited with status {self.process.proc.returncode}:\n"
                                      f"{self.process.log_tail()}")
                try:
                    with urllib.request.urlopen(url, timeout=1.0, context=self._ssl) as r:
                        if r.status == 200:
                            break
                except (OSError, urllib.error.URLError) as e:
                    last = str(e)
                if time.monotonic() > deadline:
                    raise PebbleError(f"pebble did not answer {url} in time ({last}):\n"
                                      f"{self.process.log_tail()}")
                time.sleep(0.05)

    def _cleanup(self) -> None:
        """After Pebble, its challtestsrv; then the workdir if this instance made it."""
        if self.challtestsrv:
            self.challtestsrv.stop()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        return self.process.log_tail(lines) if self.process else ""

    # The management API (served over TLS with the same certificate).
    def _management_get(self, path: str) -> bytes:
        with urllib.request.urlopen(f"{self.management_url}{path}", timeout=5.0,
                                    context=self._ssl) as r:
            return bytes(r.read())

    def roots(self, n: int = 0) -> str:
        """PEM of root `n` (0 is the default chain's root; 1.. the alternates)."""
        return self._management_get(f"/roots/{n}").decode()

    def intermediates(self, n: int = 0) -> str:
        """PEM of the intermediate of chain `n`."""
        return self._management_get(f"/intermediates/{n}").decode()

    def cert_status(self, serial_hex: str) -> dict[str, Any]:
        """Pebble's view of a certificate: {"Status": "Valid"|"Revoked", "Serial", ...}.

        Raises KeyError when Pebble does not know the serial (HTTP 404).
        """
        try:
            data = self._management_get(f"/cert-status-by-serial/{serial_hex.lower()}")
        except urllib.error.HTTPError as e:
            if e.code == 404:
                raise KeyError(serial_hex) from None
            raise
        result: dict[str, Any] = json.loads(data)
        return result

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts the test CA (for stdlib HTTPS to Pebble)."""
        return self._ssl


@contextlib.contextmanager
def running_pebble(**kw: Any) -> Iterator[Pebble]:
    """`with running_pebble(validity=600) as p:` - a started Pebble, always stopped."""
    p = Pebble(**kw)
    p.start()
    try:
        yield p
    finally:
        p.stop()
