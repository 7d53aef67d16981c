"""The client side of the in-memory suite: sessions wired to the fake CA, recorded waits,
and the in-process challenge answerer."""
from __future__ import annotations

import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from cryptography.hazmat.primitives.asymmetric import ec

from wucme import crypto
from wucme.uacme.account import account_new
from wucme.uacme.acme import AcmeSession, acme_bootstrap
from wucme.errors import WucmeError
from wucme.uacme.msg import Msg

from .fakeca import DIRECTORY, FakeCA


class Sleeps(list[float]):
    """Stands in for AcmeSession.sleep: every wait is recorded, none is taken."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


class Answerer:
    """The in-process challenge answerer, speaking uacme's hook protocol
    (METHOD TYPE IDENT TOKEN AUTH -> status).  On `begin` it accepts (0) and publishes AUTH
    where the fake CA validates it, or declines (1) when the type or the identifier is in
    `decline`, or aborts (-1) on the types in `abort`; `done` and `failed` withdraw it.
    `garble` publishes a wrong answer.  Every call is recorded."""

    def __init__(self, ca: FakeCA, decline: tuple[str, ...] = (), abort: tuple[str, ...] = (),
                 garble: bool = False) -> None:
        self.ca = ca
        self.decline = decline
        self.abort = abort
        self.garble = garble
        self.calls: list[tuple[str, str, str, str, str]] = []

    def __call__(self, method: str, ch_type: str, ident: str, token: str, auth: str) -> int:
        self.calls.append((method, ch_type, ident, token, auth))
        if method == "begin":
            if ch_type in self.abort:
                return -1
            if ch_type in self.decline or ident in self.decline:
                return 1
            self.ca.publish(ch_type, ident, token, auth + ("x" if self.garble else ""))
            return 0
        self.ca.withdraw(ch_type, ident, token)
        return 0

    def methods(self) -> list[tuple[str, str, str]]:
        """(method, type, ident) of every call, in order."""
        return [c[:3] for c in self.calls]


def solve_with(a: AcmeSession, answerer: Answerer) -> dict[str, Any]:
    """Hand the answerer to authorize()/cert_order()/cert_issue(): the keyword arguments to
    pass them (their `solver=` parameter, uacme's hook protocol in-process)."""
    del a
    return {"solver": answerer}


def new_session(ca: FakeCA, key: Any = None, level: int = 2, **fields: Any) -> AcmeSession:
    """A session on the fake CA: waits recorded (a.sleep is a Sleeps), messages kept
    (see said()), one worker unless asked (request order is then deterministic)."""
    fields.setdefault("workers", 1)
    return AcmeSession(transport=ca, directory=DIRECTORY,
                       key=key or ec.generate_private_key(ec.SECP256R1()),
                       log=Msg(level, io.StringIO()), sleep=Sleeps(), **fields)


def registered(ca: FakeCA, **fields: Any) -> AcmeSession:
    """A bootstrapped session with a fresh account (kid set)."""
    a = new_session(ca, **fields)
    acme_bootstrap(a)
    account_new(a, yes=True)
    return a


def waits(a: AcmeSession) -> list[float]:
    assert isinstance(a.sleep, Sleeps)
    return list(a.sleep)


def said(a: AcmeSession) -> str:
    """Everything the session wrote (warnings always; progress up to its level)."""
    assert isinstance(a.log.stream, io.StringIO)
    return a.log.stream.getvalue()


def csr_for(names: list[str], key: Any = None) -> tuple[bytes, Any]:
    """A DER CSR for `names` and the certificate key that signed it."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    return crypto.csr_gen(names, False, False, key), key


@contextmanager
def fails(kind: type[WucmeError], match: str) -> Iterator[pytest.ExceptionInfo[WucmeError]]:
    """Like pytest.raises, matching the VMS message a user sees (`%WUCME-E-IDENT, text`):
    callers such as AcmeReply.expect() add their context to the message text."""
    with pytest.raises(kind) as info:
        yield info
    text = info.value.message()
    assert re.search(match, text, re.S), f"{match!r} not in {text!r}"


def challenge_of(ca: FakeCA, ident: str, ch_type: str = "http-01") -> Any:
    """The CA's newest challenge of `ch_type` for `ident`."""
    return [c for c in ca.challenges.values()
            if c.type == ch_type and c.authz.ident["value"] == ident][-1]
