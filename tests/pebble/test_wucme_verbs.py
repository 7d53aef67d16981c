"""The wµCME verbs against a real Pebble, run as an administrator runs them: `python3 -m wucme`.

Each test has its own repository (WUCME_HERE), logical name tables (WUCME_LNM_DIR) and alpn
control socket path, so no test touches /var/lib or a running `wucme alpn`.
"""
from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from harness.loopback import stop_accepting
from harness.pebble import Pebble, free_port

pytestmark = pytest.mark.pebble

SPKI = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


class Wucme:
    """`python3 -m wucme ...` with a repository of its own, against one CA."""

    def __init__(self, tmp: Path, pebble: Pebble | None, ca_url: str | None = None):
        self.here = tmp / "here"
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("WUCME_", "_WUCME_", "UACME_", "WASD_"))}
        self.env.update(WUCME_HERE=str(self.here), WUCME_LNM_DIR=str(tmp / "lnm"),
                        WUCME_ALPN_SOCKET=str(tmp / "alpn.sock"))
        if pebble is not None:
            self.env.update(WUCME_CA=pebble.directory_url, WUCME_CA_BUNDLE=pebble.ca_bundle,
                            WUCME_HTTP01=f"127.0.0.1:{pebble.http_port}",
                            WUCME_ALPN=f"127.0.0.1:{pebble.tls_port}")
        if ca_url:
            self.env["WUCME_CA"] = ca_url

    def __call__(self, *args: str, code: int = 0, **env: str) -> subprocess.CompletedProcess[str]:
        e = dict(self.env, **env)
        r = subprocess.run([sys.executable, "-m", "wucme", *args], env=e, capture_output=True,
                           text=True, timeout=90, stdin=subprocess.DEVNULL)
        assert r.returncode == code, f"wucme {' '.join(args)}: exit {r.returncode}, wanted {code}\n" \
                                     f"{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
        assert "Traceback" not in r.stderr
        return r

    def json(self) -> list[dict[str, Any]]:
        out = json.loads(self("certificates", "/output=json").stdout)
        assert out["repository"] == str(self.here)
        certs: list[dict[str, Any]] = out["certificates"]
        return certs

    def snapshot(self) -> dict[str, bytes]:
        if not self.here.is_dir():
            return {}
        # The scan index (WUCME_SCAN.DAT) is a cache of what the files say, rewritten by any
        # scan that finds it out of date: not a change made by the command.
        return {p.name: p.read_bytes() for p in self.here.iterdir()
                if p.is_file() and p.name != "WUCME_SCAN.DAT"}


@pytest.fixture
def wucme(pebble: Pebble, tmp_path: Path) -> Wucme:
    w = Wucme(tmp_path, pebble)
    w("register", "admin@example.org")
    return w


def chain(path: Path) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(path.read_bytes())


def sans(cert: x509.Certificate) -> list[str]:
    return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def assert_files(here: Path, part: str, names: set[str]) -> x509.Certificate:
    """WUCME_C = chain + the key of WUCME_K, both 0600; the leaf names exactly *names*."""
    c, k = here / f"WUCME_C_{part}.PEM", here / f"WUCME_K_{part}.PEM"
    assert mode(c) == mode(k) == 0o600
    key = serialization.load_pem_private_key(k.read_bytes(), None)
    assert c.read_bytes().endswith(k.read_bytes())
    assert b"BEGIN CERTIFICATE" in c.read_bytes().split(b"PRIVATE KEY")[0]
    leaf = chain(c)[0]
    assert leaf.public_key().public_bytes(*SPKI) == key.public_key().public_bytes(*SPKI)
    assert set(sans(leaf)) == names
    return leaf


