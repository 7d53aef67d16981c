"""Logical names: process, job, group, system and cluster tables, iterative translation, search lists.

The process table is the environment (a variable is a one-element logical name);
the job table is a private file shared by a process and the processes it starts
(WUCME_LNM_JOB, created by the first DCL procedure or DEFINE /JOB); the group,
system and cluster tables are JSON files in WUCME_LNM_DIR (cluster: in
WUCME_LNM_CLUSTER_DIR when set, meant to be shared storage).  Tables are searched
process, job, group, system, cluster, as DCL's LNM$FILE_DEV does, and re-read
whenever their file changes, so a DEFINE made by another process is seen by a
running one (the seed on WUCME_VERBOSE).  The names VMS creates at login
(SYS$LOGIN, SYS$SCRATCH, SYS$LOGIN_DEVICE in the job table, SYS$DISK in the
process table, SYS$NODE in the system table) are built in: computed when looked
up, shown by SHOW LOGICAL, and overridden by a DEFINE of the same name.
"""

from __future__ import annotations

import _thread
import atexit
import json
import os
import re
from collections.abc import Iterable, Sequence

from wucme.vms.message import VmsError
from wucme.vms.secure import InsecureError, check_ancestors, check_stat

# The CGI answer to a challenge translates its names here, in a new process per request: this
# module imports no more than a lookup needs (docs/performance.md, "Start-up"); a lookup keeps
# its paths as strings, and writing a table, the host name, the DCL list syntax and pathlib
# are imported where used.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any, Callable

try:  # not on OpenVMS, where $CRELNM would do this work
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "DEFAULT_LNM_DIR",
    "DEFAULT_ORDER",
    "JOB_ENV",
    "CLUSTER_DB",
    "LOCAL_TABLES",
    "cluster_db",
    "MAX_DEPTH",
    "TABLE_NAMES",
    "LogicalName",
    "LogicalNameError",
    "LogicalLoopError",
    "LogicalDepthError",
    "NoLogicalNameError",
    "InsecureError",
    "concealed_devices",
    "deassign",
    "define",
    "end_job",
    "format_listing",
    "format_show",
    "lookup",
    "lookup_all",
    "show",
    "show_tables",
    "start_job",
    "table_name",
    "table_path",
    "translate",
    "translate_items",
    "trnlnm",
]

#: Where the system table (and, unless WUCME_LNM_CLUSTER_DIR is set, the cluster table) lives.
DEFAULT_LNM_DIR = "/var/lib/wucme/lnm"
#: The order of a lookup with no explicit tables (DCL's LNM$FILE_DEV and LNM$DCL_LOGICAL).
DEFAULT_ORDER = ("process", "job", "group", "system", "cluster")
#: The tables of this node alone: where CLUSTER_DB (and anything needed to reach the cluster
#: table) is looked up, since the cluster table cannot name its own database.
LOCAL_TABLES = ("process", "job", "group", "system")
#: The logical name whose database, when defined, holds the cluster table (docs/cluster.md).
CLUSTER_DB = "WUCME_LOCK_DB"
#: The environment variable naming the job table file, inherited by the processes a job starts.
JOB_ENV = "WUCME_LNM_JOB"
#: LNM$C_MAXDEPTH: translations allowed for one name, counting the first.
MAX_DEPTH = 10
#: Lookups one translation may make in all: MAX_DEPTH bounds a chain, not a tree of search
#: lists (ten names of twenty elements naming the next are 20**9 translations: a hang).
MAX_LOOKUPS = 512
#: LNM$C_NAMLENGTH: the longest name or equivalence string.
MAX_LENGTH = 255
TABLE_NAMES = {
    "process": "LNM$PROCESS_TABLE",
    "job": "LNM$JOB",
    "group": "LNM$GROUP",
    "system": "LNM$SYSTEM_TABLE",
    "cluster": "LNM$SYSCLUSTER_TABLE",
}
_MODES = {"USER": "USER", "SUPERVISOR": "SUPERVISOR", "SUPER": "SUPERVISOR",
          "EXECUTIVE": "EXECUTIVE", "EXEC": "EXECUTIVE", "KERNEL": "KERNEL"}
