"""The certificate repository in WUCME_HERE: account key, certificates, keys and their state.

Files (ODS-2 names, docs/commands.md "The repository"):
- `WUCME_ACCOUNT.PEM`: the account key (0600);
- `WUCME_C_<HOST>.PEM`: the chain with the private key appended, the file a server uses (0600);
- `WUCME_K_<HOST>.PEM`: the private key alone (0600);
- `WUCME_S_<HOST>.JSON`: what wucme knows of the certificate (hosts, key and challenge type,
  last result, attempts, serial, not-after);
- `WUCME_LOAD.JSON`: the outcome of the last load action (a failed one is run again by the next
  renewal pass, whether `manage` or the agent runs it).

Every write goes through `write_versioned` (atomic, fsynced, earlier versions kept).  State is
advisory: a state file that does not parse is treated as "needs issuance", never a crash, and the
certificate file itself stays the truth for serial and expiry.
"""
from __future__ import annotations

import datetime as _dt
import errno
import hashlib
import json
import os
import re
from functools import cached_property
from pathlib import Path
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from wucme import crypto, scanindex
from wucme._native import certscan
from wucme.core.jws import key_type
from wucme.core.times import iso, utc_now
from wucme.errors import WucmeError
from wucme.vms.atomic import fill_fd, write_temp
from wucme.vms.secure import check_directory, make_directory
from wucme.vms.files import write_versioned, write_versioned_set
from wucme.settings import here_path
from wucme.vms.ods2 import cert_file_name, key_file_name, ods2_name

if TYPE_CHECKING:
    from cryptography import x509

    from wucme.lock import Lock
    from wucme.lockpg import PgLock

#: The lock manager's resources of a repository (the agent's election, the pass, each certificate).
LOCK_DIR = "WUCME_LOCKS"


class Busy(WucmeError):
    """Another process works on this certificate (`/NOWAIT`, or a wait that timed out)."""

    ident = "BUSY"
    severity = "W"

#: Where the repository lives on Linux when neither WUCME_HERE nor WASD_ROOT is defined.
ACCOUNT_KEY = "WUCME_ACCOUNT.PEM"
#: The lock resource of the account key (Repository.lock_account), and how long a second
#: `register` waits for the first (a registration takes seconds).
ACCOUNT_RESOURCE = "WUCME_ACCOUNT"
ACCOUNT_LOCK_WAIT = 120.0
STATE_PREFIX = "WUCME_S_"
STATE_TYPE = ".JSON"
LOG_PREFIX = "WUCME_LOG_"
LOAD_FILE = "WUCME_LOAD.JSON"
KEY_MODE = 0o600
STATE_MODE = 0o644

_C_FILE = re.compile(r"WUCME_C_([A-Z0-9_$-]{1,31})\.PEM")
_S_FILE = re.compile(r"WUCME_S_([A-Z0-9_$-]{1,31})\.JSON")


class NoSpace(WucmeError):
    """The file system of the repository is full: the issued certificate could not be saved.

    The old pair is untouched; `pem` holds the new certificate and its key (for a retry),
    `rescue` the file it was also written to, if one fitted."""

    ident = "NOSPACE"

    def __init__(self, text: str, *, pem: bytes, rescue: Path | None) -> None:
        super().__init__(text)
        self.pem = pem
        self.rescue = rescue


class NoPrivilege(WucmeError):
    """The repository cannot be written: the SYSPRV of the seed, checked before any CA traffic."""

    ident = "NOPRIV"


def key_description(key: crypto.PrivateKey) -> str:
    """`EC P-256`, `RSA 2048`: what the state file and `certificates` show."""
    return f"EC P-{key.key_size}" if key_type(key) == "EC" else f"RSA {key.key_size}"