def test_register_makes_key_and_again_a_new_account(pebble: Pebble, tmp_path: Path) -> None:
    w = Wucme(tmp_path, pebble)
    r = w("register", "admin@example.org")
    assert "%WUCME-I-TERMS, terms of service at data:" in r.stdout
    assert "%WUCME-S-REGISTERED, account https://localhost:" in r.stdout
    key1 = (w.here / "WUCME_ACCOUNT.PEM").read_bytes()
    assert mode(w.here / "WUCME_ACCOUNT.PEM") == 0o600
    assert b"EC PRIVATE KEY" in key1 or b"BEGIN PRIVATE KEY" in key1
    acct1 = r.stdout.split("account ")[1].split()[0]
    r = w("register")
    acct2 = r.stdout.split("account ")[1].split()[0].rstrip(",")
    assert acct2 != acct1.rstrip(",")
    assert "NEWACCOUNT" in r.stdout
    assert (w.here / "WUCME_ACCOUNT.PEM;1").read_bytes() == key1
    assert (w.here / "WUCME_ACCOUNT.PEM").read_bytes() != key1
    w("register", "not an address", code=2)


def test_issue_http01_on_wucme_http01_then_certificates(wucme: Wucme, tmp_path: Path) -> None:
    marker = tmp_path / "loaded"
    load = f"{sys.executable} -c \"open('{marker}', 'w').write('ok')\""
    r = wucme("issue", "www.example.org,two.example.org", WUCME_CHALLENGE="http-01", WUCME_LOAD=load)
    assert "%WUCME-S-ISSUED, certificate for www.example.org (2 names) in WUCME_C_WWW_EXAMPLE_ORG.PEM, " \
           "expires 20" in r.stdout
    assert "  www.example.org: valid" in r.stdout and "  two.example.org: valid" in r.stdout
    assert marker.read_text() == "ok" and "%WUCME-I-LOADED" in r.stdout
    leaf = assert_files(wucme.here, "WWW_EXAMPLE_ORG", {"www.example.org", "two.example.org"})
    state = json.loads((wucme.here / "WUCME_S_WWW_EXAMPLE_ORG.JSON").read_text())
    assert state["hosts"] == ["www.example.org", "two.example.org"]
    assert state["challenge"] == "http-01" and state["key_type"] == "EC P-256"
    # the serial as openssl prints it (upper-case hex, two digits a byte)
    openssl = subprocess.run(["openssl", "x509", "-noout", "-serial", "-in", str(wucme.here / "WUCME_C_WWW_EXAMPLE_ORG.PEM")],
                             capture_output=True, text=True, check=True).stdout.strip()
    assert openssl == f"serial={state['serial']}"
    assert json.loads(wucme("certificates", "/output=json").stdout)["certificates"][0]["serial"] == state["serial"]

    text = wucme("cert").stdout  # abbreviated verb
    row = next(line for line in text.splitlines() if "WUCME_C_WWW_EXAMPLE_ORG.PEM" in line)
    assert row.startswith("www.example.org +1") and " valid " in row and "issued" in row
    [rec] = wucme.json()
    assert rec["hosts"] == ["www.example.org", "two.example.org"]
    assert rec["state"] == "valid" and rec["days_left"] > 300
    assert rec["not_after"] == leaf.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")

    # A failing WUCME_LOAD is a warning: the renewed certificate stays saved.
    r = wucme("issue", "www.example.org", "two.example.org", code=1, WUCME_CHALLENGE="http-01",
              WUCME_LOAD=f"{sys.executable} -c \"raise SystemExit(3)\"")
    assert "%WUCME-S-ISSUED" in r.stdout and "%WUCME-W-LOADFAIL" in r.stderr and "status 3" in r.stderr
    assert chain(wucme.here / "WUCME_C_WWW_EXAMPLE_ORG.PEM")[0].serial_number != leaf.serial_number
    assert (wucme.here / "WUCME_C_WWW_EXAMPLE_ORG.PEM;1").exists()


def test_issue_http01_answered_by_the_web_server_script(wucme: Wucme, pebble: Pebble) -> None:
    """Without WUCME_HTTP01 the challenges go to the store the wucme script serves from."""
    from wucme.challenge.http01 import Http01Listener
    from wucme.challenge.store import ChallengeStore

    store = ChallengeStore(wucme.here / "WUCME_CHALLENGES")  # docs/commands.md, http-01
    with Http01Listener(store, "127.0.0.1", pebble.http_port):
        r = wucme("issue", "web.example.org", WUCME_CHALLENGE="http-01", WUCME_HTTP01="")
    assert "%WUCME-S-ISSUED, certificate for web.example.org (1 name)" in r.stdout
    assert len(store) == 0  # withdrawn once answered