_MODE_SHOW = {"USER": "user", "SUPERVISOR": "super", "EXECUTIVE": "exec", "KERNEL": "kernel"}
# A value that looks like this may itself be a logical name and is translated again.
_NAME_SYNTAX = re.compile(r"[A-Za-z0-9_$-]{1,255}")
_BAD_NAME = re.compile(r'[\s=",\x00]')
# An environment variable carrying what a variable cannot: more elements, attributes, mode.
_COMPANION = "_WUCME_LNM_"


class LogicalNameError(VmsError):
    """A logical name operation that failed (bad name, unreadable table, no privilege)."""

    ident = "LNMERR"


class NoLogicalNameError(LogicalNameError):
    """DEASSIGN of a name the table does not hold (SS$_NOLOGNAM)."""

    ident = "NOLOGNAM"


class LogicalLoopError(LogicalNameError):
    """A name whose translation comes back to itself."""

    ident = "LNMLOOP"


class LogicalDepthError(LogicalLoopError):
    """More than MAX_DEPTH levels of translation (SS$_TOOMANYLNAM), VMS's own loop guard."""

    ident = "TOOMANYLNAM"


class LogicalName:
    """One logical name in one table: its equivalence strings and attributes.

    An immutable value, compared and hashed on everything but *source*.  Written out rather
    than a dataclass: `dataclasses` (and with it `inspect`) would double the start of the CGI
    answer, which looks names up here.
    """

    __slots__ = ("name", "values", "table", "concealed", "terminal", "mode", "source")
    name: str
    values: tuple[str, ...]
    table: str
    concealed: bool
    terminal: bool
    mode: str | None
    #: Where the entry came from (the table file or "environment"); for display only.
    source: str

    def __init__(self, name: str, values: tuple[str, ...], table: str = "process", concealed: bool = False,
                 terminal: bool = False, mode: str | None = None, source: str = "") -> None:
        for slot, value in zip(self.__slots__, (name, values, table, concealed, terminal, mode, source)):
            object.__setattr__(self, slot, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r} of a LogicalName")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r} of a LogicalName")

    def __reduce__(self) -> tuple[type[LogicalName], tuple[object, ...]]:
        # copy and pickle rebuild it through __init__ (their default would assign each slot)
        return (LogicalName, (self.name, self.values, self.table, self.concealed, self.terminal, self.mode,
                              self.source))

    def _key(self) -> tuple[object, ...]:
        return (self.name, self.values, self.table, self.concealed, self.terminal, self.mode)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, LogicalName)
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (f"LogicalName(name={self.name!r}, values={self.values!r}, table={self.table!r}, "
                f"concealed={self.concealed!r}, terminal={self.terminal!r}, mode={self.mode!r}, "
                f"source={self.source!r})")

    @property
    def table_name(self) -> str:
        return table_name(self.table)

    @property
    def attributes(self) -> tuple[str, ...]:
        return tuple(a for a, on in (("CONCEALED", self.concealed), ("TERMINAL", self.terminal)) if on)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"values": list(self.values)}
        if self.attributes:
            out["attributes"] = list(self.attributes)
        if self.mode:
            out["mode"] = self.mode
        return out

    @classmethod
    def from_json(cls, name: str, obj: Any, table: str, source: str) -> LogicalName:
        if not isinstance(obj, dict) or not isinstance(obj.get("values"), list) or not obj["values"]:
            raise ValueError(f"entry {name!r} has no list of values")
        values = tuple(str(v) for v in obj["values"])
        attrs = {str(a).upper() for a in obj.get("attributes", ())}
        mode = obj.get("mode")
        return cls(name, values, table, "CONCEALED" in attrs, "TERMINAL" in attrs,
                   str(mode) if mode else None, source)


# --- the process table: the environment -------------------------------------------


def _env_entry(key: str) -> LogicalName | None:
    value = os.environ.get(key)
    if not value:  # an empty variable counts as undefined: VMS has no empty equivalence
        return None
    extra = os.environ.get(_COMPANION + key)
    if extra:
        try:
            entry = LogicalName.from_json(key, json.loads(extra), "process", "environment")
        except (ValueError, TypeError):
            entry = None
        # The companion is stale if someone set the variable by other means since.
        if entry is not None and entry.values[0] == value:
            return entry
    return LogicalName(key, (value,), "process", source="environment")


