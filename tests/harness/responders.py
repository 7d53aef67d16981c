"""Challenge answerers for hook-based tests: a webroot server, the real ualpn, hook scripts.

These stand in for what an administrator runs beside uacme (a web server with a
webroot, ualpn on port 443); wucme's own responders are product code elsewhere.
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import socketserver
import stat
import subprocess
import tempfile
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from harness.loopback import LoopbackHTTPService, OwnedHTTPServer, ServerThread
from harness.pebble import ManagedProcess, ManagedServer, PebbleError
from harness.ports import free_port, free_ports

__all__ = ["ChallengeDirServer", "Ualpn", "write_hook_scripts", "UALPN", "TOKEN_RE"]

UALPN = "ualpn"
#: RFC 8555 section 8.1: a token is base64url; anything else must never reach a path.
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]+$")
CHALLENGE_PREFIX = "/.well-known/acme-challenge/"


class _ChallengeHandler(BaseHTTPRequestHandler):
    server: "_ChallengeHTTPServer"
    protocol_version = "HTTP/1.0"

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        owner = self.server.owner
        owner._count(self.path, self.headers.get("Host", ""))
        path = self.path.split("?", 1)[0]
        body, status = b"Not found\n", 404
        if path.startswith(CHALLENGE_PREFIX):
            token = path[len(CHALLENGE_PREFIX):]
            if TOKEN_RE.match(token):
                try:
                    body, status = (owner.root_dir / token).read_bytes(), 200
                except OSError:
                    pass
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base signature
        pass


class _ChallengeHTTPServer(OwnedHTTPServer):
    # A CA validates every name of a 100-name order at once: the default backlog
    # of 5 drops the handshakes' last ACK and the VA times out awaiting headers.
    request_queue_size = 256
    owner: "ChallengeDirServer"

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Keep what went wrong with a request: a CA's "EOF" names no cause, this does."""
        self.owner.errors.append(traceback.format_exc())
        super().handle_error(request, client_address)


class ChallengeDirServer(LoopbackHTTPService):
    """Serves GET /.well-known/acme-challenge/TOKEN from root_dir/TOKEN (http-01 webroot)."""

    _server_class = _ChallengeHTTPServer
    _handler_class = _ChallengeHandler
    _thread_name = "challenge-dir"

    def __init__(self, root_dir: str | os.PathLike[str], port: int = 0,
                 host: str = "127.0.0.1") -> None:
        super().__init__(host, port)
        self.root_dir = Path(root_dir)
        self.requests = 0
        self.request_log: list[tuple[str, str]] = []  # (path, Host header)
        self.errors: list[str] = []  # tracebacks of requests that failed here
        self._lock = threading.Lock()

    def _count(self, path: str, host: str) -> None:
        with self._lock:
            self.requests += 1
            self.request_log.append((path, host))

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _bind(self) -> OwnedHTTPServer:
        self.root_dir.mkdir(parents=True, exist_ok=True)
        return super()._bind()


# --- ualpn -----------------------------------------------------------------------------

class _SinkHandler(socketserver.BaseRequestHandler):
    """The backend for connections ualpn does not answer: closes at once, so a
    non-acme-tls/1 client sees an immediate EOF instead of a hang."""

    def handle(self) -> None:
        pass


