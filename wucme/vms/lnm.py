"""Logical names (placeholder: process table only, until the full tables land)."""
from __future__ import annotations

import os


def trnlnm(name: str) -> str | None:
    """The translation of logical `name`, or None when it is not defined."""
    return os.environ.get(name)
