"""Fixtures for tests that need the real-parts environment: Pebble, responders, the fault proxy.

Pebble fixtures skip (with the reason) when the Debian `pebble` package is missing;
`system_trust` skips unless running as root.  Every process a fixture starts is
stopped at teardown, also after a failing test.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from harness.faultproxy import FaultProxy
from harness.loopback import PORT_WAIT
from harness.pebble import Pebble, TestCA, install_system_trust, pebble_available, stable_test_ca
from harness.ports import await_port_free, let_go_log
from harness.postgres import running_postgres
from harness.responders import ChallengeDirServer, Ualpn, write_hook_scripts


@pytest.fixture(autouse=True)
def _own_logical_name_tables(tmp_path_factory: pytest.TempPathFactory,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads or writes the machine's system and cluster tables (/var/lib/wucme/lnm)."""
    if "WUCME_LNM_DIR" not in os.environ:
        monkeypatch.setenv("WUCME_LNM_DIR", str(tmp_path_factory.mktemp("lnm")))


@pytest.fixture(autouse=True)
def _pebble_ports_left_free(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a test with the session Pebble, its http-01 and tls-alpn-01 ports are free again
    for the next test's responder: a test that leaves a listener (or a process holding one)
    behind errors here, by name, with who holds the port, instead of the tests after it."""
    yield
    if "pebble" not in request.fixturenames:
        return
    p: Pebble = request.getfixturevalue("pebble")
    for what, port in (("http-01", p.http_port), ("tls-alpn-01", p.tls_port)):
        held = await_port_free(port, PORT_WAIT)
        if held is not None and not held.let_go:
            pytest.fail(f"the session Pebble's {what} port {port} is {held}", pytrace=False)
        if held is not None:
            let_go_log.append(f"after {request.node.nodeid}: the session Pebble's {what} port")


#: Requests the webroot server failed to answer (a CA then reports a bare "EOF"), by test.
webroot_errors: list[str] = []


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The test bench's own troubles, not failures of a test: ports found held and then let
    go (each waited for; see harness.ports), requests the webroot server failed to answer."""
    for title, lines in (("ports held for a while, then let go", let_go_log),
                         ("requests the webroot server failed to answer", webroot_errors)):
        if lines:
            terminalreporter.section(title)
            for line in lines:
                terminalreporter.line(line)


def _need_pebble() -> None:
    if not pebble_available():
        pytest.skip("pebble / pebble-challtestsrv not installed (Debian package pebble)")


@pytest.fixture(scope="session")
def pebble_ca() -> TestCA:
    """The run-wide test CA (WUCME_TEST_CA_DIR or a stable temp dir) shared by all Pebbles."""
    return stable_test_ca()


@pytest.fixture(scope="session")
def system_trust(pebble_ca: TestCA) -> TestCA:
    """The test CA installed in the system store, for the real uacme (root only)."""
    if not install_system_trust(pebble_ca.cert):
        pytest.skip("adding the test CA to the system store needs root and update-ca-certificates")
    return pebble_ca


@pytest.fixture(scope="session")
def pebble(pebble_ca: TestCA, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pebble]:
    """One Pebble for the session with default knobs (5% badNonce, no VA sleep, strict)."""
    _need_pebble()
    p = Pebble(tmp_path_factory.mktemp("pebble"), ca=pebble_ca)
    p.start()
    try:
        yield p
    finally:
        p.stop()


@pytest.fixture
def pebble_factory(pebble_ca: TestCA,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Pebble]]:
    """`pebble_factory(validity=600, nonce_reject=0, ...)` starts an extra Pebble, stopped at teardown."""
    _need_pebble()
    started: list[Pebble] = []

    def make(**kw: Any) -> Pebble:
        kw.setdefault("ca", pebble_ca)
        p = Pebble(kw.pop("workdir", None) or tmp_path_factory.mktemp("pebble-extra"), **kw)
        started.append(p)
        return p.start()

    try:
        yield make
    finally:
        for p in started:
            p.stop()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """One PostgreSQL server for the run (127.0.0.1, trust auth), started by the first test that
    needs it and stopped at the end; its conninfo.  Tests clean the tables they use."""
    with running_postgres() as server:
        yield server.conninfo


@pytest.fixture
def challenge_dir_server(pebble: Pebble, tmp_path: Path,
                         request: pytest.FixtureRequest) -> Iterator[ChallengeDirServer]:
    """A webroot http-01 responder on the session Pebble's http_port; files go in .root_dir."""
    with ChallengeDirServer(tmp_path / "acme-challenge", pebble.http_port) as server:
        yield server
    webroot_errors.extend(f"{request.node.nodeid}:\n{e}" for e in server.errors)


@pytest.fixture
def ualpn(pebble: Pebble, tmp_path: Path) -> Iterator[Ualpn]:
    """The real ualpn answering tls-alpn-01 on the session Pebble's tls_port."""
    if shutil.which("ualpn") is None:
        pytest.skip("ualpn not installed (Debian package uacme)")
    with Ualpn(pebble.tls_port, tmp_path / "ualpn") as u:
        yield u


@pytest.fixture
def hook_scripts(tmp_path: Path) -> dict[str, str]:
    """uacme-style hook scripts by name (see harness.responders.write_hook_scripts)."""
    return write_hook_scripts(tmp_path / "hooks")


@pytest.fixture
def fault_proxy(pebble: Pebble) -> Iterator[FaultProxy]:
    """A fault-injecting HTTPS proxy in front of the session Pebble (fresh rules per test)."""
    with FaultProxy(pebble) as proxy:
        yield proxy