def test_issue_tls_alpn01_idn_continuation_then_revoke(wucme: Wucme, pebble: Pebble) -> None:
    # tls-alpn-01 is the default; names space- and comma-separated, a `-` continuation, an IDN.
    r = wucme("issue", "WWW.Example.org,", "bücher.example,-", "www.example.org", "three.example.org")
    names = {"www.example.org", "xn--bcher-kva.example", "three.example.org"}
    assert "certificate for www.example.org (3 names)" in r.stdout
    leaf = assert_files(wucme.here, "WWW_EXAMPLE_ORG", names)
    assert json.loads((wucme.here / "WUCME_S_WWW_EXAMPLE_ORG.JSON").read_text())["challenge"] == "tls-alpn-01"
    serial = format(leaf.serial_number, "x")
    assert pebble.cert_status(serial)["Status"] == "Valid"

    r = wucme("revoke", "wucme_c_www_example_org.pem", "--reason=super")
    shown = format(leaf.serial_number, "X").zfill(len(format(leaf.serial_number, "X")) + 1 & ~1)
    assert f"%WUCME-S-REVOKED, certificate {shown} in WUCME_C_WWW_EXAMPLE_ORG.PEM revoked (superseded)" in r.stdout
    assert pebble.cert_status(serial)["Status"] == "Revoked"
    [rec] = wucme.json()
    assert rec["state"] == "revoked" and "superseded" in rec["last_result"]
    # manage leaves a revoked certificate alone
    r = wucme("manage")
    assert "revoked" in r.stdout and "0 renewed, 1 not due" in r.stdout


def test_manage_renews_the_due_and_skips_the_rest(pebble_factory: Any, tmp_path: Path) -> None:
    p = pebble_factory(validity=12)  # 12 s: renewal is due once half of it has gone
    w = Wucme(tmp_path, p)
    w("register")
    w("issue", "old.example.org", WUCME_CHALLENGE="http-01", WUCME_HTTP01=f"127.0.0.1:{p.http_port}")
    old = chain(w.here / "WUCME_C_OLD_EXAMPLE_ORG.PEM")[0]
    half = old.not_valid_before_utc.timestamp() + 6.5
    time.sleep(max(0.0, half - time.time()))
    w("issue", "new.example.org")
    new = chain(w.here / "WUCME_C_NEW_EXAMPLE_ORG.PEM")[0]
    r = w("manage", WUCME_WORKERS="2", WUCME_LOAD="true")  # loaded: no NOTLOADED warning
    assert "%WUCME-S-RENEWED, WUCME_C_OLD_EXAMPLE_ORG.PEM" in r.stdout
    # the messages say why: the renewal's reason, the skip's date
    assert "renewed (less than half of its lifetime left), expires" in r.stdout
    assert "%WUCME-I-SKIPPED, WUCME_C_NEW_EXAMPLE_ORG.PEM (new.example.org): not due until 20" in r.stdout
    assert "%WUCME-S-MANAGED, 1 renewed, 1 not due, 0 failed" in r.stdout
    assert chain(w.here / "WUCME_C_OLD_EXAMPLE_ORG.PEM")[0].serial_number != old.serial_number
    assert chain(w.here / "WUCME_C_NEW_EXAMPLE_ORG.PEM")[0].serial_number == new.serial_number
    assert_files(w.here, "OLD_EXAMPLE_ORG", {"old.example.org"})
    states = {rec["hosts"][0]: rec for rec in w.json()}
    assert states["old.example.org"]["status"] == "renewed"
    assert states["new.example.org"]["status"] == "issued"


