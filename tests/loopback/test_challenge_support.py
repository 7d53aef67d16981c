"""Shared helpers for the challenge responder tests (no tests here): backends, processes, clients."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from harness.loopback import stop_accepting
from harness.ports import free_port
from wucme.challenge.tlsalpn import make_self_signed

REPO = Path(__file__).resolve().parents[2]


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def write_self_signed(directory: Path, name: str = "backend.test") -> Path:
    """A PEM file with a self-signed certificate followed by its key."""
    cert, key = make_self_signed(name)
    path = directory / f"{name}.pem"
    path.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return path


class TlsBackend:
    """The real server behind `wucme alpn`: reads an optional PROXY v1 line, then speaks TLS."""

    def __init__(self, pem: Path, expect_proxy: bool = True) -> None:
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(pem)
        self.expect_proxy = expect_proxy
        self.headers: list[bytes] = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        try:
            if self.expect_proxy:
                header = b""
                while not header.endswith(b"\r\n"):
                    byte = conn.recv(1)
                    if not byte:
                        return
                    header += byte
                self.headers.append(header)
            with self.ctx.wrap_socket(conn, server_side=True) as tls:
                request = tls.recv(4096)
                tls.sendall(b"backend says hello to " + request.split(b"\r\n")[0])
        except (OSError, ssl.SSLError):
            pass
        finally:
            conn.close()

    def close(self) -> None:
        stop_accepting(self.sock, self._thread, self._stop)


def tls_get(port: int, server_name: str, alpn: list[str] | None = None) -> tuple[bytes, str | None]:
    """A plain TLS client through the front end: (reply, negotiated ALPN)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(alpn)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=server_name) as tls:
            tls.sendall(b"GET / HTTP/1.0\r\n\r\n")
            data = b""
            while True:
                chunk = tls.recv(4096)
                if not chunk:
                    break
                data += chunk
            return data, tls.selected_alpn_protocol()


def s_client(port: int, args: list[str], host: str = "127.0.0.1") -> tuple[str, x509.Certificate | None]:
    """Run the real `openssl s_client`; return its output and the certificate it was shown."""
    p = subprocess.run(
        ["openssl", "s_client", "-connect", f"[{host}]:{port}" if ":" in host else f"{host}:{port}", *args],
        input=b"", capture_output=True, timeout=20,
    )
    out = p.stdout.decode("utf-8", "replace")
    start = out.find("-----BEGIN CERTIFICATE-----")
    cert = None
    if start >= 0:
        end = out.index("-----END CERTIFICATE-----", start) + len("-----END CERTIFICATE-----")
        cert = x509.load_pem_x509_certificate(out[start:end].encode())
    return out, cert


def python_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


PYTHON = sys.executable


#: The start of a TLS ClientHello that announces 512 bytes and so never ends when trickled.
TLS_HEAD = bytes.fromhex("160301020001000200") + b"\x03\x03" + bytes(range(32)) * 16
#: The start of an HTTP request head that never ends when trickled.
HTTP_HEAD = b"GET /.well-known/acme-challenge/" + b"A" * 4000


def connect_from(source: str, port: int, timeout: float = 5.0) -> socket.socket:
    """A TCP connection to 127.0.0.1:*port* from loopback address *source* (all of 127/8 is ours)."""
    return socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(source, 0))


def is_dropped(sock: socket.socket, wait: float = 0.2) -> bool:
    """True when the server has closed *sock* (end of file or reset), False while it holds it."""
    sock.settimeout(wait)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except OSError:
        return True


class Trickle:
    """The slow-client attack: *count* connections from *source*, each sending one more byte of
    a head that never ends every *interval* seconds, and reconnecting *pause* seconds after the
    server drops it, until `stop`.  One thread drives them all."""

    def __init__(self, port: int, head: bytes, count: int = 200, interval: float = 1.0,
                 source: str = "127.0.0.2", pause: float = 0.5) -> None:
        self.port, self.head, self.count = port, head, count
        self.interval, self.source, self.pause = interval, source, pause
        self.connects = 0
        self.drops = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="trickle", daemon=True)

    def __enter__(self) -> Trickle:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _connect(self) -> socket.socket | None:
        try:
            s = connect_from(self.source, self.port, timeout=2)
        except OSError:
            return None
        s.setblocking(False)
        self.connects += 1
        return s

    def _run(self) -> None:
        import selectors

        sel = selectors.DefaultSelector()
        sent: dict[socket.socket, int] = {}
        due: list[float] = []  # reconnection times
        for _ in range(self.count):
            s = self._connect()
            if s is None:
                due.append(time.monotonic() + self.pause)
                continue
            sent[s] = 0
            sel.register(s, selectors.EVENT_READ)
        next_byte = time.monotonic() + self.interval
        try:
            while not self._stop.is_set():
                for key, _ in sel.select(timeout=0.05):
                    s = key.fileobj
                    assert isinstance(s, socket.socket)
                    try:
                        gone = s.recv(4096) == b""
                    except BlockingIOError:
                        gone = False
                    except OSError:
                        gone = True
                    if gone:
                        self._lost(sel, sent, due, s)
                now = time.monotonic()
                if now >= next_byte:
                    next_byte = now + self.interval
                    for s in list(sent):
                        try:
                            s.send(self.head[sent[s] % len(self.head):][:1])
                            sent[s] += 1
                        except OSError:
                            self._lost(sel, sent, due, s)
                while due and due[0] <= now and not self._stop.is_set():
                    due.pop(0)
                    s = self._connect()
                    if s is None:
                        due.append(now + self.pause)
                        break
                    sent[s] = 0
                    sel.register(s, selectors.EVENT_READ)
        finally:
            for s in sent:
                s.close()
            sel.close()

    def _lost(self, sel: Any, sent: dict[socket.socket, int], due: list[float], s: socket.socket) -> None:
        self.drops += 1
        sel.unregister(s)
        del sent[s]
        s.close()
        due.append(time.monotonic() + self.pause)


def slow_head(port: int, head: bytes, every: float = 0.5, limit: float = 10.0,
              source: str = "127.0.0.1") -> float:
    """Send *head* one byte every *every* seconds until the server closes the connection; the
    seconds that took (or *limit* when it never did)."""
    start = time.monotonic()
    with connect_from(source, port) as s:
        for byte in head:
            if time.monotonic() - start >= limit:
                break
            try:
                s.send(bytes([byte]))
            except OSError:
                return time.monotonic() - start
            if is_dropped(s, every):
                return time.monotonic() - start
    return limit
