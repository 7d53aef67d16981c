"""`wucme alpn`: a port of uacme's ualpn, the proxying tls-alpn-01 responder (RFC 8737, RFC 8738).

Option for option as ualpn(1): any of -4 -6 -b -c -d -m -n -P -r -S -u selects server mode;
otherwise the command is a client that feeds stdin lines to a running server's control socket
and prints the replies; -t stops a server through its pidfile. The control protocol is
ualpn's (see wucme.challenge.alpnauth), so uacme's ualpn.sh hook drives `wucme alpn` unchanged.

Workers: as ualpn, a master process keeps the control socket and -n worker processes (default 2)
accept on the same listening sockets; each worker runs one event loop, as ualpn's libev loop,
which answers validations itself and hands every other connection to a thread of its own
(wucme.challenge.alpnproxy).  The master applies each control command to its own table, then hands it to
every worker over a socket pair and replies only when all have it, so an auth that was answered
OK is already served by every worker.  Deliberate differences: the default socket and pidfile are
the logical names WUCME_ALPN_SOCKET and WUCME_ALPN_PIDFILE, else /run/wucme-alpn.sock and .pid;
the pid file and the log are never opened through a symbolic link nor believed when another
user may write them, the pid file is made 0644 and the log 0640 whatever the umask, and -t
signals only a process that is a `wucme alpn` (by /proc/PID/cmdline, where there is one).
"""

from __future__ import annotations

import errno
import getopt
import grp
import os
import pwd
import signal
import socket
import stat
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO

from wucme.challenge.alpnauth import AuthTable, handle_command
from wucme.challenge.alpnproxy import AlpnProxy, Backend, ControlServer
from wucme.challenge.store import ChallengeStore
from wucme.challenge.tlsalpn import auth_digest
from wucme.daemon import Daemon, Detached, daemonize, set_from_signal
from wucme.settings import alpn_pidfile, alpn_socket
from wucme.vms.condition import VmsError
from wucme.vms.secure import InsecureError, check_stat, open_private

__all__ = [
    "alpn_main",
    "AlpnControl",
    "AlpnError",
    "default_socket_path",
    "default_pidfile",
    "parse_options",
    "Options",
]

PROGNAME = "wucme-alpn"
_SHORT = "46b:c:dl:m:n:p:P:r:s:S:tu:vVh?"
_LONG = [
    "ipv4", "ipv6", "bind=", "connect=", "daemon", "logfile=", "max-auths=", "num-workers=",
    "pidfile=", "proxy=", "chroot=", "sock=", "sock-mode=", "user=", "terminate", "verbose",
    "version", "help",
]
_LONG_TO_SHORT = {
    "--ipv4": "-4", "--ipv6": "-6", "--bind": "-b", "--connect": "-c", "--daemon": "-d",
    "--logfile": "-l", "--max-auths": "-m", "--num-workers": "-n", "--pidfile": "-p",
    "--proxy": "-P", "--chroot": "-r", "--sock": "-s", "--sock-mode": "-S", "--user": "-u",
    "--terminate": "-t", "--verbose": "-v", "--version": "-V", "--help": "-h",
}
_SERVER_OPTIONS = set("46bcdmnPrSu")
USAGE = (
    "usage: wucme alpn [-?|--help] [-V|--version] [-4|--ipv4] [-6|--ipv6]\n"
    "\t[-b|--bind address[@port] [-c|--connect address[@port]\n"
    "\t[-d|--daemon] [-l|--logfile file] [-m|--max-auths N]\n"
    "\t[-n|--num-workers N] [-p|--pidfile file] [-P|--proxy N]\n"
    "\t[-r|--chroot dir] [-s|--sock path] [-S|--sock-mode mode]\n"
    "\t[-t|--terminate] [-u|--user user[:group]] [-v|--verbose ...]\n"
)


class AlpnError(Exception):
    """A `wucme alpn` failure with ualpn's wording; the exit status is 1."""


def default_socket_path() -> str:
    """The control socket: logical WUCME_ALPN_SOCKET, else /run/wucme-alpn.sock."""
    return alpn_socket()


