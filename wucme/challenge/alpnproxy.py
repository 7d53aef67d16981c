"""`wucme alpn` servers: the front end that answers or proxies each connection, and the control socket.

Each connection's ClientHello is read and parsed before anything is sent back (ualpn's
ACME_MAYBE state). A ClientHello offering ``acme-tls/1`` for an SNI with a pending auth gets the
validation handshake and is closed (RFC 8737 §3); every other connection is relayed untouched,
ClientHello included, to a backend, optionally behind a PROXY protocol header so the backend
still sees the client's address.

Concurrency, per process (`wucme alpn -n N` runs N of them on the same listening sockets): one
event loop thread accepts every connection and waits for its first bytes, as ualpn's libev loop
does.  When they are a whole ClientHello (read with MSG_PEEK, so nothing is consumed) offering
``acme-tls/1`` for a name with an auth, the loop runs the validation handshake itself, OpenSSL
reading and writing the socket directly (no thread, no memory BIO, two calls into OpenSSL).
Every other connection (a ClientHello in pieces, one to proxy, anything odd) is handed to a
thread of its own, which reads the ClientHello again from the start and serves it as before.
All of them are bounded by the listener limits of wucme.challenge._net.  After the ClientHello
a proxied connection is relayed in the kernel (splice(2), wucme._native.splice), both
directions in one call that holds no GIL.  Unlike
ualpn, whose 60 s inactivity timer restarts with every byte, a client has *hello_timeout* seconds for its whole ClientHello, and a full front end drops its
oldest connection still sending one rather than refusing the newcomer.
"""

from __future__ import annotations

import heapq
import ipaddress
import os
import selectors
import socket
import struct
import threading
import time
from collections.abc import Callable

from OpenSSL import SSL

from wucme._native import splice
from wucme.challenge._net import (Accepted, Acceptor, FailedAccepts, HandshakeFailed, Limits, close_tls,
                                  handshake, listen_limits)
from wucme.challenge.alpnauth import MAX_LINE, AuthTable, Log, handle_command
from wucme.challenge.clienthello import NOT_TLS, ClientHello, looks_like_tls, parse_client_hello
from wucme.challenge.tlsalpn import ACME_TLS_1

__all__ = ["AlpnProxy", "ControlServer", "proxy_header", "Backend"]

Backend = tuple[str, int]
#: ualpn's per-client inactivity limit (here: of a relayed connection).
CLIENT_IDLE = 60.0
#: The front end's limits unless the caller or WUCME_CLIENT_LIMIT, WUCME_ADDRESS_LIMIT and
#: WUCME_HELLO_TIMEOUT say otherwise; one address may hold a quarter (a NAT carries many users).
PROXY_LIMITS = Limits(max_clients=1024, per_source=256, head_timeout=10.0)
#: ualpn's control connection inactivity limit.
CONTROL_IDLE = 5.0
_PROXY_V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def proxy_header(version: int, src: tuple[str, int], dst: tuple[str, int]) -> bytes:
    """The PROXY protocol header (haproxy's proxy-protocol.txt, v1 text or v2 binary) for a TCP stream.

    *src* is the client as the front end saw it, *dst* the front end's own address.
    """
    if version == 0:
        return b""
    s_ip, d_ip = ipaddress.ip_address(src[0]), ipaddress.ip_address(dst[0])
    if s_ip.version != d_ip.version:
        raise ValueError("mixed IPv4/IPv6 addresses")
    if version == 1:
        proto = "TCP4" if s_ip.version == 4 else "TCP6"
        return f"PROXY {proto} {s_ip} {d_ip} {src[1]} {dst[1]}\r\n".encode("ascii")
    family = 0x11 if s_ip.version == 4 else 0x21  # AF_INET/AF_INET6 over STREAM
    body = s_ip.packed + d_ip.packed + struct.pack("!HH", src[1], dst[1])
    return _PROXY_V2_SIGNATURE + bytes([0x21, family]) + struct.pack("!H", len(body)) + body


