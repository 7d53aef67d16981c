"""An HTTPS reverse proxy in front of Pebble that injects what Pebble 2.4.0 cannot do.

Pebble 2.4.0 has no ARI (RFC 9773), no Retry-After, no profiles, and never answers
429 or 5xx on purpose; tests reach those paths through this proxy instead.  Rules
inject responses (or rewrite forwarded ones); everything else goes to Pebble.

Why the Host header is passed through unchanged: Pebble checks that a JWS's
protected "url" equals https://<request Host><RequestURI> (RFC 8555 section 6.4,
wfe.go verifyPOST in 2.4.0), and builds every URL it returns from the same Host.
With Host = the proxy's host:port, signed requests verify and Pebble's own URLs
already name the proxy; the body rewrite below is only a safety net.
"""
from __future__ import annotations

import base64
import http.client
import json
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any, Callable, Mapping

from harness.loopback import LoopbackHTTPService, OwnedHTTPServer
from harness.pebble import Pebble, TestCA

__all__ = ["DRIP", "DROP", "FaultProxy", "ProxyRequest", "Rule", "Reply", "problem", "match_path"]

#: (status, headers, body) of a response the proxy sends.
Reply = tuple[int, dict[str, str], bytes]
#: A reply with this status closes the connection without answering (a CA that drops it).
DROP = 0
#: A reply header (never sent) asking for the response one byte every so many seconds.
DRIP = "X-Proxy-Drip-Seconds"
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
               "trailer", "trailers", "transfer-encoding", "upgrade", "content-length"}


def _b64url_json(part: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)) or b"null")


@dataclass
class ProxyRequest:
    """One request the proxy received, and what it answered."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    time: float
    status: int = 0
    injected: bool = False
    response_headers: dict[str, str] = field(default_factory=dict)
    response_body: bytes = b""

    def json(self) -> Any:
        return json.loads(self.body)

    def jws_protected(self) -> dict[str, Any]:
        """The decoded protected header of a flattened JWS body (RFC 8555 section 6.2)."""
        result: dict[str, Any] = _b64url_json(self.json()["protected"])
        return result

    def jws_payload(self) -> Any:
        """The decoded payload; None for POST-as-GET (empty payload, RFC 8555 section 6.3)."""
        payload = self.json()["payload"]
        return _b64url_json(payload) if payload else None


@dataclass
class Rule:
    """Inject `respond(req)` for requests where `match(method, path, body)` is true.

    `respond` may return None to forward the request after all; `rewrite`, if set,
    may change the forwarded response.  After `times` matches (None: unlimited) the
    rule retires.  `hits` counts matches.
    """

    match: Callable[[str, str, bytes], bool]
    respond: Callable[[ProxyRequest], Reply | None] | None = None
    rewrite: Callable[[ProxyRequest, int, dict[str, str], bytes], Reply] | None = None
    times: int | None = None
    hits: int = 0

    def live(self) -> bool:
        return self.times is None or self.hits < self.times


def problem(status: int, type_: str, detail: str, retry_after: str | int | None = None,
            extra: Mapping[str, Any] | None = None) -> Callable[[ProxyRequest], Reply]:
    """A responder returning an RFC 7807 problem (`type_` without the ACME URN is fine)."""
    if ":" not in type_:
        type_ = f"urn:ietf:params:acme:error:{type_}"
    doc = {"type": type_, "detail": detail, "status": status, **(extra or {})}
    headers = {"Content-Type": "application/problem+json"}
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    body = json.dumps(doc).encode()
    return lambda _req: (status, dict(headers), body)


def match_path(method: str | None, prefix: str) -> Callable[[str, str, bytes], bool]:
    """A matcher for requests whose path starts with `prefix` (and method, if given)."""
    return lambda m, p, _b: (method is None or m == method) and p.startswith(prefix)


class _Handler(BaseHTTPRequestHandler):
    server: "_ProxyServer"
    protocol_version = "HTTP/1.1"

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        req = ProxyRequest(self.command, self.path, {k: v for k, v in self.headers.items()},
                           body, time.monotonic())
        status, headers, out = self.server.owner._serve(req)
        req.status, req.response_headers, req.response_body = status, headers, out
        if status == DROP:
            self.close_connection = True
            return
        drip = float(headers.pop(DRIP, 0) or 0)
        if drip:
            self._drip(status, headers, out, drip)
            return
        self.send_response(status)
        for k, v in headers.items():
            # send_response() already wrote this server's Date and Server.
            if k.lower() not in _HOP_BY_HOP and k.lower() not in ("date", "server"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(out)

    def _drip(self, status: int, headers: dict[str, str], out: bytes, interval: float) -> None:
        """The whole response, one byte every `interval` seconds, until the client gives up."""
        head = [f"HTTP/1.1 {status} X"] + [f"{k}: {v}" for k, v in headers.items()
                                           if k.lower() not in _HOP_BY_HOP]
        data = ("\r\n".join(head + [f"Content-Length: {len(out)}", "", ""])).encode() + out
        self.close_connection = True
        for i in range(len(data)):
            try:
                self.wfile.write(data[i:i + 1])
                self.wfile.flush()
            except OSError:
                return
            time.sleep(interval)

    do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = _handle  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


class _ProxyServer(OwnedHTTPServer):
    owner: "FaultProxy"

    def finish_request(self, request: Any, client_address: Any) -> None:
        """TLS handshake in the connection's own thread, so a stalled client blocks no one."""
        request.settimeout(10)
        # The handler writes the head and the body apart: without this, Nagle's algorithm holds
        # the body for the client's delayed ACK, 40 ms on every answer.
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            tls = self.owner._server_ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            _Handler(tls, client_address, self)
        finally:
            try:
                tls.close()
            except OSError:
                pass


