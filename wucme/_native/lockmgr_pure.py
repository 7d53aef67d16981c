"""Pure-Python twin of native/lockmgr.c: the same functions, return codes and bytes.

Each function mirrors its C namesake line for line and returns 0 (or the same
non-negative value) or -errno, so wucme._native.lockmgr checks both alike. The
encoding is explained in native/lockmgr.c and docs/lock-manager.md.

One difference the caller cannot see: Python's fcntl retries a wait the kernel
ended with EINTR after running the signal handlers (PEP 475), where the C code
returns -EINTR for the middle layer to retry; a handler that raises propagates
here, after the locks of the unfinished request have been given back.
"""
from __future__ import annotations

import errno
import fcntl
import os
import struct
import time

LM_NL, LM_CR, LM_CW, LM_PR, LM_PW, LM_EX = range(6)
LM_LVB_SIZE = 64
LM_LVB_VALID, LM_LVB_HELD, LM_LVB_INVALID = 0, 1, 2

# Linux values; Python's fcntl exports them from 3.9, older builds may not.
F_OFD_GETLK: int = getattr(fcntl, "F_OFD_GETLK", 36)
F_OFD_SETLK: int = getattr(fcntl, "F_OFD_SETLK", 37)
F_OFD_SETLKW: int = getattr(fcntl, "F_OFD_SETLKW", 38)
F_RDLCK, F_WRLCK, F_UNLCK = fcntl.F_RDLCK, fcntl.F_WRLCK, fcntl.F_UNLCK

BQ, BA, BB, BP, BW, BL, NBYTES = 0, 1, 2, 3, 4, 5, 5
LVB_STATE_AT, LVB_VALUE_AT = 64, 72
NOWAIT_TRIES = 200

# struct flock as the platform lays it out: short, short, off_t, off_t, pid_t,
# padded to the alignment of off_t (32 bytes on x86_64, 24 on i386).
_FLOCK = struct.Struct("@hhqqi")
_ALIGN = struct.calcsize("@bq") - struct.calcsize("@q")
_PAD = b"\0" * (-_FLOCK.size % _ALIGN)

STEPS: tuple[tuple[tuple[int, int], ...], ...] = (
    (),
    ((BA, F_RDLCK),),
    ((BA, F_RDLCK), (BB, F_RDLCK), (BP, F_WRLCK), (BW, F_RDLCK)),
    ((BA, F_RDLCK), (BB, F_RDLCK), (BP, F_RDLCK), (BW, F_WRLCK)),
    ((BA, F_RDLCK), (BB, F_WRLCK)),
    ((BA, F_WRLCK),),
)

_U, _R, _W = F_UNLCK, F_RDLCK, F_WRLCK
HELD: tuple[tuple[int, ...], ...] = (
    (_U, _U, _U, _U, _U),
    (_U, _R, _U, _U, _U),
    (_U, _R, _R, _U, _R),
    (_U, _R, _R, _R, _U),
    (_U, _R, _W, _U, _U),
    (_U, _W, _U, _U, _U),
)


def _strength(t: int) -> int:
    return 2 if t == F_WRLCK else 1 if t == F_RDLCK else 0


def _flock(t: int, start: int, length: int) -> bytes:
    return _FLOCK.pack(t, os.SEEK_SET, start, length, 0) + _PAD


def _errno(e: OSError) -> int:
    return -errno.EAGAIN if e.errno in (errno.EAGAIN, errno.EACCES) else -(e.errno or errno.EIO)


def _setlk(fd: int, cmd: int, t: int, byte: int, length: int = 1) -> int:
    try:
        fcntl.fcntl(fd, cmd, _flock(t, byte, length))
    except OSError as e:
        return _errno(e)
    return 0


def _getlk_type(fd: int, t: int, byte: int) -> int:
    """The type of a lock another description holds that conflicts with `t` on `byte`."""
    out = fcntl.fcntl(fd, F_OFD_GETLK, _flock(t, byte, 1))
    return int(_FLOCK.unpack(out[: _FLOCK.size])[0])


def _attempt(fd: int, oldmode: int, newmode: int) -> tuple[int, int, int]:
    """One try without waiting: (0 or -errno, refusing byte, its type)."""
    cur = list(HELD[oldmode])
    done = False
    try:
        for byte, t in STEPS[newmode]:
            if _strength(cur[byte]) >= _strength(t):
                continue
            r = _setlk(fd, F_OFD_SETLK, t, byte)
            if r < 0:
                return r, byte, t
            cur[byte] = t
        for b in range(NBYTES):
            if cur[b] != HELD[newmode][b]:
                _setlk(fd, F_OFD_SETLK, HELD[newmode][b], b)
        done = True
        return 0, -1, 0
    finally:
        if not done:
            for b in range(NBYTES):
                if cur[b] != HELD[oldmode][b]:
                    _setlk(fd, F_OFD_SETLK, HELD[oldmode][b], b)


def _transient(fd: int, byte: int, t: int) -> bool:
    if byte not in (BP, BW):
        return False
    try:
        return _getlk_type(fd, t, byte) != F_RDLCK
    except OSError:
        return False


def _nowait(fd: int, oldmode: int, newmode: int) -> int:
    tries = 0
    while True:
        r, byte, t = _attempt(fd, oldmode, newmode)
        if r != -errno.EAGAIN or tries >= NOWAIT_TRIES or not _transient(fd, byte, t):
            return r
        os.sched_yield()
        tries += 1