def default_pidfile() -> str:
    """The pidfile: logical WUCME_ALPN_PIDFILE, else /run/wucme-alpn.pid."""
    return alpn_pidfile()


@dataclass
class Options:
    """ualpn's options after parsing, defaults included."""

    server: bool = False
    family: int = socket.AF_UNSPEC
    bind: list[str] = field(default_factory=list)
    connect: list[str] = field(default_factory=list)
    daemon: bool = False
    logfile: str | None = None
    max_auths: int = 100
    num_workers: int = 2
    pidfile: str | None = None
    proxy: int = 1
    chroot: str | None = None
    socket: str | None = None
    sock_mode: int = 0o644
    stop: bool = False
    user: str | None = None
    verbose: int = 0
    version: bool = False
    help: bool = False
    warnings: list[str] = field(default_factory=list)


def _positive(option: str, value: str) -> int:
    try:
        n = int(value, 10)
    except ValueError:
        n = 0
    if n <= 0:
        raise AlpnError(f"{option}: N must be a positive integer")
    return n


def _root_only_once(o: Options, attr: str, value: str, option: str) -> None:
    """ualpn's rule for -r and -u: given once, and honoured only when running as root."""
    if getattr(o, attr):
        raise AlpnError(f"{option} can only be specified once")
    if os.geteuid() != 0:
        o.warnings.append(f"{option} requires running as root - ignored")
    else:
        setattr(o, attr, value)


def parse_options(argv: list[str]) -> Options:
    """Parse ualpn's command line (GNU getopt, long options included); raise AlpnError."""
    try:
        pairs, extra = getopt.gnu_getopt(argv, _SHORT, _LONG)
    except getopt.GetoptError as exc:
        raise AlpnError(f"{exc}\n{USAGE.rstrip()}") from None
    o = Options()
    for opt, value in pairs:
        opt = _LONG_TO_SHORT.get(opt, opt)
        letter = opt[1]
        if letter in _SERVER_OPTIONS:
            o.server = True
        if letter == "4":
            o.family = socket.AF_UNSPEC if o.family == socket.AF_INET6 else socket.AF_INET
        elif letter == "6":
            o.family = socket.AF_UNSPEC if o.family == socket.AF_INET else socket.AF_INET6
        elif letter == "b":
            _addresses(value, o.family, passive=True)
            o.bind.append(value)
        elif letter == "c":
            _addresses(value, o.family, passive=False)
            o.connect.append(value)
        elif letter == "d":
            o.daemon = True
        elif letter == "l":
            if o.logfile:
                raise AlpnError("-l,--logfile can only be specified once")
            o.logfile = value
        elif letter == "m":
            o.max_auths = _positive("-m,--max-auths", value)
        elif letter == "n":
            o.num_workers = _positive("-n,--num-workers", value)
        elif letter == "p":
            if o.pidfile:
                raise AlpnError("-p,--pidfile can only be specified once")
            o.pidfile = value
        elif letter == "P":
            if value not in ("0", "1", "2"):
                raise AlpnError("-P,--proxy: must be 0 (disabled), 1 or 2")
            o.proxy = int(value)
        elif letter == "r":
            _root_only_once(o, "chroot", value, "-r,--chroot")
        elif letter == "s":
            if o.socket:
                raise AlpnError("-s,--sock can only be specified once")
            o.socket = value
        elif letter == "S":
            try:
                mode = int(value, 8)
            except ValueError:
                mode = -1
            if mode < 0 or mode & 0o777 != mode:
                raise AlpnError("-S,--sock-mode: invalid mode")
            o.sock_mode = mode
        elif letter == "t":
            o.stop = True
        elif letter == "u":
            _root_only_once(o, "user", value, "-u,--user")
        elif letter == "v":
            o.verbose += 1
        elif letter == "V":
            o.version = True
        else:
            o.help = True
    if o.stop and o.daemon:
        raise AlpnError("-d,--daemon and -t,--stop are mutually exclusive")
    if o.stop and o.server:
        raise AlpnError("-t,--stop is incompatible with server mode")
    o.warnings += [f"extra argument ignored: {a}" for a in extra]
    o.socket = o.socket or default_socket_path()
    o.pidfile = o.pidfile or default_pidfile()
    if len(o.socket.encode()) > 107:
        raise AlpnError(f"socket name is too long ({o.socket})")
    return o


