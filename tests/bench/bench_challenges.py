"""Challenge responder speed: http-01 requests per second, tls-alpn-01 handshakes per second.

Run as `.venv/bin/python tests/bench/bench_challenges.py [--write]` (after `python3 build.py setup`)
or `python3 build.py bench tests/bench/bench_challenges.py` (WUCME_BENCH_WRITE=1 writes the doc).

- http-01: wucme's own Http01Listener, and the wucme CGI script under Apache (mpm_event,
  mod_cgid, the shipped docs/servers/apache-wucme.conf), each asked for one pending token by
  `wrk` (Debian package wrk; a Python client with threads when it is missing).
- tls-alpn-01: `wucme alpn` against Debian's ualpn, both on loopback with an auth loaded for
  one name, the same Python client doing full acme-tls/1 handshakes (SNI set, ALPN
  ``acme-tls/1`` only, the validation certificate checked) in N threads, the two servers
  alternating in every round.  Target: `wucme alpn` within 2x of ualpn's rate.
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import os
import platform
import re
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the harness, run as a script
from harness.pebble import ManagedProcess, free_port  # noqa: E402
from harness.webservers import Apache, apache_available, shared_dir  # noqa: E402
from wucme.challenge.http01 import NO_SUCH_TOKEN, Http01Listener  # noqa: E402
from wucme.challenge.store import ChallengeStore  # noqa: E402
from wucme.challenge.tlsalpn import ACME_IDENTIFIER_OID, auth_digest  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "performance.md"
HEADING = "## Challenge responders"
TOKEN = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"
KEYAUTH = TOKEN + ".9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"
NAME = "bench.example.org"
PATH = "/.well-known/acme-challenge/" + TOKEN
#: The http-01 rows of the report.
HTTP_LABELS = {"listener": "wucme `Http01Listener`", "apache": "wucme CGI under Apache",
               "apache-python": "a Python CGI that does nothing, under Apache (the yardstick)"}
#: The issue's target: wucme alpn's handshake rate at least half of ualpn's.
TARGET_RATIO = 0.5


class BenchError(RuntimeError):
    """A server did not start, or answered wrongly under load."""


# --- http-01 load ------------------------------------------------------------------------------

def wrk_rate(port: int, path: str, connections: int, seconds: float) -> tuple[float, str]:
    """Requests per second from `wrk`; raises when any response was not 2xx."""
    out = subprocess.run(
        ["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds:g}s", f"http://127.0.0.1:{port}{path}"],
        capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    if "Non-2xx" in out:
        raise BenchError(f"wrk saw errors:\n{out}")
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not m:
        raise BenchError(f"no rate in wrk's output:\n{out}")
    return float(m.group(1)), "wrk"


def python_rate(port: int, path: str, connections: int, seconds: float) -> tuple[float, str]:
    """The fallback client: *connections* threads, one HTTP/1.0 request per connection."""
    request = f"GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n".encode()
    counts = [0] * connections
    errors: list[str] = []
    end = time.monotonic() + seconds

    def worker(i: int) -> None:
        while time.monotonic() < end:
            with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
                s.sendall(request)
                data = b""
                while chunk := s.recv(65536):
                    data += chunk
            if not data.startswith(b"HTTP/1.1 200") or not data.endswith(KEYAUTH.encode()):
                errors.append(data[:80].decode("latin-1"))
                return
            counts[i] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise BenchError(f"bad responses: {errors[:3]}")
    return sum(counts) / (time.monotonic() - start), "Python client"


def http_rate(port: int, path: str, connections: int, seconds: float) -> tuple[float, str]:
    if shutil.which("wrk"):
        return wrk_rate(port, path, connections, seconds)
    return python_rate(port, path, connections, seconds)


# --- tls-alpn-01 servers and client --------------------------------------------------------------

def _client_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["acme-tls/1"])
    return ctx


def validation_handshake(ctx: ssl.SSLContext, port: int) -> bytes:
    """One full acme-tls/1 handshake; the DER certificate shown (must be a validation one)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=NAME) as tls:
            if tls.selected_alpn_protocol() != "acme-tls/1":
                raise BenchError(f"port {port}: acme-tls/1 not negotiated")
            der = tls.getpeercert(binary_form=True)
            assert der is not None
            return der


