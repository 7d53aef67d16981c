"""The certificate scan's checked layer over native/certscan.c or its pure twin.

`backend()` picks the implementation: the cffi module `wucme._native._certscan` when it
was built and the logical name WUCME_NO_NATIVE is not defined, else `certscan_pure`.
Both give the same CertInfo for the same file; the native one hands every chain it does
not fully understand, and every failure, to the twin, so errors are the twin's.  This is
the only module of the scan where cffi's untyped objects appear.

The crypto fast path's other helper is wucme._native.pkey (wucme's keys on the system's
libcrypto); JWS signing in one call, tls-alpn-01 certificates and CSRs were native once
too, and no faster than `cryptography` (docs/performance.md).
"""
from __future__ import annotations

import datetime as _dt
import ipaddress
import threading
from typing import Any

from wucme._native import native_forced_off

from . import certscan_pure as pure
from .certscan_pure import CertInfo, NoCertificate, file_key

try:
    from wucme._native._certscan import ffi as _ffi, lib as _lib
except ImportError:  # not built: no compiler, or a source checkout
    _ffi = _lib = None

__all__ = ["HAS_CERTSCAN", "CertInfo", "NoCertificate", "file_key", "Scanner", "backend", "native_forced_off",
           "understood", "PURE", "NATIVE"]

HAS_CERTSCAN = _lib is not None
_UTC = _dt.timezone.utc
#: Bytes of the per-thread buffer of cert_file(): larger files go the slower way round.
_SCRATCH = 65536


class Scanner:
    """The pure twin."""

    name = "pure"

    def cert_info(self, pem: bytes) -> CertInfo:
        """The leaf of a PEM chain; NoCertificate or ValueError as crypto.cert_load() fails."""
        return pure.cert_info(pem)

    def cert_file(self, path: str) -> CertInfo | None:
        """cert_info() of a file; None when it does not exist, OSError when it cannot be read."""
        return pure.cert_file(path)

    def same_keys(self, dfd: int, part: bytes, ckey: bytes, skey: bytes) -> bool:
        """Do the two files of *part* in the directory *dfd* still have the scan index's
        keys *ckey* and *skey*?  (The no-op pass's question, once per certificate.)"""
        return pure.same_keys(dfd, part, ckey, skey)

    def __repr__(self) -> str:
        return f"<certscan {self.name}>"


class NativeScanner(Scanner):
    """native/certscan.c through cffi; anything it declines goes to the twin."""

    name = "native"

    def __init__(self, lib: Any, ffi: Any) -> None:
        self.lib, self.ffi = lib, ffi
        self._scratch = threading.local()

    def cert_info(self, pem: bytes) -> CertInfo:
        info = self.understood(pem)
        return pure.cert_info(pem) if info is None else info

    def understood(self, pem: bytes) -> CertInfo | None:
        """The leaf of a chain the scanner understands completely (every certificate read, as
        `cryptography` would read it), else None: the twin decides what such a chain means."""
        n = len(pem)
        buf = self.ffi.new("unsigned char[]", n or 1)
        out = self.ffi.new("struct cs_cert *")
        if self.lib.cs_cert_scan(pem, n, buf, n, out) != self.lib.CS_OK:
            return None
        return self._info(buf, out)

    def cert_file(self, path: str) -> CertInfo | None:
        """The file is opened and read in C; anything but a chain it understands is read
        again here and goes through cert_info() (and so, when need be, the twin)."""
        scratch = self._scratch.__dict__.get("buf")
        if scratch is None:
            scratch = self._scratch.buf = (self.ffi.new("unsigned char[]", _SCRATCH),
                                           self.ffi.new("struct cs_cert *"))
        buf, out = scratch
        r = self.lib.cs_cert_file(path.encode("utf-8", "surrogateescape"), buf, _SCRATCH, out)
        if r == self.lib.CS_OK:
            return self._info(buf, out)
        if r == self.lib.CS_ENOENT:
            return None
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return None
        return self.cert_info(data)

    def same_keys(self, dfd: int, part: bytes, ckey: bytes, skey: bytes) -> bool:
        """Two fstatat(2) calls and the keys compared in C: no stat_result made."""
        return bool(self.lib.cs_same_keys(dfd, part, len(part), ckey, len(ckey), skey, len(skey)))

    def _info(self, buf: Any, out: Any) -> CertInfo:
        lib = self.lib
        der: bytes = self.ffi.buffer(buf, out.der_len)[:]
        o = out.serial_off
        serial = int.from_bytes(der[o:o + out.serial_len], "big")
        aki = der[out.aki_off:out.aki_off + out.aki_len] if out.aki_len > 0 else None
        cn: list[str] = []
        dns: list[str] = []
        ips: list[str] = []
        for i in range(out.nnames):
            o = out.name_off[i]
            raw = der[o:o + out.name_len[i]]
            kind = out.name_type[i]
            if kind == lib.CS_NAME_CN:
                cn.append(raw.decode("utf-8"))
            elif kind == lib.CS_NAME_DNS:
                dns.append(raw.decode("ascii"))
            else:
                ips.append(str(ipaddress.ip_address(raw)))
        return CertInfo(der, serial, _dt.datetime.fromtimestamp(out.not_before, _UTC),
                        _dt.datetime.fromtimestamp(out.not_after, _UTC),
                        pure.dedup_lower(cn + dns + ips), aki)


PURE = Scanner()
NATIVE = NativeScanner(_lib, _ffi) if _lib is not None else None


def understood(pem: bytes) -> CertInfo | None:
    """The native scanner's reading of the PEM chain *pem* when it was built, is not turned off
    (WUCME_NO_NATIVE) and understands the chain completely; else None (callers then read the
    chain with `cryptography`, whose import `wucme issue` spares itself this way)."""
    scanner = backend()
    return scanner.understood(pem) if isinstance(scanner, NativeScanner) else None


def backend(native: bool | None = None) -> Scanner:
    """The implementation to use: `native` True or False asks for one (True raises
    RuntimeError when it was not built); None takes the native one unless it is missing
    or WUCME_NO_NATIVE is defined."""
    if native is False or (native is None and (NATIVE is None or native_forced_off())):
        return PURE
    if NATIVE is None:
        raise RuntimeError("the native certificate scan (wucme._native._certscan) was not built")
    return NATIVE
