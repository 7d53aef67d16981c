"""Unpadded base64url (RFC 4648 §5), the only encoding JWS and ACME use (RFC 7515 §2, RFC 8555 §6.1)."""

from __future__ import annotations

import base64
import re

__all__ = ["b64url_encode", "b64url_decode", "is_b64url"]

_ALPHABET = re.compile(r"[A-Za-z0-9_-]*")


def b64url_encode(data: bytes) -> str:
    """Encode *data* as base64url with the trailing ``=`` padding removed (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def is_b64url(s: str) -> bool:
    """True if *s* is canonical unpadded base64url, as b64url_decode() accepts (the empty string too)."""
    try:
        b64url_decode(s)
    except ValueError:
        return False
    return True


def b64url_decode(s: str) -> bytes:
    """Decode unpadded base64url strictly; raise ValueError on any malformed input.

    Strict because the values come from a network peer (tokens, EAB keys): the stdlib decoder
    would skip characters outside the alphabet. Rejected: padding, whitespace, ``+`` and ``/``,
    a length of 1 modulo 4, and non-zero unused bits in the last character.
    """
    if not isinstance(s, str) or _ALPHABET.fullmatch(s) is None or len(s) % 4 == 1:
        raise ValueError("invalid base64url string")
    data = base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
    if b64url_encode(data) != s:  # non-zero unused bits in the last character
        raise ValueError("invalid base64url string")
    return data
