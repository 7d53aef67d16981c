"""What `-v`, `-vv` and `-vvv` show of an issue (uacme's msg levels, wucme.uacme.msg): each
step at level 1, payloads and the CA's JSON at 2, every exchange's headers and the whole JWS
at 3, and nothing of it at level 0.  Operators read these lines to follow a run; they are
asserted here line by line against the in-memory CA."""
from __future__ import annotations

import json
from pathlib import Path

from wucme.uacme.acme import AcmeSession, acme_bootstrap
from wucme.uacme.account import account_new
from wucme.uacme.cert import cert_issue, cert_revoke

from .fakeca import BASE, DIRECTORY, FakeCA
from .support import Answerer, csr_for, new_session, said, solve_with


def issue_at(ca: FakeCA, tmp_path: Path, level: int) -> tuple[AcmeSession, str, Answerer]:
    """Bootstrap, register and issue a.test at msg level *level*; (session, log, answerer)."""
    a = new_session(ca, level=level)
    acme_bootstrap(a)
    account_new(a, yes=True)
    answerer = Answerer(ca)
    csr, _ = csr_for(["a.test"])
    cert_issue(a, ["a.test"], csr, str(tmp_path / "a-"), **solve_with(a, answerer))
    return a, said(a), answerer


def urls(ca: FakeCA) -> dict[str, str]:
    """The URLs of the one order's resources, as the CA handed them out."""
    [o] = ca.orders.values()
    [ch] = [c for c in ca.challenges.values() if c.type == "http-01"]
    [cert] = ca.certs.values()
    return {"order": o.url, "authz": ch.authz.url, "challenge": ch.url,
            "finalize": ca._order_json(o)["finalize"], "cert": cert.url}


def in_order(log: str, *lines: str) -> None:
    """Each of *lines* is a whole line of *log* (after the `wucme: ` prefix), in this order."""
    at = 0
    for line in lines:
        found = log.find(f"wucme: {line}\n", at)
        assert found >= 0, f"{line!r} not in order in:\n{log}"
        at = found + 1


def test_level_1_names_each_step(ca: FakeCA, tmp_path: Path) -> None:
    _, log, answerer = issue_at(ca, tmp_path, 1)
    u = urls(ca)
    begin = " ".join(answerer.calls[0])
    done = " ".join(answerer.calls[1])
    in_order(log,
             f"fetching directory at {DIRECTORY}",
             f"creating new order at {BASE}/new-order",
             f"order location: {u['order']}",
             f"retrieving authorization at {u['authz']}",
             f"running solver {begin}",
             f"starting challenge at {u['challenge']}",
             f"running solver {done}",
             f"finalizing order at {u['finalize']}",
             f"retrieving certificate at {u['cert']}",
             f"certificate saved to {tmp_path}/a-cert.pem")
    for deeper in ("hook returned", "POST ", "JWS ", " -> 20"):
        assert deeper not in log


def test_level_2_adds_payloads_and_answers(ca: FakeCA, tmp_path: Path) -> None:
    ca.order_pending_polls = 1
    _, log, _ = issue_at(ca, tmp_path, 2)
    u = urls(ca)
    order_json = json.loads(log.split(f"wucme: {u['order']}:\n", 1)[1].split("\nwucme: ", 1)[0])
    assert order_json["status"] in ("pending", "ready", "valid")
    payload = json.dumps({"identifiers": [{"type": "dns", "value": "a.test"}]})
    in_order(log,
             f"POST {BASE}/new-order: {payload}",
             f"{BASE}/new-order:",  # the CA's answer, indented by one
             f"order location: {u['order']}",
             "hook returned 0",
             f"POST {u['challenge']}: {{}}",
             "order pending, waiting 0.01 seconds",
             "hook returned 0")
    assert '\n "status": "pending",\n' in log  # json.dumps(indent=1)
    assert ': ""\n' not in log  # a POST-as-GET has no payload to show
    for deeper in ("JWS ", " -> 20"):
        assert deeper not in log


def test_level_3_adds_headers_and_the_jws(ca: FakeCA, tmp_path: Path) -> None:
    _, log, _ = issue_at(ca, tmp_path, 3)
    assert f"wucme: GET {DIRECTORY} -> 200\n" in log
    head = log.split(f"wucme: POST {BASE}/new-order -> 201\n", 1)[1].split("\nwucme: ", 1)[0].splitlines()
    assert any(h.startswith("Replay-Nonce: ") for h in head) and any(h.startswith("Location: ") for h in head)
    assert all(": " in h for h in head)  # one header a line
    jws = json.loads(log.split("wucme: JWS ", 1)[1].split("\n", 1)[0])
    assert set(jws) == {"protected", "payload", "signature"}


def test_revocation_at_level_1(ca: FakeCA, tmp_path: Path) -> None:
    a, _, _ = issue_at(ca, tmp_path, 1)
    cert = tmp_path / "a-cert.pem"
    dest = cert_revoke(a, str(cert), 4)
    log = said(a)
    in_order(log, f"revoking {cert} at {BASE}/revoke-cert", f"{cert} revoked, renamed to {dest}")
    assert Path(dest).parent == tmp_path and Path(dest).name.startswith("revoked-")


def test_a_bad_nonce_retry_is_shown_at_level_1(ca: FakeCA) -> None:
    from .fakeca import bad_nonce
    from .support import registered
    a = registered(ca, level=1)
    ca.inject("newOrder", bad_nonce())
    from wucme.uacme.acme import acme_post
    acme_post(a, a.url("newOrder"), {"identifiers": [{"type": "dns", "value": "a.test"}]})
    assert f"wucme: bad nonce at {BASE}/new-order, retrying (1)\n" in said(a)


def test_the_json_shown_is_cut_at_20000_characters(ca: FakeCA) -> None:
    ca.directory_extra = {"meta": {"website": "x" * 30000}}
    a = new_session(ca, level=2)
    acme_bootstrap(a)
    shown = said(a).split(f"wucme: {DIRECTORY}:\n", 1)[1]
    assert len(shown) == 20000 + 1 and shown.endswith("x\n")  # the cut, then the line's end
