"""Time `wucme manage` over 1,000 certificates (100 due) against a cron loop of uacme, and a no-op pass.

Run as `.venv/bin/python tests/bench/bench_manage.py [--write]` (after `python3 build.py setup`) or
`python3 build.py bench tests/bench/bench_manage.py`.  Three measurements, figures in docs/performance.md
("## Renewal (manage)"); nothing here asserts a time, only that the work was done:

1. A repository of 1,000 single-name certificates, 100 of them due, all real Pebble
   certificates: the 900 not due from Pebble A (five-year validity), the 100 due from
   Pebble B (a 60 s validity, so they are past two thirds of their life or expired when
   the pass runs), both issued in-process through wucme's own issue path.  The pass
   renews the 100 against Pebble A, where the repository's account key is registered.
   The same 1,000 certificates and keys are copied into a uacme confdir, and uacme runs
   once per certificate (`uacme issue NAME`, as a cron loop would): 900 exit 1 (not
   due), 100 renew.  Each round starts from fresh copies; the two alternate who goes
   first.  Needs root: uacme 1.7.4 trusts only the system store.
2. A repository of 10,000 certificates none of which is due (made here: an EC
   intermediate signs 90-day leaves issued 10 days ago, with keys and state files in the
   repository's layout): `python3 -m wucme manage` end to end, and the pass in-process.
3. The idle agent's resident set, when `python3 -m wucme agent` exists.
"""
from __future__ import annotations

import argparse
import datetime
import importlib.util
import io
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_issue
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the harness, run as a script
from bench_issue import PYCACHE, TIME, UACME, machine  # noqa: E402

from harness.pebble import Pebble, install_system_trust, stable_test_ca  # noqa: E402
from harness.responders import ChallengeDirServer, write_hook_scripts  # noqa: E402
from wucme import crypto  # noqa: E402
from wucme.challenge.solver import ChallengeSolver  # noqa: E402
from wucme.core.jws import jws_thumbprint  # noqa: E402
from wucme.core.times import iso  # noqa: E402
from wucme.obtain import obtain  # noqa: E402
from wucme.session import account_session  # noqa: E402
from wucme.settings import ChallengeConfig  # noqa: E402
from wucme.uacme.msg import Msg  # noqa: E402
from wucme.crypto import key_pem  # noqa: E402
from wucme.repository import CertState, Repository  # noqa: E402
from wucme.scanindex import RACY_SECONDS  # noqa: E402
from wucme.uacme.account import account_new  # noqa: E402
from wucme.vms.ods2 import ods2_name  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "performance.md"
SECTION = "## Renewal (manage)"
#: Pebble B's certificate lifetime: short, so its certificates are due minutes later.
DUE_VALIDITY = 60
BAD_NONCE = "urn:ietf:params:acme:error:badNonce"
TARGET_TEXT = ("the 100 renewals at least 10 times faster than the uacme loop; the no-op pass "
               "under one second; the idle agent under 40 MB resident")
_SUMMARY = re.compile(r"%WUCME-[SE]-MANAGED, (\d+) renewed, (\d+) not due, (\d+) failed")


class BenchError(RuntimeError):
    """The benchmark cannot run here, or a run did not do what it should."""


def host(i: int, width: int = 4) -> str:
    return f"h{i:0{width}d}.example.org"


@dataclass
class Proc:
    """One child process: wall and CPU seconds, peak RSS (KiB), exit status, output."""

    wall: float
    cpu: float
    maxrss_kib: int
    rc: int
    out: str
    err: str


def run(argv: Sequence[str], env: dict[str, str], rss: bool = False) -> Proc:
    """Run to completion, reaped with wait4(); /usr/bin/time for the peak RSS when *rss*
    (a child forked from this big process would report the parent's resident set)."""
    with tempfile.TemporaryDirectory(prefix="bench-run-") as tmp:
        out_p, err_p, rss_p = Path(tmp) / "out", Path(tmp) / "err", Path(tmp) / "rss"
        cmd = list(argv)
        if rss and os.access(TIME, os.X_OK):
            cmd = [TIME, "-q", "-o", str(rss_p), "-f", "%M", *cmd]
        with open(out_p, "wb") as out, open(err_p, "wb") as err:
            t0 = time.perf_counter()
            proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL,  # noqa: S603
                                    stdout=out, stderr=err)
            _, status, ru = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        maxrss = int(rss_p.read_text().split()[-1]) if rss_p.exists() else ru.ru_maxrss
        return Proc(wall, ru.ru_utime + ru.ru_stime, maxrss, proc.returncode,
                    out_p.read_text(errors="replace"), err_p.read_text(errors="replace"))


