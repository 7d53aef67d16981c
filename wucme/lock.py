"""A lock manager in the spirit of the VMS DLM, on Linux open-file-description locks.

A `LockManager(directory)` names resources; each is a file `NAME.LCK` in that
directory. `enqueue` grants one of the DLM's six modes, waiting or not, and the
`Lock` it returns can be converted, carries a value block and is released by
`release()`, by leaving a `with` block, or by the kernel when its process dies.

The modes and which may be held together (the DLM's table, `COMPATIBLE`)::

          NL CR CW PR PW EX
      NL  y  y  y  y  y  y
      CR  y  y  y  y  y  n
      CW  y  y  y  n  n  n
      PR  y  y  n  y  n  n
      PW  y  y  n  n  n  n
      EX  y  n  n  n  n  n

How the modes become kernel byte-range locks. Shared and exclusive locks on
fixed bytes cannot express the table alone: CW and PR are each compatible with
themselves, so neither may write-lock a byte, yet they must exclude each other.
Bytes 1-4 of the resource file (A, B, P, W) carry the modes, byte 0 (Q) queues
waiting new requests, byte 5 (L) guards the value block:

    mode  held             taken on the way
    NL    nothing
    CR    A:r
    CW    A:r B:r W:r      P:w before W:r, then let go
    PR    A:r B:r P:r      W:w after P:r, then let go
    PW    A:r B:w
    EX    A:w

A conflicts EX with every other mode, B conflicts PW with CW, PR and PW. CW
and PR exclude each other through P and W: a PR holds P shared and proved W
free of CW holders (by write-locking it) while holding P, a CW holds W shared
and proved P free of PR holders while holding W; whichever came second could
not have passed its proof. tests/unit/test_lockmgr.py checks the table
exhaustively against real locks, on both implementations.

A request takes its bytes in byte order without waiting and, if one is
refused, gives back what it took. A waiting new request first holds Q (so
waiting requests are granted in turn and cannot deadlock each other), then
sleeps in the kernel (F_OFD_SETLKW) on the refused byte holding nothing else,
and tries again when it is free: a release or the death of a holder wakes it
with no polling. With a timeout it polls instead (1 ms doubling to 50 ms),
since a kernel wait cannot be given a deadline without signals. A no-wait
request does not queue: it is granted when compatible with the granted locks.

A conversion takes the new mode's bytes before letting go of any of the old,
keeps the old mode while it waits and on failure, and does not queue behind
new requests (as the DLM's conversion queue comes first). Converting down never
waits. The DLM's conversion deadlock (two PR holders both converting to EX)
is not detected here, as it is by VMS (SS$_DEADLOCK): give such conversions a
timeout, or use no-wait.

The value block is 64 bytes (the size of VMS's extended value block,
LCK$M_XVALBLK), stored in the resource file. It is read when a mode other than
NL is granted; a PW or EX holder may set it, and it is written when that holder
converts below PW or releases. A PW or EX holder that dies leaves it marked
invalid (`value_valid` False, VMS's SS$_VALNOTVALID) until a later writer sets it.

The descriptors are close-on-exec, so a hook (run by exec) or its background
children never hold a lock. A child forked without exec would share the open
file description, and with it the locks; `os.register_at_fork` makes such a
child drop its copies at once, so the lock lives exactly as long as its holder.
A Lock is for one thread at a time.
"""
from __future__ import annotations

import enum
import os
import re
import threading
import warnings
import weakref
from pathlib import Path
from types import TracebackType

from wucme._native import lockmgr as _lm
from wucme._native.lockmgr import LockBackend, LockError, LockTimeout, NotQueued
from wucme.vms.secure import check_directory, make_directory

__all__ = ["COMPATIBLE", "Lock", "LockError", "LockManager", "LockMode", "LockTimeout",
           "NotQueued", "VALUE_BLOCK_SIZE", "compatible"]

VALUE_BLOCK_SIZE = _lm.LVB_SIZE

#: Resource names: the DLM allows 31 bytes; these also make safe file names.
_RESOURCE = re.compile(r"[A-Za-z0-9_$-]{1,31}")


