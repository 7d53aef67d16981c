"""Obtaining a certificate into the repository: the one way `issue` and the renewal pass do it.

    state = obtain(a, repo, names, solver, challenge=config.type, replaces=...)

reads as RFC 8555 §7 runs: a fresh key and its CSR; then the uacme port's cert_order: newOrder
(naming the certificate it replaces, RFC 9773 §5), the authorizations, each challenge answered
through *solver* (§7.5, §8), the order polled until ready, finalized with the CSR, polled until
valid, the chain downloaded (§7.4.2) and checked against the request (§11.4); then the key,
chain and state saved.  Nothing is written unless the CA issued a chain that carries the key
and every name.
"""
from __future__ import annotations

import datetime as _dt
import threading
import time
from contextlib import AbstractContextManager, nullcontext
from typing import Callable, Iterable

from wucme import crypto, settings
from wucme.progress import Progress
from wucme.repository import CertState, NoSpace, Repository
from wucme.uacme.acme import AcmeSession
from wucme.uacme.cert import cert_order
from wucme.uacme.hook import QUICK, Solver

#: Seconds before the one more try to save a certificate the full file system refused.
NOSPACE_RETRY_DELAY = 2.0

__all__ = ["new_key", "obtain", "host_list"]


def new_key() -> crypto.PrivateKey:
    """A key of the type and size WUCME_KEY_TYPE and WUCME_KEY_BITS ask for."""
    return crypto.key_gen(*settings.key_spec())


def _as_quick_as(wrapper: Solver, solver: Solver) -> Solver:
    """*wrapper*, marked quick when *solver* is (wucme.uacme.hook.QUICK), its own work being a
    progress line or a lock taken once."""
    if getattr(solver, QUICK, False):
        setattr(wrapper, QUICK, True)
    return wrapper


def _tracked(solver: Solver, progress: Progress) -> Solver:
    """*solver*, reporting each answered authorization to *progress* (answering, valid, invalid)."""
    def solve(method: str, type: str, ident: str, token: str, auth: str) -> int:
        rc = solver(method, type, ident, token, auth)
        if rc == 0:
            if method == "begin":
                progress.update(ident, "answering", type)
            else:
                progress.update(ident, "valid" if method == "done" else "invalid")
        return rc
    return _as_quick_as(solve, solver)


def _announcing(solver: Solver, announce: Callable[[], None]) -> Solver:
    """*solver*, calling *announce* once, before the first challenge it is offered: the CA has
    accepted the order by then."""
    lock = threading.Lock()
    said = False

    def solve(method: str, type: str, ident: str, token: str, auth: str) -> int:
        nonlocal said
        with lock:
            if not said:
                said = True
                announce()
        return solver(method, type, ident, token, auth)
    return _as_quick_as(solve, solver)


class _LockGone(Exception):
    """A guard's error carried past the uacme port's end of a challenge (which only logs a
    WucmeError there), so that the order stops before it is finalized."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


def _guarded(solver: Solver, guard: Callable[[], None]) -> Solver:
    """*solver*, with *guard* called before each challenge is answered and after each one
    validated: a lost cluster lock raises there, and the order goes no further (no other
    challenge, no finalize)."""
    def solve(method: str, type: str, ident: str, token: str, auth: str) -> int:
        if method == "begin":
            guard()
            return solver(method, type, ident, token, auth)
        rc = solver(method, type, ident, token, auth)
        if method == "done":
            try:
                guard()
            except Exception as e:  # noqa: BLE001 - whatever it is, the order stops here
                raise _LockGone(e) from None
        return rc
    return solve


def obtain(a: AcmeSession, repo: Repository, names: list[str], solver: Solver, *, challenge: str,
           replaces: str | None = None, status: str = "issued",
           progress: Progress | None = None,
           on_authorize: Callable[[], None] | None = None,
           now: _dt.datetime | None = None,
           guard: Callable[[], None] | None = None) -> CertState:
    """Order a certificate for *names* under the session's account, answer its challenges
    through *solver*, and save it with a new key; the certificate's state on success (its
    timestamps at *now*: the renewal pass's clock).  *on_authorize* is called once the CA has
    accepted the order, before its first challenge.  *guard* (a cluster lock's check) is called
    before each challenge is answered, after each is validated (so before the order is
    finalized) and immediately before anything is written: what it raises ends the order, and
    a certificate the CA may have issued is written nowhere."""
    key = new_key()
    csr = crypto.csr_gen(names, False, False, key)
    # One tls-alpn-01 validation per name at a time (RFC 8737 §3): ChallengeSolver.reserve.
    reserve: Callable[[Iterable[str]], AbstractContextManager[None]] = getattr(
        solver, "reserve", lambda _names: nullcontext())
    answer = _tracked(solver, progress) if progress else solver
    if on_authorize is not None:
        answer = _announcing(answer, on_authorize)
    if guard is not None:
        answer = _guarded(answer, guard)
    try:
        with reserve(names):
            try:
                chain = cert_order(a, names, csr, replaces, answer)
            except _LockGone as e:
                raise e.error from None
    except BaseException:
        if progress is not None:
            progress.finish(False)
        raise
    if progress is not None:
        progress.finish(True)
    if guard is not None:
        guard()
    try:
        return repo.save_certificate(names, key, chain, challenge, status, now=now)
    except NoSpace:
        # The CA's certificate exists only here now: one more try once others may have freed
        # room (the old pair is untouched), then the error names the directory and the rescue.
        time.sleep(NOSPACE_RETRY_DELAY)
        if guard is not None:
            guard()
        return repo.save_certificate(names, key, chain, challenge, status, now=now)


def host_list(state: CertState) -> str:
    """`www.example.org (2 names)`: how messages name a certificate."""
    n = len(state.hosts)
    return f"{state.hosts[0]} ({n} name{'s' if n != 1 else ''})"