class AlpnProxy:
    """The front end: route every accepted connection to the validation handshake or a backend."""

    def __init__(
        self,
        listeners: list[socket.socket],
        backends: list[Backend],
        table: AuthTable,
        *,
        proxy: int = 1,
        log: Log,
        idle: float = CLIENT_IDLE,
        hello_timeout: float | None = None,
        max_clients: int | None = None,
        per_source: int | None = None,
        on_loop: Callable[[], None] | None = None,
        native: bool | None = None,
    ) -> None:
        self.native = native
        self.backends = list(backends)
        self.table = table
        self.proxy = proxy
        self.log = log
        self.idle = idle
        self.limits = listen_limits(max_clients, per_source, hello_timeout, PROXY_LIMITS,
                                    lambda m: log("WARNING", m))
        self.hello_timeout = self.limits.head_timeout
        self.on_loop = on_loop or (lambda: None)
        self._rotate = threading.Lock()
        self._next_id = 0
        self._acceptor = _FrontLoop(self, listeners)

    def start(self) -> None:
        self._acceptor.start()

    @property
    def handed_off(self) -> int:
        """Connections handed to a thread of their own (every one the loop did not validate)."""
        return self._acceptor.handed_off

    def _new_client(self, client: Accepted) -> tuple[str, tuple[str, int]]:
        """The client's id and the front end's address, logged as ualpn's ``new client`` line."""
        sock, addr = client.sock, client.addr
        cid = f"{int.from_bytes(os.urandom(4), 'big'):08x}"
        local = sock.getsockname()[:2]
        self.log("NOTICE", f"new client {cid}: frontend connection to {local[0]}:{local[1]} "
                 f"from {addr[0]}:{addr[1]}")
        return cid, (local[0], local[1])

    def stop(self) -> None:
        self._acceptor.stop()

    def _serve(self, client: Accepted) -> None:
        """A connection the loop handed off, in its own thread: read the ClientHello (again,
        from the start: the loop only peeked), then validate or proxy."""
        sock, addr = client.sock, client.addr
        cid, local = self._new_client(client)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buffered, hello = self._read_hello(client, cid)
        if buffered is None:
            return
        if isinstance(hello, ClientHello) and ACME_TLS_1 in hello.alpn and hello.server_name:
            auth = self.table.get(hello.server_name)
            if auth is not None:
                self._validate(sock, cid, buffered, auth.context, auth.ident, auth.auth)
                return
            self.log("INFO", f"client {cid}: acme-tls/1 handshake: no auth for {hello.server_name}")
        client.settle()
        self._proxy(sock, cid, buffered, (addr[0], addr[1]), (local[0], local[1]))

    def _read_hello(self, client: Accepted, cid: str) -> tuple[bytes | None, object]:
        """Read until the ClientHello is complete or the stream is plainly not TLS, within
        *hello_timeout* seconds of the connection for the whole of it, however it trickles."""
        sock = client.sock
        deadline = client.since + self.hello_timeout
        buffered = b""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.log("INFO", f"client {cid}: no complete ClientHello in {self.hello_timeout:g} s, "
                         "closing")
                return None, None
            sock.settimeout(remaining)
            try:
                data = sock.recv(16384)
            except TimeoutError:
                continue
            except OSError:
                self.log("INFO", f"client {cid}: closing due to error")
                return None, None
            if client.dropped:
                self.log("INFO", f"client {cid}: dropped for a newer connection")
                return None, None
            if not data:
                if buffered:
                    return buffered, NOT_TLS  # a half-closed client still gets its bytes proxied
                self.log("INFO", f"client {cid}: connection closed by client")
                return None, None
            buffered += data
            if len(buffered) >= 3 and not looks_like_tls(buffered):
                return buffered, NOT_TLS
            hello = parse_client_hello(buffered)
            if hello is NOT_TLS or isinstance(hello, ClientHello):
                return buffered, hello

    def _validate(
        self, sock: socket.socket, cid: str, buffered: bytes, ctx: SSL.Context, ident: str, auth: str
    ) -> None:
        conn = SSL.Connection(ctx, None)
        conn.set_accept_state()
        deadline = time.monotonic() + self.hello_timeout
        try:
            handshake(conn, sock, buffered, deadline)
        except HandshakeFailed as exc:
            self.log("WARNING", f"client {cid}: acme-tls/1 handshake with auth {auth} for {ident} "
                     f"failed: {exc}")
            return
        self.log("NOTICE", f"client {cid}: acme-tls/1 handshake with auth {auth} for {ident} completed")
        close_tls(conn, sock, time.monotonic() + 1.0)

    def _connect_backend(self, cid: str, local: tuple[str, int]) -> socket.socket | None:
        """Connect to the first backend that answers, rotating the one used to the end (as ualpn)."""
        with self._rotate:
            order = list(self.backends)
        for backend in order:
            if _same_address(backend, local):
                self.log("CRIT", f"client {cid}: loop detected: connection back to self "
                         f"({backend[0]}:{backend[1]}), terminating")
                self.on_loop()
                return None
            for attempt in range(3):
                try:
                    back = socket.create_connection(backend, timeout=10)
                except OSError as exc:
                    if attempt == 2:
                        self.log("WARNING", f"client {cid}: backend failed to connect to "
                                 f"{backend[0]}:{backend[1]}: {exc}")
                    continue
                with self._rotate:
                    if backend in self.backends and self.backends[-1] != backend:
                        self.backends.remove(backend)
                        self.backends.append(backend)
                back.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                return back
        self.log("WARNING", f"client {cid}: all backend connections failed")
        return None

    def _proxy(
        self, sock: socket.socket, cid: str, buffered: bytes, peer: tuple[str, int], local: tuple[str, int]
    ) -> None:
        try:
            header = proxy_header(self.proxy, peer, local)
        except ValueError:
            self.log("WARNING", f"client {cid}: unsupported protocol")
            return
        back = self._connect_backend(cid, local)
        if back is None:
            return
        with back:
            self.log("INFO", f"client {cid}: proxying to {back.getpeername()[0]}:{back.getpeername()[1]}")
            relay(sock, back, header + buffered, self.idle, native=self.native)
        self.log("INFO", f"client {cid}: connection closed")


