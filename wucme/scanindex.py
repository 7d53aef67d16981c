"""The repository scan's index, `WUCME_SCAN.DAT`: what the last scan read of each certificate
and state file, so that a pass over files that have not changed reads none of them.

A cache, never a source of truth.  Each entry is keyed by its files' names and what stat(2)
says of them (size, mtime_ns, ctime_ns, inode): a file whose key differs in any of these (a
new certificate renamed into place, an edit in place, a `touch`) is read again, and the
entry rewritten.  A key is only recorded when the file is older than the scan by more than
RACY_SECONDS: a file changed again within the file system's timestamp granule would keep its
mtime, so a file that recent is read again by the next scan too (git's "racy clean" rule).

The file is one header line and one line per certificate, sorted by the part of the file
name after `WUCME_C_` (the order of the scan), each with a CRC-32 of its JSON: a line that
is damaged (or a header from another format) ends the use of the index for the rest of that
scan, which reads the files and writes a new index.  The scan streams: the index is read a
line at a time beside the sorted directory listing and the new one written the same way
(only when something changed, by write-and-rename: a reader sees the old index or the new
one), so memory does not grow with the repository beyond the listing's names.  Once a scan
has found the directory's names to be the index's, the header also holds the directory's own
key (header(): DIR), and while the directory keeps it the scan does not list it at all.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import time
import zlib
from collections.abc import Iterator
from typing import IO, Any

from wucme import __version__
from wucme.core.times import iso, renewal_threshold
from wucme._native import certscan
from wucme._native.certscan import CertInfo
from wucme.vms.atomic import TEMP_PREFIX

__all__ = ["INDEX_FILE", "NO_DIR_KEY", "RACY_SECONDS", "FileKey", "dir_key", "Entry", "IndexReader",
           "IndexWriter", "file_key",
           "IndexedCertInfo", "cert_fields", "cert_from_fields"]

#: The index's name in the repository (no `;N` versions: it is rewritten, never kept).
INDEX_FILE = "WUCME_SCAN.DAT"
#: Files changed less than this many seconds before the scan are read again next time.
RACY_SECONDS = 2.0
_FORMAT = 5
#: The header's DIR field before a scan has vouched for the directory (never a directory's key).
NO_DIR_KEY = b"-" * 62


def header(names: tuple[str, int], dir_key: bytes = NO_DIR_KEY) -> bytes:
    """The first line: the format, the digest and count of the WUCME_C and WUCME_S file names
    the index was made from (Repository.scan: a directory whose names still give them holds
    exactly the index's certificates, and is not listed again), and DIR, the directory's own
    key (dir_key()) when a scan found those names in it: while stat(2) of the directory still
    gives that key no name in it has changed (every create, unlink and rename moves its
    mtime and ctime), and it is not even listed.  DIR has a fixed width: a scan that lists
    the directory and finds the names unchanged writes it in place (IndexReader.vouch), never
    renaming the index (which would change the directory again)."""
    return b'{"wucme-scan-index":%d,"wucme":"%s","names":"%s","count":%d,"dir":"%s"}\n' % (
        _FORMAT, __version__.encode(), names[0].encode(), names[1], dir_key)


def dir_key(st: os.stat_result) -> bytes:
    """A directory's key as DIR holds it: mtime_ns, ctime_ns, inode, 20 digits each."""
    return b"%020d,%020d,%020d" % (st.st_mtime_ns, st.st_ctime_ns, st.st_ino)

#: [size, mtime_ns, ctime_ns, inode] of a file (what file_key() makes; anything in a line).
FileKey = Any


def file_key(st: os.stat_result) -> list[int]:
    """The key of a file as the index keeps it."""
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


_UNREAD: Any = object()


class Entry:
    """One certificate's line: the keys of its WUCME_C and WUCME_S files when they were read
    (None: not trusted, or the file was missing), the leaf as the scan read it (serial as
    hex, validity as ISO 8601, names, AKI as hex), the state file's fields, whether the
    state's hosts are all valid identifiers (`hosts_ok`, core.ident with no wildcard), and
    what the renewal pass decides "not due" from (`due`, below).

    A line is `CRC PART CKEY SKEY OK DUE JSON`: the keys (`size,mtime_ns,ctime_ns,inode`, `-`
    for no data, `?` for data whose key is not trusted), the flag and DUE are read without
    the JSON, which is decoded only when the leaf or the state is asked for; a key is parsed
    only when asked for (`same_cert`/`same_state` compare it with a stat(2) as text).

    DUE is `-`, or, for a certificate and state that both parsed, whose state is not revoked,
    whose hosts are good (`hosts_ok`) and all in the leaf: `RENEW/NOTAFTER/WHEN/HOSTS`, the
    moment a third of the lifetime is left (half for 10 days or less: core.times.
    renewal_threshold) and the leaf's not-after as microseconds since the epoch, the first
    as wucme writes times (`2027-01-01T00:00:00Z`), and the state's hosts joined by commas:
    everything renewal.due() looks at when the CA offers no ARI, made of the JSON the line
    carries (the CRC covers both)."""

    __slots__ = ("part", "_ckey", "_skey", "_ck", "_sk", "has_cert", "has_state", "hosts_ok", "due",
                 "raw", "_body", "_cert", "_state", "_pb")

    def __init__(self, part: str, ckey: FileKey | None, cert: list[Any] | None,
                 skey: FileKey | None, state: dict[str, Any] | None, raw: bytes = b"",
                 hosts_ok: bool = False) -> None:
        self.part, self._ckey, self._skey, self.raw, self.hosts_ok = part, ckey, skey, raw, hosts_ok
        self._ck = self._sk = self._pb = b""
        self._cert, self._state = cert, state
        self.has_cert, self.has_state = cert is not None, state is not None
        self._body: bytes | None = None
        self.due = b""

    @property
    def ckey(self) -> FileKey | None:
        """The certificate file's key (None: not trusted, or no file)."""
        if self._ckey is _UNREAD:
            self._ckey = _key_of(self._ck)
        return self._ckey

    @property
    def skey(self) -> FileKey | None:
        """The state file's key (None: not trusted, or no file)."""
        if self._skey is _UNREAD:
            self._skey = _key_of(self._sk)
        return self._skey

    @property
    def keyed(self) -> bool:
        """Are both files' keys recorded?"""
        if self._ckey is _UNREAD and self._skey is _UNREAD:
            # (what a key field of a line that parsed holds: `-`, `?`, or a key; a key that is
            # not one never matches a stat(2), so the scan that wrote the line read the file)
            return len(self._ck) >= 7 and len(self._sk) >= 7
        return self.ckey is not None and self.skey is not None

    def same_cert(self, st: os.stat_result) -> bool:
        """Does the certificate file's recorded key match *st*?"""
        if self._ckey is _UNREAD:
            return self._ck == _key_bytes(st)
        return self._ckey == file_key(st)

    def same_files(self, dfd: int, scanner: certscan.Scanner) -> bool:
        """Do both files (in the directory open as *dfd*) still have the keys recorded?
        False when either differs or is missing."""
        if self._ckey is _UNREAD and self._skey is _UNREAD:
            return scanner.same_keys(dfd, self._pb, self._ck, self._sk)
        try:
            return (self.same_cert(os.stat(f"WUCME_C_{self.part}.PEM", dir_fd=dfd))
                    and self.same_state(os.stat(f"WUCME_S_{self.part}.JSON", dir_fd=dfd)))
        except OSError:
            return False

    def same_state(self, st: os.stat_result) -> bool:
        """Does the state file's recorded key match *st*?"""
        if self._skey is _UNREAD:
            return self._sk == _key_bytes(st)
        return self._skey == file_key(st)

    def _decode(self) -> None:
        body, self._body = self._body, None
        if body is None:
            return
        try:
            cert, state = _decode(body.decode("utf-8"))
            if not ((cert is None or type(cert) is list) and (state is None or type(state) is dict)):
                raise TypeError("bad entry")
        except (ValueError, TypeError):
            cert = state = None  # (a line whose checksum holds but not its JSON: nothing)
        self._cert, self._state = cert, state

    @property
    def cert(self) -> list[Any] | None:
        self._decode()
        return self._cert

    @property
    def state(self) -> dict[str, Any] | None:
        self._decode()
        return self._state

    @property
    def hosts(self) -> list[str] | None:
        """The state's hosts; None without a state (the scan then takes the leaf's names)."""
        state = self.state
        return state["hosts"] if state is not None else None

    @property
    def status(self) -> str:
        state = self.state
        return state["status"] if state is not None else ""

    @property
    def not_after(self) -> _dt.datetime | None:
        """The leaf's not-after; None without a certificate."""
        cert = self.cert
        return _dt.datetime.fromisoformat(cert[2]) if cert is not None else None

    def line(self) -> bytes:
        """The entry as the index stores it: the line it was read from, or a new one."""
        if self.raw:
            return self.raw
        cert, state = self.cert, self.state
        body = json.dumps([cert, state], separators=(",", ":")).encode()
        rest = b"%s %s %s %d %s %s" % (self.part.encode(), _key_text(self.ckey, self.has_cert),
                                      _key_text(self.skey, self.has_state), self.hosts_ok,
                                      _due_field(cert, state) if self.hosts_ok else b"-", body)
        return b"%08x %s\n" % (zlib.crc32(rest), rest)


_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
_MICROSECOND = _dt.timedelta(microseconds=1)


def micros(t: _dt.datetime) -> int:
    """An aware datetime as microseconds since the epoch (exact: timedelta is whole microseconds)."""
    return (t - _EPOCH) // _MICROSECOND


def from_micros(us: int) -> _dt.datetime:
    """The inverse of micros(), in UTC."""
    return _EPOCH + _dt.timedelta(microseconds=us)


def _due_field(cert: list[Any] | None, state: dict[str, Any] | None) -> bytes:
    """DUE of a line (Entry), `-` when the entry is not one the renewal pass may decide from it."""
    try:
        if cert is None or state is None or state["status"] == "revoked":
            return b"-"
        hosts = state["hosts"]
        names = set(cert[3])
        if not all(type(h) is str and h.lower() in names for h in hosts):
            return b"-"
        nb, na = _dt.datetime.fromisoformat(cert[1]), _dt.datetime.fromisoformat(cert[2])
        renew = na - renewal_threshold(nb, na)
        text = ",".join(hosts).encode("ascii")
        when = iso(renew)
    except (KeyError, IndexError, TypeError, ValueError, OverflowError):
        return b"-"
    if b" " in text or b"/" in text or when is None:
        return b"-"
    return b"%d/%d/%s/%s" % (micros(renew), micros(na), when.encode(), text)


_key_bytes = certscan.file_key  # (a file's key as a line holds it)


def _key_text(key: FileKey | None, data: bool) -> bytes:
    if key is None:
        return b"?" if data else b"-"
    return b"%d,%d,%d,%d" % tuple(key)


def _key_of(text: bytes) -> FileKey | None:
    """The key of a key field; None for `-`, `?`, or anything that is no key (not trusted: the
    file is read again, and the line rewritten)."""
    if len(text) < 7:
        return None
    try:
        key = [int(x) for x in text.split(b",")]
    except ValueError:
        return None
    return key if len(key) == 4 else None


_decode = json.JSONDecoder().decode


def _parse(line: bytes, check: bool = True) -> Entry:
    """One line; ValueError when it is damaged in any way (the JSON is checked when used).
    Without *check*, the line's checksum is not computed (IndexReader.checked_entries)."""
    rest = line[9:-1]
    if check and (line[8:9] != b" " or line[-1:] != b"\n" or int(line[:8], 16) != zlib.crc32(rest)):
        raise ValueError("damaged line")
    try:
        part, ck, sk, ok, due, body = rest.split(b" ", 5)
        e = Entry(part.decode("ascii"), _UNREAD, None, _UNREAD, None, line, ok == b"1")
    except (UnicodeDecodeError, ValueError):
        raise ValueError("bad entry") from None
    e._ck, e._sk, e.due, e._body, e._pb = ck, sk, due, body, part
    e.has_cert, e.has_state = ck != b"-", sk != b"-"
    return e



class IndexReader:
    """The old index, entry by entry in the scan's order; `lookup(part)` gives the entry for
    *part* (parts asked for in ascending order) or None.  `changed` is set when the index
    no longer matches the repository (damaged, entries for files that are gone)."""

    def __init__(self, directory: str) -> None:
        self.changed = False
        self.damaged = False
        self.key: list[int] | None = None
        #: (digest, count) of the file names the index was made from; None without an index.
        self.names: tuple[str, int] | None = None
        self.dir_key = NO_DIR_KEY
        self._dir_at = 0
        self.header_len = 0
        self._lines: Iterator[bytes] | None = None
        self._next: Entry | None = None
        self._f: IO[bytes] | None = None
        try:
            self._f = open(os.path.join(directory, INDEX_FILE), "rb")
        except OSError:
            self.changed = True
            return
        first = self._f.readline()
        try:
            h = json.loads(first)
            if not (type(h) is dict and h.get("wucme-scan-index") == _FORMAT and h.get("wucme") == __version__
                    and type(h.get("names")) is str and type(h.get("count")) is int
                    and type(h.get("dir")) is str and len(h["dir"]) == len(NO_DIR_KEY)
                    and first == header((h["names"], h["count"]), h["dir"].encode("ascii"))):
                raise ValueError("another format")
        except (ValueError, UnicodeEncodeError):
            self._stop()
            self.close()
            return
        self.names = (h["names"], h["count"])
        #: The directory's key the index vouches for (DIR), NO_DIR_KEY when none.
        self.dir_key = h["dir"].encode("ascii")
        self._dir_at = len(first) - len(NO_DIR_KEY) - 3  # (where DIR starts: `...","dir":"DIR"}\n`)
        self.header_len = len(first)
        #: The file's key when opened (Repository.scan(snapshot=True): the same file, unread since).
        self.key = file_key(os.fstat(self._f.fileno()))
        self._lines = iter(self._f)
        self._advance()

    def vouch(self, directory: str, key: bytes) -> list[int] | None:
        """Write *key* as the index's DIR, in place (Repository.scan: the directory listed,
        its names the header's, its key older than RACY_SECONDS); the index's file key after
        the write, or None when it was not written (the file in place is no longer the one
        read, or not as it was read, or cannot be written: the next scan lists the directory
        again)."""
        if self.key is None or len(key) != len(NO_DIR_KEY):
            return None
        try:
            fd = os.open(os.path.join(directory, INDEX_FILE), os.O_WRONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            return None
        try:
            if file_key(os.fstat(fd)) != self.key:
                return None  # (another index renamed into place, or this one written over)
            if os.pwrite(fd, key, self._dir_at) != len(key):
                return None
            return file_key(os.fstat(fd))
        except OSError:
            return None
        finally:
            os.close(fd)

    def _stop(self) -> None:
        self.changed = self.damaged = True
        self._lines = None
        self._next = None

    def entries(self) -> Iterator[Entry]:
        """Every entry in order (a damaged line ends them: `damaged`)."""
        while self._next is not None:
            e = self._next
            self._advance()
            yield e

    def checked_entries(self) -> Iterator[Entry]:
        """entries() of a file this process has already read whole, every line's checksum
        and order checked (Repository.scan(snapshot=True): the index the first look left,
        its file key unchanged since): the checks are not made again.  A line that does not
        split as one still ends them (`damaged`)."""
        e = self._next
        self._next = None
        lines = self._lines
        if e is None or lines is None:
            return
        yield e
        for line in lines:
            try:
                e = _parse(line, False)
            except ValueError:
                self._stop()
                return
            yield e
        self._lines = None

    def fileno(self) -> int:
        if self._f is None:
            raise OSError("no old index")
        return self._f.fileno()

    def _advance(self) -> None:
        if self._lines is None:
            return
        prev = self._next.part if self._next is not None else ""
        line = next(self._lines, b"")
        if not line:
            self._next = None
            return
        try:
            e = _parse(line)
            if e.part <= prev:
                raise ValueError("out of order")
        except ValueError:
            self._stop()
            return
        self._next = e

    def parts(self) -> Iterator[str]:
        """The parts of the index in order, each taken by lookup() before the next is given
        (the scan of a directory whose names have not changed)."""
        while self._next is not None:
            yield self._next.part

    def lookup(self, part: str) -> Entry | None:
        while self._next is not None and self._next.part < part:
            self.changed = True  # a certificate that is gone
            self._advance()
        e = self._next
        if e is None or e.part != part:
            return None
        self._advance()
        return e

    def finish(self) -> None:
        """After the last lookup: entries left over are certificates that are gone."""
        if self._next is not None:
            self.changed = True
        self.close()

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None


class IndexWriter:
    """The new index, written only once something differs from the old one: the entries
    kept before that point are copied from the old file as they were."""

    def __init__(self, directory: str, mode: int, names: tuple[str, int]) -> None:
        self.directory = directory
        self.names = names
        self.mode = mode
        self.started = time.time_ns()
        self._out: IO[bytes] | None = None
        self._tmp = ""
        self.failed = False
        #: An entry with a key written: an index without one would save no read.
        self.useful = False
        #: The key of the index commit() put in place (None: none, or not known to be ours).
        self.key: list[int] | None = None
        self._begun = False

    def trusted(self, st: os.stat_result) -> FileKey | None:
        """The key to record for a file just read: None when it changed too recently."""
        limit = self.started - int(RACY_SECONDS * 1e9)
        if st.st_mtime_ns >= limit or st.st_ctime_ns >= limit:
            return None
        return file_key(st)

    def begin(self, old: IndexReader, kept: int) -> None:
        """The first difference: start the new file with the unchanged entries before it,
        the first *kept* bytes of entries of the old file (read from the file the scan
        opened, whatever another process renamed into place since)."""
        self._begun = True
        if self._out is not None or self.failed:
            return
        try:
            self._tmp = os.path.join(self.directory, f"{TEMP_PREFIX}scan-{os.getpid()}-{os.urandom(6).hex()}")
            fd = os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0),
                         self.mode)
            self._out = os.fdopen(fd, "wb", buffering=1 << 16)
            self._out.write(header(self.names))
            offset = old.header_len
            self.useful = kept > 0
            while kept > 0:
                chunk = os.pread(old.fileno(), min(kept, 1 << 20), offset)
                if not chunk:
                    raise OSError("the old index is shorter than what was read of it")
                self._out.write(chunk)
                offset += len(chunk)
                kept -= len(chunk)
        except OSError:
            self._abandon()

    @property
    def begun(self) -> bool:
        """Has the scan found a difference (whatever became of the new file)?"""
        return self._begun

    def add(self, e: Entry) -> None:
        if self._out is None:
            return
        if e.ckey is not None or e.skey is not None:
            self.useful = True
        try:
            self._out.write(e.line())
        except OSError:
            self._abandon()

    def commit(self) -> None:
        """Rename the new index into place (a scan that did not finish never calls this)."""
        if self._out is None:
            return
        if not self.useful:
            self._abandon()  # (an old index, if any, is out of date: it goes too)
            try:
                os.unlink(os.path.join(self.directory, INDEX_FILE))
            except OSError:
                pass
            return
        try:
            self._out.flush()
            os.fchmod(self._out.fileno(), self.mode)
            ino = os.fstat(self._out.fileno()).st_ino
            self._out.close()
            self._out = None
            os.replace(self._tmp, os.path.join(self.directory, INDEX_FILE))
            st = os.stat(os.path.join(self.directory, INDEX_FILE))
            self.key = file_key(st) if st.st_ino == ino else None
        except OSError:
            self._abandon()

    def _abandon(self) -> None:
        """A repository that cannot take the index (read-only, full): scan without it."""
        self.failed = True
        if self._out is not None:
            try:
                self._out.close()
            except OSError:
                pass
            self._out = None
        if self._tmp:
            try:
                os.unlink(self._tmp)
            except OSError:
                pass

    def abandon(self) -> None:
        self._abandon()


