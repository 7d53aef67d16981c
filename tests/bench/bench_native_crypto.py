"""Time each native helper of the crypto fast path against its pure twin, in its call path.

Run as `python3 tests/bench/bench_native_crypto.py [--quick] [--certs N] [--no-manage]`, or
`python3 -m pytest -s tests/bench/bench_native_crypto.py`.  Each operation runs through
the code wucme really calls, once with the twin (the logical name WUCME_NO_NATIVE
defined) and once native, alternating, and the medians of the CPU time per operation
are printed with their ratio (twin / native).  CPU time because the machine is shared:
wall time there measures the neighbours.  Figures and the keep-or-remove decisions are
in docs/performance.md ("## Crypto fast path"); nothing here asserts a time.

- account key loading: Repository.load_account_key() (wucme's own key, no consistency
  check), beside crypto.key_load() (any key, checked) for reference;
- JWS POST signing: jws_protected_kid() and jws_encode() of a newOrder payload, as
  acme_post() does for every request;
- the repository scan: Repository.managed() and the due decision of every certificate,
  over N certificates made as bench_manage.py makes its no-op repository; and, unless
  --no-manage, `python3 -m wucme manage` end to end against a Pebble (process CPU time);
- the tls-alpn-01 validation certificate: tlsalpn.make_validation_cert_from_digest(),
  what ValidationCache and ualpn's `auth` make per identifier;
- CSR generation: crypto.csr_gen(), once per order.
"""
from __future__ import annotations

import argparse
import hashlib
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
from wucme._native import fastcrypto  # noqa: E402
from wucme.challenge import tlsalpn  # noqa: E402
from wucme.core import jws  # noqa: E402
from wucme.renewal import due  # noqa: E402
from wucme.repository import Repository, utc_now  # noqa: E402

#: A native helper stays only when its call path is at least this much faster.
KEEP_RATIO = 1.5
PAYLOAD = {"identifiers": [{"type": "dns", "value": "www.example.org"}],
           "notAfter": "2027-01-01T00:00:00Z"}


@dataclass
class Op:
    name: str
    pure: list[float] = field(default_factory=list)
    native: list[float] = field(default_factory=list)
    reference: dict[str, float] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        return statistics.median(self.pure) / statistics.median(self.native)


@contextmanager
def backend(native: bool) -> Iterator[None]:
    """The real switch: WUCME_NO_NATIVE defined or not, re-read at once."""
    saved = os.environ.pop("WUCME_NO_NATIVE", None)
    if not native:
        os.environ["WUCME_NO_NATIVE"] = "1"
    fastcrypto.native_forced_off(recheck=True)
    try:
        want = "native" if native else "pure"
        if fastcrypto.backend().name != want:
            raise SystemExit(f"cannot select the {want} backend (is the native module built?)")
        yield
    finally:
        os.environ.pop("WUCME_NO_NATIVE", None)
        if saved is not None:
            os.environ["WUCME_NO_NATIVE"] = saved
        fastcrypto.native_forced_off(recheck=True)


def per_op(fn: Callable[[], object], number: int) -> float:
    """CPU seconds per call over *number* calls."""
    t0 = time.process_time()
    for _ in range(number):
        fn()
    return (time.process_time() - t0) / number


def compare(op: Op, fn: Callable[[], object], number: int, rounds: int) -> Op:
    for _ in range(rounds):
        for native in (False, True):
            with backend(native):
                fn()  # warm: caches, handles, first-use imports
                (op.native if native else op.pure).append(per_op(fn, number))
    return op


# --- the operations -------------------------------------------------------------------------

KEYS: dict[str, Callable[[], crypto.PrivateKey]] = {
    "EC P-256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "EC P-384": lambda: ec.generate_private_key(ec.SECP384R1()),
    "RSA 2048": lambda: rsa.generate_private_key(65537, 2048),
    "RSA 4096": lambda: rsa.generate_private_key(65537, 4096),
}


