"""The `wucme alpn` authorization table and ualpn's control protocol, without any I/O.

Protocol (ualpn's, so uacme's ualpn.sh hook works unchanged): one ASCII line per command,
fields separated by spaces or tabs, one reply line per command:

    auth IDENT AUTH      AUTH = base64url (no padding) of SHA-256(keyAuthorization), 32 bytes
    unauth IDENT

Replies are ``OK`` or ``ERR <reason>`` with ualpn's reasons. An IP identifier is kept under its
reverse-DNS name, because that is the SNI a validation server sends (RFC 8738 §6).
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from OpenSSL import SSL

from wucme.challenge.names import is_ip, sni_key
from wucme.challenge.tlsalpn import ACME_TLS_1, make_validation_cert_from_digest
from wucme.core.b64 import b64url_decode, b64url_encode

__all__ = ["Auth", "AuthTable", "Log", "handle_command", "AUTH_LIFETIME", "MAX_LINE"]

#: ualpn forgets an authorization one hour after it was (re)inserted.
AUTH_LIFETIME = 3600.0
#: Longest command line, newline included (ualpn's 0x200 buffer).
MAX_LINE = 0x200

_IDENT = re.compile(r"[A-Za-z0-9._:-]{1,250}")
USAGE = "ERR usage: auth <ident> <auth> | unauth <ident>"


@dataclass
class Auth:
    """One pending validation: the identifier, ualpn's AUTH string and a ready TLS context."""

    ident: str
    key: str
    auth: str
    context: SSL.Context
    timestamp: float


def _acme_context(ident: str, digest: bytes) -> SSL.Context:
    """A server context presenting the validation certificate and selecting only acme-tls/1."""
    cert, key = make_validation_cert_from_digest(ident, digest)
    ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_2_VERSION)  # RFC 8737 §4
    ctx.use_certificate(cert)
    ctx.use_privatekey(key)
    ctx.set_options(SSL.OP_NO_TICKET)

    def select(conn: SSL.Connection, offered: list[bytes]) -> bytes:
        # An empty answer aborts the handshake: this context is only ever used for acme-tls/1.
        return ACME_TLS_1 if ACME_TLS_1 in offered else b""

    ctx.set_alpn_select_callback(select)
    return ctx


#: Looks an SNI up in the cluster's shared challenge store: (identifier, key authorization).
SharedLookup = Callable[[str], "tuple[str, str] | None"]


class AuthTable:
    """Authorizations in memory, keyed case-insensitively by SNI; at most *max_auths* of them.

    With *shared*, a name not held in memory is looked up in the cluster's shared challenge
    store (an order another node started: docs/cluster.md) on every handshake, never cached, so
    a challenge removed there is not answered here.
    """

    def __init__(self, max_auths: int = 100, clock: Callable[[], float] = time.monotonic,
                 shared: SharedLookup | None = None) -> None:
        self.max_auths = max_auths
        self.clock = clock
        self.shared = shared
        self._auths: dict[str, Auth] = {}
        self._lock = threading.Lock()

    def get(self, sni: str, shared: bool = True) -> Auth | None:
        """The live authorization for SNI *sni*, or None (a literal IP is no SNI, RFC 6066 §3).

        *shared* False looks in memory only: the front end's event loop must never wait for
        the cluster's store (its thread for the connection asks again, store included)."""
        if is_ip(sni):
            return None
        try:
            key = sni_key(sni)
        except ValueError:
            return None
        with self._lock:
            found = self._auths.get(key)
        if found is None or self.clock() - found.timestamp > AUTH_LIFETIME:
            return self._shared(sni, key) if shared else None
        return found

    def _shared(self, sni: str, key: str) -> Auth | None:
        hit = self.shared(sni) if self.shared is not None else None
        if hit is None:
            return None
        ident, keyauth = hit
        digest = hashlib.sha256(keyauth.encode("utf-8")).digest()
        try:
            context = _acme_context(ident, digest)
        except (ValueError, SSL.Error):
            return None
        return Auth(ident, key, b64url_encode(digest), context, self.clock())

    def expire(self) -> list[Auth]:
        """Remove authorizations older than an hour (ualpn's 1 s timer does the same)."""
        now = self.clock()
        with self._lock:
            old = [a for a in self._auths.values() if now - a.timestamp > AUTH_LIFETIME]
            for a in old:
                del self._auths[a.key]
        return old

    def __len__(self) -> int:
        with self._lock:
            return len(self._auths)

    def insert(self, ident: str, key: str, auth: str, context: SSL.Context) -> str | None:
        """Insert or replace; returns an error reason or None."""
        with self._lock:
            if key not in self._auths and len(self._auths) >= self.max_auths:
                return "too many auths"
            self._auths[key] = Auth(ident, key, auth, context, self.clock())
        return None

    def remove(self, key: str) -> bool:
        with self._lock:
            return self._auths.pop(key, None) is not None

    def peek(self, key: str) -> Auth | None:
        with self._lock:
            return self._auths.get(key)


Log = Callable[[str, str], None]


def handle_command(table: AuthTable, line: str, log: Log | None = None) -> str:
    """Execute one control line against *table*; return ualpn's reply (without newline).

    *log(level, message)* receives ualpn's notices (levels as in syslog: NOTICE, INFO, ...).
    """
    log = log or (lambda level, message: None)
    fields = line.rstrip("\r\n").split()
    cmd = fields[0] if fields else ""
    if cmd not in ("auth", "unauth"):
        return USAGE
    ident = fields[1] if len(fields) > 1 else ""
    if not _IDENT.fullmatch(ident):
        return "ERR invalid ident"
    key = sni_key(ident)
    shown = f"{ident} ({key})" if key != ident.lower().rstrip(".") else ident
    if cmd == "auth":
        auth = fields[2] if len(fields) > 2 else ""
        try:
            digest = b64url_decode(auth)
        except ValueError:
            digest = b""
        if len(digest) != 32:
            return "ERR invalid auth"
        existing = table.peek(key)
        if existing is not None and existing.auth == auth:
            return "ERR already inserted"
        try:
            context = _acme_context(ident, digest)
        except (ValueError, SSL.Error):
            return "ERR crypto failure (auth_crt)"
        error = table.insert(ident, key, auth, context)
        if error:
            log("WARNING", error)
            return f"ERR {error}"
        log("NOTICE", f"new auth {auth} for {shown}")
        return "OK"
    if len(fields) > 2:
        return "ERR too many parameters"
    if not table.remove(key):
        log("INFO", f"failed to remove missing auth for {ident}")
        return "ERR not found"
    log("NOTICE", f"removed auth for {shown}")
    return "OK"