def leaf_of(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificates(path.read_bytes())[0]


# --- 1. 1,000 certificates, 100 due, against uacme ---------------------------------------

@dataclass
class Round:
    wucme: Proc
    uacme_wall: float
    uacme_cpu: float
    uacme_due_wall: float
    uacme_skip_wall: float
    uacme_retries: int
    wucme_first: bool


@dataclass
class RenewalResults:
    certs: int
    due: int
    workers: str
    build_seconds: float
    rounds: list[Round] = field(default_factory=list)
    reasons: dict[str, int] = field(default_factory=dict)
    #: Extra wucme passes, one per round, with WUCME_WORKERS = also_workers.
    also_workers: str | None = None
    also: list[Proc] = field(default_factory=list)
    build_failures: list[str] = field(default_factory=list)
    wucme_reruns: list[str] = field(default_factory=list)
    #: `lego renew` once per certificate (first round only), when asked for.
    lego: "LegoLoop | None" = None

    def median(self, attr: str) -> float:
        return float(statistics.median(float(getattr(r, attr)) for r in self.rounds))

    @property
    def wucme_wall(self) -> float:
        return statistics.median(r.wucme.wall for r in self.rounds)

    @property
    def ratio(self) -> float:
        return self.median("uacme_wall") / self.wucme_wall


@dataclass
class LegoLoop:
    """`lego renew` once per certificate, possibly over only *due_run* of the *due*: lego
    takes seconds per renewal (fixed polling intervals), so the full loop is extrapolated."""

    days: int
    due: int
    not_due: int
    due_run: int
    skip_run: int
    wall: float
    cpu: float
    due_wall: float
    skip_wall: float
    retries: int

    @property
    def per_renewal(self) -> float:
        return self.due_wall / self.due_run

    @property
    def per_skip(self) -> float:
        return self.skip_wall / self.skip_run if self.skip_run else 0.0

    @property
    def capped(self) -> bool:
        return self.due_run < self.due or self.skip_run < self.not_due

    @property
    def full_loop(self) -> float:
        """The whole loop's wall time: measured, or per-certificate times scaled up when capped."""
        if not self.capped:
            return self.wall
        return self.per_renewal * self.due + self.per_skip * self.not_due


#: lego's account on Pebble A, registered untimed.
LEGO_EMAIL = "bench-lego@example.org"
#: `lego renew --days`: the due certificates (60 s validity, 0 days or less left) are within
#: it, the others (five years left) far outside; the same split as wucme's and uacme's 2/3 rule.
LEGO_DAYS = 30


class Fleet:
    """Two Pebbles on one http-01 port, a pristine repository and a pristine uacme confdir."""

    def __init__(self, work: Path, certs: int, due_every: int, verbose: bool) -> None:
        self.work, self.certs, self.due_every, self.verbose = work, certs, due_every, verbose
        ca = stable_test_ca()
        if not install_system_trust(ca.cert):
            raise BenchError("uacme trusts only the system store: run as root "
                             "(update-ca-certificates must be installed)")
        self.a = Pebble(work / "pebble-a", ca=ca, va_nosleep=True)
        self.b = Pebble(work / "pebble-b", ca=ca, va_nosleep=True, validity=DUE_VALIDITY,
                        http_port=self.a.http_port, tls_port=self.a.tls_port)
        self.here = work / "pristine" / "here"
        self.conf = work / "pristine" / "uacme"
        self.lego_dir = work / "pristine" / "lego"
        # lego writes WEBROOT/.well-known/acme-challenge/TOKEN; the server serves self.webroot.
        self.lego_root = work / "lego-webroot"
        self.webroot = work / "webroot"
        self.hook = write_hook_scripts(work / "hooks")["http-01"]
        self.names = [host(i) for i in range(certs)]
        self.due = {n for i, n in enumerate(self.names) if i % due_every == 0}
        self.env: dict[str, str] = {}
        self.due_issued_at = 0.0
        #: Issues of the (untimed) build that failed and were made again.
        self.build_failures: list[str] = []
        #: wucme passes dropped and made again because renewals gave up on badNonce.
        self.wucme_reruns: list[str] = []

    def __enter__(self) -> "Fleet":
        self.a.start()
        try:
            self.b.start()
        except BaseException:
            self.a.stop()
            raise
        base = {k: v for k, v in os.environ.items()
                if not k.startswith(("WUCME_", "_WUCME_", "UACME_", "WASD_"))}
        base.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: bytecode cached
        self.env = dict(base, PYTHONPYCACHEPREFIX=str(PYCACHE),
                        WUCME_LNM_DIR=str(self.work / "lnm"),
                        WUCME_ALPN_SOCKET=str(self.work / "alpn.sock"),
                        WUCME_CA=self.a.directory_url, WUCME_CA_BUNDLE=self.a.ca_bundle,
                        WUCME_CHALLENGE="http-01",
                        WUCME_HTTP01=f"127.0.0.1:{self.a.http_port}",
                        # A load command, as an administrator defines one (without it `manage`
                        # warns NOTLOADED and exits 1); /bin/true costs the pass next to nothing.
                        WUCME_LOAD="/bin/true",
                        UACME_CHALLENGE_PATH=str(self.webroot))
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.b.stop()
        finally:
            self.a.stop()

    def say(self, text: str) -> None:
        if self.verbose:
            print(text, flush=True)

    # Building (untimed).
    def _issue(self, pebble: Pebble, repo: Repository, key: Any,
               names: list[str], threads: int) -> None:
        """wucme's own issue path, in this process: one session, many orders at once."""
        quiet = Msg(0, stream=io.StringIO())  # -y's note
        with account_session(quiet, key=key, directory=pebble.directory_url) as a:
            account_new(a, yes=True)
            config = ChallengeConfig("http-01", ("127.0.0.1", pebble.http_port))
            def one(n: str) -> None:
                for attempt in range(3):
                    try:
                        obtain(a, repo, [n], solver, challenge=config.type)
                        return
                    except Exception as e:  # noqa: BLE001 - set-up only: note it, try again
                        self.build_failures.append(f"{n}: {type(e).__name__}: {e}")
                        if attempt == 2:
                            raise

            with ChallengeSolver(config, jws_thumbprint(key)) as solver, ThreadPoolExecutor(threads) as pool:
                list(pool.map(one, names))

    def build(self, threads: int = 16) -> float:
        t0 = time.perf_counter()
        saved = {k: os.environ.get(k) for k in ("WUCME_LNM_DIR", "WUCME_HERE", "WUCME_CA_BUNDLE")}
        os.environ.update(WUCME_LNM_DIR=self.env["WUCME_LNM_DIR"], WUCME_HERE=str(self.here),
                          WUCME_CA_BUNDLE=self.a.ca_bundle)
        try:
            repo = Repository(self.here)
            repo.ensure_writable()
            key = crypto.key_gen("EC", 256)
            repo.save_account_key(key)
            due = [n for n in self.names if n in self.due]
            self.say(f"issuing {len(due)} certificates from Pebble B ({DUE_VALIDITY} s validity)")
            self._issue(self.b, repo, key, due, threads)
            self.due_issued_at = time.time()
            rest = [n for n in self.names if n not in self.due]
            self.say(f"issuing {len(rest)} certificates from Pebble A (five years)")
            self._issue(self.a, repo, key, rest, threads)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        # Versions ;N left by write_versioned on the first save: none expected, but a real
        # repository has them, so keep whatever is there.
        self._uacme_confdir()
        return time.perf_counter() - t0

    def _uacme_confdir(self) -> None:
        """The same certificates and keys in uacme's layout, and a uacme account on Pebble A."""
        self.conf.mkdir(parents=True)
        (self.conf / "private").mkdir(mode=0o700)
        for n in self.names:
            part = ods2_name(n)
            chain = (self.here / f"WUCME_C_{part}.PEM").read_bytes()
            key = (self.here / f"WUCME_K_{part}.PEM").read_bytes()
            (self.conf / n).mkdir()
            (self.conf / n / "cert.pem").write_bytes(chain[:chain.index(b"-----BEGIN PRIVATE KEY")])
            (self.conf / "private" / n).mkdir(mode=0o700)
            kp = self.conf / "private" / n / "key.pem"
            kp.write_bytes(key)
            kp.chmod(0o600)
        r = run([UACME, "-c", str(self.conf), "-a", self.a.directory_url, "-t", "EC", "-y", "new"],
                self.env)
        if r.rc != 0:
            raise BenchError(f"uacme new: exit {r.rc}\n{r.err[-2000:]}")

    def lego_env(self) -> dict[str, str]:
        return dict(self.env, LEGO_CA_CERTIFICATES=self.a.ca_bundle)

    def lego_head(self, lego: str, path: Path) -> list[str]:
        return [lego, "--server", self.a.directory_url, "--path", str(path), "--email", LEGO_EMAIL,
                "--accept-tos", "--http", "--http.webroot", str(self.lego_root)]

    def lego_store(self, lego: str) -> None:
        """An account registered on Pebble A by lego itself (untimed, one `run`), then the same
        certificates and keys in lego's layout: certificates/NAME.crt (leaf first, then the
        issuer), NAME.issuer.crt, NAME.key and NAME.json (the resource lego writes)."""
        (self.lego_root / ".well-known").mkdir(parents=True, exist_ok=True)
        if not (self.lego_root / ".well-known" / "acme-challenge").exists():
            (self.lego_root / ".well-known" / "acme-challenge").symlink_to(self.webroot)
        self.webroot.mkdir(parents=True, exist_ok=True)
        with ChallengeDirServer(self.webroot, self.a.http_port):
            r = run([*self.lego_head(lego, self.lego_dir), "--domains", host(self.certs), "run"],
                    self.lego_env())
        if r.rc != 0:
            raise BenchError(f"lego run (registration): exit {r.rc}\n{r.err[-2000:]}")
        certs = self.lego_dir / "certificates"
        for n in self.names:
            part = ods2_name(n)
            chain = (self.here / f"WUCME_C_{part}.PEM").read_bytes()
            chain = chain[:chain.index(b"-----BEGIN PRIVATE KEY")]
            (certs / f"{n}.crt").write_bytes(chain)
            second = chain.find(b"-----BEGIN CERTIFICATE", 1)
            (certs / f"{n}.issuer.crt").write_bytes(chain[second:] if second > 0 else b"")
            kp = certs / f"{n}.key"
            kp.write_bytes((self.here / f"WUCME_K_{part}.PEM").read_bytes())
            kp.chmod(0o600)
            (certs / f"{n}.json").write_text(json.dumps(
                {"domain": n, "certUrl": "", "certStableUrl": ""}, indent="\t"))

    def wait_until_due(self) -> None:
        """Pebble B's certificates are due (by both tools' rules) once 2/3 of their life is gone."""
        ready = self.due_issued_at + DUE_VALIDITY * 2 / 3 + 1
        if time.time() < ready:
            self.say(f"waiting {ready - time.time():.0f} s for Pebble B's certificates to be due")
            time.sleep(ready - time.time())

    # Timed runs.
    def wucme_pass(self, run_dir: Path, workers: str | None) -> tuple[Proc, dict[str, int]]:
        here = run_dir / f"here-{workers or 'default'}"
        env = dict(self.env, WUCME_HERE=str(here))
        if workers:
            env["WUCME_WORKERS"] = workers
        for _ in range(3):
            shutil.rmtree(here, ignore_errors=True)
            shutil.copytree(self.here, here)
            p = run([sys.executable, "-m", "wucme", "manage"], env, rss=True)
            fails = [ln for ln in (p.out + p.err).splitlines() if "%WUCME-E-RENEWFAIL" in ln]
            # As for uacme: a pass in which renewals gave up on badNonce (after
            # AcmeSession.max_badnonce tries) is dropped, counted, and made again.
            if not fails or not all("badNonce" in ln for ln in fails):
                break
            self.wucme_reruns.append(f"{len(fails)} renewal(s) gave up on badNonce")
        m = _SUMMARY.search(p.out + p.err)
        want = (len(self.due), self.certs - len(self.due), 0)
        if p.rc != 0 or not m or tuple(int(x) for x in m.groups()) != want:
            raise BenchError(f"wucme manage: exit {p.rc}, wanted {want} (renewed, not due, "
                             f"failed)\n{p.out[-1500:]}\n{p.err[-1500:]}")
        reasons: dict[str, int] = {}
        for line in p.out.splitlines():
            if line.startswith("%WUCME-S-RENEWED"):
                why = line.rsplit(" renewed (", 1)[-1].split("), expires")[0]
                reasons[why] = reasons.get(why, 0) + 1
        self._check(lambda n: here / f"WUCME_C_{ods2_name(n)}.PEM", "wucme")
        return p, reasons

    def uacme_loop(self, run_dir: Path) -> tuple[float, float, float, float, int]:
        """uacme once per certificate; (wall, CPU, wall of the due, wall of the rest, retries)."""
        conf = run_dir / "uacme"
        shutil.copytree(self.conf, conf, symlinks=True)
        head = [UACME, "-c", str(conf), "-a", self.a.directory_url, "-t", "EC", "-h", self.hook,
                "issue"]

        def wrong(n: str, p: Proc) -> str:
            want = 0 if n in self.due else 1
            return "" if p.rc == want else f"uacme issue {n}: exit {p.rc}, wanted {want}\n{p.err[-2000:]}"

        with ChallengeDirServer(self.webroot, self.a.http_port):
            # uacme gives up after three badNonce in a row: a cron loop would fail that
            # certificate until the next day; here the run is dropped and made again.
            wall, cpu, due_wall, skip_wall, retries = self._cron_loop(
                self.names, lambda n: [*head, n], self.env,
                lambda p: p.rc == 2 and BAD_NONCE in p.err, wrong)
        self._check(lambda n: conf / n / "cert.pem", "uacme")
        return wall, cpu, due_wall, skip_wall, retries

    def lego_loop(self, run_dir: Path, lego: str, due_cap: int | None) -> LegoLoop:
        """`lego renew` once per certificate, one after another, as a cron loop would; only the
        first *due_cap* due certificates when capped (all the not-due ones are run)."""
        path = run_dir / "lego"
        shutil.copytree(self.lego_dir, path, symlinks=True)
        due_names = [n for n in self.names if n in self.due]
        run_due = set(due_names[:due_cap] if due_cap is not None else due_names)
        names = [n for n in self.names if n not in self.due or n in run_due]
        head = [*self.lego_head(lego, path), "--domains"]
        tail = ["renew", "--days", str(LEGO_DAYS), "--no-random-sleep"]
        env = self.lego_env()
        with ChallengeDirServer(self.webroot, self.a.http_port):
            # lego retries a badNonce itself; should one still end a run, the run is dropped
            # and made again, as for uacme.
            wall, cpu, due_wall, skip_wall, retries = self._cron_loop(
                names, lambda n: [*head, n, *tail], env, lambda p: p.rc != 0 and "badNonce" in p.err,
                lambda n, p: "" if p.rc == 0 else f"lego renew {n}: exit {p.rc}\n{p.err[-2000:]}")
        soon = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=365)
        for n in names:
            leaf = leaf_of(path / "certificates" / f"{n}.crt")
            old = leaf_of(self.lego_dir / "certificates" / f"{n}.crt")
            if n in self.due and (leaf.serial_number == old.serial_number or leaf.not_valid_after_utc < soon):
                raise BenchError(f"lego: {n} was not renewed")
            if n not in self.due and leaf.serial_number != old.serial_number:
                raise BenchError(f"lego: {n} was renewed but was not due")
        return LegoLoop(LEGO_DAYS, len(self.due), self.certs - len(self.due), len(run_due),
                        len(names) - len(run_due), wall, cpu, due_wall, skip_wall, retries)

    def _cron_loop(self, names: list[str], argv: Callable[[str], list[str]], env: dict[str, str],
                   gave_up: Callable[[Proc], bool],
                   wrong: Callable[[str, Proc], str]) -> tuple[float, float, float, float, int]:
        """Each of *names* in turn, as a cron loop runs a client: a run that *gave_up* (on a
        badNonce) is dropped, its time taken off the loop's, and made again (three tries in
        all); *wrong* says what is wrong with a run's outcome, if anything.  (wall, CPU, wall
        of the due, wall of the rest, retries)."""
        cpu = due_wall = skip_wall = dropped = 0.0
        retries = 0
        t0 = time.perf_counter()
        for n in names:
            for _ in range(3):
                p = run(argv(n), env)
                cpu += p.cpu
                if gave_up(p):
                    retries += 1
                    dropped += p.wall
                    continue
                break
            why = wrong(n, p)
            if why:
                raise BenchError(why)
            if n in self.due:
                due_wall += p.wall
            else:
                skip_wall += p.wall
        return time.perf_counter() - t0 - dropped, cpu, due_wall, skip_wall, retries

    def _check(self, path_of: Callable[[str], Path], tool: str) -> None:
        """The due certificates now come from Pebble A (years left), the others are untouched."""
        soon = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=365)
        for n in self.names:
            leaf = leaf_of(path_of(n))
            if n in self.due and leaf.not_valid_after_utc < soon:
                raise BenchError(f"{tool}: {n} was not renewed")
            if n not in self.due:
                old = self.here / f"WUCME_C_{ods2_name(n)}.PEM"
                if leaf.serial_number != leaf_of(old).serial_number:
                    raise BenchError(f"{tool}: {n} was renewed but was not due")


