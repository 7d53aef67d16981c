"""`wucme alpn`, the ualpn port, as a real process in front of a real TLS backend."""

from __future__ import annotations

import io
import os
import pwd
import socket
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509

from harness.pebble import stop_child
from wucme.challenge.alpn import AlpnControl, alpn_main, parse_options
from wucme.challenge.alpnauth import AUTH_LIFETIME, AuthTable, handle_command
from wucme.challenge.alpnproxy import proxy_header
from wucme.challenge.tlsalpn import auth_digest

from .test_challenge_support import (
    PYTHON, TlsBackend, free_port, python_env, s_client, tls_get, wait_for, write_self_signed,
)
from .test_challenge_tlsalpn import assert_validation_cert

KEYAUTH = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"
DIGEST = auth_digest(KEYAUTH)


@dataclass
class Alpn:
    proc: subprocess.Popen[bytes]
    port: int
    sock: Path
    pidfile: Path
    log: Path
    backend: TlsBackend

    def control(self) -> AlpnControl:
        return AlpnControl(self.sock)


def start_alpn(tmp_path: Path, backend_port: int, *extra: str) -> tuple[subprocess.Popen[bytes], int, Path, Path, Path]:
    port = free_port()
    sock, pidfile, log = tmp_path / "alpn.sock", tmp_path / "alpn.pid", tmp_path / "alpn.log"
    proc = subprocess.Popen(
        [PYTHON, "-m", "wucme.challenge.alpn", "-b", f"127.0.0.1@{port}", "-c", f"127.0.0.1@{backend_port}",
         "-s", str(sock), "-p", str(pidfile), "-l", str(log), "-vv", *extra],
        env=python_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    wait_for(lambda: AlpnControl(sock).available() and pidfile.exists() or proc.poll() is not None,
             what="wucme alpn to start")
    assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
    return proc, port, sock, pidfile, log


@pytest.fixture
def alpn(tmp_path: Path) -> Iterator[Alpn]:
    backend = TlsBackend(write_self_signed(tmp_path))
    proc, port, sock, pidfile, log = start_alpn(tmp_path, backend.port)
    try:
        yield Alpn(proc, port, sock, pidfile, log, backend)
    finally:
        stop_child(proc, grace=10)
        backend.close()


def test_ordinary_clients_reach_backend_with_proxy_v1(alpn: Alpn) -> None:
    with socket.create_connection(("127.0.0.1", alpn.port)) as probe:
        pass
    for alpn_list in (None, ["h2", "http/1.1"], ["acme-tls/1"]):  # acme-tls/1 with no auth: proxied
        reply, _ = tls_get(alpn.port, "www.example.org", alpn_list)
        assert reply == b"backend says hello to GET / HTTP/1.0"
    assert len(alpn.backend.headers) == 3
    for header in alpn.backend.headers:
        proto, src, dst, sport, dport = header.decode().split()[1:]
        assert (proto, src, dst, int(dport)) == ("TCP4", "127.0.0.1", "127.0.0.1", alpn.port)
        assert 0 < int(sport) < 65536
    del probe


def test_validation_through_proxy_front(alpn: Alpn) -> None:
    ctl = alpn.control()
    assert ctl.auth("www.example.org", DIGEST) == "OK"
    out, cert = s_client(alpn.port, ["-servername", "www.example.org", "-alpn", "acme-tls/1"])
    assert "ALPN protocol: acme-tls/1" in out
    assert cert is not None
    assert_validation_cert(cert, x509.DNSName("www.example.org"), KEYAUTH)
    # same name, other ALPN: the real site still answers
    reply, chosen = tls_get(alpn.port, "www.example.org", ["h2", "http/1.1"])
    assert reply.startswith(b"backend says hello") and chosen is None
    # other name with acme-tls/1: proxied, never the validation certificate
    out, cert = s_client(alpn.port, ["-servername", "other.example.org", "-alpn", "acme-tls/1"])
    assert cert is not None and cert.subject.rfc4514_string() == "CN=backend.test"
    assert ctl.unauth("www.example.org") == "OK"
    out, cert = s_client(alpn.port, ["-servername", "www.example.org", "-alpn", "acme-tls/1"])
    assert cert is not None and cert.subject.rfc4514_string() == "CN=backend.test"
    log = alpn.log.read_text()
    assert "acme-tls/1 handshake with auth " + DIGEST + " for www.example.org completed" in log


def test_ip_identifier_reverse_dns(alpn: Alpn) -> None:
    assert alpn.control().auth("127.0.0.1", DIGEST) == "OK"
    out, cert = s_client(alpn.port, ["-servername", "1.0.0.127.in-addr.arpa", "-alpn", "acme-tls/1"])
    assert "ALPN protocol: acme-tls/1" in out
    assert cert is not None
    import ipaddress

    assert_validation_cert(cert, x509.IPAddress(ipaddress.ip_address("127.0.0.1")), KEYAUTH)
    assert alpn.control().unauth("127.0.0.1") == "OK"


def test_control_replies(alpn: Alpn) -> None:
    ctl = alpn.control()
    assert ctl.command("hello") == "ERR usage: auth <ident> <auth> | unauth <ident>"
    assert ctl.command("") == "ERR usage: auth <ident> <auth> | unauth <ident>"
    assert ctl.auth("bad/ident", DIGEST) == "ERR invalid ident"
    assert ctl.auth("x" * 251, DIGEST) == "ERR invalid ident"
    assert ctl.auth("a.example", "notbase64!") == "ERR invalid auth"
    assert ctl.auth("a.example", DIGEST[:-2]) == "ERR invalid auth"
    assert ctl.auth("a.example", DIGEST + "=") == "ERR invalid auth"
    assert ctl.command("auth a.example") == "ERR invalid auth"
    assert ctl.auth("a.example", DIGEST) == "OK"
    assert ctl.auth("A.EXAMPLE", DIGEST) == "ERR already inserted"
    assert ctl.auth("a.example", auth_digest("other")) == "OK"  # replaces
    assert ctl.command("unauth a.example extra") == "ERR too many parameters"
    assert ctl.unauth("a.example") == "OK"
    assert ctl.unauth("a.example") == "ERR not found"
    with socket.socket(socket.AF_UNIX) as s:  # several lines in one write, CRLF tolerated
        s.connect(str(alpn.sock))
        s.sendall(f"auth b.example {DIGEST}\r\nunauth b.example\nunauth b.example\n".encode())
        time.sleep(0.3)
        assert s.recv(1000) == b"OK\nOK\nERR not found\n"
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(alpn.sock))
        s.sendall(b"a" * 600)
        assert s.recv(100) == b"ERR too long\n"


