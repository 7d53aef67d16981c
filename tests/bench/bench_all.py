"""`python3 build.py bench`: wucme, uacme, lego and certbot side by side on one machine, in one run.

What it measures (medians of repeated runs, ratios taken within the run):
- issue 1, 10 and 100 names on one Pebble: `wucme issue` (its own http-01 responder),
  `wucme --uacme` and uacme with the same webroot hook, lego and certbot with a webroot;
- start-up: `wucme version` against the bare interpreter;
- renewal: `wucme manage` against a uacme loop and a `lego renew` loop, 100 due out of 1,000
  (tests/bench/bench_manage.py; lego renews only the first 10 of the 100 due, it is slow);
- the no-op pass over 10,000 and 100,000 certificates: time and peak memory;
- tls-alpn-01 handshakes per second, `wucme alpn` against ualpn (same worker count), and http-01
  requests per second, wucme's own listener and the CGI under Apache (bench_challenges.py).
It writes the section "## Side by side" of docs/performance.md and docs/performance.png.
Benchmarks, not tests: nothing here is asserted in the default test run.  Needs root (uacme
trusts only the system store).  `--quick` runs a smaller set in a few minutes.
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the other bench modules
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the harness

import bench_challenges  # noqa: E402
import bench_issue  # noqa: E402
import bench_manage  # noqa: E402
from bench_issue import Bench, BenchError, Run, names_for, timed  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "performance.md"
PLOT = REPO / "docs" / "performance.png"
SECTION = "## Side by side"
LEGO = shutil.which("lego") or "/usr/bin/lego"
CERTBOT = shutil.which("certbot") or "/usr/bin/certbot"
ISSUE_TOOLS = ("wucme issue", "wucme --uacme", "uacme", "lego", "certbot")
SLOW_PEERS = ("lego", "certbot")


@dataclass
class Plan:
    sizes: list[int]
    reps: dict[int, int]
    slow_reps: dict[int, int]
    renew: tuple[int, int]  # (certificates, due every)
    noop: list[int]
    noop_reps: int
    seconds: float
    rounds: int
    #: How many of the due certificates `lego renew` renews (about 5 s each against Pebble);
    #: it checks all the ones not due.
    lego_due: int = 10


FULL = Plan([1, 10, 100], {1: 5, 10: 3, 100: 2}, {1: 2, 10: 1, 100: 1}, (1000, 10), [10000, 100000], 2, 4.0, 2)
QUICK = Plan([1, 10], {1: 3, 10: 2}, {1: 1, 10: 1}, (100, 10), [1000, 10000], 1, 2.0, 1)


@dataclass
class Results:
    issue: dict[tuple[str, int], list[Run]] = field(default_factory=dict)
    failures: dict[str, list[str]] = field(default_factory=dict)
    startup: dict[str, float] = field(default_factory=dict)
    renew: Any = None
    noop: dict[int, Any] = field(default_factory=dict)
    challenges: Any = None
    notes: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def median(self, tool: str, n: int, attr: str = "wall") -> float | None:
        runs = self.issue.get((tool, n))
        return statistics.median(getattr(r, attr) for r in runs) if runs else None


def say(text: str) -> None:
    print(text, flush=True)


class AllBench(Bench):
    """bench_issue's Pebble, webroot server and hook, with wucme's verbs, lego and certbot added."""

    def __enter__(self) -> "AllBench":
        super().__enter__()
        # lego and certbot write WEBROOT/.well-known/acme-challenge/TOKEN; the server serves
        # the hook's directory, so the peers' webroot points there.
        self.peer_root = self.workdir / "peer-webroot"
        (self.peer_root / ".well-known").mkdir(parents=True)
        (self.peer_root / ".well-known" / "acme-challenge").symlink_to(self.webroot)
        self.wenv = dict(self.env, WUCME_HERE=str(self.workdir / "here"), WUCME_LNM_DIR=str(self.workdir / "lnm"),
                         WUCME_CA=self.pebble.directory_url, WUCME_CHALLENGE="http-01",
                         WUCME_HTTP01=f"127.0.0.1:{self.pebble.http_port}")
        (self.workdir / "here").mkdir()
        self.penv = dict(self.env, LEGO_CA_CERTIFICATES=self.pebble.ca_bundle,
                         REQUESTS_CA_BUNDLE=self.pebble.ca_bundle)
        return self

    def own_responder(self, run: Callable[[], Run]) -> Run:
        """`wucme issue` answers http-01 on Pebble's port itself: the webroot server steps aside."""
        assert self.server is not None
        self.server.stop()
        try:
            return run()
        finally:
            for _ in range(50):
                try:
                    self.server = bench_issue.ChallengeDirServer(self.webroot, self.pebble.http_port).start()
                    break
                except OSError:
                    time.sleep(0.1)

    def setup_all(self, peers: Sequence[str]) -> None:
        self.setup_accounts()
        _, rc, err = timed([sys.executable, "-m", "wucme", "register", "bench-wucme@example.org"], self.wenv)
        if rc != 0:
            raise BenchError(f"wucme register: exit {rc}\n{err}")
        if "certbot" in peers:
            _, rc, err = timed([CERTBOT, *self.certbot_dirs(), "register", "--server", self.pebble.directory_url,
                                "--agree-tos", "-m", "bench-certbot@example.org", "--no-eff-email",
                                "--non-interactive"], self.penv)
            if rc != 0:
                raise BenchError(f"certbot register: exit {rc}\n{err}")

    def certbot_dirs(self) -> list[str]:
        d = self.workdir / "certbot"
        return ["--config-dir", str(d / "config"), "--work-dir", str(d / "work"), "--logs-dir", str(d / "logs")]

    def issue_with(self, tool: str, names: list[str]) -> Run:
        if tool == "uacme":
            return self.issue("uacme", names)
        if tool == "wucme --uacme":
            return self.issue("wucme", names)
        if tool == "wucme issue":
            cmd = [sys.executable, "-m", "wucme", "issue", "/noprogress", ",".join(names)]
            r, rc, err = self.own_responder(lambda: self._timed_rc(cmd, self.wenv))
        elif tool == "lego":
            cmd = [LEGO, "--accept-tos", "--email", "bench-lego@example.org", "--server", self.pebble.directory_url,
                   "--path", str(self.workdir / "lego"), "--http", "--http.webroot", str(self.peer_root),
                   *[a for n in names for a in ("--domains", n)], "run"]
            r, rc, err = timed(cmd, self.penv)
        elif tool == "certbot":
            cmd = [CERTBOT, *self.certbot_dirs(), "certonly", "--non-interactive", "--server",
                   self.pebble.directory_url, "--webroot", "-w", str(self.peer_root), "--force-renewal",
                   "--cert-name", names[0], *[a for n in names for a in ("-d", n)]]
            r, rc, err = timed(cmd, self.penv)
        else:
            raise ValueError(tool)
        if rc != 0:
            raise BenchError(f"{tool} issue ({len(names)} names): exit {rc}{self.why_failed(tool)}\n{err[-1500:]}")
        return r

    def why_failed(self, tool: str) -> str:
        """certbot 2.1 does not retry a badNonce (RFC 8555 section 6.5) while it polls the
        authorizations, and Pebble rejects 5% of nonces: with 100 names most runs meet one."""
        log = self.workdir / "certbot" / "logs" / "letsencrypt.log"
        if tool == "certbot" and log.exists() and "badNonce" in log.read_text(errors="replace")[-20000:]:
            return " (a badNonce while polling the authorizations, which certbot 2.1 does not retry)"
        return ""

    def _timed_rc(self, cmd: list[str], env: dict[str, str]) -> tuple[Run, int, str]:
        return timed(cmd, env)


