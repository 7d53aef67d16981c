"""What every wucme listener shares: admission under connection limits, threaded acceptors, and a
deadline-bounded TLS handshake.

The limits answer the slow-client attack (one byte every few seconds on many connections, so
that a listener that refuses new connections when full refuses every validation): a client
has a deadline for its *whole* ClientHello or request head, not per byte; a listener full of
connections still in that phase ("idle": no head yet) drops the oldest of them for a new one
instead of refusing the newcomer; and one source address (an IPv6 /64) may hold only so many
connections at once, dropping its own oldest idle one beyond that.  A connection that has
sent its head and is being served is never dropped for a newcomer; only when every held
connection is past its head is a newcomer refused.
"""

from __future__ import annotations

import errno
import functools
import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Generic, NamedTuple, TypeVar

if TYPE_CHECKING:  # pyOpenSSL only where TLS is spoken: the http-01 CGI answer must not load it
    from OpenSSL import SSL

from wucme.vms.lnm import trnlnm

__all__ = [
    "ANY",
    "Accepted",
    "Acceptor",
    "Admission",
    "DropReport",
    "Limits",
    "bind_listener",
    "show_address",
    "handshake",
    "HandshakeFailed",
    "listen_limits",
    "source_key",
]

C = TypeVar("C", bound=Hashable)


class HandshakeFailed(Exception):
    """The peer closed, stalled past the deadline, or broke the TLS protocol."""


class Limits(NamedTuple):
    """One listener's limits: connections held at once, per source address, and the seconds a
    client has for its whole ClientHello or request head."""

    max_clients: int
    per_source: int
    head_timeout: float


def _setting(name: str, given: float | None, default: float, integer: bool,
             log: Callable[[str], None]) -> float:
    """*given* when a caller chose it, else logical *name* when it holds a positive number,
    else *default* (a bad value is reported and ignored)."""
    if given is not None:
        if given <= 0:
            raise ValueError(f"{name.lower()}: must be positive, not {given!r}")
        return given
    raw = (trnlnm(name) or "").strip()
    if not raw:
        return default
    try:
        value = int(raw, 10) if integer else float(raw)
    except ValueError:
        value = 0
    if not value > 0:  # also NaN
        log(f"logical name {name} = {raw!r} is not a positive {'count' if integer else 'number'}: "
            f"using {default:g}")
        return default
    return value


def listen_limits(
    max_clients: int | None,
    per_source: int | None,
    head_timeout: float | None,
    defaults: Limits,
    log: Callable[[str], None] = lambda message: None,
) -> Limits:
    """The limits a listener runs with: each argument, else its logical name (WUCME_CLIENT_LIMIT,
    WUCME_ADDRESS_LIMIT, WUCME_HELLO_TIMEOUT: docs/challenges.md), else the listener's default."""
    clients = int(_setting("WUCME_CLIENT_LIMIT", max_clients, defaults.max_clients, True, log))
    source = int(_setting("WUCME_ADDRESS_LIMIT", per_source, defaults.per_source, True, log))
    timeout = _setting("WUCME_HELLO_TIMEOUT", head_timeout, defaults.head_timeout, False, log)
    return Limits(clients, min(source, clients), timeout)


@functools.lru_cache(maxsize=4096)  # asked for every connection accepted; parsing costs more
def source_key(host: str) -> str:
    """The address a per-source limit counts: an IPv4 address (IPv4-mapped IPv6 included), or
    the /64 of an IPv6 address, since one host is handed a whole /64."""
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class FailedAccepts:
    """accept() failing (out of descriptors, EMFILE and friends) is an episode: logged once
    when it begins and once when it is over, not at every try (a listener retries every few
    milliseconds while it sheds load).  Shared by the http-01 listener, the Acceptor and
    `wucme alpn`'s loop."""

    def __init__(self, log: Callable[[str], None]) -> None:
        self.log = log
        self.failing = False

    def failed(self, exc: OSError) -> None:
        if not self.failing:
            self.failing = True
            self.log(f"accept failed: {exc}")

    def over(self) -> None:
        if self.failing:
            self.failing = False
            self.log("accepting connections again")