def _env_lookup(name: str, exact: bool) -> LogicalName | None:
    for key in (name,) if exact else dict.fromkeys((name, name.upper())):
        if key.startswith(_COMPANION):
            continue
        entry = _env_entry(key)
        if entry is not None:
            return entry
    return None


def _env_all() -> list[LogicalName]:
    out = []
    for key in os.environ:
        if key.startswith(_COMPANION):
            continue
        entry = _env_entry(key)
        if entry is not None:
            out.append(entry)
    defined = {e.name.upper() for e in out}
    return out + [e for k, e in _builtins("process").items() if k not in defined]


def _process_lookup(name: str, exact: bool) -> LogicalName | None:
    entry = _env_lookup(name, exact)
    if entry is None:
        entry = _builtin_entry("process", name if exact else name.upper())
    return entry


# --- the file tables ------------------------------------------------------------------


def table_path(table: str) -> Path:
    """The file holding *table* ("system" or "cluster"); its directory comes from the environment."""
    from pathlib import Path

    return Path(_table_file(table))


def _table_file(table: str) -> str:
    """table_path as a string (what a lookup uses)."""
    _check_table(table)
    if table == "process":
        raise LogicalNameError("the process table is the environment, not a file", "BADTABLE")
    if table == "job":
        return _job_file()
    base = os.environ.get("WUCME_LNM_DIR") or DEFAULT_LNM_DIR
    if table == "cluster":
        base = os.environ.get("WUCME_LNM_CLUSTER_DIR") or base
    if table == "group":  # one table per UIC group: per Linux group id, named as VMS numbers it
        return os.path.join(base, f"group_{os.getgid():06o}.json")
    return os.path.join(base, f"{table}.json")


def _dir_variable(table: str) -> str:
    """The variable naming where *table* lives (for a message)."""
    if table == "job":
        return JOB_ENV
    if table == "cluster" and os.environ.get("WUCME_LNM_CLUSTER_DIR"):
        return "WUCME_LNM_CLUSTER_DIR"
    return "WUCME_LNM_DIR"


def table_name(table: str) -> str:
    """The name SHOW LOGICAL and F$TRNLNM show: LNM$JOB_xxxxxxxx and LNM$GROUP_gggggg as on VMS."""
    if table == "group":
        return f"LNM$GROUP_{os.getgid():06o}"
    if table == "job":
        m = re.fullmatch(r"job_([0-9A-F]{8})\.json", os.path.basename(os.environ.get(JOB_ENV, "")))
        return f"LNM$JOB_{m.group(1) if m else f'{os.getpid():08X}'}"
    return TABLE_NAMES[_check_table(table)]


# --- the job table: a private file a process and the processes it starts share ------------------


def _job_path() -> Path:
    from pathlib import Path

    return Path(_job_file())


def _job_file() -> str:
    path = os.environ.get(JOB_ENV)
    if not path:
        raise LogicalNameError("this process has no job logical name table (see start_job)", "NOJOBTABLE")
    return path


def start_job() -> Path | None:
    """Create a job table for this process and those it starts, unless one is inherited.

    VMS creates a job's table at login and deletes it at logout; here the first process of a
    job (a DCL procedure's interpreter, or a DEFINE /JOB) creates it in a private directory
    and names it in the environment, so processes started later share it.  Returns the path
    when this call created it (the caller ends it with end_job), else None.
    """
    if os.environ.get(JOB_ENV):
        return None
    import tempfile  # a job table is rare: the CGI answer must not pay for it
    from pathlib import Path

    directory = Path(tempfile.mkdtemp(prefix="wucme-job-"))  # 0700: the job's own
    path = directory / f"job_{os.getpid():08X}.json"
    os.environ[JOB_ENV] = str(path)
    return path


def end_job(path: Path) -> None:
    """Delete the job table start_job created (the job has ended)."""
    if os.environ.get(JOB_ENV) == str(path):
        del os.environ[JOB_ENV]
    _forget(path)
    import shutil

    shutil.rmtree(path.parent, ignore_errors=True)