def run_issue(work: Path, plan: Plan, peers: Sequence[str], res: Results) -> None:
    tools = [t for t in ISSUE_TOOLS if t not in SLOW_PEERS or t in peers]
    with AllBench(work / "issue", verbose=False) as b:
        b.setup_all(peers)
        for tool in tools:  # untimed: keys, accounts (lego makes its own here), caches
            try:
                b.issue_with(tool, names_for(1))
            except BenchError as exc:
                res.failures.setdefault(tool, []).append(f"warm-up: {str(exc).splitlines()[0]}")
        res.startup["uacme -V"] = statistics.median(b.run("uacme", "-V")[0].wall for _ in range(5))
        for n in plan.sizes:
            names = names_for(n)
            for tool in tools:
                reps = plan.slow_reps.get(n, 0) if tool in SLOW_PEERS else plan.reps[n]
                for _ in range(reps):
                    try:
                        r = b.issue_with(tool, names)
                    except BenchError as exc:
                        res.failures.setdefault(tool, []).append(f"{n} names: {str(exc).splitlines()[0]}")
                        break
                    res.issue.setdefault((tool, n), []).append(r)
                    say(f"  issue {n:3} names  {tool:14} {r.wall:8.3f} s  rss {r.maxrss_kib / 1024:6.1f} MiB")