class LockMode(enum.IntEnum):
    """The DLM's lock modes, weakest first."""

    NL = 0  # null: an interest in the resource only
    CR = 1  # concurrent read
    CW = 2  # concurrent write
    PR = 3  # protected read
    PW = 4  # protected write
    EX = 5  # exclusive


_ROWS = {"NL": "yyyyyy", "CR": "yyyyyn", "CW": "yyynnn",
         "PR": "yynynn", "PW": "yynnnn", "EX": "ynnnnn"}

#: The DLM compatibility table: (held, requested) -> may both be granted.
COMPATIBLE: dict[tuple[LockMode, LockMode], bool] = {
    (LockMode[a], LockMode(j)): row[j] == "y" for a, row in _ROWS.items() for j in range(6)
}

_WRITERS = (LockMode.PW, LockMode.EX)


def compatible(held: LockMode, requested: LockMode) -> bool:
    """Whether `requested` can be granted while another holds `held`."""
    return COMPATIBLE[(LockMode(held), LockMode(requested))]


def _as_mode(mode: LockMode | str | int) -> LockMode:
    if isinstance(mode, str):
        try:
            return LockMode[mode.upper()]
        except KeyError:
            raise ValueError(f"lock mode {mode!r} is not one of NL CR CW PR PW EX") from None
    return LockMode(mode)


_live: weakref.WeakSet[Lock] = weakref.WeakSet()
_releasing = threading.Lock()


def _forget_in_child() -> None:
    """After fork: close this child's copies of the parent's lock descriptors."""
    for lock in list(_live):
        lock._abandon()


os.register_at_fork(after_in_child=_forget_in_child)


class LockManager:
    """Resources named within one directory (created 0700 if missing, whatever the umask).

    Whoever can write the directory can replace a resource file and so hold or break any lock:
    a directory that group or others may write, or another user owns, is refused with
    InsecureError (``%WUCME-E-INSECURE``).  Resource files are opened without following links.
    """

    def __init__(self, directory: str | os.PathLike[str], *, native: bool | None = None,
                 perm: int = 0o600) -> None:
        self.directory = Path(directory)
        self.perm = perm
        self._native = native
        make_directory(self.directory, 0o700)
        check_directory(self.directory)

    @property
    def backend(self) -> LockBackend:
        """The implementation a new request uses (WUCME_NO_NATIVE is read each time)."""
        return _lm.backend(self._native)

    def path(self, resource: str) -> Path:
        """The file that stands for `resource`."""
        if not isinstance(resource, str) or not _RESOURCE.fullmatch(resource):
            raise ValueError(f"resource name {resource!r}: 1 to 31 of A-Z a-z 0-9 _ $ -")
        return self.directory / f"{resource}.LCK"

    def enqueue(self, resource: str, mode: LockMode | str = LockMode.EX, *, wait: bool = True,
                timeout: float | None = None) -> Lock:
        """Grant `mode` on `resource` (like $ENQW); NotQueued when `wait` is False and it
        cannot be granted at once, LockTimeout when not granted within `timeout` seconds."""
        m = _as_mode(mode)
        path = self.path(resource)
        be = self.backend
        fd = be.open(path, self.perm)
        lock: Lock | None = None
        try:
            be.lock(fd, m, wait=wait, timeout=timeout)
            lock = Lock(be, fd, resource, path)
            lock._granted(LockMode.NL, m)
        except BaseException:
            if lock is not None:  # closed here, once: its __del__ must not close the number again
                lock._fd = None
                _live.discard(lock)
            be.close(fd)
            raise
        return lock


