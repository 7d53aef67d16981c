"""Identifiers for newOrder (RFC 8555 §7.1.4, §9.7.7; RFC 8738 for IP addresses).

Port of uacme.c:validate_identifier_str() and identifiers(), made stricter so
that no invalid name ever reaches the CA (or a hook's argv): labels of 1 to 63
letters, digits and inner hyphens, at most 253 characters, no trailing dot.
Unlike uacme, a Unicode name is accepted and mapped to its IDNA2008 A-label
(the `idna` package; Python's own codec is IDNA2003 and maps ß.de to ss.de).
"""
from __future__ import annotations

import ipaddress
import re

from wucme.errors import BadIdentifier

#: Let's Encrypt's limit on identifiers in one order (Pebble does not enforce it).
MAX_IDENTIFIERS = 100

_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")


def is_ip(value: str) -> bool:
    """True for an IPv4 or IPv6 literal: an RFC 8738 "ip" identifier (port of crypto.c:is_ip()).

    The one test for all of wucme (identifiers, CSRs, tls-alpn-01 SNI keys, WUCME_SERVICES).
    Stricter than uacme's getaddrinfo(AI_NUMERICHOST): no "127.1" shorthand and no "%scope"
    (a zone index names a link of this host, never something a CA can validate).
    """
    if "%" in value:
        return False
    if ":" not in value and value.strip("0123456789."):
        return False  # neither IPv6 (which has a colon) nor IPv4 (digits and dots): a name
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def ident_type(value: str) -> str:
    """"ip" or "dns", as RFC 8555 §9.7.7 and RFC 8738 §3 name them."""
    return "ip" if is_ip(value) else "dns"


def validate_identifier_str(name: str, wildcard: bool = True) -> str:
    """The canonical form of one identifier, or BadIdentifier.

    IP addresses come back compressed (RFC 8738 §3 asks for RFC 5952 form);
    DNS names come back as lower-case A-labels; `*.` is allowed only leading.
    """
    raw = name
    if not name or len(name) > 1000:
        raise BadIdentifier(f"invalid identifier {_show(raw)}: empty or too long")
    if "%" in name and is_ip(name.partition("%")[0]):
        raise BadIdentifier(f"invalid identifier {_show(raw)}: scoped address")
    if is_ip(name):
        return str(ipaddress.ip_address(name))
    prefix = ""
    if name.startswith("*."):
        if not wildcard:
            raise BadIdentifier(f"wildcard {_show(raw)} not supported here")
        prefix, name = "*.", name[2:]
    if not name.isascii():
        import idna  # only for a U-label or an A-label to check: `issue` of ASCII names and
        #              the web server's challenge script need no IDNA tables

        try:
            name = idna.encode(name, uts46=True).decode("ascii")
        except idna.IDNAError as e:
            raise BadIdentifier(f"invalid identifier {_show(raw)}: {e}") from None
    name = name.lower()
    if len(name) > 253:
        raise BadIdentifier(f"invalid identifier {_show(raw)}: longer than 253 characters")
    labels = name.split(".")
    if len(labels) < 2:
        raise BadIdentifier(f"invalid identifier {_show(raw)}: needs at least one dot")
    for label in labels:
        if not _LABEL.fullmatch(label):
            raise BadIdentifier(f"invalid identifier {_show(raw)}: bad label {_show(label)}")
        if label.startswith("xn--"):
            import idna

            try:
                idna.decode(label)
            except idna.IDNAError as e:
                raise BadIdentifier(f"invalid identifier {_show(raw)}: {e}") from None
    return prefix + name


def validate_identifiers(names: list[str], wildcard: bool = True) -> list[str]:
    """Validate, canonicalise and de-duplicate (keeping order) up to MAX_IDENTIFIERS names."""
    out: list[str] = []
    for n in names:
        v = validate_identifier_str(n, wildcard)
        if v not in out:
            out.append(v)
    if not out:
        raise BadIdentifier("no identifier given")
    if len(out) > MAX_IDENTIFIERS:
        raise BadIdentifier(
            f"{len(out)} identifiers: at most {MAX_IDENTIFIERS} in one certificate", ident="TOOMANY"
        )
    return out


def identifiers(names: list[str]) -> list[dict[str, str]]:
    """The newOrder `identifiers` member (RFC 8555 §7.4)."""
    return [{"type": ident_type(n), "value": n} for n in names]


def _show(s: str) -> str:
    """A name quoted for a message, with control characters made visible."""
    return repr(s[:80] + ("..." if len(s) > 80 else ""))