def _addresses(spec: str, family: int, *, passive: bool) -> list[tuple[int, tuple[str, int]]]:
    """Numeric ``address[@port]`` (port 443 by default) to (family, sockaddr) pairs, as ualpn's parse_addr."""
    node, sep, service = spec.rpartition("@")
    if not sep:
        node, service = spec, "443"
    if not node:
        raise AlpnError(f"failed to parse address '{spec}': Name or service not known")
    flags = socket.AI_NUMERICHOST | socket.AI_NUMERICSERV | (socket.AI_PASSIVE if passive else 0)
    try:
        infos = socket.getaddrinfo(node, service, family, socket.SOCK_STREAM, 0, flags)
    except (socket.gaierror, UnicodeError) as exc:
        raise AlpnError(f"failed to parse address '{spec}': {exc}") from None
    return [(fam, (str(sa[0]), int(sa[1]))) for fam, _, _, _, sa in infos]


class AlpnLog:
    """ualpn's log lines (``Mon DD HH:MM:SS prog/pid: [LEVEL] text``) to a file, stderr or syslog.

    Warnings and worse always show; -v adds notices, -vv info, -vvv debug.
    """

    _RANK = {"CRIT": 0, "ERR": 0, "WARNING": 0, "NOTICE": 1, "INFO": 2, "DEBUG": 3}

    def __init__(self, verbose: int, stream: IO[str] | None = None) -> None:
        self.verbose = verbose
        self.stream: IO[str] | None = stream if stream is not None else sys.stderr
        self.syslog = False
        self._lock = threading.Lock()

    def use_syslog(self) -> None:
        import syslog

        syslog.openlog(f"{PROGNAME}/{os.getpid()}", 0, syslog.LOG_DAEMON)
        self.syslog = True

    def __call__(self, level: str, message: str) -> None:
        if self._RANK.get(level, 0) > self.verbose:
            return
        if self.stream is not None:
            stamp = time.strftime("%b %d %H:%M:%S")
            with self._lock:
                try:
                    self.stream.write(f"{stamp} {PROGNAME}/{os.getpid()}: [{level}] {message}\n")
                    self.stream.flush()
                except (OSError, ValueError):
                    pass
        if self.syslog:
            import syslog

            priority = getattr(syslog, f"LOG_{level}", syslog.LOG_NOTICE)
            syslog.syslog(priority, f"[{level}] {message}")


# -- client side -----------------------------------------------------------------------------


class AlpnControl:
    """A client of a running `wucme alpn` (or ualpn) control socket, for `issue` and the agent.

    Each call opens its own connection, since the server drops controllers idle for 5 s.
    Raises OSError when no server listens; the reply string says whether the command worked.
    """

    def __init__(self, socket_path: str | os.PathLike[str] | None = None, timeout: float = 5.0) -> None:
        self.socket_path = os.fspath(socket_path) if socket_path is not None else default_socket_path()
        self.timeout = timeout

    def command(self, line: str) -> str:
        """Send one control line; return the server's reply line without its newline."""
        if "\n" in line or "\r" in line:
            raise ValueError("a control command is a single line")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(self.timeout)
            s.connect(self.socket_path)
            s.sendall(line.encode("ascii") + b"\n")
            reply = b""
            while not reply.endswith(b"\n"):
                data = s.recv(512)
                if not data:
                    break
                reply += data
        if not reply:
            raise ConnectionError(f"no reply from unix://{self.socket_path}")
        return reply.decode("ascii", "replace").rstrip("\r\n")

    def auth(self, ident: str, digest: str) -> str:
        """``auth IDENT AUTH``: *digest* is base64url SHA-256 of the key authorization (43 chars)."""
        return self.command(f"auth {ident} {digest}")

    def unauth(self, ident: str) -> str:
        """``unauth IDENT``."""
        return self.command(f"unauth {ident}")

    def available(self) -> bool:
        """True when a server accepts connections on the socket (so `issue` hands it the challenge)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(self.timeout)
            try:
                s.connect(self.socket_path)
            except OSError:
                return False
        return True


def client_main(o: Options, stdin: IO[bytes], stdout: IO[bytes]) -> int:
    """ualpn's client mode: each stdin line goes to the server, each reply line to stdout."""
    assert o.socket is not None
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        try:
            s.connect(o.socket)
        except OSError as exc:
            raise AlpnError(f"failed to connect to unix://{o.socket}: {exc.strerror or exc}") from None
        reader = s.makefile("rb")
        try:
            for line in stdin:
                if not line.endswith(b"\n"):
                    line += b"\n"
                s.sendall(line)
                reply = reader.readline()
                if not reply:
                    break
                stdout.write(reply)
                stdout.flush()
        except OSError as exc:
            raise AlpnError(f"failed to talk to unix://{o.socket}: {exc}") from None
        finally:
            reader.close()
    return 0


