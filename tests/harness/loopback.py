"""Small servers on loopback served by a daemon thread: one start/stop for the harness's own servers.

The webroot, the fault proxy and the OCSP responder are each an http.server run in a
thread of the test process; ualpn's backend sink is a plain socketserver run the same way.
"""
from __future__ import annotations

import errno
import socket
import socketserver
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from harness.ports import await_port_free

__all__ = ["ServerThread", "OwnedHTTPServer", "LoopbackHTTPService", "PORT_WAIT", "stop_accepting"]

#: Seconds a responder waits for a port named in advance that somebody else holds.
PORT_WAIT = 20.0


def stop_accepting(listener: socket.socket, thread: threading.Thread,
                   stop: threading.Event | None = None) -> None:
    """End *thread*, which accepts on *listener*, and only then close the listener.

    Closed first, a listener lives on inside an accept() another thread is in (or just
    entering: the number is read before the call), still listening on its port, while its
    number goes to the next socket opened: that call then takes the connections of a later
    test's server (a CA's validation reads a bare "EOF") or keeps its port bound ("Address
    already in use").  shutdown() ends a blocked accept() and fails every later one."""
    if stop is not None:
        stop.set()
    try:
        listener.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    thread.join(30)
    if thread.is_alive():
        raise RuntimeError(f"{thread.name} still accepting on {listener!r} after 30 s; not closed")
    listener.close()


class ServerThread:
    """`server` served by a daemon thread from construction until stop().

    serve_forever() polls every 0.1 s so that stop() returns promptly; a `name`
    names the thread after the port as well, for tracebacks and thread dumps.
    """

    def __init__(self, server: socketserver.TCPServer, name: str | None = None) -> None:
        self.server = server
        self.port = int(server.server_address[1])
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"{name}-{self.port}" if name else None, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving, close the listening socket, give the thread 5 s to end."""
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)


class OwnedHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server whose handlers reach the service running it as `server.owner`."""

    daemon_threads = True
    owner: Any


class LoopbackHTTPService:
    """start() / stop() / `with` for an HTTP service on `host`:`port`, served by a ServerThread.

    A subclass names its `_server_class`, `_handler_class` and `_thread_name`.  Port 0
    means a free port; the port bound is kept, so start() after stop() serves the same URL.
    """

    _server_class: type[OwnedHTTPServer]
    _handler_class: type[BaseHTTPRequestHandler]
    _thread_name: str

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._serving: ServerThread | None = None

    def _bind(self) -> OwnedHTTPServer:
        """Bind the listening socket (where a subclass prepares, or words a failure its way).

        A port named in advance (a CA's http-01 port) that somebody else holds is waited
        for a while; the failure then says who held it."""
        try:
            return self._server_class((self.host, self.port), self._handler_class)
        except OSError as e:
            if e.errno != errno.EADDRINUSE or not self.port:
                raise
            held = await_port_free(self.port, PORT_WAIT, self.host)
            try:
                return self._server_class((self.host, self.port), self._handler_class)
            except OSError as again:
                raise OSError(again.errno, f"{again.strerror}: {self.host}:{self.port} {held}") from e

    def start(self) -> Self:
        """Bind (a free port unless one was given) and serve; a no-op while serving."""
        if self._serving is None:
            srv = self._bind()
            srv.owner = self
            self.port = int(srv.server_address[1])  # final before the first request can arrive
            self._serving = ServerThread(srv, self._thread_name)
        return self

    def stop(self) -> None:
        """Stop serving (connections are then refused; start() again binds the same port); idempotent."""
        serving, self._serving = self._serving, None
        if serving:
            serving.stop()

    def running(self) -> bool:
        return self._serving is not None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