class CertState:
    """The state of one managed certificate (`WUCME_S_<HOST>.JSON`).

    A plain class, as the other records on `issue`'s path, not a dataclass: `dataclasses`
    brings `inspect` and `ast` into every verb's start (docs/performance.md)."""

    __slots__ = ("hosts", "key_type", "challenge", "status", "last_result", "last_attempt",
                 "next_attempt", "serial", "not_after", "corrupt")

    def __init__(self, hosts: list[str], key_type: str = "", challenge: str = "", status: str = "",
                 last_result: str = "", last_attempt: str | None = None, next_attempt: str | None = None,
                 serial: str | None = None, not_after: str | None = None, corrupt: bool = False) -> None:
        self.hosts = hosts
        self.key_type = key_type
        self.challenge = challenge
        #: "issued", "renewed", "failed", "revoked", or "" before the first attempt.
        self.status = status
        self.last_result = last_result
        self.last_attempt = last_attempt
        self.next_attempt = next_attempt
        self.serial = serial
        self.not_after = not_after
        #: Set when the state file could not be read: the certificate needs issuance.
        self.corrupt = corrupt

    def __eq__(self, other: object) -> bool:
        """Equal states have equal fields; `corrupt` is not compared (as the dataclass did not)."""
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, CertState)
        return self.fields() == other.fields()

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"CertState({', '.join(f'{k}={v!r}' for k, v in self.fields().items())}, corrupt={self.corrupt!r})"

    def to_json(self) -> bytes:
        d = self.fields()
        d["version"] = 1
        return (json.dumps(d, indent=1) + "\n").encode()

    def fields(self) -> dict[str, Any]:
        """The state file's fields (what the scan index keeps of a good state)."""
        return {"hosts": list(self.hosts), "key_type": self.key_type, "challenge": self.challenge,
                "status": self.status, "last_result": self.last_result,
                "last_attempt": self.last_attempt, "next_attempt": self.next_attempt,
                "serial": self.serial, "not_after": self.not_after}

    @classmethod
    def from_fields(cls, d: dict[str, Any]) -> CertState:
        """The state of fields() (the scan index's copy of a state that parsed); KeyError or
        TypeError when *d* is not that."""
        st = cls(d["hosts"], d["key_type"], d["challenge"], d["status"], d["last_result"],
                 d["last_attempt"], d["next_attempt"], d["serial"], d["not_after"])
        if not (type(st.hosts) is list and st.hosts and all(type(h) is str and h for h in st.hosts)):
            raise TypeError("no list of hosts")
        return st

    @classmethod
    def from_json(cls, data: bytes) -> CertState:
        """Parse a state file; ValueError for anything that is not a well-formed state."""
        try:
            d = json.loads(data.decode("utf-8"))
        except (ValueError, RecursionError) as e:  # also an int of over 4300 digits
            raise ValueError(f"not JSON: {e}") from None
        return cls.from_dict(d)

    @classmethod
    def from_dict(cls, d: Any) -> CertState:
        """A state of a state file's parsed JSON; ValueError when it is not a well-formed one."""
        if not isinstance(d, dict):
            raise ValueError("not a JSON object")
        hosts = d.get("hosts")
        if not isinstance(hosts, list) or not hosts or not all(isinstance(h, str) and h for h in hosts):
            raise ValueError("no list of hosts")
        st = cls(hosts=list(hosts))
        for k in ("key_type", "challenge", "status", "last_result"):
            if isinstance(d.get(k), str):
                setattr(st, k, d[k])
        for k in ("last_attempt", "next_attempt", "serial", "not_after"):
            if isinstance(d.get(k), str):
                setattr(st, k, d[k])
        return st


class Managed:
    """One certificate of the repository as `certificates` and the renewal function see it.

    `info` is what the scan read of the leaf (crypto.cert_info: serial, validity, names,
    AKI); `leaf`, the full `cryptography` certificate, is parsed only when asked for.
    """

    def __init__(self, host_part: str, state: CertState, directory: Path, info: crypto.CertInfo | None = None,
                 problem: str = "") -> None:
        self.host_part = host_part
        self.state = state
        self.directory = directory
        self.info = info
        self.problem = problem
        self._leaf: x509.Certificate | None = None

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, Managed)
        return ((self.host_part, self.state, self.directory, self.info, self.problem)
                == (other.host_part, other.state, other.directory, other.info, other.problem))

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return (f"Managed(host_part={self.host_part!r}, state={self.state!r}, directory={self.directory!r}, "
                f"info={self.info!r}, problem={self.problem!r})")

    @property
    def cert_name(self) -> str:
        """The WUCME_C file's name, without making its Path."""
        return f"WUCME_C_{self.host_part}.PEM"

    # The file names, made when first used (a scan of thousands of certificates notices).
    @cached_property
    def cert_path(self) -> Path:
        return self.directory / self.cert_name

    @cached_property
    def key_path(self) -> Path:
        return self.directory / f"WUCME_K_{self.host_part}.PEM"

    @cached_property
    def state_path(self) -> Path:
        return self.directory / f"{STATE_PREFIX}{self.host_part}{STATE_TYPE}"

    @property
    def leaf(self) -> x509.Certificate | None:
        if self._leaf is None and self.info is not None:
            from cryptography import x509

            self._leaf = x509.load_der_x509_certificate(self.info.der)
        return self._leaf

    @property
    def hosts(self) -> list[str]:
        return self.state.hosts

    def days_left(self, now: _dt.datetime | None = None) -> float | None:
        if self.info is None:
            return None
        now = now or _dt.datetime.now(_dt.timezone.utc)
        return (self.info.not_valid_after_utc - now).total_seconds() / 86400.0


