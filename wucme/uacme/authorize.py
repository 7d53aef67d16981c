"""Authorizations and challenges (RFC 8555 §7.5, §8): port of uacme.c:authorize().

uacme walks the authorizations one at a time: fetch, offer challenges to the
hook, start one, poll it to the end, next.  A 100-name order then costs a
hundred sequential round-trip-and-poll cycles.  This port keeps uacme's hook
protocol and its decisions per authorization, but runs the phases across all
authorizations at once:

1. fetch every authorization (concurrently);
2. offer each pending one's challenges to the hook in server order (`begin`;
   0 accepts, >0 declines so the next is offered, a signal aborts);
3. start every accepted challenge (POST {}, RFC 8555 §7.5.1);
4. poll until each is valid or invalid, honouring Retry-After: given the order
   URL, the order is polled (one request a round, whatever the number of
   names: the order is `pending` until every authorization is valid and
   `invalid` once one fails, RFC 8555 §7.1.6); once it has stayed pending for
   a second (WATCH_AFTER), the challenges not yet known valid are polled too,
   since not every CA makes the order invalid promptly, and the first invalid
   one ends the order at once; a challenge the start already answered invalid
   ends it before any poll; without the order URL every challenge is polled;
5. run `done` or `failed` for each accepted challenge.

A hook program (and the operator, without one) is called one call at a time, in
authorization order, and the offering stops at the first name no challenge is
accepted for, as uacme stops.  WUCME_HOOK_ORDER UACME (session.hook_order) runs
uacme's own sequence instead: each authorization in turn, start to end.
"""
from __future__ import annotations

import re
from typing import Any

from wucme.core import jws
from wucme.core.retry import retry_after
from wucme.errors import PollTimeout, ProtocolViolation, WucmeError
from wucme.uacme.acme import AcmeReply, AcmeSession, acme_post
from wucme.uacme.hook import QUICK, Solver, hook_run
from wucme.uacme.msg import scan_char

_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")  # base64url (RFC 8555 §8.1: >= 128 bits)


class Challenge:
    """One accepted challenge and what the hook must be told at the end (a plain class, not a
    dataclass: `dataclasses` brings `inspect` and `ast` into every verb's start)."""

    __slots__ = ("authz_url", "url", "type", "ident", "token", "key_auth", "status", "error")

    def __init__(self, authz_url: str, url: str, type: str, ident: str, token: str,  # noqa: A002
                 key_auth: str, status: str = "pending", error: Any = None) -> None:
        self.authz_url = authz_url
        self.url = url
        self.type = type
        self.ident = ident
        self.token = token
        self.key_auth = key_auth
        self.status = status
        self.error = error

    def __repr__(self) -> str:
        return f"Challenge({self.type} {self.ident!r} {self.status} at {self.url!r})"


def key_auth_for(type: str, token: str, thumbprint: str) -> str:
    """What the hook gets as AUTH: raw for http-01, digest for dns-01 and tls-alpn-01."""
    if not _TOKEN.fullmatch(token):
        raise ProtocolViolation(f"failed to validate token {token[:64]!r} from the CA")
    ka = jws.key_authorization(token, thumbprint)
    if type in ("dns-01", "tls-alpn-01"):
        return jws.key_authorization_digest(ka)
    return ka


def _map(a: AcmeSession, fn: Any, items: list[Any], serial: bool = False) -> list[Any]:
    if serial or len(items) <= 1 or a.workers <= 1:
        return [fn(i) for i in items]
    # Only here: one authorization needs no pool, nor concurrent.futures' logging (0.8 MiB).
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(a.workers, len(items))) as pool:
        return list(pool.map(fn, items))


def _fetch_authz(a: AcmeSession, url: str) -> dict[str, Any]:
    a.log(1, f"retrieving authorization at {url}")
    r = acme_post(a, url, "").expect(200, what=f"retrieve auth {url}")
    if not isinstance(r.json, dict):
        raise ProtocolViolation(f"authorization at {url} is not a JSON object")
    return r.json


def _one_at_a_time(solver: Solver | None) -> bool:
    """A hook program and the operator at the terminal answer one call at a time, as in uacme;
    wucme's own in-process solvers answer concurrently."""
    return solver is None


def _quick(solver: Solver | None) -> bool:
    """A solver marked `quick` (wucme.uacme.hook.QUICK: it answers at once, in this process, a
    file written or removed) is called in the calling thread, in authorization order, with the
    same outcome as concurrent calls: a pool of threads for a hundred such calls cost more than
    the calls (about 10 ms each way for a 100-name issue, docs/performance.md)."""
    return bool(getattr(solver, QUICK, False))


def _hook(a: AcmeSession, solver: Solver | None, method: str, ch_type: str, ident: str, token: str,
          key_auth: str) -> int:
    """The in-process *solver* when given (wucme's responders), else the hook program (-h)."""
    a.log(1, f"running {'solver' if solver is not None else a.hook} {method} {ch_type} {ident} {token} {key_auth}")
    if solver is not None:
        rc = solver(method, ch_type, ident, token, key_auth)
    else:
        rc = hook_run(a.hook or "", method, ch_type, ident, token, key_auth)
    a.log(2, f"hook returned {rc}")
    return rc