def _read_pid(path: str) -> int | None:
    """The pid in *path*; None when the file does not exist.

    A pid file decides which process `-t` signals, so a symbolic link or a file that another
    user owns or may write is refused rather than believed.
    """
    try:
        fd = _open_pidfile(path, os.O_RDONLY, "failed to read")
    except FileNotFoundError:
        return None
    try:
        text = os.read(fd, 64).decode("ascii", "replace")
    finally:
        os.close(fd)
    try:
        return int(text.split()[0])
    except (ValueError, IndexError):
        raise AlpnError(f"failed to parse {path}") from None


def _open_pidfile(path: str, flags: int, failed: str) -> int:
    """The pid file opened with *flags*, never through a symbolic link, and only when it is a
    regular file that no other user owns or may write (vms.secure.check_stat)."""
    try:
        fd = os.open(path, flags | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0), 0o644)
    except FileNotFoundError:
        raise
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise AlpnError(f"refusing {path}: it is a symbolic link") from None
        raise AlpnError(f"{failed} {path}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise AlpnError(f"refusing {path}: not a regular file")
        check_stat(st, path)
    except InsecureError as exc:
        os.close(fd)
        raise AlpnError(exc.message()) from None
    except BaseException:
        os.close(fd)
        raise
    return fd


def _claim_pidfile(path: str) -> tuple[int, int | None]:
    """Lock the pid file for this server: (its descriptor, the pid it named before, if any).

    The lock (flock(2), on the open file, so the workers forked later hold it too) lasts as long
    as any process of the server: of copies started at once only the one that takes it goes
    on, and the others stop before they touch the control socket (with O_EXCL alone, a copy that
    lost the pid file had already replaced the winner's socket, and removed it as it stopped).
    A file that no process locks is stale, whatever pid it names; it is reused in place.  As
    _read_pid, a symbolic link or a file another user owns or may write is refused."""
    import fcntl

    while True:
        try:
            fd = _open_pidfile(path, os.O_RDWR | os.O_CREAT, "failed to create")
        except FileNotFoundError as exc:  # a directory of the path missing
            raise AlpnError(f"failed to create {path}: {exc.strerror}") from None
        try:
            st = os.fstat(fd)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _pid_in(fd)  # None: the holder has not written it yet
                if holder is not None and not _alive(holder):
                    raise AlpnError(f"another instance is still running: the workers of process "
                                    f"{holder}, which has exited, hold {path}") from None
                raise AlpnError("another instance" + (f" (pid {holder})" if holder else "")
                                + " is already running") from None
            try:
                now = os.stat(path, follow_symlinks=False)
            except FileNotFoundError:
                now = None
            if now is not None and (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino):
                return fd, _pid_in(fd)
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # removed or replaced by the server that held it, as it stopped: again


def _pid_in(fd: int) -> int | None:
    try:
        return int(os.pread(fd, 64, 0).decode("ascii", "replace").split()[0])
    except (ValueError, IndexError):
        return None


def _write_pid(fd: int) -> None:
    """This server's pid into the pid file it holds, mode 0644 whatever the umask."""
    data = str(os.getpid()).encode("ascii")
    try:
        os.ftruncate(fd, 0)
        os.fchmod(fd, 0o644)
        os.pwrite(fd, data, 0)
    except OSError as exc:
        raise AlpnError(f"failed to write to the pid file: {exc.strerror}") from None


def _stale(path: str, pid: int) -> str:
    if _alive(pid) and is_alpn_server(pid) is False:
        return f"pid file {path} names process {pid}, which is not a wucme alpn server: stale"
    return f"pid file {path} names process {pid}, which holds no lock on it: stale"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_alpn_server(pid: int) -> bool | None:
    """Whether process *pid* runs `wucme alpn` (by /proc/PID/cmdline); None where there is no
    /proc to tell (then ualpn's rule applies: the pid file is believed)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        return False if os.path.exists("/proc/self/cmdline") else None
    except OSError:
        return None
    args = [a.decode("utf-8", "replace") for a in raw.split(b"\0") if a]
    for i, arg in enumerate(args):
        if arg == "wucme.challenge.alpn" or arg.replace(os.sep, "/").endswith("wucme/challenge/alpn.py"):
            return True
        name = os.path.basename(arg)
        if name in ("wucme", "wucme.exe") and i + 1 < len(args) and args[i + 1].lower() == "alpn":
            return True
    return False


def terminate(o: Options, log: AlpnLog) -> int:
    """-t: SIGTERM the server named by the pidfile (three tries, 5 s each), then tidy up."""
    assert o.pidfile is not None and o.socket is not None
    pid = _read_pid(o.pidfile)
    if pid is None:
        raise AlpnError(f"failed to open {o.pidfile}: No such file or directory")
    if pid <= 0 or pid == os.getpid():
        raise AlpnError(f"{o.pidfile} names process {pid}: not signalled")
    if is_alpn_server(pid) is False and _alive(pid):
        raise AlpnError(f"process {pid} named by {o.pidfile} is not a wucme alpn server: not signalled")
    for attempt in range(3):
        if attempt:
            log("INFO", f"resending SIGTERM to process {pid}")
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            if not attempt:  # ualpn: a pid file naming no process is an error, left in place
                raise AlpnError(f"failed to send SIGTERM to process {pid}: No such process") from None
        except OSError as exc:
            raise AlpnError(f"failed to send SIGTERM to process {pid}: {exc.strerror}") from None
        end = time.monotonic() + 5
        while time.monotonic() < end:
            if not _alive(pid):
                for path in (o.pidfile, o.socket):
                    try:
                        os.unlink(path)
                    except FileNotFoundError:
                        pass
                return 0
            time.sleep(0.05)
    raise AlpnError(f"failed to stop process {pid}")


# -- server side -----------------------------------------------------------------------------


def _control_socket(o: Options) -> socket.socket:
    """Bind the control socket with mode -S (connecting needs write access: 0644 = owner only)."""
    assert o.socket is not None
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(o.socket)
    except OSError:
        pass
    else:
        raise AlpnError(f"another instance is already listening to unix://{o.socket}")
    finally:
        probe.close()
    try:
        os.unlink(o.socket)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise AlpnError(f"failed to unlink {o.socket}: {exc.strerror}") from None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(~o.sock_mode & 0o666)
    try:
        sock.bind(o.socket)
        os.chmod(o.socket, o.sock_mode)  # exactly -S; the umask already kept others out meanwhile
        sock.listen(socket.SOMAXCONN)
    except OSError as exc:
        sock.close()
        raise AlpnError(f"failed to bind to unix://{o.socket}: {exc.strerror}") from None
    finally:
        os.umask(old)
    return sock


def _front_listeners(o: Options, log: AlpnLog) -> list[socket.socket]:
    """Bind every -b address (default: the wildcard, v4 and v6 apart, port 443)."""
    specs: list[tuple[str, int]] = []
    if o.bind:
        specs = [(b, o.family) for b in o.bind]
    elif o.family == socket.AF_UNSPEC:
        specs = [("::@443", socket.AF_INET6), ("0.0.0.0@443", socket.AF_INET)]
    else:
        specs = [("::@443" if o.family == socket.AF_INET6 else "0.0.0.0@443", o.family)]
    listeners = []
    for spec, family in specs:
        try:
            candidates = _addresses(spec, family, passive=True)
        except AlpnError as exc:
            log("WARNING", str(exc))
            continue
        for fam, (host, port) in candidates:
            sock = socket.socket(fam, socket.SOCK_STREAM)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if fam == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.bind((host, port))
                sock.listen(socket.SOMAXCONN)
            except OSError as exc:
                log("WARNING", f"failed to bind to {host}:{port}: {exc.strerror}")
                sock.close()
                continue
            log("NOTICE", f"frontend listening to {host}:{port}")
            listeners.append(sock)
            break
    return listeners


def _backends(o: Options) -> list[Backend]:
    return [_addresses(c, o.family, passive=False)[0][1] for c in o.connect]


def _drop_privileges(o: Options, log: AlpnLog) -> None:
    """-u and -r, after every privileged bind (ualpn's order: chown, chroot, setgid, setuid)."""
    uid = gid = -1
    user = group = None
    if o.user:
        user, _, group = o.user.partition(":")
        try:
            pw = pwd.getpwnam(user)
            gid = grp.getgrnam(group).gr_gid if group else pw.pw_gid
        except KeyError as exc:
            raise AlpnError(f"unknown user or group: {exc}") from None
        uid = pw.pw_uid
        # ualpn also hands the pid file and log to the user; here they stay root's: a pid file
        # that user may write would aim root's next -t at any process, and a log of theirs is
        # refused by root's next start (it is kept open, never reopened, so it needs no chown).
        for path in (o.socket,):
            if path:
                try:
                    os.chown(path, uid, gid)
                except OSError:
                    log("WARNING", f"failed to change owner/group of {path}")
    if o.chroot:
        log("NOTICE", f"changing root directory ({o.chroot})")
        os.chdir(o.chroot)
        os.chroot(".")
    if o.user and user:
        log("NOTICE", f"changing user ({o.user})")
        os.setgid(gid)
        try:
            os.initgroups(user, gid)
        except OSError:
            log("WARNING", f"initgroups(\"{user}\", {gid}) failed")
        os.setuid(uid)


def _warm_up() -> None:
    """Make one validation certificate and context before -r or -u: the modules they load on
    first use may be out of reach afterwards (outside the new root, or unreadable by the user)."""
    from OpenSSL import SSL

    from wucme.challenge.tlsalpn import make_validation_cert_from_digest

    cert, key = make_validation_cert_from_digest("warm-up.invalid", bytes(32))
    ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
    ctx.use_certificate(cert)
    ctx.use_privatekey(key)
    if sys.platform != "OpenVMS":
        import syslog  # noqa: F401  (AlpnLog imports it on first use)


def server_main(o: Options, log: AlpnLog) -> int:
    """Run the responder until SIGTERM or SIGINT."""
    assert o.pidfile is not None and o.socket is not None
    if not o.connect:
        raise AlpnError("-c,--connect must be specified at least once in server mode")
    pidfd, before = _claim_pidfile(o.pidfile)
    cleanup_paths = [o.pidfile]
    daemon: Daemon | None = None
    control_sock: socket.socket | None = None
    try:
        if before is not None:
            log("NOTICE", _stale(o.pidfile, before))
        daemon = _daemonize(log) if o.daemon else None
        # The pid before the control socket: whoever finds the server answering there finds
        # its pid in the file too (it was written after the listeners, and a client of the
        # socket could read the file truncated and empty).
        _write_pid(pidfd)
        control_sock = _control_socket(o)
        cleanup_paths.append(o.socket)
        log("NOTICE", f"version {_version()} starting")
        log("NOTICE", f"control interface listening to unix://{o.socket}")
        stopping = threading.Event()
        listeners = _front_listeners(o, log)
        if not listeners:
            raise AlpnError("failed to listen to all address")
        table = AuthTable(o.max_auths, shared=_shared_store(log))
        # Built (its limits read from the logical name tables) before -u and -r take the
        # tables out of reach; each worker starts its own copy after the fork.
        proxy = AlpnProxy(listeners, _backends(o), table, proxy=o.proxy, log=log, on_loop=stopping.set)
        if o.user or o.chroot:
            _warm_up()
            _drop_privileges(o, log)
        if o.chroot:
            cleanup_paths = []  # the paths are outside the new root (ualpn leaves them too)
        # Forked before any thread starts; the workers own the listeners from here on.
        workers = _fork_workers(o, log, proxy, [control_sock], daemon)
        for sock in listeners:
            sock.close()
        control = ControlServer(control_sock, table, log, on_change=workers.broadcast)
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, set_from_signal(stopping))
        control.start()
        if daemon is not None:
            daemon.ready(b"OK")
        while not stopping.wait(1.0):
            for auth in table.expire():
                log("NOTICE", f"auth {auth.auth} for {auth.ident} expired")
            if workers.reap():
                break
        log("NOTICE", "terminating")
        workers.stop()
        control.stop()
        return 0
    finally:
        if control_sock is not None:
            control_sock.close()
        for path in cleanup_paths:  # the pid file while still locked: no one else's yet
            try:
                os.unlink(path)
            except OSError:
                pass
        os.close(pidfd)
        if daemon is not None:
            daemon.ready(b"ERR")


class _Workers:
    """The master's view of its worker processes: their pids and command channels."""

    def __init__(self, log: AlpnLog) -> None:
        self.log = log
        self.pids: list[int] = []
        self.chans: list[socket.socket] = []
        self._lock = threading.Lock()

    def broadcast(self, line: str) -> None:
        """Hand a command the master accepted to every worker; return once each has applied it."""
        with self._lock:
            for pid, chan in zip(self.pids, self.chans):
                try:
                    chan.sendall(line.strip().encode("latin-1") + b"\n")
                    reply = b""
                    while not reply.endswith(b"\n"):
                        data = chan.recv(512)
                        if not data:
                            raise ConnectionError("worker gone")
                        reply += data
                except OSError as exc:
                    self.log("ERR", f"worker {pid}: control channel failed: {exc}")

    def reap(self) -> bool:
        """True when a worker has exited (a loop detected, or killed): the server then stops,
        for its supervisor to restart it whole."""
        for pid in self.pids:
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done, status = pid, 0
            if done:
                self.log("ERR", f"worker {pid} exited (status {status}), terminating")
                self.pids = [p for p in self.pids if p != pid]
                return True
        return False

    def stop(self) -> None:
        for chan in self.chans:
            chan.close()
        for pid in self.pids:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        for pid in self.pids:
            while True:
                try:
                    done, _ = os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    break
                if done:
                    break
                if time.monotonic() > deadline:
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                    break
                time.sleep(0.02)


def _fork_workers(o: Options, log: AlpnLog, proxy: AlpnProxy, close_in_child: list[socket.socket],
                  daemon: Daemon | None) -> _Workers:
    """-n worker processes, each serving *proxy*'s listeners with its own copy of the table."""
    workers = _Workers(log)
    for _ in range(max(1, o.num_workers)):
        mine, theirs = socket.socketpair()
        pid = os.fork()
        if pid == 0:  # the worker: never returns into the master's clean-up
            code = 1
            try:
                mine.close()
                for sock in close_in_child + workers.chans:
                    sock.close()
                if daemon is not None:
                    daemon.close()  # the start is the master's to report (its reader waits for EOF)
                code = _worker_main(proxy, theirs, log)
            except BaseException as exc:  # noqa: BLE001 - a worker reports, then exits
                log("ERR", f"worker failed: {exc}")
            finally:
                os._exit(code)
        theirs.close()
        workers.pids.append(pid)
        workers.chans.append(mine)
        log("NOTICE", f"worker {pid} started")
    return workers


def _worker_main(proxy: AlpnProxy, chan: socket.socket, log: AlpnLog) -> int:
    """One worker: serve the listeners; apply the master's commands; stop on SIGTERM, when the
    master goes away, or when a proxy loop is detected."""
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, set_from_signal(stopping))
    proxy.on_loop = stopping.set
    table = proxy.table

    def commands() -> None:
        buf = b""
        try:
            while data := chan.recv(4096):
                buf += data
                while b"\n" in buf:
                    line, _, buf = buf.partition(b"\n")
                    reply = handle_command(table, line.decode("latin-1"))
                    chan.sendall(reply.encode("ascii") + b"\n")
        except OSError:
            pass
        stopping.set()  # the master is gone: so is this worker

    threading.Thread(target=commands, name="wucme-alpn-worker-control", daemon=True).start()
    proxy.start()
    while not stopping.wait(1.0):
        table.expire()
    proxy.stop()
    return 0


