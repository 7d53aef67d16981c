"""The ACME session and its requests: uacme's acme_t, acme_get(), acme_post().

Differences from uacme, each deliberate:
- nonces are pooled (every response's Replay-Nonce is kept, RFC 8555 §6.5), so
  the authorization threads rarely wait for newNonce;
- rateLimited is retried on 429 as well as 503 (Let's Encrypt answers 429);
- a badNonce retry is bounded by `max_badnonce` tries, each with the nonce the
  error carried (RFC 8555 §6.5);
- URLs the CA hands out must keep the directory's scheme: no signed POST ever
  goes to plain http when the directory is https.
"""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

from wucme.core import jws
from wucme.core.b64 import is_b64url
from wucme.core.problem import AcmeProblem, BadNonce, RateLimited
from wucme.core.retry import Backoff, retry_after
from wucme.errors import PollTimeout, ProtocolViolation, WucmeError
from wucme.http import HttpError, Response, Transport
from wucme.settings import PRODUCTION_URL, STAGING_URL  # uacme's two directories (-s)
from wucme.uacme.msg import Msg

JOSE_JSON = "application/jose+json"
PEM_CHAIN = "application/pem-certificate-chain"


class AcmeReply:
    """One CA answer: uacme keeps these in acme_t (json, headers, body, type).

    This and AcmeSession are plain classes, not dataclasses: `dataclasses` brings `inspect`
    and `ast` into every verb's start (docs/performance.md)."""

    __slots__ = ("status", "response", "json")

    def __init__(self, status: int, response: Response, json: Any = None) -> None:
        self.status = status
        self.response = response
        self.json = json

    def __repr__(self) -> str:
        return f"AcmeReply(status={self.status!r}, json={self.json!r})"

    @property
    def location(self) -> str | None:
        return self.response.header("Location")

    def header(self, name: str) -> str | None:
        return self.response.header(name)

    @property
    def body(self) -> bytes:
        return self.response.body

    def problem(self) -> AcmeProblem | None:
        """Port of acme_error(): the problem document, if this answer carries one."""
        is_problem = self.response.content_type == "application/problem+json"
        if not is_problem and isinstance(self.json, dict) and isinstance(
            self.json.get("error"), dict
        ):
            return AcmeProblem.from_json(self.status, self.json["error"])
        if not is_problem:
            return None
        ra = retry_after(self.header("Retry-After"), 0) or None
        if isinstance(self.json, dict):
            return AcmeProblem.from_json(self.status, self.json, ra)
        return AcmeProblem.from_body(self.status, self.body, ra)

    def expect(self, *statuses: int, what: str) -> "AcmeReply":
        """The reply itself when its status is one of `statuses`; otherwise raise."""
        if self.status in statuses:
            return self
        prob = self.problem()
        if prob is not None:
            prob.text = f"failed to {what}: {prob.text}"
            raise prob
        raise ProtocolViolation(f"failed to {what}: unexpected HTTP {self.status} from {self.response.url}")

    def jstr(self, key: str) -> str | None:
        """uacme's json_find_string() on the top object."""
        if isinstance(self.json, dict) and isinstance(self.json.get(key), str):
            return str(self.json[key])
        return None


