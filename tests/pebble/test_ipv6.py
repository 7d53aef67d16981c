"""Issue 12 item 3: Pebble's VA validates over IPv6 (::1) against wucme's own listeners bound
with no address (both families): challtestsrv answers every name with AAAA ::1 and no A."""
from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.pebble import Pebble
from harness.ports import ipv6_loopback

from .test_wucme_verbs import Wucme


pytestmark = [pytest.mark.pebble,
              pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback (::1) in this system")]


@pytest.mark.parametrize("challenge", ["http-01", "tls-alpn-01"])
def test_pebble_validates_over_ipv6_against_the_default_bind(
        pebble_factory: Callable[..., Pebble], tmp_path: Path, challenge: str) -> None:
    pebble = pebble_factory(dns_ipv4="", dns_ipv6="::1", nonce_reject=0)
    assert pebble.challtestsrv is not None
    wucme = Wucme(tmp_path, pebble)
    # no address: the port alone, as an administrator writes WUCME_HTTP01=80
    wucme.env.update(WUCME_CHALLENGE=challenge, WUCME_HTTP01=str(pebble.http_port),
                     WUCME_ALPN=str(pebble.tls_port))
    wucme("register", "admin@example.org")
    wucme("issue", "www.example.org")
    assert (wucme.here / "WUCME_C_WWW_EXAMPLE_ORG.PEM").exists()
    # the VA had no IPv4 address to dial: it validated over ::1
    assert pebble.challtestsrv.resolve("www.example.org") == []
