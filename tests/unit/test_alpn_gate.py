"""One tls-alpn-01 validation per name at a time (RFC 8737 §3): ChallengeSolver.reserve holds a
lock per name across threads and processes; orders that share no name, and http-01, never wait."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from wucme.challenge.solver import ChallengeSolver, alpn_resource
from wucme.challenge.store import ChallengeStore
from wucme.settings import ChallengeConfig


def solver(tmp_path: Path, type: str = "tls-alpn-01") -> ChallengeSolver:
    return ChallengeSolver(ChallengeConfig(type, None, None), "thumb",
                           store=ChallengeStore(tmp_path / "store"))


def second_waits(first: ChallengeSolver, second: ChallengeSolver, names1: list[str],
                 names2: list[str], hold: float = 0.3) -> float:
    """How long the second order waited for its names while the first held its own."""
    entered = threading.Event()
    waited: list[float] = []

    def one() -> None:
        with first.reserve(names1):
            entered.set()
            time.sleep(hold)

    def two() -> None:
        entered.wait()
        t0 = time.monotonic()
        with second.reserve(names2):
            waited.append(time.monotonic() - t0)

    threads = [threading.Thread(target=one), threading.Thread(target=two)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    return waited[0]


@pytest.mark.parametrize("native", ["", "1"], ids=["native", "pure"])
def test_an_order_sharing_a_name_waits_for_the_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     native: str) -> None:
    if native:
        monkeypatch.setenv("WUCME_NO_NATIVE", native)
    said: list[str] = []
    s = solver(tmp_path)
    s.log = said.append
    assert second_waits(s, s, ["a.test", "shared.test"], ["shared.test", "b.test"]) >= 0.25
    assert said == ["waiting for another order's tls-alpn-01 validation of shared.test"]


def test_orders_with_no_name_in_common_run_together(tmp_path: Path) -> None:
    s = solver(tmp_path)
    assert second_waits(s, s, ["a.test", "b.test"], ["c.test", "d.test"]) < 0.2


def test_two_solvers_of_one_store_exclude_each_other(tmp_path: Path) -> None:
    """As two processes would (the `wucme alpn` server and the store are shared)."""
    assert second_waits(solver(tmp_path), solver(tmp_path), ["x.test"], ["X.test."]) >= 0.25


def test_http01_never_waits(tmp_path: Path) -> None:
    s = solver(tmp_path, "http-01")
    assert second_waits(s, s, ["a.test"], ["a.test"]) < 0.2
    assert not (tmp_path / "store" / "WUCME_LOCKS").exists()


def test_orders_crossing_names_do_not_deadlock(tmp_path: Path) -> None:
    """Names are locked in one order whatever the order's own, so (a, b) and (b, a) cannot
    each hold one and wait for the other."""
    s = solver(tmp_path)
    done = []

    def order(names: list[str]) -> None:
        for _ in range(20):
            with s.reserve(names):
                time.sleep(0.001)
        done.append(names)

    threads = [threading.Thread(target=order, args=(n,)) for n in (["a.t", "b.t"], ["b.t", "a.t"])]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert len(done) == 2


def test_resource_names() -> None:
    assert alpn_resource("www.Example.org.") == "ALPN_WWW_EXAMPLE_ORG"
    long = alpn_resource("a-very-long-name.of.some.service.example.org")
    assert long.startswith("ALPN_") and len(long) == 31
    assert long != alpn_resource("a-very-long-name.of.some.service.example.com")