def _ensure_job() -> None:
    created = start_job()
    if created is not None:  # this process is the job: its table lasts as long as it does
        atexit.register(end_job, created)


# --- the names VMS creates at login -------------------------------------------------------------

_VMS_DIR_WORD = re.compile(r"[A-Za-z0-9_$-]{1,39}")


def _login_directory(path: str) -> str:
    """SYS$DISK:[HOME.USER] for a Linux directory ODS-2 can spell, else the path itself (with `/`)."""
    from pathlib import PurePath

    parts = [p for p in PurePath(path).parts[1:]]
    if all(_VMS_DIR_WORD.fullmatch(p) for p in parts):
        return f"SYS$DISK:[{'.'.join(p.upper() for p in parts) or '000000'}]"
    return path.rstrip("/") + "/"


def _builtin(name: str, table: str, value: str, concealed: bool = False) -> LogicalName:
    return LogicalName(name, (value,), table, concealed=concealed, mode="EXECUTIVE", source="built in")


def _builtins(table: str) -> dict[str, LogicalName]:
    """The login-time names of *table*: SYS$DISK is the Linux root, a concealed device."""
    if table == "process":
        return {"SYS$DISK": _builtin("SYS$DISK", table, "/", concealed=True)}
    if table == "job":
        login = _login_directory(os.path.expanduser("~"))
        return {"SYS$LOGIN": _builtin("SYS$LOGIN", table, login),
                "SYS$LOGIN_DEVICE": _builtin("SYS$LOGIN_DEVICE", table, "SYS$DISK:"),
                "SYS$SCRATCH": _builtin("SYS$SCRATCH", table, login)}
    if table == "system":
        import socket

        node = socket.gethostname().split(".")[0].upper()[:15] or "LOCALHOST"
        return {"SYS$NODE": _builtin("SYS$NODE", table, f"{node}::")}
    return {}


#: The built-in names of each table, so a lookup computes one only when it is asked for.
_BUILTIN_NAMES = {"process": ("SYS$DISK",), "job": ("SYS$LOGIN", "SYS$LOGIN_DEVICE", "SYS$SCRATCH"),
                  "system": ("SYS$NODE",)}


def _builtin_entry(table: str, key: str) -> LogicalName | None:
    return _builtins(table).get(key) if key in _BUILTIN_NAMES.get(table, ()) else None


def cluster_db() -> str | None:
    """The database holding the cluster table (WUCME_LOCK_DB from the local tables), or None
    when the cluster table is a file."""
    return trnlnm(CLUSTER_DB, LOCAL_TABLES) or None


def _cluster_error(exc: VmsError) -> LogicalNameError:
    return LogicalNameError(f"cluster logical name table (database {CLUSTER_DB}): {exc.text}", exc.ident)


def _db_load(conninfo: str) -> dict[str, LogicalName]:
    from wucme.vms.lnmdb import ClusterDbError, cluster_table  # psycopg only for a cluster

    try:
        raw = cluster_table(conninfo).load()
        return {k.upper(): LogicalName.from_json(k.upper(), v, "cluster", "database")
                for k, v in raw.items()}
    except ClusterDbError as exc:
        raise _cluster_error(exc) from None
    except (ValueError, TypeError) as exc:
        raise LogicalNameError(f"cluster logical name table (database {CLUSTER_DB}) is damaged: {exc}",
                               "BADTABLE") from None


def _db_modify(conninfo: str, change: Callable[[dict[str, LogicalName]], LogicalName | None]) -> LogicalName | None:
    from wucme.vms.lnmdb import ClusterDbError, cluster_table

    def raw_change(raw: dict[str, Any]) -> LogicalName | None:
        entries = {k.upper(): LogicalName.from_json(k.upper(), v, "cluster", "database") for k, v in raw.items()}
        result = change(entries)
        raw.clear()
        raw.update({k: e.to_json() for k, e in entries.items()})
        return result

    try:
        result: LogicalName | None = cluster_table(conninfo).modify(raw_change)
        return result
    except ClusterDbError as exc:
        raise _cluster_error(exc) from None