class Repository:
    """The files of WUCME_HERE; `Repository.here()` resolves the logical when used."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        #: The key of the index that holds what the last complete scan saw (scan(snapshot=True)).
        self._seen: list[int] | None = None

    @classmethod
    def here(cls) -> Repository:
        return cls(here_path())

    def __repr__(self) -> str:
        return f"Repository({str(self.path)!r})"

    # --- names -----------------------------------------------------------------------------

    @property
    def account_key_path(self) -> Path:
        return self.path / ACCOUNT_KEY

    def cert_path(self, host: str) -> Path:
        return self.path / cert_file_name(host)

    def key_path(self, host: str) -> Path:
        return self.path / key_file_name(host)

    def state_path(self, host: str) -> Path:
        return self.path / f"{STATE_PREFIX}{ods2_name(host)}{STATE_TYPE}"

    # --- who works on what --------------------------------------------------------------------

    def lock_certificate(self, cert_file: str, *, wait: bool = True,
                         timeout: float | None = None) -> Lock | PgLock:
        """The lock of the certificate in *cert_file* (its WUCME_C file name): EX on a resource
        named for it, held by `issue`, `manage`, `revoke` and the agent's pass around their
        work on that certificate, so that two orders for one certificate never run at once.
        The second waits its turn (and then reads the state again), or with *wait* False (or
        past *timeout*) gets Busy (`%WUCME-W-BUSY`).

        With WUCME_LOCK_DB defined the lock is cluster-wide, a PostgreSQL advisory lock keyed
        by the repository's lock id (wucme.lockpg.PgLock), never the local one: the nodes of a
        cluster share renewals through it (docs/cluster.md).  The database not answering is
        PgLockError (`%WUCME-E-LOCKDB`), with no fallback to the local lock, which the other
        nodes would not see; the holder calls `check()` before it orders and before it writes."""
        return self._lock(certificate_resource(cert_file), cert_file, wait, timeout)

    def lock_account(self, *, timeout: float | None = ACCOUNT_LOCK_WAIT) -> Lock | PgLock:
        """The lock of the account key, held by `register` from its look at the key to the new
        key saved: two registrations at once each keep the other's key as an earlier version
        (without it both kept the old key as a version, and the first new key was lost while
        its account stayed at the CA).  The second waits up to *timeout* seconds, then Busy."""
        return self._lock(ACCOUNT_RESOURCE, ACCOUNT_KEY, True, timeout)

    def _lock(self, resource: str, what: str, wait: bool, timeout: float | None) -> Lock | PgLock:
        from wucme.lock import LockManager, LockTimeout, NotQueued
        from wucme.settings import lock_db

        try:
            conninfo = lock_db()
            if conninfo:
                from wucme.lockpg import PgLock

                return PgLock(conninfo, resource, repository=self.path).acquire(wait=wait, timeout=timeout)
            return LockManager(self.path / LOCK_DIR).enqueue(resource, "EX", wait=wait, timeout=timeout)
        except (NotQueued, LockTimeout):
            raise Busy(f"another process is working on {what}") from None

    # --- access ------------------------------------------------------------------------------

    def ensure_writable(self) -> None:
        """Create the directory if needed and prove a file can be written there, or NOPRIV.

        Called before any CA traffic, so a user without access learns it at once, not after
        the CA has issued a certificate that cannot be saved.  A new directory (and its missing
        parents) is made 0755 whatever the umask; one that group or others may write, or that
        another user owns, is refused with ``%WUCME-E-INSECURE``: keys live there.
        """
        why = ""
        try:
            make_directory(self.path, 0o755)
            if not self.path.is_dir():
                why = "not a directory"
            else:
                check_directory(self.path)
                _probe_write(self.path)
        except OSError as e:
            why = e.strerror or str(e)
        if why:
            raise NoPrivilege(f"cannot write the certificate repository {self.path}: {why} "
                              "(wucme needs write access to WUCME_HERE, the SYSPRV of VMS)")

    # --- the account key --------------------------------------------------------------------

    def load_account_key(self) -> crypto.PrivateKey:
        """The account key; a missing or unreadable key is an error, never replaced here."""
        path = self.account_key_path
        if not path.exists():
            raise WucmeError(f"no account key {path}: register an account first (wucme register)",
                             ident="NOACCOUNT")
        try:
            return crypto.key_load_own(path)
        except crypto.CryptoError as e:
            raise WucmeError(
                f"account key {path} is unusable ({e.text}); it is never replaced silently: "
                f"restore an earlier version ({ACCOUNT_KEY};N) or run wucme register for a new account",
                ident="BADACCKEY") from None

    def save_account_key(self, key: crypto.PrivateKey) -> Path:
        """Write a new account key, keeping the previous one as an earlier version."""
        return write_versioned(self.account_key_path, crypto.key_pem(key), KEY_MODE)

    # --- certificates -----------------------------------------------------------------------

    def save_certificate(self, hosts: list[str], key: crypto.PrivateKey, chain_pem: bytes,
                         challenge: str, status: str = "issued", *,
                         now: _dt.datetime | None = None) -> CertState:
        """Write WUCME_K (key), WUCME_C (chain + key) and the state as one set.

        All three are written to temporary files first and renamed into place only when every
        one is on disk (vms.files.write_versioned_set), so key and certificate are always a
        matching pair: a full disk (ENOSPC) leaves the old pair, and the new certificate is
        kept (NoSpace: in a rescue file when one fits, and in the exception for a retry).
        The renames go key, certificate, state: a kill between the last two leaves a state
        naming the old serial, which the next read reconciles with the certificate (_managed).
        """
        pem = crypto.key_pem(key)
        chain = chain_pem if chain_pem.endswith(b"\n") else chain_pem + b"\n"
        leaf = crypto.chain_info(chain)  # serial and notAfter, as the scan reads them
        state = self.load_state(hosts[0])
        state.hosts = list(hosts)
        state.key_type = key_description(key)
        state.challenge = challenge
        state.status = status
        state.serial = crypto.serial_hex(leaf.serial_number)
        state.not_after = iso(leaf.not_valid_after_utc)
        state.last_attempt = iso(now or utc_now())
        state.last_result = f"{status} {state.last_attempt}"
        state.next_attempt = None
        state.corrupt = False
        try:
            write_versioned_set([(self.key_path(hosts[0]), pem, KEY_MODE),
                                 (self.cert_path(hosts[0]), chain + pem, KEY_MODE),
                                 (self.state_path(hosts[0]), state.to_json(), STATE_MODE)])
        except OSError as e:
            if e.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            raise self._no_space(hosts, chain + pem, e) from None
        return state

    def _no_space(self, hosts: list[str], pem: bytes, e: OSError) -> NoSpace:
        """The certificate the CA issued could not be saved: keep it (rescue file if it fits)."""
        rescue = self.path / f"WUCME_RESCUE_{ods2_name(hosts[0])}.PEM"
        try:
            fill_fd(os.open(rescue, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, KEY_MODE),
                    pem, KEY_MODE)
            where = f"saved to {rescue} (certificate and key)"
        except OSError:
            try:
                os.unlink(rescue)
            except OSError:
                pass
            rescue_path = None
            where = "kept in this process's memory only (no room for a rescue file either)"
        else:
            rescue_path = rescue
        return NoSpace(f"no space left in {self.path} ({e.strerror}) to save the certificate for "
                       f"{', '.join(hosts)}: the old certificate and key are unchanged; the new "
                       f"certificate was {where}", pem=pem, rescue=rescue_path)

    def load_state(self, host: str) -> CertState:
        return self._read_state(self.state_path(host), [host])

    def _read_state(self, path: str | Path, fallback_hosts: list[str]) -> CertState:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return CertState(hosts=list(fallback_hosts))
        except OSError as e:
            return CertState(hosts=list(fallback_hosts), corrupt=True,
                             last_result=f"state file unreadable: {e.strerror}")
        try:
            return CertState.from_json(data)
        except ValueError as e:
            return CertState(hosts=list(fallback_hosts), corrupt=True,
                             last_result=f"state file unreadable: {e}")

    def save_state(self, state: CertState) -> Path:
        return write_versioned(self.state_path(state.hosts[0]), state.to_json(), STATE_MODE)

    def record_attempt(self, state: CertState, status: str, result: str,
                       next_attempt: _dt.datetime | None = None, *,
                       now: _dt.datetime | None = None) -> None:
        """Note an attempt's outcome in the state file (a failure keeps the old certificate)."""
        state.status = status
        state.last_attempt = iso(now or utc_now())
        state.last_result = result
        state.next_attempt = iso(next_attempt)
        state.corrupt = False
        self.save_state(state)

    # --- the load action ---------------------------------------------------------------------

    def record_load(self, ok: bool, result: str, *, name: str = LOAD_FILE, loaded: str = "") -> None:
        """Note the outcome of a load action (WUCME_LOAD.JSON, no versions kept; in shared
        renewals each node's *name*, with a digest of the certificates it *loaded*)."""
        data: dict[str, Any] = {"ok": ok, "at": iso(utc_now()), "result": result, "version": 1}
        if loaded:
            data["loaded"] = loaded
        write_versioned(self.path / name, (json.dumps(data, indent=1) + "\n").encode(),
                        STATE_MODE, keep=0)

    def load_record(self, name: str = LOAD_FILE) -> dict[str, Any]:
        """The last load's record ({} when missing or unreadable)."""
        try:
            data = json.loads((self.path / name).read_bytes())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def load_pending(self, name: str = LOAD_FILE) -> bool:
        """Did the last load action fail?  (Then the next pass loads again, even with nothing
        renewed.)  A missing or unreadable record means no."""
        return self.load_record(name).get("ok") is False

    def managed(self) -> list[Managed]:
        """Every certificate of the repository: those with a state file, and WUCME_C files
        without one (their hosts are read from the certificate).  Sorted by file name."""
        return list(self.scan())

    def scan(self, select: Callable[[scanindex.Entry], bool] | None = None, *,
             snapshot: bool = False) -> Iterator[Managed]:
        """managed(), one certificate at a time: a pass over a large repository holds one.

        Files unchanged since the last scan are not read: the index (wucme.scanindex,
        WUCME_SCAN.DAT) answers for them, keyed by what stat(2) says of each file; every
        other file is read as before, and the index rewritten.  A scan abandoned before its
        end leaves the index as it was.  *select*, when given, is asked about each
        certificate the index answers for (its Entry: hosts, status, not-after) and the
        scan skips those it turns down: a pre-filter, which must let through every one its
        caller could want (every certificate the index cannot answer for is yielded).

        With *snapshot*, the certificates are the ones the previous complete scan of this
        object saw (as one list of them would have been): while the index that scan left is
        still in place, the certificates it holds both files' keys of are taken from it
        without a look at the directory or the files (the renewal pass's second look at what
        its first saw); any other is read as usual."""
        seen, self._seen = self._seen, None
        if snapshot and seen is not None:
            yield from self._again(seen, select)
            return
        try:
            dfd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
        except (FileNotFoundError, NotADirectoryError):
            return
        except OSError as e:
            raise NoPrivilege(f"cannot read the certificate repository {self.path}: {e.strerror}") from None
        here = f"{os.fspath(self.path)}/"
        try:
            # The directory's key before anything is read of it: while it is the one the index
            # vouches for (its DIR), no name has come or gone since a scan found the index's
            # names there, and the directory is not listed (wucme.scanindex.header).
            dkey = scanindex.dir_key(os.fstat(dfd))
            old = scanindex.IndexReader(here)
            listed = not (old.names is not None and old.dir_key == dkey)
            names = self._names(dfd) if listed else old.names
        except OSError as e:
            os.close(dfd)
            raise NoPrivilege(f"cannot read the certificate repository {self.path}: {e.strerror}") from None
        assert names is not None
        scanner = certscan.backend()  # WUCME_NO_NATIVE read once per scan
        new = scanindex.IndexWriter(here, STATE_MODE, names)

        trusted = old.names == names

        def parts() -> Iterator[str]:
            """The index's parts while the directory's names are the ones it was made from
            (nothing held per certificate), else the sorted listing (whose own digest the
            new index records: the names and the parts of one reading of the directory)."""
            nonlocal trusted
            last = ""
            if trusted:
                for last in old.parts():
                    yield last
                if not old.damaged:
                    return
                trusted = False
            listed, new.names = self._parts(dfd)
            yield from (p for p in listed if p > last)
        kept = 0
        try:
            if not trusted and old.names is not None:
                old.changed = True  # (its header names another directory: rewritten)
            for part in parts():
                entry = old.lookup(part)
                if old.changed:
                    new.begin(old, kept)
                asked = select
                if entry is not None and select is not None and entry.has_cert and entry.has_state:
                    # What most of a pass over an unchanged repository is: both files keep the
                    # keys the index has for them, and *select* passes the certificate over
                    # (as _indexed() would decide, without what it makes on the way).
                    if entry.same_files(dfd, scanner):
                        if not select(entry):
                            kept += len(entry.raw)
                            new.add(entry)
                            continue
                        asked = None  # (asked once: _indexed() makes the certificate)
                m, line = self._indexed(dfd, here, part, entry, scanner, new, asked, trusted)
                if line is _GONE:
                    # Both files gone since the index was made (the names' digest came back to
                    # its old value meanwhile): no certificate; the next scan lists the directory.
                    new.names = ("", 0)
                    old.changed = True
                    new.begin(old, kept)
                    continue
                if line is None and entry is not None:
                    kept += len(entry.raw)
                    new.add(entry)
                elif line is not None:
                    new.begin(old, kept)
                    new.add(line)
                if m is not None:
                    yield m
            old.finish()
            if old.changed:
                new.begin(old, kept)
            new.commit()
            vouched = None
            if listed and trusted and not new.begun and _settled(dkey, new.started):
                # Listed, the names the index's, and the index kept: the directory's key,
                # taken before the listing, is theirs (a name changed since moves it on).
                vouched = old.vouch(here, dkey)
            self._seen = new.key if new.begun else (vouched or old.key)
        finally:
            old.close()
            new.abandon()
            os.close(dfd)

    def _again(self, seen: list[int], select: Callable[[scanindex.Entry], bool] | None) -> Iterator[Managed]:
        """scan(snapshot=True): the index the last scan left, if it is still the one in place;
        else an ordinary scan."""
        here = f"{os.fspath(self.path)}/"
        old = scanindex.IndexReader(here)
        try:
            dfd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            old.close()
            yield from self.scan(select)
            return
        try:
            if old.key != seen:
                old.close()
                os.close(dfd)
                dfd = -1
                yield from self.scan(select)
                return
            scanner = certscan.backend()
            unwritten = scanindex.IndexWriter(here, STATE_MODE, ("", 0))  # (never begun)
            done = ""
            for e in old.checked_entries():  # (checked by the scan that left it)
                done = e.part
                m: Managed | None
                if e.keyed:
                    if select is not None and not select(e):
                        continue
                    try:
                        cert, fields = e.cert, e.state
                        if cert is None or fields is None:
                            raise ValueError("an entry whose JSON is not what its keys say")
                        m = self._assemble(e.part, scanindex.cert_from_fields(f"{here}WUCME_C_{e.part}.PEM", cert),
                                           "", CertState.from_fields(fields), True)
                    except (ValueError, TypeError, KeyError):
                        m, _ = self._indexed(dfd, here, e.part, None, scanner, unwritten, select)
                else:
                    m, _ = self._indexed(dfd, here, e.part, e, scanner, unwritten, select)
                if m is not None:
                    yield m
            if old.damaged:  # (it was whole when the last scan left it: someone wrote over it)
                for part in self._parts(dfd)[0]:
                    if part > done:
                        m, _ = self._indexed(dfd, here, part, None, scanner, unwritten, select)
                        if m is not None:
                            yield m
        finally:
            old.close()
            if dfd >= 0:
                os.close(dfd)

    @staticmethod
    def _names(dfd: int) -> tuple[str, int]:
        """(digest, count) of the directory's WUCME_C and WUCME_S file names, in any order:
        the sum of their BLAKE2b digests (a set hash), a listing held by no one."""
        total = count = 0
        with os.scandir(dfd) as it:
            for d in it:
                n = d.name
                kind = n[:8]
                if (kind == "WUCME_C_" and _C_FILE.fullmatch(n)) or (kind == "WUCME_S_" and _S_FILE.fullmatch(n)):
                    total += int.from_bytes(hashlib.blake2b(n.encode(), digest_size=16).digest(), "big")
                    count += 1
        return f"{total & ((1 << 128) - 1):032x}", count

    @staticmethod
    def _parts(dfd: int) -> tuple[list[str], tuple[str, int]]:
        """The sorted parts (`WUCME_C_<part>.PEM`, `WUCME_S_<part>.JSON`) of the repository,
        and the digest of their names as _names() makes it, from one reading."""
        parts: set[str] = set()
        total = count = 0
        with os.scandir(dfd) as it:
            for d in it:
                n = d.name
                kind = n[:8]
                if kind == "WUCME_C_" or kind == "WUCME_S_":
                    m = (_C_FILE if kind == "WUCME_C_" else _S_FILE).fullmatch(n)
                    if m:
                        parts.add(m.group(1))
                        total += int.from_bytes(hashlib.blake2b(n.encode(), digest_size=16).digest(), "big")
                        count += 1
        return sorted(parts), (f"{total & ((1 << 128) - 1):032x}", count)

    def _indexed(self, dfd: int, here: str, part: str, entry: scanindex.Entry | None,
                 scanner: certscan.Scanner, new: scanindex.IndexWriter,
                 select: Callable[[scanindex.Entry], bool] | None, trusted: bool = False
                 ) -> tuple[Managed | None, scanindex.Entry | None]:
        """One certificate: from its index *entry* where both files still have its keys (None
        when *select* turns the entry down), else read (and a new entry for the index; None
        when the old one still holds; _GONE when the part came from a *trusted* index and
        neither file exists)."""
        cname, sname = f"WUCME_C_{part}.PEM", f"{STATE_PREFIX}{part}{STATE_TYPE}"
        cst = sst = None
        try:
            cst = os.stat(cname, dir_fd=dfd)
        except FileNotFoundError:
            pass
        except OSError:
            return self._managed(part, scanner), scanindex.Entry(part, None, None, None, None)
        try:
            sst = os.stat(sname, dir_fd=dfd)
        except OSError:
            pass
        if trusted and cst is None and sst is None and not os.path.lexists(here + sname):
            return None, _GONE
        same_c = entry is not None and cst is not None and entry.same_cert(cst)
        same_s = entry is not None and sst is not None and entry.same_state(sst)
        info: crypto.CertInfo | None = None
        state: CertState | None = None
        if entry is not None and (same_c if cst is not None else not entry.has_cert) and (
                same_s if sst is not None else not entry.has_state):
            # Nothing to read: the index answers for both files (each with its key, or absent
            # now as it was then).
            if select is not None and not select(entry):
                return None, None
            try:
                hit_cert, hit_state = entry.cert, entry.state
                if (hit_cert is None) != (cst is None) or (hit_state is None) != (sst is None):
                    raise ValueError("an entry whose JSON is not what its keys say")
                if hit_cert is not None:
                    info = scanindex.cert_from_fields(here + cname, hit_cert)
                state = CertState.from_fields(hit_state) if hit_state is not None else CertState(hosts=[])
                return self._assemble(part, info, "" if info is not None else f"{cname} missing",
                                      state, sst is not None), None
            except (ValueError, TypeError, KeyError):
                info = state = None
                entry = None
        # Read what the index cannot answer for, as _managed() does; the other file of the two
        # may still be the index's (a failure noted in the state leaves the certificate alone).
        problem = ""
        cert: list[Any] | None = None
        if entry is not None:
            try:
                if same_c and entry.cert is not None:
                    info, cert = scanindex.cert_from_fields(here + cname, entry.cert), entry.cert
                if same_s and entry.state is not None:
                    state = CertState.from_fields(entry.state)
            except (ValueError, TypeError, KeyError):
                info = state = None
                cert = None
        if cst is None:
            problem = f"{cname} missing"
        elif info is None:
            try:
                info = crypto.cert_info(here + cname, scanner)
                if info is None:
                    problem = f"{cname} missing"
                else:
                    cert = scanindex.cert_fields(info)
            except crypto.CryptoError as e:
                problem = f"{cname} unreadable: {e.text}"
        if state is None:
            state = self._read_state(here + sname, [])
        fields = None if state.corrupt or not state.hosts else state.fields()
        m = self._assemble(part, info, problem, state, os.path.exists(here + sname) if sst is None else True)
        line = scanindex.Entry(part, new.trusted(cst) if cst is not None and cert is not None else None, cert,
                               new.trusted(sst) if sst is not None and fields is not None else None, fields,
                               hosts_ok=fields is not None and _hosts_ok(fields["hosts"]))
        if entry is not None and entry.raw and line.line() == entry.raw:
            return m, None
        return m, line

    def _managed(self, part: str, scanner: certscan.Scanner) -> Managed:
        """One certificate, its files read (no index)."""
        here = f"{os.fspath(self.path)}/"
        cname, spath = f"WUCME_C_{part}.PEM", f"{here}{STATE_PREFIX}{part}{STATE_TYPE}"
        info = None
        problem = ""
        try:
            info = crypto.cert_info(here + cname, scanner)
            if info is None:
                problem = f"{cname} missing"
        except crypto.CryptoError as e:
            problem = f"{cname} unreadable: {e.text}"
        state = self._read_state(spath, [])
        return self._assemble(part, info, problem, state, info is not None or os.path.exists(spath))

    def _assemble(self, part: str, info: crypto.CertInfo | None, problem: str, state: CertState,
                  state_exists: bool) -> Managed:
        """The Managed of what was read (or the index answered) of *part*'s two files."""
        cname = f"WUCME_C_{part}.PEM"
        names: list[str] = []
        if not state.hosts:
            # No state file, or one that does not parse: the hosts come from the certificate.
            names = list(info.names) if info is not None else []
            state.hosts = names or [part.lower()]
        if info is None and not state_exists:
            state.corrupt = True
        if info is not None and state.serial and _serial_int(state.serial) != info.serial_number:
            # A save killed between the certificate's rename and the state's: the certificate
            # (renamed after its key) is what the server loads; the state follows it.
            cert_serial = crypto.serial_hex(info.serial_number)
            state.last_result = (f"the state named serial {state.serial}, {cname} holds {cert_serial}: "
                                 "the certificate is trusted (a save was interrupted)")
            state.serial = cert_serial
            state.not_after = iso(info.not_valid_after_utc)
        if state.corrupt and not names and state.hosts == [part.lower()]:
            problem = problem or "state unreadable and no certificate"
        return Managed(part, state, self.path, info, problem)

    def reread(self, m: Managed) -> Managed:
        """*m* as its files say now (another process may have renewed it meanwhile)."""
        part = m.cert_name[len("WUCME_C_"):-len(".PEM")]
        return self._managed(part, certscan.backend())

    def find(self, certfile: Path) -> Managed | None:
        """The managed certificate whose WUCME_C file is *certfile*, or whose serial it carries."""
        try:
            serial: int | None = crypto.cert_load(certfile)[0].serial_number
        except (crypto.CryptoError, IndexError):
            serial = None
        for m in self.managed():
            if m.cert_path == certfile or (serial is not None and m.info is not None
                                           and m.info.serial_number == serial):
                return m
        return None

    def newest_log(self) -> Path | None:
        """The most recent agent log (WUCME_LOG_*), or None."""
        try:
            logs = [self.path / n for n in os.listdir(self.path) if n.upper().startswith(LOG_PREFIX)]
        except OSError:
            return None
        logs = [p for p in logs if p.is_file()]
        return max(logs, key=lambda p: (p.stat().st_mtime, p.name)) if logs else None