class DropReport:
    """Reports dropped and refused connections at most once per *every* seconds, with counts, so
    that an attack does not also flood the log."""

    def __init__(self, log: Callable[[str], None], every: float = 5.0) -> None:
        self.log = log
        self.every = every
        self._next = 0.0
        self._dropped = 0
        self._refused = 0

    def __call__(self, newcomer: str, victim: str | None) -> None:
        """A newcomer from *newcomer* took *victim*'s seat (None: the newcomer was refused)."""
        if victim is None:
            self._refused += 1
        else:
            self._dropped += 1
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + self.every
        what = (f"dropping the oldest unfinished one for each newcomer ({self._dropped}, the latest "
                f"{victim} for {newcomer})" if victim is not None else
                f"refusing newcomers while every one held is being served ({self._refused}, the "
                f"latest from {newcomer})")
        self.log(f"too many connections: {what}")
        self._dropped = self._refused = 0


class _Seat:
    __slots__ = ("source", "idle")

    def __init__(self, source: str, idle: bool = True) -> None:
        self.source = source
        self.idle = idle


class Admission(Generic[C]):
    """The connections a listener holds, oldest first, and which to drop for a newcomer.

    Not thread-safe: the single-threaded http-01 listener uses it directly, the Acceptor under
    its lock.
    """

    def __init__(self, max_clients: int, per_source: int) -> None:
        self.max_clients = max_clients
        self.per_source = per_source
        self._seats: dict[C, _Seat] = {}  # insertion order: oldest first
        self._counts: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._seats)

    def __contains__(self, conn: object) -> bool:
        return conn in self._seats

    def admit(self, conn: C, source: str) -> list[C] | None:
        """Seat *conn* from *source*; the held connections to drop to make room for it, or None
        (nothing seated) when it must be refused because every candidate is past its head."""
        victims: list[C] = []
        if self._counts.get(source, 0) >= self.per_source:
            victim = self.oldest_idle(source)
            if victim is None:
                return None
            victims.append(victim)
        if len(self._seats) - len(victims) >= self.max_clients:
            victim = self.oldest_idle(None, exclude=victims)
            if victim is None:
                return None
            victims.append(victim)
        for victim in victims:
            self.release(victim)
        self._seats[conn] = _Seat(source)
        self._counts[source] = self._counts.get(source, 0) + 1
        return victims

    def settle(self, conn: C) -> None:
        """*conn* has sent its whole head and is being served: never dropped for a newcomer."""
        seat = self._seats.get(conn)
        if seat is not None:
            seat.idle = False

    def release(self, conn: C) -> None:
        """*conn* is gone (or dropped); a connection not held is ignored."""
        seat = self._seats.pop(conn, None)
        if seat is not None:
            left = self._counts[seat.source] - 1
            if left:
                self._counts[seat.source] = left
            else:
                del self._counts[seat.source]

    def held(self) -> list[C]:
        """The connections held, oldest first."""
        return list(self._seats)

    def oldest_idle(self, source: str | None = None, exclude: tuple[C, ...] | list[C] = ()) -> C | None:
        """The oldest connection still sending its head (from *source*, when given)."""
        for conn, seat in self._seats.items():
            if seat.idle and (source is None or seat.source == source) and conn not in exclude:
                return conn
        return None


#: The host that means "every address of both families" (no address given: `WUCME_HTTP01=80`).
ANY = ""


