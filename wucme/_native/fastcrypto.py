"""The crypto fast path's checked layer over native/fastcrypto.c or its pure twin.

`backend()` picks the implementation: the cffi module `wucme._native._fastcrypto` when it
was built and the logical name WUCME_NO_NATIVE is not defined, else `fastcrypto_pure`.
The choice is re-read at most once a second (a signature costs less than a logical name
look-up).  Both give the same bytes for the same input; the native one hands every input
it does not fully understand, and every failure, to the twin, so errors are the twin's.
This is the only module of the fast path where cffi's untyped objects appear.
"""
from __future__ import annotations

import datetime as _dt
import ipaddress
import os
import threading
import time
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from wucme.vms.lnm import trnlnm

from . import fastcrypto_pure as pure
from .fastcrypto_pure import CertInfo, NoCertificate, PrivateKey

try:
    from wucme._native._fastcrypto import ffi as _ffi, lib as _lib
except ImportError:  # not built: no compiler or no libssl-dev, or a source checkout
    _ffi = _lib = None

__all__ = ["HAS_FASTCRYPTO", "CertInfo", "NoCertificate", "CryptoBackend", "backend",
           "native_forced_off", "PURE", "NATIVE"]

HAS_FASTCRYPTO = _lib is not None
_UTC = _dt.timezone.utc
_EC_BITS = {"secp256r1": 256, "secp384r1": 384}
#: Bytes of the per-thread buffer of cert_file(): larger files go the slower way round.
_SCRATCH = 65536


class CryptoBackend:
    """The pure twin: every operation through `cryptography`."""

    name = "pure"

    def cert_info(self, pem: bytes) -> CertInfo:
        """The leaf of a PEM chain; NoCertificate or ValueError as crypto.cert_load() fails."""
        return pure.cert_info(pem)

    def cert_file(self, path: str) -> CertInfo | None:
        """cert_info() of a file; None when it does not exist, OSError when it cannot be read."""
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return None
        return self.cert_info(data)

    def key_load(self, pem: bytes) -> PrivateKey:
        """A PEM private key from wucme's own repository: no RSA consistency check."""
        return pure.key_load(pem)

    def jws_sign(self, key: PrivateKey, protected: bytes, payload: bytes) -> bytes:
        """The flattened JWS of the serialized protected header and payload."""
        return pure.jws_sign(key, protected, payload)

    def alpn_cert(self, san: tuple[str, str], digest: bytes, key: Any, serial: int,
                  not_before: _dt.datetime, not_after: _dt.datetime) -> x509.Certificate:
        """The tls-alpn-01 validation certificate; san is ("dns", name) or ("ip", address)."""
        return pure.alpn_cert(pure.general_name(*san), digest, key, serial, not_before, not_after)

    def csr(self, key: PrivateKey, cn: str | None, sans: list[tuple[str, str]], key_usage: int,
            status_req: bool) -> bytes:
        """A DER PKCS#10 request; sans as ("dns", A-label) or ("ip", address)."""
        return pure.csr(key, cn, [pure.general_name(*s) for s in sans], key_usage, status_req)

    def __repr__(self) -> str:
        return f"<CryptoBackend {self.name}>"