def check_validation_cert(der: bytes) -> None:
    ext = x509.load_der_x509_certificate(der).extensions.get_extension_for_oid(ACME_IDENTIFIER_OID)
    if not ext.critical or ext.value.value[2:] != hashlib.sha256(KEYAUTH.encode()).digest():  # type: ignore[attr-defined]
        raise BenchError("wrong acmeIdentifier in the validation certificate")


def handshake_rate(port: int, threads: int, seconds: float) -> float:
    """Full acme-tls/1 handshakes per second from *threads* client threads."""
    ctx = _client_context()
    counts = [0] * threads
    errors: list[BaseException] = []
    end = time.monotonic() + seconds

    def worker(i: int) -> None:
        try:
            while time.monotonic() < end:
                validation_handshake(ctx, port)
                counts[i] += 1
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    start = time.monotonic()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    if errors:
        raise BenchError(f"handshake failed on port {port}: {errors[0]!r}")
    return sum(counts) / (time.monotonic() - start)


def _wait_validating(port: int, proc: ManagedProcess, what: str, timeout: float = 15.0) -> None:
    ctx = _client_context()
    end = time.monotonic() + timeout
    while True:
        if not proc.running():
            raise BenchError(f"{what} exited:\n{proc.log_tail()}")
        try:
            check_validation_cert(validation_handshake(ctx, port))
            return
        except (OSError, BenchError):
            if time.monotonic() > end:
                raise BenchError(f"{what} does not answer acme-tls/1 on {port}:\n{proc.log_tail()}") from None
            time.sleep(0.05)


def _auth(command: list[str], sock: str) -> None:
    """Load the auth with the server's own client mode (ualpn -s, wucme alpn -s)."""
    for _ in range(100):
        r = subprocess.run([*command, "-s", sock], input=f"auth {NAME} {auth_digest(KEYAUTH)}\n",
                           capture_output=True, text=True, timeout=10)
        if r.stdout.strip() == "OK":
            return
        time.sleep(0.05)
    raise BenchError(f"{command[0]}: auth refused: {r.stdout!r} {r.stderr!r}")


@contextmanager
def alpn_server(kind: str, workdir: Path) -> Iterator[int]:
    """`wucme alpn` or ualpn on a free loopback port with the auth loaded; yields the port."""
    port = free_port()
    backend = socket.socket()  # never used: every connection is a validation
    backend.bind(("127.0.0.1", 0))
    backend.listen(1)
    sock, pid = str(workdir / f"{kind}.sock"), str(workdir / f"{kind}.pid")
    base = ["-b", f"127.0.0.1@{port}", "-c", f"127.0.0.1@{backend.getsockname()[1]}", "-P", "0",
            "-p", pid]
    client = ["ualpn"] if kind == "ualpn" else [sys.executable, "-m", "wucme", "alpn"]
    proc = ManagedProcess([*client, *base, "-s", sock], workdir / f"{kind}.log", cwd=workdir)
    try:
        _auth(client, sock)
        _wait_validating(port, proc, kind)
        yield port
    finally:
        proc.stop()
        backend.close()


def idle_cgi(directory: Path, script: Path | None) -> Path:
    """A CGI script that does nothing but print the challenge's answer, run by the interpreter
    that runs *script* (wucme's): the interpreter's own start under the same server, the
    yardstick for the CGI rate."""
    directory.mkdir(mode=0o755, exist_ok=True)
    shebang = "#!/usr/bin/python3 -I"
    if script is not None and (first := script.read_text().splitlines()[0]).startswith("#!"):
        shebang = first
    idle = directory / "idle-cgi"
    idle.write_text(
        f"{shebang}\nimport os, sys\n"
        "directory = os.environ.get('PATH_INFO', '').endswith('/')\n"
        f"body = {NO_SUCH_TOKEN.encode()!r} if directory else {KEYAUTH.encode()!r}\n"
        "sys.stdout.buffer.write(b'Status: ' + (b'404 Not Found' if directory else b'200 OK')\n"
        "                        + b'\\r\\nContent-Type: text/plain\\r\\nContent-Length: %d\\r\\n\\r\\n' % len(body) + body)\n")
    idle.chmod(0o755)
    return idle


# --- the run -------------------------------------------------------------------------------------

@dataclass
class Results:
    """http-01: label -> (requests/s, client, connections); tls-alpn-01: (server, threads) -> rates."""

    http: dict[str, tuple[float, str, int]] = field(default_factory=dict)
    alpn: dict[tuple[str, int], list[float]] = field(default_factory=dict)

    def alpn_median(self, kind: str, threads: int) -> float:
        return statistics.median(self.alpn[(kind, threads)])


