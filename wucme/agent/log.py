"""The agent's process log: WUCME_LOG_<NODE>.LOG in the repository, one file per activation.

When a process becomes wuCME-active it keeps the previous log as a version (`;N`, purged beyond
WUCME_KEEP like every other repository file) and starts a new one, which it then appends to
(the pass, run in a child process, appends to the same file).  `check /log` and the admin page
show `Repository.newest_log()`, which finds it by the WUCME_LOG_ prefix.  Lines are
timestamped and carry the pid; every line also goes to stderr for systemd's journal or the
proctor's log.  Nothing secret is written here (keys never reach the Msg layer).
"""
from __future__ import annotations

import datetime as _dt
import os
import socket
import sys
import threading
from pathlib import Path
from typing import TextIO

from wucme.uacme.msg import Msg
from wucme.vms.condition import Condition, format_message
from wucme.vms.ods2 import ods2_name

LOG_PREFIX = "WUCME_LOG_"  # the prefix Repository.newest_log() looks for


def node_name() -> str:
    """This system's name as VMS shows a node: SYS$NODE (`NODE::`, from the local tables: a
    process-table SYS$NODE names a node that shares a host), else the host name's first label,
    upper case."""
    from wucme.vms.lnm import LOCAL_TABLES, trnlnm

    try:
        node = (trnlnm("SYS$NODE", LOCAL_TABLES) or "").strip().rstrip(":")
    except Exception:  # noqa: BLE001 - a broken table must not stop the agent naming itself
        node = ""
    host = (socket.gethostname().split(".")[0] or "LOCALHOST").upper()
    # The built-in SYS$NODE is the host name cut to VMS's 15 characters: keep the whole name.
    return host if not node or host.startswith(node.upper()) else node.upper()


def log_path(directory: Path, node: str | None = None) -> Path:
    """WUCME_LOG_<NODE>.LOG: one per node, so agents of a cluster sharing a repository
    (WUCME_ACTIVE on each) do not write one file."""
    return directory / f"{LOG_PREFIX}{ods2_name(node or node_name())}.LOG"


def start_log(directory: Path, header: str, node: str | None = None) -> Path:
    """Begin a new log for an activation: the old one becomes a version, the new one holds `header`."""
    from wucme.vms.files import write_versioned

    path = log_path(directory, node)
    write_versioned(path, (_stamp() + " " + header + "\n").encode(), 0o644)
    return path


def _stamp() -> str:
    """Local time with its offset: what an administrator reading the log compares with a clock."""
    return _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S%z")


class AgentLog(Msg):
    """A Msg that appends timestamped lines to the activation's log file and echoes them to stderr.

    With no file (a standby, or before the repository is writable) it writes to stderr only.
    The file is opened for each line, so a log rotated under it (a new activation elsewhere,
    a PURGE) never receives stale writes through an old descriptor.
    """

    def __init__(self, level: int = 0, path: Path | None = None, echo: TextIO | None = None,
                 prog: str = "wucme") -> None:
        super().__init__(level, prog=prog)
        self.path = path
        self.echo = echo if echo is not None else sys.stderr
        self._write_lock = threading.Lock()

    def write(self, text: str) -> None:
        line = f"{_stamp()} [{os.getpid()}] {text}\n"
        with self._write_lock:
            if self.path is not None:
                try:
                    with open(self.path, "a", encoding="utf-8", errors="replace") as f:
                        f.write(line)
                except OSError:
                    pass  # a full disk must not stop the renewals; stderr still has it
            try:
                self.echo.write(line)
                self.echo.flush()
            except (OSError, ValueError):
                pass  # detached: stderr is /dev/null or closed

    def line(self, text: str) -> None:
        """A line shown at every level."""
        self.write(text)

    def say(self, severity: str, ident: str, text: str) -> None:
        """A VMS message (`%WUCME-I-NEXT, text`), shown at every level."""
        self.write(format_message(severity, ident, text))

    def note(self, message: Condition) -> None:
        """A VMS message made elsewhere (the renewal pass's), shown at every level."""
        self.write(message.message())