class AcmeSession:
    """Port of uacme's acme_t: the account key, the directory and the pieces of state."""

    __slots__ = ("transport", "directory", "key", "kid", "dir", "account", "order", "hook", "email",
                 "eab_keyid", "eab_key", "eab_bits", "alternate", "profile", "confdir", "log", "sleep",
                 "transport_retry_delay", "rate_limit_default", "rate_limit_tries", "max_badnonce",
                 "poll_first", "poll_ceiling", "poll_deadline", "workers", "hook_order", "_nonces", "_lock")

    def __init__(self, transport: Transport, directory: str = PRODUCTION_URL, *,
                 key: Any = None, kid: str | None = None, dir: dict[str, Any] | None = None,
                 account: dict[str, Any] | None = None, order: dict[str, Any] | None = None,
                 hook: str | None = None, email: str | None = None, eab_keyid: str | None = None,
                 eab_key: bytes | None = None, eab_bits: int = 256,
                 alternate: int | bytes | None = None, profile: str | None = None,
                 confdir: str | None = None, log: Msg | None = None,
                 sleep: Callable[[float], None] = time.sleep, transport_retry_delay: float = 5.0,
                 rate_limit_default: float = 60.0, rate_limit_tries: int = 3, max_badnonce: int = 20,
                 poll_first: float = 0.01, poll_ceiling: float = 30.0, poll_deadline: float = 1800.0,
                 workers: int = 8, hook_order: str = "wucme") -> None:
        self.transport = transport
        self.directory = directory
        self.key = key  # account key (or the certificate key, for revoke with CERTKEYFILE)
        self.kid = kid  # account URL (RFC 8555 §7.3)
        self.dir: dict[str, Any] = {} if dir is None else dir
        self.account = account
        self.order = order
        self.hook = hook
        self.email = email
        self.eab_keyid = eab_keyid
        self.eab_key = eab_key
        self.eab_bits = eab_bits
        self.alternate = alternate  # -l N, or a SHA-256/AKI prefix
        self.profile = profile
        self.confdir = confdir
        self.log: Msg = Msg() if log is None else log
        self.sleep = sleep
        #: Seconds between the three tries on a transport failure (uacme: 5).
        self.transport_retry_delay = transport_retry_delay
        #: Wait when a rateLimited answer has no usable Retry-After (uacme: 60).
        self.rate_limit_default = rate_limit_default
        #: Tries on rateLimited before giving up (uacme: 3).
        self.rate_limit_tries = rate_limit_tries
        self.max_badnonce = max_badnonce
        #: Polling: first wait, ceiling, deadline (see core.retry.Backoff).
        self.poll_first = poll_first
        self.poll_ceiling = poll_ceiling
        self.poll_deadline = poll_deadline
        #: Parallel workers for authorizations and hooks (uacme: 1).  Eight, not more: on the
        #: 2-CPU bench machine 16 made a 100-name issue slower (more GIL switches, a TLS
        #: connection and a newNonce each; docs/performance.md), and the HTTP client keeps 8 idle.
        self.workers = workers
        #: Hook order (WUCME_HOOK_ORDER): "wucme", every begin, the challenges validated
        #: together, then every done; "uacme", uacme's sequence, one authorization at a time.
        self.hook_order = hook_order
        self._nonces: list[str] = []
        self._lock: threading.Lock = threading.Lock()

    def __repr__(self) -> str:
        return f"AcmeSession(directory={self.directory!r}, kid={self.kid!r})"

    def backoff(self) -> Backoff:
        return Backoff(self.poll_first, self.poll_ceiling, self.poll_deadline)

    def url(self, name: str) -> str:
        """A directory member (RFC 8555 §7.1.1), or a clear error when the CA lacks it."""
        u = self.dir.get(name)
        if not isinstance(u, str) or not u:
            raise ProtocolViolation(f"failed to find {name} URL in directory")
        return u

    def _take_nonce(self) -> str | None:
        with self._lock:
            return self._nonces.pop() if self._nonces else None

    def _keep_nonce(self, resp: Response) -> None:
        nonce = resp.header("Replay-Nonce")
        if nonce and is_b64url(nonce.strip()):  # RFC 8555 §6.5.1
            with self._lock:
                self._nonces.append(nonce.strip())
                del self._nonces[:-64]


def _check_url(a: AcmeSession, url: str) -> None:
    if a.directory.startswith("https:") and not url.startswith("https:"):
        raise ProtocolViolation(f"refusing non-https URL from the CA: {url[:200]}")


def _transport(a: AcmeSession, method: str, url: str, body: bytes | None = None,
               headers: dict[str, str] | None = None) -> Response:
    """Port of curlwrap.c's three tries on transport errors, without the last idle sleep."""
    tries = 3
    for i in range(tries):
        try:
            resp = a.transport.request(method, url, body, headers)
        except HttpError as e:
            if i == tries - 1:
                raise WucmeError(f"{method} {url} failed: {e}", ident="NETERR") from None
            a.log.warn(f"{method} {url} failed: {e}, retrying in {a.transport_retry_delay:g} s")
            a.sleep(a.transport_retry_delay)
            continue
        if a.log.on(3):
            a.log(3, f"{method} {url} -> {resp.status}\n" + "\n".join(f"{k}: {v}" for k, v in resp.headers))
        return resp
    raise AssertionError("unreachable")


def _reply(a: AcmeSession, resp: Response) -> AcmeReply:
    a._keep_nonce(resp)
    data: Any = None
    if "json" in resp.content_type and resp.body:
        try:
            data = json.loads(resp.body.decode("utf-8"))
        except (ValueError, RecursionError):  # ValueError: bad UTF-8, bad JSON, and since
            # Python 3.11 an integer of more than 4300 digits (int's conversion limit)
            raise ProtocolViolation(f"unparsable JSON from {resp.url}") from None
        if a.log.on(2):  # dumps of every answer: 15 ms of a 100-name issue, when nobody reads them
            a.log(2, f"{resp.url}:\n{json.dumps(data, indent=1)[:20000]}")
    return AcmeReply(resp.status, resp, data)


def _rate_limit_wait(a: AcmeSession, r: AcmeReply, tries_left: int) -> bool:
    """Sleep out a rateLimited answer (RFC 8555 §6.6) when tries remain; True if slept."""
    if r.status not in (429, 503) or tries_left <= 0:
        return False
    if not isinstance(r.problem(), RateLimited):
        return False
    wait = retry_after(r.header("Retry-After"), a.rate_limit_default)
    a.log.warn(f"rate limited at {r.response.url}, waiting {wait:g} seconds")
    a.sleep(wait)
    return True


