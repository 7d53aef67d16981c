"""A real OCSP responder (RFC 6960) for Pebble's certificates, for tests of revocation checks.

Pebble 2.4.0 puts `ocspResponderURL` from its config into the AIA extension of what it
issues but answers no OCSP itself.  This responder fills that gap on loopback: it looks
each serial up in Pebble's management API and signs the answer with Pebble's own
intermediate key, so the response verifies exactly as a CA-signed one would
(RFC 6960 §4.2.2.2: the issuer itself is an authorized responder).

Order of use, because each side needs the other: Pebble must know the responder's URL
before it starts, and the responder needs a running Pebble to answer::

    responder = OcspResponder().start()          # binds a free port: .url is final
    pebble = Pebble(extra_config={"ocspResponderURL": responder.url}).start()
    responder.attach(pebble)                     # fetches the intermediate and its key

Until attach() (or after detach()), every request is answered `tryLater` (RFC 6960 §2.3).
"""
from __future__ import annotations

import base64
import binascii
import datetime
import re
import ssl
import threading
import urllib.parse
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any, Protocol, Self

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import ocsp

from harness.loopback import LoopbackHTTPService, OwnedHTTPServer

__all__ = ["OcspResponder", "OcspResponderError", "OcspLookup", "Answer"]

OCSP_REQUEST = "application/ocsp-request"
OCSP_RESPONSE = "application/ocsp-response"
#: How long a response claims to be fresh (nextUpdate - thisUpdate); tests never cache.
VALIDITY = datetime.timedelta(hours=1)
MAX_REQUEST = 64 * 1024
#: Go's time.Time.String(), as Pebble reports RevokedAt: "2026-11-27 09:40:36.7615 +0000 UTC".
_GO_TIME = re.compile(r"(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})(?:\.(\d+))? ([+-]\d{4})")


class OcspResponderError(RuntimeError):
    """The responder could not start or could not read Pebble's issuing key."""


class OcspLookup(Protocol):
    """What the responder needs of Pebble (harness.pebble.Pebble satisfies it)."""

    @property
    def management_url(self) -> str: ...

    def ssl_context(self) -> ssl.SSLContext: ...

    def intermediates(self, n: int = 0) -> str: ...

    def cert_status(self, serial_hex: str) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Answer:
    """One request as the responder answered it, for assertions."""

    method: str
    serial: int | None
    status: str  # "good", "revoked", "unknown", or the error status ("tryLater", ...)
    nonce: bytes | None