def _stored(table: str) -> dict[str, LogicalName]:
    """The names a file table holds (a process that has no job table has no job names); the
    cluster table's are in the cluster database when WUCME_LOCK_DB is defined."""
    if table == "job" and not os.environ.get(JOB_ENV):
        return {}
    if table == "cluster" and (conninfo := cluster_db()) is not None:
        return _db_load(conninfo)
    return _load(table)


def _table_entries(table: str) -> dict[str, LogicalName]:
    """What a lookup sees in a file table: the built-in names, then the stored ones over them."""
    stored = _stored(table)
    builtin = _builtins(table)
    return {**builtin, **stored} if builtin else stored


# path -> (stat key, fd held open, entries).  Holding the fd of the file we parsed
# keeps its inode alive, so a new file can never reuse the inode number and fool
# the stat comparison; writers always rename a new file in, never edit in place.
# The key holds the owner, mode and ctime too, so a chown or chmod is checked again.
_StatKey = tuple[int, int, int, int, int, int, int]
_cache: dict[str, tuple[_StatKey, int, dict[str, LogicalName]]] = {}
_cache_lock = _thread.allocate_lock()  # threading.Lock, without importing threading
_CACHE_MAX = 8


def _stat_key(st: os.stat_result) -> _StatKey:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_mode, st.st_uid)


def _forget(path: str | os.PathLike[str]) -> None:
    with _cache_lock:
        old = _cache.pop(os.fspath(path), None)
    if old is not None:
        os.close(old[1])


def _parse_table(data: bytes, table: str, path: str) -> dict[str, LogicalName]:
    try:
        obj = json.loads(data.decode("utf-8"))
        names = obj["names"]
        if not isinstance(names, dict):
            raise ValueError("'names' is not an object")
        return {k.upper(): LogicalName.from_json(k.upper(), v, table, str(path)) for k, v in names.items()}
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise LogicalNameError(f"logical name table {path} is damaged: {exc}", "BADTABLE") from exc


def _check_table_file(st: os.stat_result, path: str) -> None:
    """A table names commands root runs (WUCME_LOAD): it and every directory above it must be
    writable only by root or this process's user (wucme.vms.secure), or nothing in it is used."""
    check_stat(st, path)
    check_ancestors(path)


def _load(table: str) -> dict[str, LogicalName]:
    """The entries of a file table, parsed again only when the file has changed.

    Raises InsecureError (``%WUCME-E-INSECURE``) for a table others could have written.
    """
    path = _table_file(table)
    try:
        key = _stat_key(os.stat(path))
    except FileNotFoundError:
        _forget(path)
        return {}
    except NotADirectoryError:
        raise LogicalNameError(f"{_dir_variable(table)} {os.path.dirname(path)!r} is not a directory "
                               "(it names where the logical name tables are)", "BADVALUE") from None
    except PermissionError as exc:
        raise LogicalNameError(f"cannot read logical name table {path}", "NOPRIV") from exc
    with _cache_lock:
        hit = _cache.get(path)
        if hit is not None and hit[0] == key:
            return hit[2]
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return {}
    except PermissionError as exc:
        raise LogicalNameError(f"cannot read logical name table {path}", "NOPRIV") from exc
    try:
        st = os.fstat(fd)
        _check_table_file(st, path)
        key = _stat_key(st)
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
        entries = _parse_table(b"".join(chunks), table, path)
    except BaseException:
        os.close(fd)
        raise
    with _cache_lock:
        old = _cache.pop(path, None)
        if old is not None:
            os.close(old[1])
        while len(_cache) >= _CACHE_MAX:
            os.close(_cache.pop(next(iter(_cache)))[1])
        _cache[path] = (key, fd, entries)
    return entries


def _dump(table: str, entries: dict[str, LogicalName]) -> bytes:
    obj = {"table": TABLE_NAMES[table],
           "names": {k: entries[k].to_json() for k in sorted(entries)}}
    return (json.dumps(obj, indent=1, ensure_ascii=False) + "\n").encode("utf-8")


