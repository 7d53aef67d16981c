"""The relay of proxied connections: native/splice.c or its pure twin (splice_pure).

`relay()` picks the implementation: the cffi module `wucme._native._splice` when it was built
and the logical name WUCME_NO_NATIVE is not defined; else the twin with os.splice (Linux);
else, where there is no splice at all, the copying relay.  The native one runs the whole
relay in C without the GIL, so a relayed connection costs Python nothing after its ClientHello.
"""
from __future__ import annotations

import socket
from typing import Any

from wucme.vms.lnm import trnlnm

from . import splice_pure as pure
from .splice_pure import DONE, ERROR, HAS_SPLICE, IDLE

try:
    from wucme._native._splice import lib as _lib
except ImportError:  # not built: no compiler, a source checkout, or not Linux
    _lib = None

__all__ = ["DONE", "IDLE", "ERROR", "HAS_NATIVE_SPLICE", "HAS_SPLICE", "relay", "backend_name"]

HAS_NATIVE_SPLICE = _lib is not None
_native: Any = _lib


def backend_name(native: bool | None = None) -> str:
    """"native", "splice" (the twin with os.splice) or "copy": what relay() would use.

    *native* None follows WUCME_NO_NATIVE (read at each call); True insists on the native
    relay (RuntimeError when it was not built); False forces the twin."""
    if native is None:
        native = HAS_NATIVE_SPLICE and trnlnm("WUCME_NO_NATIVE") is None
    if native:
        if not HAS_NATIVE_SPLICE:
            raise RuntimeError("the native relay (wucme._native._splice) was not built")
        return "native"
    return "splice" if HAS_SPLICE else "copy"


def relay(front: socket.socket, back: socket.socket, idle: float, *, native: bool | None = None) -> int:
    """Relay *front* and *back* both ways until both finish (DONE), nothing moves for *idle*
    seconds (IDLE) or a side fails (ERROR).  Both sockets are left non-blocking."""
    kind = backend_name(native)
    front.setblocking(False)
    back.setblocking(False)
    idle_ms = max(1, int(idle * 1000))
    if kind == "native":
        return int(_native.splice_relay(front.fileno(), back.fileno(), idle_ms))
    if kind == "splice":
        return pure.splice_relay(front.fileno(), back.fileno(), idle_ms)
    return pure.relay_copy(front, back, idle)
