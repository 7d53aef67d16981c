"""Fixtures of the agent tests: `agents` (see support.py), a syslog socket, an SMTP sink."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.pebble import free_port

from .support import Agents, Syslog


@pytest.fixture
def agents(tmp_path: Path) -> Iterator[Agents]:
    a = Agents(tmp_path)
    try:
        yield a
    finally:
        a.stop_all()


@pytest.fixture
def syslog(tmp_path: Path) -> Iterator[Syslog]:
    s = Syslog(tmp_path / "log.sock")
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def smtp() -> Iterator[tuple[int, list[Any]]]:
    from aiosmtpd.controller import Controller

    got: list[Any] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            got.append(envelope)
            return "250 OK"

    port = free_port()
    c = Controller(Handler(), hostname="127.0.0.1", port=port)
    c.start()
    try:
        yield port, got
    finally:
        c.stop()