def test_too_many_auths(tmp_path: Path) -> None:
    backend = TlsBackend(write_self_signed(tmp_path))
    proc, port, sock, pidfile, log = start_alpn(tmp_path, backend.port, "-m", "2")
    try:
        ctl = AlpnControl(sock)
        assert ctl.auth("a.example", DIGEST) == "OK"
        assert ctl.auth("b.example", DIGEST) == "OK"
        assert ctl.auth("c.example", DIGEST) == "ERR too many auths"
        assert ctl.auth("a.example", auth_digest("x")) == "OK"  # replacing is not adding
    finally:
        stop_child(proc, grace=10)
        backend.close()


def test_client_mode_via_stdin(alpn: Alpn) -> None:
    p = subprocess.run(
        [PYTHON, "-m", "wucme.challenge.alpn", "-s", str(alpn.sock)],
        input=f"auth c.example {DIGEST}\nbogus\nunauth c.example\n".encode(),
        capture_output=True, env=python_env(), timeout=20,
    )
    assert p.returncode == 0, p.stderr
    assert p.stdout.decode().splitlines() == ["OK", "ERR usage: auth <ident> <auth> | unauth <ident>", "OK"]


def test_debian_ualpn_client_talks_to_wucme_alpn(alpn: Alpn) -> None:
    """uacme's ualpn.sh runs `ualpn -s SOCK` with `auth IDENT AUTH` on stdin: it must work unchanged."""
    if not os.path.exists("/usr/bin/ualpn"):
        pytest.skip("Debian package uacme (ualpn) not installed")
    p = subprocess.run(
        ["/usr/bin/ualpn", "-s", str(alpn.sock)],
        input=f"auth d.example {DIGEST}\n".encode(), capture_output=True, timeout=20,
    )
    # ualpn.sh looks only at the reply; Debian's ualpn 1.7.4 client exits 1 even when its own
    # server answers OK, so its status proves nothing here.
    assert p.stdout == b"OK\n", p.stderr
    out, cert = s_client(alpn.port, ["-servername", "d.example", "-alpn", "acme-tls/1"])
    assert "ALPN protocol: acme-tls/1" in out
    p = subprocess.run(["/usr/bin/ualpn", "-s", str(alpn.sock)], input=b"unauth d.example\n",
                       capture_output=True, timeout=20)
    assert p.stdout == b"OK\n"