def acme_get(a: AcmeSession, url: str, accept: str | None = None) -> AcmeReply:
    """Port of uacme.c:acme_get(): an unauthenticated GET (directory, newNonce, ARI)."""
    if url == a.directory:
        a.log(1, f"fetching directory at {url}")
    headers = {"Accept": accept} if accept else None
    for left in range(a.rate_limit_tries - 1, -1, -1):
        r = _reply(a, _transport(a, "GET", url, None, headers))
        if not _rate_limit_wait(a, r, left):
            return r
    raise AssertionError("unreachable")


def acme_nonce(a: AcmeSession) -> str:
    """Port of uacme.c:acme_nonce(): a fresh nonce from newNonce (RFC 8555 §7.2).

    The nonce of this very answer, never pooled: another thread taking from the
    pool in between would leave this one without.
    """
    url = a.url("newNonce")
    resp = _transport(a, "HEAD", url)
    if resp.status not in (200, 204):
        _reply(a, resp).expect(204, what="retrieve nonce")
    nonce = (resp.header("Replay-Nonce") or "").strip()
    if not nonce or not is_b64url(nonce):  # RFC 8555 §6.5.1
        raise ProtocolViolation(f"no Replay-Nonce from {url}")
    return nonce


def acme_post(a: AcmeSession, url: str, payload: dict[str, Any] | str | None,
              accept: str | None = None) -> AcmeReply:
    """Port of uacme.c:acme_post(): a JWS POST (RFC 8555 §6.2), or POST-as-GET for "".

    Signed with `kid` once the account is known, otherwise with the `jwk`
    (newAccount, revoke with the certificate key; RFC 8555 §6.2).
    """
    _check_url(a, url)
    if payload not in (None, "") and a.log.on(2):
        a.log(2, f"POST {url}: {json.dumps(payload)}")
    headers = {"Content-Type": JOSE_JSON}
    if accept:
        headers["Accept"] = accept
    badnonce = 0
    rl_left = a.rate_limit_tries - 1
    while True:
        nonce = a._take_nonce() or acme_nonce(a)
        if a.kid:
            protected = jws.jws_protected_kid(nonce, url, a.kid, a.key)
        else:
            protected = jws.jws_protected_jwk(nonce, url, a.key)
        body = jws.jws_encode(protected, payload, a.key)
        if a.log.on(3):
            a.log(3, f"JWS {body.decode()}")
        r = _reply(a, _transport(a, "POST", url, body, headers))
        if r.status == 400 and isinstance(r.problem(), BadNonce):
            badnonce += 1
            if badnonce < a.max_badnonce:
                a.log(1, f"bad nonce at {url}, retrying ({badnonce})")
                continue
            raise r.problem() or ProtocolViolation("badNonce")
        if _rate_limit_wait(a, r, rl_left):
            rl_left -= 1
            continue
        return r


def acme_poll(a: AcmeSession, url: str, waiting: tuple[str, ...], what: str,
              wait_first: AcmeReply | None = None) -> AcmeReply:
    """POST-as-GET `url` until its status leaves `waiting` (RFC 8555 §7.1.6, §7.5.1).

    Waits follow the session's backoff, or the server's Retry-After when it gives one.
    *wait_first*: the answer that said the object is not there yet (a finalize answer saying
    "processing", §7.4); when it carries a Retry-After, the first request waits for it.
    Without one the first request goes at once: Pebble issues a one-name certificate before
    it is asked (a first wait of the backoff's 10 ms made such an issue 10 ms slower).
    """
    backoff = a.backoff()
    first = retry_after(wait_first.header("Retry-After"), 0) if wait_first is not None else 0
    if wait_first is not None and first > 0:
        pause = backoff.next(first) or 0.0
        a.log(2, f"{what} {wait_first.jstr('status')}, waiting {pause:g} seconds")
        a.sleep(pause)
    while True:
        r = acme_post(a, url, "").expect(200, what=f"poll {what} status at {url}")
        status = r.jstr("status")
        if status not in waiting:
            return r
        wait = backoff.next(retry_after(r.header("Retry-After"), 0) or None)
        if wait is None:
            raise PollTimeout(f"timeout while polling {what} status at {url}, giving up")
        a.log(2, f"{what} {status}, waiting {wait:g} seconds")
        a.sleep(wait)


def acme_bootstrap(a: AcmeSession) -> None:
    """Port of uacme.c:acme_bootstrap(): fetch the directory (RFC 8555 §7.1.1)."""
    r = acme_get(a, a.directory).expect(200, what=f"retrieve directory at {a.directory}")
    if not isinstance(r.json, dict):
        raise ProtocolViolation(f"directory at {a.directory} is not a JSON object")
    a.dir = r.json
    for name in ("newNonce", "newAccount", "newOrder"):
        a.url(name)
    if a.profile:
        profiles = (a.dir.get("meta") or {}).get("profiles") or {}
        if a.profile not in profiles:
            offered = ", ".join(sorted(profiles)) or "none"
            raise WucmeError(
                f"profile {a.profile!r} not offered by the CA (offered: {offered})", ident="NOPROFILE"
            )
