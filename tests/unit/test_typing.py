"""The package and the test harness stay typed: mypy with the project's settings (pyproject.toml)
finds nothing."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_mypy_is_clean(tmp_path: Path) -> None:
    if shutil.which("mypy") is None and subprocess.run(
            [sys.executable, "-m", "mypy", "--version"], capture_output=True).returncode != 0:
        pytest.skip("mypy is not installed (python3 build.py setup installs it)")
    r = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path), "wucme", "tests/harness"],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