def test_terminate_via_pidfile(alpn: Alpn) -> None:
    assert alpn.pidfile.read_text().strip() == str(alpn.proc.pid)
    reaper = threading.Thread(target=alpn.proc.wait)  # a zombie child would look alive to kill(pid, 0)
    reaper.start()
    p = subprocess.run(
        [PYTHON, "-m", "wucme.challenge.alpn", "-t", "-p", str(alpn.pidfile), "-s", str(alpn.sock)],
        capture_output=True, env=python_env(), timeout=30,
    )
    assert p.returncode == 0, p.stderr
    reaper.join(5)
    assert alpn.proc.returncode == 0
    assert not alpn.pidfile.exists() and not alpn.sock.exists()
    p = subprocess.run(
        [PYTHON, "-m", "wucme.challenge.alpn", "-t", "-p", str(alpn.pidfile)],
        capture_output=True, env=python_env(), timeout=30,
    )
    assert p.returncode == 1 and b"failed to open" in p.stderr


def test_second_instance_refused(alpn: Alpn, tmp_path: Path) -> None:
    p = subprocess.run(
        [PYTHON, "-m", "wucme.challenge.alpn", "-b", f"127.0.0.1@{free_port()}", "-c", "127.0.0.1@1",
         "-s", str(alpn.sock), "-p", str(alpn.pidfile)],
        capture_output=True, env=python_env(), timeout=30,
    )
    assert p.returncode == 1
    assert f"another instance (pid {alpn.proc.pid}) is already running".encode() in p.stderr
    assert alpn.control().auth("e.example", DIGEST) == "OK"  # the first one is unharmed


def test_socket_mode(alpn: Alpn) -> None:
    assert (alpn.sock.stat().st_mode & 0o777) == 0o644  # connect needs write: owner only


def test_idle_and_junk_clients_do_not_block_validation(alpn: Alpn) -> None:
    assert alpn.control().auth("www.example.org", DIGEST) == "OK"
    idle = [socket.create_connection(("127.0.0.1", alpn.port)) for _ in range(100)]
    try:
        for i, s in enumerate(idle[:50]):
            s.sendall(b"\x16\x03\x01\x02\x00" if i % 2 else b"\x16")  # unfinished ClientHellos
        start = time.monotonic()
        out, cert = s_client(alpn.port, ["-servername", "www.example.org", "-alpn", "acme-tls/1"])
        assert "ALPN protocol: acme-tls/1" in out
        reply, _ = tls_get(alpn.port, "www.example.org")
        assert reply.startswith(b"backend says hello")
        assert time.monotonic() - start < 5
    finally:
        for s in idle:
            s.close()


def test_plain_http_is_proxied_too(tmp_path: Path) -> None:
    """Non-TLS bytes are relayed untouched (ualpn's STATE_INIT check), here without a PROXY header."""
    with socket.socket() as back:
        back.bind(("127.0.0.1", 0))
        back.listen(1)
        proc, port, sock, pidfile, log = start_alpn(tmp_path, back.getsockname()[1], "-P", "0")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
                c.sendall(b"GET / HTTP/1.0\r\n\r\n")
                conn, _ = back.accept()
                with conn:
                    conn.settimeout(5)
                    assert conn.recv(100) == b"GET / HTTP/1.0\r\n\r\n"
                    conn.sendall(b"HTTP/1.0 204 No Content\r\n\r\n")
                    conn.shutdown(socket.SHUT_WR)
                    assert c.recv(100) == b"HTTP/1.0 204 No Content\r\n\r\n"
        finally:
            stop_child(proc, grace=10)


