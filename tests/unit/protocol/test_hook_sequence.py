"""uacme's own hook sequence (WUCME_HOOK_ORDER UACME: each authorization fetched, offered,
started, polled and ended before the next) and the hook program itself (`-h PROG`: uacme's
argv and exit statuses), against the in-memory CA."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from wucme.core.problem import AcmeProblem
from wucme.errors import ProtocolViolation, WucmeError
from wucme.uacme.acme import AcmeSession, acme_post
from wucme.uacme.authorize import authorize
from wucme.core.ident import identifiers

from .fakeca import NS, FakeCA, expected_answer, problem
from .support import Answerer, challenge_of, fails, registered, said, solve_with


def order_for(a: AcmeSession, names: list[str]) -> tuple[str, list[str]]:
    r = acme_post(a, a.url("newOrder"), {"identifiers": identifiers(names)}).expect(201, what="order")
    return r.location or "", r.json["authorizations"]


def in_turn(ca: FakeCA, **fields: object) -> AcmeSession:
    return registered(ca, hook_order="uacme", **fields)


def steps(ca: FakeCA) -> list[str]:
    """The CA's trail of authorization and challenge requests: `authz a.test`, `start a.test`,
    `poll a.test` (POST-as-GET of a challenge)."""
    out = []
    for s in ca.seen:
        if s.endpoint == "authz":
            out.append(f"authz {ca.authzs[int(s.url.rsplit('/', 1)[1])].ident['value']}")
        elif s.endpoint == "challenge":
            ch = ca.challenges[int(s.url.rsplit("/", 1)[1])]
            out.append(f"{'start' if s.payload == {} else 'poll'} {ch.authz.ident['value']}")
    return out


# --- WUCME_HOOK_ORDER UACME -----------------------------------------------------------------------

def test_each_authorization_in_turn_start_to_end(ca: FakeCA) -> None:
    a = in_turn(ca)
    answerer = Answerer(ca)
    order_url, authzs = order_for(a, ["a.test", "b.test"])
    authorize(a, authzs, order_url, **solve_with(a, answerer))
    assert answerer.methods() == [("begin", "http-01", "a.test"), ("done", "http-01", "a.test"),
                                  ("begin", "http-01", "b.test"), ("done", "http-01", "b.test")]
    assert steps(ca) == ["authz a.test", "start a.test", "poll a.test", "authz b.test", "start b.test",
                         "poll b.test"]
    # uacme polls the challenge, never the order, in its own sequence
    assert [s for s in ca.seen if s.endpoint == "order"] == []
    ta = challenge_of(ca, "a.test").token
    assert answerer.calls[0] == ("begin", "http-01", "a.test", ta,
                                 expected_answer("http-01", ta, a.key.public_key()))


def test_in_turn_the_first_failure_ends_the_order(ca: FakeCA) -> None:
    ca.fail_challenge["a.test"] = {"type": NS + "unauthorized", "detail": "wrong answer at a.test"}
    a = in_turn(ca)
    answerer = Answerer(ca)
    order_url, authzs = order_for(a, ["a.test", "b.test"])
    with fails(WucmeError, "^%WUCME-E-CHALLFAIL, challenge failed:\n  a.test \\(http-01\\): invalid: "
               "urn:ietf:params:acme:error:unauthorized wrong answer at a.test$") as info:
        authorize(a, authzs, order_url, **solve_with(a, answerer))
    assert info.value.ident == "CHALLFAIL"
    assert answerer.methods() == [("begin", "http-01", "a.test"), ("failed", "http-01", "a.test")]
    assert "authz b.test" not in steps(ca)


def test_in_turn_valid_authorizations_are_skipped(ca: FakeCA) -> None:
    ca.preauthorized = {"a.test"}
    a = in_turn(ca)
    answerer = Answerer(ca)
    order_url, authzs = order_for(a, ["a.test", "b.test"])
    authorize(a, authzs, order_url, **solve_with(a, answerer))
    assert answerer.methods() == [("begin", "http-01", "b.test"), ("done", "http-01", "b.test")]
    assert steps(ca) == ["authz a.test", "authz b.test", "start b.test", "poll b.test"]


def test_in_turn_an_authorization_neither_pending_nor_valid(ca: FakeCA) -> None:
    a = in_turn(ca)
    answerer = Answerer(ca)
    order_url, authzs = order_for(a, ["a.test", "b.test"])
    ca.authzs[int(authzs[1].rsplit("/", 1)[1])].status = "expired"
    with fails(WucmeError, f"^%WUCME-E-AUTHSTATUS, unexpected auth status \\(expired\\) at {authzs[1]}$") as info:
        authorize(a, authzs, order_url, **solve_with(a, answerer))
    assert info.value.ident == "AUTHSTATUS"
    assert answerer.methods() == [("begin", "http-01", "a.test"), ("done", "http-01", "a.test")]


def test_in_turn_a_refused_start_still_ends_the_hook(ca: FakeCA) -> None:
    a = in_turn(ca)
    answerer = Answerer(ca)
    order_url, authzs = order_for(a, ["a.test"])
    ca.inject("challenge", problem(400, "malformed", "not now"))
    with fails(AcmeProblem, "failed to start challenge at .*not now"):
        authorize(a, authzs, order_url, **solve_with(a, answerer))
    assert answerer.methods() == [("begin", "http-01", "a.test"), ("failed", "http-01", "a.test")]


def test_in_turn_no_challenge_accepted(ca: FakeCA) -> None:
    a = in_turn(ca)
    answerer = Answerer(ca, decline=("a.test",))
    order_url, authzs = order_for(a, ["a.test"])
    with fails(WucmeError, "^%WUCME-E-NOCHALLENGE, no challenge accepted for a.test$") as info:
        authorize(a, authzs, order_url, **solve_with(a, answerer))
    assert info.value.ident == "NOCHALLENGE"
    assert [m for m, *_ in answerer.methods()] == ["begin", "begin", "begin"]


# --- the hook program (-h PROG) --------------------------------------------------------------------

def hook(tmp_path: Path, body: str) -> str:
    """A hook program that notes its argv, one call a line, then runs *body*."""
    prog = tmp_path / "hook.sh"
    prog.write_text(f'#!/bin/sh\necho "$@" >> {tmp_path}/calls\n{body}\n')
    prog.chmod(0o755)
    return str(prog)


def calls(tmp_path: Path) -> list[str]:
    return (tmp_path / "calls").read_text().splitlines()


def test_a_hook_program_gets_uacmes_arguments(ca: FakeCA, tmp_path: Path) -> None:
    """Accepted (exit 0) but not answered (the program cannot reach the in-memory CA): the
    program hears begin then failed, each with METHOD TYPE IDENT TOKEN AUTH, and the log names it."""
    prog = hook(tmp_path, "exit 0")
    a = registered(ca, hook=prog)
    order_url, authzs = order_for(a, ["a.test"])
    with fails(WucmeError, "CHALLFAIL.*a.test \\(http-01\\): invalid"):
        authorize(a, authzs, order_url)
    token = challenge_of(ca, "a.test").token
    auth = expected_answer("http-01", token, a.key.public_key())
    assert calls(tmp_path) == [f"begin http-01 a.test {token} {auth}", f"failed http-01 a.test {token} {auth}"]
    assert f"running {prog} begin http-01 a.test {token} {auth}" in said(a)
    assert "hook returned 0" in said(a)


def test_a_hook_program_that_declines_everything(ca: FakeCA, tmp_path: Path) -> None:
    prog = hook(tmp_path, "exit 1")
    a = registered(ca, hook=prog, level=1)
    order_url, authzs = order_for(a, ["a.test"])
    with fails(WucmeError, "^%WUCME-E-NOCHALLENGE, no challenge accepted for a.test$"):
        authorize(a, authzs, order_url)
    assert [c.split()[:3] for c in calls(tmp_path)] == [
        ["begin", "http-01", "a.test"], ["begin", "dns-01", "a.test"], ["begin", "tls-alpn-01", "a.test"]]
    assert "wucme: challenge http-01 declined\n" in said(a) and "hook returned" not in said(a)
    assert f"wucme: running {prog} begin http-01 a.test " in said(a)


def test_a_hook_program_killed_by_a_signal_aborts(ca: FakeCA, tmp_path: Path) -> None:
    prog = hook(tmp_path, "kill -9 $$")
    a = registered(ca, hook=prog)
    order_url, authzs = order_for(a, ["a.test"])
    with fails(WucmeError, f"^%WUCME-E-HOOKERR, hook {prog} ended abnormally$") as info:
        authorize(a, authzs, order_url)
    assert info.value.ident == "HOOKERR"
    assert len(calls(tmp_path)) == 1 and ca.requests("challenge") == []


def test_a_solver_that_aborts_is_named_solver(ca: FakeCA) -> None:
    a = registered(ca, hook="/never/run")
    order_url, authzs = order_for(a, ["a.test"])
    with fails(WucmeError, "^%WUCME-E-HOOKERR, hook solver ended abnormally$"):
        authorize(a, authzs, order_url, **solve_with(a, Answerer(ca, abort=("http-01",))))
    assert "running solver begin http-01 a.test " in said(a)


def test_a_missing_hook_program_is_a_warning_at_the_end(ca: FakeCA, tmp_path: Path) -> None:
    """The program is gone when `failed` runs: a warning, the CA's answer still the error."""
    prog = hook(tmp_path, f"rm -f {tmp_path}/hook.sh; exit 0")
    a = registered(ca, hook=prog)
    order_url, authzs = order_for(a, ["a.test"])
    with fails(WucmeError, "CHALLFAIL"):
        authorize(a, authzs, order_url)
    assert f"failed to run hook {prog}: No such file or directory" in said(a)