def _now() -> datetime.datetime:
    # OCSP times are GeneralizedTime to the second; sub-second parts only confuse clients.
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def parse_go_time(text: str) -> datetime.datetime:
    """Pebble's RevokedAt (Go's time.String()) as an aware UTC datetime (to the second)."""
    m = _GO_TIME.match(text.strip())
    if not m:
        raise ValueError(f"not a Go time: {text!r}")
    when = datetime.datetime.strptime(f"{m.group(1)} {m.group(3)}", "%Y-%m-%d %H:%M:%S %z")
    return when.astimezone(datetime.timezone.utc)


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        ctype = self.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            length = -1
        if length < 0 or length > MAX_REQUEST:
            self._reply(411 if length < 0 else 413, b"", "text/plain")
            return
        body = self.rfile.read(length)
        if ctype != OCSP_REQUEST:
            self._reply(415, b"", "text/plain")
            return
        self._reply(200, self.server.owner.answer("POST", body), OCSP_RESPONSE)

    def do_GET(self) -> None:  # noqa: N802
        """RFC 6960 A.1: GET {url}/{url-encoding of base-64 encoding of the DER request}."""
        path = urllib.parse.urlsplit(self.path).path
        b64 = urllib.parse.unquote(path.rsplit("/", 1)[-1])
        try:
            der = base64.b64decode(b64 + "=" * (-len(b64) % 4), validate=True)
        except (binascii.Error, ValueError):
            der = b""
        self._reply(200, self.server.owner.answer("GET", der), OCSP_RESPONSE)

    def _reply(self, status: int, body: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base signature
        pass


class _Server(OwnedHTTPServer):
    owner: "OcspResponder"


class OcspResponder(LoopbackHTTPService):
    """An OCSP responder on 127.0.0.1 answering for one Pebble's default chain (see module doc)."""

    _server_class = _Server
    _handler_class = _Handler
    _thread_name = "ocsp"

    def __init__(self, pebble: OcspLookup | None = None, *, host: str = "127.0.0.1",
                 port: int = 0, path: str = "/ocsp", chain: int = 0) -> None:
        super().__init__(host, port)
        self.path = "/" + path.strip("/") if path.strip("/") else ""
        self.chain = chain
        self.answers: list[Answer] = []
        self._lock = threading.Lock()
        self._pebble: OcspLookup | None = None
        self._issuer: x509.Certificate | None = None
        self._key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | None = None
        self._pending = pebble

    # The public view.
    @property
    def url(self) -> str:
        """The responder URL to give Pebble as ocspResponderURL (final once started)."""
        if not self.port:
            raise OcspResponderError("start() the responder first: its port is not chosen yet")
        return f"http://{self.host}:{self.port}{self.path}"

    @property
    def requests(self) -> int:
        """How many OCSP requests (well-formed or not) have been answered."""
        with self._lock:
            return len(self.answers)

    @property
    def issuer(self) -> x509.Certificate | None:
        return self._issuer

    def _bind(self) -> OwnedHTTPServer:
        try:
            return super()._bind()
        except OSError as e:
            raise OcspResponderError(f"cannot listen on {self.host}:{self.port}: {e}") from None

    def start(self) -> Self:
        """Bind (a free port unless one was given) and serve; attach a Pebble given to __init__."""
        super().start()
        if self._pending is not None:
            pebble, self._pending = self._pending, None
            self.attach(pebble)
        return self

    def attach(self, pebble: OcspLookup) -> "OcspResponder":
        """Answer for `pebble` from now on: fetch its intermediate and the intermediate's key."""
        try:
            issuer = x509.load_pem_x509_certificate(pebble.intermediates(self.chain).encode())
            with urllib.request.urlopen(f"{pebble.management_url}/intermediate-keys/{self.chain}",
                                        timeout=5.0, context=pebble.ssl_context()) as r:
                key = serialization.load_pem_private_key(r.read(), password=None)
        except (OSError, ValueError) as e:
            raise OcspResponderError(f"cannot read Pebble's intermediate {self.chain}: {e}") from None
        if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
            raise OcspResponderError(f"Pebble's intermediate key is a {type(key).__name__}")
        fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        if key.public_key().public_bytes(*fmt) != issuer.public_key().public_bytes(*fmt):
            raise OcspResponderError("Pebble's intermediate key does not match its certificate")
        with self._lock:
            self._pebble, self._issuer, self._key = pebble, issuer, key
        return self

    def detach(self) -> None:
        """Answer tryLater again, as before attach()."""
        with self._lock:
            self._pebble = self._issuer = self._key = None

    def statuses(self) -> list[str]:
        """The status of each answer so far, in order."""
        with self._lock:
            return [a.status for a in self.answers]

    # Answering.
    def answer(self, method: str, der: bytes) -> bytes:
        """The DER OCSPResponse for the DER OCSPRequest `der` (RFC 6960 §4.1, §4.2)."""
        with self._lock:
            pebble, issuer, key = self._pebble, self._issuer, self._key
        try:
            req = ocsp.load_der_ocsp_request(der)
        except ValueError:
            return self._fail(method, None, ocsp.OCSPResponseStatus.MALFORMED_REQUEST, "malformedRequest")
        if pebble is None or issuer is None or key is None:
            return self._fail(method, req.serial_number, ocsp.OCSPResponseStatus.TRY_LATER, "tryLater")
        nonce = _nonce(req)
        if (req.issuer_name_hash, req.issuer_key_hash) != (
                _name_hash(issuer, req.hash_algorithm), _key_hash(issuer, req.hash_algorithm)):
            return self._fail(method, req.serial_number, ocsp.OCSPResponseStatus.UNAUTHORIZED,
                              "unauthorized")
        try:
            info = pebble.cert_status(f"{req.serial_number:x}")
        except KeyError:
            info = None
        except OSError:
            return self._fail(method, req.serial_number, ocsp.OCSPResponseStatus.TRY_LATER, "tryLater")
        now = _now()
        rev_time: datetime.datetime | None = None
        reason: x509.ReasonFlags | None = None
        if info is None:
            status, name = ocsp.OCSPCertStatus.UNKNOWN, "unknown"
        elif info.get("Status") == "Revoked":
            status, name = ocsp.OCSPCertStatus.REVOKED, "revoked"
            try:
                rev_time = parse_go_time(str(info.get("RevokedAt", "")))
            except ValueError:
                rev_time = now
            reason = _REASONS.get(int(info.get("Reason") or 0))
        else:
            status, name = ocsp.OCSPCertStatus.GOOD, "good"
        builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
            issuer_name_hash=req.issuer_name_hash, issuer_key_hash=req.issuer_key_hash,
            serial_number=req.serial_number, algorithm=req.hash_algorithm, cert_status=status,
            this_update=now, next_update=now + VALIDITY,
            revocation_time=rev_time, revocation_reason=reason,
        ).responder_id(ocsp.OCSPResponderEncoding.HASH, issuer)
        if nonce is not None:
            builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
        self._record(Answer(method, req.serial_number, name, nonce))
        return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)

    def _fail(self, method: str, serial: int | None, status: ocsp.OCSPResponseStatus,
              name: str) -> bytes:
        self._record(Answer(method, serial, name, None))
        return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(
            serialization.Encoding.DER)

    def _record(self, a: Answer) -> None:
        with self._lock:
            self.answers.append(a)


