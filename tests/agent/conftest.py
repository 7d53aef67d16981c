"""Fixtures of the agent tests: `agents` (see support.py)."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .support import Agents


@pytest.fixture
def agents(tmp_path: Path) -> Iterator[Agents]:
    a = Agents(tmp_path)
    try:
        yield a
    finally:
        a.stop_all()