def _choose(a: AcmeSession, url: str, authz: dict[str, Any], thumbprint: str,
            solver: Solver | None) -> Challenge:
    """Offer the authorization's challenges in server order until one is accepted."""
    ident = authz.get("identifier") or {}
    itype, value = ident.get("type"), ident.get("value")
    if itype not in ("dns", "ip") or not isinstance(value, str) or not value:
        raise ProtocolViolation(f"no valid identifier in auth {url}")
    chlgs = authz.get("challenges")
    if not isinstance(chlgs, list):
        raise ProtocolViolation(f"no challenges in auth {url}")
    for ch in chlgs:
        if not isinstance(ch, dict) or ch.get("status") not in ("pending", "processing"):
            continue
        ctype, curl, token = ch.get("type"), ch.get("url"), ch.get("token")
        if not (isinstance(ctype, str) and isinstance(curl, str) and isinstance(token, str)):
            raise ProtocolViolation("failed to parse challenge")
        key_auth = key_auth_for(ctype, token, thumbprint)
        if solver is not None or a.hook:
            rc = _hook(a, solver, "begin", ctype, value, token, key_auth)
            if rc < 0:
                raise WucmeError(f"hook {'solver' if solver is not None else a.hook} ended abnormally",
                                 ident="HOOKERR")
            if rc > 0:
                a.log(1, f"challenge {ctype} declined")
                continue
        else:
            a.log.warn(f"challenge={ctype} ident={value} token={token} key_auth={key_auth}")
            a.log.warn("type 'y' followed by a newline to accept challenge, anything else to skip")
            if (scan_char() or "").lower() != "y":
                continue
        return Challenge(url, curl, ctype, value, token, key_auth)
    raise WucmeError(f"no challenge accepted for {value}", ident="NOCHALLENGE")


def _start(a: AcmeSession, ch: Challenge) -> None:
    a.log(1, f"starting challenge at {ch.url}")
    r = acme_post(a, ch.url, {}).expect(200, what=f"start challenge at {ch.url}")
    ch.status = r.jstr("status") or "pending"
    if ch.status not in ("pending", "processing", "valid"):
        ch.error = (r.json or {}).get("error")  # some CAs validate within the start POST


def _poll_one(a: AcmeSession, ch: Challenge) -> float | None:
    """One poll; returns the server's Retry-After (if any) while still pending."""
    r = acme_post(a, ch.url, "").expect(200, what=f"poll challenge status at {ch.url}")
    ch.status = r.jstr("status") or "unknown"
    if ch.status in ("pending", "processing"):
        return retry_after(r.header("Retry-After"), 0) or None
    if ch.status != "valid":
        ch.error = (r.json or {}).get("error")
    return None


def authorize(a: AcmeSession, authz_urls: list[str], order_url: str | None = None,
              solver: Solver | None = None) -> dict[str, Any] | None:
    """Satisfy every authorization of the order, or raise (port of uacme.c:authorize()).

    Challenges are offered to *solver* (in-process, the hook's protocol) when given, else to the
    hook program `a.hook`, else to the user at uacme's interactive prompt.  Returns the order
    as its last poll here read it when *order_url* was polled (cert_order needs no second poll
    of an order already ready), else None."""
    thumbprint = jws.jws_thumbprint(a.key)
    if a.hook_order == "uacme":
        _authorize_in_turn(a, authz_urls, thumbprint, solver)
        return None
    authzs = _map(a, lambda u: (u, _fetch_authz(a, u)), authz_urls)
    pending = []
    for url, authz in authzs:
        status = authz.get("status")
        if status == "valid":
            continue
        if status != "pending":
            raise WucmeError(f"unexpected auth status ({status}) at {url}", ident="AUTHSTATUS")
        pending.append((url, authz))
    if not pending:
        return None
    def choose(p: tuple[str, dict[str, Any]]) -> Challenge | WucmeError:
        try:
            return _choose(a, p[0], p[1], thumbprint, solver)
        except WucmeError as e:
            return e

    if _one_at_a_time(solver):
        chosen: list[Challenge | WucmeError] = []
        for p in pending:  # and, as uacme, stop at the first name no challenge is accepted for
            chosen.append(choose(p))
            if isinstance(chosen[-1], WucmeError):
                break
    else:
        chosen = _map(a, choose, pending, serial=_quick(solver))
    accepted = [c for c in chosen if isinstance(c, Challenge)]
    errors = [c for c in chosen if isinstance(c, WucmeError)]
    if errors:
        # Hooks that accepted must hear the end of their challenge (uacme's `failed`).
        _finish(a, accepted, solver, force_failed=True)
        raise errors[0]
    order = None
    try:
        _map(a, lambda ch: _start(a, ch), accepted)
        if order_url:
            order = _poll_order(a, order_url, accepted)
        else:
            _poll_all(a, accepted)
    finally:
        _finish(a, accepted, solver)
    failed = [ch for ch in accepted if ch.status != "valid"]
    if failed:
        raise _failure(failed)
    return order


