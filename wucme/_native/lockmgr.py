"""The lock manager's checked layer over native/lockmgr.c or its pure-Python twin.

`backend()` picks the implementation: the cffi module `wucme._native._lockmgr`
when it was built and the logical name WUCME_NO_NATIVE is not defined, else
`lockmgr_pure`. Either way a `LockBackend` checks the arguments, retries a wait a
signal interrupted (after Python's handlers ran, so Ctrl-C still ends it) and
turns the -errno return codes into exceptions. This is the only module of the
lock manager where cffi's untyped objects appear.
"""
from __future__ import annotations

import errno
import math
import os
import time
from typing import Any

from wucme.errors import WucmeError
from wucme._native import native_forced_off

from . import lockmgr_pure

try:
    from wucme._native._lockmgr import ffi as _ffi, lib as _lib
except ImportError:  # not built: no compiler, or a source checkout
    _ffi = _lib = None

HAS_LOCKMGR = _lib is not None

LVB_SIZE = lockmgr_pure.LM_LVB_SIZE
LVB_VALID, LVB_HELD, LVB_INVALID = (lockmgr_pure.LM_LVB_VALID, lockmgr_pure.LM_LVB_HELD,
                                    lockmgr_pure.LM_LVB_INVALID)
NL, CR, CW, PR, PW, EX = range(6)


class LockError(WucmeError):
    """A lock manager failure other than a refusal (a bad resource file, say)."""

    ident = "LOCKERR"


class NotQueued(LockError):
    """A no-wait request that could not be granted at once (the DLM's SS$_NOTQUEUED)."""

    ident = "NOTQUEUED"


class LockTimeout(LockError, TimeoutError):
    """A waiting request that was not granted within its timeout."""

    ident = "LOCKTIMEOUT"


class LockBackend:
    """One implementation of the lm_* functions, with checks and exceptions."""

    def __init__(self, name: str, lib: Any, ffi: Any) -> None:
        self.name = name
        self.lib = lib
        self._ffi = ffi

    def __repr__(self) -> str:
        return f"<LockBackend {self.name}>"

    @staticmethod
    def _check(r: int, what: str) -> int:
        if r >= 0:
            return r
        e = -r
        if e == errno.EAGAIN:
            raise NotQueued(f"{what}: not granted at once")
        if e == errno.ETIMEDOUT:
            raise LockTimeout(f"{what}: not granted in time")
        raise LockError(f"{what}: {os.strerror(e)}")

    @staticmethod
    def _mode(mode: int) -> int:
        if not isinstance(mode, int) or not NL <= mode <= EX:
            raise ValueError(f"lock mode {mode!r} is not one of NL CR CW PR PW EX (0..5)")
        return int(mode)

    def open(self, path: str | os.PathLike[str], perm: int = 0o600) -> int:
        """Open (creating) a resource file; the descriptor is close-on-exec."""
        raw = os.fsencode(path)
        if b"\0" in raw:
            raise ValueError("a resource file name cannot hold NUL")
        return self._check(self.lib.lm_open(raw, int(perm)), f"open {os.fsdecode(raw)}")

    def _waiting(self, call: Any, what: str, wait: bool, timeout: float | None) -> None:
        """Run `call(wait_ms)`, retrying after EINTR with what is left of the timeout."""
        if timeout is not None and (not isinstance(timeout, (int, float)) or timeout < 0
                                    or math.isnan(timeout)):
            raise ValueError(f"timeout {timeout!r} must be a number of seconds >= 0")
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if not wait:
                wait_ms = 0
            elif deadline is None:
                wait_ms = -1
            else:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise LockTimeout(f"{what}: not granted in time")
                wait_ms = max(1, min(math.ceil(left * 1000), 2**31 - 1))
            r = call(wait_ms)
            if r != -errno.EINTR:
                self._check(r, what)
                return
            # EINTR: Python's signal handlers run on the way round the loop.

    def lock(self, fd: int, mode: int, *, wait: bool = True, timeout: float | None = None) -> None:
        """Take `mode` on a descriptor that holds nothing (NL)."""
        m = self._mode(mode)
        self._waiting(lambda ms: self.lib.lm_lock(fd, m, ms), "lock", wait, timeout)

    def convert(self, fd: int, old: int, new: int, *, wait: bool = True,
                timeout: float | None = None) -> None:
        """Move from `old` to `new`; on any failure `old` is still held."""
        o, n = self._mode(old), self._mode(new)
        self._waiting(lambda ms: self.lib.lm_convert(fd, o, n, ms), "convert", wait, timeout)

    def unlock(self, fd: int) -> None:
        self._check(self.lib.lm_unlock(fd), "unlock")

    def read_lvb(self, fd: int) -> tuple[bytes, bool]:
        """The value block and whether it is valid (its last writer did not die holding it)."""
        buf: Any = bytearray(LVB_SIZE) if self._ffi is None else self._ffi.new("unsigned char[]",
                                                                                LVB_SIZE)
        while (r := self.lib.lm_read_lvb(fd, buf, LVB_SIZE)) == -errno.EINTR:
            pass
        self._check(r, "read value block")
        data = bytes(self._ffi.buffer(buf, LVB_SIZE)) if self._ffi is not None else bytes(buf)
        return data, r == LVB_VALID

    def write_lvb(self, fd: int, value: bytes | None, state: int) -> None:
        """Write the state byte, and first the value when given (exactly LVB_SIZE bytes)."""
        if value is not None and (not isinstance(value, bytes) or len(value) != LVB_SIZE):
            raise ValueError(f"a value block is {LVB_SIZE} bytes")
        if state not in (LVB_VALID, LVB_HELD, LVB_INVALID):
            raise ValueError(f"value block state {state!r}")
        n = 0 if value is None else LVB_SIZE
        arg = value if value is not None or self._ffi is None else self._ffi.NULL
        while (r := self.lib.lm_write_lvb(fd, arg, n, state)) == -errno.EINTR:
            pass
        self._check(r, "write value block")

    def close(self, fd: int) -> None:
        self._check(self.lib.lm_close(fd), "close")


PURE = LockBackend("pure", lockmgr_pure, None)
NATIVE = LockBackend("native", _lib, _ffi) if _lib is not None else None


def backend(native: bool | None = None) -> LockBackend:
    """The implementation to use: `native` True or False asks for one (True raises
    LockError when it was not built); None takes the native one unless it is
    missing or WUCME_NO_NATIVE is defined."""
    if native is False or (native is None and (NATIVE is None or native_forced_off())):
        return PURE
    if NATIVE is None:
        raise LockError("the native lock manager (wucme._native._lockmgr) was not built")
    return NATIVE

