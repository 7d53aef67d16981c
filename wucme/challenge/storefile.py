"""The challenge store's files as a reader sees them: entry names, the trust rule, one entry read.

wucme.challenge.store (ChallengeStore) writes and reads the store through these, and the CGI
answer to an http-01 challenge (wucme.challenge.answer) reads it through them alone, so both
apply one rule; this module imports no more than a read needs, since the web server starts a
process per request (docs/performance.md, "Start-up").

The rule (the store's own docstring says why): a directory that group or others may write is
not believed at all, and an entry counts only when owned by root or the directory's owner and
writable by nobody else; the entry is found by a digest of its token, never by the token.
"""

from __future__ import annotations

import base64
import json
import os
import re
import time

from wucme.vms.secure import InsecureError, check_stat

try:  # The interpreter's own SHA-256: hashlib would load OpenSSL's libcrypto, a few ms a process.
    from _sha256 import sha256  # CPython 3.11
except ImportError:  # pragma: no cover - another Python
    try:
        from _sha2 import sha256  # type: ignore[no-redef]  # CPython 3.12 and later
    except ImportError:
        from hashlib import sha256  # type: ignore[no-redef,assignment]

__all__ = ["ALPN_PREFIX", "HTTP_PREFIX", "SUFFIX", "entry_name", "http01_keyauth", "is_token", "read_entry",
           "trusted_owners"]

# RFC 8555 §8.3: a token is base64url without padding and carries at least 128 bits of entropy;
# the upper bound keeps a hostile request from making us hash megabytes.
_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")

HTTP_PREFIX = "H_"
ALPN_PREFIX = "A_"
SUFFIX = ".DAT"
#: The most of an entry that is read (an entry is a few hundred bytes).
_MAX_ENTRY = 64 * 1024


def is_token(token: object) -> bool:
    """True when *token* is a well-formed ACME challenge token (base64url, 1..256 characters)."""
    return isinstance(token, str) and _TOKEN.fullmatch(token) is not None


def entry_name(prefix: str, key: str) -> str:
    """An ODS-2-safe file name (34.3 characters) derived from *key* by SHA-256."""
    digest = sha256(key.encode("utf-8")).digest()[:20]
    return prefix + base64.b32encode(digest).decode("ascii") + SUFFIX


def trusted_owners(directory: str | os.PathLike[str]) -> frozenset[int] | None:
    """Who may have written an entry: root and the directory's owner; None when the directory
    is missing or writable by group or others (then nothing in it is believed)."""
    try:
        st = os.stat(directory)
    except OSError:
        return None
    owners = frozenset({0, st.st_uid})
    try:
        check_stat(st, directory, owners=owners)
    except InsecureError:
        return None
    return owners


def read_entry(directory: str | os.PathLike[str], name: str, *, live: bool = True) -> dict[str, object] | None:
    """The record in entry *name*; None if absent, corrupt, planted by another user or (when
    *live*) expired."""
    owners = trusted_owners(directory)
    if owners is None:
        return None
    path = os.path.join(directory, name)
    try:
        with open(path, "rb") as f:
            check_stat(os.fstat(f.fileno()), path, owners=owners)
            data = f.read(_MAX_ENTRY)
        record = json.loads(data)
    except (OSError, ValueError, InsecureError):
        return None
    if not isinstance(record, dict) or not isinstance(record.get("expires"), (int, float)):
        return None
    if live and record["expires"] <= time.time():
        return None
    return record


def http01_keyauth(directory: str | os.PathLike[str], token: str) -> str | None:
    """The key authorization pending for http-01 *token* in *directory*, or None when unknown,
    expired or malformed (RFC 8555 §8.3)."""
    if not is_token(token):
        return None
    record = read_entry(directory, entry_name(HTTP_PREFIX, token))
    if record is None or record.get("token") != token:
        return None
    value = record.get("keyauth")
    return value if isinstance(value, str) else None
