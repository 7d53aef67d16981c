"""The process and the system: F$GETJPI, F$GETSYI, F$ENVIRONMENT, F$MODE, F$PID, F$PROCESS, F$USER,
F$PRIVILEGE, F$VERIFY, F$UNIQUE and F$MESSAGE (DCL Dictionary, each by its name).

A VMS process is a Linux process here: its PID is the Linux process id in hexadecimal, its
user name the login name (upper case, blank-padded to 12 as JPI$_USERNAME is), its UIC
`[group,member]` the group and user ids in octal, its process name the user name (VMS's
default for an interactive process).  Other processes are read from /proc.
"""

from __future__ import annotations

import datetime
import grp
import os
import platform
import pwd
import socket
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from wucme.dclproc.lexicals.args import Args, keyword, number, text
from wucme.dclproc.lexicals.times import absolute
from wucme.dclproc.status import DclSignal, message_lines, signal
from wucme.dclproc.values import Value, to_int

if TYPE_CHECKING:
    from wucme.dclproc.interp import Interpreter

__all__ = ["FUNCTIONS", "mode"]


def _node() -> str:
    return socket.gethostname().split(".")[0].upper()[:15] or "LOCALHOST"


def _boot_time() -> datetime.datetime | None:
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                return datetime.datetime.fromtimestamp(int(line.split()[1]))
    except OSError:
        pass
    return None


def mode(ctx: Interpreter) -> str:
    """INTERACTIVE when the procedure's input is a terminal, else OTHER (no batch queues on Linux)."""
    try:
        return "INTERACTIVE" if ctx.stdin is not None and ctx.stdin.isatty() else "OTHER"
    except (ValueError, OSError):
        return "OTHER"


# --- F$GETJPI --------------------------------------------------------------------------------------

_JPI_ITEMS = (
    "ACCOUNT", "APTCNT", "ASTACT", "ASTCNT", "ASTEN", "ASTLM", "AUTHPRI", "AUTHPRIV", "BIOCNT", "BIOLM",
    "BUFIO", "BYTCNT", "BYTLM", "CLINAME", "CPULIM", "CPUTIM", "CREPRC_FLAGS", "CURPRIV", "DFPFC", "DFWSCNT",
    "DIOCNT", "DIOLM", "DIRIO", "EFCS", "EFCU", "EFWM", "ENQCNT", "ENQLM", "EXCVEC", "FILCNT", "FILLM",
    "FINALEXC", "FREP0VA", "FREP1VA", "FREPTECNT", "GPGCNT", "GRP", "HOME_RAD", "IMAGECOUNT", "IMAGE_RIGHTS",
    "IMAGNAME", "IMAGPRIV", "JOBPRCCNT", "JOBTYPE", "LAST_LOGIN_I", "LAST_LOGIN_N", "LOGIN_FAILURES",
    "LOGIN_FLAGS", "LOGINTIM", "MASTER_PID", "MAXDETACH", "MAXJOBS", "MEM", "MODE", "MSGMASK", "NODENAME",
    "NODE_CSID", "NODE_VERSION", "OWNER", "PAGEFLTS", "PAGFILCNT", "PAGFILLOC", "PARSE_STYLE_IMAGE",
    "PARSE_STYLE_PERM", "PGFLQUOTA", "PHDFLAGS", "PID", "PPGCNT", "PRCCNT", "PRCLM", "PRCNAM", "PRI", "PRIB",
    "PROCESS_RIGHTS", "PROCPRIV", "RIGHTSLIST", "RIGHTS_SIZE", "SCHED_POLICY", "SHRFILLM", "SITESPEC", "STATE",
    "STS", "STS2", "SUBSYSTEM_RIGHTS", "SWPFILLOC", "SYSTEM_RIGHTS", "TABLENAME", "TERMINAL", "TMBU", "TQCNT",
    "TQLM", "TT_ACCPORNAM", "TT_PHYDEVNAM", "UIC", "USERNAME", "VIRTPEAK", "VOLUMES", "WSAUTH", "WSAUTHEXT",
    "WSEXTENT", "WSPEAK", "WSQUOTA", "WSSIZE",
)
_JPI_SUPPORTED = ("CPUTIM", "GRP", "IMAGNAME", "LOGINTIM", "MASTER_PID", "MEM", "MODE", "NODENAME", "OWNER",
                  "PID", "PRCNAM", "PRI", "PRIB", "STATE", "TERMINAL", "UIC", "USERNAME")