def test_options_and_usage_errors(tmp_path: Path) -> None:
    assert parse_options(["-c", "127.0.0.1@8443"]).server
    assert not parse_options(["-s", "/tmp/x.sock", "-v"]).server
    o = parse_options(["-S", "666", "-P", "2", "-m", "5", "-b", "::1@4443", "-c", "127.0.0.1"])
    assert (o.sock_mode, o.proxy, o.max_auths, o.bind, o.server) == (0o666, 2, 5, ["::1@4443"], True)
    assert parse_options(["--connect=127.0.0.1@1", "--proxy", "0"]).proxy == 0
    err = io.StringIO()
    for bad in (["-P", "3"], ["-S", "999"], ["-m", "0"], ["-c", "not-an-address"], ["-t", "-c", "127.0.0.1"],
                ["-b", "127.0.0.1@1"]):  # the last: server mode without -c
        assert alpn_main(bad + ["-s", str(tmp_path / "s"), "-p", str(tmp_path / "p")]) == 1, bad
    del err


def test_proxy_v2_header() -> None:
    v2 = proxy_header(2, ("192.0.2.1", 50000), ("198.51.100.2", 443))
    assert v2[:12] == b"\r\n\r\n\x00\r\nQUIT\n" and v2[12:14] == b"\x21\x11" and v2[14:16] == b"\x00\x0c"
    assert v2[16:] == bytes([192, 0, 2, 1, 198, 51, 100, 2]) + (50000).to_bytes(2, "big") + (443).to_bytes(2, "big")
    v26 = proxy_header(2, ("2001:db8::1", 1), ("2001:db8::2", 2))
    assert v26[13] == 0x21 and len(v26) == 16 + 36
    assert proxy_header(1, ("2001:db8::1", 1), ("2001:db8::2", 2)) == b"PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n"
    assert proxy_header(0, ("192.0.2.1", 1), ("192.0.2.2", 2)) == b""
    with pytest.raises(ValueError):
        proxy_header(1, ("192.0.2.1", 1), ("2001:db8::2", 2))


def test_auths_expire_after_an_hour() -> None:
    now = [1000.0]
    table = AuthTable(clock=lambda: now[0])
    assert handle_command(table, f"auth 192.0.2.9 {DIGEST}") == "OK"
    assert table.get("9.2.0.192.in-addr.arpa") is not None
    assert table.get("192.0.2.9") is None  # a literal IP is never an SNI
    now[0] += AUTH_LIFETIME - 1
    assert table.get("9.2.0.192.in-addr.arpa") is not None and table.expire() == []
    now[0] += 2
    assert table.get("9.2.0.192.in-addr.arpa") is None
    assert [a.ident for a in table.expire()] == ["192.0.2.9"] and len(table) == 0


# -- the pid file and the log (issue 10, item 6) ---------------------------------------------


