"""What the shared-renewal tests and their benchmark share: a repository of due certificates made
in a blink, nodes running the real agent on it, and a count of what reached the CA.

The due certificates are not Pebble's: one local EC intermediate signs them, 90-day leaves with
ten days left (under the third of their lifetime at which wucme renews), with keys and state
files in the repository's layout, so 300 of them take a fraction of a second to make and every
order the test sees is a renewal.  The account is registered at the Pebble the renewals go to.

The count comes from the fault proxy in front of Pebble (harness.faultproxy), which logs every
request: a newOrder Pebble answered 201 names its identifiers and, in its Location, the order
whose finalize request the CA then answers with the certificate.
"""
from __future__ import annotations

import datetime as _dt
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from harness.faultproxy import FaultProxy
from harness.pebble import Pebble
from wucme.core.times import iso
from wucme.crypto import key_pem
from wucme.repository import CertState
from wucme.vms.ods2 import ods2_name

RENEWED = re.compile(r"%WUCME-S-RENEWED, (WUCME_C_\S+\.PEM) for")


def host(i: int) -> str:
    return f"c{i:03d}.cluster.test"


def make_due_repository(here: Path, count: int) -> list[str]:
    """*count* single-name certificates, all due (10 of 90 days left); their host names."""
    here.mkdir(parents=True, exist_ok=True)
    now = _dt.datetime.now(_dt.timezone.utc)
    cak = ec.generate_private_key(ec.SECP256R1())
    caname = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "old intermediate")])
    ca = (x509.CertificateBuilder().subject_name(caname).issuer_name(caname)
          .public_key(cak.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - _dt.timedelta(days=100)).not_valid_after(now + _dt.timedelta(days=3650))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .sign(cak, hashes.SHA256()))
    ca_pem = ca.public_bytes(serialization.Encoding.PEM)
    names = [host(i) for i in range(count)]
    for name in names:
        k = ec.generate_private_key(ec.SECP256R1())
        leaf = (x509.CertificateBuilder().subject_name(x509.Name([])).issuer_name(caname)
                .public_key(k.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - _dt.timedelta(days=80)).not_valid_after(now + _dt.timedelta(days=10))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=True)
                .sign(cak, hashes.SHA256()))
        kp, part = key_pem(k), ods2_name(name)
        for path, data in ((here / f"WUCME_K_{part}.PEM", kp),
                           (here / f"WUCME_C_{part}.PEM", leaf.public_bytes(serialization.Encoding.PEM) + ca_pem + kp)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.write(fd, data)
            os.close(fd)
        st = CertState(hosts=[name], key_type="EC P-256", challenge="http-01", status="issued",
                       serial=format(leaf.serial_number, "X"), not_after=iso(leaf.not_valid_after_utc),
                       last_attempt=iso(now - _dt.timedelta(days=80)))
        st.last_result = f"issued {st.last_attempt}"
        (here / f"WUCME_S_{part}.JSON").write_bytes(st.to_json())
    return names


def not_due(here: Path, names: Iterable[str]) -> list[str]:
    """The names whose certificate in *here* is a fresh one (no longer due)."""
    now = _dt.datetime.now(_dt.timezone.utc)
    fresh = []
    for name in names:
        leaf = x509.load_pem_x509_certificates((here / f"WUCME_C_{ods2_name(name)}.PEM").read_bytes())[0]
        if leaf.not_valid_after_utc - now > _dt.timedelta(days=30):
            fresh.append(name)
    return fresh


class Ledger:
    """What the CA was asked, read from the proxy's log: orders per name, certificates issued
    per name (finalize answered 200), and each order's first and last request."""

    def __init__(self, proxy: FaultProxy) -> None:
        self.orders: dict[str, list[str]] = {}  # order id -> names
        self.created: dict[str, float] = {}
        self.last: dict[str, float] = {}
        self.finalized: dict[str, float] = {}
        for r in proxy.requests_to("/order-plz", "POST"):
            if r.injected or r.status != 201:
                continue
            oid = r.response_headers.get("Location", "").rstrip("/").rsplit("/", 1)[-1]
            self.orders[oid] = [i["value"] for i in r.jws_payload().get("identifiers", [])]
            self.created[oid] = self.last[oid] = r.time
        for prefix in ("/my-order/", "/finalize-order/"):
            for r in proxy.requests_to(prefix, "POST"):
                oid = r.path.rstrip("/").rsplit("/", 1)[-1]
                if oid in self.orders:
                    self.last[oid] = max(self.last[oid], r.time)
                    if prefix == "/finalize-order/" and r.status == 200:
                        self.finalized[oid] = r.time

    def new_orders(self) -> Counter[str]:
        return Counter(n for names in self.orders.values() for n in names)

    def issued(self) -> Counter[str]:
        return Counter(n for oid in self.finalized for n in self.orders[oid])

    def overlapping(self) -> list[str]:
        """Names with two orders in flight at once (from newOrder to the order's last request)."""
        spans: dict[str, list[tuple[float, float]]] = {}
        for oid, names in self.orders.items():
            for n in names:
                spans.setdefault(n, []).append((self.created[oid], self.last[oid]))
        bad = []
        for n, ss in spans.items():
            ss.sort()
            if any(b[0] < a[1] for a, b in zip(ss, ss[1:])):
                bad.append(n)
        return bad


class ClusterNode:
    """One node: its own address for its processes, its own node name (SYS$NODE) and logical
    tables, its own path to the one shared repository (a symbolic link: a mount elsewhere)."""

    def __init__(self, tmp: Path, name: str, repo: Path, env: dict[str, str]) -> None:
        self.name = name.upper()
        self.tmp = tmp / name
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.here = self.tmp / "repo"
        if not self.here.exists():
            self.here.symlink_to(repo)
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("WUCME_", "_WUCME_", "UACME_", "WASD_"))}
        self.env.update(env)
        self.env.update({"WUCME_HERE": str(self.here), "WUCME_LNM_DIR": str(self.tmp / "lnm"),
                         "SYS$NODE": f"{self.name}::", "WUCME_ALPN_SOCKET": str(self.tmp / "alpn.sock")})
        self.agents: list[subprocess.Popen[bytes]] = []

    def agent(self, *args: str) -> subprocess.Popen[bytes]:
        """`wucme agent` on this node, in a process group of its own (agent and pass die together)."""
        out = open(self.tmp / f"agent{len(self.agents)}.out", "wb")
        p = subprocess.Popen([sys.executable, "-m", "wucme", "agent", *args], env=self.env,
                             stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                             start_new_session=True)
        out.close()
        self.agents.append(p)
        return p

    def wucme(self, *args: str) -> subprocess.CompletedProcess[str]:
        r = subprocess.run([sys.executable, "-m", "wucme", *args], env=self.env, capture_output=True,
                           text=True, timeout=120, stdin=subprocess.DEVNULL)
        assert r.returncode == 0, f"{self.name}: wucme {' '.join(args)}: {r.returncode}\n{r.stdout}\n{r.stderr}"
        return r

    def output(self) -> str:
        return "".join((self.tmp / f"agent{i}.out").read_text(errors="replace") for i in range(len(self.agents)))

    def renewed(self) -> list[str]:
        """The certificate files this node's agents said they renewed."""
        return RENEWED.findall(self.output())

    def kill(self) -> None:
        """kill -9 of the whole node: its agents and their passes."""
        for p in self.agents:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(10)

    def stop(self) -> None:
        for p in self.agents:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                    p.wait(10)
                except (subprocess.TimeoutExpired, ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait(10)


def wait_all(procs: Iterable[subprocess.Popen[bytes]], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    for p in procs:
        p.wait(max(0.1, deadline - time.monotonic()))


def renew_elsewhere(here: Path, name: str) -> None:
    """What another node's renewal leaves: a fresh certificate (80 of 90 days left) saved for
    *name* the way wucme saves one."""
    from wucme.repository import Repository

    now = _dt.datetime.now(_dt.timezone.utc)
    k = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "elsewhere")])
    leaf = (x509.CertificateBuilder().subject_name(x509.Name([])).issuer_name(subject)
            .public_key(k.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - _dt.timedelta(days=10)).not_valid_after(now + _dt.timedelta(days=80))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=True)
            .sign(k, hashes.SHA256()))
    Repository(here).save_certificate([name], k, leaf.public_bytes(serialization.Encoding.PEM), "http-01",
                                      "renewed")


