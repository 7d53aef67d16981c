"""Time `wucme --uacme issue` against the real `uacme issue` on one Pebble (1, 10, 100 names).

Run as `.venv/bin/python tests/bench/bench_issue.py` (after `python3 build.py setup`) or
`python3 build.py bench`.
Both tools get their own confdir and account on the same Pebble (PEBBLE_VA_NOSLEEP=1,
5% badNonce as by default), answer http-01 through the same hook script and webroot
server, and reissue with -f.  Each run is one child process reaped with wait4(), which
gives its wall time, CPU time and peak RSS (ru_maxrss covers the hooks it waited for).
Needs root: uacme 1.7.4 trusts only the system store.
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from cryptography import x509

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the harness, run as a script
from harness.pebble import Pebble, install_system_trust, stable_test_ca  # noqa: E402
from harness.responders import ChallengeDirServer, write_hook_scripts  # noqa: E402

UACME = "/usr/bin/uacme"
TIME = "/usr/bin/time"
PYCACHE = Path(tempfile.gettempdir()) / f"wucme-bench-pycache-{os.getuid()}"
REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "performance.md"
#: Runs per case: fewer for 100 names, where one uacme run takes seconds.
DEFAULT_REPS = {1: 7, 10: 5, 100: 2}
#: The targets from the issue: (names, minimum uacme/wucme ratio).
TARGETS = {1: 1.0, 100: 5.0}
TOOLS = ("uacme", "wucme")
BAD_NONCE = "urn:ietf:params:acme:error:badNonce"
TARGET_TEXT = "1 name no slower than uacme; 100 names at least 5 times faster than uacme"


class BenchError(RuntimeError):
    """The benchmark cannot run here, or a run did not issue what it should."""


@dataclass
class Run:
    wall: float
    cpu: float
    maxrss_kib: int


@dataclass
class Case:
    names: int
    runs: dict[str, list[Run]] = field(default_factory=lambda: {"uacme": [], "wucme": []})

    def median(self, tool: str, attr: str = "wall") -> float:
        return statistics.median(getattr(r, attr) for r in self.runs[tool])

    def fastest(self, tool: str) -> float:
        return min(r.wall for r in self.runs[tool])

    def peak_mib(self, tool: str) -> float:
        return max(r.maxrss_kib for r in self.runs[tool]) / 1024

    @property
    def ratio(self) -> float:
        return self.median("uacme") / self.median("wucme")


def names_for(n: int) -> list[str]:
    return [f"n{i}.example.org" for i in range(1, n + 1)]


def timed(cmd: Sequence[str], env: dict[str, str]) -> tuple[Run, int, str]:
    """Run `cmd` to completion; (Run, exit status, stderr tail).

    Peak RSS comes from /usr/bin/time when present: a child forked straight from this
    Python process starts with (and keeps in ru_maxrss) the parent's resident set
    until exec, which would hide the tool's own figure.  Without it, wait4() is used.
    """
    with tempfile.TemporaryDirectory(prefix="bench-run-") as tmp:
        err_path, rss_path = Path(tmp) / "stderr", Path(tmp) / "rss"
        argv = list(cmd)
        if os.access(TIME, os.X_OK):
            argv = [TIME, "-q", "-o", str(rss_path), "-f", "%M", *argv]
        with open(err_path, "wb") as err:
            t0 = time.perf_counter()
            proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,  # noqa: S603
                                    stdout=subprocess.DEVNULL, stderr=err)
            _, status, ru = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        tail = err_path.read_bytes()[-3000:].decode(errors="replace")
        maxrss = ru.ru_maxrss
        if rss_path.exists():
            maxrss = int(rss_path.read_text().split()[-1])
    return Run(wall, ru.ru_utime + ru.ru_stime, maxrss), proc.returncode, tail


class Bench:
    """One Pebble, one webroot server, two tools with an account each."""

    def __init__(self, workdir: Path, verbose: bool = False) -> None:
        self.workdir = workdir
        self.verbose = verbose
        ca = stable_test_ca()
        if not install_system_trust(ca.cert):
            raise BenchError("uacme trusts only the system store: run as root "
                             "(update-ca-certificates must be installed)")
        self.pebble = Pebble(workdir / "pebble", ca=ca, va_nosleep=True, nonce_reject=5)
        self.webroot = workdir / "webroot"
        self.hook = write_hook_scripts(workdir / "hooks")["http-01"]
        self.server: ChallengeDirServer | None = None
        self.env: dict[str, str] = {}
        self.nonce_failures = {tool: 0 for tool in TOOLS}

    def __enter__(self) -> "Bench":
        self.pebble.start()
        try:
            self.server = ChallengeDirServer(self.webroot, self.pebble.http_port).start()
        except BaseException:
            self.pebble.stop()
            raise
        self.env = dict(os.environ, WUCME_CA_BUNDLE=self.pebble.ca_bundle,
                        UACME_CHALLENGE_PATH=str(self.webroot))
        self.env.pop("WUCME_VERBOSE", None)
        # As installed (pip compiles .pyc): this tree may run with PYTHONDONTWRITEBYTECODE,
        # which recompiles every module on each start.  Cache outside the source tree.
        self.env.pop("PYTHONDONTWRITEBYTECODE", None)
        self.env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.server:
            self.server.stop()
        self.pebble.stop()

    def argv(self, tool: str) -> list[str]:
        head = [UACME] if tool == "uacme" else [sys.executable, "-m", "wucme", "--uacme"]
        return [*head, "-c", str(self.workdir / tool), "-a", self.pebble.directory_url]

    def run(self, tool: str, *args: str) -> tuple[Run, int, str]:
        return timed([*self.argv(tool), *args], self.env)

    def setup_accounts(self) -> None:
        for tool in ("uacme", "wucme"):
            _, rc, err = self.run(tool, "-y", "new", f"bench-{tool}@example.org")
            if rc != 0:
                raise BenchError(f"{tool} new: exit {rc}\n{err}")

    def issue(self, tool: str, names: list[str]) -> Run:
        # Backups are named by the second (cert-EPOCH.pem); uacme fails when one exists,
        # and runs come faster than one a second: clear them first (untimed).
        for bak in (self.workdir / tool / names[0]).glob("cert-*.pem"):
            bak.unlink()
        for _ in range(3):
            r, rc, err = self.run(tool, "-o", "-f", "-h", self.hook, "issue", *names)
            # uacme gives up after three badNonce in a row (1 request in 8000 at 5%, so
            # about one 100-name run in 20): count it, drop the run and do it again.
            if rc == 0 or BAD_NONCE not in err:
                break
            self.nonce_failures[tool] += 1
            if self.verbose:
                print(f"  {tool:5} {len(names):3} names  failed on badNonce, run again", flush=True)
        if rc != 0:
            raise BenchError(f"{tool} issue ({len(names)} names): exit {rc}\n{err}")
        cert = x509.load_pem_x509_certificates(
            (self.workdir / tool / names[0] / "cert.pem").read_bytes())[0]
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        if sorted(san.get_values_for_type(x509.DNSName)) != sorted(names):
            raise BenchError(f"{tool}: certificate does not carry the {len(names)} names")
        if self.verbose:
            print(f"  {tool:5} {len(names):3} names  {r.wall:7.3f} s  cpu {r.cpu:6.3f} s  "
                  f"rss {r.maxrss_kib / 1024:6.1f} MiB", flush=True)
        return r


@dataclass
class Results:
    cases: list[Case]
    #: Median wall time of `-V` per tool: start-up alone.
    floor: dict[str, float]
    #: Runs repeated because the tool gave up on badNonce.
    nonce_failures: dict[str, int]


def run_cases(sizes: Sequence[int], reps: dict[int, int], verbose: bool = True) -> Results:
    """Time every case; also the start-up floor (median wall of `-V`, 5 runs) of each tool."""
    if not os.access(UACME, os.X_OK):
        raise BenchError(f"{UACME} is missing (Debian package uacme)")
    with tempfile.TemporaryDirectory(prefix="wucme-bench-") as tmp, Bench(Path(tmp), verbose) as b:
        b.setup_accounts()
        for tool in ("uacme", "wucme"):  # untimed: creates the certificate key, warms caches
            b.issue(tool, names_for(1))
        floor = {tool: statistics.median(b.run(tool, "-V")[0].wall for _ in range(5))
                 for tool in ("uacme", "wucme")}
        cases = []
        for n in sizes:
            case = Case(n)
            names = names_for(n)
            for i in range(reps.get(n, 2)):
                order = ("uacme", "wucme") if i % 2 == 0 else ("wucme", "uacme")
                for tool in order:
                    case.runs[tool].append(b.issue(tool, names))
            cases.append(case)
        return Results(cases, floor, dict(b.nonce_failures))


def verdict(case: Case) -> str:
    want = TARGETS.get(case.names)
    if want is None:
        return "-"
    return f"{'met' if case.ratio >= want else 'MISSED'} (>= {want:g}x)"


def table(cases: Sequence[Case]) -> str:
    rows = ["| names | runs | uacme median (s) | wucme median (s) | uacme/wucme | target | "
            "uacme min (s) | wucme min (s) | uacme CPU (s) | wucme CPU (s) | "
            "uacme peak RSS (MiB) | wucme peak RSS (MiB) |",
            "|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|"]
    for c in cases:
        rows.append(f"| {c.names} | {len(c.runs['wucme'])} | {c.median('uacme'):.3f} | "
                    f"{c.median('wucme'):.3f} | {c.ratio:.2f} | {verdict(c)} | "
                    f"{c.fastest('uacme'):.3f} | {c.fastest('wucme'):.3f} | "
                    f"{c.median('uacme', 'cpu'):.3f} | {c.median('wucme', 'cpu'):.3f} | "
                    f"{c.peak_mib('uacme'):.1f} | {c.peak_mib('wucme'):.1f} |")
    return "\n".join(rows)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _pkg_version(pkg: str) -> str:
    if shutil.which("dpkg-query") is None:
        return "unknown"
    r = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", pkg], capture_output=True,
                       text=True, timeout=10)
    return r.stdout.strip() or "unknown"


def machine() -> dict[str, str]:
    import cryptography
    import wucme
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": f"{os.cpu_count()} (nproc {len(os.sched_getaffinity(0))})",
        "cpu": _cpu_model(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "cryptography": cryptography.__version__,
        "wucme": wucme.__version__,
        "uacme": _pkg_version("uacme"),
        "pebble": _pkg_version("pebble"),
    }


def report(res: Results) -> str:
    m, cases, floor = machine(), res.cases, res.floor
    lines = [
        "## Measured",
        "",
        "Generated by `tests/bench/bench_issue.py --write`; times are wall-clock seconds.",
        "",
        f"- Date: {m['date']}",
        f"- Machine: {m['cpus']} CPUs, {m['cpu']}, Linux {m['kernel']}",
        f"- Versions: wucme {m['wucme']} on Python {m['python']} (cryptography "
        f"{m['cryptography']}); uacme {m['uacme']} (Debian); Pebble {m['pebble']} (Debian)",
        "- Runs per case: " + ", ".join(f"{c.names} name(s): {len(c.runs['wucme'])}"
                                        for c in cases),
        "",
        table(cases),
        "",
        f"Start-up floor (median wall of `-V`, which exits at once): uacme "
        f"{floor['uacme'] * 1000:.0f} ms, wucme {floor['wucme'] * 1000:.0f} ms.",
        "",
        f"Runs dropped and repeated because the tool gave up on badNonce: uacme "
        f"{res.nonce_failures['uacme']}, wucme {res.nonce_failures['wucme']}.",
        "",
        f"Targets: {TARGET_TEXT}.",
    ]
    for c in cases:
        if c.names not in TARGETS:
            continue
        word = "met" if c.ratio >= TARGETS[c.names] else "**missed**"
        lines.append(f"- {c.names} name(s): {word}, uacme/wucme = {c.ratio:.2f} "
                     f"(target at least {TARGETS[c.names]:g}).")
    return "\n".join(lines) + "\n"


def write_doc(measured: str, path: Path = DOC) -> None:
    """Replace the generated "## Measured" section of docs/performance.md, keep the rest."""
    text = path.read_text() if path.exists() else ""
    start = text.find("## Measured")
    if start < 0:
        new = (text.rstrip() + "\n\n" if text else "# Performance\n\n") + measured
    else:
        end = text.find("\n## ", start + 1)
        new = text[:start] + measured + ("" if end < 0 else text[end:])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(new)


def parse_reps(spec: str | None) -> dict[int, int]:
    reps = dict(DEFAULT_REPS)
    for part in (spec or "").split(","):
        if part:
            n, r = part.split("=")
            reps[int(n)] = int(r)
    return reps


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1,10,100", help="comma-separated name counts")
    ap.add_argument("--reps", help="runs per size, e.g. 1=5,10=3,100=2")
    ap.add_argument("--write", action="store_true",
                    help=f"replace the 'Measured' section of {DOC.relative_to(REPO)}")
    ap.add_argument("-q", "--quiet", action="store_true", help="no per-run lines")
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    reps = parse_reps(args.reps)
    try:
        res = run_cases(sizes, reps, verbose=not args.quiet)
    except BenchError as e:
        print(f"bench_issue: {e}", file=sys.stderr)
        return 2
    text = report(res)
    print(text)
    if args.write:
        write_doc(text)
        print(f"wrote {DOC}")
    return 0


def test_issue_speed_against_uacme() -> None:
    """pytest entry (`python3 build.py bench`): the issue's targets must hold.

    WUCME_BENCH_WRITE=1 also rewrites the "Measured" section of docs/performance.md.
    """
    import pytest
    if not os.access(UACME, os.X_OK) or os.geteuid() != 0:
        pytest.skip("needs /usr/bin/uacme and root (uacme trusts only the system store)")
    reps = parse_reps(os.environ.get("WUCME_BENCH_REPS"))
    res = run_cases([1, 10, 100], reps)
    cases = res.cases
    text = report(res)
    print(text)
    if os.environ.get("WUCME_BENCH_WRITE") == "1":
        write_doc(text)
    missed = [c for c in cases if c.names in TARGETS and c.ratio < TARGETS[c.names]]
    assert not missed, f"targets missed ({TARGET_TEXT}):\n{table(cases)}"


if __name__ == "__main__":
    sys.exit(main())