def run_renewals(work: Path, certs: int, due_every: int, rounds: int, workers: str | None,
                 also_workers: str | None, verbose: bool, lego: str | None = None,
                 lego_due_cap: int | None = None) -> RenewalResults:
    """With *lego*, also `lego renew` in a loop, in the first round only (after wucme and
    uacme), over the first *lego_due_cap* due certificates and all the others."""
    with Fleet(work, certs, due_every, verbose) as f:
        res = RenewalResults(certs, len(f.due), workers or "undefined (4)", f.build(),
                             also_workers=also_workers)
        if lego:
            f.lego_store(lego)
        f.say(f"built in {res.build_seconds:.0f} s")
        f.wait_until_due()
        for i in range(rounds):
            rd = work / f"round{i}"
            rd.mkdir()
            first = i % 2 == 0
            order = ("wucme", "uacme") if first else ("uacme", "wucme")
            w: Proc | None = None
            u: tuple[float, float, float, float, int] | None = None
            for tool in order:
                if tool == "wucme":
                    w, reasons = f.wucme_pass(rd, workers)
                    for k, v in reasons.items():
                        res.reasons[k] = res.reasons.get(k, 0) + v
                    f.say(f"  round {i + 1}: wucme manage {w.wall:7.2f} s")
                    if also_workers:
                        p, _ = f.wucme_pass(rd, also_workers)
                        res.also.append(p)
                        f.say(f"  round {i + 1}: wucme manage {p.wall:7.2f} s "
                              f"(WUCME_WORKERS={also_workers})")
                else:
                    u = f.uacme_loop(rd)
                    f.say(f"  round {i + 1}: uacme loop   {u[0]:7.2f} s")
            assert w is not None and u is not None
            u_wall, u_cpu, u_due, u_skip, retries = u
            res.rounds.append(Round(w, u_wall, u_cpu, u_due, u_skip, retries, first))
            if lego and i == 0:
                res.lego = f.lego_loop(rd, lego, lego_due_cap)
                lg = res.lego
                f.say(f"  round {i + 1}: lego loop    {lg.wall:7.2f} s ({lg.due_run} of {lg.due} due, "
                      f"{lg.skip_run} not due; {lg.per_renewal:.2f} s per renewal)")
            shutil.rmtree(rd, ignore_errors=True)
        res.build_failures, res.wucme_reruns = list(f.build_failures), list(f.wucme_reruns)
        return res