class _Proc:
    """What F$GETJPI reports of one Linux process (this one, or another through /proc)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.self = pid == os.getpid()
        if not self.self and not Path(f"/proc/{pid}").is_dir():
            raise DclSignal("NONEXPR", facility="SYSTEM", severity="W", text="nonexistent process",
                            detail=f"{pid:08X}", status=0x000008E8)

    def _stat(self) -> list[str]:
        raw = Path(f"/proc/{self.pid}/stat").read_text()
        return raw[raw.rindex(")") + 2:].split()  # fields from the state on: [0] state, [1] ppid ...

    def ids(self) -> tuple[int, int]:
        if self.self:
            return os.getuid(), os.getgid()
        st = Path(f"/proc/{self.pid}").stat()
        return st.st_uid, st.st_gid

    def username(self) -> str:
        uid = self.ids()[0]
        try:
            return pwd.getpwuid(uid).pw_name.upper()
        except KeyError:
            return str(uid)

    def item(self, name: str, ctx: Interpreter) -> Value:
        uid, gid = self.ids()
        if name == "PID":
            return f"{self.pid:08X}"
        if name == "USERNAME":
            return self.username()[:12].ljust(12)
        if name == "PRCNAM":
            return self.username()[:15] if self.self else Path(f"/proc/{self.pid}/comm").read_text().strip()[:15]
        if name == "MODE":
            return mode(ctx) if self.self else "OTHER"
        if name in ("MASTER_PID", "OWNER"):
            other = os.getsid(self.pid) if name == "MASTER_PID" else int(self._stat()[1])
            return f"{other:08X}" if other else ""
        if name == "UIC":
            return f"[{gid:o},{uid:o}]"
        return self._more(name, uid, gid)

    def _more(self, name: str, uid: int, gid: int) -> Value:
        if name == "GRP":
            return gid
        if name == "MEM":
            return uid
        if name == "NODENAME":
            return _node()
        if name == "CPUTIM":
            fields = self._stat()
            return (int(fields[11]) + int(fields[12])) * 100 // os.sysconf("SC_CLK_TCK")
        if name == "LOGINTIM":
            boot = _boot_time()
            if boot is None:
                return ""
            started = boot + datetime.timedelta(seconds=int(self._stat()[19]) / os.sysconf("SC_CLK_TCK"))
            return absolute(started, pad=False)
        if name in ("PRI", "PRIB"):
            return 4
        if name == "STATE":
            return "CUR" if self.self else "LEF"
        if name == "TERMINAL":
            try:
                return os.ttyname(0).rsplit("/", 1)[-1].upper() + ":" if self.self and os.isatty(0) else ""
            except OSError:
                return ""
        return ""  # IMAGNAME: no image runs while DCL evaluates a lexical


def _process(pid_text: str) -> _Proc:
    if not pid_text.strip():
        return _Proc(os.getpid())
    try:
        return _Proc(int(pid_text.strip(), 16))
    except ValueError:
        raise signal("IVCHAR", pid_text.upper()) from None


def f_getjpi(ctx: Interpreter, args: Args) -> Value:
    """F$GETJPI(pid, item): "" or 0 for this process."""
    item = keyword(args, 1, "F$GETJPI", _JPI_ITEMS, _JPI_SUPPORTED)
    return _process(text(args, 0) if text(args, 0) != "0" else "").item(item, ctx)


def f_pid(ctx: Interpreter, args: Args) -> Value:
    """F$PID(context): the next process this user can see ("" after the last); the context
    symbol holds the last PID returned."""
    name = text(args, 0)
    holder = ctx.symbols.find(name)
    if holder is None:
        raise signal("UNDSYM", name.upper())
    last = str(holder[1]).strip()
    uid = os.getuid()
    pids = sorted(int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _owned(p, uid))
    after = int(last, 16) if last else -1
    nxt = next((p for p in pids if p > after), None)
    value = "" if nxt is None else f"{nxt:08X}"
    ctx.symbols.set(name, value, glob=holder[0] == "==")
    return value


def _owned(path: Path, uid: int) -> bool:
    try:
        return uid == 0 or path.stat().st_uid == uid
    except OSError:
        return False


def f_process(ctx: Interpreter, args: Args) -> Value:
    return _Proc(os.getpid()).item("PRCNAM", ctx)


def f_user(ctx: Interpreter, args: Args) -> Value:
    """The UIC in named form, `[GROUP,USER]`."""
    try:
        group = grp.getgrgid(os.getgid()).gr_name.upper()
    except KeyError:
        group = f"{os.getgid():o}"
    return f"[{group},{_Proc(os.getpid()).username()}]"


_PRIVILEGES = ("ACNT", "ALLSPOOL", "ALTPRI", "AUDIT", "BUGCHK", "BYPASS", "CMEXEC", "CMKRNL", "DIAGNOSE",
               "DOWNGRADE", "EXQUOTA", "GROUP", "GRPNAM", "GRPPRV", "IMPERSONATE", "IMPORT", "LOG_IO",
               "MOUNT", "NETMBX", "OPER", "PFNMAP", "PHY_IO", "PRMCEB", "PRMGBL", "PRMMBX", "PSWAPM", "READALL",
               "SECURITY", "SETPRV", "SHARE", "SHMEM", "SYSGBL", "SYSLCK", "SYSNAM", "SYSPRV", "TMPMBX",
               "UPGRADE", "VOLPRO", "WORLD")


def f_privilege(ctx: Interpreter, args: Args) -> Value:
    """TRUE when the process has (or, for NOpriv, lacks) every privilege listed: root has them all,
    everyone has TMPMBX and NETMBX, as VMS's default privileges."""
    held = set(_PRIVILEGES) if os.geteuid() == 0 else {"TMPMBX", "NETMBX"}
    for word in (w.strip().upper() for w in text(args, 0).split(",") if w.strip()):
        negated = word.startswith("NO") and word[2:] in _PRIVILEGES
        priv = word[2:] if negated else word
        if priv not in _PRIVILEGES:
            raise signal("IVKEYW", word)
        if (priv in held) == negated:
            return "FALSE"
    return "TRUE"


