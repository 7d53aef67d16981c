"""The fixture of the shared-renewal tests: a cluster of nodes on one repository (renewals.Cluster)."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cluster.renewals import Cluster
from harness.faultproxy import FaultProxy
from harness.pebble import Pebble


@pytest.fixture
def cluster(pg_server: str, pebble_factory: Callable[..., Pebble],
            tmp_path: Path) -> Iterator[Cluster]:
    pebble = pebble_factory()
    with FaultProxy(pebble) as proxy:
        c = Cluster(tmp_path, pg_server, pebble, proxy)
        c.start_responder()
        try:
            yield c
        finally:
            c.close()