class IndexedCertInfo(CertInfo):
    """A CertInfo the index answered: everything but the leaf's DER, which is read from the
    certificate file when something asks for it (ARI, a renewal's `replaces`, the load
    action's comparison).  The file is the truth: should it have changed since the scan, its
    leaf now is what `der` gives (b"" when it is gone or unreadable)."""

    __slots__ = ()

    @property
    def der(self) -> bytes:  # type: ignore[override]
        path = tuple.__getitem__(self, 0)
        try:
            info = certscan.backend().cert_file(str(path))
        except (OSError, ValueError):
            return b""
        return info.der if info is not None else b""


def cert_fields(info: CertInfo) -> list[Any]:
    """What the index keeps of a leaf."""
    return [format(info.serial_number, "x"), info.not_valid_before_utc.isoformat(),
            info.not_valid_after_utc.isoformat(), list(info.names),
            info.aki.hex() if info.aki is not None else None]


def cert_from_fields(path: str, v: list[Any]) -> CertInfo:
    """The CertInfo of an index entry; ValueError (or TypeError) when the fields are not one."""
    serial, nb, na, names, aki = v
    if not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
        raise ValueError("bad names")
    # The der slot holds the file's name: IndexedCertInfo.der reads the leaf from it.
    return IndexedCertInfo(path, int(serial, 16), _dt.datetime.fromisoformat(nb),  # type: ignore[arg-type]
                           _dt.datetime.fromisoformat(na), tuple(names),
                           bytes.fromhex(aki) if aki is not None else None)
