#!/usr/bin/env python3
"""wucme's set-up, demo, test and benchmark entry.

    python3 build.py setup   install what wucme needs: the Debian packages, and the project's
                             virtual environment .venv/ holding wucme (editable, native helpers
                             built) and the test packages
    python3 build.py demo    set up, then run the demo against a local Pebble CA
    python3 build.py test    set up, then run the test suite (pytest arguments may follow)
    python3 build.py bench   set up, then run the benchmarks in tests/bench/ (or the files named)
    python3 build.py mutate [--again] [MODULE...]
                             set up, add mutmut to the environment, then run mutation testing
                             on the modules named (all of MUTATE_TARGETS when none is named),
                             each with the tests that cover it; print the score per module and
                             the mutants that survived (docs/testing.md).  --again keeps the
                             last run's results: it finishes the mutants not yet run and runs
                             again those not caught, with the tests as they are now

Any python3 of 3.11 or later runs this file with nothing installed, Debian's own included:
that one is externally managed (PEP 668), so the Python packages go into a virtual
environment of the project's own and never into the interpreter that runs build.py, and
pytest and the demo run on that environment's interpreter.  `--venv DIR` before the verb puts
the environment in DIR instead of .venv/.  The set-up is redone only when setup.py,
build.py, pyproject.toml, native/ or the checkout's place change, or the environment or a
native module went missing; otherwise it costs one dpkg-query.

This file uses only the standard library.  The cffi builders of native/ are in
native/build_ffi.py, which setup.py names.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
NATIVE = HERE / "native"
VENV = HERE / ".venv"
#: In the environment: the key of the set-up it holds (see _setup_key).
STAMP = "wucme-setup.stamp"

#: Debian packages the set-up, the tests and the demo use (real parts, not mocks).  python3-venv
#: lets Debian's python3 make the environment; gcc, libc6-dev and python3-dev build native/.
DEBIAN_PACKAGES = ["python3-venv", "gcc", "libc6-dev", "python3-dev", "pebble", "uacme", "apache2",
                   "nginx", "libnginx-mod-stream", "wrk", "openssl", "ca-certificates", "postgresql", "msmtp"]
#: What the environment holds besides wucme: its dependencies, the test packages, and what
#: `pip install --no-build-isolation -e .` needs to build native/.
PYTHON_TEST_PACKAGES = ["pytest>=7", "aiosmtpd>=1.4", "hypothesis>=6", "mypy>=1.8", "setuptools>=64", "wheel", "cffi>=1.15",
                        "cryptography>=41", "pyOpenSSL>=23", "requests>=2.28", "idna>=3.4",
                        "psycopg[binary]>=3.1"]


#: Mutation testing (`build.py mutate`): the tool, installed into the environment for that verb
#: only, never part of the default test run.
MUTMUT = "mutmut>=3.3,<4"
#: module (a name for the verb) -> (the files mutated, the tests that pin them).  mutmut runs for
#: each mutant only the selected tests that reach the mutated function; tests that start
#: subprocesses (Pebble, real servers) are left out: the subprocess would not see the mutant.
MUTATE_TARGETS: dict[str, tuple[list[str], list[str]]] = {
    "core": (["wucme/core/*"],
             ["tests/unit/test_protocol_core.py", "tests/unit/test_jws.py", "tests/unit/test_crypto.py",
              "tests/unit/protocol", "tests/unit/test_core_edges.py"]),
    "vms.lnm": (["wucme/vms/lnm.py"],
                ["tests/unit/test_vms_lnm.py", "tests/unit/test_vms_files.py", "tests/unit/test_vms_secure.py",
                 "tests/unit/test_vms_filespec.py"]),
    "vms.filespec": (["wucme/vms/filespec.py"],
                     ["tests/unit/test_vms_filespec.py", "tests/unit/test_vms_files.py"]),
    "http._wire": (["wucme/http/_wire.py"], ["tests/unit/test_http_wire.py"]),
    "http._conn": (["wucme/http/_conn.py"], ["tests/unit/test_http_wire.py", "tests/loopback/test_builtin_client.py"]),
    "agent.schedule": (["wucme/agent/schedule.py"],
                       ["tests/agent/test_schedule.py", "tests/agent/test_daily_loop.py"]),
    "lock": (["wucme/lock.py"], ["tests/unit/test_lockmgr.py"]),
    "renewal": (["wucme/renewal.py"], ["tests/unit/test_repository.py", "tests/unit/test_reporting.py"]),
    "uacme": (["wucme/uacme/authorize.py", "wucme/uacme/cert.py", "wucme/uacme/acme.py"],
              ["tests/unit/protocol", "tests/unit/test_uacme_options.py"]),
    "challenge": (["wucme/challenge/store.py", "wucme/challenge/http01.py", "wucme/challenge/tlsalpn.py"],
                  ["tests/unit/test_admin.py", "tests/loopback/test_challenge_store.py",
                   "tests/loopback/test_challenge_http01.py", "tests/loopback/test_challenge_tlsalpn.py"]),
}
#: Mutants that behave exactly as the original (equivalent): left out of the score.  One per
#: line, "mutant-name  reason", in this file.
MUTATE_EQUIVALENT = HERE / "tests" / "mutation-equivalent.txt"
#: Where the verb works: one directory per module, holding mutmut's copy (mutants/).
MUTATE_DIR = HERE / ".mutate"
#: Per-mutant timeout: mutmut allows each mutant this many times its tests' clean duration,
#: plus MUTATE_TIMEOUT_CONSTANT seconds; past that the mutant counts as caught (it hung).
MUTATE_TIMEOUT_MULTIPLIER = 5.0
MUTATE_TIMEOUT_CONSTANT = 5.0


def _run(cmd: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=cwd, env=env)


# --- Debian -----------------------------------------------------------------------------------

def _missing_debian() -> list[str]:
    r = subprocess.run(["dpkg-query", "-W", "-f=${Package} ${Status}\n", *DEBIAN_PACKAGES],
                       capture_output=True, text=True)
    installed = {line.split()[0].split(":")[0] for line in r.stdout.splitlines()
                 if line.endswith("install ok installed")}
    return [p for p in DEBIAN_PACKAGES if p not in installed]


def setup_debian() -> None:
    """Install the missing Debian packages (as root, or through sudo)."""
    missing = _missing_debian() if shutil.which("dpkg-query") else []
    if not missing:
        return
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    _run(sudo + ["apt-get", "update", "-q"], env=env)
    _run(sudo + ["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing], env=env)
    # The packaged services must not hold the ports or run at all: tests start their own.
    for svc in ("apache2", "nginx", "postgresql"):
        subprocess.run(sudo + ["service", svc, "stop"], capture_output=True)


# --- the virtual environment ------------------------------------------------------------------

def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _native_names() -> list[str]:
    return sorted(p.stem for p in NATIVE.glob("*.h") if (NATIVE / f"{p.stem}.c").exists())


def _setup_key() -> str:
    """What the set-up depends on: the packaging files, native/, and where the checkout is
    (an editable install points at it)."""
    h = hashlib.sha256(str(HERE).encode())
    for p in [HERE / "build.py", HERE / "setup.py", HERE / "pyproject.toml", *sorted(NATIVE.iterdir())]:
        if p.is_file():
            h.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def _is_set_up(venv: Path) -> bool:
    stamp = venv / STAMP
    built = all(any((HERE / "wucme" / "_native").glob(f"_{n}.*so")) for n in _native_names())
    return (venv_python(venv).exists() and built and stamp.exists()
            and stamp.read_text().strip() == _setup_key())


def setup_python(venv: Path) -> None:
    """The environment *venv* with wucme (editable, building native/) and the test packages."""
    if _is_set_up(venv):
        return
    old = os.umask(0o022)  # the web tests run the environment's python as www-data
    try:
        if venv.exists() and not venv_python(venv).exists():
            # Made by an interpreter that is gone: make it again.
            if not (venv / "pyvenv.cfg").exists():
                raise SystemExit(f"%WUCME-F-NOTVENV, {venv} exists and is not a virtual environment")
            shutil.rmtree(venv)
        if not venv.exists():
            _run([sys.executable, "-m", "venv", str(venv)])
        (venv / STAMP).unlink(missing_ok=True)
        pip = [str(venv_python(venv)), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        _run(pip + PYTHON_TEST_PACKAGES)
        _run(pip + ["--no-build-isolation", "-e", str(HERE)], cwd=HERE)
        (venv / STAMP).write_text(_setup_key() + "\n")
    finally:
        os.umask(old)


def setup(venv: Path) -> None:
    setup_debian()
    setup_python(venv)


def venv_env(venv: Path) -> dict[str, str]:
    """The environment a command sees when *venv* is activated."""
    env = dict(os.environ, VIRTUAL_ENV=str(venv),
               PATH=os.pathsep.join([str(venv / "bin"), os.environ.get("PATH", os.defpath)]))
    env.pop("PYTHONHOME", None)
    return env


# --- mutation testing -------------------------------------------------------------------------

def _equivalent_mutants() -> dict[str, str]:
    out: dict[str, str] = {}
    if MUTATE_EQUIVALENT.exists():
        for line in MUTATE_EQUIVALENT.read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                name, _, reason = line.partition(" ")
                out[name] = reason.strip()
    return out


def _mutmut_results(mutmut: str, work: Path, env: dict[str, str]) -> list[tuple[str, str]]:
    r = subprocess.run([mutmut, "results", "--all", "true"], cwd=work, env=env,
                       capture_output=True, text=True)
    out = []
    for line in r.stdout.splitlines():
        mutant, sep, status = line.strip().rpartition(": ")
        if sep and mutant.startswith("wucme."):
            out.append((mutant, status))
    return out


def _mutate_one(name: str, venv: Path, env: dict[str, str],
                again: bool = False) -> tuple[int, int, int, list[str]]:
    """Run mutmut on one module of MUTATE_TARGETS in its own work directory; return (caught,
    counted, equivalent, the names of the mutants not caught).  With *again*, the last run's
    verdicts stand (tests were added, none taken away): the mutants not yet run are run, then
    those not caught are run again."""
    files, tests = MUTATE_TARGETS[name]
    work = MUTATE_DIR / name
    mutmut = str(venv / "bin" / "mutmut")
    again = again and (work / "mutants").is_dir()
    if not again:
        if work.exists():
            shutil.rmtree(work)  # a fresh copy: the source may have changed since the last run
        work.mkdir(parents=True)
        for entry in ("wucme", "tests", "pyproject.toml"):
            (work / entry).symlink_to(HERE / entry)
    lines = ["[mutmut]", "source_paths = wucme", "only_mutate ="]
    lines += [f"    {f}" for f in files]
    lines += ["pytest_add_cli_args_test_selection ="] + [f"    {t}" for t in tests]
    lines += ["pytest_add_cli_args =", "    -p", "    no:cacheprovider",
              f"timeout_multiplier = {MUTATE_TIMEOUT_MULTIPLIER}",
              f"timeout_constant = {MUTATE_TIMEOUT_CONSTANT}", ""]
    (work / "setup.cfg").write_text("\n".join(lines))
    log = work / "mutmut.log"
    print(f"--- {name}: mutating {' '.join(files)} (log: {log.relative_to(HERE)})", flush=True)
    run = [mutmut, "run", "--max-children", str(os.cpu_count() or 1)]
    with log.open("a" if again else "w") as out:
        rc = subprocess.call(run, cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT)
        if again and rc == 0:
            retry = [m for m, status in _mutmut_results(mutmut, work, env)
                     if status in ("survived", "no tests", "suspicious")]
            if retry:
                rc = subprocess.call(run + retry, cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT)
    if rc != 0:
        print(f"%WUCME-E-MUTATE, mutmut failed on {name} (exit {rc}); see {log}", file=sys.stderr)
    equivalent = _equivalent_mutants()
    caught = counted = skipped = 0
    missed: list[str] = []
    for mutant, status in _mutmut_results(mutmut, work, env):
        if mutant in equivalent:
            skipped += 1
            continue
        if status in ("killed", "timeout"):
            caught, counted = caught + 1, counted + 1
        elif status in ("survived", "no tests", "suspicious"):
            counted += 1
            missed.append(f"{mutant}: {status}")
    return caught, counted, skipped, missed


def mutate(names: list[str], venv: Path, env: dict[str, str]) -> int:
    again = "--again" in names
    names = [n for n in names if n != "--again"]
    unknown = [n for n in names if n not in MUTATE_TARGETS]
    if unknown:
        print(f"%WUCME-E-NOMODULE, no mutation target {', '.join(unknown)}; the targets are "
              f"{', '.join(MUTATE_TARGETS)}", file=sys.stderr)
        return 2
    if subprocess.run([str(venv_python(venv)), "-c", "import mutmut"], capture_output=True).returncode:
        _run([str(venv_python(venv)), "-m", "pip", "install", "-q", "--disable-pip-version-check", MUTMUT])
    scores = []
    for name in names or list(MUTATE_TARGETS):
        caught, counted, skipped, missed = _mutate_one(name, venv, env, again)
        for m in missed:
            print(f"    not caught  {m}")
        scores.append((name, caught, counted, skipped))
    print("\nmodule            caught / mutants  score   (equivalent, left out)")
    for name, caught, counted, skipped in scores:
        pct = f"{100.0 * caught / counted:5.1f}%" if counted else "  -   "
        print(f"{name:<17} {caught:6} / {counted:<7} {pct}  ({skipped})")
    print("Show a mutant: cd .mutate/MODULE && ../../.venv/bin/mutmut show NAME")
    return 0


# --- the verbs --------------------------------------------------------------------------------

def main(argv: list[str]) -> int:
    if sys.version_info < (3, 11):
        print(f"%WUCME-F-PYTHON, wucme needs Python 3.11 or later; this is {sys.version.split()[0]}",
              file=sys.stderr)
        return 2
    venv = VENV
    if argv and argv[0].startswith("--venv"):
        if "=" in argv[0]:
            venv, argv = Path(argv[0].partition("=")[2]), argv[1:]
        elif len(argv) > 1:
            venv, argv = Path(argv[1]), argv[2:]
        else:
            print("%WUCME-F-VENV, --venv needs a directory", file=sys.stderr)
            return 2
        venv = venv.absolute()
    verb = argv[0] if argv else "help"
    rest = argv[1:]
    if verb not in ("setup", "test", "bench", "demo", "mutate"):
        print(__doc__)
        return 0 if verb in ("help", "-h", "--help") else 2
    setup(venv)
    python = str(venv_python(venv))
    env = venv_env(venv)
    if verb == "test":
        return subprocess.call([python, "-m", "pytest", "-q", *rest], cwd=HERE, env=env)
    if verb == "bench":
        # All of tests/bench/, unless the arguments name benchmark files of their own.
        named = any(not a.startswith("-") and (HERE / a).exists() for a in rest)
        where = [] if named else [str(HERE / "tests" / "bench")]
        return subprocess.call([python, "-m", "pytest", "-q", "-s", *where, *rest], cwd=HERE, env=env)
    if verb == "mutate":
        return mutate(rest, venv, env)
    if verb == "demo":
        # The demo uses the test harness (tests/harness: Pebble starter), which is never installed.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE / "tests"), env.get("PYTHONPATH")]))
        return subprocess.call([python, "-m", "harness.demo", *rest], cwd=HERE, env=env)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
