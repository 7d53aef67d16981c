"""Fixtures for the web server tests: a shared store directory, Apache, nginx, an ACME account.

Everything here is real: Debian's apache2 and nginx as children (harness.webservers),
Pebble from tests/conftest.py, and the uacme port driven in-process with a responder that
publishes each challenge where the responder under test reads it.
"""
from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness.pebble import Pebble, TestCA, make_server_cert
from harness.webservers import (Apache, Nginx, apache_available, nginx_stream_available,
                                processes_in_group, shared_dir)
from wucme import crypto
from wucme.challenge.store import ChallengeStore
from wucme.http import HttpConfig, make_transport
from wucme.uacme.msg import Msg
from wucme.uacme.account import account_new
from wucme.uacme.acme import AcmeSession, acme_bootstrap

from .support import Acme


@pytest.fixture
def web_dir() -> Iterator[Path]:
    """A 0755 directory outside pytest's 0700 tree, so the CGI's user (www-data) can reach it."""
    d = shared_dir("wucme-web-")
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def store(web_dir: Path) -> ChallengeStore:
    return ChallengeStore(web_dir / "WUCME_CHALLENGES")


@pytest.fixture
def apache_on(web_dir: Path, store: ChallengeStore) -> Iterator[Callable[[int], Apache]]:
    """`apache_on(port)`: Apache running the wucme script, its store named in the system table."""
    if not apache_available():
        pytest.skip("apache2 with mod_cgid not installed (Debian package apache2)")
    started: list[Apache] = []

    def start(port: int) -> Apache:
        web = Apache(port, store_dir=store.directory, lnm_dir=web_dir / "lnm",
                     workdir=web_dir / f"apache{len(started)}")
        started.append(web)
        return web.start()

    try:
        yield start
    finally:
        for web in started:
            web.stop()
            if web.process:  # workers, the cgid daemon and every script ended too
                assert processes_in_group(web.process.pid) == []


@pytest.fixture
def site_cert(pebble_ca: TestCA, web_dir: Path) -> tuple[Path, Path]:
    """The ordinary site's certificate for localhost, from the run's test CA."""
    return make_server_cert(web_dir / "site", (pebble_ca.cert, pebble_ca.key), stem="site")


@pytest.fixture
def nginx_on(web_dir: Path, site_cert: tuple[Path, Path]) -> Iterator[Callable[[int, int], Nginx]]:
    """`nginx_on(front_port, responder_port)`: nginx's stream routing in front of a TLS site."""
    if not nginx_stream_available():
        pytest.skip("nginx stream module not installed (Debian package libnginx-mod-stream)")
    started: list[Nginx] = []

    def start(front_port: int, responder_port: int) -> Nginx:
        ng = Nginx(front_port, responder_port, *site_cert, workdir=web_dir / f"nginx{len(started)}")
        started.append(ng)
        return ng.start()

    try:
        yield start
    finally:
        for ng in started:
            ng.stop()
            if ng.process:
                assert processes_in_group(ng.process.pid) == []


@pytest.fixture
def acme(pebble: Pebble) -> Iterator[Acme]:
    """A fresh account (P-256) on the session Pebble, on wucme's own HTTP transport."""
    transport = make_transport("builtin", HttpConfig(ca_bundle=pebble.ca_bundle))
    a = AcmeSession(transport=transport, directory=pebble.directory_url, log=Msg(0))
    try:
        acme_bootstrap(a)
        a.key = crypto.key_gen("EC", 256)
        account_new(a, yes=True)
        yield Acme(a)
    finally:
        transport.close()
