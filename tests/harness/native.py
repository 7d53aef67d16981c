"""Whether a native helper (wucme._native._NAME) is there for a test that needs it."""
from __future__ import annotations

from pathlib import Path

import pytest

import wucme._native


def require_built(name: str, imported: bool, what: str) -> None:
    """Skip the test when the extension `_NAME` was not built; fail it when it was built but
    did not import (*imported* False), which must not pass unseen as "not built"."""
    built = list(Path(wucme._native.__file__).parent.glob(f"_{name}*.so"))
    if built:
        assert imported, built
    if not imported:
        pytest.skip(f"{what} not built")
