"""Time shared renewals (WUCME_CLUSTER_MODE SHARED): 300 due certificates renewed by one, two and
three nodes against one Pebble, and the takeover after a node is killed mid-pass.

Run as `.venv/bin/python tests/bench/bench_cluster.py [--write]` (after `python3 build.py setup`),
or `python3 build.py bench tests/bench/bench_cluster.py`; `--write` replaces the section
"## Figures" of docs/cluster.md.  Never part of the default test run; it asserts no time, only
that the work was done (every certificate renewed exactly once).

Everything is real and on this machine: a PostgreSQL server of its own (harness.postgres), one
Pebble (PEBBLE_VA_NOSLEEP, its 5% bad nonces kept), one http-01 responder reading the shared
store (the web servers' part), and each node an agent process (`wucme agent /ONCE`) with a node
name of its own on one shared repository of due certificates (tests/cluster/renewals.py).

1. Renewals: for N = 1, 2, 3 nodes, the wall time from starting the N agents to the last one's
   exit, each certificate renewed once (the node logs say which node renewed what).
2. Takeover: three nodes, the counting proxy in front of Pebble; node C (agent and pass) is
   killed with SIGKILL once it has renewed 30; the takeover time is from the kill to the
   certificate issued for the last of the orders C left unfinished, and the time to the end
   of the others' passes is given too.
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_issue
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the harness, run as a script
from bench_issue import machine  # noqa: E402

from cluster.renewals import ClusterNode, Ledger, make_due_repository, not_due, wait_all  # noqa: E402
from harness.faultproxy import FaultProxy  # noqa: E402
from harness.pebble import Pebble, stable_test_ca  # noqa: E402
from harness.postgres import PgServer, pg_bin  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "cluster.md"
SECTION = "## Figures"
CERTS = 300


class BenchError(RuntimeError):
    """The benchmark cannot run here, or a run did not do its work."""


@dataclass
class Run:
    nodes: int
    seconds: float
    by_node: dict[str, int] = field(default_factory=dict)


@dataclass
class Takeover:
    before_kill: int
    left: int
    takeover: float
    rest: float
    total: float


def _responder(tmp: Path, db: str, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WUCME_")}
    env.update(WUCME_LOCK_DB=db, WUCME_LNM_DIR=str(tmp / "lnm-web"), WUCME_HTTP01=f"127.0.0.1:{port}")
    p = subprocess.Popen([sys.executable, "-m", "wucme", "check", "/http01", "/seconds=3600"], env=env,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return p
        except OSError:
            if time.monotonic() > deadline or p.poll() is not None:
                raise BenchError("the http-01 responder did not start") from None
            time.sleep(0.05)


def _setup(tmp: Path, db: str, ca_url: str, bundle: str) -> tuple[Path, dict[str, str], list[str]]:
    repo = tmp / "repo"
    repo.mkdir(parents=True)
    names = make_due_repository(repo, CERTS)
    env = {"WUCME_CA": ca_url, "WUCME_CA_BUNDLE": bundle, "WUCME_LOCK_DB": db,
           "WUCME_CLUSTER_MODE": "SHARED", "WUCME_CHALLENGE": "http-01"}
    ClusterNode(tmp, "setup", repo, env).wucme("register", "admin@example.org")
    return repo, env, names


def renewals(tmp: Path, db: str, pebble: Pebble, n: int) -> Run:
    repo, env, names = _setup(tmp, db, pebble.directory_url, pebble.ca_bundle)
    nodes = [ClusterNode(tmp, name, repo, env) for name in "abc"[:n]]
    t0 = time.monotonic()
    agents = [node.agent("/once") for node in nodes]
    wait_all(agents, 1800)
    seconds = time.monotonic() - t0
    files = [f for node in nodes for f in node.renewed()]
    if any(p.returncode for p in agents) or len(files) != CERTS or len(set(files)) != CERTS \
            or len(not_due(repo, names)) != CERTS:
        raise BenchError(f"{n} node(s): {len(set(files))} renewed, statuses {[p.returncode for p in agents]}")
    return Run(n, seconds, {node.name: len(node.renewed()) for node in nodes})


def takeover(tmp: Path, db: str, pebble: Pebble, after: int = 30) -> Takeover:
    with FaultProxy(pebble) as proxy:
        repo, env, names = _setup(tmp, db, proxy.directory_url, proxy.ca_bundle)
        proxy.log.clear()
        a, b, c = (ClusterNode(tmp, name, repo, env) for name in "abc")
        t0 = time.monotonic()
        agents = [node.agent("/once") for node in (a, b, c)]
        while len(c.renewed()) < after:
            if time.monotonic() - t0 > 600:
                raise BenchError("node C renewed too little")
            time.sleep(0.01)
        c.kill()
        killed = time.monotonic()
        done_by_c = len(c.renewed())
        wait_all(agents[:2], 1800)
        end = time.monotonic()
        ledger = Ledger(proxy)
        if ledger.overlapping() or len(not_due(repo, names)) != CERTS:
            raise BenchError("the takeover run did not renew every certificate once")
        twice = {n for n, k in ledger.new_orders().items() if k > 1}
        late = [t for oid, t in ledger.finalized.items() if set(ledger.orders[oid]) & twice and t > killed]
        return Takeover(done_by_c, len(twice), (max(late) - killed) if late else 0.0, end - killed, end - t0)


def report(runs: dict[int, list[Run]], take: list[Takeover], postgres: str = "") -> str:
    m = machine()
    lines = [
        SECTION, "",
        f"Generated by `tests/bench/bench_cluster.py --write` ({m['date']}); wall-clock seconds, the "
        f"median of {len(next(iter(runs.values())))} runs each.  Machine: {m['cpus']} CPUs, {m['cpu']}, Linux "
        f"{m['kernel']}, Python {m['python']}, Pebble {m['pebble']} (PEBBLE_VA_NOSLEEP, 5% bad nonces), "
        f"PostgreSQL {postgres}, every process on this one machine (nodes, Pebble, the database and the responder "
        "share its CPUs, and other jobs may run beside them).", "",
        f"{CERTS} due single-name certificates on one shared repository, each node an agent "
        "(`wucme agent /ONCE`, WUCME_WORKERS 4) in shared mode:", "",
        "| nodes | time for 300 renewals | renewals per second | renewed by each node |",
        "|---|---|---|---|",
    ]
    for n, rs in sorted(runs.items()):
        t = statistics.median(r.seconds for r in rs)
        spread = ", ".join(f"{k} {v}" for k, v in sorted(rs[0].by_node.items()))
        lines.append(f"| {n} | {t:.1f} s | {CERTS / t:.1f} | {spread} |")
    tk = statistics.median(x.takeover for x in take)
    rest = statistics.median(x.rest for x in take)
    lines += [
        "",
        f"Takeover: three nodes, node C killed (SIGKILL, its agent and its pass) once it had renewed 30; "
        f"its unfinished orders ({', '.join(str(x.left) for x in take)} in the runs) were renewed by the "
        f"others {tk:.1f} s after the kill (median; runs: {', '.join(f'{x.takeover:.1f}' for x in take)} s), "
        f"and their passes, which renewed the rest of C's share, ended {rest:.1f} s after it (median).  "
        "The takeover is quick when another node's first round had not yet reached C's "
        "certificates (it finds them free); when it had (it found them locked), it waits for them "
        "in its second round, after its own share: at most the rest of its pass.  The counting "
        "proxy in front of Pebble (which confirms that no name had two orders in flight) slows "
        "these runs a little.",
        "",
        "With one machine's two CPUs for everything, more nodes add processes rather than "
        "CPUs: the figures show the locking's cost and the spread, not a cluster's speed-up, which "
        "needs the nodes (and the CA) on machines of their own.",
        "",
    ]
    return "\n".join(lines)


def write_doc(section: str, path: Path = DOC) -> None:
    text = path.read_text()
    start = text.find("\n" + SECTION + "\n")
    if start < 0:
        new = text.rstrip() + "\n\n" + section
    else:
        end = text.find("\n## ", start + 1)
        new = text[:start + 1] + section + ("" if end < 0 else text[end:])
    path.write_text(new)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--runs", type=int, default=3, help="runs of each measurement (the median is shown)")
    ap.add_argument("--write", action="store_true", help=f"replace '{SECTION}' in {DOC.name}")
    args = ap.parse_args(argv)
    bindir = pg_bin()
    if bindir is None:
        raise BenchError("PostgreSQL server binaries not found (apt-get install postgresql)")
    pg = PgServer(bindir).start()
    base = Path(tempfile.mkdtemp(prefix="wucme-bench-cluster-"))
    runs: dict[int, list[Run]] = {}
    take: list[Takeover] = []
    try:
        for i in range(args.runs):
            for n in (1, 2, 3):
                pebble = Pebble(base / f"pebble-{n}-{i}", ca=stable_test_ca()).start()
                responder = _responder(base / f"r{n}-{i}", pg.conninfo, pebble.http_port)
                try:
                    r = renewals(base / f"run-{n}-{i}", pg.conninfo, pebble, n)
                finally:
                    responder.kill()
                    responder.wait()
                    pebble.stop()
                print(f"{n} node(s): {r.seconds:.1f} s {r.by_node}", flush=True)
                runs.setdefault(n, []).append(r)
            pebble = Pebble(base / f"pebble-k-{i}", ca=stable_test_ca()).start()
            responder = _responder(base / f"rk-{i}", pg.conninfo, pebble.http_port)
            try:
                t = takeover(base / f"kill-{i}", pg.conninfo, pebble)
            finally:
                responder.kill()
                responder.wait()
                pebble.stop()
            print(f"takeover: {t}", flush=True)
            take.append(t)
    finally:
        pg.close()
    section = report(runs, take, bindir.parts[-2])
    print(section)
    if args.write:
        write_doc(section)
    return 0


def test_cluster_bench() -> None:
    """pytest entry (tests/bench named explicitly): one run of each; WUCME_BENCH_WRITE=1 writes."""
    assert main(["--runs", "1"] + (["--write"] if os.environ.get("WUCME_BENCH_WRITE") == "1" else [])) == 0


if __name__ == "__main__":
    sys.exit(main())
