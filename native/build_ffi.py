"""The cffi builders of the native helpers, named in setup.py's `cffi_modules`.

Each helper is a pair native/NAME.h (the cdef, which is also the C header) and native/NAME.c
(the source), built into `wucme._native._NAME`; `NAME_ffi` below is its builder.  cffi's
setuptools hook execs this file by path while the package is being built, so it imports
neither wucme nor anything of the project, only cffi.
"""
from __future__ import annotations

from pathlib import Path

from cffi import FFI

NATIVE = Path(__file__).resolve().parent


def _ffi(name: str, libraries: tuple[str, ...] = ()) -> FFI:
    """The builder of native/NAME.{h,c} as the module wucme._native._NAME, linked with
    *libraries* (pkey: the system's libcrypto, whose headers come with libssl-dev)."""
    ffi = FFI()
    ffi.cdef((NATIVE / f"{name}.h").read_text())
    ffi.set_source(
        f"wucme._native._{name}",
        (NATIVE / f"{name}.c").read_text(),
        include_dirs=[str(NATIVE)],
        libraries=list(libraries),
        extra_compile_args=["-O2", "-Wall"],
    )
    return ffi


lockmgr_ffi = _ffi("lockmgr")
certscan_ffi = _ffi("certscan")
splice_ffi = _ffi("splice")
pkey_ffi = _ffi("pkey", ("crypto",))