# --- what the CA sends that cannot be a challenge ---------------------------------------------------

@pytest.mark.parametrize("spoil", [{"type": 1}, {"url": None}, {"token": ["x"]}], ids=["type", "url", "token"])
def test_a_challenge_missing_a_member(ca: FakeCA, spoil: dict[str, object]) -> None:
    a = registered(ca)
    order_url, authzs = order_for(a, ["a.test"])
    ch = challenge_of(ca, "a.test")
    orig = ch.json

    def spoiled() -> dict[str, object]:
        return {**orig(), **spoil}
    ch.json = spoiled  # type: ignore[method-assign]
    with fails(ProtocolViolation, "^%WUCME-E-PROTOCOL, failed to parse challenge$"):
        authorize(a, authzs, order_url, **solve_with(a, Answerer(ca)))


def test_a_processing_challenge_is_offered_too(ca: FakeCA) -> None:
    a = registered(ca)
    order_url, authzs = order_for(a, ["a.test"])
    started = challenge_of(ca, "a.test")
    started.status, started.reads_left = "processing", 2  # another client started it already
    answerer = Answerer(ca)
    authorize(a, authzs, order_url, **solve_with(a, answerer))
    assert answerer.methods()[0] == ("begin", "http-01", "a.test")


# --- wucme's own order: in-process solvers answer concurrently, at most `workers` at once ----------

