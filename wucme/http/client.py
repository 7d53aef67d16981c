"""wµCME's own HTTP/1.1 client: persistent connections, TLS, CONNECT proxies, bounded reads.

wµCME carries it because cURL was not available on VMS; uacme's curlwrap.c is the model
(curl_get, curl_post, find_header), with a connection pool in place of curl's handle cache.
"""
from __future__ import annotations

import ssl
import threading

from wucme.http import HttpConfig, HttpError, HttpTimeout, Response, TLSError
from wucme.http._deadline import within
from wucme.http._conn import Connection, Origin, Proxy, Stale, split_url
from wucme.http._pool import ConnectionPool
from wucme.http._wire import encode_request


class HttpClient:
    """The builtin Transport: one request at a time per thread, connections shared by origin."""

    def __init__(self, config: HttpConfig) -> None:
        self.config = config
        self._proxies: dict[Origin, Proxy | None] = {}
        self._pool = ConnectionPool()
        self._ctx: ssl.SSLContext | None = None
        self._ctx_lock = threading.Lock()

    def _context(self) -> ssl.SSLContext:
        """Verifying TLS context, made on first https use (the CA files are read then)."""
        with self._ctx_lock:
            if self._ctx is None:
                cfg = self.config
                try:
                    self._ctx = ssl.create_default_context(cafile=cfg.ca_bundle, capath=cfg.ca_path)
                except (ssl.SSLError, OSError) as exc:
                    what = cfg.ca_bundle or cfg.ca_path
                    raise TLSError(f"cannot load trusted certificates from {what}: {exc}") from exc
            return self._ctx

    def _proxy(self, origin: Origin) -> Proxy | None:
        """The proxy for an origin (HttpConfig.proxy_for decides by scheme and host)."""
        if origin not in self._proxies:
            url = self.config.proxy_for(f"{origin.scheme}://{origin.authority}/")
            self._proxies[origin] = Proxy.from_url(url) if url else None
        return self._proxies[origin]

    def _headers(self, origin: Origin, method: str, body: bytes | None,
                 extra: dict[str, str] | None) -> list[tuple[str, str]]:
        """Host, User-Agent and keep-alive unless the caller set them; Content-Length always ours."""
        extra = {k: v for k, v in (extra or {}).items() if k.lower() != "content-length"}
        given = {k.lower() for k in extra}
        first = [("Host", origin.authority), ("User-Agent", self.config.user_agent)]
        last = [("Connection", "keep-alive")]
        # RFC 9110 §8.6: send Content-Length whenever the method defines a meaning for content.
        if body is not None or method.upper() not in ("GET", "HEAD"):
            last.insert(0, ("Content-Length", str(len(body or b""))))
        proxy = self._proxy(origin)
        if proxy and origin.scheme == "http" and proxy.authorization:
            last.insert(0, ("Proxy-Authorization", proxy.authorization))
        return ([h for h in first if h[0].lower() not in given] + list(extra.items())
                + [h for h in last if h[0].lower() not in given])

    def _connect(self, origin: Origin) -> Connection:
        ctx = self._context() if origin.scheme == "https" else None
        cfg = self.config
        connect = min(cfg.connect_timeout, cfg.deadline or cfg.connect_timeout)
        return Connection.dial(origin, ctx, self._proxy(origin), connect, cfg.read_timeout)

    def _exchange(self, conn: Connection, method: str, request: bytes) -> Response:
        try:
            head, body = conn.exchange(method, request, self.config.max_body)
        except BaseException:
            conn.close()
            raise
        self._pool.give(conn)
        return Response(head.status, head.headers, body)

    def request(
        self,
        method: str,
        url: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        """One request, whole response read; a stale kept-alive connection is retried once.
        The whole of it ends within HttpConfig.deadline (HttpTimeout)."""
        return within(self.config.deadline, url, lambda: self._request(method, url, body, headers))

    def _request(self, method: str, url: str, body: bytes | None,
                 headers: dict[str, str] | None) -> Response:
        origin, target = split_url(url)
        if self._proxy(origin) and origin.scheme == "http":
            target = f"http://{origin.authority}{target}"  # absolute-form (RFC 9112 §3.2.2)
        wire = encode_request(method, target, self._headers(origin, method, body, headers),
                              body or b"")
        conn = self._pool.take(origin)
        response = None
        if conn is not None:
            try:
                response = self._exchange(conn, method, wire)
            except Stale:
                pass  # the server closed it while idle: the request was not processed
        if response is None:
            response = self._exchange(self._connect(origin), method, wire)
        response.url = url
        return response

    def close(self) -> None:
        """Close every idle connection; the client stays usable and dials anew."""
        self._pool.close()
        self._pool = ConnectionPool()


__all__ = ["HttpClient"]