def run_startup(res: Results) -> None:
    env = dict(os.environ, PYTHONPYCACHEPREFIX=str(bench_issue.PYCACHE))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("GATEWAY_INTERFACE", None)
    for label, cmd in (("python -c pass", [sys.executable, "-c", "pass"]),
                       ("wucme version", [sys.executable, "-m", "wucme", "version"])):
        timed(cmd, env)
        res.startup[label] = statistics.median(timed(cmd, env)[0].wall for _ in range(15))
    script = Path(sys.executable).parent / "wucme"
    if script.exists():
        timed([str(script), "version"], env)
        res.startup["wucme version (console script)"] = statistics.median(
            timed([str(script), "version"], env)[0].wall for _ in range(15))


def fmt(x: float | None, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def ratio(a: float | None, b: float | None) -> str:
    return "-" if a is None or b is None or b == 0 else f"{a / b:.2f}"


def report(res: Results, plan: Plan, quick: bool) -> str:
    m = bench_issue.machine()
    lines = [SECTION, "",
             "Generated by `python3 build.py bench" + (" --quick" if quick else "") + "` "
             "(tests/bench/bench_all.py): every tool in one run, on one machine, so the ratios compare like "
             "with like; medians of the runs.  Nothing here is a test.", "",
             f"- Date: {m['date']}",
             f"- Machine: {m['cpus']} CPUs, {m['cpu']}, Linux {m['kernel']}; load average at the end "
             f"{os.getloadavg()[0]:.2f} (the machine is shared: compare within a row)",
             f"- Versions: wucme {m['wucme']} on Python {m['python']}; uacme {m['uacme']}, "
             f"lego {bench_issue._pkg_version('lego')}, certbot {bench_issue._pkg_version('certbot')}, "
             f"Pebble {m['pebble']} (Debian)",
             f"- Time taken by each part (s): " + ", ".join(f"{k} {v:.0f}" for k, v in res.seconds.items()),
             "", "![time to issue against names, per tool](performance.png)", "",
             "### Issue (one certificate for N names; wall seconds, median)", "",
             "`wucme issue` answers http-01 itself (WUCME_HTTP01); `wucme --uacme` and uacme run the same "
             "webroot hook script (two /bin/sh runs per name); lego and certbot use a webroot served by the "
             "same server.  Runs: wucme and uacme " + ", ".join(f"{n} names x{plan.reps[n]}" for n in plan.sizes)
             + "; lego and certbot capped at " + ", ".join(f"{n} names x{plan.slow_reps.get(n, 0)}"
                                                           for n in plan.sizes) + " (they are slow).", "",
             "| names | " + " | ".join(ISSUE_TOOLS) + " | uacme / wucme issue | uacme / wucme --uacme |",
             "|---:|" + "---:|" * (len(ISSUE_TOOLS) + 2)]
    for n in plan.sizes:
        med = {t: res.median(t, n) for t in ISSUE_TOOLS}
        lines.append(f"| {n} | " + " | ".join(fmt(med[t]) for t in ISSUE_TOOLS)
                     + f" | {ratio(med['uacme'], med['wucme issue'])} | {ratio(med['uacme'], med['wucme --uacme'])} |")
    peaks = {t: max((r.maxrss_kib for (tt, _), runs in res.issue.items() if tt == t for r in runs), default=0) / 1024
             for t in ISSUE_TOOLS}
    lines += ["", "Peak resident memory over the issue runs (MiB): "
              + ", ".join(f"{t} {peaks[t]:.1f}" for t in ISSUE_TOOLS if peaks[t]) + "."]
    for tool, msgs in res.failures.items():
        lines.append(f"- {tool} failed: " + "; ".join(msgs[:3]))
    lines += ["", "### Start-up", "",
              "| command | median wall (ms) |", "|---|---:|"]
    lines += [f"| `{k}` | {v * 1000:.1f} |" for k, v in res.startup.items()]
    if res.renew is not None:
        r = res.renew
        lg = r.lego
        lines += ["", f"### Renewal: {r.due} due out of {r.certs}", "",
                  "| wucme manage (s) | uacme loop (s) | uacme loop / wucme | lego loop (s) | lego loop / wucme |",
                  "|---:|---:|---:|---:|---:|",
                  f"| {r.wucme_wall:.2f} | {r.median('uacme_wall'):.2f} | {r.ratio:.1f} | "
                  + ("- | - |" if lg is None else
                     f"{lg.full_loop:.2f}{' (scaled up)' if lg.capped else ''} | {lg.full_loop / r.wucme_wall:.1f} |"),
                  ""]
        if lg is None:
            lines.append("lego renew in a loop was not measured in this run (see the notes below).")
        else:
            lines.append(
                f"lego loop: `lego renew --days {lg.days} --no-random-sleep` once per certificate, one after another "
                f"(as a cron loop would), same certificates and keys copied into lego's layout, account registered "
                f"untimed; checked: exit 0, the renewed ones have a new serial, the others untouched.  "
                f"Measured: {lg.wall:.2f} s for {lg.due_run} renewals ({lg.per_renewal:.2f} s each) and "
                f"{lg.skip_run} not-due checks ({lg.per_skip * 1000:.0f} ms each); CPU {lg.cpu:.2f} s"
                + (f"; runs dropped and made again after a badNonce: {lg.retries}" if lg.retries else "") + ".  "
                + (f"**Capped**: lego renewed only {lg.due_run} of the {lg.due} due certificates (about 5 s each "
                   f"against Pebble: fixed polling intervals); the lego loop figure above is "
                   f"{lg.per_renewal:.2f} s x {lg.due} + {lg.per_skip:.3f} s x {lg.not_due}, not a measured "
                   f"whole loop." if lg.capped else "Not capped: the whole loop was run."))
    if res.noop:
        lines += ["", "### No-op pass (`wucme manage`, nothing due)", "",
                  "| certificates | wall (s) | peak RSS (MiB) |", "|---:|---:|---:|"]
        for n, nr in sorted(res.noop.items()):
            lines.append(f"| {n} | {nr.wall:.3f} | {max(p.maxrss_kib for p in nr.runs) / 1024:.1f} |")
    if res.challenges is not None:
        c = res.challenges
        lines += ["", "### Challenge responders", "",
                  "| http-01 responder | requests/s |", "|---|---:|"]
        for label, (rate, client, conns) in c.http.items():
            what = bench_challenges.HTTP_LABELS.get(label, label)
            lines.append(f"| {what} ({client}, {conns} connections) | {rate:.0f} |")
        lines += ["", "| client threads | ualpn handshakes/s | `wucme alpn` handshakes/s | wucme/ualpn |",
                  "|---:|---:|---:|---:|"]
        for t in sorted({t for _, t in c.alpn}):
            u, w = c.alpn_median("ualpn", t), c.alpn_median("wucme", t)
            lines.append(f"| {t} | {u:.0f} | {w:.0f} | {w / u:.2f} |")
        lines.append("\nBoth servers run with their default 2 worker processes (`-n 2`), `-P 0`.")
    lines += ["", "### Targets", ""] + targets(res) + [""]
    if res.notes:
        lines += ["### Notes", ""] + [f"- {n}" for n in res.notes] + [""]
    return "\n".join(lines)


def targets(res: Results) -> list[str]:
    out = []

    def check(what: str, value: float | None, ok: Callable[[float], bool], shown: str) -> None:
        if value is None:
            out.append(f"- {what}: not measured in this run.")
        else:
            out.append(f"- {what}: {shown.format(value)}, {'met' if ok(value) else '**not met**'}.")

    for n, want in ((1, 2.5), (10, 6.0), (100, 25.0)):
        u, w = res.median("uacme", n), res.median("wucme issue", n)
        check(f"wucme issue vs uacme, {n} name(s) (>= {want:g}x)", None if u is None or w is None else u / w,
              lambda v, want=want: v >= want, "{:.2f}x")
    for n, want in ((1, 1.0), (100, 5.0)):
        u, w = res.median("uacme", n), res.median("wucme --uacme", n)
        check(f"wucme --uacme vs uacme, {n} name(s) (>= {want:g}x)", None if u is None or w is None else u / w,
              lambda v, want=want: v >= want, "{:.2f}x")
    check("wucme version (< 25 ms)", res.startup.get("wucme version"), lambda v: v < 0.025,
          "{:.3f} s")
    if res.challenges is not None:
        http = res.challenges.http
        idle = http.get("apache-python", (None,))[0]
        check("http-01 CGI under Apache (>= 60 requests/s)", http.get("apache", (None,))[0],
              lambda v: v >= 60, "{:.0f}/s" + (f" (a Python CGI that does nothing: {idle:.0f}/s)" if idle else ""))
        for t in sorted({t for _, t in res.challenges.alpn}):
            c = res.challenges
            check(f"wucme alpn vs ualpn, {t} client thread(s) (>= 1.0x)",
                  c.alpn_median("wucme", t) / c.alpn_median("ualpn", t), lambda v: v >= 1.0, "{:.2f}x")
    for n, limit in ((10000, 0.3), (100000, 3.0)):
        nr = res.noop.get(n)
        check(f"no-op pass over {n:,} (< {limit:g} s)", nr.wall if nr else None, lambda v, limit=limit: v < limit,
              "{:.3f} s")
    if 10000 in res.noop and 100000 in res.noop:
        a = max(p.maxrss_kib for p in res.noop[10000].runs) / 1024
        b = max(p.maxrss_kib for p in res.noop[100000].runs) / 1024
        check("no-op pass memory, 100,000 within 10 MiB of 10,000", b - a, lambda v: v <= 10, "+{:.1f} MiB")
    issue_peak = max((r.maxrss_kib for (t, _), runs in res.issue.items() if t == "wucme issue" for r in runs),
                     default=None)
    check("wucme issue peak memory (< 32 MiB)", None if issue_peak is None else issue_peak / 1024,
          lambda v: v < 32, "{:.1f} MiB")
    return out


def plot(res: Results, plan: Plan, path: Path = PLOT) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=110)
    styles = {"wucme issue": ("tab:blue", "o", "-"), "wucme --uacme": ("tab:cyan", "s", "-"),
              "uacme": ("tab:red", "^", "--"), "lego": ("tab:green", "v", ":"), "certbot": ("tab:orange", "D", ":")}
    for tool in ISSUE_TOOLS:
        pts = [(n, res.median(tool, n)) for n in plan.sizes if res.median(tool, n) is not None]
        if not pts:
            continue
        color, marker, line = styles[tool]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=marker, linestyle=line, color=color,
                label=tool, linewidth=2)
        ax.annotate(f"{pts[-1][1]:.3g} s" if pts[-1][1] < 100 else f"{pts[-1][1]:.0f} s", pts[-1], textcoords="offset points", xytext=(6, 0),
                    fontsize=8, color=color, va="center")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(plan.sizes)
    ax.set_xticklabels([str(n) for n in plan.sizes])
    ax.set_xlabel("names in the certificate")
    ax.set_ylabel("seconds to issue (median, log scale)")
    ax.set_title("Time to issue one certificate, per tool (lower is better)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper left")
    fig.text(0.01, 0.01, f"{bench_issue.machine()['date']}, one Pebble on loopback; "
             "docs/performance.md has the figures", fontsize=7, color="gray")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path)
    plt.close(fig)


