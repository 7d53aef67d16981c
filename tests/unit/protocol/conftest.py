"""Fixtures of the in-memory protocol suite, and its time budget.

The whole package must run in under BUDGET seconds: it stands in for a CA so that the
protocol logic can be tested on every change; Pebble tests cover the real thing.
"""
from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from .fakeca import FakeCA
from .pki import Pki

#: Seconds the whole in-memory protocol suite may take (fixtures included).
BUDGET = 5.0


@pytest.fixture(scope="package", autouse=True)
def _within_budget(request: pytest.FixtureRequest) -> Iterator[None]:
    """Time the package from its first fixture to its last teardown; over budget fails."""
    start = time.perf_counter()
    yield
    spent = time.perf_counter() - start
    plugins = request.config.pluginmanager
    reporter, capture = plugins.get_plugin("terminalreporter"), plugins.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"\nin-memory protocol suite: {spent:.2f} s (budget {BUDGET:g} s)")
    if "MUTANT_UNDER_TEST" in os.environ:
        return  # mutation testing (build.py mutate): mutmut's trampolines run, not the code as shipped
    assert spent < BUDGET, f"in-memory protocol suite took {spent:.2f} s, budget {BUDGET:g} s"


@pytest.fixture(scope="package")
def pki() -> Pki:
    return Pki()


@pytest.fixture
def ca(pki: Pki) -> Iterator[FakeCA]:
    """A fresh CA per test; a test that leaves a protocol violation on record fails."""
    ca = FakeCA(pki)
    yield ca
    assert ca.violations == [], "the client sent what a CA must refuse:\n" + "\n".join(ca.violations)