def test_manage_reissues_after_a_corrupt_state_and_reports_failures(wucme: Wucme) -> None:
    wucme("issue", "www.example.org", WUCME_CHALLENGE="http-01")
    wucme("issue", "fail.example.org", WUCME_CHALLENGE="http-01")
    before = chain(wucme.here / "WUCME_C_WWW_EXAMPLE_ORG.PEM")[0]
    (wucme.here / "WUCME_S_WWW_EXAMPLE_ORG.JSON").write_bytes(b"{not json")
    [rec, _] = sorted(wucme.json(), key=lambda r: r["hosts"][0] != "www.example.org")
    assert rec["state"] == "due" and "unreadable" in rec["last_result"]
    # The other certificate is due too (WUCME_DAYS) but cannot be answered: its failure must not
    # stop the renewal of the first.
    (wucme.here / "WUCME_S_FAIL_EXAMPLE_ORG.JSON").write_text(json.dumps(
        {"hosts": ["fail.example.org", "bad..name"]}))
    r = wucme("manage", code=2, WUCME_CHALLENGE="http-01")
    assert "%WUCME-S-RENEWED, WUCME_C_WWW_EXAMPLE_ORG.PEM" in r.stdout
    assert "%WUCME-E-RENEWFAIL, WUCME_C_FAIL_EXAMPLE_ORG.PEM" in r.stderr  # errors on stderr
    assert "%WUCME-E-MANAGED, 1 renewed, 0 not due, 1 failed" in r.stderr
    assert chain(wucme.here / "WUCME_C_WWW_EXAMPLE_ORG.PEM")[0].serial_number != before.serial_number
    assert json.loads((wucme.here / "WUCME_S_WWW_EXAMPLE_ORG.JSON").read_text())["status"] == "renewed"
    failed = json.loads((wucme.here / "WUCME_S_FAIL_EXAMPLE_ORG.JSON").read_text())
    assert failed["status"] == "failed" and failed["next_attempt"]


