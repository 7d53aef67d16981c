"""`python3 build.py setup` on a Python that has nothing installed, not even cffi or pip.

Debian's own python3 is such a Python (and refuses pip installs: PEP 668), so build.py must
import with the standard library alone and put everything into an environment of its own.
The environment goes where `--venv` says, so the test leaves the checkout's .venv alone; pip
installs from its cache after the first run (about 10-60 s).
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _missing_debian() -> list[str]:
    spec = importlib.util.spec_from_file_location("wucme_build", ROOT / "build.py")
    assert spec is not None and spec.loader is not None
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    return list(build._missing_debian())


def _bare_env() -> dict[str, str]:
    """No trace of the environment the suite runs in."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}


def test_setup_on_a_python_without_cffi_or_pip_builds_an_environment_of_its_own(
        checkout: Path, tmp_path: Path) -> None:
    if _missing_debian():
        pytest.skip(f"Debian packages missing ({', '.join(_missing_debian())}): "
                    "run python3 build.py setup first")
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    python = bare / "bin" / "python"
    for module in ("cffi", "pip", "wucme"):
        r = subprocess.run([str(python), "-c", f"import {module}"], capture_output=True, env=_bare_env(),
                           cwd=tmp_path)
        assert r.returncode != 0, f"the bare Python has {module}"

    venv = tmp_path / "venv"
    r = subprocess.run([str(python), str(checkout / "build.py"), "--venv", str(venv), "setup"],
                       capture_output=True, text=True, env=_bare_env(), cwd=tmp_path, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert not (checkout / ".venv").exists()

    # The environment has wucme from the checkout, its native lock manager built, and pytest.
    r = subprocess.run([str(venv / "bin" / "python"), "-c",
                        "import wucme, wucme._native.lockmgr as lm; print(wucme.__file__); print(lm.HAS_LOCKMGR)"],
                       capture_output=True, text=True, env=_bare_env(), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    where, native = r.stdout.split()
    assert Path(where).resolve() == (checkout / "wucme" / "__init__.py").resolve()
    assert native == "True"
    assert subprocess.run([str(venv / "bin" / "python"), "-m", "pytest", "--version"],
                          capture_output=True, env=_bare_env()).returncode == 0
    r = subprocess.run([str(venv / "bin" / "wucme"), "version"], capture_output=True, text=True,
                       env=_bare_env(), cwd=tmp_path)
    assert r.returncode == 0 and "wucme" in r.stdout.lower(), r.stdout + r.stderr

    # Set up already: the second run installs nothing.
    r = subprocess.run([str(python), str(checkout / "build.py"), "--venv", str(venv), "setup"],
                       capture_output=True, text=True, env=_bare_env(), cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "$ " not in r.stdout, r.stdout

    # A change to what the set-up depends on redoes it.
    with open(checkout / "setup.py", "a") as f:
        f.write("# changed\n")
    r = subprocess.run([str(python), str(checkout / "build.py"), "--venv", str(venv), "setup"],
                       capture_output=True, text=True, env=_bare_env(), cwd=tmp_path, timeout=900)
    assert r.returncode == 0, r.stderr
    assert "pip install" in r.stdout, r.stdout


def test_build_py_refuses_an_unknown_verb_with_its_usage(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, str(ROOT / "build.py"), "frobnicate"], capture_output=True,
                       text=True, env=_bare_env(), cwd=tmp_path)
    assert r.returncode == 2
    assert "python3 build.py test" in r.stdout