def run(seconds: float, rounds: int, thread_counts: Sequence[int], http: bool = True) -> Results:
    results = Results()
    work = shared_dir("wucme-bench-")
    try:
        store = ChallengeStore(work / "WUCME_CHALLENGES")
        store.put(TOKEN, KEYAUTH, NAME, "http-01")
        with Http01Listener(store, "127.0.0.1", 0) if http else nullcontext() as listener:
            if listener is not None:
                rate, client = http_rate(listener.port, PATH, 32, seconds)
                results.http["listener"] = (rate, client, 32)
        if http and apache_available():
            with Apache(store_dir=store.directory, access_log=False) as web, \
                    Apache(store_dir=store.directory, access_log=False,
                           script=idle_cgi(work / "idle", web.script)) as idle:
                # The yardstick in the same run: the same interpreter starting a script that does
                # nothing but print the answer, the two servers alternating who goes first.
                rates: dict[str, list[float]] = {"apache": [], "apache-python": []}
                for r in range(max(1, rounds)):
                    for key in (("apache", "apache-python") if r % 2 == 0 else ("apache-python", "apache")):
                        rate, client = http_rate((web if key == "apache" else idle).port, PATH, 8, seconds)
                        rates[key].append(rate)
                for key, got in rates.items():
                    results.http[key] = (statistics.median(got), client, 8)
        with alpn_server("ualpn", work) as ualpn_port, alpn_server("wucme", work) as wucme_port:
            ports = {"ualpn": ualpn_port, "wucme": wucme_port}
            for r in range(rounds):
                order = ("ualpn", "wucme") if r % 2 == 0 else ("wucme", "ualpn")
                for threads in thread_counts:
                    for kind in order:
                        results.alpn.setdefault((kind, threads), []).append(
                            handshake_rate(ports[kind], threads, seconds))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return results


def _versions() -> str:
    def pkg(name: str) -> str:
        r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", name], capture_output=True, text=True)
        return r.stdout or "?"
    return (f"wucme on Python {platform.python_version()}; uacme/ualpn {pkg('uacme')} (Debian); "
            f"apache2 {pkg('apache2')}; wrk {pkg('wrk')}")


def report(results: Results, seconds: float, rounds: int, thread_counts: Sequence[int]) -> str:
    cpu = "?"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [HEADING, "",
             "Requests per second of the http-01 responders and tls-alpn-01 handshakes per second of",
             "`wucme alpn` against Debian's ualpn, measured by `tests/bench/bench_challenges.py`",
             "(`.venv/bin/python tests/bench/bench_challenges.py --write`, or `WUCME_BENCH_WRITE=1 python3",
             "build.py bench tests/bench/bench_challenges.py`; never part of the default test run).", "",
             "### Method", "",
             "- Everything on loopback on one machine, in one run; the client shares the CPUs.",
             "- http-01: one pending token in the challenge store; each request asks for it and must get",
             "  200 with the key authorization. wucme's `Http01Listener` (one thread, one request per",
             "  connection), and the `wucme` executable as a CGI script under Debian's Apache",
             "  (`mpm_event`, `mod_cgid`, the shipped `docs/servers/apache-wucme.conf`, script run as",
             "  www-data, the store found through the system logical name table): a new Python",
             "  process per request, so it measures process start-up more than wucme. Beside it, in the",
             "  same run and alternating with it, the same interpreter starting a CGI script that does",
             "  nothing but print the answer: the interpreter's own start, the yardstick.",
             "- tls-alpn-01: `wucme alpn` and ualpn (`-n` left at its default, 2 workers), both `-P 0`,",
             "  each with `auth` loaded for one name through its own control socket. The same Python",
             "  client (`ssl`, ALPN `acme-tls/1` only, SNI set) does full TLS handshakes in N threads",
             "  and checks that `acme-tls/1` was negotiated; the validation certificate's",
             "  acmeIdentifier was checked once per server. `openssl s_time` cannot offer ALPN.",
             f"- {seconds:g} s per measurement; tls-alpn-01: {rounds} rounds, the two servers alternating",
             "  who goes first; medians reported.", "",
             "### Figures", "",
             f"- Date: {now}",
             f"- Machine: {os.cpu_count()} CPUs, {cpu}, Linux {platform.release()}",
             f"- Versions: {_versions()}",
             "- Load average (1 min) at the end: {:.2f}; the machine is shared, so other work may"
             .format(os.getloadavg()[0]),
             "  have run at the same time: compare the two servers of one row, not rows across runs.", "",
             "| http-01 responder | client | connections | requests/s |",
             "|---|---|---:|---:|"]
    for key, label in HTTP_LABELS.items():
        if key in results.http:
            rate, client, conns = results.http[key]
            lines.append(f"| {label} | {client} | {conns} | {rate:.0f} |")
        else:
            lines.append(f"| {label} | - | - | not measured (apache2 missing) |")
    if "apache" in results.http and "apache-python" in results.http:
        lines += ["", "The wucme CGI makes {:.2f} of the do-nothing script's rate.".format(
            results.http["apache"][0] / results.http["apache-python"][0])]
    lines += ["", "| client threads | ualpn handshakes/s | `wucme alpn` handshakes/s | wucme/ualpn | target (>= 0.5) |",
              "|---:|---:|---:|---:|---|"]
    verdicts = []
    for threads in thread_counts:
        u, w = results.alpn_median("ualpn", threads), results.alpn_median("wucme", threads)
        ok = w >= TARGET_RATIO * u
        verdicts.append(ok)
        lines.append(f"| {threads} | {u:.0f} | {w:.0f} | {w / u:.2f} | {'met' if ok else '**MISSED**'} |")
    lines += ["", "Target (issue 4): `wucme alpn` within 2x of ualpn's handshake rate: "
              + ("met at every client thread count." if all(verdicts) else "**missed** (see the table)."),
              ""]
    return "\n".join(lines)