def show_address(host: str, port: int) -> str:
    """An address as messages show it: `*:80 (IPv4 and IPv6)` for ANY, `[::1]:80`, `127.0.0.1:80`."""
    if host in (ANY, "*"):
        return f"*:{port} (IPv4 and IPv6)"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def bind_listener(host: str, port: int, *, v6only: bool = True) -> socket.socket:
    """A listening TCP socket.  No address (ANY, or `*`): one dual-stack socket on `::` with
    IPV6_V6ONLY off, so IPv4 clients arrive as ::ffff:a.b.c.d; on a system without IPv6, the
    IPv4 wildcard.  An explicit address binds that address only (`::` is IPv6 only, `0.0.0.0`
    IPv4 only), so v4 and v6 can also be bound separately."""
    if host in (ANY, "*"):
        if socket.has_ipv6:
            try:
                return bind_listener("::", port, v6only=False)
            except OSError as exc:
                if exc.errno not in (errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL, errno.EPROTONOSUPPORT):
                    raise
        host = "0.0.0.0"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1 if v6only else 0)
        sock.bind((host, port))
        sock.listen(socket.SOMAXCONN)
    except OSError:
        sock.close()
        raise
    return sock


class Accepted:
    """One accepted connection as a handler sees it."""

    def __init__(self, acceptor: Acceptor, sock: socket.socket, addr: tuple[str, int]) -> None:
        self.sock = sock
        self.addr = addr
        self.since = time.monotonic()
        #: Set when the acceptor dropped this connection for a newcomer: stop serving it.
        self.dropped = False
        self._acceptor = acceptor
        # drop() runs in another thread than close(): once the number is closed it may be a new
        # socket's (another connection, another listener), which a late shutdown would cut.
        self._closing = threading.Lock()
        self._closed = False

    def settle(self) -> None:
        """The whole ClientHello is in and the connection is being served (relayed): from now
        on it is never dropped for a newcomer."""
        self._acceptor._settle(self)

    def drop(self) -> None:
        """Wake the handler's blocked read with end-of-file (shutdown): it then ends."""
        self.dropped = True
        with self._closing:
            if self._closed:
                return
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        """Close the connection (its handler's last act), never while drop() shuts it down."""
        with self._closing:
            self._closed = True
            self.sock.close()