class _Pending:
    """A connection the loop holds: waiting for its first bytes, then in its validation handshake."""

    __slots__ = ("client", "fd", "deadline", "tls", "cid", "ident", "auth", "writing", "done")

    def __init__(self, client: Accepted, deadline: float) -> None:
        self.client = client
        self.fd = client.sock.fileno()
        self.deadline = deadline
        self.tls: SSL.Connection | None = None
        self.cid = ""
        self.ident = self.auth = ""
        self.writing = False
        self.done = False


class _FrontLoop(Acceptor):
    """`wucme alpn`'s acceptor: one selector loop per process, like ualpn's libev loop, that
    accepts, seats each connection under the listener limits (wucme.challenge._net), peeks at
    its first bytes and runs a validation handshake itself, OpenSSL on the socket.  Anything else
    goes to a thread of its own (Acceptor's way), so nothing slow ever runs in the loop: the
    loop only reads what is already there, and a client that sends nothing, half a ClientHello
    or a trickle costs it no more than a registered descriptor until its deadline or its drop."""

    def __init__(self, proxy: AlpnProxy, listeners: list[socket.socket]) -> None:
        super().__init__(listeners, proxy._serve, limits=proxy.limits, name="wucme-alpn",
                         log=lambda m: proxy.log("WARNING", m))
        self.proxy = proxy
        #: Connections handed to a thread (tests count them: a validation must not need one).
        self.handed_off = 0
        self._held: dict[int, _Pending] = {}
        self._deadlines: list[tuple[float, int, _Pending]] = []
        self._seq = 0
        self._failures = FailedAccepts(self.log)
        self._sel: selectors.BaseSelector | None = None

    def start(self) -> None:
        t = threading.Thread(target=self._loop, name=self.name, daemon=True)
        t.start()
        self._threads.append(t)

    def _loop(self) -> None:
        sel = self._sel = selectors.DefaultSelector()
        for listener in self.listeners:
            listener.setblocking(False)
            sel.register(listener, selectors.EVENT_READ, None)
        try:
            while not self._stopping.is_set():
                timeout = 0.2  # how soon stop() is noticed
                if self._deadlines:
                    timeout = min(timeout, max(0.0, self._deadlines[0][0] - time.monotonic()))
                for key, _ in sel.select(timeout):
                    if key.data is None:
                        self._accept(key.fileobj)  # type: ignore[arg-type]
                    elif not key.data.done:
                        self._step(key.data)
                self._expire()
        finally:
            for pending in list(self._held.values()):
                self._finish(pending)
            sel.close()

    def _accept(self, listener: socket.socket) -> None:
        """One connection per wake-up: the listener stays ready while more wait (level-triggered),
        and trying again until accept() fails would cost a failed system call per connection."""
        try:
            sock, addr = listener.accept()
        except BlockingIOError:  # another worker took it
            return
        except OSError as exc:  # EMFILE and friends: shed the oldest idle one, keep serving
            self._failures.failed(exc)
            self._shed()
            return
        self._failures.over()
        client = self._admit(sock, addr)
        if client is None:
            return
        sock.setblocking(False)
        pending = _Pending(client, client.since + self.proxy.hello_timeout)
        self._held[pending.fd] = pending
        assert self._sel is not None
        self._sel.register(sock, selectors.EVENT_READ, pending)
        self._schedule(pending)

    def _schedule(self, pending: _Pending) -> None:
        self._seq += 1
        heapq.heappush(self._deadlines, (pending.deadline, self._seq, pending))

    def _expire(self) -> None:
        now = time.monotonic()
        while self._deadlines and self._deadlines[0][0] <= now:
            deadline, _, pending = heapq.heappop(self._deadlines)
            if pending.done or pending.deadline != deadline:
                continue
            if pending.tls is None:
                self.proxy.log("INFO", f"client {self._cid(pending)}: no complete ClientHello in "
                               f"{self.proxy.hello_timeout:g} s, closing")
            else:
                self._failed(pending, "handshake timed out")
                continue
            self._finish(pending)

    def _step(self, pending: _Pending) -> None:
        if pending.tls is None:
            self._hello(pending)
        else:
            self._handshake(pending)

    def _hello(self, pending: _Pending) -> None:
        """Peek at what has arrived: a whole ClientHello for a name with an auth is validated
        here; anything else is handed off with its bytes still unread."""
        client = pending.client
        try:
            data = client.sock.recv(16384, socket.MSG_PEEK)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if client.dropped:
            self.proxy.log("INFO", f"client {self._cid(pending)}: dropped for a newer connection")
            self._finish(pending)
            return
        hello = parse_client_hello(data) if data else NOT_TLS
        if isinstance(hello, ClientHello) and ACME_TLS_1 in hello.alpn and hello.server_name:
            auth = self.proxy.table.get(hello.server_name, shared=False)
            if auth is not None:
                self._validate(pending, auth.context, auth.ident, auth.auth)
                return
        self._handoff(pending)

    def _validate(self, pending: _Pending, ctx: SSL.Context, ident: str, auth: str) -> None:
        client = pending.client
        if self._shows_notices():  # ualpn's NOTICE line; its id and address only when shown
            pending.cid = self.proxy._new_client(client)[0]
        client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        tls = SSL.Connection(ctx, client.sock)
        tls.set_accept_state()
        pending.tls, pending.ident, pending.auth = tls, ident, auth
        pending.deadline = time.monotonic() + self.proxy.hello_timeout
        self._schedule(pending)
        self._handshake(pending)

    def _handshake(self, pending: _Pending) -> None:
        tls = pending.tls
        assert tls is not None and self._sel is not None
        try:
            tls.do_handshake()
        except SSL.WantReadError:
            if pending.writing:
                pending.writing = False
                self._sel.modify(pending.client.sock, selectors.EVENT_READ, pending)
            return
        except SSL.WantWriteError:
            if not pending.writing:
                pending.writing = True
                self._sel.modify(pending.client.sock, selectors.EVENT_WRITE, pending)
            return
        except SSL.SysCallError as exc:
            eof = exc.args and exc.args[0] in (-1, 0)
            self._failed(pending, "connection closed during handshake" if eof else str(exc))
            return
        except SSL.Error as exc:
            self._failed(pending, f"TLS error: {exc}")
            return
        if self._shows_notices():
            self.proxy.log("NOTICE", f"client {self._cid(pending)}: acme-tls/1 handshake with auth "
                           f"{pending.auth} for {pending.ident} completed")
        # Closed without close_notify, as ualpn closes it: RFC 8737 §3 ends the connection at
        # the handshake, and the alert would cost a record and a write per validation.
        self._finish(pending)

    def _failed(self, pending: _Pending, why: str) -> None:
        self.proxy.log("WARNING", f"client {self._cid(pending)}: acme-tls/1 handshake with auth "
                       f"{pending.auth} for {pending.ident} failed: {why}")
        self._finish(pending)

    def _shows_notices(self) -> bool:
        """Whether NOTICE lines are shown (-v): a validation's lines are not even formatted else."""
        return bool(getattr(self.proxy.log, "verbose", 3) >= 1)

    @staticmethod
    def _cid(pending: _Pending) -> str:
        if not pending.cid:
            pending.cid = f"{int.from_bytes(os.urandom(4), 'big'):08x}"
        return pending.cid

    def _release(self, pending: _Pending) -> None:
        """Take *pending* out of the loop (not out of its seat).  Its deadline stays queued until
        due, so it lets go of its TLS state now: thousands of handshakes a second would
        otherwise hold each one's buffers for the whole hello timeout."""
        pending.done = True
        pending.tls = None
        del self._held[pending.fd]
        assert self._sel is not None
        try:
            self._sel.unregister(pending.client.sock)
        except (KeyError, ValueError):
            pass

    def _finish(self, pending: _Pending) -> None:
        self._release(pending)
        with self._lock:
            self._admission.release(pending.client)
        pending.client.close()

    def _handoff(self, pending: _Pending) -> None:
        self._release(pending)
        self.handed_off += 1
        self._spawn(pending.client)