def _modify(table: str, change: Callable[[dict[str, LogicalName]], LogicalName | None]) -> LogicalName | None:
    """Read-change-write a file table under an exclusive lock, so no concurrent update is lost."""
    if table == "cluster" and (conninfo := cluster_db()) is not None:
        return _db_modify(conninfo, change)
    from wucme.vms.atomic import atomic_write
    from wucme.vms.secure import check_directory, make_directory, open_private

    path = table_path(table)
    try:
        make_directory(path.parent, 0o755)
        check_directory(path.parent, ancestors=True)
        lock = open_private(path.with_name(path.name + ".lock"), os.O_RDWR, 0o644)
    except PermissionError as exc:
        raise LogicalNameError(f"no privilege to write logical name table {path}", "NOPRIV") from exc
    except (NotADirectoryError, FileExistsError):
        raise LogicalNameError(f"{_dir_variable(table)} {str(path.parent)!r} is not a directory "
                               "(it names where the logical name tables are)", "BADVALUE") from None
    try:
        if fcntl is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)
        entries = dict(_load(table))
        result = change(entries)
        try:
            atomic_write(path, _dump(table, entries), 0o644)
        except PermissionError as exc:
            raise LogicalNameError(f"no privilege to write logical name table {path}", "NOPRIV") from exc
        return result
    finally:
        os.close(lock)  # releases the flock


# --- lookup and translation ---------------------------------------------------------------


def _check_table(table: str) -> str:
    if table not in TABLE_NAMES:
        raise LogicalNameError(f"no such logical name table {table!r} (process, job, group, system, cluster)",
                               "NOSUCHTABLE")
    return table


def _tables(tables: Iterable[str] | str | None) -> tuple[str, ...]:
    if tables is None:
        return DEFAULT_ORDER
    if isinstance(tables, str):
        tables = (tables,)
    return tuple(_check_table(t) for t in tables)


def lookup(name: str, tables: Iterable[str] | str | None = None, exact: bool = False) -> LogicalName | None:
    """One level: the first definition of *name* in *tables* (default process, job, group, system, cluster).

    Unless *exact*, the name is tried as given and then upper-cased (DCL upper-cases
    names; environment variables are case-sensitive).
    """
    for table in _tables(tables):
        if table == "process":
            entry = _process_lookup(name, exact)
        else:
            key = name if exact else name.upper()
            entry = _stored(table).get(key) or _builtin_entry(table, key)
            if exact and entry is not None and entry.name != name:
                entry = None
        if entry is not None:
            return entry
    return None


def _translate(entry: LogicalName, tables: tuple[str, ...], chain: list[str],
               budget: list[int] | None = None) -> list[str]:
    if len(chain) > MAX_DEPTH:
        raise LogicalDepthError(f"more than {MAX_DEPTH} levels of logical name translation: {' -> '.join(chain)}")
    budget = [MAX_LOOKUPS] if budget is None else budget
    out: list[str] = []
    for value in entry.values:
        nxt = None
        if not entry.terminal and _NAME_SYNTAX.fullmatch(value):
            budget[0] -= 1
            if budget[0] < 0:
                raise LogicalDepthError(f"translating {chain[0]} takes more than {MAX_LOOKUPS} lookups "
                                        "(search lists of search lists)")
            nxt = lookup(value, tables, exact=True)
        if nxt is None:
            out.append(value)
            continue
        if nxt.name.upper() in chain:
            raise LogicalLoopError(f"logical name loop: {' -> '.join(chain + [nxt.name.upper()])}")
        out.extend(_translate(nxt, tables, chain + [nxt.name.upper()], budget))
    return out


def translate(name: str, tables: Iterable[str] | str | None = None) -> list[str]:
    """The full search list of *name*, each element translated again while it names a logical.

    Every element iterates (VMS iterates only the first, for devices); an element
    that is itself a search list is expanded in place.  Values are matched as names
    case-sensitively, as VMS does, and only when they look like a name (so a value
    ``ELSE:`` or ``/srv/x`` is final).  A TERMINAL name is not iterated.  An
    undefined name gives [].  Raises LogicalLoopError / LogicalDepthError.
    """
    order = _tables(tables)
    entry = lookup(name, order)
    if entry is None:
        return []
    return _translate(entry, order, [entry.name.upper()])


