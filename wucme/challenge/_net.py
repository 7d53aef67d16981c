"""Threaded TCP acceptors and a deadline-bounded TLS handshake shared by the tls-alpn-01 responders."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

from OpenSSL import SSL

__all__ = ["Acceptor", "bind_listener", "handshake", "HandshakeFailed"]


class HandshakeFailed(Exception):
    """The peer closed, stalled past the deadline, or broke the TLS protocol."""


def bind_listener(host: str, port: int, *, v6only: bool = True) -> socket.socket:
    """A listening TCP socket; IPv6 sockets are v6-only so that v4 and v6 can be bound separately."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6 and v6only:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, port))
        sock.listen(socket.SOMAXCONN)
    except OSError:
        sock.close()
        raise
    return sock


class Acceptor:
    """Accept on *listeners*, running *handler(sock, addr)* in a thread per connection.

    At most *max_clients* connections are served at once; a connection beyond that is closed at
    once (as ualpn drops one when every worker is busy) rather than queued behind stalled ones.
    """

    def __init__(
        self,
        listeners: list[socket.socket],
        handler: Callable[[socket.socket, tuple[str, int]], None],
        *,
        max_clients: int = 512,
        name: str = "wucme-acceptor",
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.listeners = listeners
        self.handler = handler
        self.name = name
        self.log = log or (lambda message: None)
        self._slots = threading.BoundedSemaphore(max_clients)
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._active: set[socket.socket] = set()
        self._lock = threading.Lock()
        for sock in listeners:
            sock.settimeout(0.2)

    def start(self) -> None:
        for sock in self.listeners:
            t = threading.Thread(target=self._accept_loop, args=(sock,), name=self.name, daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        """Stop accepting, close active connections, and close the listeners."""
        self._stopping.set()
        for t in self._threads:
            t.join(5)
        self._threads.clear()
        with self._lock:
            active = list(self._active)
        for sock in active:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for sock in self.listeners:
            sock.close()

    def _accept_loop(self, listener: socket.socket) -> None:
        while not self._stopping.is_set():
            try:
                sock, addr = listener.accept()
            except TimeoutError:
                continue
            except OSError as exc:
                if self._stopping.is_set():
                    return
                self.log(f"accept failed: {exc}")
                time.sleep(0.05)
                continue
            if not self._slots.acquire(blocking=False):
                self.log(f"too many connections, dropping {addr[0]}")
                sock.close()
                continue
            sock.settimeout(None)
            with self._lock:
                self._active.add(sock)
            threading.Thread(target=self._run, args=(sock, addr), name=self.name, daemon=True).start()

    def _run(self, sock: socket.socket, addr: tuple[str, int]) -> None:
        try:
            self.handler(sock, addr)
        except Exception as exc:  # one bad connection must not stop the server
            self.log(f"{addr[0]}: {type(exc).__name__}: {exc}")
        finally:
            with self._lock:
                self._active.discard(sock)
            sock.close()
            self._slots.release()


def handshake(conn: SSL.Connection, sock: socket.socket, initial: bytes, deadline: float) -> None:
    """Complete a server handshake on memory-BIO *conn* over *sock*, with *initial* bytes already read.

    The deadline bounds the whole handshake, so a client trickling one byte at a time cannot hold
    a thread longer than that. Raises HandshakeFailed.
    """
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
    try:
        conn.shutdown()
    except SSL.Error:
        pass
    try:
        _flush(conn, sock, deadline)
    except HandshakeFailed:
        pass
