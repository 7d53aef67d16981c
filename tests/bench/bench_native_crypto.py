"""Time the native helpers of the crypto fast path against their twins, in the call paths
that use them: the certificate scan (native/certscan.c) and wucme's keys (native/pkey.c).

Run as `python3 tests/bench/bench_native_crypto.py [--quick] [--certs N] [--no-manage]`, or
`python3 -m pytest -s tests/bench/bench_native_crypto.py`.  Each operation runs through
the code wucme really calls, once with the twin (the logical name WUCME_NO_NATIVE
defined) and once native, alternating, and the medians of the CPU time are printed with
their ratio (twin / native).  CPU time because the machine is shared: wall time there
measures the neighbours.  Figures and the keep-or-remove decisions are in
docs/performance.md ("## Crypto fast path"); nothing here asserts a time.

- the repository scan: Repository.managed() and the due decision of every certificate,
  over N certificates made as bench_manage.py makes its no-op repository;
- unless --no-manage, `python3 -m wucme manage` end to end against a Pebble (process
  CPU time; wall time for information);
- the account key: Repository.load_account_key() against the checked crypto.key_load();
- wucme's keys (`--only keys`): a fresh process doing what `wucme issue` does with keys
  (import wucme.crypto and wucme.core.jws, key_gen, key_save, the account key loaded,
  csr_gen, 12 JWS signatures), native against `cryptography` (WUCME_NO_NATIVE), paired and
  alternating: medians of its CPU and wall time and of its peak RSS; each operation alone,
  in this process, for information;
- `wucme issue` of one name end to end against a Pebble (`--only issue`), native against
  the twins: wall, CPU and peak RSS.

JWS signing, tls-alpn-01 certificates, CSRs and key loading had native helpers before,
timed per operation by this script as it was in the commit that removed them, 32d3a10
(docs/performance.md); wucme's keys came back for the process they spare `cryptography`.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from cryptography.hazmat.primitives.asymmetric import ec, rsa  # noqa: E402

from wucme import crypto  # noqa: E402
from wucme._native import certscan  # noqa: E402
from wucme.renewal import due  # noqa: E402
from wucme.repository import Repository, utc_now  # noqa: E402

#: A native helper stays only when its call path is at least this much faster.
KEEP_RATIO = 1.5


@dataclass
class Op:
    name: str
    #: False for a measurement shown for information, not the one that decides.
    decides: bool = True
    pure: list[float] = field(default_factory=list)
    native: list[float] = field(default_factory=list)
    reference: dict[str, float] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        return statistics.median(self.pure) / statistics.median(self.native)


@contextmanager
def backend(native: bool) -> Iterator[None]:
    """The real switch: WUCME_NO_NATIVE defined or not."""
    saved = os.environ.pop("WUCME_NO_NATIVE", None)
    if not native:
        os.environ["WUCME_NO_NATIVE"] = "1"
    try:
        want = "native" if native else "pure"
        if certscan.backend().name != want:
            raise SystemExit(f"cannot select the {want} scanner (is the native module built?)")
        yield
    finally:
        os.environ.pop("WUCME_NO_NATIVE", None)
        if saved is not None:
            os.environ["WUCME_NO_NATIVE"] = saved


def per_op(fn: Callable[[], object], number: int) -> float:
    """CPU seconds per call over *number* calls."""
    t0 = time.process_time()
    for _ in range(number):
        fn()
    return (time.process_time() - t0) / number


# --- the scan ---------------------------------------------------------------------------------

def bench_scan(here: Path, certs: int, rounds: int) -> Op:
    repo = Repository(here)

    def scan() -> None:
        now = utc_now()
        managed = repo.managed()
        assert len(managed) == certs
        for m in managed:
            if due(m, now)[0]:
                raise AssertionError(f"{m.cert_path.name} is due")
    op = Op(f"repository scan and due decisions ({certs} certificates)")
    for _ in range(rounds):
        for native in (False, True):
            with backend(native):
                scan()  # warm
                (op.native if native else op.pure).append(per_op(scan, 1))
    return op


def bench_manage(work: Path, here: Path, certs: int, rounds: int) -> Op:
    """`python3 -m wucme manage` end to end (process CPU time), against a Pebble."""
    from bench_manage import run
    from harness.pebble import Pebble
    op = Op(f"`wucme manage` process ({certs} certificates, none due)", decides=False)
    with Pebble(work / "pebble", va_nosleep=True) as pebble:
        base = {k: v for k, v in os.environ.items()
                if not k.startswith(("WUCME_", "_WUCME_", "UACME_", "WASD_"))}
        base.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: bytecode cached
        env = dict(base, PYTHONPYCACHEPREFIX=str(work / "pycache"),
                   WUCME_LNM_DIR=str(work / "lnm"), WUCME_HERE=str(here),
                   WUCME_CA=pebble.directory_url, WUCME_CA_BUNDLE=pebble.ca_bundle,
                   WUCME_CHALLENGE="http-01", WUCME_HTTP01=f"127.0.0.1:{pebble.http_port}")
        twin = dict(env, WUCME_NO_NATIVE="1")
        for e in (twin, env, twin, env):  # untimed: page cache, bytecode
            run([sys.executable, "-m", "wucme", "manage"], e)
        walls: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(rounds):
            for native in (False, True):
                p = run([sys.executable, "-m", "wucme", "manage"], env if native else twin)
                if p.rc != 0 or f"0 renewed, {certs} not due, 0 failed" not in p.out:
                    raise SystemExit(f"wucme manage failed:\n{p.out[-800:]}\n{p.err[-1500:]}")
                (op.native if native else op.pure).append(p.cpu)
                walls[native].append(p.wall)
        floor = [run([sys.executable, "-m", "wucme", "version"], env) for _ in range(5)]
    op.reference["its wall time, twin"] = statistics.median(walls[False])
    op.reference["its wall time, native"] = statistics.median(walls[True])
    op.reference["`wucme version` CPU time (the start-up floor)"] = statistics.median(
        p.cpu for p in floor)
    return op


# --- the account key (no native helper) -------------------------------------------------------

KEYS: dict[str, Callable[[], crypto.PrivateKey]] = {
    "EC P-256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "EC P-384": lambda: ec.generate_private_key(ec.SECP384R1()),
    "RSA 2048": lambda: rsa.generate_private_key(65537, 2048),
    "RSA 4096": lambda: rsa.generate_private_key(65537, 4096),
}


def bench_account_key(work: Path, rounds: int) -> list[tuple[str, float, float]]:
    """(key, checked crypto.key_load, Repository.load_account_key) CPU seconds per load."""
    rows = []
    for label, make in KEYS.items():
        repo = Repository(work / f"keys-{label.replace(' ', '')}")
        repo.ensure_writable()
        repo.save_account_key(make())
        slow = label.startswith("RSA")
        checked = statistics.median(per_op(lambda: crypto.key_load(repo.account_key_path),
                                           1 if slow else 100) for _ in range(rounds))
        own = statistics.median(per_op(repo.load_account_key, 100) for _ in range(rounds))
        rows.append((label, checked, own))
    return rows


# --- wucme's keys (native/pkey.c) --------------------------------------------------------------

#: What `wucme issue` does with keys, in a fresh process (argv[1]: a repository with an account key).
ISSUE_KEYS = r"""
import sys, time
from wucme import crypto
from wucme.core import jws
from wucme.repository import Repository
repo = Repository(sys.argv[1])
t0 = time.process_time()
key = crypto.key_gen("EC", 256)
crypto.key_save(repo.path / "cert-key.pem", key)
account = repo.load_account_key()
csr = crypto.csr_gen(["www.example.org"], False, False, key)
acct, base = "https://ca.example/acme/acct/1", "https://ca.example/acme/"
for i in range(12):
    payload = {"csr": csr.hex()} if i == 9 else {"identifiers": []} if i == 2 else ""
    jws.jws_encode(jws.jws_protected_kid(f"nonce{i}", f"{base}{i}", acct, account), payload, account)