def _daemonize(log: AlpnLog) -> Daemon:
    """-d: into the background (wucme.daemon); the original process exits 0 once the daemon
    reports "OK" (its listeners are up), 1 otherwise, as ualpn does.  The working directory
    stays (ualpn's -r chroot is relative to nothing else)."""
    daemon = daemonize(chdir=False)
    if isinstance(daemon, Detached):
        if daemon.report != b"OK":
            log("ERR", "daemon failed to start")
            os._exit(1)
        log("NOTICE", f"daemon started (pid {daemon.pid})")
        os._exit(0)
    if log.stream is sys.stderr:
        log.stream = None
        log.use_syslog()
    return daemon


def _open_log(path: str) -> IO[str]:
    """-l: append to *path*, created 0640 whatever the umask; never through a symbolic link,
    and never a file another user owns or may write (ualpn opens it as root, as it finds it)."""
    try:
        fd = open_private(path, os.O_WRONLY | os.O_APPEND, 0o640)
    except InsecureError as exc:
        raise AlpnError(exc.message()) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise AlpnError(f"refusing {path}: it is a symbolic link") from None
        raise AlpnError(f"failed to open {path}: {exc.strerror}") from None
    return os.fdopen(fd, "a", encoding="utf-8")


def _version() -> str:
    from wucme import UACME_VERSION, __version__

    return f"{__version__} (ualpn {UACME_VERSION} port)"


