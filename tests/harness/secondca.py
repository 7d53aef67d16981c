"""A "second CA" profile for the fault proxy: Pebble made to behave like another RFC 8555 server.

wucme was tried against a second, independent ACME server implementation; where that server
differs from Pebble, `install_second_ca(proxy)` makes the proxy in front of Pebble differ the
same way (issue 13):

- a failed authorization leaves the order `pending` (RFC 8555 §7.1.6 says it becomes
  `invalid`): the order answers are rewritten to say pending and carry no error;
- authorizations are never reused: Pebble runs with authz reuse 0 (checked here);
- must-staple is dropped: the leaf of each download is re-signed by Pebble's intermediate
  key without the TLS Feature extension (RFC 7633);
- `replaces` (RFC 9773 §5) is accepted but ignored: it is left out of the order answers;
- a contact is required: newAccount without one is a 400 invalidContact problem;
- while its database is locked it answers one 500 and then a burst of badNonce problems
  (`lock_database()` arms one such episode for the next POSTs).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes

from harness.faultproxy import FaultProxy, ProxyRequest, Reply, Rule, problem

__all__ = ["SecondCA", "install_second_ca", "drop_tls_feature"]

_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----\n?", re.S)


def drop_tls_feature(leaf: x509.Certificate, issuer_key: CertificateIssuerPrivateKeyTypes) -> x509.Certificate:
    """The same certificate (subject, key, serial, validity, other extensions) without the TLS
    Feature extension, signed again by `issuer_key`."""
    b = (x509.CertificateBuilder().subject_name(leaf.subject).issuer_name(leaf.issuer)
         .public_key(leaf.public_key()).serial_number(leaf.serial_number)
         .not_valid_before(leaf.not_valid_before_utc).not_valid_after(leaf.not_valid_after_utc))
    for ext in leaf.extensions:
        if not isinstance(ext.value, x509.TLSFeature):
            b = b.add_extension(ext.value, ext.critical)
    return b.sign(issuer_key, hashes.SHA256())


@dataclass
class SecondCA:
    """The installed rules, and what they did (for the tests' assertions)."""

    proxy: FaultProxy
    rules: list[Rule] = field(default_factory=list)
    kept_pending: int = 0  # order answers rewritten from invalid to pending
    resigned: int = 0  # certificates re-signed without the TLS Feature extension
    replaces_dropped: int = 0  # order answers whose `replaces` was left out

    def ahead(self, rule: Rule) -> Rule:
        """Move a test's own rule ahead of the profile's (the proxy applies the first match)."""
        with self.proxy._lock:
            self.proxy.rules.remove(rule)
            self.proxy.rules.insert(0, rule)
        return rule

    def lock_database(self, bad_nonces: int = 3) -> None:
        """The next POST gets a 500, the `bad_nonces` after it a badNonce problem."""
        burst = [
            self.proxy.add_rule(lambda m, _p, _b: m == "POST",
                                problem(500, "serverInternal", "database is locked"), times=1),
            self.proxy.add_rule(lambda m, _p, _b: m == "POST",
                                problem(400, "badNonce", "JWS has an invalid anti-replay nonce"),
                                times=bad_nonces),
        ]
        for r in reversed(burst):
            self.ahead(r)


def _contact_missing(req: ProxyRequest) -> Reply | None:
    try:
        payload = req.jws_payload() or {}
    except (ValueError, KeyError):
        return None
    if payload.get("onlyReturnExisting") or payload.get("contact"):
        return None
    return problem(400, "invalidContact", "a contact address is required")(req)


def install_second_ca(proxy: FaultProxy) -> SecondCA:
    """Install the second CA's behaviours on `proxy` (in front of a Pebble with authz reuse 0)."""
    if proxy.pebble.authz_reuse:
        raise ValueError("the second CA never reuses authorizations: start Pebble with authz_reuse=0")
    ca = SecondCA(proxy)
    key_pem = proxy.pebble._management_get("/intermediate-keys/0")
    issuer_key = serialization.load_pem_private_key(key_pem, None)

    def keep_order_pending(req: ProxyRequest, status: int, headers: dict[str, str], body: bytes) -> Reply:
        try:
            order = json.loads(body)
        except ValueError:
            return status, headers, body
        if not isinstance(order, dict) or "status" not in order:
            return status, headers, body
        if order["status"] == "invalid":
            order["status"] = "pending"
            order.pop("error", None)
            ca.kept_pending += 1
        if order.pop("replaces", None) is not None:
            ca.replaces_dropped += 1
        return status, headers, json.dumps(order, indent=3).encode()

    def resign(req: ProxyRequest, status: int, headers: dict[str, str], body: bytes) -> Reply:
        certs = _PEM_CERT.findall(body)
        if status != 200 or not certs:
            return status, headers, body
        leaf = x509.load_pem_x509_certificate(certs[0])
        try:
            leaf.extensions.get_extension_for_class(x509.TLSFeature)
        except x509.ExtensionNotFound:
            return status, headers, body
        new = drop_tls_feature(leaf, issuer_key)  # type: ignore[arg-type]
        ca.resigned += 1
        return status, headers, body.replace(certs[0], new.public_bytes(serialization.Encoding.PEM), 1)

    def is_order(m: str, p: str, _b: bytes) -> bool:
        return m == "POST" and p.startswith(("/my-order/", "/order-plz", "/finalize-order/"))

    ca.rules = [
        proxy.add_rule(lambda m, p, _b: m == "POST" and p.startswith("/sign-me-up"), _contact_missing),
        proxy.add_rule(is_order, rewrite=keep_order_pending),
        proxy.add_rule(lambda m, p, _b: m == "POST" and p.startswith("/certZ/"), rewrite=resign),
    ]
    return ca
