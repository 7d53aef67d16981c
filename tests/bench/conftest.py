"""Collect the benchmark modules (bench_*.py) when tests/bench is named explicitly.

The default test run never comes here (pyproject's norecursedirs); benchmarks are
slow, need root for uacme, and time real processes on a machine that may be busy.
"""
from __future__ import annotations

from pathlib import Path

import pytest


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Module | None:
    if file_path.suffix == ".py" and file_path.name.startswith("bench_"):
        return pytest.Module.from_parent(parent, path=file_path)
    return None
