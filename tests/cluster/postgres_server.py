"""A PostgreSQL server of a test module's own, stopped when the module's tests are done.

tests/agent/test_cluster_lock.py's `pg_server` lives for the whole session; a module that
imports it keeps one more server listening to the end, on a port picked as free when it
started.  The in-process database tests (test_challenge_store_db.py, test_lnm_cluster_db.py)
use this instead, so nothing of theirs listens while later tests bind ports of their own.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from agent.test_cluster_lock import _free_port, _pg_bin


@contextmanager
def running_postgres() -> Iterator[str]:
    """Start a server on 127.0.0.1 (trust auth); its conninfo; stopped and removed on exit."""
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries not found in /usr/lib/postgresql/*/bin (apt-get install postgresql)")
    base = Path(tempfile.mkdtemp(prefix="wucme-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # postgres refuses to run as root: run it as the Debian package's user
        import pwd

        pw = pwd.getpwnam("postgres")
        os.chmod(base, 0o755)
        os.chown(base, pw.pw_uid, pw.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data, sock, log = base / "data", base / "sock", base / "server.log"
    started = False
    try:
        subprocess.run([*as_user, "mkdir", "-m", "700", str(sock)], check=True)
        subprocess.run([*as_user, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
                        "--no-sync", "-E", "UTF8"], check=True, capture_output=True, timeout=60)
        port = _free_port()
        opts = f"-c listen_addresses=127.0.0.1 -p {port} -k {sock} -c fsync=off"
        started = True
        r = subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", opts,
                            "-w", "-t", "30", "start"], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, f"pg_ctl start: {r.stdout}{r.stderr}"
        yield f"host=127.0.0.1 port={port} dbname=postgres user=postgres"
    finally:
        if started:
            subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                           capture_output=True, timeout=60)
        shutil.rmtree(base, ignore_errors=True)
