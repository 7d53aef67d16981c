"""The standard proxy variables, uacme 1.7.4 (libcurl) against wucme (issue 11, point 5).

Each tool creates an account on Pebble (https://localhost:PORT) with the proxy
variables set; a real forward proxy records the CONNECTs: both tools must send the
same ones, through the proxy or direct, with both of wucme's transports.
"""
from __future__ import annotations

import pytest

from harness.connectproxy import ConnectProxy

from .uacme_parity import PARITY, Tool, expect

pytestmark = PARITY

#: The variables, "{proxy}" standing for the proxy's URL; whether the CA goes through it.
CASES = [
    ({"https_proxy": "{proxy}"}, True),
    ({"HTTPS_PROXY": "{proxy}"}, True),
    ({"ALL_PROXY": "{proxy}"}, True),
    ({"all_proxy": "{proxy}"}, True),
    ({"https_proxy": "{hostport}"}, True),  # no scheme: http://
    ({"http_proxy": "{proxy}"}, False),  # http:// URLs only
    ({"HTTP_PROXY": "{proxy}"}, False),  # never read
    ({"https_proxy": "{proxy}", "NO_PROXY": "localhost"}, False),
    ({"https_proxy": "{proxy}", "no_proxy": ".localhost"}, False),
    ({"https_proxy": "{proxy}", "no_proxy": "*"}, False),
    ({"https_proxy": "{proxy}", "no_proxy": "example.org, other.test"}, True),
    ({"https_proxy": "{proxy}", "no_proxy": "127.0.0.1"}, True),  # the name is localhost
    ({"UACME_PROXY": "{proxy}"}, True),
    ({"UACME_PROXY": "{proxy}", "no_proxy": "localhost"}, False),
    ({"https_proxy": "http://127.0.0.1:9", "UACME_PROXY": "{proxy}"}, True),
]


@pytest.mark.parametrize("transport", ["builtin", "requests"])
@pytest.mark.parametrize("variables, proxied", CASES,
                         ids=[" ".join(f"{k}={v}" for k, v in c[0].items()) for c in CASES])
def test_proxy_variables_as_libcurl_reads_them(tools: tuple[Tool, Tool], transport: str,
                                               variables: dict[str, str], proxied: bool) -> None:
    """UACME_PROXY came with uacme 1.7.5 (curl's CURLOPT_PROXY, still under no_proxy): those
    cases check wucme against what uacme HEAD does, 1.7.4 not being able to say."""
    head_only = "UACME_PROXY" in variables
    with ConnectProxy() as proxy:
        env = {k: v.format(proxy=proxy.url, hostport=proxy.url.removeprefix("http://"))
               for k, v in variables.items()}
        env["WUCME_HTTP"] = transport
        seen = {"uacme": [f"CONNECT {tools[0].directory_url.split('/')[2]}"] if proxied else []}
        for t in tools[1:] if head_only else tools:
            proxy.clear()
            expect(t("-y", "new", env=env), 0, t.name)
            # the target only: http.client (requests) says HTTP/1.0 where curl says 1.1
            seen[t.name] = sorted({r.rsplit(" ", 1)[0] for r in proxy.requests})
    host = tools[0].directory_url.split("/")[2]
    assert seen["uacme"] == ([f"CONNECT {host}"] if proxied else []), seen
    assert seen["wucme"] == seen["uacme"]
