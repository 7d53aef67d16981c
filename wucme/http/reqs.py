"""The second transport, on `requests` (WUCME_HTTP=requests): same contract as HttpClient.

Nothing from the environment leaks in (trust_env=False): trust roots and the proxy come
from HttpConfig only, as with the builtin client.  Redirects are never followed.
"""
from __future__ import annotations

import http.client
import os
import ssl

import requests
import urllib3.connection as u3conn
import urllib3.connectionpool as u3pool
import urllib3.exceptions as u3
from requests.adapters import HTTPAdapter

from wucme.http import (
    ConnectError, HttpConfig, HttpError, HttpTimeout, ProtocolError, Response,
    ResponseTooLarge, TLSError,
)
from wucme.http._deadline import watch, within

_CHUNK = 64 * 1024


def _too_large(limit: int) -> ResponseTooLarge:
    return ResponseTooLarge(f"response body larger than the limit of {limit} bytes (max_body)")


def _translate(exc: Exception, url: str) -> HttpError:
    """requests' and urllib3's exceptions onto the wucme.http classes (order matters)."""
    text = f"{url}: {exc}"
    if isinstance(exc, (requests.exceptions.SSLError, u3.SSLError)):
        return TLSError(text)
    if isinstance(exc, (requests.exceptions.Timeout, u3.TimeoutError, TimeoutError)):
        return HttpTimeout(text)
    if isinstance(exc, requests.exceptions.ProxyError):
        return ConnectError(text)
    if isinstance(exc, requests.exceptions.ConnectionError):
        # A malformed status line arrives as ConnectionError(ProtocolError(BadStatusLine)).
        inner = exc.args[0] if exc.args else None
        reason = inner.args[-1] if isinstance(inner, u3.ProtocolError) and inner.args else None
        if isinstance(reason, http.client.HTTPException) and not isinstance(reason, OSError):
            return ProtocolError(text)
        return ConnectError(text)
    if isinstance(exc, (requests.exceptions.ChunkedEncodingError, u3.ProtocolError,
                        u3.DecodeError, http.client.HTTPException)):
        return ProtocolError(text)
    if isinstance(exc, OSError):
        return ConnectError(text)
    return HttpError(text)


class _Session(requests.Session):
    """A Session that sees no redirect target: even with allow_redirects=False, requests
    would otherwise read a 3xx body in full (unbounded) while looking for the next hop."""

    def get_redirect_target(self, resp: requests.Response) -> None:
        return None


class _Watched:
    """A urllib3 connection whose socket is under the current request's deadline."""

    sock: object

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        watch(self.sock)  # type: ignore[arg-type]

    def request(self, *args: object, **kw: object) -> None:
        watch(self.sock)  # type: ignore[arg-type]
        super().request(*args, **kw)  # type: ignore[misc]


class _HTTPConnection(_Watched, u3conn.HTTPConnection):
    pass


class _HTTPSConnection(_Watched, u3conn.HTTPSConnection):
    pass


class _HTTPPool(u3pool.HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(u3pool.HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


_POOLS = {"http": _HTTPPool, "https": _HTTPSPool}


class _Adapter(HTTPAdapter):
    """Connection pools (direct or through a proxy) of watched connections."""

    def init_poolmanager(self, *args: object, **kw: object) -> None:
        super().init_poolmanager(*args, **kw)  # type: ignore[arg-type]
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **kw: object) -> object:
        manager = super().proxy_manager_for(proxy, **kw)  # type: ignore[arg-type]
        manager.pool_classes_by_scheme = _POOLS
        return manager


class RequestsTransport:
    """A requests.Session configured from HttpConfig; bodies read with the max_body bound."""

    def __init__(self, config: HttpConfig) -> None:
        self.config = config
        session = _Session()
        session.trust_env = False
        # The system store, as the builtin client uses, rather than requests' own certifi copy.
        session.verify = (config.ca_bundle or config.ca_path
                          or ssl.get_default_verify_paths().cafile or True)
        session.proxies = {}  # chosen per request: HttpConfig.proxy_for
        # Only what the builtin client sends: no Accept-Encoding, so no decompression bombs.
        session.headers.clear()
        session.headers.update({"User-Agent": config.user_agent, "Connection": "keep-alive"})
        for prefix in ("http://", "https://"):
            session.mount(prefix, _Adapter())
        self.session = session

    def _check_trust(self, url: str) -> None:
        """requests raises a bare OSError for a missing CA file; make it the TLS failure it is."""
        where = self.config.ca_bundle or self.config.ca_path
        if url.lower().startswith("https:") and where and not os.path.exists(where):
            raise TLSError(f"cannot load trusted certificates from {where}: no such file")

    def _read(self, resp: requests.Response) -> bytes:
        limit = self.config.max_body
        length = resp.headers.get("Content-Length", "")
        if length.strip().isdigit() and int(length) > limit:
            raise _too_large(limit)
        parts: list[bytes] = []
        total = 0
        for data in resp.raw.stream(_CHUNK, decode_content=False):
            total += len(data)
            if total > limit:
                raise _too_large(limit)
            parts.append(data)
        return b"".join(parts)

    def request(
        self,
        method: str,
        url: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        """One request, whole response read, no redirects followed, within HttpConfig.deadline."""
        return within(self.config.deadline, url, lambda: self._request(method, url, body, headers))

    def _request(self, method: str, url: str, body: bytes | None,
                 headers: dict[str, str] | None) -> Response:
        self._check_trust(url)
        cfg = self.config
        proxy = cfg.proxy_for(url)
        try:
            resp = self.session.request(
                method, url, data=body, headers=headers, allow_redirects=False, stream=True,
                timeout=(cfg.connect_timeout, cfg.read_timeout),
                proxies={"http": proxy, "https": proxy} if proxy else {},
            )
        except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                requests.exceptions.InvalidSchema, requests.exceptions.InvalidHeader):
            raise  # the caller's mistake (ValueError), as with the builtin client
        except (requests.exceptions.RequestException, u3.HTTPError, OSError) as exc:
            raise _translate(exc, url) from exc
        try:
            content = self._read(resp)
        except (u3.HTTPError, http.client.HTTPException, OSError) as exc:
            raise _translate(exc, url) from exc
        finally:
            resp.close()
        return Response(resp.status_code, list(resp.raw.headers.items()), content, url)

    def close(self) -> None:
        self.session.close()


__all__ = ["RequestsTransport"]
