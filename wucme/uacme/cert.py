"""Orders, certificates and revocation: ports of uacme.c:cert_issue(), cert_revoke()
and crypto.c:cert_valid().

Beyond uacme: a polling timeout never goes on to finalize a stale order; the
chain is checked before it is saved (only CERTIFICATE blocks, each of which parses,
the leaf carries the CSR's key and every requested name: RFC 8555 §7.4.2, §9.1,
§11.4); `replaces` (RFC 9773 §5) is sent when renewing and dropped once if the CA
refuses it.
"""
from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wucme import crypto
from wucme._native import certscan
from wucme.core.b64 import b64url_encode
from wucme.core.der import DerError, spki
from wucme.core.ident import identifiers
from wucme.errors import FileError, ProtocolViolation, WucmeError
from wucme.uacme.acme import PEM_CHAIN, AcmeReply, AcmeSession, acme_poll, acme_post
from wucme.uacme.ari import ari_check
from wucme.uacme.authorize import authorize
from wucme.uacme.files import link_backup
from wucme.uacme.hook import Solver
from wucme.vms.atomic import install_temp, write_temp

if TYPE_CHECKING:
    # Imported where used: an issue whose chain the native scanner reads needs no X.509
    # classes (their import is a tenth of `wucme issue`: docs/performance.md).
    from cryptography import x509

_LINK_ALT = re.compile(r'<([^>]*)>\s*;[^,]*?\brel\s*=\s*"?alternate"?', re.I)
_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----.*?-----END \1-----", re.S)


def _poll_order(a: AcmeSession, url: str, waiting: tuple[str, ...], want: str,
                wait_first: AcmeReply | None = None) -> dict[str, Any]:
    """POST-as-GET the order until it leaves `waiting` (RFC 8555 §7.4); it must reach `want`.
    *wait_first*: the answer to wait out before the first request (acme_poll)."""
    r = acme_poll(a, url, waiting, "order", wait_first)
    order = r.json if isinstance(r.json, dict) else {}
    status = order.get("status")
    if status != want:
        err = order.get("error") or {}
        raise WucmeError(
            f"order at {url} is {status}, expected {want}"
            + (f": {err.get('type', '')} {err.get('detail', '')}" if err else ""),
            ident="ORDERSTATUS",
        )
    a.order = order
    return order


def _new_order(a: AcmeSession, names: list[str], replaces: str | None) -> AcmeReply:
    url = a.url("newOrder")
    payload: dict[str, Any] = {}
    if a.profile:
        payload["profile"] = a.profile
    payload["identifiers"] = identifiers(names)
    if replaces:
        payload["replaces"] = replaces
    a.log(1, f"creating new order at {url}")
    r = acme_post(a, url, payload)
    if replaces and r.status != 201 and r.problem() is not None:
        a.log.warn(f"CA refused replaces={replaces} ({r.problem()}), retrying without it")
        del payload["replaces"]
        r = acme_post(a, url, payload)
    return r.expect(201, what=f"submit order at {url}")


def cert_issue(a: AcmeSession, names: list[str], csr: bytes, certprefix: str,
               replaces: str | None = None, solver: Solver | None = None) -> str:
    """Port of uacme.c:cert_issue(): order, authorize, finalize, download, save.

    Challenges go to *solver* when given, else to the hook `a.hook` (authorize()).
    Returns the certificate file (uacme's layout: CERTPREFIXcert.pem)."""
    return cert_save(a, certprefix, cert_order(a, names, csr, replaces, solver))


def cert_order(a: AcmeSession, names: list[str], csr: bytes, replaces: str | None = None,
               solver: Solver | None = None) -> bytes:
    """Everything cert_issue does but the saving: the checked PEM chain, in RFC 8555 §7.4's
    order: newOrder (naming the certificate it `replaces`, RFC 9773 §5); each pending
    authorization answered through *solver* or the hook (§7.5, §8); the order polled until
    `ready`; finalize with the CSR; polled until `valid`; the chain downloaded (§7.4.2) and
    checked against the request (§11.4)."""
    r = _new_order(a, names, replaces)
    orderurl = r.location
    if not orderurl:
        raise ProtocolViolation("order location not found")
    a.log(1, f"order location: {orderurl}")
    order = r.json if isinstance(r.json, dict) else {}
    a.order = order
    status = order.get("status")
    if status not in ("pending", "ready"):
        raise WucmeError(f"invalid order status ({status})", ident="ORDERSTATUS")
    if status == "pending":
        authz = order.get("authorizations")
        if not isinstance(authz, list) or not all(isinstance(u, str) for u in authz):
            raise ProtocolViolation("failed to parse authorizations URL")
        # authorize() polls the order itself while the challenges are validated; an order it
        # saw ready needs no second poll (one request less).  Otherwise it is polled here.
        # (Its answer, not a.order: the renewal pass runs several orders on one session.)
        seen = authorize(a, authz, orderurl, solver) or {}
        if seen.get("status") == "ready":
            a.order = order = seen
        else:
            order = _poll_order(a, orderurl, ("pending",), "ready")
    finalize = order.get("finalize")
    if not isinstance(finalize, str):
        raise ProtocolViolation("failed to find finalize URL")
    a.log(1, f"finalizing order at {finalize}")
    r = acme_post(a, finalize, {"csr": b64url_encode(csr)}).expect(200, what=f"finalize order at {finalize}")
    order = r.json if isinstance(r.json, dict) else {}
    if order.get("status") != "valid":
        # RFC 8555 §7.4: "processing": the certificate is being issued; poll after the time the
        # answer's Retry-After gives, if any.
        order = _poll_order(a, orderurl, ("ready", "processing"), "valid", wait_first=r)
    certurl = order.get("certificate")
    if not isinstance(certurl, str):
        raise ProtocolViolation("failed to parse certificate url")
    pem = _download(a, certurl)
    _check_chain(pem, names, csr)
    _check_staple(a, pem, csr)
    return pem