def trnlnm(name: str, tables: Iterable[str] | str | None = None) -> str | None:
    """The first equivalence string of the fully translated *name*, or None when undefined."""
    values = translate(name, tables)
    return values[0] if values else None


def translate_items(name: str, tables: Iterable[str] | str | None = None) -> list[str]:
    """Every item of a list-valued name (WUCME_MAIL, WUCME_OPCOM): elements split at commas outside quotes."""
    from wucme.vms.dcllex import split_search_list

    return [item for value in translate(name, tables) for item in split_search_list(value)]


# --- DEFINE, DEASSIGN, SHOW ----------------------------------------------------------------


def _check_name(name: str) -> str:
    if not name or len(name) > MAX_LENGTH or _BAD_NAME.search(name):
        raise LogicalNameError(f"invalid logical name {name!r}", "IVLOGNAM")
    if name.upper().startswith(_COMPANION):
        raise LogicalNameError(f"logical name prefix {_COMPANION} is reserved", "IVLOGNAM")
    return name.upper()


def define(
    name: str,
    values: Sequence[str] | str,
    table: str = "process",
    concealed: bool = False,
    terminal: bool = False,
    mode: str | None = None,
) -> LogicalName | None:
    """DEFINE /PROCESS|/JOB|/GROUP|/SYSTEM|/CLUSTER: set *name* (upper-cased) to *values*; return the
    superseded entry.

    /PROCESS sets the environment of this process (and of children started later):
    it lasts for the process only.  /JOB writes the job table, creating it when this
    process has none (start_job).  /GROUP, /SYSTEM and /CLUSTER write their table file
    atomically under a lock, and are seen by every process at its next lookup.
    """
    key = _check_name(name)
    _check_table(table)
    vals = [values] if isinstance(values, str) else list(values)
    if not vals:
        raise LogicalNameError(f"no equivalence string for {key}", "NULLEQV")
    for v in vals:
        if not isinstance(v, str) or not v or len(v) > MAX_LENGTH or "\x00" in v:
            raise LogicalNameError(f"invalid equivalence string {v!r} for {key}", "IVEQVNAM")
    canon_mode = None
    if mode:
        canon_mode = _MODES.get(mode.upper())
        if canon_mode is None:
            raise LogicalNameError(f"invalid access mode {mode!r}", "IVMODE")
    entry = LogicalName(key, tuple(vals), table, concealed, terminal, canon_mode)
    if table == "process":
        old = _env_lookup(key, exact=True)
        os.environ[key] = vals[0]
        if len(vals) > 1 or concealed or terminal or canon_mode:
            os.environ[_COMPANION + key] = json.dumps(entry.to_json())
        else:
            os.environ.pop(_COMPANION + key, None)
        return old
    if table == "job":
        _ensure_job()

    def change(entries: dict[str, LogicalName]) -> LogicalName | None:
        old = entries.get(key)
        entries[key] = entry
        return old

    return _modify(table, change)


def deassign(name: str, table: str = "process") -> LogicalName:
    """DEASSIGN: remove *name* from *table*; return what was removed or raise NoLogicalNameError."""
    _check_table(table)
    if table == "process":
        old = _env_lookup(name, exact=False)
        if old is None:
            raise NoLogicalNameError(f"no logical name match for {name.upper()} in {table_name(table)}")
        os.environ.pop(old.name, None)
        os.environ.pop(_COMPANION + old.name, None)
        return old
    key = name.upper()

    def change(entries: dict[str, LogicalName]) -> LogicalName | None:
        return entries.pop(key, None)

    if key not in _stored(table):  # cheap check first: no lock, no rewrite
        raise NoLogicalNameError(f"no logical name match for {key} in {table_name(table)}")
    old = _modify(table, change)
    if old is None:
        raise NoLogicalNameError(f"no logical name match for {key} in {table_name(table)}")
    return old


def _wild(pattern: str) -> re.Pattern[str]:
    """VMS wildcards: ``*`` any run, ``%`` one character; case-insensitive."""
    parts = [".*" if c == "*" else "." if c == "%" else re.escape(c) for c in pattern]
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