# --- 2. 10,000 certificates, none due -------------------------------------------------------

def make_noop_repository(here: Path, certs: int) -> None:
    """Realistic files, not due: 90-day leaves issued 10 days ago by one EC intermediate."""
    here.mkdir(parents=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    cak = ec.generate_private_key(ec.SECP256R1())
    caname = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench intermediate")])
    ca = (x509.CertificateBuilder().subject_name(caname).issuer_name(caname)
          .public_key(cak.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=3650))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .sign(cak, hashes.SHA256()))
    ca_pem = ca.public_bytes(serialization.Encoding.PEM)
    (here / "WUCME_ACCOUNT.PEM").write_bytes(key_pem(ec.generate_private_key(ec.SECP256R1())))
    for i in range(certs):
        name = host(i, 5)
        k = ec.generate_private_key(ec.SECP256R1())
        leaf = (x509.CertificateBuilder().subject_name(x509.Name([])).issuer_name(caname)
                .public_key(k.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(days=10))
                .not_valid_after(now + datetime.timedelta(days=80))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=True)
                .sign(cak, hashes.SHA256()))
        kp, part = key_pem(k), ods2_name(name)
        for path, data in ((here / f"WUCME_K_{part}.PEM", kp),
                           (here / f"WUCME_C_{part}.PEM",
                            leaf.public_bytes(serialization.Encoding.PEM) + ca_pem + kp)):
            path.write_bytes(data)
            path.chmod(0o600)
        st = CertState(hosts=[name], key_type="EC P-256", challenge="http-01", status="issued",
                       serial=format(leaf.serial_number, "x"), not_after=iso(leaf.not_valid_after_utc),
                       last_attempt=iso(now - datetime.timedelta(days=10)))
        st.last_result = f"issued {st.last_attempt}"
        (here / f"WUCME_S_{part}.JSON").write_bytes(st.to_json())


