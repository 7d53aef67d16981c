"""Fixtures of the parity tests: the real uacme and `wucme --uacme` on one Pebble."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

from .uacme_parity import UACME, WUCME, Tool
from harness.pebble import Pebble, TestCA
from harness.responders import ChallengeDirServer


@pytest.fixture
def tools(pebble: Pebble, system_trust: TestCA, challenge_dir_server: ChallengeDirServer,
          tmp_path: Path) -> Iterator[tuple[Tool, Tool]]:
    """(uacme, wucme), each with its own confdir, sharing Pebble and the http-01 webroot."""
    env = dict(os.environ, WUCME_CA_BUNDLE=pebble.ca_bundle,
               UACME_CHALLENGE_PATH=str(challenge_dir_server.root_dir))
    env.pop("UACME_CAINFO", None)
    yield (Tool("uacme", [UACME], tmp_path / "u", pebble.directory_url, env),
           Tool("wucme", WUCME, tmp_path / "w", pebble.directory_url, env))