class Overlap(Answerer):
    """The answerer, noting how many of its begin / done calls run at the same time; with
    `together` > 1 each call waits (at most 5 s) until that many are in."""

    def __init__(self, ca: FakeCA, together: int) -> None:
        super().__init__(ca)
        self.lock = threading.Lock()
        self.now = {"begin": 0, "done": 0}
        self.most = {"begin": 0, "done": 0}
        self.barrier = threading.Barrier(together, timeout=5) if together > 1 else None

    def __call__(self, method: str, ch_type: str, ident: str, token: str, auth: str) -> int:
        with self.lock:
            self.now[method] += 1
            self.most[method] = max(self.most[method], self.now[method])
        try:
            if self.barrier is not None:
                self.barrier.wait()
                time.sleep(0.02)  # room for a call more than `workers` allow to come in
            return super().__call__(method, ch_type, ident, token, auth)
        finally:
            with self.lock:
                self.now[method] -= 1


@pytest.mark.parametrize(("workers", "names", "most"), [(16, 2, 2), (2, 4, 2), (1, 3, 1)])
def test_solvers_answer_concurrently_up_to_workers(ca: FakeCA, workers: int, names: int, most: int) -> None:
    a = registered(ca, workers=workers)
    answerer = Overlap(ca, most)
    order_url, authzs = order_for(a, [f"n{i}.test" for i in range(names)])
    authorize(a, authzs, order_url, **solve_with(a, answerer))
    assert answerer.most == {"begin": most, "done": most}