def _shared_store(log: Callable[[str, str], None]) -> Callable[[str], tuple[str, str] | None] | None:
    """The cluster's shared challenge store as an SNI lookup, when one is defined (WUCME_STORE_DB
    or WUCME_LOCK_DB: docs/cluster.md): this server then answers orders other nodes started."""
    store = ChallengeStore()
    if not store.shared:
        return None
    log("NOTICE", "answering the cluster's shared challenge store too")

    def lookup(sni: str) -> tuple[str, str] | None:
        entry = store.alpn_lookup(sni, sni=True)
        return (entry.ident, entry.key_authorization) if entry is not None else None

    return lookup


def alpn_main(argv: list[str], stdin: IO[bytes] | None = None, stdout: IO[bytes] | None = None) -> int:
    """`wucme alpn ARGS`: ualpn's command line; 0 on success, 1 on failure (as ualpn)."""
    log = AlpnLog(0)
    try:
        o = parse_options(argv)
        log.verbose = o.verbose
        for warning in o.warnings:
            log("WARNING", warning)
        if o.version:
            sys.stderr.write(f"{PROGNAME}: version {_version()}\n")
            return 1
        if o.help:
            sys.stderr.write(USAGE)
            return 1
        if o.logfile:
            log.stream = _open_log(o.logfile)
            log("NOTICE", f"logging to file {o.logfile}")
        if o.stop:
            return terminate(o, log)
        if not o.server:
            return client_main(o, stdin or sys.stdin.buffer, stdout or sys.stdout.buffer)
        return server_main(o, log)
    except (AlpnError, VmsError) as exc:  # VmsError: an insecure logical name table, say
        log("ERR", exc.message() if isinstance(exc, VmsError) else str(exc))
        if log.stream is not sys.stderr:
            text = exc.message() if isinstance(exc, VmsError) else str(exc)
            sys.stderr.write(f"{PROGNAME}/{os.getpid()}: [ERR] {text}\n")
        return 1
    finally:
        if log.stream not in (None, sys.stderr):
            log.stream.close()  # type: ignore[union-attr]


if __name__ == "__main__":
    sys.exit(alpn_main(sys.argv[1:]))
