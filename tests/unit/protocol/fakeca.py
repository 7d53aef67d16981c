"""An ACME server model in memory, reached through a scripted link (a wucme.http Transport).

FakeCA answers `request(method, url, body, headers)` the way an RFC 8555 CA does:
directory, newNonce, newAccount (EAB, terms), account update/deactivation, keyChange,
newOrder (profiles, RFC 9773 `replaces`), authorizations, challenges, finalize,
certificate download with `Link: rel="alternate"` chains, revokeCert and renewalInfo.
It checks every JWS it receives as a CA must (RFC 8555 §6.2-6.5): the signature, a nonce it
issued and never saw before, the `url` of the request, `jwk` or `kid` as the resource
requires, the account a `kid` names.  What a correct client must never send is recorded in
`violations` (and answered with a problem document); the test fixture fails a test that
leaves any.

This model shares no code with wucme's protocol core: keys, thumbprints, key
authorizations, ARI identifiers and JWS checks are computed here independently.

Everything the CA saw is in `seen`.  Faults are scripted per endpoint with `inject()`:
badNonce, rateLimited (429 or 503, with Retry-After), bare 503s, any problem document,
malformed JSON, a wrong Content-Type, or the link going down.  Behaviour knobs (polls
before validation, orders held pending or processing, Retry-After on polls, failing
challenges, alternates, mis-issued chains, ARI windows) are plain attributes.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from wucme.http import ConnectError, Response

from .pki import Pki, pem

BASE = "https://ca.test"
DIRECTORY = f"{BASE}/dir"
NS = "urn:ietf:params:acme:error:"
PROBLEM = "application/problem+json"
PEM_CHAIN = "application/pem-certificate-chain"


# --- independent encodings (RFC 7515 §2, RFC 7638, RFC 8555 §8.1, RFC 9773 §4.1) ------------

def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64(text: str) -> bytes:
    if not isinstance(text, str) or "=" in text:
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_CURVES: dict[str, tuple[ec.EllipticCurve, int, str, hashes.HashAlgorithm]] = {
    "P-256": (ec.SECP256R1(), 32, "ES256", hashes.SHA256()),
    "P-384": (ec.SECP384R1(), 48, "ES384", hashes.SHA384()),
}


def key_from_jwk(jwk: Any) -> Any:
    if not isinstance(jwk, dict):
        raise ValueError("jwk is not an object")
    if jwk.get("kty") == "EC" and jwk.get("crv") in _CURVES:
        curve = _CURVES[jwk["crv"]][0]
        x, y = (int.from_bytes(unb64(jwk[c]), "big") for c in ("x", "y"))
        return ec.EllipticCurvePublicNumbers(x, y, curve).public_key()
    if jwk.get("kty") == "RSA":
        n, e = (int.from_bytes(unb64(jwk[c]), "big") for c in ("n", "e"))
        return rsa.RSAPublicNumbers(e, n).public_key()
    raise ValueError("unsupported jwk")


def canonical_jwk(key: Any) -> dict[str, str]:
    """The RFC 7638 required members, from the key's numbers (not from what the client sent)."""
    if isinstance(key, ec.EllipticCurvePublicKey):
        crv = {"secp256r1": "P-256", "secp384r1": "P-384"}[key.curve.name]
        size = _CURVES[crv][1]
        nums = key.public_numbers()
        return {"crv": crv, "kty": "EC", "x": b64(nums.x.to_bytes(size, "big")),
                "y": b64(nums.y.to_bytes(size, "big"))}
    nums = key.public_numbers()
    return {"e": b64(nums.e.to_bytes((nums.e.bit_length() + 7) // 8, "big")), "kty": "RSA",
            "n": b64(nums.n.to_bytes((nums.n.bit_length() + 7) // 8, "big"))}


def thumbprint(key: Any) -> str:
    text = json.dumps(canonical_jwk(key), sort_keys=True, separators=(",", ":"))
    return b64(hashlib.sha256(text.encode()).digest())


def expected_answer(ch_type: str, token: str, key: Any) -> str:
    """What the answerer must publish: the key authorization (http-01), or its SHA-256
    digest (dns-01 TXT, RFC 8555 §8.4; tls-alpn-01 acmeIdentifier, RFC 8737 §3)."""
    ka = f"{token}.{thumbprint(key)}"
    if ch_type in ("dns-01", "tls-alpn-01"):
        return b64(hashlib.sha256(ka.encode()).digest())
    return ka


def ari_id(cert: x509.Certificate) -> str:
    """RFC 9773 §4.1: b64url(AKI keyIdentifier) "." b64url(DER serial content octets)."""
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    n = cert.serial_number
    return f"{b64(aki.key_identifier or b'')}.{b64(n.to_bytes(n.bit_length() // 8 + 1, 'big'))}"


def verify_signature(alg: Any, key: Any, data: bytes, sig: bytes) -> bool:
    try:
        if alg == "RS256" and isinstance(key, rsa.RSAPublicKey):
            key.verify(sig, data, padding.PKCS1v15(), hashes.SHA256())
            return True
        if isinstance(key, ec.EllipticCurvePublicKey):
            crv = {"secp256r1": "P-256", "secp384r1": "P-384"}.get(key.curve.name, "")
            _, size, want_alg, digest = _CURVES[crv]
            if alg != want_alg or len(sig) != 2 * size:
                return False
            r, s = int.from_bytes(sig[:size], "big"), int.from_bytes(sig[size:], "big")
            key.verify(encode_dss_signature(r, s), data, ec.ECDSA(digest))
            return True
    except (InvalidSignature, KeyError, ValueError):
        return False
    return False


# --- scripted answers ------------------------------------------------------------------------

@dataclass(frozen=True)
class Answer:
    """An injected answer.  `status` 0 keeps the real answer and changes it after (`after`)."""

    status: int = 0
    problem: str | None = None  # ACME error code, e.g. "badNonce"
    detail: str = ""
    retry_after: str | None = None
    body: bytes | None = None
    content_type: str | None = None
    after: str | None = None  # "garble": cut the real JSON in half; "retype": other Content-Type
    link_down: bool = False  # the request never reaches the CA
    lost: bool = False  # the CA handles the request; its answer never reaches the client
    headers: tuple[tuple[str, str], ...] = ()


def bad_nonce() -> Answer:
    return Answer(400, "badNonce", "JWS has an invalid anti-replay nonce")


def rate_limited(retry_after: str | None = None, status: int = 429) -> Answer:
    return Answer(status, "rateLimited", "too many requests", retry_after)


def unavailable(retry_after: str | None = None) -> Answer:
    """A 503 from a load balancer: HTML, no problem document."""
    return Answer(503, None, "", retry_after, b"<html><body>503 Service Unavailable</body></html>",
                  "text/html")


def problem(status: int, code: str, detail: str = "") -> Answer:
    return Answer(status, code, detail)


def malformed_json() -> Answer:
    return Answer(after="garble")


def wrong_type(content_type: str) -> Answer:
    return Answer(after="retype", content_type=content_type)


def link_down() -> Answer:
    return Answer(link_down=True)


def answer_lost() -> Answer:
    return Answer(lost=True)


# --- the model ---------------------------------------------------------------------------------

@dataclass
class Seen:
    """One request as the CA saw it (after JWS decoding)."""

    method: str
    url: str
    endpoint: str
    payload: Any = None  # decoded JSON object; "" for POST-as-GET; None for GET/HEAD
    protected: dict[str, Any] | None = None
    accept: str | None = None
    status: int = 0
    nonce_given: str | None = None  # the Replay-Nonce of the answer

    def __str__(self) -> str:
        return f"{self.method} {self.endpoint} {self.status}"


@dataclass
class Account:
    url: str
    key: Any
    contact: list[str]
    status: str = "valid"


@dataclass
class Challenge:
    id: int
    url: str
    type: str
    token: str
    authz: "Authz"
    status: str = "pending"
    reads_left: int = 0
    error: dict[str, Any] | None = None

    def json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "url": self.url, "status": self.status,
                               "token": self.token}
        if self.error:
            out["error"] = self.error
        return out


@dataclass
class Authz:
    id: int
    url: str
    ident: dict[str, str]
    account: Account
    status: str = "pending"
    challenges: list[Challenge] = field(default_factory=list)

    def json(self) -> dict[str, Any]:
        return {"identifier": self.ident, "status": self.status, "expires": "2099-01-01T00:00:00Z",
                "challenges": [c.json() for c in self.challenges]}


@dataclass
class Issued:
    id: int
    url: str
    leaf: x509.Certificate
    chains: list[bytes]  # [default, alternate 1, ...]
    account: Account | None
    ari_id: str
    replaced_by: "Order | None" = None
    revoked: int | None = None


@dataclass
class Order:
    id: int
    url: str
    account: Account
    identifiers: list[dict[str, str]]
    authzs: list[Authz]
    replaces: Issued | None = None
    profile: str | None = None
    pending_left: int = 0
    processing_left: int = 0
    finalized: bool = False
    cert: Issued | None = None
    error: dict[str, Any] | None = None
    csr: x509.CertificateSigningRequest | None = None

    stays_pending: bool = False  # a CA that leaves the order pending when an authorization fails

    def status(self) -> str:
        if self.error or (not self.stays_pending
                          and any(a.status != "valid" and a.status != "pending" for a in self.authzs)):
            return "invalid"
        if any(a.status != "valid" for a in self.authzs):
            return "pending"
        if any(a.status == "pending" for a in self.authzs):
            return "pending"
        if self.cert:
            return "valid"
        if self.finalized:
            return "processing"
        return "pending" if self.pending_left > 0 else "ready"


class _Refusal(Exception):
    """A problem answer; `violation` when a correct client could not have caused it."""

    def __init__(self, status: int, code: str, detail: str, violation: bool = False) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.violation = status, code, detail, violation


class FakeCA:
    """The in-memory ACME server and the link to it (implements wucme.http.Transport)."""

    def __init__(self, pki: Pki) -> None:
        self.pki = pki
        self.seen: list[Seen] = []
        self.violations: list[str] = []
        # directory and accounts
        self.terms: str | None = f"{BASE}/terms-v1"
        self.eab_keys: dict[str, tuple[bytes, int]] = {}  # keyid -> (MAC key, bits)
        self.profiles: dict[str, str] | None = None
        self.ari = True
        self.without: set[str] = set()  # directory members to leave out
        self.directory_extra: dict[str, Any] = {}  # directory members to add or replace
        # orders, challenges, certificates
        self.challenge_types = ["http-01", "dns-01", "tls-alpn-01"]
        self.make_token = lambda ident, ch_type: b64(hashlib.sha256(
            f"{ident}/{ch_type}/{self._next}".encode()).digest()[:24])
        self.preauthorized: set[str] = set()
        self.validation_polls = 0  # reads a started challenge stays processing
        self.order_pending_polls = 0  # order reads that still say pending once all authzs are valid
        self.order_processing_polls = 0  # order reads that say processing after finalize
        self.poll_retry_after: str | None = None  # Retry-After on pending/processing answers
        self.fail_challenge: dict[str, dict[str, Any]] = {}  # ident -> problem the validation finds
        self.order_stays_pending = False  # orders stay pending when an authorization fails
        self.validate_on_start = False  # the start POST answers with the validation's outcome
        self.issue_error: dict[str, Any] | None = None  # finalize fails with this order error
        self.alternates = 0
        self.links_on_one_line = False
        self.misissue: str | None = None  # "other-key", "drop-name", "key-block", "garbage"
        self.ari_windows: dict[str, tuple[str, str]] = {}  # ari id -> (start, end)
        self.ari_explanation: str | None = None
        self.nonce_on_posts = True  # False: only newNonce hands out nonces
        # state
        self.published: dict[tuple[str, str, str], str] = {}  # what the answerer serves
        self.accounts: dict[str, Account] = {}
        self.orders: dict[int, Order] = {}
        self.authzs: dict[int, Authz] = {}
        self.challenges: dict[int, Challenge] = {}
        self.certs: dict[int, Issued] = {}
        self._nonces: set[str] = set()
        self._used: dict[str, bytes] = {}  # spent nonce -> the body that spent it
        self._faults: dict[str, deque[Answer]] = {}
        self._next = 0
        self._lock = threading.RLock()
        self.closed = 0

    # --- scripting -------------------------------------------------------------------------

    def inject(self, endpoint: str, *answers: Answer) -> None:
        """Answer the next requests to `endpoint` ("newOrder", "order", "directory", ...)
        with `answers`, one each, in order; the CA itself handles the rest."""
        with self._lock:
            self._faults.setdefault(endpoint, deque()).extend(answers)

    def publish(self, ch_type: str, ident: str, token: str, answer: str) -> None:
        with self._lock:
            self.published[(ch_type, ident, token)] = answer

    def withdraw(self, ch_type: str, ident: str, token: str) -> None:
        with self._lock:
            self.published.pop((ch_type, ident, token), None)

    def requests(self, endpoint: str | None = None, method: str | None = None) -> list[Seen]:
        return [s for s in self.seen if (endpoint is None or s.endpoint == endpoint)
                and (method is None or s.method == method)]

    def trail(self) -> list[str]:
        """"METHOD endpoint status" for every request, newNonce left out."""
        return [str(s) for s in self.seen if s.endpoint != "newNonce"]

    def issue_direct(self, public_key: Any, names: list[str], account: Account | None = None,
                     serial: int | None = None, days: float = 90) -> Issued:
        """A certificate this CA issued earlier (for ARI, revocation and `replaces`)."""
        with self._lock:
            leaf = self.pki.issue(public_key, names, serial, days)
            return self._record_cert(leaf, account)

    # --- the Transport interface -----------------------------------------------------------

    def request(self, method: str, url: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> Response:
        with self._lock:
            hdrs = {k.lower(): v for k, v in (headers or {}).items()}
            endpoint, ident = self._route(url)
            seen = Seen(method, url, endpoint, accept=hdrs.get("accept"))
            self.seen.append(seen)
            resp = self._answer(seen, ident, body, hdrs)
            resp.url = url
            seen.status = resp.status
            seen.nonce_given = resp.header("Replay-Nonce")
            return resp

    def close(self) -> None:
        self.closed += 1

    # --- plumbing ----------------------------------------------------------------------------

    def _id(self) -> int:
        self._next += 1
        return self._next

    def _route(self, url: str) -> tuple[str, str]:
        parts = urlsplit(url)
        if f"{parts.scheme}://{parts.netloc}" != BASE:
            return "elsewhere", ""
        segs = parts.path.strip("/").split("/")
        fixed = {"dir": "directory", "new-nonce": "newNonce", "new-acct": "newAccount",
                 "new-order": "newOrder", "revoke-cert": "revokeCert", "key-change": "keyChange"}
        if len(segs) == 1 and segs[0] in fixed:
            return fixed[segs[0]], ""
        named = {"acct": "account", "order": "order", "authz": "authz", "chall": "challenge",
                 "finalize": "finalize", "cert": "cert", "renewal-info": "renewalInfo"}
        if len(segs) >= 2 and segs[0] in named:
            return named[segs[0]], "/".join(segs[1:])
        return "unknown", ""

    def _nonce(self) -> str:
        n = b64(hashlib.sha256(f"nonce {self._id()}".encode()).digest()[:16])
        self._nonces.add(n)
        return n

    def _respond(self, status: int, obj: Any = None, ctype: str = "application/json",
                 headers: list[tuple[str, str]] | None = None, raw: bytes | None = None,
                 nonce: bool = True) -> Response:
        hdrs = list(headers or [])
        if nonce:
            hdrs.append(("Replay-Nonce", self._nonce()))
        body = raw if raw is not None else (b"" if obj is None else json.dumps(obj).encode())
        if body or raw is not None:
            hdrs.append(("Content-Type", ctype))
        hdrs.append(("Link", f'<{DIRECTORY}>;rel="index"'))
        return Response(status, hdrs, body)

    def _problem(self, status: int, code: str, detail: str, nonce: bool = True,
                 headers: list[tuple[str, str]] | None = None) -> Response:
        return self._respond(status, {"type": NS + code, "detail": detail, "status": status},
                             PROBLEM, headers, nonce=nonce)

    def _injected(self, endpoint: str) -> Answer | None:
        q = self._faults.get(endpoint)
        return q.popleft() if q else None

    def _scripted(self, a: Answer, nonce: bool) -> Response:
        headers = [("Retry-After", a.retry_after)] if a.retry_after is not None else []
        headers.extend(a.headers)
        if a.problem:
            resp = self._problem(a.status, a.problem, a.detail, nonce, headers)
            return self._after(Answer(after="retype", content_type=a.content_type), resp) \
                if a.content_type else resp
        return self._respond(a.status, None, a.content_type or "text/plain", headers,
                             raw=a.body or b"", nonce=nonce)

    @staticmethod
    def _after(a: Answer, resp: Response) -> Response:
        if a.after == "garble":
            resp.body = resp.body[: len(resp.body) // 2] or b"{"
        elif a.after == "retype":
            resp.headers = [(k, v) for k, v in resp.headers if k.lower() != "content-type"]
            resp.headers.append(("Content-Type", a.content_type or "text/plain"))
        return resp

    def _answer(self, seen: Seen, ident: str, body: bytes | None, hdrs: dict[str, str]) -> Response:
        fault = self._faults.get(seen.endpoint)
        if fault and fault[0].link_down:
            fault.popleft()
            raise ConnectError("link down (scripted)")
        if seen.method in ("GET", "HEAD"):
            return self._get(seen, ident)
        if seen.method != "POST":
            return self._violation(405, "malformed", f"{seen.method} not allowed", nonce=False)
        try:
            if hdrs.get("content-type") != "application/jose+json":
                raise _Refusal(415, "malformed", "POST must be application/jose+json", True)
            protected, payload, account, key = self._verify_jws(seen, body or b"")
            seen.protected, seen.payload = protected, payload
            injected = self._injected(seen.endpoint)
            if injected and injected.status:
                return self._scripted(injected, nonce=True)
            resp = self._post(seen, ident, payload, account, key)
            if not self.nonce_on_posts:
                resp.headers = [(k, v) for k, v in resp.headers if k != "Replay-Nonce"]
            if injected and injected.lost:
                seen.status = resp.status
                raise ConnectError("answer lost (scripted)")
            return self._after(injected, resp) if injected else resp
        except _Refusal as r:
            if r.violation:
                self.violations.append(f"{seen.method} {seen.url}: {r.code}: {r.detail}")
            return self._problem(r.status, r.code, r.detail)

    def _violation(self, status: int, code: str, detail: str, nonce: bool = True) -> Response:
        self.violations.append(detail)
        return self._problem(status, code, detail, nonce)

    # --- JWS (RFC 8555 §6.2-6.5) ------------------------------------------------------------

    def _verify_jws(self, seen: Seen, body: bytes) -> tuple[dict[str, Any], Any, Account | None, Any]:
        def bad(detail: str, code: str = "malformed", status: int = 400) -> _Refusal:
            return _Refusal(status, code, detail, True)

        try:
            jws = json.loads(body)
            assert isinstance(jws, dict) and set(jws) == {"protected", "payload", "signature"}
            protected = json.loads(unb64(jws["protected"]))
            assert isinstance(protected, dict)
            raw_payload = unb64(jws["payload"])
            sig = unb64(jws["signature"])
        except (ValueError, AssertionError, TypeError):
            raise bad("not a flattened JWS") from None
        seen.protected = protected
        nonce = protected.get("nonce")
        if nonce not in self._nonces:
            if isinstance(nonce, str) and self._used.get(nonce) == body:
                # a retransmission (its answer was lost): refused, but no client error
                raise _Refusal(400, "badNonce", f"nonce {nonce!r} is used up")
            raise bad(f"nonce {nonce!r} was never issued or is used up", "badNonce")
        self._nonces.discard(nonce)
        self._used[nonce] = body
        if protected.get("url") != seen.url:
            raise bad(f"JWS url {protected.get('url')!r} is not the request URL", "unauthorized", 401)
        if ("jwk" in protected) == ("kid" in protected):
            raise bad("exactly one of jwk and kid is required")
        account: Account | None = None
        if "kid" in protected:
            if seen.endpoint == "newAccount":
                raise bad("newAccount must be signed with jwk")
            account = self.accounts.get(protected["kid"])
            if account is None:
                raise bad(f"kid {protected['kid']!r} names no account", "accountDoesNotExist")
            key = account.key
        else:
            if seen.endpoint not in ("newAccount", "revokeCert"):
                raise bad(f"{seen.endpoint} must be signed with kid")
            try:
                key = key_from_jwk(protected["jwk"])
            except (ValueError, KeyError, TypeError):
                raise bad("unusable jwk") from None
        signed = f"{jws['protected']}.{jws['payload']}".encode()
        if not verify_signature(protected.get("alg"), key, signed, sig):
            raise bad(f"signature does not verify ({protected.get('alg')})")
        if account is not None and account.status != "valid":
            raise _Refusal(401, "unauthorized", f"account {account.url} is {account.status}")
        if raw_payload == b"":
            return protected, "", account, key
        try:
            payload = json.loads(raw_payload)
        except ValueError:
            raise bad("payload is not JSON") from None
        if not isinstance(payload, dict):
            raise bad("payload is not a JSON object")
        return protected, payload, account, key

    # --- GET resources -----------------------------------------------------------------------

    def _directory(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "newNonce": f"{BASE}/new-nonce", "newAccount": f"{BASE}/new-acct",
            "newOrder": f"{BASE}/new-order", "revokeCert": f"{BASE}/revoke-cert",
            "keyChange": f"{BASE}/key-change",
        }
        if self.ari:
            d["renewalInfo"] = f"{BASE}/renewal-info"
        meta: dict[str, Any] = {}
        if self.terms:
            meta["termsOfService"] = self.terms
        if self.eab_keys:
            meta["externalAccountRequired"] = True
        if self.profiles is not None:
            meta["profiles"] = self.profiles
        if meta:
            d["meta"] = meta
        d.update(self.directory_extra)
        return {k: v for k, v in d.items() if k not in self.without}

    def _get(self, seen: Seen, ident: str) -> Response:
        injected = self._injected(seen.endpoint)
        if injected and injected.status:
            return self._scripted(injected, nonce=False)
        if seen.endpoint == "directory" and seen.method == "GET":
            resp = self._respond(200, self._directory(), nonce=False)
        elif seen.endpoint == "newNonce":
            resp = self._respond(200 if seen.method == "HEAD" else 204,
                                 headers=[("Cache-Control", "no-store")])
        elif seen.endpoint == "renewalInfo" and seen.method == "GET":
            resp = self._renewal_info(ident)
        else:
            return self._violation(405, "malformed", f"{seen.method} {seen.url} is not allowed",
                                   nonce=False)
        return self._after(injected, resp) if injected else resp

    def _renewal_info(self, ident: str) -> Response:
        """RFC 9773 §4.2: the suggested window of a certificate this CA issued."""
        cert = next((c for c in self.certs.values() if c.ari_id == ident), None)
        if cert is None:
            return self._problem(404, "malformed", f"no certificate {ident}", nonce=False)
        start, end = self.ari_windows.get(ident) or (
            (cert.leaf.not_valid_after_utc.replace(microsecond=0) - dt.timedelta(days=30)).isoformat(),
            (cert.leaf.not_valid_after_utc.replace(microsecond=0) - dt.timedelta(days=28)).isoformat())
        body: dict[str, Any] = {"suggestedWindow": {"start": start, "end": end}}
        if self.ari_explanation:
            body["explanationURL"] = self.ari_explanation
        return self._respond(200, body, headers=[("Retry-After", "21600")], nonce=False)

    # --- POST resources ----------------------------------------------------------------------

    def _post(self, seen: Seen, ident: str, payload: Any, account: Account | None, key: Any) -> Response:
        ep = seen.endpoint
        if ep == "newAccount":
            return self._new_account(seen, payload, key)
        assert account is not None or ep == "revokeCert"
        if ep == "revokeCert":
            return self._revoke(payload, account, key)
        assert account is not None
        if ep == "account":
            return self._account(seen, payload, account)
        if ep == "keyChange":
            return self._key_change(seen, payload, account)
        if ep == "newOrder":
            return self._new_order(payload, account)
        if ep in ("order", "authz", "challenge", "finalize", "cert"):
            return self._resource(seen, ep, ident, payload, account)
        raise _Refusal(404, "malformed", f"no resource at {seen.url}", True)

    @staticmethod
    def _acct_json(acct: Account) -> dict[str, Any]:
        return {"status": acct.status, "contact": acct.contact, "orders": f"{acct.url}/orders",
                "key": canonical_jwk(acct.key)}

    def _new_account(self, seen: Seen, payload: Any, key: Any) -> Response:
        if payload == "":
            raise _Refusal(400, "malformed", "newAccount needs a payload", True)
        existing = next((a for a in self.accounts.values() if thumbprint(a.key) == thumbprint(key)), None)
        if payload.get("onlyReturnExisting") is True:
            if existing is None:
                raise _Refusal(400, "accountDoesNotExist", "no account for this key")
            return self._respond(200, self._acct_json(existing), headers=[("Location", existing.url)])
        if existing is not None:
            return self._respond(200, self._acct_json(existing), headers=[("Location", existing.url)])
        if self.terms and payload.get("termsOfServiceAgreed") is not True:
            raise _Refusal(403, "userActionRequired", "must agree to the terms of service")
        if self.eab_keys:
            self._check_eab(seen, payload.get("externalAccountBinding"), key)
        contact = payload.get("contact", [])
        if not isinstance(contact, list) or not all(
                isinstance(c, str) and c.startswith("mailto:") for c in contact):
            raise _Refusal(400, "invalidContact", f"bad contact {contact!r}", True)
        acct = Account(f"{BASE}/acct/{self._id()}", key, contact)
        self.accounts[acct.url] = acct
        return self._respond(201, self._acct_json(acct), headers=[("Location", acct.url)])

    def _check_eab(self, seen: Seen, eab: Any, key: Any) -> None:
        """RFC 8555 §7.3.4: an HMAC JWS over the account's jwk, for this URL, no nonce."""
        if eab is None:
            raise _Refusal(403, "externalAccountRequired", "external account binding required")
        try:
            prot = json.loads(unb64(eab["protected"]))
            inner_jwk = json.loads(unb64(eab["payload"]))
            mac = unb64(eab["signature"])
        except (ValueError, KeyError, TypeError):
            raise _Refusal(400, "malformed", "externalAccountBinding is not a JWS", True) from None
        if "nonce" in prot or prot.get("url") != seen.url:
            raise _Refusal(400, "malformed", "EAB JWS must name the URL and carry no nonce", True)
        if canonical_jwk(key_from_jwk(inner_jwk)) != canonical_jwk(key):
            raise _Refusal(400, "malformed", "EAB payload is not the account key", True)
        known = self.eab_keys.get(prot.get("kid"))
        if known is None:
            raise _Refusal(400, "unauthorized", f"unknown EAB key id {prot.get('kid')!r}")
        mac_key, bits = known
        if prot.get("alg") != f"HS{bits}":
            raise _Refusal(400, "badSignatureAlgorithm", f"EAB must be HS{bits}")
        digest = {256: hashlib.sha256, 384: hashlib.sha384, 512: hashlib.sha512}[bits]
        want = hmac.new(mac_key, f"{eab['protected']}.{eab['payload']}".encode(), digest).digest()
        if not hmac.compare_digest(want, mac):
            raise _Refusal(400, "unauthorized", "EAB MAC does not verify")

    def _account(self, seen: Seen, payload: Any, account: Account) -> Response:
        if seen.url != account.url:
            raise _Refusal(403, "unauthorized", "kid is not this account", True)
        if isinstance(payload, dict):
            if payload.get("status") == "deactivated":
                account.status = "deactivated"
            if "contact" in payload:
                account.contact = list(payload["contact"])
        return self._respond(200, self._acct_json(account))

    def _key_change(self, seen: Seen, payload: Any, account: Account) -> Response:
        """RFC 8555 §7.3.5: the inner JWS, signed by the new key, names the account and old key."""
        try:
            inner = payload
            prot = json.loads(unb64(inner["protected"]))
            body = json.loads(unb64(inner["payload"]))
            new_key = key_from_jwk(prot["jwk"])
            sig = unb64(inner["signature"])
        except (ValueError, KeyError, TypeError, AttributeError):
            raise _Refusal(400, "malformed", "keyChange payload is not a JWS", True) from None
        if "nonce" in prot or "kid" in prot or prot.get("url") != seen.url:
            raise _Refusal(400, "malformed", "inner JWS: jwk, the keyChange url, no nonce", True)
        if not verify_signature(prot.get("alg"), new_key,
                                f"{inner['protected']}.{inner['payload']}".encode(), sig):
            raise _Refusal(400, "malformed", "inner JWS signature does not verify", True)
        if body.get("account") != account.url:
            raise _Refusal(400, "malformed", "inner payload names another account", True)
        if canonical_jwk(key_from_jwk(body.get("oldKey"))) != canonical_jwk(account.key):
            raise _Refusal(400, "malformed", "oldKey is not the account key", True)
        if any(thumbprint(a.key) == thumbprint(new_key) for a in self.accounts.values()):
            raise _Refusal(409, "conflict", "new key already in use")
        account.key = new_key
        return self._respond(200, self._acct_json(account))

    def _new_order(self, payload: Any, account: Account) -> Response:
        idents = payload.get("identifiers") if isinstance(payload, dict) else None
        if not isinstance(idents, list) or not idents or not all(
                isinstance(i, dict) and i.get("type") in ("dns", "ip") and isinstance(i.get("value"), str)
                for i in idents):
            raise _Refusal(400, "malformed", f"bad identifiers {idents!r}", True)
        profile = payload.get("profile")
        if profile is not None and profile not in (self.profiles or {}):
            raise _Refusal(400, "invalidProfile", f"no profile {profile!r}")
        replaces: Issued | None = None
        if "replaces" in payload:
            replaces = next((c for c in self.certs.values() if c.ari_id == payload["replaces"]), None)
            if replaces is None:
                raise _Refusal(400, "malformed", f"replaces names no certificate: {payload['replaces']}")
            if replaces.account is not account:
                raise _Refusal(403, "unauthorized", "replaces names another account's certificate")
            if replaces.replaced_by is not None:
                raise _Refusal(409, "alreadyReplaced", "certificate already replaced")
        authzs = [self._new_authz(i, account) for i in idents]
        oid = self._id()
        order = Order(oid, f"{BASE}/order/{oid}", account, idents, authzs, replaces, profile,
                      pending_left=self.order_pending_polls, stays_pending=self.order_stays_pending)
        self.orders[oid] = order
        return self._respond(201, self._order_json(order), headers=[("Location", order.url)])

    def _new_authz(self, ident: dict[str, str], account: Account) -> Authz:
        aid = self._id()
        authz = Authz(aid, f"{BASE}/authz/{aid}", dict(ident), account)
        self.authzs[aid] = authz
        if ident["value"] in self.preauthorized:
            authz.status = "valid"
        types = [t for t in self.challenge_types if not (ident["type"] == "ip" and t == "dns-01")]
        for t in types:
            cid = self._id()
            ch = Challenge(cid, f"{BASE}/chall/{cid}", t, self.make_token(ident["value"], t), authz)
            if authz.status == "valid":
                ch.status = "valid" if t == types[0] else "pending"
            authz.challenges.append(ch)
            self.challenges[cid] = ch
        return authz

    def _order_json(self, o: Order) -> dict[str, Any]:
        out: dict[str, Any] = {"status": o.status(), "expires": "2099-01-01T00:00:00Z",
                               "identifiers": o.identifiers,
                               "authorizations": [a.url for a in o.authzs],
                               "finalize": f"{BASE}/finalize/{o.id}"}
        if o.cert:
            out["certificate"] = o.cert.url
        if o.error:
            out["error"] = o.error
        if o.replaces:
            out["replaces"] = o.replaces.ari_id
        if o.profile:
            out["profile"] = o.profile
        return out

    def _polled(self, status: str, obj: dict[str, Any]) -> Response:
        headers = []
        if status in ("pending", "processing") and self.poll_retry_after is not None:
            headers.append(("Retry-After", self.poll_retry_after))
        return self._respond(200, obj, headers=headers)

    def _tick(self, ch: Challenge) -> None:
        if ch.status != "processing":
            return
        if ch.reads_left > 0:
            ch.reads_left -= 1
            return
        value = ch.authz.ident["value"]
        want = expected_answer(ch.type, ch.token, ch.authz.account.key)
        got = self.published.get((ch.type, value, ch.token))
        if value in self.fail_challenge:
            ch.error = self.fail_challenge[value]
        elif got is None:
            ch.error = {"type": NS + "connection", "detail": f"nothing answers {ch.type} for {value}"}
        elif got != want:
            ch.error = {"type": NS + "unauthorized",
                        "detail": f"key authorization {got!r} does not match {want!r}"}
        ch.status = "invalid" if ch.error else "valid"
        ch.authz.status = ch.status

    def _resource(self, seen: Seen, ep: str, ident: str, payload: Any, account: Account) -> Response:
        table: dict[str, dict[int, Any]] = {"order": self.orders, "finalize": self.orders,
                                            "authz": self.authzs, "challenge": self.challenges,
                                            "cert": self.certs}
        key, _, alt = ident.partition("/")
        obj = table[ep].get(int(key)) if key.isdigit() else None
        if obj is None:
            raise _Refusal(404, "malformed", f"no {ep} at {seen.url}", True)
        owner = obj.authz.account if ep == "challenge" else obj.account
        if owner is not account:
            raise _Refusal(403, "unauthorized", f"{ep} belongs to another account", True)
        if ep == "challenge":
            return self._challenge(obj, payload)
        if ep == "finalize":
            return self._finalize(obj, payload)
        if payload != "":
            raise _Refusal(400, "malformed", f"{ep} read needs a POST-as-GET (empty payload)", True)
        if ep == "authz":
            for ch in obj.challenges:
                self._tick(ch)
            return self._polled(obj.status, obj.json())
        if ep == "order":
            return self._read_order(obj)
        return self._download(seen, obj, alt)

    def _challenge(self, ch: Challenge, payload: Any) -> Response:
        if payload == "":
            self._tick(ch)
        elif payload == {}:
            if ch.authz.status != "pending":
                raise _Refusal(400, "malformed", f"authorization is {ch.authz.status}", True)
            if ch.status == "pending":
                ch.status, ch.reads_left = "processing", self.validation_polls
                if self.validate_on_start:
                    ch.reads_left = 0
                    self._tick(ch)
        else:
            raise _Refusal(400, "malformed", f"challenge payload must be {{}}, not {payload!r}", True)
        headers = [("Link", f'<{ch.authz.url}>;rel="up"')]
        resp = self._polled(ch.status, ch.json())
        resp.headers.extend(headers)
        return resp

    def _read_order(self, o: Order) -> Response:
        for a in o.authzs:
            for ch in a.challenges:
                self._tick(ch)
        if o.finalized and not o.cert and not o.error:
            if o.processing_left > 0:
                o.processing_left -= 1
            else:
                self._issue(o)
        status = o.status()
        resp = self._polled(status, self._order_json(o))
        if status == "pending" and all(a.status == "valid" for a in o.authzs):
            o.pending_left -= 1
        return resp

    def _finalize(self, o: Order, payload: Any) -> Response:
        if o.status() != "ready":
            raise _Refusal(403, "orderNotReady", f"order is {o.status()}", True)
        try:
            csr = x509.load_der_x509_csr(unb64(payload["csr"]))
            valid = csr.is_signature_valid
            san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except (ValueError, KeyError, TypeError, x509.ExtensionNotFound):
            raise _Refusal(400, "badCSR", "CSR does not parse", True) from None
        names = {str(n) for n in san.get_values_for_type(x509.DNSName)}
        names |= {str(n) for n in san.get_values_for_type(x509.IPAddress)}
        if not valid or names != {i["value"] for i in o.identifiers}:
            raise _Refusal(400, "badCSR", f"CSR names {sorted(names)} are not the order's", True)
        o.finalized = True
        o.csr = csr
        o.processing_left = self.order_processing_polls
        if o.processing_left == 0:
            self._issue(o)
        return self._polled(o.status(), self._order_json(o))

    def _issue(self, o: Order) -> None:
        if self.issue_error:
            o.error = self.issue_error
            return
        assert o.csr is not None
        csr = o.csr
        names = [i["value"] for i in o.identifiers]
        key = csr.public_key()
        if self.misissue == "other-key":
            key = ec.generate_private_key(ec.SECP256R1()).public_key()
        if self.misissue == "drop-name":
            names = names[:-1]
        leaf = self.pki.issue(key, names)
        o.cert = self._record_cert(leaf, o.account)
        if o.replaces:
            o.replaces.replaced_by = o

    def _record_cert(self, leaf: x509.Certificate, account: Account | None) -> Issued:
        chains = [self.pki.chain(leaf, i) for i in range(self.alternates + 1)]
        if self.misissue == "key-block":
            key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption())
            chains = [c + key for c in chains]
        if self.misissue == "garbage":
            chains = [b"this is not a certificate\n" for _ in chains]
        cid = self._id()
        issued = Issued(cid, f"{BASE}/cert/{cid}", leaf, chains, account, ari_id(leaf))
        self.certs[cid] = issued
        return issued

    def _download(self, seen: Seen, cert: Issued, alt: str) -> Response:
        index = int(alt) if alt.isdigit() else 0
        if index >= len(cert.chains):
            raise _Refusal(404, "malformed", f"no alternate chain {alt}", True)
        links = [f'<{cert.url}/{i}>;rel="alternate"' for i in range(1, len(cert.chains)) if i != index]
        if index:
            links.append(f'<{cert.url}>;rel="alternate"')
        if self.links_on_one_line and links:
            links = [", ".join(links)]
        return self._respond(200, ctype=PEM_CHAIN, raw=cert.chains[index],
                             headers=[("Link", v) for v in links])

    def _revoke(self, payload: Any, account: Account | None, key: Any) -> Response:
        """RFC 8555 §7.6: by the account that holds the certificate, or by its own key."""
        try:
            der = unb64(payload["certificate"])
            cert = x509.load_der_x509_certificate(der)
        except (ValueError, KeyError, TypeError):
            raise _Refusal(400, "malformed", "certificate does not parse", True) from None
        reason = payload.get("reason", 0)
        if not isinstance(reason, int) or reason not in (0, 1, 2, 3, 4, 5, 6, 8, 9, 10):
            raise _Refusal(400, "badRevocationReason", f"reason {reason!r}")
        issued = next((c for c in self.certs.values() if c.leaf == cert), None)
        if issued is None:
            raise _Refusal(404, "malformed", "certificate not issued here")
        if account is not None:
            if issued.account is not account:
                raise _Refusal(403, "unauthorized", "certificate belongs to another account")
        elif canonical_jwk(key) != canonical_jwk(cert.public_key()):
            raise _Refusal(403, "unauthorized", "jwk is not the certificate's key")
        if issued.revoked is not None:
            raise _Refusal(400, "alreadyRevoked", "certificate already revoked")
        issued.revoked = reason
        return self._respond(200)


__all__ = ["FakeCA", "Seen", "Answer", "BASE", "DIRECTORY", "bad_nonce", "rate_limited",
           "unavailable", "problem", "malformed_json", "wrong_type", "link_down", "answer_lost", "pem",
           "expected_answer", "ari_id", "thumbprint"]
