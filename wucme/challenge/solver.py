"""The in-process challenge solver: what `issue` and the renewal pass hand the uacme port in
place of a hook program (the same protocol: begin, done, failed; wucme.uacme.hook.Solver).

It answers the one challenge type WUCME_CHALLENGE names and declines the others:
- tls-alpn-01 (RFC 8737): handed to a running `wucme alpn` through its control socket when one
  answers; else, with WUCME_ALPN AGENT, put in the challenge store for the web server's
  ACME_TLS_1 agent; else answered by wucme's own TlsAlpnResponder on WUCME_ALPN;
- http-01 (RFC 8555 §8.3): entries in the challenge store, served by wucme's Http01Listener on
  WUCME_HTTP01 when that is defined, else by the web server running the wucme script.
As a context manager it runs the listener it needs for the duration.

RFC 8737 §3 allows one validation certificate per name at a time, and both the store and a
`wucme alpn` server keep one tls-alpn-01 answer per name: orders that share a name must not be
validated at once, or one's answer replaces or withdraws the other's.  `reserve(names)` holds,
for one order, an exclusive lock per name in the lock manager (resource ALPN_<name>, in the
store's WUCME_LOCKS directory), taken in sorted order so two orders never wait on each other;
it excludes other threads and other processes alike.  http-01 answers are keyed by token and
need no such lock.
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, Any

from wucme.challenge._net import show_address
from wucme.challenge.http01 import Http01Listener
from wucme.challenge.store import ChallengeStore
from wucme.core import jws
from wucme.errors import WucmeError
from wucme.lock import LockManager, LockMode, NotQueued
from wucme.settings import ALPN_AGENT, ChallengeConfig

if TYPE_CHECKING:  # tls-alpn-01's modules (pyOpenSSL among them) only where it is answered
    from wucme.challenge.alpn import AlpnControl

__all__ = ["ChallengeSolver", "LOCK_DIR", "alpn_resource"]

#: The lock manager's directory, inside the challenge store.
LOCK_DIR = "WUCME_LOCKS"
_PLAIN = re.compile(r"[a-z0-9.-]{1,26}")


def alpn_resource(name: str) -> str:
    """The lock resource of one name's tls-alpn-01 validation: ALPN_WWW_EXAMPLE_ORG, or, for a
    name too long for a resource (31 characters), ALPN_ and 26 hex digits of its SHA-256."""
    n = name.lower().rstrip(".")
    if _PLAIN.fullmatch(n):
        return "ALPN_" + n.upper().replace(".", "_")
    return "ALPN_" + hashlib.sha256(n.encode()).hexdigest()[:26].upper()


class ChallengeSolver:
    """Answers *config*'s challenge type for the account whose key has *thumbprint*."""

    def __init__(self, config: ChallengeConfig, thumbprint: str,
                 log: Callable[[str], None] = lambda s: None, store: ChallengeStore | None = None):
        self.config = config
        self.thumbprint = thumbprint
        #: Always the store the web server's wucme script reads, so `issue` and the script agree.
        self.store = store if store is not None else ChallengeStore()
        self.log = log
        self._server: Any = None
        self._alpn: AlpnControl | None = None

    def __enter__(self) -> ChallengeSolver:
        cfg = self.config
        try:
            if cfg.type == "tls-alpn-01":
                from wucme.challenge.alpn import AlpnControl
                from wucme.challenge.tlsalpn import TlsAlpnResponder

                ctl = AlpnControl()
                if ctl.available():
                    self._alpn = ctl
                    self.log(f"tls-alpn-01 answered by the wucme alpn server at {ctl.socket_path}")
                elif cfg.alpn is None:
                    self.log("tls-alpn-01 answered by the web server's ACME_TLS_1 agent from "
                             f"{self.store.where}")
                else:
                    self._server = TlsAlpnResponder(self.store, *cfg.alpn).start()
                    self.log(f"tls-alpn-01 answered on {show_address(*cfg.alpn)}")
            elif cfg.http01 is not None:
                self._server = Http01Listener(self.store, *cfg.http01).start()
                self.log(f"http-01 answered on {show_address(*cfg.http01)}")
            else:
                self.log(f"http-01 answered by the web server from {self.store.where}")
        except OSError as e:
            where = cfg.alpn if cfg.type == "tls-alpn-01" else cfg.http01
            hint = (f" (WUCME_ALPN {ALPN_AGENT} leaves tls-alpn-01 to the web server's ACME_TLS_1 "
                    "agent)" if cfg.type == "tls-alpn-01" else "")
            raise WucmeError(f"cannot answer {cfg.type} on {show_address(*where)}: {e.strerror or e}{hint}"
                             if where else f"cannot answer {cfg.type}: {e}", ident="NOLISTEN") from None
        return self

    @property
    def quick(self) -> bool:
        """http-01 answers are files of the store's directory, written and removed at once: the
        uacme port calls such a solver from one thread (wucme.uacme.hook.QUICK).  Answers in the
        cluster's database, or for tls-alpn-01, are left to concurrent calls."""
        return self.config.type == "http-01" and not self.store.shared

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    @contextmanager
    def reserve(self, names: Iterable[str]) -> Iterator[None]:
        """Hold *names* for one order's tls-alpn-01 validations (the module's docstring); for
        http-01, nothing to hold."""
        if self.config.type != "tls-alpn-01":
            yield
            return
        self.store._ensure_directory()
        manager = LockManager(self.store.directory / LOCK_DIR)
        with ExitStack() as held:
            for resource, name in sorted({alpn_resource(n): n for n in names}.items()):
                try:
                    lock = manager.enqueue(resource, LockMode.EX, wait=False)
                except NotQueued:
                    self.log(f"waiting for another order's tls-alpn-01 validation of {name}")
                    lock = manager.enqueue(resource, LockMode.EX)
                held.enter_context(lock)
            yield

    def __call__(self, method: str, type: str, ident: str, token: str, auth: str) -> int:
        """uacme's hook protocol: 0 accepted, >0 declined (the next challenge is offered).

        For tls-alpn-01 *auth* is the digest of the key authorization (what ualpn takes); the
        store keeps the key authorization itself, token "." thumbprint (RFC 8555 §8.1)."""
        if type != self.config.type:
            return 1
        try:
            if method == "begin":
                if type == "http-01":
                    self.store.put(token, auth, ident, type)
                elif self._alpn is not None:
                    reply = self._alpn.auth(ident, auth)
                    if not reply.upper().startswith("OK"):
                        raise WucmeError(f"wucme alpn refused {ident}: {reply}", ident="ALPNERR")
                else:
                    self.store.alpn_put(ident, jws.key_authorization(token, self.thumbprint))
                return 0
            if type == "http-01":
                self.store.remove(token)
            elif self._alpn is not None:
                self._alpn.unauth(ident)
            else:
                self.store.alpn_remove(ident)
            return 0
        except (OSError, ValueError) as e:
            raise WucmeError(f"cannot answer {type} for {ident}: {e}", ident="CHALLERR") from None