# --- F$GETSYI --------------------------------------------------------------------------------------

_SYI_ITEMS = (
    "ACTIVECPU_CNT", "ARCHFLAG", "ARCH_NAME", "ARCH_TYPE", "AVAILCPU_CNT", "BOOTTIME", "CHARACTER_EMULATED",
    "CLUSTER_EVOTES", "CLUSTER_FSYSID", "CLUSTER_FTIME", "CLUSTER_MEMBER", "CLUSTER_NODES", "CLUSTER_QUORUM",
    "CLUSTER_VOTES", "CONTIG_GBLPAGES", "CPU", "CPUTYPE", "DECNET_FULLNAME", "DECNET_VERSION",
    "ERRORLOGBUFFERS", "FREE_GBLPAGES", "FREE_GBLSECTS", "HW_MODEL", "HW_NAME", "MEMSIZE", "NODENAME",
    "NODE_AREA", "NODE_CSID", "NODE_HWVERS", "NODE_NUMBER", "NODE_QUORUM", "NODE_SWINCARN", "NODE_SWTYPE",
    "NODE_SWVERS", "NODE_SYSTEMID", "NODE_VOTES", "PAGEFILE_FREE", "PAGEFILE_PAGE", "PAGESIZE", "SCSNODE",
    "SID", "SWAPFILE_FREE", "SWAPFILE_PAGE", "SYSTEM_RIGHTS", "VERSION",
)


def _syi(item: str) -> Value:
    if item in ("NODENAME", "SCSNODE"):
        return _node()
    if item == "ARCH_NAME":
        return platform.machine()
    if item == "HW_NAME":
        return platform.platform()
    if item in ("VERSION", "NODE_SWVERS"):
        return platform.release()
    if item == "CLUSTER_MEMBER":
        return "FALSE"
    if item == "CLUSTER_NODES":
        return 1
    if item in ("ACTIVECPU_CNT", "AVAILCPU_CNT"):
        return os.cpu_count() or 1
    if item == "PAGESIZE":
        return os.sysconf("SC_PAGE_SIZE")
    if item == "MEMSIZE":
        return os.sysconf("SC_PHYS_PAGES")
    boot = _boot_time()  # BOOTTIME
    return absolute(boot, pad=False) if boot else ""


_SYI_SUPPORTED = ("ACTIVECPU_CNT", "ARCH_NAME", "AVAILCPU_CNT", "BOOTTIME", "CLUSTER_MEMBER", "CLUSTER_NODES",
                  "HW_NAME", "MEMSIZE", "NODENAME", "NODE_SWVERS", "PAGESIZE", "SCSNODE", "VERSION")


def f_getsyi(ctx: Interpreter, args: Args) -> Value:
    """F$GETSYI(item [,node]): this system only."""
    item = keyword(args, 0, "F$GETSYI", _SYI_ITEMS, _SYI_SUPPORTED)
    node = text(args, 1).strip().upper().rstrip(":")
    if node and node != _node():
        raise signal("NOTSUPP", f"F$GETSYI of node {node}")
    return _syi(item)


# --- F$ENVIRONMENT, F$MODE, F$VERIFY, F$UNIQUE, F$MESSAGE -------------------------------------------

