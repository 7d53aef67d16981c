"""Logical-name tables of a test's own: no name from the environment or the machine leaks in."""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest

from wucme.vms.lnm import JOB_ENV

__all__ = ["own_tables"]


def own_tables(monkeypatch: pytest.MonkeyPatch, directory: Path, names: Iterable[str]) -> Path:
    """The system and group tables in *directory*, no cluster directory, no job table, and none
    of *names* defined in the process table (the environment), as given or as the job table
    keeps them (`_WUCME_LNM_` + name).  Returns *directory*."""
    monkeypatch.setenv("WUCME_LNM_DIR", str(directory))
    monkeypatch.delenv("WUCME_LNM_CLUSTER_DIR", raising=False)
    monkeypatch.delenv(JOB_ENV, raising=False)
    for name in names:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv("_WUCME_LNM_" + name, raising=False)
    return directory