def bench_key_load(work: Path, scale: int, rounds: int) -> list[Op]:
    ops = []
    for label, make in KEYS.items():
        repo = Repository(work / f"keys-{label.replace(' ', '')}")
        repo.ensure_writable()
        repo.save_account_key(make())
        n = max(1, scale * (20 if label.startswith("EC") else 10))
        op = compare(Op(f"account key load, {label}"), repo.load_account_key, n, rounds)
        checked = max(1, n // 50) if label.startswith("RSA") else n
        op.reference["checked crypto.key_load"] = statistics.median(
            per_op(lambda: crypto.key_load(repo.account_key_path), checked) for _ in range(rounds))
        ops.append(op)
    return ops


def bench_jws(scale: int, rounds: int) -> list[Op]:
    ops = []
    for label, make in KEYS.items():
        key = make()
        n = scale * (200 if label.startswith("EC") else 20 if label == "RSA 2048" else 5)

        def post(key: crypto.PrivateKey = key) -> bytes:
            protected = jws.jws_protected_kid("nonce-abcdefghijklmnopqrstuv",
                                              "https://ca.example/acme/new-order",
                                              "https://ca.example/acme/acct/1234", key)
            return jws.jws_encode(protected, PAYLOAD, key)
        ops.append(compare(Op(f"JWS POST signing, {label}"), post, n, rounds))
    return ops


def bench_alpn(scale: int, rounds: int) -> list[Op]:
    digest = hashlib.sha256(b"token.thumbprint").digest()
    op = Op("tls-alpn-01 certificate (with its P-256 key)")
    return [compare(op, lambda: tlsalpn.make_validation_cert_from_digest("www.example.org", digest),
                    scale * 100, rounds)]


def bench_csr(scale: int, rounds: int) -> list[Op]:
    ops = []
    for label in ("EC P-256", "RSA 2048"):
        key = KEYS[label]()
        for count in (1, 10):
            names = [f"n{i}.example.org" for i in range(count)]
            n = scale * (100 if label.startswith("EC") else 20)

            def gen(key: crypto.PrivateKey = key, names: list[str] = names) -> bytes:
                return crypto.csr_gen(names, False, False, key)
            ops.append(compare(Op(f"CSR, {label}, {count} name(s)"), gen, n, rounds))
    return ops


def bench_scan(work: Path, certs: int, rounds: int) -> list[Op]:
    from bench_manage import make_noop_repository
    here = work / "noop"
    make_noop_repository(here, certs)
    repo = Repository(here)

    def scan() -> None:
        now = utc_now()
        managed = repo.managed()
        assert len(managed) == certs
        for m in managed:
            if due(m, now)[0]:
                raise AssertionError(f"{m.cert_path.name} is due")
    op = Op(f"repository scan and due decisions, {certs} certificates")
    return [compare(op, scan, 1, max(rounds, 5))]


def bench_manage(work: Path, certs: int, rounds: int) -> list[Op]:
    """`python3 -m wucme manage` end to end (process CPU time), against a Pebble."""
    from bench_manage import run
    from wucme.testing.pebble import Pebble
    here = work / "noop"
    op = Op(f"`wucme manage` process, {certs} certificates, none due")
    with Pebble(work / "pebble", va_nosleep=True) as pebble:
        base = {k: v for k, v in os.environ.items()
                if not k.startswith(("WUCME_", "_WUCME_", "UACME_", "WASD_"))}
        base.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: bytecode cached
        env = dict(base, PYTHONPYCACHEPREFIX=str(work / "pycache"),
                   WUCME_LNM_DIR=str(work / "lnm"), WUCME_HERE=str(here),
                   WUCME_CA=pebble.directory_url, WUCME_CA_BUNDLE=pebble.ca_bundle,
                   WUCME_CHALLENGE="http-01", WUCME_HTTP01=f"127.0.0.1:{pebble.http_port}")
        for native in (False, True, False, True):  # untimed: page cache, bytecode
            run([sys.executable, "-m", "wucme", "manage"], _env(env, native))
        walls: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(max(rounds, 5)):
            for native in (False, True):
                p = run([sys.executable, "-m", "wucme", "manage"], _env(env, native))
                if p.rc != 0 or f"0 renewed, {certs} not due, 0 failed" not in p.out:
                    raise SystemExit(f"wucme manage failed:\n{p.out[-800:]}\n{p.err[-1500:]}")
                (op.native if native else op.pure).append(p.cpu)
                walls[native].append(p.wall)
        floor = [run([sys.executable, "-m", "wucme", "version"], env) for _ in range(5)]
    op.reference["wall, twin"] = statistics.median(walls[False])
    op.reference["wall, native"] = statistics.median(walls[True])
    op.reference["`wucme version` CPU (start-up floor)"] = statistics.median(p.cpu for p in floor)
    return [op]


def _env(env: dict[str, str], native: bool) -> dict[str, str]:
    return env if native else dict(env, WUCME_NO_NATIVE="1")


# --- report -------------------------------------------------------------------------------------

def fmt(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms" if seconds >= 1e-3 else f"{seconds * 1e6:.1f} µs"


def report(ops: list[Op]) -> str:
    lines = ["| operation (its call path) | twin | native | twin / native | kept (>= 1.5) |",
             "|---|---:|---:|---:|---|"]
    for op in ops:
        lines.append(f"| {op.name} | {fmt(statistics.median(op.pure))} | "
                     f"{fmt(statistics.median(op.native))} | {op.ratio:.2f} | "
                     f"{'yes' if op.ratio >= KEEP_RATIO else 'no'} |")
    refs = [f"- {op.name}: {k} {fmt(v) if v < 1 else f'{v:.3f} s'}"
            for op in ops for k, v in op.reference.items()]
    return "\n".join(lines + ([""] + refs if refs else []))


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer operations per measurement")
    ap.add_argument("--rounds", type=int, default=5, help="alternating twin/native rounds")
    ap.add_argument("--certs", type=int, default=10000, help="certificates of the scan")
    ap.add_argument("--no-manage", action="store_true", help="skip `wucme manage` end to end")
    ap.add_argument("--only", default="", help="comma list of: key, jws, scan, manage, alpn, csr")
    args = ap.parse_args(argv)
    if not fastcrypto.HAS_FASTCRYPTO:
        print("the native module wucme._native._fastcrypto is not built", file=sys.stderr)
        return 2
    scale = 1 if args.quick else 5
    only = set(filter(None, args.only.split(",")))
    want = (lambda k: k in only) if only else (lambda k: k != "manage" or not args.no_manage)
    ops: list[Op] = []
    with tempfile.TemporaryDirectory(prefix="bench-native-crypto-") as tmp:
        work = Path(tmp)
        os.environ.setdefault("WUCME_LNM_DIR", str(work / "lnm"))
        if want("key"):
            ops += bench_key_load(work, scale, args.rounds)
        if want("jws"):
            ops += bench_jws(scale, args.rounds)
        if want("scan") or want("manage"):
            if want("scan"):
                ops += bench_scan(work, args.certs, args.rounds)
            else:
                from bench_manage import make_noop_repository
                make_noop_repository(work / "noop", args.certs)
            if want("manage"):
                ops += bench_manage(work, args.certs, args.rounds)
        if want("alpn"):
            ops += bench_alpn(scale, args.rounds)
        if want("csr"):
            ops += bench_csr(scale, args.rounds)
    print(f"load average at the end: {os.getloadavg()[0]:.2f} (CPU time per operation, "
          f"medians of {args.rounds} alternating rounds)")
    print(report(ops))
    return 0


def test_native_crypto_bench() -> None:
    """pytest entry: the quick variant; it fails only when an operation did not do its work."""
    import pytest
    if not fastcrypto.HAS_FASTCRYPTO:
        pytest.skip("wucme._native._fastcrypto not built")
    assert main(["--quick", "--rounds", "2", "--certs", "500"]) == 0


if __name__ == "__main__":
    sys.exit(main())