print("cryptography" in sys.modules, type(account).__name__, time.process_time() - t0)
"""


def bench_keys_process(work: Path, rounds: int) -> tuple[Op, Op, Op, Op]:
    """ISSUE_KEYS as a child process, twin and native alternating: (CPU, wall, peak RSS, CPU
    of the key work alone)."""
    from bench_manage import run
    here = work / "keys-process"
    repo = Repository(here)
    repo.ensure_writable()
    repo.save_account_key(ec.generate_private_key(ec.SECP256R1()))
    base = {k: v for k, v in os.environ.items() if not k.startswith(("WUCME_", "_WUCME_"))}
    base.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: bytecode cached
    env = dict(base, PYTHONPYCACHEPREFIX=str(work / "pycache"), WUCME_LNM_DIR=str(work / "lnm"))
    twin = dict(env, WUCME_NO_NATIVE="1")
    cpu = Op("`issue`'s key work in a fresh process: CPU (import wucme.crypto and jws, EC P-256 key_gen, "
             "key_save, account key, csr_gen, 12 JWS)")
    wall = Op("the same: wall", decides=False)
    rss = Op("the same: peak RSS (MiB)", decides=False)
    work_only = Op("the same: CPU of the key work alone, once wucme.crypto and jws are imported", decides=False)
    argv = [sys.executable, "-c", ISSUE_KEYS, str(here)]
    for e in (twin, env, twin, env):  # untimed: bytecode, page cache
        run(argv, e)
    for _ in range(rounds):
        for native in (False, True):
            p = run(argv, env if native else twin, rss=True)
            want = ["False", "NativeKey"] if native else ["True", "ECPrivateKey"]  # cryptography's class
            if p.rc != 0 or p.out.split()[:2] != want:
                raise SystemExit(f"the key process failed or used the wrong keys: {p.out!r}\n{p.err[-1500:]}")
            for op, value in ((cpu, p.cpu), (wall, p.wall), (rss, p.maxrss_kib / 1024),
                              (work_only, float(p.out.split()[2]))):
                (op.native if native else op.pure).append(value)
    return cpu, wall, rss, work_only


def bench_keys_ops(work: Path, rounds: int) -> list[Op]:
    """Each key operation alone, in this process (its imports done): for information."""
    from wucme._native import pkey
    from wucme.core import jws
    path = work / "ops-account.pem"
    crypto.key_save(path, ec.generate_private_key(ec.SECP256R1()))
    ops = []
    for name, number, fn in (
            ("key_gen EC P-256", 50, lambda: crypto.key_gen("EC", 256)),
            ("key_load_own EC P-256", 50, lambda: crypto.key_load_own(path)),
            ("key_save EC P-256", 20, lambda: crypto.key_save(work / "ops-k.pem", KEY[0])),
            ("csr_gen EC P-256, 1 name", 50, lambda: crypto.csr_gen(["www.example.org"], False, False, KEY[0])),
            ("jws_protected_kid + jws_encode, EC P-256", 200, lambda: jws.jws_encode(
                jws.jws_protected_kid("n", "https://ca/x", "https://ca/acct", KEY[0]), "", KEY[0]))):
        op = Op(f"{name} (in process)", decides=False)
        for _ in range(rounds):
            for native in (False, True):
                with backend(native):
                    KEY[:] = [crypto.key_load_own(path)]
                    assert isinstance(KEY[0], pkey.NativeKey) == native
                    fn()
                    (op.native if native else op.pure).append(per_op(fn, number))
        ops.append(op)
    return ops


KEY: list[crypto.PrivateKey] = []


def bench_issue_e2e(work: Path, rounds: int) -> tuple[Op, Op, Op]:
    """`wucme issue` of one name against Pebble (bench_all's set-up), twin and native
    alternating: (wall, CPU, peak RSS)."""
    import bench_all
    from bench_issue import names_for
    wall = Op("`wucme issue`, 1 name, against Pebble: wall", decides=False)
    cpu = Op("the same: CPU", decides=False)
    rss = Op("the same: peak RSS (MiB)", decides=False)
    with bench_all.AllBench(work / "issue", verbose=False) as b:
        b.setup_all([])
        cmd = [sys.executable, "-m", "wucme", "issue", "/noprogress", ",".join(names_for(1))]
        envs = {True: b.wenv, False: dict(b.wenv, WUCME_NO_NATIVE="1")}
        for native in (False, True, False, True):  # untimed
            b.own_responder(lambda: b._timed_rc(cmd, envs[native]))
        for _ in range(rounds):
            for native in (False, True):
                r, rc, err = b.own_responder(lambda: b._timed_rc(cmd, envs[native]))
                if rc != 0:
                    raise SystemExit(f"wucme issue failed ({'native' if native else 'twin'}):\n{err}")
                for op, value in ((wall, r.wall), (cpu, r.cpu), (rss, r.maxrss_kib / 1024)):
                    (op.native if native else op.pure).append(value)
    return wall, cpu, rss


# --- report -------------------------------------------------------------------------------------

def fmt(seconds: float, unit: str = "s") -> str:
    if unit != "s":
        return f"{seconds:.1f}"
    if seconds >= 1:
        return f"{seconds:.3f} s"
    return f"{seconds * 1e3:.1f} ms" if seconds >= 1e-3 else f"{seconds * 1e6:.1f} µs"


def report(ops: list[Op], keys: list[tuple[str, float, float]]) -> str:
    lines = []
    if ops:
        lines += ["| call path | twin | native | twin / native | native kept (>= 1.5) |",
                  "|---|---:|---:|---:|---|"]
        for op in ops:
            verdict = ("yes" if op.ratio >= KEEP_RATIO else "no") if op.decides else "(information)"
            unit = "MiB" if "MiB" in op.name else "s"
            lines.append(f"| {op.name} | {fmt(statistics.median(op.pure), unit)} | "
                         f"{fmt(statistics.median(op.native), unit)} | {op.ratio:.2f} | {verdict} |")
        lines += [f"- {op.name}: {k} {fmt(v)}" for op in ops for k, v in op.reference.items()]
    if keys:
        lines += ["", "| account key | checked `crypto.key_load` | `Repository.load_account_key` "
                  "| ratio |", "|---|---:|---:|---:|"]
        lines += [f"| {k} | {fmt(c)} | {fmt(o)} | {c / o:.0f} |" for k, c, o in keys]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 rounds and 1,000 certificates")
    ap.add_argument("--rounds", type=int, default=7, help="alternating twin/native rounds")
    ap.add_argument("--certs", type=int, default=10000, help="certificates of the scan")
    ap.add_argument("--no-manage", action="store_true", help="skip `wucme manage` end to end")
    ap.add_argument("--only", default="", help="comma list of: scan, manage, key, keys, issue")
    args = ap.parse_args(argv)
    if args.quick:
        args.rounds, args.certs = min(args.rounds, 3), min(args.certs, 1000)
    if not certscan.HAS_CERTSCAN:
        print("the native module wucme._native._certscan is not built", file=sys.stderr)
        return 2
    only = set(filter(None, args.only.split(",")))
    if args.no_manage:
        only = (only or {"scan", "manage", "key", "keys", "issue"}) - {"manage"}
    want = (lambda k: k in only) if only else (lambda k: True)
    ops: list[Op] = []
    keys: list[tuple[str, float, float]] = []
    with tempfile.TemporaryDirectory(prefix="bench-native-crypto-") as tmp:
        work = Path(tmp)
        os.environ["WUCME_LNM_DIR"] = str(work / "lnm")
        here = work / "noop"
        if want("scan") or want("manage"):
            from bench_manage import make_noop_repository
            make_noop_repository(here, args.certs)
        if want("scan"):
            ops.append(bench_scan(here, args.certs, args.rounds))
        if want("manage"):
            ops.append(bench_manage(work, here, args.certs, args.rounds))
        if want("key"):
            keys = bench_account_key(work, args.rounds)
        if want("keys"):
            ops += [*bench_keys_process(work, 3 * args.rounds), *bench_keys_ops(work, args.rounds)]
        if want("issue"):
            ops += bench_issue_e2e(work, 2 * args.rounds)
    print(f"CPU time, medians of {args.rounds} alternating rounds; load average at the end "
          f"{os.getloadavg()[0]:.2f}")
    print(report(ops, keys))
    return 0


def test_native_crypto_bench() -> None:
    """pytest entry: the quick variant; it fails only when an operation did not do its work."""
    import pytest
    if not certscan.HAS_CERTSCAN:
        pytest.skip("wucme._native._certscan not built")
    assert main(["--quick"]) == 0


if __name__ == "__main__":
    sys.exit(main())
