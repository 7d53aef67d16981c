#!/usr/bin/env python3
"""wucme's set-up, demo, test and benchmark entry.

    python3 build.py setup   install what wucme needs: the Debian packages, and the project's
                             virtual environment .venv/ holding wucme (editable, native helpers
                             built) and the test packages
    python3 build.py demo    set up, then run the demo against a local Pebble CA
    python3 build.py test    set up, then run the test suite (pytest arguments may follow)
    python3 build.py bench   set up, then run the benchmarks in tests/bench/ (or the files named)
    python3 build.py fuzz [MINUTES] [TARGET ...]
                             set up, install atheris into the environment, then fuzz each parser
                             of tests/fuzz/targets.py (or the ones named) for MINUTES (default 1)

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
#: What `fuzz` adds to the environment (coverage-guided fuzzing; not needed by the tests, whose
#: hypothesis part runs in every test run).
PYTHON_FUZZ_PACKAGES = ["atheris>=2.3"]


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


def fuzz(python: str, env: dict[str, str], rest: list[str]) -> int:
    """Each atheris target (tests/fuzz/atheris_parsers.py) for the minutes given; the inputs
    that break a parser are left in .fuzz/ (crash-*, timeout-*, oom-*)."""
    minutes = 1.0
    if rest and rest[0].replace(".", "", 1).isdigit():
        minutes, rest = float(rest[0]), rest[1:]
    if subprocess.call([python, "-c", "import atheris"], stderr=subprocess.DEVNULL) != 0:
        if subprocess.call([python, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                            *PYTHON_FUZZ_PACKAGES]) != 0:
            print("%WUCME-E-NOATHERIS, atheris did not install (it needs a wheel for this Python or "
                  "clang with libFuzzer to build); the hypothesis fuzz tests still run: "
                  "python3 build.py test tests/fuzz", file=sys.stderr)
            return 1
    env = dict(env, PYTHONPATH=os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")])))
    names = rest or subprocess.run(
        [python, "-c", "from tests.fuzz.targets import TARGETS; print(' '.join(sorted(TARGETS)))"],
        cwd=HERE, env=env, capture_output=True, text=True, check=True).stdout.split()
    out = HERE / ".fuzz"
    out.mkdir(exist_ok=True)
    failed = []
    for name in names:
        print(f"-- fuzzing {name} for {minutes:g} min", flush=True)
        rc = subprocess.call([python, "-m", "tests.fuzz.atheris_parsers", name,
                              f"-max_total_time={int(minutes * 60)}", "-timeout=10",
                              "-rss_limit_mb=2048", "-print_final_stats=1",
                              f"-artifact_prefix={out}/{name}-"], cwd=HERE, env=env)
        if rc != 0:
            failed.append(name)
    print(f"fuzzed {len(names)} targets, {minutes:g} min each; "
          + (f"failed: {' '.join(failed)} (inputs in {out})" if failed else "no failures"))
    return 1 if failed else 0


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
    if verb not in ("setup", "test", "bench", "demo", "fuzz"):
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
    if verb == "fuzz":
        return fuzz(python, env, rest)
    if verb == "demo":
        # The demo uses the test harness (tests/harness: Pebble starter), which is never installed.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE / "tests"), env.get("PYTHONPATH")]))
        return subprocess.call([python, "-m", "harness.demo", *rest], cwd=HERE, env=env)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