# RFC 5280 §5.3.1 CRLReason codes as Pebble stores them; 0 (unspecified) is sent as no reason.
_REASONS: dict[int, x509.ReasonFlags | None] = {
    0: None,
    1: x509.ReasonFlags.key_compromise,
    2: x509.ReasonFlags.ca_compromise,
    3: x509.ReasonFlags.affiliation_changed,
    4: x509.ReasonFlags.superseded,
    5: x509.ReasonFlags.cessation_of_operation,
    6: x509.ReasonFlags.certificate_hold,
    8: x509.ReasonFlags.remove_from_crl,
    9: x509.ReasonFlags.privilege_withdrawn,
    10: x509.ReasonFlags.aa_compromise,
}


def _nonce(req: ocsp.OCSPRequest) -> bytes | None:
    try:
        return bytes(req.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce)
    except x509.ExtensionNotFound:
        return None


def _name_hash(issuer: x509.Certificate, algorithm: hashes.HashAlgorithm) -> bytes:
    """RFC 6960 §4.1.1 issuerNameHash: the hash of the issuer's DER subject name."""
    h = hashes.Hash(algorithm)
    h.update(issuer.subject.public_bytes())
    return h.finalize()


def _key_hash(issuer: x509.Certificate, algorithm: hashes.HashAlgorithm) -> bytes:
    """RFC 6960 §4.1.1 issuerKeyHash: the hash of the subjectPublicKey BIT STRING's value."""
    spki = issuer.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    h = hashes.Hash(algorithm)
    h.update(_bit_string_value(spki))
    return h.finalize()


def _bit_string_value(spki: bytes) -> bytes:
    """The subjectPublicKey bits of a DER SubjectPublicKeyInfo (skip algorithm, unused-bits byte)."""
    def header(buf: bytes, pos: int) -> tuple[int, int]:  # -> (content start, content length)
        n = buf[pos + 1]
        if n < 0x80:
            return pos + 2, n
        k = n & 0x7F
        return pos + 2 + k, int.from_bytes(buf[pos + 2:pos + 2 + k], "big")

    start, _ = header(spki, 0)               # SEQUENCE SubjectPublicKeyInfo
    alg_start, alg_len = header(spki, start)  # SEQUENCE AlgorithmIdentifier
    bits_start, bits_len = header(spki, alg_start + alg_len)  # BIT STRING
    return spki[bits_start + 1:bits_start + bits_len]
