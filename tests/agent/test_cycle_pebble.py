"""The agent's daily cycle against a real Pebble: renew, load into a real nginx, check the served
certificate, report by mail (aiosmtpd) and syslog (a datagram socket we own), back off, retry."""
from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import signal
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from harness.loopback import stop_accepting
from harness.pebble import Pebble, free_port
from wucme.crypto import serial_hex

from .support import Agents, Syslog, alive, comm, wait_for

pytestmark = pytest.mark.pebble


def leaf(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificates(path.read_bytes())[0]


def served_serial(port: int, name: str) -> int:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            ctx.wrap_socket(raw, server_hostname=name) as tls:
        der = tls.getpeercert(binary_form=True)
    assert der
    return x509.load_der_x509_certificate(der).serial_number


def setup_repository(agents: Agents, p: Pebble, host: str) -> Path:
    agents.use_pebble(p)
    agents.wucme("register", "admin@example.org")
    agents.wucme("issue", host)
    return agents.here / f"WUCME_C_{host.upper().replace('.', '_')}.PEM"


def test_full_cycle_renew_load_nginx_check_and_report(pebble_factory: Callable[..., Pebble], agents: Agents,
                                                      syslog: Syslog, smtp: tuple[int, list[Any]]) -> None:
    from harness.webservers import Nginx, nginx_stream_available

    if not nginx_stream_available():
        pytest.skip("nginx with the stream module is not installed")
    validity = 10
    p = pebble_factory(validity=validity)  # due once half of it has gone (lifetimes <= 10 days)
    cert = setup_repository(agents, p, "site.example.org")
    old = leaf(cert)
    key = agents.here / "WUCME_K_SITE_EXAMPLE_ORG.PEM"
    with Nginx(free_port(), free_port(), cert, key) as ng:
        assert served_serial(ng.site_port, "site.example.org") == old.serial_number
        reload = f"nginx -p {ng.workdir}/ -c {ng.conf_path} -e {ng.error_log} -s reload"
        agents.env.update(WUCME_LOAD=reload, WUCME_SERVICES=f"site.example.org@127.0.0.1:{ng.site_port}",
                          WUCME_OPCOM="CENTRAL", WUCME_SYSLOG=str(syslog.path),
                          WUCME_MAIL="admin@example.org", WUCME_SMTP=f"127.0.0.1:{smtp[0]}")
        # Not due yet: a cycle renews nothing and loads nothing.
        r = agents.wucme("agent", "/once")
        assert "0 renewed, 1 not due" in r.stderr and "LOADED" not in r.stderr
        time.sleep(max(0.0, old.not_valid_before_utc.timestamp() + validity / 2 + 0.3 - time.time()))

        r = agents.wucme("agent", "/once")
        new = leaf(cert)
        assert new.serial_number != old.serial_number
        assert "%WUCME-S-RENEWED, WUCME_C_SITE_EXAMPLE_ORG.PEM" in r.stderr
        assert f"certificates loaded by {reload!r}" in r.stderr
        assert f"serves the current certificate (serial {serial_hex(new.serial_number)})" in r.stderr
        # nginx reloaded it (an old worker may answer a last connection while it winds down)
        wait_for(lambda: served_serial(ng.site_port, "site.example.org") == new.serial_number, 5, "reloaded")

        # A second cycle right away: skipped (the state saved by the renewal), issued once.
        r = agents.wucme("agent", "/once")
        assert "0 renewed, 1 not due" in r.stderr and leaf(cert).serial_number == new.serial_number

    # One log per activation: the plain name is the newest (the skip), the renewal's is a version.
    logs = sorted(f.name for f in agents.here.iterdir() if f.name.startswith("WUCME_LOG_"))
    assert logs == ["WUCME_LOG_VM.LOG", "WUCME_LOG_VM.LOG;1", "WUCME_LOG_VM.LOG;2"] or len(logs) == 3, logs
    plain = agents.here / next(n for n in logs if ";" not in n)
    assert "0 renewed, 1 not due" in plain.read_text() and "RENEWED" not in plain.read_text()
    renewal_log = (agents.here / f"{plain.name};2").read_text()
    assert "%WUCME-S-RENEWED" in renewal_log and "%WUCME-S-LOADED" in renewal_log
    shown = agents.wucme("check", "/log").stdout
    assert str(plain) in shown and "0 renewed, 1 not due" in shown
    # Reports: a syslog line and a mail, both naming the renewal and the load.
    wait_for(lambda: "RENEWED" in syslog.drain(), 5, "syslog line")
    text = syslog.drain()
    assert "site.example.org" in text and "LOADED" in text
    wait_for(lambda: bool(smtp[1]), 5, "mail")
    body = b"".join(e.content for e in smtp[1]).decode("utf-8", "replace")
    assert smtp[1][0].rcpt_tos == ["admin@example.org"]
    assert "RENEWED" in body and "site.example.org" in body
    state = json.loads((agents.here / "WUCME_AGENT.JSON").read_text())
    assert state["failures"] == 0
    assert json.loads((agents.here / "WUCME_LOAD.JSON").read_text())["ok"] is True


def test_handshake_mismatch_is_a_failure(pebble: Pebble, pebble_ca: Any, agents: Agents) -> None:
    """A server still serving an old certificate (nothing reloads it): the cycle fails and backs off."""
    from harness.pebble import make_server_cert

    cert = setup_repository(agents, pebble, "stale.example.org")
    other_cert, other_key = make_server_cert(agents.tmp / "other", (pebble_ca.cert, pebble_ca.key),
                                             ["stale.example.org"])
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(other_cert, other_key)
    srv = socket.create_server(("127.0.0.1", 0))
    srv.settimeout(0.1)
    port = srv.getsockname()[1]
    import threading
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                continue
            except OSError:  # shut down: the test is over
                return
            conn.settimeout(5)
            try:
                with ctx.wrap_socket(conn, server_side=True):
                    pass
            except (OSError, ssl.SSLError):
                conn.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        r = agents.wucme("agent", "/once", code=0, WUCME_DAYS="100000", WUCME_LOAD_SETTLE="0.5",
                         WUCME_SERVICES=f"stale.example.org@127.0.0.1:{port}")
    finally:
        stop_accepting(srv, t, stop)
    assert "%WUCME-S-RENEWED" in r.stderr
    assert "serves serial" in r.stderr and f"not the current {serial_hex(leaf(cert).serial_number)}" in r.stderr
    state = json.loads((agents.here / "WUCME_AGENT.JSON").read_text())
    assert state["failures"] == 1 and state["retry_at"]
    # The failed load is the repository's to remember: the next pass, agent or manage, loads again.
    assert json.loads((agents.here / "WUCME_LOAD.JSON").read_text())["ok"] is False


def test_failing_renewal_is_reported_backed_off_and_retried(pebble_factory: Callable[..., Pebble], agents: Agents,
                                                            syslog: Syslog, monkeypatch: pytest.MonkeyPatch) -> None:
    """No responder: the renewal fails, is reported, and retried a minute later (fake clock)."""
    from harness.clock import FakeClock
    from wucme.agent import Agent
    from wucme.agent.log import AgentLog
    from wucme.agent.process import in_process_cycle

    p = pebble_factory()
    cert = setup_repository(agents, p, "retry.example.org")
    old = leaf(cert)
    for k in [k for k in os.environ if k.startswith("WUCME_")]:
        monkeypatch.delenv(k)
    for k, v in agents.env.items():
        if k.startswith("WUCME_"):
            monkeypatch.setenv(k, v)
    monkeypatch.setenv("WUCME_DAYS", "100000")  # due now
    monkeypatch.setenv("WUCME_OPCOM", "CENTRAL")
    monkeypatch.setenv("WUCME_SYSLOG", str(syslog.path))
    monkeypatch.setenv("WUCME_HTTP01", "")  # the challenge goes to the store nobody serves
    start = dt.datetime.now(dt.timezone.utc)
    clock = FakeClock(start)
    log = AgentLog(0, echo=open(os.devnull, "w"))

    def agent() -> Agent:
        return Agent(agents.here, clock=clock, cycle=in_process_cycle(), max_cycles=1, log=log, rename=False)

    try:
        assert agent().serve() == 0
        state = json.loads((agents.here / "WUCME_AGENT.JSON").read_text())
        retry = start + dt.timedelta(minutes=1)
        assert state["failures"] == 1 and state["retry_at"] == retry.strftime("%Y-%m-%dT%H:%M:%SZ")
        cstate = json.loads((agents.here / "WUCME_S_RETRY_EXAMPLE_ORG.JSON").read_text())
        assert cstate["status"] == "failed" and cstate["next_attempt"] == state["retry_at"]
        assert leaf(cert).serial_number == old.serial_number
        wait_for(lambda: "RENEWFAIL" in syslog.drain(), 5, "the failure reported by syslog")
        assert "retry.example.org" in syslog.drain()

        # A restarted agent remembers the backoff: it waits (on the fake clock) for the retry time.
        monkeypatch.setenv("WUCME_HTTP01", f"127.0.0.1:{p.http_port}")
        clock.advance(dt.timedelta(seconds=10))
        assert agent().serve() == 0
        assert clock.waits and clock.waits[-1].strftime("%Y-%m-%dT%H:%M:%SZ") == state["retry_at"]
        state = json.loads((agents.here / "WUCME_AGENT.JSON").read_text())
        assert state["failures"] == 0 and state["retry_at"] is None
        assert leaf(cert).serial_number != old.serial_number
    finally:
        log.echo.close()


def test_background_child_of_the_load_command_never_holds_the_lock(pebble: Pebble, agents: Agents) -> None:
    setup_repository(agents, pebble, "bg.example.org")
    pidfile = agents.tmp / "sleep.pid"
    agents.env.update(WUCME_DAYS="100000", WUCME_LOAD=f"sh -c 'sleep 1000 & echo $! > {pidfile}'")
    procs = [agents.start(), agents.start()]
    wait_for(lambda: pidfile.exists() and pidfile.read_text().strip().isdigit(), 30, "the load command ran")
    sleeper = int(pidfile.read_text())
    agents.extra_pids.append(sleeper)
    active = next(p for p in procs if comm(p.pid) == "wuCME-active")
    standby = next(p for p in procs if p is not active)
    wait_for(lambda: "%WUCME-I-NEXT" in agents.output(active), 30, "the cycle finished")
    assert comm(standby.pid) == "wuCME-standby"
    lockfile = str(agents.here / "WUCME_LOCKS" / "WUCME_ACTIVE.LCK")
    assert all(os.readlink(f"/proc/{sleeper}/fd/{fd}") != lockfile for fd in os.listdir(f"/proc/{sleeper}/fd"))
    os.kill(active.pid, signal.SIGKILL)
    wait_for(lambda: comm(standby.pid) == "wuCME-active", 2.0, "the standby takes over")
    assert alive(sleeper)  # the load's child lives on, and does not hold the lock


_MESSAGE = re.compile(r"%WUCME-([SIWEF])-([A-Z0-9_$]+), (WUCME_C_[A-Z0-9_]+\.PEM)?")


def said(text: str) -> list[tuple[str, str, str]]:
    """(severity, ident, certificate file) of every VMS message in *text*, sorted."""
    return sorted((m.group(1), m.group(2), m.group(3) or "") for m in _MESSAGE.finditer(text))


def test_manage_and_the_agent_make_the_same_pass(pebble: Pebble, agents: Agents, syslog: Syslog,
                                                 smtp: tuple[int, list[Any]]) -> None:
    """One repository, copied; `wucme manage` on one copy, `wucme agent /once` on the other: the
    same renewals, skips and failures, the same load action, the same reports by syslog and mail,
    the same expiry warning.  (One pass, wucme.renewal, used by both.)"""
    setup_repository(agents, pebble, "keep.example.org")  # valid for years: not due
    agents.wucme("issue", "grow.example.org")
    agents.wucme("issue", "fail.example.org")
    # Due: the state asks for a name the certificate lacks.  Failing: a name no CA may see.
    for part, hosts in (("GROW_EXAMPLE_ORG", ["grow.example.org", "more.example.org"]),
                        ("FAIL_EXAMPLE_ORG", ["fail.example.org", "bad..name"])):
        path = agents.here / f"WUCME_S_{part}.JSON"
        path.write_text(json.dumps(dict(json.loads(path.read_text()), hosts=hosts)))
    original = agents.here
    loads = agents.tmp / "loads"
    agents.env.update(WUCME_LOAD=f"sh -c 'echo loaded >> {loads}'", WUCME_WARN_DAYS="100000",
                      WUCME_OPCOM="CENTRAL", WUCME_SYSLOG=str(syslog.path),
                      WUCME_MAIL="admin@example.org", WUCME_SMTP=f"127.0.0.1:{smtp[0]}")

    def one_pass(*command: str, code: int) -> dict[str, Any]:
        here = agents.tmp / command[0]
        shutil.copytree(original, here)
        loads.unlink(missing_ok=True)
        syslog.lines.clear()
        smtp[1].clear()
        r = agents.wucme(*command, code=code, WUCME_HERE=str(here))
        wait_for(lambda: "EXPIRING" in syslog.drain() and len(smtp[1]) >= 2, 10, "the reports")
        states = {p.name: json.loads(p.read_text())["status"] for p in here.glob("WUCME_S_*.JSON")}
        mail = "\n".join(e.content.decode("utf-8", "replace") for e in smtp[1])
        own = ("MANAGED", "CYCLE", "ACTIVE", "STANDBY", "TAKEOVER", "NEXT", "STOPPING", "STOPPED")
        messages = [m for m in said(r.stdout + r.stderr) if m[1] not in own]  # the pass's only
        return {"messages": messages, "states": states, "loads": loads.read_text(),
                "load_record": json.loads((here / "WUCME_LOAD.JSON").read_text())["ok"],
                "syslog": said(syslog.drain()), "mail": said(mail)}

    manage = one_pass("manage", code=2)  # a failure: exit status 2
    agent = one_pass("agent", "/once", code=0)  # the agent notes it and backs off
    assert manage == agent
    assert manage["messages"] == [("E", "RENEWFAIL", "WUCME_C_FAIL_EXAMPLE_ORG.PEM"),
                                  ("I", "SKIPPED", "WUCME_C_KEEP_EXAMPLE_ORG.PEM"),
                                  ("S", "LOADED", ""),
                                  ("S", "RENEWED", "WUCME_C_GROW_EXAMPLE_ORG.PEM"),
                                  ("W", "EXPIRING", "")]
    assert manage["states"] == {"WUCME_S_KEEP_EXAMPLE_ORG.JSON": "issued",
                                "WUCME_S_GROW_EXAMPLE_ORG.JSON": "renewed",
                                "WUCME_S_FAIL_EXAMPLE_ORG.JSON": "failed"}
    assert manage["loads"] == "loaded\n" and manage["load_record"] is True
    for sent in (manage["syslog"], manage["mail"]):
        assert {ident for _, ident, _ in sent} == {"RENEWED", "RENEWFAIL", "LOADED", "MANAGED", "EXPIRING"}
