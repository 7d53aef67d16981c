"""ODS-2 names for host names (`www.example.org` -> `WWW_EXAMPLE_ORG`), collision-free.

ODS-2 allows `A-Z 0-9 _ $ -` and at most 39 characters in a file name.  The
repository files are `WUCME_C_<HOST>.PEM` and `WUCME_K_<HOST>.PEM`, so the host
part may be at most 31 characters.

The rule (docs/files.md):
1. Lower-case the host (DNS names are case-insensitive, so case never matters).
2. If it is made of labels of `a-z 0-9 -` joined by single dots, the mapping is
   lossless: upper-case it and turn each `.` into `_`.  If that fits in 31
   characters it is the name.  Such a name never contains `__` or `$`.
3. Otherwise (any other character, including `_` and `$`, an empty label, or a
   name too long) the result is a prefix of the upper-cased host with `.` and
   every character outside `A-Z 0-9 _ $ -` turned into `_` and trailing `_`
   removed, then `__`, then the first 12 characters of the base32 SHA-256
   digest of the lower-cased host (UTF-8), the prefix cut to keep the whole
   within 31.  The `__` marks such names, so
   they cannot equal a lossless name, and the 60-bit digest separates them from
   each other (`a_b.example` and `a.b.example` differ).
"""

from __future__ import annotations

import base64
import hashlib
import re

__all__ = [
    "MAX_NAME",
    "HOST_MAX",
    "DIGEST_CHARS",
    "ods2_name",
    "cert_file_name",
    "key_file_name",
    "is_ods2_name",
]

#: The longest ODS-2 file name (the part before the `.` of the type).
MAX_NAME = 39
#: The prefixes of repository files; the host part must leave room for them.
CERT_PREFIX = "WUCME_C_"
KEY_PREFIX = "WUCME_K_"
HOST_MAX = MAX_NAME - len(CERT_PREFIX)
#: Base32 characters of digest in a lossy name (5 bits each).
DIGEST_CHARS = 12

_LOSSLESS = re.compile(r"[a-z0-9-]+(?:\.[a-z0-9-]+)*")
_ODS2 = re.compile(r"[A-Z0-9_$-]{1,39}")


def _digest(host: str) -> str:
    raw = hashlib.sha256(host.encode("utf-8", "surrogatepass")).digest()
    return base64.b32encode(raw).decode("ascii")[:DIGEST_CHARS]


def ods2_name(host: str) -> str:
    """The ODS-2 host part for *host* (an A-label name, e.g. ``xn--bcher-kva.example``).

    Always 1..31 characters of ``A-Z 0-9 _ $ -`` whatever the input; see the module
    docstring for the rule.
    """
    if not host:
        raise ValueError("empty host name")
    low = host.lower()
    if _LOSSLESS.fullmatch(low):
        mapped = low.upper().replace(".", "_")
        if len(mapped) <= HOST_MAX:
            return mapped
    # Lossy: keep what is readable, mark with "__", and let the digest decide.
    readable = "".join(c if ("a" <= c <= "z" or "0" <= c <= "9" or c in "-_$") else "_" for c in low).upper()
    room = HOST_MAX - 2 - DIGEST_CHARS
    prefix = readable[:room].rstrip("_")
    return f"{prefix}__{_digest(low)}"


def cert_file_name(host: str) -> str:
    """``WUCME_C_<HOST>.PEM``: the chain with the private key appended (the file a server uses)."""
    return f"{CERT_PREFIX}{ods2_name(host)}.PEM"


def key_file_name(host: str) -> str:
    """``WUCME_K_<HOST>.PEM``: the private key alone."""
    return f"{KEY_PREFIX}{ods2_name(host)}.PEM"


def is_ods2_name(name: str) -> bool:
    """True for a valid ODS-2 file name part (1..39 of ``A-Z 0-9 _ $ -``)."""
    return _ODS2.fullmatch(name) is not None
