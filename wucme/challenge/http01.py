"""http-01 (RFC 8555 §8.3): the WSGI application, the CGI entry and wucme's own listener.

One WSGI application answers in all three settings, and it answers by
wucme.challenge.answer, as the entry module's lean CGI answer does, so the web server's
script, wucme's listener and any WSGI server give byte-identical answers.
"""

from __future__ import annotations

import io
import os
import selectors
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import IO, Any
from urllib.parse import unquote

from wucme.challenge._net import (ANY, Admission, DropReport, FailedAccepts, Limits, bind_listener, listen_limits,
                                 source_key)
from wucme.challenge.answer import (CHALLENGE_PREFIX, NO_SUCH_TOKEN, SCRIPT_PREFIX, answer, cgi_head,
                                    cgi_write, challenge_token, failure)
from wucme.challenge.store import ChallengeStore

__all__ = [
    "CHALLENGE_PREFIX",
    "SCRIPT_PREFIX",
    "NO_SUCH_TOKEN",
    "challenge_token",
    "make_wsgi_app",
    "cgi_main",
    "Http01Listener",
]

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def make_wsgi_app(store: ChallengeStore) -> WsgiApp:
    """A WSGI application answering http-01 challenges from *store* (wucme.challenge.answer)."""

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        status, headers, body = answer(str(environ.get("REQUEST_METHOD", "GET")), challenge_token(environ),
                                       store.get)
        start_response(status, headers)
        return [body]

    return app


# -- CGI (RFC 3875) ----------------------------------------------------------------------------


def run_cgi(
    app: Callable[..., Iterable[bytes]],
    environ: Mapping[str, str] | None = None,
    stdin: IO[bytes] | None = None,
    stdout: IO[bytes] | None = None,
) -> int:
    """Run a WSGI application once as a CGI script (RFC 3875 §6.3.3: a Status header field, not
    a status line).  An unexpected failure answers 500 with a VMS message, never a traceback:
    the server shows the script's output to the client."""
    env: dict[str, Any] = dict(os.environ if environ is None else environ)
    out = stdout if stdout is not None else sys.stdout.buffer
    env.setdefault("SCRIPT_NAME", "")
    env.setdefault("PATH_INFO", "")
    if stdin is None:  # a real CGI request's body is our stdin (RFC 3875 §4.2)
        stdin = sys.stdin.buffer if environ is None and sys.stdin is not None else io.BytesIO()
    env["wsgi.input"] = stdin
    env["wsgi.errors"] = sys.stderr
    env["wsgi.version"] = (1, 0)
    env["wsgi.url_scheme"] = "https" if env.get("HTTPS", "").lower() in ("on", "1") else "http"
    env["wsgi.multithread"] = env["wsgi.multiprocess"] = False
    env["wsgi.run_once"] = True
    head: list[bytes] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        head[:] = [cgi_head(status, headers)]

    try:
        body = b"".join(app(env, start_response))
    except Exception as e:  # noqa: BLE001 - the server shows our output; never a traceback
        status, headers, body = failure(e)  # e.g. %WUCME-E-INSECURE, a table
        start_response(status, headers)
    return cgi_write(out, head[0] + body)


def cgi_main(
    environ: Mapping[str, str] | None = None,
    stdin: IO[bytes] | None = None,
    stdout: IO[bytes] | None = None,
    store: ChallengeStore | None = None,
) -> int:
    """The challenge application alone as a CGI script (the `wucme` image routes through
    wucme.web, which adds the admin pages)."""
    return run_cgi(make_wsgi_app(store or ChallengeStore()), environ, stdin, stdout)


# -- wucme's own listener (WUCME_HTTP01, `check /http01`) ---------------------------------------


class _Client:
    __slots__ = ("sock", "peer", "deadline", "inbuf", "outbuf", "answered")

    def __init__(self, sock: socket.socket, peer: str, deadline: float) -> None:
        self.sock = sock
        self.peer = peer
        self.deadline = deadline
        self.inbuf = bytearray()
        self.outbuf = b""
        self.answered = False


#: The listener's limits unless the caller or WUCME_CLIENT_LIMIT, WUCME_ADDRESS_LIMIT and
#: WUCME_HELLO_TIMEOUT say otherwise.
HTTP01_LIMITS = Limits(max_clients=1024, per_source=256, head_timeout=10.0)
#: Out of descriptors with no connection to drop for the one waiting, the listener stops
#: watching its socket for this many seconds rather than try accept() again at once: Linux
#: fails it (EMFILE) before it looks at the queue, so each try would fail until one is free.
ACCEPT_PAUSE = 0.25