class CountingServer:
    """A TCP listener that only counts connections: a CA that must never be reached."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.count = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.count += 1
            conn.close()

    def close(self) -> None:
        stop_accepting(self.sock, self._thread, self._stop)


@pytest.fixture
def unreachable_ca() -> Iterator[CountingServer]:
    s = CountingServer()
    try:
        yield s
    finally:
        s.close()


def test_bad_input_changes_nothing_and_reaches_no_ca(wucme: Wucme, unreachable_ca: CountingServer,
                                                     tmp_path: Path) -> None:
    wucme("issue", "www.example.org", WUCME_CHALLENGE="http-01")
    wucme.env["WUCME_CA"] = f"https://127.0.0.1:{unreachable_ca.port}/dir"
    before = wucme.snapshot()
    many = ",".join(f"h{i}.example.org" for i in range(101))
    cases = [
        (["issue", many], "%WUCME-E-TOOMANY, 101 identifiers"),
        (["issue", "www.example.org,bad_name.example.org"], "%WUCME-E-BADHOST"),
        (["issue", "-bad.example.org"], "%WUCME-E-BADHOST"),
        (["issue", "www.example.org", "*.example.org"], "%WUCME-E-WILDCARD"),
        (["issue", "exa mple.org,a..b"], "%WUCME-E-BADHOST"),
        (["revoke", "/reason=nonsense", "WUCME_C_WWW_EXAMPLE_ORG.PEM"], "%WUCME-E-IVKEYW"),
        (["issue", "/frob", "www.example.org"], "%WUCME-E-IVQUAL"),
    ]
    for args, message in cases:
        r = wucme(*args, code=2)
        assert message in r.stderr, (args, r.stderr)
    # A corrupt account key: a clear error, never a silent new account.
    (wucme.here / "WUCME_ACCOUNT.PEM").write_bytes(b"-----BEGIN PRIVATE KEY-----\ngarbage\n")
    before = wucme.snapshot()
    for args in (["issue", "new.example.org"], ["manage"], ["revoke", "WUCME_C_WWW_EXAMPLE_ORG.PEM"]):
        r = wucme(*args, code=2, WUCME_DAYS="100000")
        assert "%WUCME-E-BADACCKEY, account key" in r.stderr and "never replaced silently" in r.stderr
    # An unwritable repository (below a regular file, which defeats even root).
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = wucme("issue", "www.example.org", code=2, WUCME_HERE=str(blocker / "repo"))
    assert "%WUCME-E-NOPRIV, cannot write the certificate repository" in r.stderr
    r = wucme("register", code=2, WUCME_HERE=str(blocker / "repo"))
    assert "%WUCME-E-NOPRIV" in r.stderr
    assert wucme.snapshot() == before
    assert unreachable_ca.count == 0


def test_check_ca_http01_log_and_not_yet(wucme: Wucme, tmp_path: Path) -> None:
    r = wucme("check", "/ca")
    assert "%WUCME-S-CA, https://localhost:" in r.stdout and " ms" in r.stdout
    assert "renewal information (ARI): not offered" in r.stdout
    assert "%WUCME-I-NOLOG" in wucme("check", "/log").stdout
    (wucme.here / "WUCME_LOG_OLD.LOG").write_text("old\n")
    os.utime(wucme.here / "WUCME_LOG_OLD.LOG", (1, 1))
    (wucme.here / "WUCME_LOG_NEW.LOG").write_text("newest log line\n")
    r = wucme("check", "/log")
    assert "newest log line" in r.stdout and "old" not in r.stdout.replace("WUCME_LOG", "")
    r = wucme("check", "/mail", code=2)  # nothing to send to: a clear error (docs/reporting.md)
    assert "%WUCME-E-NOMAIL" in r.stderr

    port = free_port()
    env = dict(wucme.env, WUCME_HTTP01=f"127.0.0.1:{port}")
    proc = subprocess.Popen([sys.executable, "-m", "wucme", "check", "/http01", "/seconds=2"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        body = b""
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/.well-known/acme-challenge/x", timeout=2)
            except urllib.error.HTTPError as e:
                assert e.code == 404
                body = e.read()
                e.close()
                break
            except urllib.error.URLError:
                time.sleep(0.05)
        assert body == b"Challenge received but no such token."
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "%WUCME-I-LISTENING, http-01 responder on 127.0.0.1:" in out and "%WUCME-S-STOPPED" in out


def test_define_show_deassign_in_the_system_table(tmp_path: Path) -> None:
    w = Wucme(tmp_path, None)
    w("define", "wucme_mail", '"system,smtp%""a@b"""')
    w("def", "/sys", "/exec", "WUCME_OPCOM", "CENTRAL,NETWORK")
    table = json.loads((tmp_path / "lnm" / "system.json").read_text())["names"]
    assert table["WUCME_MAIL"]["values"] == ['system,smtp%"a@b"']
    assert table["WUCME_OPCOM"] == {"values": ["CENTRAL", "NETWORK"], "mode": "EXECUTIVE"}
    out = w("show", "log", "WUCME_*").stdout  # DCL's listing: the table, then its names indented
    assert '(LNM$SYSTEM_TABLE)\n\n  "WUCME_MAIL" = "system,smtp%"a@b""\n  "WUCME_OPCOM" [exec] = "CENTRAL"\n' \
        '        = "NETWORK"' in out
    assert w("show", "log", "WUCME_OPCOM").stdout == '   "WUCME_OPCOM" [exec] = "CENTRAL" (LNM$SYSTEM_TABLE)\n' \
        '        = "NETWORK"\n'
    w("deassign", "WUCME_OPCOM")
    assert "WUCME_OPCOM" not in w("show", "logical").stdout
    r = w("deassign", "WUCME_OPCOM", code=4)
    assert r.stderr == "%SYSTEM-F-NOLOGNAM, no logical name match\n"


