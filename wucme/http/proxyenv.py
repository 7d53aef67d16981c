"""Which proxy a URL goes through: the standard variables, read as libcurl (uacme's HTTP) reads them.

- An explicit proxy (WUCME_PROXY, UACME_PROXY: curl's CURLOPT_PROXY) wins over the variables.
- Otherwise `<scheme>_proxy` in lower case (`https_proxy`, `http_proxy`), then its upper-case
  form except `HTTP_PROXY` (never read: a CGI program gets it from the client's Proxy header),
  then `all_proxy`, `ALL_PROXY`.  A variable set to "" means no proxy and stops the search.
- `no_proxy` (else `NO_PROXY`) applies to both: exactly `*` matches every host; otherwise a
  list separated by commas or blanks of host names, each matching itself and its subdomains
  (a leading or trailing dot ignored; no ports), and IP addresses or CIDR ranges matching IPs.
- A proxy written without a scheme is http://, without a port :1080, as libcurl has it.

Port of libcurl 7.88's detect_proxy() and Curl_check_noproxy(); curl supports more proxy
schemes (https://, socks) than wucme, which refuses them by name.
"""
from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from typing import NamedTuple
from urllib.parse import urlsplit

#: libcurl's default proxy port (CURLOPT_PROXYPORT).
DEFAULT_PROXY_PORT = 1080
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def proxy_url(proxy: str) -> str:
    """`proxy` as http://[user:pass@]host:port: scheme http:// and port 1080 unless given."""
    m = _SCHEME.match(proxy)
    if m and m.group(1).lower() != "http":
        raise ValueError(f"only http:// proxies are supported, not {proxy!r}")
    url = proxy if m else f"http://{proxy}"
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"bad port in proxy {proxy!r}") from None
    if not parts.hostname:
        raise ValueError(f"no host in proxy {proxy!r}")
    if port is None:
        netloc = parts.netloc + f":{DEFAULT_PROXY_PORT}"
        url = parts._replace(netloc=netloc).geturl()
    return url


def no_proxy_match(host: str, no_proxy: str | None) -> bool:
    """Port of libcurl's Curl_check_noproxy(): whether `host` bypasses the proxy."""
    if not no_proxy:
        return False
    if no_proxy == "*":
        return True
    name = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(name)
    except ValueError:
        ip = None
        name = name[:-1] if name.endswith(".") else name
    for token in re.split(r"[\s,]+", no_proxy):
        if not token:
            continue
        if ip is None:
            t = token[:-1] if token.endswith(".") else token
            t = t[1:] if t.startswith(".") else t
            if not t:
                continue
            n, t = name.lower(), t.lower()
            if n == t or (len(t) < len(n) and n.endswith("." + t)):
                return True
        elif _cidr_match(ip, token):
            return True
    return False


def _cidr_match(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, token: str) -> bool:
    """Curl_cidr4_match()/Curl_cidr6_match(): ADDRESS or ADDRESS/BITS (no bits: the address)."""
    addr, _, bits = token.partition("/")
    try:
        net = ipaddress.ip_address(addr)
    except ValueError:
        return False
    if net.version != ip.version:
        return False
    prefix = int(bits) if bits.isdigit() else 0
    if prefix == 0:
        prefix = net.max_prefixlen
    if prefix > net.max_prefixlen:
        return False
    shift = net.max_prefixlen - prefix
    return int(ip) >> shift == int(net) >> shift


class ProxyRules(NamedTuple):
    """A snapshot of the proxy settings, asked per URL (`for_url`)."""

    explicit: str | None = None  # WUCME_PROXY / UACME_PROXY
    https: str | None = None  # https_proxy, HTTPS_PROXY
    http: str | None = None  # http_proxy (lower case only)
    all: str | None = None  # all_proxy, ALL_PROXY
    no_proxy: str | None = None  # no_proxy, NO_PROXY

    @classmethod
    def from_environ(cls, explicit: str | None = None,
                     environ: Mapping[str, str] | None = None) -> ProxyRules:
        env = os.environ if environ is None else environ

        def first(*names: str) -> str | None:
            for n in names:
                if n in env:
                    return env[n]
            return None

        return cls(explicit or None, first("https_proxy", "HTTPS_PROXY"), first("http_proxy"),
                   first("all_proxy", "ALL_PROXY"), first("no_proxy", "NO_PROXY"))

    def for_url(self, url: str) -> str | None:
        """The proxy URL (http://host:port) for `url`, or None to go direct."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        if no_proxy_match(host, self.no_proxy):
            return None
        if self.explicit:
            return proxy_url(self.explicit)
        scheme = parts.scheme.lower()
        own = self.https if scheme == "https" else self.http if scheme == "http" else None
        chosen = own if own is not None else self.all
        return proxy_url(chosen) if chosen else None


__all__ = ["ProxyRules", "no_proxy_match", "proxy_url", "DEFAULT_PROXY_PORT"]
