"""A PostgreSQL server of the tests' own: initdb in a temporary directory, trust authentication,
127.0.0.1 on a free port; stopped and started again on the same port and data (a database
restart under running clients), always stopped at the end.

As root, the server runs as the Debian package's `postgres` user (postgres refuses root).
"""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from harness.ports import free_port

__all__ = ["PgServer", "pg_bin", "running_postgres"]


def pg_bin() -> Path | None:
    """Debian's newest PostgreSQL binaries (/usr/lib/postgresql/N/bin), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
                   key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    return Path(found[-1]).parent if found else None


class PgServer:
    """`PgServer().start()`; `conninfo`; `stop()` and `start()` again; `close()` removes it all."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.base = Path(tempfile.mkdtemp(prefix="wucme-pg-"))
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            import pwd

            pw = pwd.getpwnam("postgres")
            os.chmod(self.base, 0o755)
            os.chown(self.base, pw.pw_uid, pw.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self.data, self.sock, self.log = self.base / "data", self.base / "sock", self.base / "server.log"
        self.port = free_port()  # kept across a restart: never one the kernel hands out
        self.running = False
        subprocess.run([*self.as_user, "mkdir", "-m", "700", str(self.sock)], check=True)
        subprocess.run([*self.as_user, str(bindir / "initdb"), "-D", str(self.data), "-A", "trust", "-U",
                        "postgres", "--no-sync", "-E", "UTF8"], check=True, capture_output=True, timeout=60)

    @property
    def conninfo(self) -> str:
        return f"host=127.0.0.1 port={self.port} dbname=postgres user=postgres"

    def start(self) -> PgServer:
        opts = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.sock} -c fsync=off"
        r = subprocess.run([*self.as_user, str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
                            "-o", opts, "-w", "-t", "30", "start"], capture_output=True, text=True, timeout=60)
        self.running = True  # (also when it failed: stop() then cleans up what did start)
        if r.returncode != 0:
            raise RuntimeError(f"pg_ctl start: {r.stdout}{r.stderr}")
        return self

    def stop(self) -> None:
        """A fast shutdown: every session is ended at once, as when the server goes down."""
        if self.running:
            subprocess.run([*self.as_user, str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w",
                            "stop"], capture_output=True, timeout=60)
            self.running = False

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)


@contextmanager
def running_postgres() -> Iterator[PgServer]:
    """A started server (the test skips, saying why, without Debian's PostgreSQL binaries);
    stopped and removed on exit."""
    bindir = pg_bin()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries not found in /usr/lib/postgresql/*/bin (apt-get install postgresql)")
    server = PgServer(bindir)
    try:
        yield server.start()
    finally:
        server.close()
