"""A real forward HTTP proxy on loopback (CONNECT tunnels, absolute-form requests), for tests
that check which requests a client sends through a proxy (libcurl's https_proxy, no_proxy...)."""
from __future__ import annotations

import select
import socket
import socketserver
import threading
from typing import Any, Self
from urllib.parse import urlsplit

from harness.loopback import ServerThread

__all__ = ["ConnectProxy"]


class _Handler(socketserver.BaseRequestHandler):
    server: "_Server"

    def handle(self) -> None:
        client: socket.socket = self.request
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = client.recv(65536)
            if not chunk:
                return
            data += chunk
        line = data.split(b"\r\n", 1)[0].decode("latin-1")
        self.server.owner._record(line)
        method, target, _ = line.split(" ", 2)
        try:
            if method == "CONNECT":
                host, _, port = target.rpartition(":")
                upstream = socket.create_connection((host.strip("[]"), int(port)), timeout=10)
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                rest = data.split(b"\r\n\r\n", 1)[1]
                if rest:
                    upstream.sendall(rest)
            else:
                parts = urlsplit(target)
                upstream = socket.create_connection((parts.hostname or "", parts.port or 80),
                                                    timeout=10)
                upstream.sendall(data)
        except OSError:
            client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            return
        with upstream:
            peers = {client: upstream, upstream: client}
            while True:
                ready, _, _ = select.select(list(peers), [], [], 30)
                if not ready:
                    return
                for s in ready:
                    try:
                        chunk = s.recv(65536)
                    except OSError:
                        return
                    if not chunk:
                        return
                    peers[s].sendall(chunk)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: "ConnectProxy"


class ConnectProxy:
    """`with ConnectProxy() as p:` a proxy at p.url (http://127.0.0.1:PORT); p.requests holds
    each connection's request line ("CONNECT host:port HTTP/1.1", "GET http://... HTTP/1.1")."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.requests: list[str] = []
        self._lock = threading.Lock()
        server = _Server((host, port), _Handler)
        server.owner = self
        self.port = int(server.server_address[1])
        self.url = f"http://{host}:{self.port}"
        self._thread = ServerThread(server, "connect-proxy")

    def _record(self, line: str) -> None:
        with self._lock:
            self.requests.append(line)

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()

    def stop(self) -> None:
        self._thread.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
