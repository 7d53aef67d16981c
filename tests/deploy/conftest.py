"""A copy of the checkout to build from, so a test neither rebuilds this tree's native module
(which the running suite has loaded) nor reads what earlier builds left (build/, *.egg-info)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__",
                                     ".pytest_cache", ".mypy_cache", ".mutate", "*.so", "*.o")


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """The source tree as a clone has it, in tmp_path/src."""
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=_NOT_SOURCE)
    return src
