"""The challenge store: pending key authorizations on disk, shared by `issue` and the responders.

The web server runs the http-01 script as another user in another process, so the store is a
directory: written only by wucme (0755), each entry readable by all (0644). A key authorization
is public by design (RFC 8555 §8.3 serves it to anyone who asks); the account key is the secret
and never comes near this directory.

What the store holds decides what a validation server is shown, so whoever can write into it
can have a certificate issued for our names to an account of theirs: a store directory that
group or others may write is refused (``%WUCME-E-INSECURE``) and never chmodded, and readers
answer only from entries owned by root or the directory's owner that nobody else may write.

Each entry is one small JSON file, written atomically (temporary file, rename) and named by a
digest of its token or identifier, never by the token itself, so no request can name a path.
Entries are not fsynced (ten of them were 15 ms of a ten-name `wucme issue`): an entry matters
only while its order runs, and what a crash of the machine leaves torn is unreadable, which
readers ignore.  Every entry carries its own expiry: after a crash, stale and unreadable
entries are ignored by readers and removed by the next `purge`.

In a cluster (WUCME_STORE_DB or WUCME_LOCK_DB defined) the same interface keeps its entries in
a table of that database instead (wucme.challenge.storepg, docs/cluster.md), so a node answers
the challenges of an order another node started.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from wucme.challenge.names import is_ip, sni_key
from wucme.challenge.storefile import (ALPN_PREFIX as _ALPN_PREFIX, HTTP_PREFIX as _HTTP_PREFIX,
                                       SUFFIX as _SUFFIX, entry_name as _entry_name, http01_keyauth, is_token,
                                       read_entry, trusted_owners)
from wucme.settings import challenges_dir, store_db
from wucme.vms.atomic import TEMP_PREFIX, atomic_write
from wucme.vms.secure import check_directory, make_directory

if TYPE_CHECKING:  # imported when a database is named: psycopg is the `cluster` extra
    from wucme.challenge.storepg import PgChallenges

__all__ = [
    "ChallengeStore",
    "AlpnEntry",
    "default_store_dir",
    "is_token",
    "DEFAULT_TTL",
]

#: An authorization is pending for at most this long (ualpn forgets auths after 1 h too).
DEFAULT_TTL = 3600.0

# ualpn's identifier alphabet (controller_handle_cmd), kept so both stores accept the same names.
_IDENT = re.compile(r"[A-Za-z0-9._:-]{1,250}")

# The kinds of rows in the database's store.
_DB_HTTP, _DB_ALPN = "http-01", "tls-alpn-01"
#: A temporary file older than this is debris from a crashed writer.
_TEMP_GRACE = 60.0


def default_store_dir() -> Path:
    """Where the store lives: logical WUCME_CHALLENGES, else WUCME_HERE's WUCME_CHALLENGES/
    (wucme.settings.challenges_dir, which resolves WUCME_HERE as the repository does)."""
    return challenges_dir()


class AlpnEntry(NamedTuple):
    """A pending tls-alpn-01 authorization: the identifier as ordered and its key authorization."""

    ident: str
    key_authorization: str
    expires: float


class ChallengeStore:
    """Pending challenges in *directory*; readers need only read access, writers own the directory.

    With no *directory*, the cluster database when WUCME_STORE_DB or WUCME_LOCK_DB names one
    (*db* names it explicitly), else default_store_dir().
    """

    def __init__(self, directory: str | os.PathLike[str] | None = None, *, db: str | None = None) -> None:
        self._db: PgChallenges | None = None
        if directory is None and db is None:
            db = store_db()
        if db is not None and directory is None:
            from wucme.challenge.storepg import PgChallenges  # psycopg only for a cluster

            self._db = PgChallenges(db)
            self._directory: Path | None = None
        else:
            self._directory = Path(directory) if directory is not None else default_store_dir()
        #: Crashed writers' temporaries are purged at this store's first write, not at each:
        #: a 100-name order scanned the directory holding its other entries before each one
        #: (docs/performance.md); `purge` removes what comes later.
        self._purged = False

    @property
    def directory(self) -> Path:
        """The store's directory (the database's store has none: the default one is named)."""
        if self._directory is None:
            self._directory = default_store_dir()
        return self._directory

    @property
    def shared(self) -> bool:
        """True when the entries are in the cluster database."""
        return self._db is not None

    @property
    def where(self) -> str:
        """Where the entries are, for messages."""
        return "the cluster database" if self._db is not None else str(self.directory)

    def close(self) -> None:
        """End the database session, if any (a directory store holds nothing open)."""
        if self._db is not None:
            self._db.close()

    # -- http-01 (RFC 8555 §8.3) ------------------------------------------------------------

    def put(
        self, token: str, key_authorization: str, ident: str, type: str, ttl: float = DEFAULT_TTL
    ) -> None:
        """Publish *key_authorization* for *token* until *ttl* seconds from now.

        Raises ValueError for a malformed token, so nothing a CA sends can pick a file name.
        """
        if not is_token(token):
            raise ValueError(f"invalid challenge token {token!r}")
        if not isinstance(key_authorization, str) or not key_authorization.isprintable():
            raise ValueError("invalid key authorization")
        record = {
            "v": 1,
            "type": type,
            "token": token,
            "ident": ident,
            "keyauth": key_authorization,
            "expires": time.time() + ttl,
        }
        if self._db is not None:
            self._db.put(_DB_HTTP, token, ident, type, key_authorization, ttl)
            return
        self._write(_entry_name(_HTTP_PREFIX, token), record)

    def get(self, token: str) -> str | None:
        """The key authorization for *token*, or None when unknown, expired or malformed."""
        if not is_token(token):
            return None
        if self._db is not None:
            row = self._db.get(_DB_HTTP, token)
            return row[1] if row is not None else None
        return http01_keyauth(self.directory, token)

    def remove(self, token: str) -> None:
        """Withdraw *token* (challenge over); a missing entry is not an error."""
        if is_token(token):
            if self._db is not None:
                self._db.remove(_DB_HTTP, token)
                return
            self._unlink(_entry_name(_HTTP_PREFIX, token))

    # -- tls-alpn-01 (RFC 8737 §3, RFC 8738 §6) ---------------------------------------------

    def alpn_put(self, ident: str, key_authorization: str, ttl: float = DEFAULT_TTL) -> None:
        """Publish *key_authorization* for identifier *ident* (a host name or an IP address).

        The entry is keyed by the SNI the validation server will send: the host name, or the
        reverse-DNS name of an IP address.
        """
        if not isinstance(ident, str) or _IDENT.fullmatch(ident) is None:
            raise ValueError(f"invalid identifier {ident!r}")
        if not isinstance(key_authorization, str) or not key_authorization.isprintable():
            raise ValueError("invalid key authorization")
        key = sni_key(ident)
        record = {
            "v": 1,
            "type": "tls-alpn-01",
            "sni": key,
            "ident": ident.rstrip(".") if not is_ip(ident) else ident,
            "keyauth": key_authorization,
            "expires": time.time() + ttl,
        }
        if self._db is not None:
            self._db.put(_DB_ALPN, key, str(record["ident"]), "tls-alpn-01", key_authorization, ttl)
            return
        self._write(_entry_name(_ALPN_PREFIX, key), record)

    def alpn_lookup(self, ident_or_sni: str, *, sni: bool = False) -> AlpnEntry | None:
        """The pending entry for an identifier or an SNI host name, or None.

        With *sni*, the name came from a ClientHello: a literal IP address is then refused, as
        validation servers send the reverse-DNS name (RFC 8738 §6; RFC 6066 §3 bars IPs in SNI).
        """
        if not isinstance(ident_or_sni, str) or not ident_or_sni or len(ident_or_sni) > 253:
            return None
        if sni and is_ip(ident_or_sni):
            return None
        try:
            key = sni_key(ident_or_sni)
        except ValueError:
            return None
        if self._db is not None:
            row = self._db.get(_DB_ALPN, key)
            return AlpnEntry(*row) if row is not None else None
        record = self._read(_entry_name(_ALPN_PREFIX, key))
        if record is None or record.get("sni") != key:
            return None
        ident, keyauth = record.get("ident"), record.get("keyauth")
        if not isinstance(ident, str) or not isinstance(keyauth, str):
            return None
        expires = record["expires"]
        assert isinstance(expires, (int, float))  # checked by _read
        return AlpnEntry(ident, keyauth, float(expires))

    def alpn_get(self, ident_or_sni: str) -> str | None:
        """The key authorization pending for an identifier or its SNI, or None."""
        entry = self.alpn_lookup(ident_or_sni)
        return entry.key_authorization if entry else None

    def alpn_remove(self, ident: str) -> None:
        """Withdraw the tls-alpn-01 entry of *ident*; a missing entry is not an error."""
        try:
            key = sni_key(ident)
        except ValueError:
            return
        if self._db is not None:
            self._db.remove(_DB_ALPN, key)
            return
        self._unlink(_entry_name(_ALPN_PREFIX, key))

    # -- housekeeping -----------------------------------------------------------------------

    def purge(self, now: float | None = None) -> int:
        """Remove expired or unreadable entries and a crashed writer's debris; return how many."""
        if self._db is not None:
            return self._db.purge()
        now = time.time() if now is None else now
        removed = 0
        if self._trusted_owners() is None:
            return 0  # missing, or others may write it: touch nothing there
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return 0
        for name in names:
            path = self.directory / name
            if name.startswith(TEMP_PREFIX):
                try:
                    stale = path.stat().st_mtime < now - _TEMP_GRACE
                except FileNotFoundError:
                    continue
                if stale and self._unlink(name):
                    removed += 1
                continue
            if not (name.startswith((_HTTP_PREFIX, _ALPN_PREFIX)) and name.endswith(_SUFFIX)):
                continue
            record = self._read(name, live=False)
            if record is None or not isinstance(exp := record["expires"], (int, float)) or exp <= now:
                if self._unlink(name):
                    removed += 1
        return removed

    def __len__(self) -> int:
        """How many unexpired entries are pending (for `check` and the tests)."""
        if self._db is not None:
            return self._db.count()
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return 0
        return sum(
            1
            for n in names
            if n.startswith((_HTTP_PREFIX, _ALPN_PREFIX)) and self._read(n) is not None
        )

    # -- files ------------------------------------------------------------------------------

    def _ensure_directory(self) -> None:
        """Create the directory (and missing parents) 0755 whatever the umask; refuse, never
        chmod, an existing one that group or others may write, or that another user owns."""
        make_directory(self.directory, 0o755)
        check_directory(self.directory)

    def _write(self, name: str, record: dict[str, object]) -> None:
        self._ensure_directory()
        atomic_write(self.directory / name, json.dumps(record, separators=(",", ":")).encode("utf-8"),
                     0o644, durable=False, purge=not self._purged)
        self._purged = True

    def _trusted_owners(self) -> frozenset[int] | None:
        """Who may have written an entry (wucme.challenge.storefile: the readers' one rule)."""
        return trusted_owners(self.directory)

    def _read(self, name: str, *, live: bool = True) -> dict[str, object] | None:
        """The record in *name* (wucme.challenge.storefile.read_entry)."""
        return read_entry(self.directory, name, live=live)

    def _unlink(self, name: str) -> bool:
        try:
            os.unlink(self.directory / name)
        except FileNotFoundError:
            return False
        return True

