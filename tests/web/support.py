"""Helpers for the web server tests (no tests here): an ACME account and uacme-style responders."""
from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from wucme import crypto
from wucme.challenge.alpn import AlpnControl
from wucme.challenge.store import ChallengeStore
from wucme.challenge.tlsalpn import auth_digest
from wucme.core import jws
from wucme.uacme.acme import AcmeSession
from wucme.uacme.cert import cert_order
from wucme.uacme.hook import Solver

Responder = Solver


@dataclass
class Acme:
    """An account on Pebble and the uacme port's order flow, answering through `responder`."""

    session: AcmeSession
    calls: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def thumbprint(self) -> str:
        return jws.jws_thumbprint(self.session.key)

    def issue(self, names: list[str], responder: Responder) -> bytes:
        """Order a certificate for *names*; return the PEM chain (cert_order checks it)."""

        def recorded(method: str, type_: str, ident: str, token: str, auth: str) -> int:
            rc = responder(method, type_, ident, token, auth)
            self.calls.append((method, type_, ident))
            return rc

        certkey = crypto.key_gen("EC", 256)
        return cert_order(self.session, names, crypto.csr_gen(names, False, False, certkey), solver=recorded)

    def answered(self, type_: str) -> set[str]:
        """Identifiers whose *type_* challenge the responder saw begin and end as done."""
        begun = {i for m, t, i in self.calls if m == "begin" and t == type_}
        done = {i for m, t, i in self.calls if m == "done" and t == type_}
        return begun & done


def unique_names(n: int = 1, domain: str = "example.org") -> list[str]:
    """Fresh names, so no earlier authorization can be reused."""
    tag = secrets.token_hex(4)
    return [f"w{i}-{tag}.{domain}" for i in range(n)]


def http01_responder(store: ChallengeStore) -> Responder:
    """uacme's hook protocol for http-01: publish the key authorization in the store."""

    def respond(method: str, type_: str, ident: str, token: str, auth: str) -> int:
        if type_ != "http-01":
            return 1
        if method == "begin":
            store.put(token, auth, ident, type_)
        else:
            store.remove(token)
        return 0

    return respond


def alpn_store_responder(store: ChallengeStore, thumbprint: str) -> Responder:
    """tls-alpn-01 into the store: the hook gets the digest, the store wants the key authorization.

    The hook protocol hands tls-alpn-01 the base64url SHA-256 of the key authorization (as
    ualpn's `auth` takes it); the store keeps the key authorization itself, which is
    token "." thumbprint (RFC 8555 §8.1), so it is rebuilt and checked against the digest.
    """

    def respond(method: str, type_: str, ident: str, token: str, auth: str) -> int:
        if type_ != "tls-alpn-01":
            return 1
        if method == "begin":
            keyauth = jws.key_authorization(token, thumbprint)
            if auth_digest(keyauth) != auth:
                return 1
            store.alpn_put(ident, keyauth)
        else:
            store.alpn_remove(ident)
        return 0

    return respond


def alpn_control_responder(control: AlpnControl) -> Responder:
    """tls-alpn-01 through `wucme alpn`'s control socket, as uacme's ualpn.sh hook does."""

    def respond(method: str, type_: str, ident: str, token: str, auth: str) -> int:
        if type_ != "tls-alpn-01":
            return 1
        reply = control.auth(ident, auth) if method == "begin" else control.unauth(ident)
        return 0 if reply == "OK" or method != "begin" else 1

    return respond
