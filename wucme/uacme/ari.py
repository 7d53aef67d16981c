"""ACME Renewal Information (RFC 9773): port of crypto.c:ari_check().

Beyond uacme: the certificate identifier keeps the DER serial's leading zero
(RFC 9773 §4.1), the window is read as UTC, and the same identifier is what
cert_issue sends as `replaces` (RFC 9773 §5).
"""
from __future__ import annotations

import os
import random
import time
from typing import Any

from wucme import crypto
from wucme.errors import WucmeError
from wucme.uacme.acme import AcmeSession, acme_get


def ari_cert_id(cert: Any) -> str:
    """The RFC 9773 §4.1 identifier: b64url(AKI keyIdentifier) "." b64url(serial)."""
    return crypto.crt_ari_url(cert, "").lstrip("/")


def ari_replaces(a: AcmeSession, old: Any) -> str | None:
    """`replaces` for a renewal order (RFC 9773 §5): the identifier of `old` (a certificate, or
    the file holding it) when the CA offers renewalInfo; None without ARI or without an old
    certificate that has an Authority Key Identifier.  A file is read by the repository's
    scan (crypto.cert_info: the native scanner when built), which gives the same serial and
    keyIdentifier as the certificate itself."""
    if not a.dir.get("renewalInfo"):
        return None
    try:
        if isinstance(old, (str, os.PathLike)):
            info = crypto.cert_info(old)
            return crypto.ari_id(info.aki, info.serial_number) if info is not None and info.aki else None
        return ari_cert_id(old)
    except (ValueError, crypto.CryptoError):
        return None


def ari_check(a: AcmeSession, cert: Any, ari_url: str | None, now: float | None = None,
              rand: float | None = None, picked: list[float] | None = None) -> int:
    """1 when ARI says renew now, 0 when not yet, -1 when ARI is unavailable.

    A renewal time is chosen uniformly within suggestedWindow (RFC 9773 §4.2) and appended
    to *picked* when given; `rand` fixes that choice for tests.
    """
    if not ari_url:
        return -1
    try:
        url = crypto.crt_ari_url(cert, ari_url.rstrip("/"))
    except (ValueError, crypto.CryptoError) as e:
        a.log(1, f"no ARI identifier for this certificate: {e}")
        return -1
    a.log(1, f"checking renewal information at {url}")
    try:
        r = acme_get(a, url)
    except WucmeError as e:
        a.log.warn(f"ARI unavailable: {e.text}")
        return -1
    window = (r.json or {}).get("suggestedWindow") if isinstance(r.json, dict) else None
    if r.status != 200 or not isinstance(window, dict):
        a.log(1, f"ARI unavailable at {url} (HTTP {r.status})")
        return -1
    try:
        start = crypto.parse_rfc3339_timestamp(str(window["start"])).timestamp()
        end = crypto.parse_rfc3339_timestamp(str(window["end"])).timestamp()
    except (KeyError, ValueError):
        a.log.warn(f"malformed ARI window at {url}")
        return -1
    if end < start:
        a.log.warn(f"ARI window at {url} ends before it starts")
        return -1
    explanation = (r.json or {}).get("explanationURL")
    if explanation:
        a.log(1, f"ARI explanation: {explanation}")
    t = time.time() if now is None else now
    pick = start + (random.random() if rand is None else rand) * (end - start)
    due = t > pick
    if picked is not None:
        picked.append(pick)
    a.log(1, f"ARI window {window['start']} .. {window['end']}: {'due' if due else 'not due'}")
    return 1 if due else 0