def write_doc(section: str, path: Path = DOC) -> None:
    """Replace (or put first) the "## Side by side" section of docs/performance.md."""
    text = path.read_text()
    pat = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pat.search(text):
        text = pat.sub(lambda _: section.rstrip() + "\n\n", text, count=1)
    else:
        first = re.search(r"^## ", text, re.M)
        at = first.start() if first else len(text)
        text = text[:at] + section.rstrip() + "\n\n" + text[at:]
    path.write_text(text)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1 and 10 names, 100 of 1,000 renewals become "
                    "10 of 100, no-op passes over 1,000 and 10,000: a few minutes")
    ap.add_argument("--skip", default="", help="comma-separated parts to leave out: issue, startup, renew, "
                    "noop, challenges, lego, certbot")
    ap.add_argument("--no-write", action="store_true", help="print only; leave docs/ alone")
    o = ap.parse_args(argv)
    plan = QUICK if o.quick else FULL
    skip = {s.strip() for s in o.skip.split(",") if s.strip()}
    peers = [p for p in SLOW_PEERS if p not in skip and Path(LEGO if p == "lego" else CERTBOT).exists()]
    res = Results()
    for p in SLOW_PEERS:
        if p not in peers:
            res.notes.append(f"{p} was not run ({'left out' if p in skip else 'not installed'}).")
    if not o.quick and "lego" in peers:
        res.notes.append("lego and certbot ran once per size for 10 and 100 names: lego takes minutes for "
                         "100 names (fixed polling intervals).")
    if "lego" in peers and not o.quick:
        res.notes.append(f"lego renew in a loop renews only the first {plan.lego_due} of the due certificates "
                         "(it takes about 5 s each) and checks all the others; its loop time is scaled up from "
                         "those runs.")
    work = Path(tempfile.mkdtemp(prefix="wucme-bench-all-"))
    try:
        parts: list[tuple[str, Callable[[], None]]] = [
            ("startup", lambda: run_startup(res)),
            ("issue", lambda: run_issue(work, plan, peers, res)),
            ("challenges", lambda: setattr(res, "challenges",
                                           bench_challenges.run(plan.seconds, plan.rounds, [1, 4]))),
            ("renew", lambda: setattr(res, "renew", bench_manage.run_renewals(
                work / "renew", plan.renew[0], plan.renew[1], 1, None, None, True,
                lego=LEGO if "lego" in peers else None, lego_due_cap=plan.lego_due))),
        ]
        for n in plan.noop:
            parts.append((f"noop {n}", lambda n=n: res.noop.__setitem__(
                n, bench_manage.run_noop(work / f"noop{n}", n, plan.noop_reps, True, None))))
        for name, part in parts:
            if name.split()[0] in skip:
                continue
            say(f"== {name}")
            t0 = time.monotonic()
            try:
                (work / name.replace(" ", "")).mkdir(exist_ok=True)
                part()
            except (BenchError, bench_manage.BenchError, bench_challenges.BenchError, OSError) as exc:
                res.notes.append(f"{name}: failed: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
                say(f"   {name} failed: {exc}")
            res.seconds[name] = time.monotonic() - t0
    finally:
        shutil.rmtree(work, ignore_errors=True)
    section = report(res, plan, o.quick)
    say(section)
    if not o.no_write:
        write_doc(section)
        if res.issue:
            plot(res, plan)
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.exit(main())