class Acceptor:
    """Accept on *listeners*, running *handler(conn)* in a thread per connection, under *limits*.

    A newcomer beyond `max_clients` (or beyond `per_source` from its source address) takes the
    seat of the oldest connection that has not finished its head, which is dropped; it is
    refused only when every candidate is past its head (ualpn refuses every newcomer when
    full, which a handful of slow clients exploit).
    """

    def __init__(
        self,
        listeners: list[socket.socket],
        handler: Callable[[Accepted], None],
        *,
        limits: Limits,
        name: str = "wucme-acceptor",
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.listeners = listeners
        self.handler = handler
        self.limits = limits
        self.name = name
        self.log = log or (lambda message: None)
        self._admission: Admission[Accepted] = Admission(limits.max_clients, limits.per_source)
        self._report = DropReport(self.log)
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        for sock in listeners:
            sock.settimeout(0.2)

    def __len__(self) -> int:
        """Connections held now."""
        with self._lock:
            return len(self._admission)

    def start(self) -> None:
        for sock in self.listeners:
            t = threading.Thread(target=self._accept_loop, args=(sock,), name=self.name, daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        """Stop accepting, close active connections, and close the listeners.

        A listener is closed only once its thread has left accept() (each waits 0.2 s at
        most): closed under a call in progress it would keep listening inside that call while
        its number went to the next socket opened, whose connections that call would then
        take.  No shutdown() to hurry it: `wucme alpn`'s workers share their listeners."""
        self._stopping.set()
        accepting = dict(zip(self.listeners, self._threads))
        for t in self._threads:
            t.join(5)
        self._threads.clear()
        with self._lock:
            active = self._admission.held()
        for conn in active:
            conn.drop()
        for sock in self.listeners:
            thread = accepting.get(sock)
            if thread is None or not thread.is_alive():
                sock.close()

    def _accept_loop(self, listener: socket.socket) -> None:
        failures = FailedAccepts(self.log)
        while not self._stopping.is_set():
            try:
                sock, addr = listener.accept()
            except TimeoutError:
                continue
            except OSError as exc:  # EMFILE and friends: shed the oldest idle one, keep serving
                if self._stopping.is_set():
                    return
                failures.failed(exc)
                self._shed()
                time.sleep(0.05)
                continue
            failures.over()
            conn = self._admit(sock, addr)
            if conn is not None:
                self._spawn(conn)

    def _admit(self, sock: socket.socket, addr: tuple[str, int]) -> Accepted | None:
        """Seat a newly accepted connection, dropping whom it displaces; None when refused (closed)."""
        conn = Accepted(self, sock, (addr[0], addr[1]))
        with self._lock:
            victims = self._admission.admit(conn, source_key(addr[0]))
        if victims is None:
            self._report(addr[0], None)
            sock.close()
            return None
        for victim in victims:
            self._report(addr[0], f"from {victim.addr[0]}, {time.monotonic() - victim.since:.1f} s old")
            victim.drop()
        return conn

    def _spawn(self, conn: Accepted) -> None:
        """Serve *conn* in a thread of its own, its socket blocking."""
        conn.sock.settimeout(None)
        threading.Thread(target=self._run, args=(conn,), name=self.name, daemon=True).start()

    def _shed(self) -> None:
        with self._lock:
            victim = self._admission.oldest_idle()
            if victim is not None:
                self._admission.release(victim)
        if victim is not None:
            victim.drop()

    def _settle(self, conn: Accepted) -> None:
        with self._lock:
            self._admission.settle(conn)

    def _run(self, conn: Accepted) -> None:
        try:
            self.handler(conn)
        except Exception as exc:  # one bad connection must not stop the server
            self.log(f"{conn.addr[0]}: {type(exc).__name__}: {exc}")
        finally:
            with self._lock:
                self._admission.release(conn)
            conn.close()


def handshake(conn: SSL.Connection, sock: socket.socket, initial: bytes, deadline: float) -> None:
    """Complete a server handshake on memory-BIO *conn* over *sock*, with *initial* bytes already read.

    The deadline bounds the whole handshake, so a client trickling one byte at a time cannot hold
    a thread longer than that. Raises HandshakeFailed.
    """
    from OpenSSL import SSL

    if initial:
        conn.bio_write(initial)
    while True:
        try:
            conn.do_handshake()
            _flush(conn, sock, deadline)
            return
        except SSL.WantReadError:
            _flush(conn, sock, deadline)
        except SSL.Error as exc:
            try:
                _flush(conn, sock, deadline)  # send the alert, if any
            except HandshakeFailed:
                pass
            raise HandshakeFailed(f"TLS error: {exc}") from None
        data = _recv(sock, deadline)
        if not data:
            raise HandshakeFailed("connection closed during handshake")
        conn.bio_write(data)


def _recv(sock: socket.socket, deadline: float) -> bytes:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise HandshakeFailed("handshake timed out")
    sock.settimeout(remaining)
    try:
        return sock.recv(16384)
    except TimeoutError:
        raise HandshakeFailed("handshake timed out") from None
    except OSError as exc:
        raise HandshakeFailed(str(exc)) from None


def _flush(conn: SSL.Connection, sock: socket.socket, deadline: float) -> None:
    from OpenSSL import SSL

    while True:
        try:
            out = conn.bio_read(65536)
        except SSL.WantReadError:
            return
        if not out:
            return
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise HandshakeFailed("handshake timed out")
        sock.settimeout(remaining)
        try:
            sock.sendall(out)
        except OSError as exc:
            raise HandshakeFailed(str(exc)) from None


def close_tls(conn: SSL.Connection, sock: socket.socket, deadline: float) -> None:
    """Send close_notify and let the peer read it; errors here no longer matter."""
    from OpenSSL import SSL

    try:
        conn.shutdown()
    except SSL.Error:
        pass
    try:
        _flush(conn, sock, deadline)
    except HandshakeFailed:
        pass