def _has_tls_feature(obj: x509.Certificate | x509.CertificateSigningRequest) -> bool:
    from cryptography import x509
    try:
        obj.extensions.get_extension_for_class(x509.TLSFeature)
    except x509.ExtensionNotFound:
        return False
    return True


def _check_staple(a: AcmeSession, pem: bytes, csr: bytes) -> None:
    """Warn when the CSR asked for must-staple (RFC 7633 TLS Feature) and the CA dropped it:
    some CAs do, and a server that relies on stapling should know."""
    if not crypto.csr_requests_staple(csr):
        return
    from cryptography import x509
    if not _has_tls_feature(x509.load_der_x509_csr(csr)):
        return
    if not _has_tls_feature(x509.load_pem_x509_certificates(pem)[0]):
        a.log.warn("must-staple was requested but the CA issued the certificate without the "
                   "TLS Feature extension (RFC 7633)")


def _download(a: AcmeSession, certurl: str) -> bytes:
    """The certificate chain, an alternate one if -l asks for it (RFC 8555 §7.4.2)."""
    a.log(1, f"retrieving certificate at {certurl}")
    r = acme_post(a, certurl, "", accept=PEM_CHAIN).expect(200, what=f"retrieve certificate at {certurl}")
    pem = r.body
    if a.alternate is None:
        return pem
    alts = [m.group(1) for v in r.response.header_all("Link") for m in _LINK_ALT.finditer(v)]
    if isinstance(a.alternate, int):
        if a.alternate <= len(alts):
            url = alts[a.alternate - 1]
            a.log(1, f"retrieving alternate certificate chain {a.alternate} at {url}")
            return acme_post(a, url, "", accept=PEM_CHAIN).expect(200, what=f"retrieve certificate at {url}").body
        a.log.warn(f"alternate chain {a.alternate} not found, using the default chain")
        return pem
    if crypto.cert_match(pem, a.alternate):
        return pem
    for url in alts:
        a.log(1, f"retrieving alternate certificate chain at {url}")
        alt = acme_post(a, url, "", accept=PEM_CHAIN).expect(200, what=f"retrieve certificate at {url}").body
        if crypto.cert_match(alt, a.alternate):
            return alt
    a.log.warn(f"no chain matches {a.alternate.hex(':')}, using the default chain")
    return pem


def _check_chain(pem: bytes, names: list[str], csr: bytes) -> None:
    """Refuse a chain that is not what was asked for (RFC 8555 §11.4): nothing is written.

    RFC 8555 §9.1: strict PEM, certificates only, no text around them; every block must
    parse, or the web server that loads the file would fail on it.  The native certificate
    scanner reads the chain when it understands all of it; anything else (and a key encoded
    otherwise than in the CSR) is read with `cryptography`, as it always was.
    """
    blocks = _PEM_BLOCK.findall(pem)
    if not blocks or any(b != b"CERTIFICATE" for b in blocks) or _PEM_BLOCK.sub(b"", pem).strip():
        raise ProtocolViolation("certificate response is not a chain of CERTIFICATE blocks")
    info = certscan.understood(pem)
    if info is not None and _same_key(info.der, csr):  # the native scanner read every certificate
        have = set(info.names)
        missing = [n for n in names if n.lower() not in have]
        if missing:
            raise ProtocolViolation(f"issued certificate lacks {', '.join(missing)}")
        return
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    try:
        leaf = x509.load_pem_x509_certificates(pem)[0]
        req = x509.load_der_x509_csr(csr)
    except (ValueError, x509.InvalidVersion) as e:  # a version that is not v1-v3: no ValueError
        raise ProtocolViolation(f"certificate response does not parse: {e}") from None
    fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if leaf.public_key().public_bytes(*fmt) != req.public_key().public_bytes(*fmt):
        raise ProtocolViolation("issued certificate does not carry the CSR's key")
    have = set(crypto.cert_names(leaf))
    missing = [n for n in names if n.lower() not in have]
    if missing:
        raise ProtocolViolation(f"issued certificate lacks {', '.join(missing)}")