class Lock:
    """A granted lock on one resource, with its own open file description."""

    def __init__(self, backend: LockBackend, fd: int, resource: str, path: Path) -> None:
        self.backend = backend
        self.resource = resource
        self.path = path
        self._fd: int | None = fd
        self._releaser: int | None = None  # the thread releasing it now
        self._mode = LockMode.NL
        self._value: bytes | None = None
        self._valid = True
        self._assigned = False
        _live.add(self)

    def __repr__(self) -> str:
        state = self._mode.name if self._fd is not None else "released"
        return f"<Lock {self.resource} {state} ({self.backend.name})>"

    @property
    def mode(self) -> LockMode:
        return self._mode

    @property
    def released(self) -> bool:
        return self._fd is None

    def _fdno(self) -> int:
        if self._fd is None:
            raise LockError(f"lock on {self.resource} was released")
        return self._fd

    def _granted(self, old: LockMode, new: LockMode) -> None:
        """Read the value block on a grant; a new writer marks it held."""
        fd = self._fdno()
        self._mode = new
        if new == LockMode.NL:
            self._value = None
            return
        if old in _WRITERS and new in _WRITERS:
            return
        self._value, self._valid = self.backend.read_lvb(fd)
        self._assigned = False
        if new in _WRITERS:
            self.backend.write_lvb(fd, None, _lm.LVB_HELD if self._valid else _lm.LVB_INVALID)

    def _leaving_writer(self) -> None:
        """Write the value block (when set) as a PW or EX holder lets go of it."""
        fd = self._fdno()
        if self._assigned and self._value is not None:
            self.backend.write_lvb(fd, self._value, _lm.LVB_VALID)
            self._valid = True
        else:
            self.backend.write_lvb(fd, None, _lm.LVB_VALID if self._valid else _lm.LVB_INVALID)
        self._assigned = False

    def convert(self, mode: LockMode | str, *, wait: bool = True,
                timeout: float | None = None) -> None:
        """Change to `mode` (like $ENQ with LCK$M_CONVERT). The old mode stays granted
        while waiting and when NotQueued or LockTimeout is raised."""
        new = _as_mode(mode)
        fd = self._fdno()
        old = self._mode
        if new == old:
            return
        if old in _WRITERS and new not in _WRITERS:
            self._leaving_writer()
        self.backend.convert(fd, old, new, wait=wait, timeout=timeout)
        self._granted(old, new)

    def release(self) -> None:
        """Give the lock up (like $DEQ); a PW or EX holder writes the value block first.

        Two threads releasing at once (an agent stopping while its pass ends) give the number
        up once: a second close could hit whatever file or socket has the number by then."""
        with _releasing:
            fd = self._fd
            if fd is None or self._releaser is not None:
                return
            self._releaser = threading.get_ident()
        try:
            if self._mode in _WRITERS:
                self._leaving_writer()
            self.backend.unlock(fd)
        finally:
            with _releasing:
                self._fd = None
                self._releaser = None
            self._mode = LockMode.NL
            self._value = None
            _live.discard(self)
            self.backend.close(fd)

    @property
    def value_block(self) -> bytes:
        """The 64-byte value block as of the last grant, or as this writer set it."""
        self._fdno()
        if self._mode == LockMode.NL or self._value is None:
            raise LockError(f"lock on {self.resource}: NL cannot read the value block")
        return self._value

    @value_block.setter
    def value_block(self, value: bytes) -> None:
        self._fdno()
        if self._mode not in _WRITERS:
            raise LockError(f"lock on {self.resource}: only PW or EX may write the value block")
        if not isinstance(value, (bytes, bytearray)) or len(value) > VALUE_BLOCK_SIZE:
            raise ValueError(f"a value block is at most {VALUE_BLOCK_SIZE} bytes")
        self._value = bytes(value).ljust(VALUE_BLOCK_SIZE, b"\0")
        self._assigned = True

    @property
    def value_valid(self) -> bool:
        """False when a PW or EX holder died without releasing (VMS's SS$_VALNOTVALID)."""
        self._fdno()
        return self._valid

    def _abandon(self) -> None:
        """Drop this process's descriptor without touching the locks (a forked child)."""
        fd, self._fd = self._fd, None
        _live.discard(self)
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass

    def __enter__(self) -> Lock:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()

    def __del__(self) -> None:
        if getattr(self, "_fd", None) is not None:
            warnings.warn(f"unreleased {self!r}", ResourceWarning, stacklevel=1)
            self._abandon()
