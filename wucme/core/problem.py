"""Problem documents (RFC 8555 §6.7, RFC 7807) as exceptions.

Every non-success answer from the CA that carries `application/problem+json`
becomes an AcmeProblem, or the subclass registered for its type, so callers
catch `BadNonce` or `RateLimited` instead of comparing strings.
"""
from __future__ import annotations

import json
from typing import Any, ClassVar

from wucme.errors import WucmeError

ACME_ERROR_NS = "urn:ietf:params:acme:error:"
#: ACME v1 namespace, still seen in old problem documents (the seed's examples).
ACME_V1_NS = "urn:acme:error:"
#: How much of a CA's `detail` is kept: a hostile CA must not flood logs and mail.
MAX_DETAIL = 2000


class AcmeProblem(WucmeError):
    """A problem document from the CA; `code` is the type without its URN prefix."""

    ident = "CAERROR"
    registry: ClassVar[dict[str, type["AcmeProblem"]]] = {}
    code_name: ClassVar[str] = ""

    def __init__(
        self,
        status: int,
        type: str = "",
        detail: str = "",
        identifier: dict[str, Any] | None = None,
        subproblems: list["AcmeProblem"] | None = None,
        retry_after: float | None = None,
        raw: dict[str, Any] | None = None,
    ):
        self.status = status
        self.type = type
        self.detail = _clean(detail)
        self.identifier = identifier
        self.subproblems = subproblems or []
        self.retry_after = retry_after
        self.raw = raw or {}
        super().__init__(self._text())

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if cls.code_name:
            AcmeProblem.registry[cls.code_name] = cls

    @property
    def code(self) -> str:
        return problem_code(self.type)

    def _text(self) -> str:
        t = f"{self.type or 'about:blank'} (HTTP {self.status})"
        if self.detail:
            t += f": {self.detail}"
        for sub in self.subproblems:
            who = (sub.identifier or {}).get("value", "?")
            t += f"\n  {who}: {sub.type}: {sub.detail}"
        return t

    @classmethod
    def from_json(
        cls, status: int, doc: Any, retry_after: float | None = None
    ) -> "AcmeProblem":
        """Build the registered subclass for a decoded problem document."""
        if not isinstance(doc, dict):
            return AcmeProblem(status, "", f"unparsable problem document: {str(doc)[:200]}")
        ptype = str(doc.get("type", ""))
        subs = [
            AcmeProblem.from_json(int(s.get("status", status) or status), s)
            for s in doc.get("subproblems") or []
            if isinstance(s, dict)
        ]
        ident = doc.get("identifier") if isinstance(doc.get("identifier"), dict) else None
        klass = AcmeProblem.registry.get(problem_code(ptype), AcmeProblem)
        return klass(status, ptype, str(doc.get("detail", "")), ident, subs, retry_after, doc)

    @classmethod
    def from_body(cls, status: int, body: bytes, retry_after: float | None = None) -> "AcmeProblem":
        try:
            doc = json.loads(body.decode("utf-8"))
        except (ValueError, RecursionError):  # bad UTF-8 or JSON, or an int of over 4300 digits
            return AcmeProblem(status, "", f"HTTP {status} with a body that is not JSON")
        return cls.from_json(status, doc, retry_after)


def problem_code(ptype: str) -> str:
    """`badNonce` for `urn:ietf:params:acme:error:badNonce` (and the ACME v1 namespace)."""
    for ns in (ACME_ERROR_NS, ACME_V1_NS):
        if ptype.startswith(ns):
            return ptype[len(ns):]
    return ptype


def _clean(text: str) -> str:
    """Control characters out, length bounded: details end up in syslog and mail."""
    text = "".join(c if c.isprintable() or c == " " else " " for c in text)
    return text if len(text) <= MAX_DETAIL else text[:MAX_DETAIL] + "...(truncated)"


class BadNonce(AcmeProblem):
    """RFC 8555 §6.5: retry with the nonce this response carries."""

    code_name = "badNonce"


class RateLimited(AcmeProblem):
    """RFC 8555 §6.6: wait Retry-After, then try again."""

    code_name = "rateLimited"


class AccountDoesNotExist(AcmeProblem):
    code_name = "accountDoesNotExist"


class Unauthorized(AcmeProblem):
    code_name = "unauthorized"


class Malformed(AcmeProblem):
    code_name = "malformed"


class ServerInternal(AcmeProblem):
    code_name = "serverInternal"


class AlreadyReplaced(AcmeProblem):
    """RFC 9773 §5: the certificate named in `replaces` was already replaced."""

    code_name = "alreadyReplaced"


class UserActionRequired(AcmeProblem):
    code_name = "userActionRequired"


class ExternalAccountRequired(AcmeProblem):
    code_name = "externalAccountRequired"


class OrderNotReady(AcmeProblem):
    code_name = "orderNotReady"


class BadCSR(AcmeProblem):
    code_name = "badCSR"


class RejectedIdentifier(AcmeProblem):
    code_name = "rejectedIdentifier"


class Conflict(AcmeProblem):
    """Pebble answers a re-revocation or a duplicate with 409."""

    code_name = "conflict"