class FaultProxy(LoopbackHTTPService):
    """HTTPS reverse proxy on 127.0.0.1 in front of `pebble`, trusted through the same test CA."""

    _server_class = _ProxyServer
    _handler_class = _Handler
    _thread_name = "fault-proxy"

    def __init__(self, pebble: Pebble, port: int = 0, ca: TestCA | None = None) -> None:
        super().__init__("127.0.0.1", port)
        self.pebble = pebble
        self.ca = ca or pebble.ca
        self.rules: list[Rule] = []
        self.log: list[ProxyRequest] = []
        self.directory_extra: dict[str, Any] = {}
        #: ARI: certificate id -> renewalInfo object (RFC 9773 section 4.2).
        self.renewal_info: dict[str, dict[str, Any]] = {}
        self.renewal_info_retry_after: int | None = 21600
        self.add_nonce_to_injected = True
        self._lock = threading.Lock()
        self._server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._server_ctx.load_cert_chain(str(self.ca.server_cert), str(self.ca.server_key))
        self._client_ctx = ssl.create_default_context(cafile=str(self.ca.cert))

    # --- addresses (start, stop and `with` come from LoopbackHTTPService)
    @property
    def origin(self) -> str:
        return f"https://localhost:{self.port}"

    @property
    def directory_url(self) -> str:
        return f"{self.origin}/dir"

    @property
    def renewal_info_url(self) -> str:
        return f"{self.origin}/renewal-info"

    @property
    def ca_bundle(self) -> str:
        return str(self.ca.cert)

    # --- what tests configure
    def add_rule(self, match: Callable[[str, str, bytes], bool],
                 respond: Callable[[ProxyRequest], Reply | None] | None = None, *,
                 rewrite: Callable[[ProxyRequest, int, dict[str, str], bytes], Reply] | None = None,
                 times: int | None = None) -> Rule:
        """Install a rule (checked in order, before forwarding); returns it for `hits`."""
        rule = Rule(match, respond, rewrite, times)
        with self._lock:
            self.rules.append(rule)
        return rule

    def inject(self, method: str | None, path_prefix: str, status: int,
               headers: Mapping[str, str] | None = None, body: bytes | str | dict[str, Any] = b"",
               times: int | None = 1) -> Rule:
        """Shorthand: answer `status` to the next `times` requests under `path_prefix`."""
        if isinstance(body, dict):
            data = json.dumps(body).encode()
        else:
            data = body.encode() if isinstance(body, str) else body
        hdrs = dict(headers or {})
        return self.add_rule(match_path(method, path_prefix), lambda _r: (status, dict(hdrs), data),
                             times=times)

    def clear_rules(self) -> None:
        with self._lock:
            self.rules.clear()

    def patch_directory(self, extra: Mapping[str, Any]) -> None:
        """Merge `extra` into /dir (one level deep for "meta"), e.g. renewalInfo, profiles."""
        with self._lock:
            for k, v in extra.items():
                if k == "meta" and isinstance(v, Mapping):
                    self.directory_extra.setdefault("meta", {}).update(v)
                else:
                    self.directory_extra[k] = v

    def enable_ari(self) -> None:
        """Advertise renewalInfo at this proxy (RFC 9773 section 3)."""
        self.patch_directory({"renewalInfo": self.renewal_info_url})

    def set_renewal_info(self, cert_id: str, start: str, end: str,
                         explanation_url: str | None = None) -> None:
        """Serve GET renewal-info/<cert_id> with this suggestedWindow (RFC 3339 strings)."""
        info: dict[str, Any] = {"suggestedWindow": {"start": start, "end": end}}
        if explanation_url:
            info["explanationURL"] = explanation_url
        with self._lock:
            self.renewal_info[cert_id] = info

    def requests_to(self, path_prefix: str, method: str | None = None) -> list[ProxyRequest]:
        """Logged requests under `path_prefix` (and of `method`), oldest first."""
        with self._lock:
            return [r for r in self.log
                    if r.path.startswith(path_prefix) and (method is None or r.method == method)]

    # --- serving
    def _serve(self, req: ProxyRequest) -> Reply:
        with self._lock:
            self.log.append(req)
            rule = next((r for r in self.rules if r.live() and r.match(req.method, req.path, req.body)),
                        None)
            if rule:
                rule.hits += 1
        if rule and rule.respond:
            reply = rule.respond(req)
            if reply is not None:
                req.injected = True
                return self._with_nonce(reply)
        if req.path.startswith("/renewal-info"):
            return self._renewal_info(req)
        status, headers, body = self._forward(req)
        if req.method == "GET" and req.path.split("?")[0] == "/dir" and status == 200:
            body = self._patched_directory(body)
        if rule and rule.rewrite:
            status, headers, body = rule.rewrite(req, status, headers, body)
        return status, headers, body

    def _with_nonce(self, reply: Reply) -> Reply:
        """Injected answers carry a fresh Replay-Nonce, as every ACME response should (RFC 8555 section 6.5)."""
        status, headers, body = reply
        if self.add_nonce_to_injected and not any(k.lower() == "replay-nonce" for k in headers):
            try:
                headers = {**headers, "Replay-Nonce": self.fresh_nonce()}
            except (OSError, http.client.HTTPException):
                pass
        return status, headers, body

    def fresh_nonce(self) -> str:
        """A nonce straight from Pebble (HEAD newNonce)."""
        status, headers, _ = self._upstream("HEAD", "/nonce-plz", {}, b"")
        return headers.get("Replay-Nonce", "")

    def _renewal_info(self, req: ProxyRequest) -> Reply:
        cert_id = req.path.split("?")[0][len("/renewal-info"):].lstrip("/")
        with self._lock:
            info = self.renewal_info.get(cert_id)
        if req.method != "GET" or info is None:
            return problem(404, "malformed", f"no renewal information for {cert_id!r}")(req)
        headers = {"Content-Type": "application/json"}
        if self.renewal_info_retry_after is not None:
            headers["Retry-After"] = str(self.renewal_info_retry_after)
        return 200, headers, json.dumps(info).encode()

    def _patched_directory(self, body: bytes) -> bytes:
        with self._lock:
            extra = json.loads(json.dumps(self.directory_extra))
        if not extra:
            return body
        directory = json.loads(body)
        meta = extra.pop("meta", None)
        directory.update(extra)
        if meta:
            directory.setdefault("meta", {}).update(meta)
        return json.dumps(directory, indent=3).encode()

    def _upstream(self, method: str, path: str, headers: Mapping[str, str],
                  body: bytes) -> Reply:
        conn = http.client.HTTPSConnection("localhost", self.pebble.port, timeout=30,
                                           context=self._client_ctx)
        try:
            conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            host = headers.get("Host") or f"localhost:{self.port}"
            conn.putheader("Host", host)
            conn.putheader("X-Forwarded-Proto", "https")
            for k, v in headers.items():
                if k.lower() not in _HOP_BY_HOP and k.lower() not in ("host", "accept-encoding"):
                    conn.putheader(k, v)
            conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            resp = conn.getresponse()
            data = resp.read()
            out: dict[str, str] = {}
            for k, v in resp.getheaders():
                # Several Link headers fold into one, comma-separated (RFC 9110 section 5.3).
                out[k] = f"{out[k]}, {v}" if k in out else v
            return resp.status, out, data
        finally:
            conn.close()

    def _forward(self, req: ProxyRequest) -> Reply:
        try:
            status, headers, body = self._upstream(req.method, req.path, req.headers, req.body)
        except (OSError, http.client.HTTPException) as e:
            return 502, {"Content-Type": "text/plain"}, f"fault proxy: upstream failed: {e}\n".encode()
        return status, self._rewrite_headers(headers), self._rewrite_body(body)

    def _pebble_origins(self) -> list[bytes]:
        p = self.pebble.port
        return [f"https://localhost:{p}".encode(), f"https://127.0.0.1:{p}".encode()]

    def _rewrite_body(self, body: bytes) -> bytes:
        for o in self._pebble_origins():
            body = body.replace(o, self.origin.encode())
        return body

    def _rewrite_headers(self, headers: dict[str, str]) -> dict[str, str]:
        out = {}
        for k, v in headers.items():
            if k.lower() in ("location", "link"):
                v = self._rewrite_body(v.encode()).decode()
            out[k] = v
        return out