def write_doc(section: str, path: Path = DOC) -> None:
    """Replace (or append) only the "## Challenge responders" section; other sections stay."""
    text = path.read_text() if path.exists() else "# Performance\n"
    start = text.find("\n" + HEADING + "\n")
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        nxt = text.find("\n## ", start + len(HEADING) + 2)
        rest = text[nxt:] if nxt >= 0 else ""
        text = text[:start + 1] + section + rest
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(text.rstrip("\n") + "\n")
    os.replace(tmp, path)


def targets_met(results: Results) -> bool:
    threads = {t for _, t in results.alpn}
    return all(results.alpn_median("wucme", t) >= TARGET_RATIO * results.alpn_median("ualpn", t)
               for t in threads)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0, help="length of each measurement")
    ap.add_argument("--rounds", type=int, default=3, help="tls-alpn-01 rounds per thread count")
    ap.add_argument("--threads", default="1,4", help="client thread counts for tls-alpn-01")
    ap.add_argument("--write", action="store_true", help=f"write {HEADING!r} in docs/performance.md")
    ap.add_argument("--alpn-only", action="store_true",
                    help="only the tls-alpn-01 part: the rates and each round's wucme/ualpn ratio, nothing written")
    o = ap.parse_args(argv)
    if shutil.which("ualpn") is None:
        print("ualpn is not installed (Debian package uacme)", file=sys.stderr)
        return 2
    threads = [int(t) for t in o.threads.split(",")]
    if o.alpn_only:
        if o.write:
            ap.error("--write needs the whole run")
        results = run(o.seconds, o.rounds, threads, http=False)
        for t in threads:
            u, w = results.alpn[("ualpn", t)], results.alpn[("wucme", t)]
            paired = " ".join(f"{a / b:.2f}" for a, b in zip(w, u))
            print(f"{t} client thread(s): ualpn {statistics.median(u):.0f}/s, wucme alpn "
                  f"{statistics.median(w):.0f}/s, ratio of medians {statistics.median(w) / statistics.median(u):.2f}; "
                  f"per round {paired}")
        print(f"load average at the end: {os.getloadavg()[0]:.2f}")
        return 0
    results = run(o.seconds, o.rounds, threads)
    section = report(results, o.seconds, o.rounds, threads)
    print(section)
    if o.write:
        write_doc(section)
    return 0 if targets_met(results) else 1


def test_challenge_responder_speed() -> None:
    """pytest entry: the tls-alpn-01 target must hold; WUCME_BENCH_WRITE=1 writes the doc."""
    import pytest
    if shutil.which("ualpn") is None:
        pytest.skip("ualpn is not installed (Debian package uacme)")
    seconds = float(os.environ.get("WUCME_BENCH_SECONDS", "5"))
    threads = [1, 4]
    results = run(seconds, 3, threads)
    section = report(results, seconds, 3, threads)
    print(section)
    if os.environ.get("WUCME_BENCH_WRITE"):
        write_doc(section)
    assert targets_met(results), section


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.exit(main())