class NativeCrypto(CryptoBackend):
    """native/fastcrypto.c through cffi; anything it declines goes to the twin."""

    name = "native"

    def __init__(self, lib: Any, ffi: Any) -> None:
        self.lib, self.ffi = lib, ffi
        self._keys: dict[int, tuple[object, Any]] = {}
        self._lock = threading.Lock()
        self._scratch = threading.local()

    # The repository scan.
    def cert_info(self, pem: bytes) -> CertInfo:
        ffi, lib = self.ffi, self.lib
        n = len(pem)
        buf = ffi.new("unsigned char[]", n or 1)
        out = ffi.new("struct fc_cert *")
        if lib.fc_cert_scan(pem, n, buf, n, out) != lib.FC_OK:
            return pure.cert_info(pem)
        return self._info(buf, out)

    def cert_file(self, path: str) -> CertInfo | None:
        """The file is opened and read in C; anything but a certificate it understands is
        read again here and goes through cert_info() (and so, when need be, the twin)."""
        scratch = self._scratch.__dict__.get("buf")
        if scratch is None:
            scratch = self._scratch.buf = (self.ffi.new("unsigned char[]", _SCRATCH),
                                           self.ffi.new("struct fc_cert *"))
        buf, out = scratch
        r = self.lib.fc_cert_file(os.fsencode(path), buf, _SCRATCH, out)
        if r == self.lib.FC_OK:
            return self._info(buf, out)
        if r == self.lib.FC_ENOENT:
            return None
        return super().cert_file(path)

    def _info(self, buf: Any, out: Any) -> CertInfo:
        lib = self.lib
        der = self.ffi.buffer(buf, out.der_len)[:]
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
            if kind == lib.FC_NAME_CN:
                cn.append(raw.decode("utf-8"))
            elif kind == lib.FC_NAME_DNS:
                dns.append(raw.decode("ascii"))
            else:
                ips.append(str(ipaddress.ip_address(raw)))
        return CertInfo(der, serial, _dt.datetime.fromtimestamp(out.not_before, _UTC),
                        _dt.datetime.fromtimestamp(out.not_after, _UTC),
                        pure.dedup_lower(cn + dns + ips), aki)

    # Keys.
    def _new_key(self, data: bytes, der: bool) -> Any:
        k = self.lib.fc_key_load(data, len(data), 1 if der else 0)
        return None if k == self.ffi.NULL else self.ffi.gc(k, self.lib.fc_key_free)

    def _pkcs8(self, handle: Any) -> bytes:
        cap = 12000
        buf = self.ffi.new("unsigned char[]", cap)
        need = self.ffi.new("size_t *")
        n = self.lib.fc_key_pkcs8(handle, buf, cap, need)
        if n < 0:
            raise ValueError("the key cannot be serialized")
        return bytes(self.ffi.buffer(buf, n))

    def key_load(self, pem: bytes) -> PrivateKey:
        handle = self._new_key(pem, der=False)
        if handle is None or self.lib.fc_key_type(handle) < 0:
            return pure.key_load(pem)
        key = serialization.load_der_private_key(self._pkcs8(handle), None,
                                                 unsafe_skip_rsa_key_validation=True)
        self._remember(key, handle)
        return key  # type: ignore[return-value]  # RSA or EC: fc_key_type said so

    def _remember(self, key: object, handle: Any) -> None:
        with self._lock:
            if len(self._keys) >= 32:
                self._keys.pop(next(iter(self._keys)))
            self._keys[id(key)] = (key, handle)

    def _handle(self, key: object) -> Any:
        """The native key for a `cryptography` key, made once per key object."""
        found = self._keys.get(id(key))
        if found is not None and found[0] is key:
            return found[1]
        if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name in _EC_BITS:
            # From the numbers: libcrypto 3.0's DER decoder costs hundreds of microseconds.
            bits = _EC_BITS[key.curve.name]
            priv = key.private_numbers().private_value.to_bytes(bits // 8, "big")
            pub = key.public_key().public_bytes(serialization.Encoding.X962,
                                                serialization.PublicFormat.UncompressedPoint)
            k = self.lib.fc_key_ec(bits, priv, len(priv), pub, len(pub))
            handle = None if k == self.ffi.NULL else self.ffi.gc(k, self.lib.fc_key_free)
            if handle is not None:
                self._remember(key, handle)
            return handle
        try:
            der = key.private_bytes(serialization.Encoding.DER,  # type: ignore[attr-defined]
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
        except AttributeError:
            return None
        handle = self._new_key(der, der=True)
        if handle is not None and self.lib.fc_key_type(handle) >= 0:
            self._remember(key, handle)
            return handle
        return None

    # JWS.
    def jws_sign(self, key: PrivateKey, protected: bytes, payload: bytes) -> bytes:
        handle = self._handle(key)
        if handle is None:
            return pure.jws_sign(key, protected, payload)
        cap = (len(protected) + len(payload)) * 4 // 3 + 1500
        buf = self.ffi.new("unsigned char[]", cap)
        need = self.ffi.new("size_t *")
        n = self.lib.fc_jws_sign(handle, protected, len(protected), payload, len(payload),
                                 buf, cap, need)
        if n < 0:
            return pure.jws_sign(key, protected, payload)
        return self.ffi.buffer(buf, n)[:]  # type: ignore[no-any-return]

    # tls-alpn-01.
    def alpn_cert(self, san: tuple[str, str], digest: bytes, key: Any, serial: int,
                  not_before: _dt.datetime, not_after: _dt.datetime) -> x509.Certificate:
        handle = self._handle(key)
        if handle is None or len(digest) != 32 or not 0 < serial < 1 << 159:
            return super().alpn_cert(san, digest, key, serial, not_before, not_after)
        kind, value = san
        raw = (ipaddress.ip_address(value).packed if kind == "ip"
               else value.encode("ascii", "strict"))
        cap = 1024 + len(raw)
        buf = self.ffi.new("unsigned char[]", cap)
        need = self.ffi.new("size_t *")
        sbytes = serial.to_bytes((serial.bit_length() + 7) // 8, "big")
        n = self.lib.fc_alpn_cert(handle, self.lib.FC_NAME_IP if kind == "ip" else self.lib.FC_NAME_DNS,
                                  raw, len(raw), digest, sbytes, len(sbytes),
                                  int(not_before.timestamp()), int(not_after.timestamp()),
                                  buf, cap, need)
        if n < 0:
            return super().alpn_cert(san, digest, key, serial, not_before, not_after)
        return x509.load_der_x509_certificate(self.ffi.buffer(buf, n)[:])

    # CSRs.
    def csr(self, key: PrivateKey, cn: str | None, sans: list[tuple[str, str]], key_usage: int,
            status_req: bool) -> bytes:
        handle = self._handle(key)
        if handle is None or not sans:
            return super().csr(key, cn, sans, key_usage, status_req)
        ffi, lib = self.ffi, self.lib
        raws = [ipaddress.ip_address(v).packed if k == "ip" else v.encode("ascii")
                for k, v in sans]
        keep = [ffi.new("unsigned char[]", r) for r in raws]
        types = ffi.new("int[]", [lib.FC_NAME_IP if k == "ip" else lib.FC_NAME_DNS
                                  for k, _ in sans])
        lens = ffi.new("size_t[]", [len(r) for r in raws])
        ptrs = ffi.new("const unsigned char *[]", keep)
        cnb = (cn or "").encode("utf-8")
        cap = 4096 + sum(len(r) + 4 for r in raws) + len(cnb)
        buf = ffi.new("unsigned char[]", cap)
        need = ffi.new("size_t *")
        n = lib.fc_csr(handle, cnb, len(cnb), len(raws), types, ptrs, lens, key_usage,
                       1 if status_req else 0, buf, cap, need)
        if n < 0:
            return super().csr(key, cn, sans, key_usage, status_req)
        return ffi.buffer(buf, n)[:]  # type: ignore[no-any-return]


PURE = CryptoBackend()
NATIVE = NativeCrypto(_lib, _ffi) if _lib is not None else None

_forced_until = 0.0
_forced = False


def native_forced_off(recheck: bool = False) -> bool:
    """True when the logical name WUCME_NO_NATIVE is defined (re-read at most once a second,
    or now when *recheck*)."""
    global _forced_until, _forced
    now = time.monotonic()
    if recheck or now >= _forced_until:
        _forced = trnlnm("WUCME_NO_NATIVE") is not None
        _forced_until = now + 1.0
    return _forced


def backend(native: bool | None = None) -> CryptoBackend:
    """The implementation to use: `native` True or False asks for one (True raises
    RuntimeError when it was not built); None takes the native one unless it is missing
    or WUCME_NO_NATIVE is defined."""
    if native is False or (native is None and (NATIVE is None or native_forced_off())):
        return PURE
    if NATIVE is None:
        raise RuntimeError("the native crypto fast path (wucme._native._fastcrypto) was not built")
    return NATIVE