class _SinkServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class Ualpn(ManagedServer):
    """The real /usr/bin/ualpn in server mode on 127.0.0.1@port, in the foreground.

    ualpn insists on a backend (-c) for connections it does not answer itself; a
    small TCP sink plays that part.  PROXY headers are off (-P 0): the sink ignores them.
    """

    def __init__(self, port: int, workdir: str | os.PathLike[str], verbose: int = 2) -> None:
        """`verbose` is the number of -v flags (at least 2 are passed)."""
        self.port = port
        self.workdir = Path(workdir)
        self.verbose = verbose
        self.log_path = self.workdir / "ualpn.log"
        self.pid_path = self.workdir / "ualpn.pid"
        sock = self.workdir / "ualpn.sock"
        self._sockdir: str | None = None
        if len(str(sock)) > 100:  # sun_path holds 108 bytes
            self._sockdir = tempfile.mkdtemp(prefix="ualpn-")
            sock = Path(self._sockdir) / "ualpn.sock"
        self.socket_path = str(sock)
        self.backend_port = 0
        self.process: ManagedProcess | None = None
        self._sink: ServerThread | None = None

    def _start(self, timeout: float) -> None:
        if shutil.which(UALPN) is None:
            raise PebbleError("ualpn is not installed (Debian package uacme)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._sink = ServerThread(_SinkServer(("127.0.0.1", 0), _SinkHandler), "ualpn-backend")
        self.backend_port = self._sink.port
        # -vv at least: readiness is read from the "new worker" line of the log.
        argv = [UALPN, "-" + "v" * max(2, self.verbose),
                "-b", f"127.0.0.1@{self.port}", "-c", f"127.0.0.1@{self.backend_port}",
                "-P", "0", "-n", "1", "-s", self.socket_path, "-S", "600",
                "-p", str(self.pid_path)]
        self.process = ManagedProcess(argv, self.log_path, cwd=self.workdir)
        self._wait_ready(time.monotonic() + timeout)

    def _wait_ready(self, deadline: float) -> None:
        """Ready when the control socket accepts and a worker exists.

        ualpn's master accepts TLS connections at once but spawns its workers from a
        timer a little later, closing connections that arrive before ("all workers busy").
        """
        assert self.process is not None
        while True:
            if not self.process.running():
                raise PebbleError(f"ualpn exited with status {self.process.proc.returncode}:\n"
                                  f"{self.process.log_tail()}")
            if "new worker" in self.process.log_tail(200) and \
                    self._connects(socket.AF_UNIX, self.socket_path):
                return
            if time.monotonic() > deadline:
                raise PebbleError(f"ualpn did not come up on 127.0.0.1@{self.port}:\n"
                                  f"{self.process.log_tail()}")
            time.sleep(0.05)

    @staticmethod
    def _connects(family: int, address: Any) -> bool:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.settimeout(0.5)
            try:
                s.connect(address)
            except OSError:
                return False
            return True

    def command(self, line: str, timeout: float = 10.0) -> str:
        """Send one control line through `ualpn -s SOCKET` (client mode); return its reply."""
        r = subprocess.run([UALPN, "-s", self.socket_path], input=line.rstrip("\n") + "\n",
                           capture_output=True, text=True, timeout=timeout)
        return r.stdout.strip()

    def auth(self, ident: str, auth: str) -> str:
        return self.command(f"auth {ident} {auth}")

    def unauth(self, ident: str) -> str:
        return self.command(f"unauth {ident}")

    def _cleanup(self) -> None:
        """After ualpn, its backend sink and the socket's temporary directory."""
        sink, self._sink = self._sink, None
        if sink:
            sink.stop()
        if self._sockdir:
            shutil.rmtree(self._sockdir, ignore_errors=True)


# --- uacme-style hook scripts --------------------------------------------------------

# Every script gets uacme's five arguments: METHOD TYPE IDENT TOKEN AUTH (uacme(1), HOOKS).
_PRELUDE = """#!/bin/sh
# wucme test hook ({name}): uacme calls it as METHOD TYPE IDENT TOKEN AUTH.
if [ $# -ne 5 ]; then
    echo "usage: $(basename "$0") method type ident token auth" >&2
    exit 85
fi
METHOD=$1 TYPE=$2 IDENT=$3 TOKEN=$4 AUTH=$5
if [ -n "$HOOK_LOG" ]; then
    printf '%s %s %s %s\\n' "$METHOD" "$TYPE" "$IDENT" "$TOKEN" >> "$HOOK_LOG"
fi
"""

_HTTP01 = """
http01() {
    case "$TOKEN" in *[!A-Za-z0-9_-]*|"") echo "bad token" >&2; exit 1;; esac
    : "${UACME_CHALLENGE_PATH:?UACME_CHALLENGE_PATH is not set}"
    case "$METHOD" in
        begin) printf '%s' "$AUTH" > "$UACME_CHALLENGE_PATH/$TOKEN"; exit $? ;;
        done|failed) rm -f "$UACME_CHALLENGE_PATH/$TOKEN"; exit $? ;;
        *) echo "$0: invalid method" >&2; exit 1 ;;
    esac
}
"""

_TLSALPN01 = """
tlsalpn01() {
    : "${UALPN_SOCKET:?UALPN_SOCKET is not set}"
    case "$METHOD" in
        begin) OUT=$(echo "auth $IDENT $AUTH" | ualpn -s "$UALPN_SOCKET") ;;
        done|failed) OUT=$(echo "unauth $IDENT" | ualpn -s "$UALPN_SOCKET") ;;
        *) echo "$0: invalid method" >&2; exit 1 ;;
    esac
    [ "x$OUT" = "xOK" ] && exit 0
    echo "ualpn: $OUT" >&2
    exit 1
}
"""

_BODIES = {
    # Like /usr/share/uacme/uacme.sh: answers http-01 only, through a webroot.
    "http-01": _HTTP01 + 'case "$TYPE" in http-01) http01 ;; *) exit 1 ;; esac\n',
    # Like /usr/share/uacme/ualpn.sh, but the control socket comes from UALPN_SOCKET.
    "tls-alpn-01": _TLSALPN01 + 'case "$TYPE" in tls-alpn-01) tlsalpn01 ;; *) exit 1 ;; esac\n',
    # Declines http-01 so uacme falls back to the next challenge; answers tls-alpn-01 by ualpn.
    "decline-http": _TLSALPN01 + 'case "$TYPE" in tls-alpn-01) tlsalpn01 ;; *) exit 1 ;; esac\n',
    # Declines everything: no challenge can be answered.
    "decline-all": "exit 1\n",
    # Answers http-01 through the webroot and tls-alpn-01 through ualpn.
    "any": _HTTP01 + _TLSALPN01
           + 'case "$TYPE" in http-01) http01 ;; tls-alpn-01) tlsalpn01 ;; *) exit 1 ;; esac\n',
}


def write_hook_scripts(directory: str | os.PathLike[str]) -> dict[str, str]:
    """Write the executable hook scripts into `directory`; returns {name: path}.

    Names: "http-01", "tls-alpn-01", "decline-http", "decline-all", "any".
    Environment read by the scripts: UACME_CHALLENGE_PATH (webroot for http-01),
    UALPN_SOCKET (ualpn control socket), HOOK_LOG (if set, each call appends
    "METHOD TYPE IDENT TOKEN" to that file).  "decline-http" exits 1 for http-01
    (and dns-01) and answers tls-alpn-01, to test falling back to the next challenge.
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, body in _BODIES.items():
        path = d / f"hook-{name}.sh"
        path.write_text(_PRELUDE.format(name=name) + body)
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        out[name] = str(path)
    return out