def test_issue_hands_tls_alpn01_to_a_running_wucme_alpn(wucme: Wucme, pebble: Pebble,
                                                        tmp_path: Path) -> None:
    sock = tmp_path / "alpn.sock"  # the path wucme's environment names (WUCME_ALPN_SOCKET)
    proc = subprocess.Popen(
        [sys.executable, "-m", "wucme", "alpn", "-b", f"127.0.0.1@{pebble.tls_port}",
         "-c", f"127.0.0.1@{free_port()}", "-s", str(sock), "-p", str(tmp_path / "alpn.pid"),
         "-l", str(tmp_path / "alpn.log"), "-v"],
        env=wucme.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            if sock.exists() or proc.poll() is not None:
                break
            time.sleep(0.05)
        assert proc.poll() is None and sock.exists()
        # WUCME_ALPN names a port Pebble never calls: only the alpn server can answer.
        r = wucme("issue", "alpn.example.org", WUCME_ALPN=f"127.0.0.1:{free_port()}", WUCME_VERBOSE="1")
        assert f"tls-alpn-01 answered by the wucme alpn server at {sock}" in r.stderr
        assert_files(wucme.here, "ALPN_EXAMPLE_ORG", {"alpn.example.org"})
    finally:
        proc.terminate()
        proc.wait(10)


def test_manage_follows_ari_and_names_the_replaced_certificate(pebble: Pebble, tmp_path: Path) -> None:
    """RFC 9773 through the fault proxy (Pebble 2.4.0 has no renewalInfo): a window in the past
    renews with `replaces`, a window in the future keeps the certificate whatever its age."""
    from datetime import datetime, timedelta, timezone

    from harness.faultproxy import FaultProxy
    from wucme.uacme.ari import ari_cert_id

    def when(days: int) -> str:
        return (datetime.now(timezone.utc) + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")

    with FaultProxy(pebble) as proxy:
        proxy.enable_ari()
        w = Wucme(tmp_path, pebble, ca_url=proxy.directory_url)
        w("register")
        w("issue", "ari.example.org", WUCME_CHALLENGE="http-01")
        cfile = w.here / "WUCME_C_ARI_EXAMPLE_ORG.PEM"
        old = ari_cert_id(chain(cfile)[0])
        proxy.set_renewal_info(old, when(30), when(31))
        r = w("manage", WUCME_CHALLENGE="http-01", WUCME_DAYS="3000")
        assert "0 renewed" in r.stdout + r.stderr and "renewal window" in r.stdout + r.stderr
        proxy.set_renewal_info(old, when(-2), when(-1))
        r = w("manage", WUCME_CHALLENGE="http-01", WUCME_LOAD="true")  # loaded: no NOTLOADED
        assert "1 renewed" in r.stdout + r.stderr
        orders = [q for q in proxy.requests_to("/order-plz", "POST") if b"badNonce" not in q.response_body]
        assert orders[-1].jws_payload()["replaces"] == old
        assert ari_cert_id(chain(cfile)[0]) != old


class AgentAskingServer:
    """Stands in for WASD: owns the tls-alpn-01 port and, for `acme-tls/1`, runs the real
    ACME_TLS_1 agent (`wucme acme_tls_1 SNI`) for the validation certificate and key."""

    def __init__(self, port: int, env: dict[str, str]):
        from OpenSSL import SSL

        self.env, self.asked = env, []
        self.sock = socket.create_server(("127.0.0.1", port))
        from wucme.challenge.tlsalpn import make_self_signed

        self.ctx = SSL.Context(SSL.TLS_METHOD)
        cert, key = make_self_signed("site.example.org")  # the site's own certificate
        self.ctx.use_certificate(cert)
        self.ctx.use_privatekey(key)
        self.ctx.set_alpn_select_callback(self._select)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _select(self, conn: Any, offered: list[bytes]) -> bytes:
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        sni = (conn.get_servername() or b"").decode()
        self.asked.append(sni)
        out = subprocess.run([sys.executable, "-m", "wucme", "acme_tls_1", sni], env=self.env,
                             capture_output=True, timeout=30).stdout
        conn.use_certificate(x509.load_pem_x509_certificate(out))
        conn.use_privatekey(load_pem_private_key(out[out.index(b"-----BEGIN PRIVATE KEY"):], None))
        return b"acme-tls/1"

    def _serve(self) -> None:
        from OpenSSL import SSL

        while True:
            try:
                raw, _ = self.sock.accept()
            except OSError:
                return
            conn = SSL.Connection(self.ctx, raw)
            conn.set_accept_state()
            try:
                conn.do_handshake()
                conn.shutdown()
            except (SSL.Error, OSError):
                pass
            finally:
                raw.close()

    def close(self) -> None:
        stop_accepting(self.sock, self.thread)


def test_issue_leaves_tls_alpn01_to_the_servers_acme_tls_1_agent(wucme: Wucme, pebble: Pebble) -> None:
    # WUCME_ALPN=AGENT: wucme binds nothing; the server (here a stand-in for WASD) owns the port.
    server = AgentAskingServer(pebble.tls_port, wucme.env)
    try:
        r = wucme("issue", "wasd.example.org", WUCME_ALPN="AGENT", WUCME_VERBOSE="1")
    finally:
        server.close()
    assert "answered by the web server's ACME_TLS_1 agent" in r.stderr
    assert "wasd.example.org" in server.asked
    assert_files(wucme.here, "WASD_EXAMPLE_ORG", {"wasd.example.org"})


def test_a_busy_alpn_port_is_a_clear_error_naming_the_agent_mode(wucme: Wucme) -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        r = wucme("issue", "busy.example.org", code=2, WUCME_ALPN=f"127.0.0.1:{port}")
    assert "%WUCME-E-NOLISTEN" in r.stderr and "WUCME_ALPN AGENT" in r.stderr


def test_hostile_state_host_reaches_no_ca_and_the_others_go_on(wucme: Wucme, unreachable_ca: CountingServer) -> None:
    """A state file naming `../../etc/evil` is that certificate's failure, found before any
    request: `manage` used to contact the CA (directory, ARI) before checking the name."""
    wucme("issue", "www.example.org", WUCME_CHALLENGE="http-01")
    good = json.loads((wucme.here / "WUCME_S_WWW_EXAMPLE_ORG.JSON").read_text())
    evil = wucme.here / "WUCME_S_EVIL.JSON"
    evil.write_text(json.dumps(dict(good, hosts=["../../etc/evil", "www.example.org"])))
    (wucme.here / "WUCME_C_EVIL.PEM").write_bytes((wucme.here / "WUCME_C_WWW_EXAMPLE_ORG.PEM").read_bytes())
    # Only the hostile one in a repository: nothing reaches the CA.
    lone = Wucme(wucme.here.parent / "lone", None, f"https://127.0.0.1:{unreachable_ca.port}/dir")
    lone.here.mkdir(mode=0o755, parents=True)
    (lone.here / "WUCME_ACCOUNT.PEM").write_bytes((wucme.here / "WUCME_ACCOUNT.PEM").read_bytes())
    (lone.here / "WUCME_ACCOUNT.PEM").chmod(0o600)
    (lone.here / "WUCME_S_EVIL.JSON").write_text(evil.read_text())
    r = lone("manage", code=2, WUCME_DAYS="100000")
    assert "%WUCME-E-RENEWFAIL, WUCME_C_EVIL.PEM (../../etc/evil, www.example.org): its state names a bad host" \
        in r.stderr, r.stderr
    assert unreachable_ca.count == 0
    assert not (lone.here.parent / "etc").exists() and sorted(p.name for p in lone.here.iterdir()) == [
        "WUCME_ACCOUNT.PEM", "WUCME_S_EVIL.JSON"]
    # Beside a good one, against the real CA: the good one is renewed, the hostile one fails.
    r = wucme("manage", code=2, WUCME_DAYS="100000", WUCME_CHALLENGE="http-01")
    assert "%WUCME-S-RENEWED, WUCME_C_WWW_EXAMPLE_ORG.PEM" in r.stdout
    assert "%WUCME-E-RENEWFAIL, WUCME_C_EVIL.PEM" in r.stderr and "bad host" in r.stderr
    assert "%WUCME-E-MANAGED, 1 renewed, 0 not due, 1 failed" in r.stderr