class Http01Listener:
    """A small HTTP/1.1 server for http-01 alone: one request per connection, then close.

    One thread multiplexes all connections with selectors, so idle or trickling clients cost a
    file descriptor each, not a thread: every connection gets *timeout* seconds in total to send
    its request head (at most *max_head* bytes); past *max_clients* connections (or *per_source*
    from one address) the oldest one still sending its head is dropped for the newcomer, so a
    crowd of slowloris connections never starves a real validation (wucme.challenge._net).
    """

    def __init__(
        self,
        store: ChallengeStore,
        host: str = ANY,
        port: int = 80,
        *,
        timeout: float | None = None,
        max_head: int = 8192,
        max_clients: int | None = None,
        per_source: int | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.store = store
        self.app = make_wsgi_app(store)
        self.log = log or (lambda message: None)
        self.limits = listen_limits(max_clients, per_source, timeout, HTTP01_LIMITS, self.log)
        self.timeout = self.limits.head_timeout
        self.max_head = max_head
        self.max_clients = self.limits.max_clients
        self._admission: Admission[_Client] = Admission(self.limits.max_clients, self.limits.per_source)
        self._report = DropReport(self.log)
        self._listener = bind_listener(host, port)  # no address: both families (one dual-stack socket)
        self._listener.setblocking(False)
        self.host, self.port = self._listener.getsockname()[:2]
        self._wake_r, self._wake_w = socket.socketpair()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._clients: dict[int, _Client] = {}
        self._lock = threading.Lock()  # serving begins, or stop() closes the sockets, not both
        self._serving = False
        self._accept_failures = FailedAccepts(self.log)
        self._paused_until: float | None = None  # the listener's socket not watched until then

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port); the port is the real one when 0 was asked for."""
        return self.host, self.port

    def start(self) -> Http01Listener:
        """Serve in a background thread (the `issue` case).  The selector is made here, in the
        caller's thread, so a failure (no descriptor left) is raised to the caller, not lost
        with a thread that would leave a listener looking alive and answering nothing."""
        sel = self._open()
        if sel is not None:
            self._thread = threading.Thread(target=self._serve, args=(sel,), name="wucme-http01", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every socket (also those of a listener never started); safe
        to call twice."""
        with self._lock:
            self._stopping.set()
            if not self._serving:
                self._close_sockets()
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5)
        self._thread = None

    def __enter__(self) -> Http01Listener:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """Serve until `stop` (the `check /http01` foreground case); OSError when it cannot."""
        sel = self._open()
        if sel is not None:
            self._serve(sel)

    def _open(self) -> selectors.BaseSelector | None:
        """The selector watching the listener and the wake-up socket; None when stopped already.
        A failure is logged, closes the sockets and is raised."""
        with self._lock:
            if self._stopping.is_set():
                return None
            sel: selectors.BaseSelector | None = None
            try:
                sel = selectors.DefaultSelector()
                sel.register(self._listener, selectors.EVENT_READ, None)
                sel.register(self._wake_r, selectors.EVENT_READ, None)
            except OSError as exc:
                self.log(f"cannot serve on port {self.port}: {exc}")
                if sel is not None:
                    sel.close()
                self._stopping.set()
                self._close_sockets()
                raise
            self._serving = True
            return sel

    def _close_sockets(self) -> None:
        self._listener.close()
        self._wake_r.close()
        self._wake_w.close()

    def _serve(self, sel: selectors.BaseSelector) -> None:
        try:
            while not self._stopping.is_set():
                now = time.monotonic()
                deadlines = [c.deadline for c in self._clients.values()]
                if self._paused_until is not None:
                    deadlines.append(self._paused_until)
                wait = min(deadlines, default=now + 1.0) - now
                for key, events in sel.select(max(0.0, min(wait, 1.0))):
                    if key.fileobj is self._listener:
                        self._accept(sel)
                    elif key.fileobj is self._wake_r:
                        self._wake_r.recv(64)
                    else:
                        self._service(sel, key.data, events)
                now = time.monotonic()
                if self._paused_until is not None and self._paused_until <= now:
                    self._paused_until = None
                    sel.register(self._listener, selectors.EVENT_READ, None)
                self._expire(sel, now)
        finally:
            for client in list(self._clients.values()):
                self._close(sel, client)
            sel.close()
            self._close_sockets()

    def _accept(self, sel: selectors.BaseSelector) -> None:
        for _ in range(64):
            try:
                sock, addr = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                self._accept_failures.over()  # a descriptor was free and nothing waits
                return
            except OSError as exc:  # EMFILE and friends: shed load, keep serving
                self._accept_failures.failed(exc)
                victim = self._admission.oldest_idle() or next(iter(self._admission.held()), None)
                if victim is not None:
                    self._close(sel, victim)
                else:  # nothing to free a descriptor: wait for one instead of failing at once again
                    sel.unregister(self._listener)
                    self._paused_until = time.monotonic() + ACCEPT_PAUSE
                return
            client = _Client(sock, f"{addr[0]}:{addr[1]}", time.monotonic() + self.timeout)
            victims = self._admission.admit(client, source_key(addr[0]))
            if victims is None:
                self._report(addr[0], None)
                sock.close()
                continue
            for victim in victims:
                self._report(addr[0], f"from {victim.peer}")
                self._close(sel, victim)
            sock.setblocking(False)
            self._clients[sock.fileno()] = client
            sel.register(sock, selectors.EVENT_READ, client)

    def _service(self, sel: selectors.BaseSelector, client: _Client, events: int) -> None:
        try:
            if events & selectors.EVENT_READ and not client.answered:
                data = client.sock.recv(4096)
                if not data:
                    self._close(sel, client)
                    return
                client.inbuf += data
                self._maybe_answer(sel, client)
            if client.answered and client.outbuf:
                sent = client.sock.send(client.outbuf)
                client.outbuf = client.outbuf[sent:]
            if client.answered and not client.outbuf:
                self._close(sel, client)
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            self._close(sel, client)

    def _maybe_answer(self, sel: selectors.BaseSelector, client: _Client) -> None:
        end = client.inbuf.find(b"\r\n\r\n")
        if end < 0:
            end = client.inbuf.find(b"\n\n")
        if end < 0:
            if len(client.inbuf) > self.max_head:
                self._answer(sel, client, _simple(431, "Request Header Fields Too Large"))
            return
        if end > self.max_head:
            self._answer(sel, client, _simple(431, "Request Header Fields Too Large"))
            return
        self._answer(sel, client, self._handle(bytes(client.inbuf[:end]), client.peer))

    def _handle(self, head: bytes, peer: str) -> bytes:
        """Turn one request head into a response by way of the WSGI application."""
        try:
            request_line = head.split(b"\n", 1)[0].decode("latin-1").rstrip("\r")
            method, target, version = request_line.split(" ")
        except ValueError:
            return _simple(400, "Bad Request")
        if not version.startswith("HTTP/1.") or not method.isalpha():
            return _simple(400, "Bad Request")
        if "://" in target:  # absolute-form (RFC 9112 §3.2.2)
            target = "/" + target.split("://", 1)[1].partition("/")[2]
        path = target.split("?", 1)[0]
        environ: dict[str, Any] = {
            "REQUEST_METHOD": method,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote(path, encoding="latin-1"),
            "QUERY_STRING": target.partition("?")[2],
            "SERVER_PROTOCOL": version,
            "REMOTE_ADDR": peer.rsplit(":", 1)[0],
            "wsgi.input": io.BytesIO(),
            "wsgi.errors": sys.stderr,
            "wsgi.url_scheme": "http",
        }
        status_headers: list[Any] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
            status_headers[:] = [status, headers]

        body = b"".join(self.app(environ, start_response))
        status, headers = status_headers
        self.log(f"{peer} {method} {path[:200]} {status.split()[0]}")
        lines = [f"HTTP/1.1 {status}"] + [f"{k}: {v}" for k, v in headers] + ["Connection: close"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body

    def _answer(self, sel: selectors.BaseSelector, client: _Client, response: bytes) -> None:
        self._admission.settle(client)
        client.answered = True
        client.outbuf = response
        client.deadline = time.monotonic() + self.timeout
        sel.modify(client.sock, selectors.EVENT_WRITE, client)

    def _expire(self, sel: selectors.BaseSelector, now: float) -> None:
        for client in [c for c in self._clients.values() if c.deadline <= now]:
            self._close(sel, client)

    def _close(self, sel: selectors.BaseSelector, client: _Client) -> None:
        self._admission.release(client)
        self._clients.pop(client.sock.fileno(), None)
        try:
            sel.unregister(client.sock)
        except (KeyError, ValueError):
            pass
        client.sock.close()


def _simple(code: int, reason: str) -> bytes:
    body = f"{reason}.".encode()
    return (
        f"HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
        f"Connection: close\r\n\r\n"
    ).encode() + body