def _all_in(table: str) -> list[LogicalName]:
    return _env_all() if table == "process" else list(_table_entries(table).values())


def show_tables(pattern: str = "*", tables: Iterable[str] | str | None = None) -> list[tuple[str, list[LogicalName]]]:
    """SHOW LOGICAL [pattern]: (table, its matching entries with names sorted) for every table searched."""
    rx = _wild(pattern or "*")
    return [(t, sorted((e for e in _all_in(t) if rx.fullmatch(e.name)), key=lambda e: e.name))
            for t in _tables(tables)]


def show(pattern: str = "*", table: Iterable[str] | str | None = None) -> list[LogicalName]:
    """SHOW LOGICAL [pattern]: the matching entries, table by table, names sorted."""
    return [e for _, entries in show_tables(pattern, table) for e in entries]


def lookup_all(name: str, tables: Iterable[str] | str | None = None) -> list[LogicalName]:
    """The definitions of *name* in every table searched, first (the one a lookup finds) first."""
    return [e for t in _tables(tables) if (e := lookup(name, t)) is not None]


def _entry_text(entry: LogicalName, full: bool) -> str:
    """``"NAME" [mode] = "value" [attributes]``: the mode shown when not supervisor, or always with *full*."""
    shown = entry.mode or ("SUPERVISOR" if full else None)
    mode = f" [{_MODE_SHOW[shown]}]" if shown else ""
    attrs = f" [{','.join(a.lower() for a in entry.attributes)}]" if entry.attributes else ""
    return f'"{entry.name}"{mode} = "{entry.values[0]}"{attrs}'


def _show_lines(entry: LogicalName, level: int, tables: tuple[str, ...], chain: list[str],
                full: bool = False) -> list[str]:
    lead = "   " if level == 0 else f"{level:<3}"
    lines = [f"{lead}{_entry_text(entry, full)} ({entry.table_name})"]
    lines += [f'        = "{v}"' for v in entry.values[1:]]
    if level + 1 >= MAX_DEPTH or entry.terminal:
        return lines
    for value in entry.values:
        if _NAME_SYNTAX.fullmatch(value):
            nxt = lookup(value, tables, exact=True)
            if nxt is not None and nxt.name.upper() not in chain:
                lines += _show_lines(nxt, level + 1, tables, chain + [nxt.name.upper()], full)
    return lines


def format_show(entries: Iterable[LogicalName], iterate: bool = False, full: bool = False) -> list[str]:
    """SHOW LOGICAL NAME's lines: ``   "NAME" = "value" (LNM$SYSTEM_TABLE)``, then ``        = "next"``.

    With *iterate*, names that a value translates to follow, numbered by level as
    VMS numbers them (``1  "SYS$COMMON" = ...``).  With *full* (/FULL) the access
    mode is shown for every name.
    """
    lines: list[str] = []
    for entry in entries:
        if iterate:
            lines += _show_lines(entry, 0, DEFAULT_ORDER, [entry.name.upper()], full)
        else:
            lines += _show_lines(entry, 0, (), [], full)  # no tables: no iteration
    return lines


def format_listing(sections: Iterable[tuple[str, list[LogicalName]]], full: bool = False) -> list[str]:
    """SHOW LOGICAL with a wildcard, /ALL or a table: each table's name as a header, its names indented.

    ``(LNM$PROCESS_TABLE)``, a blank line, then ``  "NAME" = "value"`` and ``        = "next"``
    for a search list; each table is preceded by a blank line, as DCL shows it (an empty
    table is its header alone).
    """
    lines: list[str] = []
    for table, entries in sections:
        lines += ["", f"({table_name(table)})"] + ([""] if entries else [])
        for entry in entries:
            lines.append(f"  {_entry_text(entry, full)}")
            lines += [f'        = "{v}"' for v in entry.values[1:]]
    return lines


def concealed_devices() -> list[LogicalName]:
    """Names whose effective definition (first in table order) is CONCEALED: devices to_vms may show."""
    seen: dict[str, LogicalName] = {}
    for t in DEFAULT_ORDER:
        for e in _all_in(t):
            seen.setdefault(e.name.upper(), e)
    return [e for e in seen.values() if e.concealed]