_ENV_ITEMS = ("CAPTIVE", "CONTROL", "DEFAULT", "DEPTH", "DISIMAGE", "INTERACTIVE", "KEY_STATE", "MAX_DEPTH",
              "MESSAGE", "NOCONTROL", "ON_CONTROL_Y", "ON_SEVERITY", "OUTPUT_RATE", "PROCEDURE", "PROMPT",
              "PROMPT_CONTROL", "PROTECTION", "SYMBOL_SCOPE", "VERB_SCOPE", "VERIFY_IMAGE", "VERIFY_PROCEDURE")
_ON_NAMES = {1: "WARNING", 2: "ERROR", 3: "SEVERE"}


def _protection_default() -> str:
    umask = os.umask(0o022)
    os.umask(umask)
    allowed = 0o777 & ~umask

    def rights(bits: int, owner: bool) -> str:
        return ("R" if bits & 4 else "") + ("W" if bits & 2 else "") + ("E" if bits & 1 else "") + \
            ("D" if owner and bits & 2 else "")

    return (f"SYSTEM=RWED, OWNER={rights(allowed >> 6, True)}, GROUP={rights((allowed >> 3) & 7, False)}, "
            f"WORLD={rights(allowed & 7, False)}")


def f_environment(ctx: Interpreter, args: Args) -> Value:
    item = keyword(args, 0, "F$ENVIRONMENT", _ENV_ITEMS)
    frame = ctx.frames[-1] if ctx.frames else None
    if item == "PROCEDURE":
        return ctx.procedure
    if item == "DEPTH":
        return ctx.depth
    if item == "DEFAULT":
        from wucme.dclproc.rms import vms_name

        return vms_name(Path.cwd())
    if item == "ON_SEVERITY":
        return "NONE" if frame is None or not frame.on_enabled else _ON_NAMES[frame.on_rank]
    values: dict[str, Value] = {
        "VERIFY_PROCEDURE": "TRUE" if ctx.verify else "FALSE", "VERIFY_IMAGE": "FALSE",
        "INTERACTIVE": "TRUE" if mode(ctx) == "INTERACTIVE" else "FALSE", "MAX_DEPTH": 32, "CAPTIVE": "FALSE",
        "CONTROL": "", "NOCONTROL": "", "DISIMAGE": "FALSE", "KEY_STATE": "DEFAULT", "ON_CONTROL_Y": "FALSE",
        "MESSAGE": "/FACILITY/SEVERITY/IDENTIFICATION/TEXT", "OUTPUT_RATE": "0 00:00:01.00", "PROMPT": "$ ",
        "PROMPT_CONTROL": "TRUE", "PROTECTION": _protection_default(), "SYMBOL_SCOPE": "LOCAL,GLOBAL",
        "VERB_SCOPE": "LOCAL,GLOBAL",
    }
    return values[item]


def f_mode(ctx: Interpreter, args: Args) -> Value:
    return mode(ctx)


def f_verify(ctx: Interpreter, args: Args) -> Value:
    """F$VERIFY([procedure [,image]]): 1 or 0 for the procedure verify state, then set it if asked."""
    before = 1 if ctx.verify else 0
    if args and args[0] is not None:
        ctx.verify = bool(to_int(args[0]) & 1)
    return before


def f_unique(ctx: Interpreter, args: Args) -> Value:
    return uuid.uuid4().hex.upper()


def f_message(ctx: Interpreter, args: Args) -> Value:
    """F$MESSAGE(status [,component...]): the message text, or only FACILITY, SEVERITY, IDENT, TEXT."""
    line = message_lines(number(args, 0) & 0xFFFFFFFF)[0]
    wanted = {text(args, i).strip().upper() for i in range(1, len(args)) if text(args, i).strip()}
    if not wanted:
        return line
    for word in wanted:
        if word not in ("FACILITY", "SEVERITY", "IDENT", "TEXT"):
            raise signal("IVKEYW", word)
    head, _, message = line.partition(", ")
    facility, severity, ident = head[1:].split("-", 2)
    parts = [p for p, key in ((facility, "FACILITY"), (severity, "SEVERITY"), (ident, "IDENT")) if key in wanted]
    prefix = "%" + "-".join(parts) if parts else ""
    if "TEXT" in wanted:
        return f"{prefix}, {message}" if prefix else message
    return prefix


FUNCTIONS = {
    "F$GETJPI": (f_getjpi, 2, 2), "F$GETSYI": (f_getsyi, 1, 4), "F$ENVIRONMENT": (f_environment, 1, 1),
    "F$MODE": (f_mode, 0, 0), "F$PID": (f_pid, 1, 1), "F$PROCESS": (f_process, 0, 0), "F$USER": (f_user, 0, 0),
    "F$PRIVILEGE": (f_privilege, 1, 1), "F$VERIFY": (f_verify, 0, 2), "F$UNIQUE": (f_unique, 0, 0),
    "F$MESSAGE": (f_message, 1, 5),
}