@dataclass
class NoopResults:
    certs: int
    runs: list[Proc]
    in_process: list[float]
    managed: list[float]
    floor: float

    @property
    def wall(self) -> float:
        return statistics.median(p.wall for p in self.runs)


def _in_process_pass(here: Path, env: dict[str, str]) -> tuple[float, float]:
    """(whole pass, repository scan) in a child that has already imported everything."""
    code = (
        "import time\n"
        "from wucme.renewal import renewal_pass\n"
        "from wucme.repository import Repository\n"
        "from wucme.verbs.common import VerbLog\n"
        "repo = Repository.here(); log = VerbLog()\n"
        "t0 = time.perf_counter(); repo.managed(); t1 = time.perf_counter()\n"
        "r = renewal_pass(repo, log)\n"
        "t2 = time.perf_counter()\n"
        "assert not r.error and len(r.skipped) == len(r.outcomes), r.error\n"
        "print(t2 - t1, t1 - t0)\n")
    p = run([sys.executable, "-c", code], env)
    if p.rc != 0:
        raise BenchError(f"in-process pass failed:\n{p.err[-2000:]}")
    whole, scan = p.out.split()
    return float(whole), float(scan)


def run_noop(work: Path, certs: int, reps: int, verbose: bool, profile: Path | None) -> NoopResults:
    here = work / "noop"
    t0 = time.perf_counter()
    make_noop_repository(here, certs)
    if verbose:
        print(f"made {certs} certificates in {time.perf_counter() - t0:.0f} s", flush=True)
    with Pebble(work / "pebble-noop", va_nosleep=True) as pebble:
        base = {k: v for k, v in os.environ.items()
                if not k.startswith(("WUCME_", "_WUCME_", "UACME_", "WASD_"))}
        base.pop("PYTHONDONTWRITEBYTECODE", None)
        env = dict(base, PYTHONPYCACHEPREFIX=str(PYCACHE), WUCME_LNM_DIR=str(work / "lnm-noop"),
                   WUCME_HERE=str(here), WUCME_CA=pebble.directory_url,
                   WUCME_CA_BUNDLE=pebble.ca_bundle, WUCME_CHALLENGE="http-01",
                   WUCME_HTTP01=f"127.0.0.1:{pebble.http_port}")
        floor = statistics.median(run([sys.executable, "-m", "wucme", "version"], env).wall
                                  for _ in range(5))
        runs, in_proc, scans = [], [], []
        # Untimed, as the day before: the first pass reads every file and writes the scan
        # index, the next (once the index's rename has settled) finds the directory's names
        # unchanged and vouches for its key (wucme.scanindex); each waits until the files
        # and the directory are older than the racy limit, as a day's passes are.
        for _ in range(2):
            time.sleep(RACY_SECONDS + 0.1)
            run([sys.executable, "-m", "wucme", "manage"], env)
        for _ in range(reps):
            p = run([sys.executable, "-m", "wucme", "manage"], env, rss=True)
            m = _SUMMARY.search(p.out + p.err)
            if p.rc != 0 or not m or m.groups() != ("0", str(certs), "0"):
                raise BenchError(f"no-op manage: exit {p.rc}\n{p.out[-800:]}\n{p.err[-1500:]}")
            runs.append(p)
            whole, scan = _in_process_pass(here, env)
            in_proc.append(whole)
            scans.append(scan)
            if verbose:
                print(f"  no-op manage {p.wall:.3f} s (pass in-process {whole:.3f} s, "
                      f"scan {scan:.3f} s)", flush=True)
        if profile is not None:
            run([sys.executable, "-m", "cProfile", "-o", str(profile), "-m", "wucme", "manage"], env)
        return NoopResults(certs, runs, in_proc, scans, floor)