def _failure(failed: list[Challenge]) -> WucmeError:
    lines = []
    for ch in failed:
        err = ch.error if isinstance(ch.error, dict) else {}
        lines.append(f"{ch.ident} ({ch.type}): {ch.status}: {err.get('type', '')} {err.get('detail', '')}".rstrip())
    return WucmeError("challenge failed:\n  " + "\n  ".join(lines), ident="CHALLFAIL")


def _authorize_in_turn(a: AcmeSession, authz_urls: list[str], thumbprint: str,
                       solver: Solver | None) -> None:
    """uacme's own sequence (WUCME_HOOK_ORDER UACME): each authorization in turn is
    fetched, offered (begin), started, polled to the end and ended (done or failed);
    the first that fails ends the order."""
    for url in authz_urls:
        authz = _fetch_authz(a, url)
        status = authz.get("status")
        if status == "valid":
            continue
        if status != "pending":
            raise WucmeError(f"unexpected auth status ({status}) at {url}", ident="AUTHSTATUS")
        ch = _choose(a, url, authz, thumbprint, solver)
        try:
            _start(a, ch)
            _poll_all(a, [ch])
        finally:
            _finish(a, [ch], solver)
        if ch.status != "valid":
            raise _failure([ch])


def _poll_all(a: AcmeSession, chs: list[Challenge]) -> None:
    backoff = a.backoff()
    while True:
        live = [c for c in chs if c.status in ("pending", "processing")]
        if not live:
            return
        if any(c.status not in ("pending", "processing", "valid") for c in chs):
            return  # one failed: the order cannot become ready, stop polling the rest
        hints = _map(a, lambda c: _poll_one(a, c), live)
        live = [c for c in chs if c.status in ("pending", "processing")]
        if not live:
            return
        hint = max((h for h in hints if h), default=None)
        wait = backoff.next(hint)
        if wait is None:
            for c in live:
                c.status = "timeout"
            raise PollTimeout("timeout while polling challenge status, giving up")
        a.log(2 if wait <= 40 else 1, f"{len(live)} challenge(s) pending, waiting {wait:g} seconds")
        a.sleep(wait)


#: Seconds the order may stay pending before the challenges are watched as well.
WATCH_AFTER = 1.0
_LIVE = ("pending", "processing")


def _poll_order(a: AcmeSession, order_url: str, chs: list[Challenge]) -> dict[str, Any] | None:
    """Poll the order until it leaves `pending`, and watch the challenges while it lingers.

    RFC 8555 §7.1.6 makes the order invalid once an authorization is, but not every CA does
    so promptly: one leaves the order pending with a challenge invalid.  While all goes well
    one request a round suffices (the order); once the order has stayed pending for
    WATCH_AFTER seconds, each round also reads the challenges not yet known valid, and the
    first invalid one ends the wait with its problem document."""
    if any(c.status not in (*_LIVE, "valid") for c in chs):
        return None  # the start POST already answered invalid: nothing to wait for
    backoff = a.backoff()
    while True:
        r = acme_post(a, order_url, "").expect(200, what=f"poll order status at {order_url}")
        status = r.jstr("status")
        if status in ("ready", "processing", "valid"):
            for c in chs:
                c.status = "valid"
            return r.json if isinstance(r.json, dict) else None  # the order, as this poll read it
        if status != "pending":
            _map(a, lambda c: _poll_one(a, c), [c for c in chs if c.status != "valid"])
            return None  # which failed, and why
        hint = retry_after(r.header("Retry-After"), 0) or None
        if backoff.spent >= WATCH_AFTER:
            live = [c for c in chs if c.status in _LIVE]
            _map(a, lambda c: _poll_one(a, c), live)
            if any(c.status not in (*_LIVE, "valid") for c in chs):
                return None
        wait = backoff.next(hint)
        if wait is None:
            for c in chs:
                if c.status in _LIVE:
                    c.status = "timeout"
            raise PollTimeout(f"timeout while polling order status at {order_url}, giving up")
        a.log(2, f"order {status}, waiting {wait:g} seconds")
        a.sleep(wait)


def _finish(a: AcmeSession, chs: list[Challenge], solver: Solver | None, force_failed: bool = False) -> None:
    if solver is None and not a.hook:
        return

    def run(ch: Challenge) -> None:
        method = "done" if ch.status == "valid" and not force_failed else "failed"
        try:
            _hook(a, solver, method, ch.type, ch.ident, ch.token, ch.key_auth)
        except WucmeError as e:
            a.log.warn(e.text)

    if _one_at_a_time(solver):
        for ch in chs:
            run(ch)
    else:
        _map(a, run, chs, serial=_quick(solver))


__all__ = ["authorize", "key_auth_for", "Challenge", "AcmeReply", "Solver"]