def _now_ms() -> int:
    return time.monotonic_ns() // 1_000_000


class _Backoff:
    """The bounded wait's polling: 1 ms doubling to 50 ms, never past the deadline."""

    def __init__(self, deadline: int) -> None:
        self.deadline = deadline
        self.step = 1

    def pause(self) -> int:
        left = self.deadline - _now_ms()
        if left <= 0:
            return -errno.ETIMEDOUT
        time.sleep(min(left, self.step) / 1000)
        if self.step < 50:
            self.step *= 2
        return 0


def _wait_for(fd: int, oldmode: int, newmode: int, deadline: int) -> int:
    backoff = _Backoff(deadline)
    while True:
        r, byte, t = _attempt(fd, oldmode, newmode)
        if r != -errno.EAGAIN:
            return r
        if deadline < 0:
            r = _setlk(fd, F_OFD_SETLKW, t, byte)
            if r < 0:
                return r
            _setlk(fd, F_OFD_SETLK, HELD[oldmode][byte], byte)
        else:
            r = backoff.pause()
            if r < 0:
                return r


def _deadline_of(wait_ms: int) -> int:
    return -1 if wait_ms < 0 else _now_ms() + wait_ms


def _valid_mode(mode: int) -> bool:
    return LM_NL <= mode <= LM_EX


def lm_open(path: bytes, perm: int) -> int:
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, perm)
    except OSError as e:
        return -(e.errno or errno.EIO)


def lm_lock(fd: int, mode: int, wait_ms: int) -> int:
    if not _valid_mode(mode):
        return -errno.EINVAL
    if mode == LM_NL:
        return 0
    if wait_ms == 0:
        return _nowait(fd, LM_NL, mode)
    deadline = _deadline_of(wait_ms)
    if deadline < 0:
        r = _setlk(fd, F_OFD_SETLKW, F_WRLCK, BQ)
        if r < 0:
            return r
    else:
        backoff = _Backoff(deadline)
        while (r := _setlk(fd, F_OFD_SETLK, F_WRLCK, BQ)) == -errno.EAGAIN:
            r = backoff.pause()
            if r < 0:
                return r
        if r < 0:
            return r
    try:
        return _wait_for(fd, LM_NL, mode, deadline)
    finally:
        _setlk(fd, F_OFD_SETLK, F_UNLCK, BQ)


def lm_convert(fd: int, oldmode: int, newmode: int, wait_ms: int) -> int:
    if not _valid_mode(oldmode) or not _valid_mode(newmode):
        return -errno.EINVAL
    if oldmode == newmode:
        return 0
    if wait_ms == 0:
        return _nowait(fd, oldmode, newmode)
    return _wait_for(fd, oldmode, newmode, _deadline_of(wait_ms))


def lm_unlock(fd: int) -> int:
    return _setlk(fd, F_OFD_SETLK, F_UNLCK, 0, NBYTES + 1)


def lm_read_lvb(fd: int, buf: bytearray, length: int) -> int:
    if length != LM_LVB_SIZE or len(buf) < LM_LVB_SIZE:
        return -errno.EINVAL
    r = _setlk(fd, F_OFD_SETLKW, F_RDLCK, BL)
    if r < 0:
        return r
    try:
        rec = os.pread(fd, LVB_VALUE_AT - LVB_STATE_AT + LM_LVB_SIZE, LVB_STATE_AT)
        rec = rec.ljust(LVB_VALUE_AT - LVB_STATE_AT + LM_LVB_SIZE, b"\0")
        state = rec[0]
        if state == LM_LVB_HELD:
            state = LM_LVB_VALID if _getlk_type(fd, F_WRLCK, BB) == F_WRLCK else LM_LVB_INVALID
    except OSError as e:
        return -(e.errno or errno.EIO)
    finally:
        _setlk(fd, F_OFD_SETLK, F_UNLCK, BL)
    buf[:LM_LVB_SIZE] = rec[LVB_VALUE_AT - LVB_STATE_AT:]
    return LM_LVB_VALID if state == LM_LVB_VALID else LM_LVB_INVALID


def _write_all(fd: int, data: bytes, at: int) -> None:
    while data:
        n = os.pwrite(fd, data, at)
        data, at = data[n:], at + n


def lm_write_lvb(fd: int, buf: bytes | None, length: int, state: int) -> int:
    if ((buf is not None and (length != LM_LVB_SIZE or len(buf) != LM_LVB_SIZE))
            or (buf is None and length != 0) or not LM_LVB_VALID <= state <= LM_LVB_INVALID):
        return -errno.EINVAL
    r = _setlk(fd, F_OFD_SETLKW, F_WRLCK, BL)
    if r < 0:
        return r
    try:
        if buf is not None:
            _write_all(fd, bytes(buf), LVB_VALUE_AT)
        _write_all(fd, bytes([state]), LVB_STATE_AT)
    except OSError as e:
        return -(e.errno or errno.EIO)
    finally:
        _setlk(fd, F_OFD_SETLK, F_UNLCK, BL)
    return 0


def lm_close(fd: int) -> int:
    try:
        os.close(fd)
    except OSError as e:
        return -(e.errno or errno.EIO)
    return 0