def _same_key(leaf: bytes, csr: bytes) -> bool:
    """Does the DER certificate *leaf* carry the key of the DER request *csr*, encoded the
    same way?  False also when either does not parse: `cryptography` then decides."""
    try:
        return spki(leaf) == spki(csr, csr=True)
    except DerError:
        return False


def cert_save(a: AcmeSession, certprefix: str, pem: bytes) -> str:
    """uacme's save: the new chain in a temporary file, cert.pem hard-linked to cert-EPOCH.pem,
    then the temporary file renamed over cert.pem (wucme.vms.atomic: created 0444 with O_EXCL,
    every byte written and fsynced, the directory fsynced after the rename).

    Differs: the temporary file is `.wucme-tmp-*` (the shared writer's name), not cert.pem.tmp.
    """
    certfile = f"{certprefix}cert.pem"
    directory = os.path.dirname(certfile) or "."
    try:
        tmp = write_temp(directory, pem, 0o444)
    except OSError as e:
        raise FileError(f"failed to write {certfile}: {e.strerror or e}") from None
    backups: list[str | None] = []
    try:
        install_temp(tmp, Path(certfile), lambda: backups.append(link_backup(a.log, certfile, strict=True)))
    except FileError:
        raise
    except OSError as e:
        for bak in backups:
            if bak:
                _unlink(bak)
        raise FileError(f"failed to rename {tmp} to {certfile}: {e.strerror or e}") from None
    a.log(1, f"certificate saved to {certfile}")
    return certfile


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def cert_revoke_leaf(a: AcmeSession, leaf: x509.Certificate, reason: int, what: str) -> None:
    """The revokeCert request of cert_revoke() (RFC 8555 §7.6) for *leaf*, which messages call
    *what* (the file the administrator named), and nothing else: no file is touched."""
    from cryptography.hazmat.primitives import serialization
    der = leaf.public_bytes(serialization.Encoding.DER)
    url = a.url("revokeCert")
    a.log(1, f"revoking {what} at {url}")
    acme_post(a, url, {"certificate": b64url_encode(der), "reason": reason}).expect(
        200, what=f"revoke {what}")


def cert_revoke(a: AcmeSession, certfile: str, reason: int) -> str:
    """Port of uacme.c:cert_revoke() (RFC 8555 §7.6); the file becomes revoked-EPOCH.pem."""
    certs = crypto.cert_load(certfile)
    if not certs:
        raise FileError(f"no certificate in {certfile}")
    cert_revoke_leaf(a, certs[0], reason, certfile)
    dest = os.path.join(os.path.dirname(certfile) or ".", f"revoked-{int(time.time())}.pem")
    try:
        os.rename(certfile, dest)
    except OSError as e:
        a.log.warn(f"failed to rename {certfile} to {dest}: {e.strerror}")
        return certfile
    a.log(1, f"{certfile} revoked, renamed to {dest}")
    return dest


def cert_valid(a: AcmeSession, certfile: str, names: list[str], ari_url: str | None,
               days: int, status_check: bool) -> bool:
    """Port of crypto.c:cert_valid(): True when the certificate needs no reissue."""
    if not os.path.exists(certfile):
        a.log(1, f"{certfile} does not exist")
        return False
    try:
        certs = crypto.cert_load(certfile)
    except crypto.CryptoError as e:
        a.log(1, f"{certfile}: {e}")
        return False
    if not certs:
        return False
    leaf = certs[0]
    days_left = int(crypto.cert_days_left(leaf))
    a.log(1, f"{certfile} expires in {days_left} days")
    ari = ari_check(a, leaf, ari_url) if days_left > 0 else -1
    if ari > 0 or (ari < 0 and days_left < days):
        a.log(1, f"{certfile} is due for renewal")
        return False
    have = set(crypto.cert_names(leaf))
    for n in names:
        if n.lower() not in have:
            a.log(1, f"{certfile} does not include {n}")
            return False
    if status_check:
        if len(certs) < 2:
            a.log.warn(f"no issuer certificate in {certfile}, skipping OCSP check")
        elif ocsp_check(a, certs) == "revoked":
            a.log.warn(f"{certfile} is revoked")
            return False
    return True


def ocsp_check(a: AcmeSession, certs: list[Any]) -> str:
    """Port of crypto.c:ocsp_check(): "good", "revoked" or "unknown" (fails open like uacme)."""
    req = crypto.ocsp_request(certs)
    if req is None:
        return "unknown"
    url, der = req
    try:
        resp = a.transport.request("POST", url, der, {"Content-Type": "application/ocsp-request"})
    except Exception as e:  # noqa: BLE001 - any failure fails open, as uacme does
        a.log(1, f"OCSP request to {url} failed: {e}")
        return "unknown"
    if resp.status != 200:
        a.log(1, f"OCSP request to {url} failed: HTTP status {resp.status}")
        return "unknown"
    status = crypto.ocsp_status(resp.body, certs, der)  # with the request: the nonce is checked
    a.log(1, f"OCSP status {status} from {url}")
    return status
