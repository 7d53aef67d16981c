#!/usr/bin/env python3
"""wucme's set-up, demo, test and benchmark entry.

    python3 build.py setup   install what wucme needs: the Debian packages, and the project's
                             virtual environment .venv/ holding wucme (editable, native helpers
                             built) and the test packages
    python3 build.py demo    set up, then run the demo against a local Pebble CA
    python3 build.py test    set up, then run the test suite (pytest arguments may follow)
    python3 build.py bench   set up (and the bench's own packages: lego, certbot, matplotlib),
                             then run wucme, uacme, lego and certbot side by side and write
                             docs/performance.md and docs/performance.png (tests/bench/bench_all.py;
                             --quick for a short run); with benchmark files named, pytest runs them
    python3 build.py install [--prefix DIR] [--bindir DIR] [--root DIR] [--enable]
                             install wucme for production (default prefix /opt/wucme): see
                             docs/install.md; `uninstall` with the same options undoes it
    python3 build.py fuzz [MINUTES] [TARGET ...]
                             set up, install atheris into the environment, then fuzz each parser
                             of tests/fuzz/targets.py (or the ones named) for MINUTES (default 1)
    python3 build.py mutate [--again] [MODULE...]
                             set up, add mutmut to the environment, then run mutation testing
                             on the modules named (all of MUTATE_TARGETS when none is named),
                             each with the tests that cover it; print the score per module and
                             the mutants that survived (docs/testing.md).  --again keeps the
                             last run's results: it finishes the mutants not yet run and runs
                             again those not caught (but not those listed as equivalent), with
                             the tests as they are now

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
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
NATIVE = HERE / "native"
VENV = HERE / ".venv"
#: In the environment: the key of the set-up it holds (see _setup_key).
STAMP = "wucme-setup.stamp"

#: Debian packages the set-up, the tests and the demo use (real parts, not mocks).  python3-venv
#: lets Debian's python3 make the environment; gcc, libc6-dev, python3-dev and libssl-dev (the
#: headers of the system's libcrypto, which native/pkey.c links) build native/.
DEBIAN_PACKAGES = ["python3-venv", "gcc", "libc6-dev", "python3-dev", "libssl-dev", "pebble", "uacme", "apache2",
                   "nginx", "libnginx-mod-stream", "wrk", "openssl", "ca-certificates", "postgresql", "msmtp",
                   "chromium", "groff-base"]
#: What the environment holds besides wucme: its dependencies, the test packages, and what
#: `pip install --no-build-isolation -e .` needs to build native/.
#: Only `bench` installs these: the peers it measures wucme against, and its plot.
BENCH_DEBIAN_PACKAGES = ["lego", "certbot", "time"]
BENCH_PYTHON_PACKAGES = ["matplotlib>=3.5"]
PYTHON_TEST_PACKAGES = ["pytest>=7", "aiosmtpd>=1.4", "hypothesis>=6", "mypy>=1.8", "setuptools>=64", "wheel", "cffi>=1.15",
                        "cryptography>=41", "pyOpenSSL>=23", "requests>=2.28", "idna>=3.4",
                        "psycopg[binary]>=3.1"]
#: What `fuzz` adds to the environment (coverage-guided fuzzing; not needed by the tests, whose
#: hypothesis part runs in every test run).
PYTHON_FUZZ_PACKAGES = ["atheris>=2.3"]


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
                 "tests/unit/test_vms_filespec.py", "tests/unit/test_lnm_tables.py",
                 "tests/cluster/test_lnm_cluster_db.py"]),
    "vms.filespec": (["wucme/vms/filespec.py"],
                     ["tests/unit/test_vms_filespec.py", "tests/unit/test_vms_files.py"]),
    "http._wire": (["wucme/http/_wire.py"], ["tests/unit/test_http_wire.py"]),
    "http._conn": (["wucme/http/_conn.py"],
                   ["tests/loopback/test_builtin_client.py", "tests/loopback/test_transport_conformance.py",
                    "tests/loopback/test_http_connection.py"]),
    "agent.schedule": (["wucme/agent/schedule.py"],
                       ["tests/agent/test_schedule.py", "tests/agent/test_daily_loop.py"]),
    "lock": (["wucme/lock.py"], ["tests/unit/test_lockmgr.py", "tests/unit/test_lock_lifecycle.py"]),
    "renewal": (["wucme/renewal.py"], ["tests/unit/test_repository.py", "tests/unit/test_reporting.py",
                                       "tests/unit/test_renewal_decisions.py", "tests/pebble/test_renewal_pass.py"]),
    "uacme": (["wucme/uacme/authorize.py", "wucme/uacme/cert.py", "wucme/uacme/acme.py"],
              ["tests/unit/protocol", "tests/unit/test_uacme_options.py"]),
    "challenge.store": (["wucme/challenge/store.py"],
                        ["tests/loopback/test_challenge_store.py", "tests/loopback/test_challenge_store_files.py",
                         "tests/cluster/test_challenge_store_db.py"]),
    "challenge.storepg": (["wucme/challenge/storepg.py"], ["tests/cluster/test_challenge_store_db.py"]),
    "challenge.http01": (["wucme/challenge/http01.py"],
                         ["tests/loopback/test_challenge_http01.py", "tests/loopback/test_http01_listener.py",
                          "tests/loopback/test_dual_stack.py"]),
    "challenge.answer": (["wucme/challenge/answer.py"],
                         ["tests/loopback/test_cgi_lean_answer.py", "tests/loopback/test_challenge_http01.py",
                          "tests/loopback/test_http01_listener.py"]),
    "challenge.storefile": (["wucme/challenge/storefile.py"],
                            ["tests/loopback/test_challenge_store_files.py", "tests/loopback/test_challenge_store.py",
                             "tests/loopback/test_cgi_lean_answer.py", "tests/loopback/test_challenge_http01.py"]),
    "challenge.tlsalpn": (["wucme/challenge/tlsalpn.py"],
                          ["tests/loopback/test_challenge_tlsalpn.py", "tests/loopback/test_tlsalpn_responder.py"]),
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

def _missing_debian(packages: list[str] | None = None) -> list[str]:
    packages = DEBIAN_PACKAGES if packages is None else packages
    r = subprocess.run(["dpkg-query", "-W", "-f=${Package} ${Status}\n", *packages],
                       capture_output=True, text=True)
    installed = {line.split()[0].split(":")[0] for line in r.stdout.splitlines()
                 if line.endswith("install ok installed")}
    return [p for p in packages if p not in installed]


def setup_debian(packages: list[str] | None = None) -> None:
    """Install the missing Debian *packages* (default: DEBIAN_PACKAGES; as root, or through sudo)."""
    missing = _missing_debian(packages) if shutil.which("dpkg-query") else []
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
        # compat: a plain path in a .pth, not setuptools' import-hook finder, whose own imports
        # (pathlib, importlib.util, re) cost every wucme process about 9 ms at start
        # (docs/performance.md, "Start-up"); an installed wucme (`install`) has neither.
        _run(pip + ["--no-build-isolation", "-e", str(HERE), "--config-settings", "editable_mode=compat"],
             cwd=HERE)
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


def test_env(env: dict[str, str]) -> dict[str, str]:
    """The suite's environment: bytecode cached, as in an installed wucme (pip compiles it),
    even where the machine sets PYTHONDONTWRITEBYTECODE; the hundreds of `wucme` processes the
    tests start would otherwise each compile every module again.  The cache is kept outside
    the tree (PYTHONPYCACHEPREFIX)."""
    env = dict(env, PYTHONPYCACHEPREFIX=str(Path(tempfile.gettempdir()) / f"wucme-test-pycache-{os.getuid()}"))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


# --- install and uninstall (production) -------------------------------------------------------

#: What a production environment needs to build wucme (its own dependencies come from setup.py).
BUILD_REQUIRES = ["setuptools>=64", "wheel", "cffi>=1.15"]
#: The Debian packages a production install needs (python3-venv, the compiler and libcrypto's
#: headers for native/).
DEBIAN_INSTALL_PACKAGES = ["python3-venv", "gcc", "libc6-dev", "python3-dev", "libssl-dev", "openssl",
                           "ca-certificates"]
#: The first line of every file install writes outside the prefix, so uninstall removes only its own.
MARK = "installed by wucme's build.py install"


class Layout:
    """Where install puts each piece.  *root* (default /) is prepended to every system path and
    written into what refers to them, so a test can install a complete, working system into a
    scratch directory without touching the real /etc."""

    def __init__(self, prefix: str = "/opt/wucme", root: str = "/", bindir: str = "/usr/local/bin",
                 cgi_bin: str = "/usr/lib/cgi-bin", repository: str = "/var/lib/wucme") -> None:
        self.root = Path(root).absolute()
        self.prefix = Path(prefix).absolute()
        r = lambda p: self.root / p.lstrip("/")  # noqa: E731
        self.venv = self.prefix / "venv"
        self.man_page = self.prefix / "share" / "man" / "man1" / "wucme.1"
        self.completion = self.prefix / "share" / "bash-completion" / "completions" / "wucme"
        self.docs = self.prefix / "share" / "doc" / "wucme"
        self.com = self.prefix / "com"
        self.stamp = self.prefix / "wucme-install.stamp"
        self.bin_link = r(bindir) / "wucme"
        self.cgi = r(cgi_bin) / "wucme"
        self.unit = r("/etc/systemd/system/wucme-agent.service")
        self.unit_wants = r("/etc/systemd/system/multi-user.target.wants/wucme-agent.service")
        self.apache = r("/etc/apache2/conf-available/wucme.conf")
        self.apache_enabled = r("/etc/apache2/conf-enabled/wucme.conf")
        self.nginx = r("/etc/nginx/snippets/wucme.conf")
        self.man_link = r("/usr/local/share/man/man1/wucme.1")
        self.completion_link = r("/usr/share/bash-completion/completions/wucme")
        self.repository = r(repository)
        self.lnm_dir = self.repository / "lnm"
        #: The wucme files install made outside the prefix: links and marked files.
        self.system_files = [self.bin_link, self.cgi, self.unit, self.unit_wants, self.apache,
                             self.apache_enabled, self.nginx, self.man_link, self.completion_link]

    @property
    def sandboxed(self) -> bool:
        return self.root != Path("/")


def _web_group() -> int:
    """The web server's group (Debian: www-data), which may read the repository; else root's."""
    import grp

    try:
        return grp.getgrnam("www-data").gr_gid
    except KeyError:
        return 0


def _check_prefix(prefix: Path) -> None:
    """The web server's user must run the environment's interpreter: every directory above
    the prefix must be searchable by others (not /root, not a 0700 home)."""
    for d in [prefix, *prefix.parents]:
        if d.exists() and not d.stat().st_mode & 0o001:
            raise SystemExit(f"%WUCME-F-PREFIX, {d} is not searchable by others: the web server "
                             f"could not run {prefix}/venv/bin/python (choose a prefix such as /opt/wucme)")


def _world_runnable(python: str) -> bool:
    """Can any user run *python*: the real file others may execute, every directory above it
    searchable by others (pyenv's under /root is not)."""
    real = Path(os.path.realpath(python))
    if not real.exists() or not real.stat().st_mode & 0o001:
        return False
    return all(d.stat().st_mode & 0o001 for d in real.parents)


def production_python() -> str:
    """The interpreter the production environment is made from: this one when the web
    server's user can run it, else Debian's /usr/bin/python3 (3.11 or later)."""
    for python in dict.fromkeys([sys.executable, "/usr/bin/python3"]):
        if not _world_runnable(python):
            continue
        r = subprocess.run([python, "-c", "import sys, venv; print(sys.version_info >= (3, 11))"],
                           capture_output=True, text=True)
        if r.stdout.strip() == "True":
            return python
    raise SystemExit(f"%WUCME-F-PYTHON, no Python 3.11+ with venv that the web server's user can run "
                     f"({sys.executable} is out of its reach; install python3 and python3-venv)")


def _write_marked(path: Path, text: str, mode: int, comment: str = "#") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".new")
    tmp.write_text(f"{comment} {MARK}\n{text}")
    tmp.chmod(mode)
    os.replace(tmp, path)