class Cluster:
    """A shared repository of due certificates and the nodes that renew it."""

    def __init__(self, tmp: Path, db: str, pebble: Pebble, proxy: FaultProxy) -> None:
        self.tmp, self.db, self.pebble, self.proxy = tmp, db, pebble, proxy
        self.repo = tmp / "shared-repo"
        self.repo.mkdir()
        self.env = {"WUCME_CA": proxy.directory_url, "WUCME_CA_BUNDLE": proxy.ca_bundle,
                    "WUCME_LOCK_DB": db, "WUCME_CLUSTER_MODE": "SHARED", "WUCME_CHALLENGE": "http-01"}
        self.nodes: list[ClusterNode] = []
        self.responder: subprocess.Popen[bytes] | None = None

    def node(self, name: str, **env: str) -> ClusterNode:
        n = ClusterNode(self.tmp, name, self.repo, dict(self.env, **env))
        self.nodes.append(n)
        return n

    def start_responder(self) -> None:
        """The web servers' http-01 answer, read from the shared store (no node answers itself)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("WUCME_")}
        env.update(WUCME_LOCK_DB=self.db, WUCME_LNM_DIR=str(self.tmp / "lnm-web"),
                   WUCME_HTTP01=f"127.0.0.1:{self.pebble.http_port}")
        self.responder = subprocess.Popen([sys.executable, "-m", "wucme", "check", "/http01", "/seconds=600"],
                                          env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL)
        import socket

        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.pebble.http_port), timeout=0.5).close()
                return
            except OSError:
                assert time.monotonic() < deadline and self.responder.poll() is None, "no http-01 responder"
                time.sleep(0.05)

    def prepare(self, count: int) -> list[str]:
        names = make_due_repository(self.repo, count)
        self.node("setup").wucme("register", "admin@example.org")
        self.proxy.log.clear()
        return names

    def close(self) -> None:
        for n in self.nodes:
            n.stop()
        if self.responder is not None:
            self.responder.kill()
            self.responder.wait(10)
