"""Issuing one certificate into the repository, and answering its challenges in-process.

Shared by `issue` and the renewal function (so neither imports the other).  The `Responder` is
what the uacme port calls in place of a hook program (same protocol: begin, done, failed); it
answers the one challenge type WUCME_CHALLENGE names and declines the others:
- tls-alpn-01 (RFC 8737): handed to a running `wucme alpn` through its control socket when one
  answers, otherwise to wucme's own TlsAlpnResponder on WUCME_ALPN for the duration;
- http-01 (RFC 8555 §8.3): entries in the challenge store, served by wucme's Http01Listener on
  WUCME_HTTP01 when that is defined, else by the web server running the wucme script.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from wucme import crypto, settings
from wucme.challenge.alpn import AlpnControl, default_socket_path
from wucme.challenge.http01 import Http01Listener
from wucme.challenge.store import ChallengeStore, default_store_dir
from wucme.challenge.tlsalpn import TlsAlpnResponder
from wucme.core import jws
from wucme.errors import WucmeError
from wucme.load import run_load_command
from wucme.progress import Progress
from wucme.repository import CertState, Repository
from wucme.settings import ALPN_AGENT, ChallengeConfig
from wucme.uacme.acme import AcmeSession
from wucme.uacme.cert import cert_order

def new_key() -> crypto.PrivateKey:
    """A certificate key of the type and size WUCME_KEY_TYPE and WUCME_KEY_BITS ask for."""
    return crypto.key_gen(*settings.key_spec())


def challenge_store(repo: Repository | None = None) -> ChallengeStore:
    """The store the web server's wucme script reads (`default_store_dir`): WUCME_CHALLENGES,
    else WUCME_CHALLENGES/ under WUCME_HERE.  Always that one, so `issue` and the script agree."""
    return ChallengeStore(default_store_dir())


class Responder:
    """The in-process hook: a context manager that runs what answers, and the callable itself."""

    def __init__(self, a: AcmeSession, repo: Repository, config: ChallengeConfig,
                 log: Callable[[str], None] = lambda s: None):
        self.a = a
        self.config = config
        self.store = challenge_store(repo)
        self.log = log
        self.progress: dict[str, Progress] = {}
        self._server: Any = None
        self._alpn: AlpnControl | None = None

    def __enter__(self) -> Responder:
        cfg = self.config
        try:
            if cfg.type == "tls-alpn-01":
                ctl = AlpnControl(default_socket_path())
                if ctl.available():
                    self._alpn = ctl
                    self.log(f"tls-alpn-01 answered by the wucme alpn server at {ctl.socket_path}")
                elif cfg.alpn is None:
                    self.log("tls-alpn-01 answered by the web server's ACME_TLS_1 agent from "
                             f"{self.store.directory}")
                else:
                    self._server = TlsAlpnResponder(self.store, *cfg.alpn).start()
                    self.log(f"tls-alpn-01 answered on {cfg.alpn[0]}:{cfg.alpn[1]}")
            elif cfg.http01 is not None:
                self._server = Http01Listener(self.store, *cfg.http01).start()
                self.log(f"http-01 answered on {cfg.http01[0]}:{cfg.http01[1]}")
            else:
                self.log(f"http-01 answered by the web server from {self.store.directory}")
        except OSError as e:
            where = cfg.alpn if cfg.type == "tls-alpn-01" else cfg.http01
            hint = (f" (WUCME_ALPN {ALPN_AGENT} leaves tls-alpn-01 to the web server's ACME_TLS_1 "
                    "agent)" if cfg.type == "tls-alpn-01" else "")
            raise WucmeError(f"cannot answer {cfg.type} on {where[0]}:{where[1]}: {e.strerror or e}{hint}"
                             if where else f"cannot answer {cfg.type}: {e}", ident="NOLISTEN") from None
        self.a.responder = self
        return self

    def __exit__(self, *exc: object) -> None:
        self.a.responder = None
        if self._server is not None:
            self._server.stop()
            self._server = None

    def _key_authorization(self, token: str) -> str:
        return jws.key_authorization(token, jws.jws_thumbprint(self.a.key))

    def _progress(self, ident: str, state: str, detail: str = "") -> None:
        for p in self.progress.values():
            if ident in p.state:
                p.update(ident, state, detail)

    def __call__(self, method: str, type: str, ident: str, token: str, auth: str) -> int:
        """uacme's hook protocol: 0 accepted, >0 declined (the next challenge is offered)."""
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
                    self.store.alpn_put(ident, self._key_authorization(token))
                self._progress(ident, "answering", type)
                return 0
            if type == "http-01":
                self.store.remove(token)
            elif self._alpn is not None:
                self._alpn.unauth(ident)
            else:
                self.store.alpn_remove(ident)
            self._progress(ident, "valid" if method == "done" else "invalid")
            return 0
        except (OSError, ValueError) as e:
            raise WucmeError(f"cannot answer {type} for {ident}: {e}", ident="CHALLERR") from None


def issue_certificate(a: AcmeSession, repo: Repository, responder: Responder, names: list[str],
                      *, replaces: str | None = None, status: str = "issued",
                      progress: Progress | None = None) -> CertState:
    """Order a certificate for *names* with a fresh key and save it; the state on success.

    Nothing is written unless the CA issued a chain that carries the key and every name.
    """
    key = new_key()
    csr = crypto.csr_gen(names, False, False, key)
    if progress is not None:
        responder.progress[names[0]] = progress
    try:
        pem = cert_order(a, names, csr, replaces)
    except BaseException:
        if progress is not None:
            progress.finish(False)
        raise
    finally:
        responder.progress.pop(names[0], None)
    if progress is not None:
        progress.finish(True)
    return repo.save_certificate(names, key, pem, responder.config.type, status)


def run_load() -> tuple[bool, str] | None:
    """Run WUCME_LOAD (wucme.load: no shell, own process group, WUCME_LOAD_TIMEOUT), or None.

    Returns (ok, message); a failure is reported by the caller, never fatal to the saved files.
    """
    r = run_load_command()
    return None if r is None else (r.ok, r.text)


def host_list(state: CertState) -> str:
    n = len(state.hosts)
    return f"{state.hosts[0]} ({n} name{'s' if n != 1 else ''})"