class QuickOverlap(Overlap):
    """An answerer marked quick (wucme.uacme.hook.QUICK), as ChallengeSolver is for http-01,
    noting the threads that call it."""

    quick = True

    def __init__(self, ca: FakeCA, together: int) -> None:
        super().__init__(ca, together)
        self.threads: set[threading.Thread] = set()

    def __call__(self, method: str, ch_type: str, ident: str, token: str, auth: str) -> int:
        self.threads.add(threading.current_thread())
        return super().__call__(method, ch_type, ident, token, auth)


def test_a_quick_solver_is_called_from_one_thread_in_authorization_order(ca: FakeCA) -> None:
    a = registered(ca, workers=16)
    answerer = QuickOverlap(ca, 1)
    names = [f"n{i}.test" for i in range(6)]
    order_url, authzs = order_for(a, names)
    authorize(a, authzs, order_url, **solve_with(a, answerer))
    assert answerer.most == {"begin": 1, "done": 1} and answerer.threads == {threading.current_thread()}
    assert answerer.methods() == [("begin", "http-01", n) for n in names] + [("done", "http-01", n) for n in names]


class QuickAnswerer(Answerer):
    quick = True


def test_a_quick_solver_is_still_offered_every_name_and_each_begun_hears_failed(ca: FakeCA) -> None:
    """Called from one thread, a quick solver sees what concurrent calls would: every name
    offered (not uacme's stop at the first refusal), the first refusal raised, the others ended."""
    a = registered(ca, workers=16)
    answerer = QuickAnswerer(ca, decline=("b.test",))
    order_url, authzs = order_for(a, ["a.test", "b.test", "c.test"])
    with fails(WucmeError, "^%WUCME-E-NOCHALLENGE, no challenge accepted for b.test$"):
        authorize(a, authzs, order_url, **solve_with(a, answerer))
    assert [m for m in answerer.methods() if m[1] == "http-01"] == [
        ("begin", "http-01", "a.test"), ("begin", "http-01", "b.test"), ("begin", "http-01", "c.test"),
        ("failed", "http-01", "a.test"), ("failed", "http-01", "c.test")]
    assert ca.requests("challenge") == []


def test_a_hook_program_is_called_one_at_a_time(ca: FakeCA, tmp_path: Path) -> None:
    prog = hook(tmp_path, f"mkdir {tmp_path}/busy || exit 3; sleep 0.01; rmdir {tmp_path}/busy; exit 1")
    a = registered(ca, hook=prog, workers=16)
    order_url, authzs = order_for(a, ["a.test", "b.test"])
    with fails(WucmeError, "^%WUCME-E-NOCHALLENGE, no challenge accepted for a.test$"):
        authorize(a, authzs, order_url)
    # uacme stops at the first name no challenge is accepted for: b.test is never offered
    assert [c.split()[2] for c in calls(tmp_path)] == ["a.test"] * 3


def test_in_turn_an_identifier_of_another_kind_names_the_authorization(ca: FakeCA) -> None:
    a = in_turn(ca)
    order_url, authzs = order_for(a, ["a.test"])
    ca.authzs[int(authzs[0].rsplit("/", 1)[1])].ident = {"type": "email", "value": "me@a.test"}
    with fails(ProtocolViolation, f"^%WUCME-E-PROTOCOL, no valid identifier in auth {authzs[0]}$"):
        authorize(a, authzs, order_url, **solve_with(a, Answerer(ca)))
