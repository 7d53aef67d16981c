"""cffi-built native helpers and their pure-Python twins.

WUCME_NO_NATIVE (a logical name) defined forces the twins everywhere.
"""
from __future__ import annotations

from wucme.vms.lnm import trnlnm

__all__ = ["native_forced_off"]


def native_forced_off() -> bool:
    """True when the logical name WUCME_NO_NATIVE is defined (read at each use): every
    helper's backend() then gives its twin."""
    return trnlnm("WUCME_NO_NATIVE") is not None