def _same_address(backend: Backend, local: tuple[str, int]) -> bool:
    try:
        return ipaddress.ip_address(backend[0]) == ipaddress.ip_address(local[0]) and backend[1] == local[1]
    except ValueError:
        return False


def relay(front: socket.socket, back: socket.socket, to_back: bytes, idle: float,
          *, native: bool | None = None) -> None:
    """Send *to_back* (the PROXY header and the ClientHello already read), then copy bytes both
    ways until both sides finish, any side fails, or nothing moves for *idle* seconds.

    The copying is wucme._native.splice: splice(2) through a pipe per direction, the whole loop
    in C without the GIL where it was built, so no Python runs per byte (nor, natively, per
    chunk).  Half-closes are passed on (EOF from one side becomes shutdown(SHUT_WR) on the other).
    *native* False forces the pure twin (tests run both).
    """
    if to_back:
        back.settimeout(idle)
        try:
            back.sendall(to_back)
        except OSError:
            return
    splice.relay(front, back, idle, native=native)


class ControlServer:
    """ualpn's control interface on a unix socket: a thread per controller, 5 s idle limit."""

    def __init__(self, sock: socket.socket, table: AuthTable, log: Log,
                 on_change: Callable[[str], None] | None = None) -> None:
        self.sock = sock
        self.table = table
        self.log = log
        #: called with each command that changed the table (reply OK) before the reply is sent:
        #: `wucme alpn` hands it to its worker processes there.
        self.on_change = on_change
        self._change = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        sock.settimeout(0.2)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._accept_loop, name="wucme-alpn-control", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(5)
        self.sock.close()

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._stopping.is_set():
                    return
                time.sleep(0.05)
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        cid = f"{int.from_bytes(os.urandom(4), 'big'):08x}"
        self.log("NOTICE", f"new controller {cid}: handling connection")

        def log(level: str, message: str) -> None:
            self.log(level, f"controller {cid}: {message}")

        buf = b""
        with conn:
            conn.settimeout(CONTROL_IDLE)
            try:
                while True:
                    while b"\n" not in buf:
                        if len(buf) >= MAX_LINE - 1:
                            conn.sendall(b"ERR too long\n")
                            return
                        data = conn.recv(MAX_LINE)
                        if not data:
                            return
                        buf += data
                    line, _, buf = buf.partition(b"\n")
                    if len(line) >= MAX_LINE - 1:
                        conn.sendall(b"ERR too long\n")
                        return
                    with self._change:  # the workers see the commands in the master's order
                        reply = handle_command(self.table, line.decode("latin-1"), log)
                        if reply == "OK" and self.on_change is not None:
                            self.on_change(line.decode("latin-1"))
                    conn.sendall(reply.encode("ascii") + b"\n")
            except TimeoutError:
                log("INFO", "disconnecting due to timeout")
            except OSError:
                pass
            finally:
                log("INFO", "connection closed")