def _settled(dkey: bytes, started_ns: int) -> bool:
    """Is a directory's key (scanindex.dir_key) older than the scan by RACY_SECONDS?  A name
    changed within the same tick of the file system's clock would leave it as it is (never
    less than 50 ms: many ticks of any clock a file system keeps its times by)."""
    limit = started_ns - int(max(scanindex.RACY_SECONDS, 0.05) * 1e9)
    mtime, ctime, _ = dkey.split(b",")
    return int(mtime) < limit and int(ctime) < limit


def _probe_write(path: Path) -> None:
    """Prove a file can be created in *path*: an unnamed file (O_TMPFILE), which needs the
    same write access and a free inode as a named one but leaves the directory as it was (its
    mtime is how the scan index knows the repository's names unchanged: wucme.scanindex), and
    costs neither a listing for crashed writers' temporaries nor an fsync; where the file
    system has no O_TMPFILE, a temporary file written and removed."""
    flag = getattr(os, "O_TMPFILE", 0)
    if flag:
        try:
            os.close(os.open(path, flag | os.O_WRONLY | getattr(os, "O_CLOEXEC", 0), KEY_MODE))
            return
        except OSError as e:
            if e.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
                raise  # (EACCES, EROFS, ENOSPC, EDQUOT...: what a named file would meet too)
    os.unlink(write_temp(path, b"", KEY_MODE))


def _hosts_ok(hosts: list[str]) -> bool:
    """Are these a state's hosts that the renewal pass takes (valid identifiers, no
    wildcard)?  Kept in the scan index, so the pass's check of every state before any
    request reads no state the index answers for."""
    from wucme.core.ident import validate_identifiers

    try:
        validate_identifiers(hosts, wildcard=False)
    except WucmeError:
        return False
    return True


#: _indexed(): the part is no certificate any more.
_GONE = scanindex.Entry("", None, None, None, None)


def certificate_resource(cert_file: str) -> str:
    """The lock resource of the certificate in *cert_file* (a WUCME_C file name, any case)."""
    return f"WUCME_C_{hashlib.sha256(cert_file.upper().encode()).hexdigest()[:22]}"


def _serial_int(text: str) -> int | None:
    """A state's serial as a number (states before openssl's form hold lower-case hex)."""
    try:
        return int(text, 16)
    except ValueError:
        return None