# --- 3. the idle agent ------------------------------------------------------------------------

def idle_agent_rss(work: Path, verbose: bool) -> tuple[float | None, str]:
    """(VmRSS in MiB, how) of `wucme agent` (active) on a small repository, or (None, why not)."""
    if importlib.util.find_spec("wucme.agent") is None:
        return None, "`wucme agent` does not exist yet in this tree (no wucme/agent package)"
    here = work / "agent-here"
    make_noop_repository(here, 10)
    with Pebble(work / "pebble-agent", va_nosleep=True) as pebble:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("WUCME_", "_WUCME_", "UACME_", "WASD_"))}
        env.update(WUCME_HERE=str(here), WUCME_LNM_DIR=str(work / "lnm-agent"), WUCME_ACTIVE="1",
                   WUCME_CA=pebble.directory_url, WUCME_CA_BUNDLE=pebble.ca_bundle,
                   WUCME_CHALLENGE="http-01", WUCME_HTTP01=f"127.0.0.1:{pebble.http_port}",
                   WUCME_ALPN_SOCKET=str(work / "agent-alpn.sock"))
        log = open(work / "agent.log", "wb")
        proc = subprocess.Popen([sys.executable, "-m", "wucme", "agent"], env=env,  # noqa: S603
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            samples: list[int] = []
            started = time.monotonic()
            deadline = started + 60
            comm = ""
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    tail = (work / "agent.log").read_text(errors="replace")[-800:]
                    return None, f"`wucme agent` exited with status {proc.returncode}: {tail.strip()}"
                status = Path(f"/proc/{proc.pid}/status").read_text()
                comm = Path(f"/proc/{proc.pid}/comm").read_text().strip()
                samples.append(int(re.search(r"VmRSS:\s+(\d+)", status).group(1)))  # type: ignore[union-attr]
                # Idle: active, no cycle child running, the resident set unchanged for 3 s.
                if comm != "wuCME-active" or _children(proc.pid):
                    samples.clear()
                elif len(samples) >= 7 and len(set(samples[-7:])) == 1:
                    break
                time.sleep(0.5)
            if not samples:
                return None, f"`wucme agent` was not idle and active within 60 s (name {comm!r})"
            steady = len(samples) >= 7 and len(set(samples[-7:])) == 1
            how = (f"named {comm!r}, its start-up cycle done (no child), VmRSS steady for 3 s, "
                   f"{time.monotonic() - started:.0f} s after start" if steady
                   else f"named {comm!r}, last VmRSS sample after 60 s (not steady)")
            if verbose:
                print(f"idle agent: {samples[-1] / 1024:.1f} MiB ({how})", flush=True)
            return samples[-1] / 1024, how
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
            log.close()


def _children(pid: int) -> bool:
    """True while *pid* has a child process (the agent runs each cycle in one)."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            if (task / "children").read_text().strip():
                return True
        except OSError:
            pass
    return False


#: Findings of the profiling done with this benchmark (fixed text, dated; the figures above
#: are regenerated on every --write, these are not).
ANALYSIS = """### Where the time goes in a pass

From profiling runs made with this benchmark on 2026-11-27 (same machine; `cProfile` with a
per-thread CPU clock around each renewal, and variants of one pass run side by side):

- **uacme's loop** is almost all CPU (about 28 s of CPU in 30 s): each renewal takes about
  0.26 s, each certificate that is not due about 4 ms (uacme fetches the CA's directory before
  it looks at the certificate, on a new TLS connection, reading the system trust store, as
  described in "Where the time goes" above for `issue`). The 900 not-due runs are
  therefore about an eighth of the loop; the 100 renewals the rest.
- **wucme's pass**: about 0.11 s of interpreter start and imports, 0.04 s to scan the 1,000
  certificates, then the renewals, 25 per worker with the default 4 workers, about 0.1 s each:
  mostly waiting (the first poll interval of 20 ms, `AcmeSession.poll_first`, and
  Pebble's answers).
- **The version scan of `write_versioned`** (`wucme/vms/files.py`, `_earlier`) lists the whole
  repository directory to find a file's earlier versions: once per file written (it was twice
  before these figures), three times per renewal. At 3,000 files that is about 1 ms a listing; at
  30,000 (10,000 certificates) about 13 ms. A listing-free lookup would save more.
- **Earlier runs the same day, with a 50 ms first poll and two listings per write**, gave median
  ratios of 11.6, 10.5, 10.1 and 9.9 (wucme's pass 2.8-3.0 s): at the target, not safely above it.
  The two changes brought the pass to about 1.8 s.
- `WUCME_WORKERS=16` shortens the waits but this 2-CPU machine, shared with Pebble, is then
  CPU-bound (see the extra pass above: little gain, more variation).
- **The no-op pass** (10,000): about 0.12 s of start-up and imports; the scan reads and parses
  10,000 chains (two certificates each, about 14 µs) and 10,000 state files (about 12 µs),
  then the due decisions parse each leaf's extensions for its names (about 15 µs each); the
  CA's directory is fetched once; a line is written per certificate. The pass holds every
  parsed chain, hence the 95 MiB peak. (Figures before the native certificate scan: see
  "Crypto fast path" for the pass since, which reads each leaf once, in C, and holds only its
  DER: about 0.47 s of CPU and a 60 MiB peak on this benchmark's repository.)
- Change made for this benchmark (`Repository._managed`, `wucme/repository.py`): the
  certificate's names are read only when the state file is missing or unreadable (they are
  needed then as the fallback hosts), and the state file's existence is checked only when the
  certificate is missing; with a good state file the names were computed and thrown away. The
  scan of 10,000 went from about 0.49 s to 0.39 s (the due decisions now parse the extensions
  once, about 0.06 s of it comes back there). Behaviour is unchanged (compared field by field
  against the previous code on a repository with each kind of damage).
"""


# --- the report ----------------------------------------------------------------------------------

def _word(ok: bool) -> str:
    return "met" if ok else "**missed**"


def report(ren: RenewalResults | None, noop: NoopResults | None,
           agent: tuple[float | None, str] | None) -> str:
    m = machine()
    load = os.getloadavg()[0]
    lines = [
        SECTION,
        "",
        "A `wucme manage` pass against a cron loop of uacme, measured by "
        "`tests/bench/bench_manage.py` (`.venv/bin/python tests/bench/bench_manage.py --write`, as root; "
        "never part of the default test run, and it asserts no time).",
        "",
        f"Targets (issue 5): {TARGET_TEXT}.",
        "",
        "### Method",
        "",
        "- **1,000 certificates, 100 due.** One name each (`h0000.example.org` ...), every "
        "tenth due. All are real Pebble 2.4.0 certificates issued in-process through wucme's "
        "issue path (`obtain`, EC P-256 keys, untimed): the 900 not due by Pebble A "
        "(default five-year validity), the 100 due by Pebble B (`certificateValidityPeriod` "
        f"{DUE_VALIDITY} s), issued first, so that by the passes at least two thirds of their "
        "life is gone (or they have expired): due by wucme's rule and by uacme's (fewer than "
        "30 days left). The repository's account key is registered on both Pebbles; the pass "
        "renews against Pebble A (`WUCME_CA`), `PEBBLE_VA_NOSLEEP=1`, 5% of nonces rejected.",
        "- **wucme**: `python3 -m wucme manage` on a fresh copy of the repository, "
        "`WUCME_CHALLENGE=http-01`, `WUCME_HTTP01` on Pebble's http-01 port (wucme's own "
        "listener, started by the pass), `WUCME_WORKERS` " + (ren.workers if ren else "default")
        + "; process start included. Checked: exit 0, `100 renewed, 900 not due, 0 failed`, "
        "the 100 carry a Pebble A certificate, the 900 are untouched.",
        "- **uacme** (Debian 1.7.4): the same 1,000 certificates and keys copied into a uacme "
        "confdir (`NAME/cert.pem`, `private/NAME/key.pem`, an account of its own on Pebble A), "
        "then `uacme -c CONFDIR -a PEBBLE_A -t EC -h hook-http-01.sh issue NAME` once per "
        "certificate, one after another, as a cron loop runs it; the webroot server for the "
        "hook is already running (as a web server would be). Checked: exit 1 for the 900 "
        "(not due: uacme fetches the directory, reads the certificate, stops), exit 0 and a new "
        "certificate for the 100. A run that gives up on badNonce (uacme stops after three "
        "in a row) is dropped, its time taken off the loop, and run again.",
        "- Rounds alternate which tool goes first; each starts from fresh copies. Medians.",
        "- **10,000 certificates, none due**: made by the benchmark (an EC intermediate signs "
        "90-day leaves issued 10 days ago; WUCME_C with chain and key, WUCME_K, WUCME_S state "
        "files, as `issue` writes them). `python3 -m wucme manage` end to end against a "
        "Pebble (the pass reads the CA's directory for renewalInfo), its output to a file, "
        "after two untimed runs, each once the files have settled (the first writes the scan "
        "index, the second vouches for the directory's key: the state of a daily pass, and a "
        "warm page cache); the pass alone is also timed inside a "
        "Python process that has already imported wucme (`renewal_pass`, and the repository "
        "scan `Repository.managed()` within it).",
        "- **Idle agent**: `python3 -m wucme agent` with `WUCME_ACTIVE` defined, on a "
        "10-certificate repository with nothing due; VmRSS from /proc/PID/status once the "
        "process is named wuCME-active and its resident set has been steady for 3 s.",
        "- wucme runs with its bytecode cached (`PYTHONPYCACHEPREFIX`), as installed.",
        "",
        "### Figures",
        "",
        f"- Date: {m['date']}",
        f"- Machine: {m['cpus']} CPUs, {m['cpu']}, Linux {m['kernel']}; load average (1 min) "
        f"at the end {load:.2f} (a shared machine)",
        f"- Versions: wucme {m['wucme']} on Python {m['python']} (cryptography "
        f"{m['cryptography']}); uacme {m['uacme']} (Debian); Pebble {m['pebble']} (Debian)",
        "",
    ]
    verdicts = []
    if ren is not None:
        lines += [
            f"{ren.certs:,} certificates, {ren.due} due ({len(ren.rounds)} round(s); building the "
            f"repository took {ren.build_seconds:.0f} s, untimed):",
            "",
            "| round | first | wucme pass (s) | wucme CPU (s) | wucme peak RSS (MiB) | "
            "uacme loop (s) | of which renewals (s) | of which skips (s) | uacme CPU (s) | "
            "uacme/wucme | uacme badNonce reruns |",
            "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for i, r in enumerate(ren.rounds, 1):
            lines.append(
                f"| {i} | {'wucme' if r.wucme_first else 'uacme'} | {r.wucme.wall:.2f} | "
                f"{r.wucme.cpu:.2f} | {r.wucme.maxrss_kib / 1024:.1f} | {r.uacme_wall:.2f} | "
                f"{r.uacme_due_wall:.2f} | {r.uacme_skip_wall:.2f} | {r.uacme_cpu:.2f} | "
                f"{r.uacme_wall / r.wucme.wall:.1f} | {r.uacme_retries} |")
        why = ", ".join(f"{v} {k!r}" for k, v in sorted(ren.reasons.items()))
        lines += [
            "",
            f"Median: wucme {ren.wucme_wall:.2f} s, uacme loop {ren.median('uacme_wall'):.2f} s, "
            f"ratio **{ren.ratio:.1f}**; uacme's {ren.due} renewals alone "
            f"{ren.median('uacme_due_wall'):.2f} s, {ren.median('uacme_due_wall') / ren.wucme_wall:.1f} "
            "times wucme's whole pass. Why wucme renewed (all rounds): " + (why or "-") + ".",
            "",
        ]
        lines += [
            f"wucme passes dropped and made again because renewals gave up on badNonce: "
            f"{len(ren.wucme_reruns)}" + (f" ({'; '.join(ren.wucme_reruns)})" if ren.wucme_reruns else "")
            + f". Orders of the untimed build that failed and were made again: "
            f"{len(ren.build_failures)}" + (f" (first: {ren.build_failures[0][:200]})"
                                            if ren.build_failures else "") + ".",
            "",
        ]
        if ren.also:
            aw = statistics.median(p.wall for p in ren.also)
            lines += [
                f"With `WUCME_WORKERS={ren.also_workers}` (one more pass per round, not part of "
                f"the target): median {aw:.2f} s (" + ", ".join(f"{p.wall:.2f}" for p in ren.also)
                + f"), CPU {statistics.median(p.cpu for p in ren.also):.2f} s, peak RSS "
                f"{max(p.maxrss_kib for p in ren.also) / 1024:.1f} MiB; uacme loop / that pass "
                f"= {ren.median('uacme_wall') / aw:.1f}.",
                "",
            ]
        per_round = [r.uacme_wall / r.wucme.wall for r in ren.rounds]
        verdicts.append(f"- {ren.due} renewals in a {ren.certs:,}-certificate pass: "
                        f"{_word(ren.ratio >= 10)}, uacme loop / wucme pass = {ren.ratio:.1f} "
                        f"(median; rounds {min(per_round):.1f} to {max(per_round):.1f}; target "
                        "at least 10)." + ("" if min(per_round) >= 10 else
                                           " The margin is small: see below."))
    if noop is not None:
        lines += [
            f"{noop.certs:,} certificates, none due ({len(noop.runs)} run(s)):",
            "",
            "| measure | median (s) | min (s) | max (s) |",
            "|---|---:|---:|---:|",
        ]
        for label, xs in (("`wucme manage`, process end to end", [p.wall for p in noop.runs]),
                          ("its CPU time", [p.cpu for p in noop.runs]),
                          ("the pass in-process (`renewal_pass`)", noop.in_process),
                          ("of which the repository scan (`managed()`)", noop.managed)):
            lines.append(f"| {label} | {statistics.median(xs):.3f} | {min(xs):.3f} | {max(xs):.3f} |")
        lines += [
            "",
            f"Peak RSS of the process: {max(p.maxrss_kib for p in noop.runs) / 1024:.1f} MiB. "
            f"Start-up floor (`wucme version`): {noop.floor * 1000:.0f} ms.",
            "",
        ]
        verdicts.append(f"- No-op pass over {noop.certs:,}: {_word(noop.wall < 1.0)}, "
                        f"{noop.wall:.3f} s end to end (target under 1 s).")
    if agent is not None:
        rss, how = agent
        if rss is None:
            lines += [f"Idle agent: not measured: {how}.", ""]
            verdicts.append("- Idle agent under 40 MB: not measured (see above).")
        else:
            lines += [f"Idle agent: {rss:.1f} MiB resident ({how}).", ""]
            verdicts.append(f"- Idle agent: {_word(rss * 1.048576 < 40)}, {rss:.1f} MiB = "
                            f"{rss * 1.048576:.1f} MB (target under 40 MB).")
    lines += ["Targets:", *verdicts, ""]
    if ren is not None and noop is not None:
        lines.append(ANALYSIS.rstrip("\n"))
    return "\n".join(lines) + "\n"


def write_doc(section: str, path: Path = DOC) -> None:
    """Replace this benchmark's own section of docs/performance.md (read just before writing)."""
    text = path.read_text() if path.exists() else "# Performance\n"
    start = text.find("\n" + SECTION + "\n")
    if start < 0:
        new = text.rstrip() + "\n\n" + section
    else:
        end = text.find("\n## ", start + 1)
        new = text[:start + 1] + section + ("" if end < 0 else text[end:])
    path.write_text(new)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--certs", type=int, default=1000, help="certificates of the renewal pass")
    ap.add_argument("--due-every", type=int, default=10, help="every Nth certificate is due")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", help="WUCME_WORKERS for the pass (default: undefined, 4)")
    ap.add_argument("--also-workers", default="16",
                    help="also time one pass per round with this WUCME_WORKERS ('' for none)")
    ap.add_argument("--noop-certs", type=int, default=10000)
    ap.add_argument("--noop-reps", type=int, default=5)
    ap.add_argument("--profile", type=Path, help="cProfile output of one no-op pass")
    ap.add_argument("--skip", default="", help="comma list of: renewal, noop, agent")
    ap.add_argument("--write", action="store_true", help=f"replace '{SECTION}' in {DOC.name}")
    ap.add_argument("-q", "--quiet", action="store_true")
    args = ap.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    verbose = not args.quiet
    if "renewal" not in skip and (not os.access(UACME, os.X_OK) or os.geteuid() != 0):
        print("bench_manage: needs /usr/bin/uacme and root (uacme trusts only the system "
              "store); --skip renewal to run the rest", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="wucme-bench-manage-") as tmp:
        work = Path(tmp)
        try:
            ren = None if "renewal" in skip else run_renewals(
                work / "renewal", args.certs, args.due_every, args.rounds, args.workers,
                args.also_workers, verbose)
            noop = None if "noop" in skip else run_noop(
                work / "noop", args.noop_certs, args.noop_reps, verbose, args.profile)
            agent = None if "agent" in skip else idle_agent_rss(work / "agent", verbose)
        except BenchError as e:
            print(f"bench_manage: {e}", file=sys.stderr)
            return 2
    text = report(ren, noop, agent)
    print(text)
    if args.write:
        write_doc(text)
        print(f"wrote {DOC}")
    return 0


def test_manage_bench() -> None:
    """pytest entry: runs the whole benchmark; fails only when a run did not do its work
    (timing is reported, never asserted).  WUCME_BENCH_WRITE=1 also rewrites the section."""
    import pytest
    if not os.access(UACME, os.X_OK) or os.geteuid() != 0:
        pytest.skip("needs /usr/bin/uacme and root (uacme trusts only the system store)")
    argv = ["--write"] if os.environ.get("WUCME_BENCH_WRITE") == "1" else []
    assert main(argv) == 0


if __name__ == "__main__":
    sys.exit(main())