def _link(path: Path, target: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink() or path.exists():
        if path.is_symlink() and Path(os.readlink(path)) == target:
            return
        if not _ours(path):
            raise SystemExit(f"%WUCME-F-EXISTS, {path} exists and is not wucme's: not replaced")
        path.unlink()
    path.symlink_to(target)


def _ours(path: Path) -> bool:
    """Did install make *path*?  A link into a wucme prefix, or a file carrying MARK."""
    if path.is_symlink():
        t = os.readlink(path)
        return "wucme" in t
    try:
        with path.open(encoding="utf-8", errors="replace") as f:
            return any(MARK in f.readline() for _ in range(2))
    except OSError:
        return False


def _install_venv(lay: Layout) -> None:
    """The production environment: wucme and its dependencies, no test packages.  Rebuilt
    only when the checkout's packaging or sources changed (the stamp holds their digest)."""
    h = hashlib.sha256(_setup_key().encode())
    for p in sorted((HERE / "wucme").rglob("*.py")):
        h.update(p.read_bytes())
    key = h.hexdigest()
    if venv_python(lay.venv).exists() and lay.stamp.exists() and lay.stamp.read_text().strip() == key:
        return
    if venv_python(lay.venv).exists() and not _world_runnable(str(venv_python(lay.venv))):
        shutil.rmtree(lay.venv)  # made from an interpreter the web server cannot run
    if not venv_python(lay.venv).exists():
        _run([production_python(), "-m", "venv", str(lay.venv)])
    lay.stamp.unlink(missing_ok=True)
    pip = [str(venv_python(lay.venv)), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    _run(pip + BUILD_REQUIRES)
    import tempfile

    with tempfile.TemporaryDirectory(prefix="wucme-build-") as tmp:
        # Built from a copy, so the checkout (and its editable .venv) is left as it was.
        src = Path(tmp) / "src"
        shutil.copytree(HERE, src, ignore=shutil.ignore_patterns(".venv", ".git", "build", "*.egg-info",
                                                                 "__pycache__", "_*.so", "tests"))
        dist = Path(tmp) / "dist"
        _run(pip[:3] + ["wheel", "-q", "--disable-pip-version-check", "--no-deps", "--no-build-isolation",
                        "-w", str(dist), str(src)], cwd=Path(tmp))
        (wheel,) = dist.glob("wucme-*.whl")
        _run(pip + [str(wheel)])  # its dependencies
        _run(pip + ["--force-reinstall", "--no-deps", str(wheel)])  # this checkout's wucme, same version or not
    lay.stamp.write_text(key + "\n")


def _system_table(lay: Layout) -> None:
    """WUCME_HERE in the system logical-name table, unless the administrator defined it."""
    table = lay.lnm_dir / "system.json"
    if table.exists():
        import json

        if "WUCME_HERE" in json.loads(table.read_text() or "{}").get("names", {}):
            return
    env = dict(os.environ, WUCME_LNM_DIR=str(lay.lnm_dir))
    _run([str(lay.venv / "bin" / "wucme"), "define", "/system", "WUCME_HERE", str(lay.repository)], env=env)


def _repository(lay: Layout) -> None:
    """The repository (WASD_ROOT:[LOCAL]): root:www-data 0750, so the web server's user reaches
    the challenge store (0755, entries 0644) and the system table (0640) but not the keys
    (WUCME_C_/WUCME_K_ files are 0600 root).  Never group-writable: wucme refuses that."""
    web = _web_group()
    for d, mode in ((lay.repository, 0o750), (lay.lnm_dir, 0o750), (lay.repository / "WUCME_CHALLENGES", 0o755)):
        d.mkdir(parents=True, exist_ok=True)
        os.chown(d, 0, web if mode == 0o750 else 0)
        d.chmod(mode)
    _system_table(lay)
    for f in lay.lnm_dir.iterdir():
        if f.is_file():
            os.chown(f, 0, web)
            f.chmod(0o640)


def _cgi_launcher(lay: Layout) -> str:
    env = f"WUCME_LNM_DIR={lay.lnm_dir}\nexport WUCME_LNM_DIR\n" if lay.sandboxed else ""
    return (f"# wucme as a CGI script (docs/install.md): the production environment's wucme,\n"
            f"# run by the web server's user (www-data).\n{env}"
            f'exec {lay.venv}/bin/wucme "$@"\n')


def _unit(lay: Layout) -> str:
    text = (HERE / "docs" / "systemd" / "wucme-agent.service").read_text()
    text = text.replace("ExecStart=/usr/local/bin/wucme agent", f"ExecStart={lay.venv}/bin/wucme agent")
    here = "Environment=WUCME_HERE=/var/lib/wucme"
    text = text.replace(here, f"Environment=WUCME_LNM_DIR={lay.lnm_dir}" if lay.sandboxed else
                        "# WUCME_HERE comes from the system table (wucme show logical /system WUCME_HERE)")
    return text


def _apache(lay: Layout) -> str:
    text = (HERE / "docs" / "servers" / "apache-wucme.conf").read_text()
    text = text.replace("Define WUCME_SCRIPT /usr/local/bin/wucme", f"Define WUCME_SCRIPT {lay.cgi}")
    return text.replace("Define WUCME_LNM_DIR /var/lib/wucme/lnm", f"Define WUCME_LNM_DIR {lay.lnm_dir}")


def install(lay: Layout, enable: bool) -> None:
    """Install (or bring up to date) wucme under the prefix and its system pieces.  Idempotent."""
    if not lay.sandboxed:
        setup_debian(DEBIAN_INSTALL_PACKAGES)
    _check_prefix(lay.prefix)
    old = os.umask(0o022)  # world-readable: the web server's user runs this environment
    try:
        lay.prefix.mkdir(parents=True, exist_ok=True)
        _install_venv(lay)
        wucme = lay.venv / "bin" / "wucme"
        for path, form in ((lay.man_page, "man"), (lay.completion, "bash")):
            path.parent.mkdir(parents=True, exist_ok=True)
            out = subprocess.run([str(wucme), "help", f"/output={form}"], capture_output=True, text=True, check=True)
            path.write_text(out.stdout)
        shutil.copytree(HERE / "docs", lay.docs, dirs_exist_ok=True)
        shutil.copytree(HERE / "com", lay.com, dirs_exist_ok=True)
        _link(lay.bin_link, wucme)
        _link(lay.man_link, lay.man_page)
        _link(lay.completion_link, lay.completion)
        _write_marked(lay.cgi, _cgi_launcher(lay), 0o755, "#!/bin/sh\n#")
        _write_marked(lay.unit, _unit(lay), 0o644)
        _write_marked(lay.apache, _apache(lay), 0o644)
        _write_marked(lay.nginx, "# Debian keeps it here; include it from the main context of nginx.conf.\n"
                      + (HERE / "docs" / "servers" / "nginx-wucme.conf").read_text(), 0o644)
        _repository(lay)
        if enable:
            _link(lay.unit_wants, lay.unit)
            _link(lay.apache_enabled, Path("../conf-available/wucme.conf"))
        if not lay.sandboxed and shutil.which("systemctl") and Path("/run/systemd/system").exists():
            subprocess.run(["systemctl", "daemon-reload"], check=False)
    finally:
        os.umask(old)
    print(f"%WUCME-S-INSTALLED, wucme in {lay.prefix}, the command {lay.bin_link}, the CGI script {lay.cgi}, "
          f"the repository {lay.repository}" + ("" if enable else
          "; not enabled (systemctl enable --now wucme-agent; a2enconf wucme), or run again with --enable"))


def uninstall(lay: Layout) -> None:
    """Remove what install made, except the repository (certificates, keys, the account and
    the system table stay for a later install)."""
    for path in lay.system_files:
        if (path.is_symlink() or path.exists()) and _ours(path):
            path.unlink()
    for part in (lay.venv, lay.prefix / "share", lay.com):
        shutil.rmtree(part, ignore_errors=True)
    lay.stamp.unlink(missing_ok=True)
    try:
        lay.prefix.rmdir()
    except OSError:
        pass
    if not lay.sandboxed and shutil.which("systemctl") and Path("/run/systemd/system").exists():
        subprocess.run(["systemctl", "daemon-reload"], check=False)
    print(f"%WUCME-S-UNINSTALLED, wucme removed from {lay.prefix}; the repository {lay.repository} is kept")


def install_main(verb: str, args: list[str]) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog=f"build.py {verb}")
    ap.add_argument("--prefix", default="/opt/wucme")
    ap.add_argument("--root", default="/", help="prepended to every system path (a scratch system)")
    ap.add_argument("--bindir", default="/usr/local/bin")
    ap.add_argument("--cgi-bin", default="/usr/lib/cgi-bin")
    ap.add_argument("--repository", default="/var/lib/wucme")
    ap.add_argument("--enable", action="store_true", help="enable the agent's unit and Apache's wucme.conf")
    o = ap.parse_args(args)
    if os.geteuid() != 0:
        print(f"%WUCME-F-NOPRIV, build.py {verb} runs as root (it writes /etc and chowns the repository)",
              file=sys.stderr)
        return 2
    lay = Layout(o.prefix, o.root, o.bindir, o.cgi_bin, o.repository)
    if verb == "install":
        install(lay, o.enable)
    else:
        uninstall(lay)
    return 0

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
            equivalent = _equivalent_mutants()  # nothing to learn from running those again
            retry = [m for m, status in _mutmut_results(mutmut, work, env)
                     if status in ("survived", "no tests", "suspicious") and m not in equivalent]
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
    if verb in ("install", "uninstall"):
        return install_main(verb, rest)
    if verb not in ("setup", "test", "bench", "demo", "fuzz", "mutate"):
        print(__doc__)
        return 0 if verb in ("help", "-h", "--help") else 2
    setup(venv)
    python = str(venv_python(venv))
    env = venv_env(venv)
    if verb == "test":
        return subprocess.call([python, "-m", "pytest", "-q", *rest], cwd=HERE, env=test_env(env))
    if verb == "bench":
        # Benchmark files named: pytest runs them.  Otherwise the one side-by-side run.
        if any(not a.startswith("-") and (HERE / a).exists() for a in rest):
            return subprocess.call([python, "-m", "pytest", "-q", "-s", *rest], cwd=HERE, env=env)
        setup_debian(BENCH_DEBIAN_PACKAGES)
        if subprocess.run([python, "-c", "import matplotlib"], capture_output=True).returncode != 0:
            _run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", *BENCH_PYTHON_PACKAGES])
        return subprocess.call([python, str(HERE / "tests" / "bench" / "bench_all.py"), *rest], cwd=HERE, env=env)
    if verb == "fuzz":
        return fuzz(python, env, rest)
    if verb == "mutate":
        return mutate(rest, venv, env)
    if verb == "demo":
        # The demo uses the test harness (tests/harness: Pebble starter), which is never installed.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE / "tests"), env.get("PYTHONPATH")]))
        return subprocess.call([python, "-m", "harness.demo", *rest], cwd=HERE, env=env)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
