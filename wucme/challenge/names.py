"""Identifier names as tls-alpn-01 sees them: IP addresses travel as reverse-DNS SNI (RFC 8738 §6)."""

from __future__ import annotations

import ipaddress

from wucme.core.ident import is_ip

__all__ = ["reverse_dns", "ip_from_reverse", "sni_key", "is_ip"]


def reverse_dns(ip: str) -> str:
    """The reverse-DNS name a validation server sends as SNI for *ip* (RFC 8738 §6).

    ``192.0.2.1`` -> ``1.2.0.192.in-addr.arpa``; IPv6 uses the nibble ``ip6.arpa`` form.
    """
    return ipaddress.ip_address(ip).reverse_pointer


def ip_from_reverse(name: str) -> str | None:
    """The address a reverse-DNS name stands for, or None if *name* is not a complete one.

    The responder needs it because the certificate's SAN is the address itself while
    the SNI only carries its ``.arpa`` form.
    """
    name = name.lower().rstrip(".")
    try:
        if name.endswith(".in-addr.arpa"):
            parts = name[: -len(".in-addr.arpa")].split(".")
            if len(parts) != 4 or not all(p.isdigit() and len(p) <= 3 for p in parts):
                return None
            return str(ipaddress.IPv4Address(".".join(reversed(parts))))
        if name.endswith(".ip6.arpa"):
            nibbles = name[: -len(".ip6.arpa")].split(".")
            if len(nibbles) != 32 or not all(len(n) == 1 and n in "0123456789abcdef" for n in nibbles):
                return None
            return str(ipaddress.IPv6Address(int("".join(reversed(nibbles)), 16)))
    except ValueError:
        return None
    return None


def sni_key(ident_or_sni: str) -> str:
    """The case-folded key under which an authorization is found by its SNI.

    IP identifiers are keyed by their reverse-DNS name, host names by their lower-case
    form without a trailing dot (names compare case-insensitively, RFC 4343).
    """
    name = ident_or_sni.strip().rstrip(".")
    if is_ip(name):
        return reverse_dns(name)
    return name.lower()
