"""Pebble in simulated time: what the agent's months-long tests need from a CA.

Pebble stamps certificates with the real time; a test that runs the agent across simulated
months on a fake clock needs certificates whose validity is in that clock's time.  The fault
proxy re-issues each leaf Pebble hands out, keeping its subject, names, key and serial, with
notBefore = the fake clock's now and the lifetime the test asks for, signed by the test CA (the
chain becomes leaf + test CA).  It can also take the CA down in windows of fake time: every
request then gets a 503, a dropped connection, or an answer one byte a second.
"""
from __future__ import annotations

import datetime as _dt
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtensionOID

from harness.faultproxy import DRIP, DROP, FaultProxy, ProxyRequest, Reply, problem


class Clock(Protocol):
    def now(self) -> _dt.datetime: ...


@dataclass
class Issued:
    """One certificate as the test sees it: names, serial, and its fake-time validity."""

    names: list[str]
    serial: int
    not_before: _dt.datetime
    not_after: _dt.datetime


@dataclass
class Outage:
    """The CA is down from `start` to `end` (fake time): `mode` 503, drop or drip."""

    start: _dt.datetime
    end: _dt.datetime
    mode: str = "503"
    hits: int = 0


@dataclass
class TimeMachine:
    proxy: FaultProxy
    clock: Clock
    #: The fake-time lifetime of a certificate for these names.
    lifetime: Callable[[list[str]], _dt.timedelta]
    issued: list[Issued] = field(default_factory=list)
    outages: list[Outage] = field(default_factory=list)
    #: Seconds between bytes of a dripping answer.
    drip_interval: float = 1.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def install(self) -> TimeMachine:
        self.proxy.add_rule(lambda m, p, b: self._down() is not None, self._outage_reply)
        self.proxy.add_rule(lambda m, p, b: m == "POST" and p.startswith("/certZ/"),
                            rewrite=self._restamp)
        ca = self.proxy.ca
        self._ca_cert = x509.load_pem_x509_certificate(ca.cert.read_bytes())
        key = serialization.load_pem_private_key(ca.key.read_bytes(), None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        self._ca_key = key
        return self

    # --- outages
    def _down(self) -> Outage | None:
        now = self.clock.now()
        return next((o for o in self.outages if o.start <= now < o.end), None)

    def _outage_reply(self, req: ProxyRequest) -> Reply | None:
        o = self._down()
        if o is None:
            return None
        o.hits += 1
        if o.mode == "drop":
            return DROP, {}, b""
        if o.mode == "drip":
            status, headers, body = problem(503, "serverInternal", "the CA drips")(req)
            return status, {**headers, DRIP: str(self.drip_interval)}, body
        return problem(503, "serverInternal", "the CA is down for maintenance")(req)

    # --- certificates in fake time
    def _restamp(self, req: ProxyRequest, status: int, headers: dict[str, str], body: bytes) -> Reply:
        if status != 200 or b"BEGIN CERTIFICATE" not in body:
            return status, headers, body
        leaf = x509.load_pem_x509_certificates(body)[0]
        sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [str(n) for n in sans.get_values_for_type(x509.DNSName)]
        start = self.clock.now().astimezone(_dt.timezone.utc) - _dt.timedelta(minutes=1)
        end = start + self.lifetime(names)
        builder = (x509.CertificateBuilder()
                   .subject_name(leaf.subject).issuer_name(self._ca_cert.subject)
                   .public_key(leaf.public_key()).serial_number(leaf.serial_number)
                   .not_valid_before(start).not_valid_after(end))
        for ext in leaf.extensions:
            if ext.oid != ExtensionOID.AUTHORITY_KEY_IDENTIFIER:
                builder = builder.add_extension(ext.value, ext.critical)
        new = builder.sign(self._ca_key, hashes.SHA256())
        with self._lock:
            self.issued.append(Issued(names, leaf.serial_number, start, end))
        pem = new.public_bytes(serialization.Encoding.PEM) + self._ca_cert.public_bytes(serialization.Encoding.PEM)
        headers = {k: v for k, v in headers.items() if k.lower() != "link"}  # no alternate chains
        return status, headers, pem

    def issued_for(self, first: str) -> list[Issued]:
        with self._lock:
            return [i for i in self.issued if i.names and i.names[0] == first]


def orders(proxy: FaultProxy) -> list[tuple[float, list[str]]]:
    """Every order Pebble created (a newOrder it answered 201, RFC 8555 §7.4): (monotonic time,
    identifier values).  Those it refused (a bad nonce) and those the proxy answered are left out."""
    out = []
    for r in proxy.requests_to("/order-plz", "POST"):
        if r.injected or r.status != 201:
            continue
        payload: Any = r.jws_payload()
        out.append((r.time, [i["value"] for i in payload.get("identifiers", [])]))
    return out