def alpn_command(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([PYTHON, "-m", "wucme.challenge.alpn", *args], capture_output=True,
                          env=python_env(), timeout=30)


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A real process that is not a wucme alpn server."""
    proc = subprocess.Popen(["sleep", "300"])
    try:
        yield proc
    finally:
        stop_child(proc)


def test_pidfile_and_log_modes_under_umask_000(tmp_path: Path) -> None:
    backend = TlsBackend(write_self_signed(tmp_path))
    sock, pidfile, log = tmp_path / "alpn.sock", tmp_path / "alpn.pid", tmp_path / "alpn.log"
    proc = subprocess.Popen(
        [PYTHON, "-m", "wucme.challenge.alpn", "-b", f"127.0.0.1@{free_port()}", "-c",
         f"127.0.0.1@{backend.port}", "-s", str(sock), "-p", str(pidfile), "-l", str(log)],
        env=python_env(), umask=0)
    try:
        wait_for(lambda: pidfile.exists() and AlpnControl(sock).available(), what="wucme alpn to start")
        assert stat.S_IMODE(pidfile.stat().st_mode) == 0o644
        assert stat.S_IMODE(log.stat().st_mode) == 0o640
        assert stat.S_IMODE(sock.stat().st_mode) == 0o644
    finally:
        stop_child(proc, grace=10)
        backend.close()


def test_terminate_signals_only_a_wucme_alpn_process(tmp_path: Path,
                                                     sleeper: subprocess.Popen[bytes]) -> None:
    pidfile = tmp_path / "alpn.pid"
    pidfile.write_text(str(sleeper.pid))
    p = alpn_command("-t", "-p", str(pidfile), "-s", str(tmp_path / "alpn.sock"))
    assert p.returncode == 1
    said = f"process {sleeper.pid} named by {pidfile} is not a wucme alpn server: not signalled"
    assert said.encode() in p.stderr
    assert sleeper.poll() is None and pidfile.exists()


def test_symlinked_pidfile_is_refused(tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text(str(sleeper.pid))
    pidfile = tmp_path / "alpn.pid"
    pidfile.symlink_to(elsewhere)
    p = alpn_command("-t", "-p", str(pidfile))
    assert p.returncode == 1 and f"refusing {pidfile}: it is a symbolic link".encode() in p.stderr
    p = alpn_command("-b", f"127.0.0.1@{free_port()}", "-c", "127.0.0.1@1", "-p", str(pidfile),
                     "-s", str(tmp_path / "alpn.sock"))
    assert p.returncode == 1 and f"refusing {pidfile}: it is a symbolic link".encode() in p.stderr
    assert sleeper.poll() is None and elsewhere.read_text() == str(sleeper.pid)


@pytest.mark.skipif(os.geteuid() != 0, reason="handing a file to another user needs root")
def test_pidfile_another_user_may_write_is_refused(tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    pidfile = tmp_path / "alpn.pid"
    pidfile.write_text(str(sleeper.pid))
    os.chown(pidfile, pwd.getpwnam("nobody").pw_uid, -1)
    p = alpn_command("-t", "-p", str(pidfile))
    assert p.returncode == 1
    assert f"%WUCME-E-INSECURE, {pidfile} is writable by its owner nobody".encode() in p.stderr
    assert sleeper.poll() is None


def test_symlinked_log_is_refused(tmp_path: Path) -> None:
    precious = tmp_path / "precious"
    precious.write_text("keep me\n")
    log = tmp_path / "alpn.log"
    log.symlink_to(precious)
    p = alpn_command("-l", str(log), "-b", f"127.0.0.1@{free_port()}", "-c", "127.0.0.1@1",
                     "-p", str(tmp_path / "alpn.pid"), "-s", str(tmp_path / "alpn.sock"))
    assert p.returncode == 1 and f"refusing {log}: it is a symbolic link".encode() in p.stderr
    assert precious.read_text() == "keep me\n" and not (tmp_path / "alpn.pid").exists()


def test_stale_pidfile_naming_another_program_does_not_block_the_start(
        tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    """After a reboot the pid in a leftover pid file may belong to anything: not another instance."""
    backend = TlsBackend(write_self_signed(tmp_path))
    (tmp_path / "alpn.pid").write_text(str(sleeper.pid))
    proc, _, _, pidfile, log = start_alpn(tmp_path, backend.port)
    try:
        wait_for(lambda: pidfile.read_text() == str(proc.pid), what="the new pid file")
        assert "which is not a wucme alpn server: stale" in log.read_text()
        assert sleeper.poll() is None
    finally:
        stop_child(proc, grace=10)
        backend.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="-u needs root")
def test_user_option_leaves_pidfile_and_log_to_root_so_terminate_still_works(tmp_path: Path) -> None:
    backend = TlsBackend(write_self_signed(tmp_path))
    proc, port, sock, pidfile, log = start_alpn(tmp_path, backend.port, "-u", "nobody")
    try:
        wait_for(lambda: "changing user (nobody)" in log.read_text(), what="the user change")
        assert (pidfile.stat().st_uid, log.stat().st_uid) == (0, 0)
        assert sock.stat().st_uid == pwd.getpwnam("nobody").pw_uid
        assert AlpnControl(sock).auth("u.example", DIGEST) == "OK"  # made as nobody
        out, _ = s_client(port, ["-servername", "u.example", "-alpn", "acme-tls/1"])
        assert "ALPN protocol: acme-tls/1" in out
        reaper = threading.Thread(target=proc.wait)
        reaper.start()
        p = alpn_command("-t", "-p", str(pidfile), "-s", str(sock))
        assert p.returncode == 0, p.stderr
        reaper.join(5)
        assert proc.returncode == 0 and not pidfile.exists()
    finally:
        stop_child(proc, grace=10)
        backend.close()


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def test_workers_share_the_port_and_every_one_has_each_auth_once_it_is_ok(tmp_path: Path) -> None:
    """-n 3: three worker processes accept on the one port; an auth answered OK is served by
    whichever worker takes the validation connection, and an unauth withdraws it from all."""
    backend = TlsBackend(write_self_signed(tmp_path))
    proc, port, sock, pidfile, log = start_alpn(tmp_path, backend.port, "-n", "3")
    try:
        wait_for(lambda: len(children(proc.pid)) == 3, what="three workers")
        workers = children(proc.pid)
        ctl = AlpnControl(sock)
        assert ctl.auth("www.example.org", DIGEST) == "OK"
        def served() -> set[str]:
            return {line.split("/")[1].split(":")[0] for line in log.read_text().splitlines()
                    if "acme-tls/1 handshake with auth" in line and "completed" in line}

        # No wait: the reply came after every worker had the auth.  Which worker the kernel
        # wakes for a connection is its choice (one that has just served may well win again),
        # so connections go on until two workers have served, each one validated.
        for _ in range(300):
            _, chosen = tls_get(port, "www.example.org", ["acme-tls/1"])
            assert chosen == "acme-tls/1"
            if len(served()) >= 2:
                break
        assert len(served()) >= 2 and served() <= {str(w) for w in workers}
        assert ctl.unauth("www.example.org") == "OK"
        for _ in range(6):
            reply, chosen = tls_get(port, "www.example.org", ["acme-tls/1"])
            assert chosen is None and reply.startswith(b"backend says hello")
    finally:
        stop_child(proc, grace=10)
        backend.close()
    for w in workers:  # SIGTERM to the master ends its workers too
        assert not Path(f"/proc/{w}").exists() or "zombie" in Path(f"/proc/{w}/status").read_text()


def test_a_worker_that_dies_stops_the_server(tmp_path: Path) -> None:
    """As with a proxy loop: the server stops whole, for its supervisor to restart it."""
    backend = TlsBackend(write_self_signed(tmp_path))
    proc, port, sock, pidfile, log = start_alpn(tmp_path, backend.port, "-n", "2")
    try:
        wait_for(lambda: len(children(proc.pid)) == 2, what="two workers")
        os.kill(children(proc.pid)[0], 9)
        assert proc.wait(timeout=15) == 0
        assert "exited (status 9), terminating" in log.read_text()
        assert not pidfile.exists()
    finally:
        stop_child(proc, grace=10)
        backend.close()


@pytest.mark.parametrize("no_native", [False, True], ids=["native-relay", "pure-relay"])
def test_proxied_bytes_through_either_relay(tmp_path: Path, no_native: bool) -> None:
    backend = TlsBackend(write_self_signed(tmp_path))
    env = python_env()
    if no_native:
        env["WUCME_NO_NATIVE"] = "1"
    port = free_port()
    sock = tmp_path / "alpn.sock"
    proc = subprocess.Popen(
        [PYTHON, "-m", "wucme.challenge.alpn", "-b", f"127.0.0.1@{port}", "-c", f"127.0.0.1@{backend.port}",
         "-s", str(sock), "-p", str(tmp_path / "alpn.pid"), "-n", "1"], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: AlpnControl(sock).available() or proc.poll() is not None, what="wucme alpn to start")
        for alpn_list in (None, ["h2", "http/1.1"]):
            reply, _ = tls_get(port, "www.example.org", alpn_list)
            assert reply == b"backend says hello to GET / HTTP/1.0"
    finally:
        stop_child(proc, grace=10)
        backend.close()
