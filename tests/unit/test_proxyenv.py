"""The proxy a URL goes through, chosen from the environment as libcurl chooses it."""
from __future__ import annotations

import pytest

from wucme.http import HttpConfig
from wucme.http.proxyenv import ProxyRules, no_proxy_match, proxy_url

CA = "https://acme.example.org/dir"
P = "http://proxy.example:3128"


@pytest.mark.parametrize("env, url, want", [
    ({"https_proxy": P}, CA, P),
    ({"HTTPS_PROXY": P}, CA, P),
    ({"https_proxy": P, "HTTPS_PROXY": "http://other:1"}, CA, P),  # lower case first
    ({"https_proxy": "", "HTTPS_PROXY": P}, CA, None),  # set but empty: no proxy, search ends
    ({"http_proxy": P}, CA, None),  # http_proxy is for http:// only
    ({"http_proxy": P}, "http://ocsp.example/", P),
    ({"HTTP_PROXY": P}, "http://ocsp.example/", None),  # never read (CGI's Proxy: header)
    ({"all_proxy": P}, CA, P),
    ({"ALL_PROXY": P}, "http://ocsp.example/", P),
    ({"https_proxy": "http://own:1", "all_proxy": P}, CA, "http://own:1"),
    ({"https_proxy": "proxy.example:3128"}, CA, P),  # no scheme: http://
    ({"https_proxy": "proxy.example"}, CA, "http://proxy.example:1080"),  # no port: 1080
    ({"https_proxy": "http://u:p@proxy.example"}, CA, "http://u:p@proxy.example:1080"),
    ({}, CA, None),
])
def test_variables_as_libcurl_reads_them(env: dict[str, str], url: str, want: str | None) -> None:
    assert ProxyRules.from_environ(None, env).for_url(url) == want


@pytest.mark.parametrize("host, no_proxy, match", [
    ("acme.example.org", "*", True),
    ("acme.example.org", "example.org", True),  # a domain covers its subdomains
    ("acme.example.org", ".example.org", True),
    ("example.org", ".example.org", True),
    ("example.org.", "example.org", True),  # trailing dots ignored
    ("notexample.org", "example.org", False),
    ("acme.example.org", "other.test, example.org", True),
    ("acme.example.org", "other.test example.org", True),
    ("acme.example.org", "a.test,,b.test", False),
    ("ACME.Example.ORG", "example.org", True),
    ("acme.example.org", "acme.example.org:443", False),  # curl reads no ports here
    ("acme.example.org", "*.example.org", False),  # only a lone * is a wildcard
    ("acme.example.org", "foo,*", False),
    ("10.1.2.3", "10.1.2.3", True),
    ("10.1.2.3", "10.0.0.0/8", True),
    ("10.1.2.3", "10.1.2.4", False),
    ("10.1.2.3", "11.0.0.0/8", False),
    ("::1", "::1", True),
    ("[2001:db8::5]", "2001:db8::/32", True),
    ("2001:db8::5", "10.0.0.0/8", False),
    ("localhost", "", False),
])
def test_no_proxy(host: str, no_proxy: str, match: bool) -> None:
    assert no_proxy_match(host, no_proxy) is match


def test_no_proxy_applies_to_the_explicit_proxy_too_and_lower_case_wins() -> None:
    rules = ProxyRules.from_environ(P, {"no_proxy": "example.org", "NO_PROXY": "other.test",
                                        "https_proxy": "http://env:1"})
    assert rules.for_url(CA) is None
    assert rules.for_url("https://ca.other.test/") == P  # NO_PROXY not read: no_proxy is set
    assert ProxyRules.from_environ(P, {"https_proxy": "http://env:1"}).for_url(CA) == P


def test_config_without_rules_keeps_its_single_proxy() -> None:
    assert HttpConfig(proxy=P).proxy_for(CA) == P
    assert HttpConfig(proxy=P, proxy_rules=ProxyRules()).proxy_for(CA) is None


@pytest.mark.parametrize("bad", ["socks5://proxy:1080", "https://proxy:3128", "http://:3128",
                                 "http://proxy:notaport"])
def test_proxies_wucme_cannot_use_are_refused_by_name(bad: str) -> None:
    with pytest.raises(ValueError):
        proxy_url(bad)
