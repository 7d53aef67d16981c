"""The in-memory CA refuses what a real CA refuses (RFC 8555 §6.2-6.5), so the protocol tests
that pass against it mean something: each forged request here is answered with the problem a
CA gives, and recorded as a violation."""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from wucme.core import jws
from wucme.http import Response
from wucme.uacme.acme import acme_post

from .fakeca import BASE, DIRECTORY, NS, FakeCA, b64, thumbprint
from .support import registered

JOSE = {"Content-Type": "application/jose+json"}


def nonce(ca: FakeCA) -> str:
    n = ca.request("HEAD", f"{BASE}/new-nonce").header("Replay-Nonce")
    assert n
    return n


def signed(key: Any, protected: dict[str, Any], payload: Any) -> bytes:
    return jws.jws_encode(protected, payload, key)


def problem_of(resp: Response) -> tuple[int, str]:
    assert resp.content_type == "application/problem+json"
    return resp.status, json.loads(resp.body)["type"].removeprefix(NS)


def test_directory_and_a_fresh_account(ca: FakeCA) -> None:
    d = json.loads(ca.request("GET", DIRECTORY).body)
    assert d["newAccount"] == f"{BASE}/new-acct" and d["meta"]["termsOfService"]
    key = ec.generate_private_key(ec.SECP256R1())
    url = d["newAccount"]
    body = signed(key, jws.jws_protected_jwk(nonce(ca), url, key), {"termsOfServiceAgreed": True})
    resp = ca.request("POST", url, body, JOSE)
    assert resp.status == 201 and (resp.header("Location") or "").startswith(f"{BASE}/acct/")
    assert json.loads(resp.body)["status"] == "valid"
    assert ca.violations == []


Forge = Callable[[FakeCA, Any, str], tuple[bytes, dict[str, str]]]


def _unissued(ca: FakeCA, key: Any, url: str) -> tuple[bytes, dict[str, str]]:
    return signed(key, jws.jws_protected_jwk("bm90LWlzc3VlZA", url, key), {}), JOSE


def _reused(ca: FakeCA, key: Any, url: str) -> tuple[bytes, dict[str, str]]:
    n = nonce(ca)
    ca.request("POST", url, signed(key, jws.jws_protected_jwk(n, url, key), {"onlyReturnExisting": True}), JOSE)
    return signed(key, jws.jws_protected_jwk(n, url, key), {"onlyReturnExisting": True}), JOSE


def _other_url(ca: FakeCA, key: Any, url: str) -> tuple[bytes, dict[str, str]]:
    return signed(key, jws.jws_protected_jwk(nonce(ca), f"{BASE}/new-order", key), {}), JOSE


def _kid_on_new_account(ca: FakeCA, key: Any, url: str) -> tuple[bytes, dict[str, str]]:
    return signed(key, jws.jws_protected_kid(nonce(ca), url, f"{BASE}/acct/1", key), {}), JOSE


def _tampered(ca: FakeCA, key: Any, url: str) -> tuple[bytes, dict[str, str]]:
    body = json.loads(signed(key, jws.jws_protected_jwk(nonce(ca), url, key), {"termsOfServiceAgreed": True}))
    body["payload"] = b64(b'{"termsOfServiceAgreed":false}')
    return json.dumps(body).encode(), JOSE


def _other_key(ca: FakeCA, key: Any, url: str) -> tuple[bytes, dict[str, str]]:
    other = ec.generate_private_key(ec.SECP256R1())
    body = json.loads(signed(other, jws.jws_protected_jwk(nonce(ca), url, other), {}))
    body["protected"] = b64(json.dumps(jws.jws_protected_jwk(nonce(ca), url, key)).encode())
    return json.dumps(body).encode(), JOSE


def _plain_json(ca: FakeCA, key: Any, url: str) -> tuple[bytes, dict[str, str]]:
    return signed(key, jws.jws_protected_jwk(nonce(ca), url, key), {}), {"Content-Type": "application/json"}


def _not_jws(ca: FakeCA, key: Any, url: str) -> tuple[bytes, dict[str, str]]:
    return b'{"hello": "world"}', JOSE


@pytest.mark.parametrize(("forge", "status", "code"), [
    (_unissued, 400, "badNonce"),
    (_reused, 400, "badNonce"),
    (_other_url, 401, "unauthorized"),
    (_kid_on_new_account, 400, "malformed"),
    (_tampered, 400, "malformed"),
    (_other_key, 400, "malformed"),
    (_plain_json, 415, "malformed"),
    (_not_jws, 400, "malformed"),
], ids=["unissued-nonce", "reused-nonce", "other-url", "kid-on-newAccount", "tampered-payload",
        "signed-by-another-key", "not-jose-json", "not-a-jws"])
def test_forged_requests_are_refused(ca: FakeCA, forge: Forge, status: int, code: str) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    url = f"{BASE}/new-acct"
    body, headers = forge(ca, key, url)
    assert problem_of(ca.request("POST", url, body, headers)) == (status, code)
    assert len(ca.violations) == 1
    assert ca.accounts == {}
    ca.violations.clear()


def test_kid_must_name_the_signing_account(ca: FakeCA) -> None:
    a = registered(ca)
    intruder = ec.generate_private_key(ec.SECP256R1())
    url = f"{BASE}/new-order"
    body = signed(intruder, jws.jws_protected_kid(nonce(ca), url, a.kid or "", intruder),
                  {"identifiers": [{"type": "dns", "value": "a.test"}]})
    assert problem_of(ca.request("POST", url, body, JOSE)) == (400, "malformed")
    assert ca.orders == {} and len(ca.violations) == 1
    ca.violations.clear()


def test_challenge_is_valid_only_with_the_right_answer(ca: FakeCA) -> None:
    """The CA validates against what the answerer published, computed from the account key."""
    a = registered(ca)
    order = acme_post(a, f"{BASE}/new-order", {"identifiers": [{"type": "dns", "value": "a.test"},
                                                                {"type": "dns", "value": "b.test"}]})
    authz = [ca.authzs[int(u.rsplit("/", 1)[1])] for u in order.json["authorizations"]]
    good, bad = (az.challenges[0] for az in authz)
    ca.publish("http-01", "a.test", good.token, f"{good.token}.{thumbprint(a.key.public_key())}")
    ca.publish("http-01", "b.test", bad.token, f"{bad.token}.not-the-thumbprint")
    for ch in (good, bad):
        acme_post(a, ch.url, {})
        acme_post(a, ch.url, "")
    assert (good.status, bad.status) == ("valid", "invalid")
    assert "does not match" in bad.error["detail"]
    assert acme_post(a, order.location or "", "").jstr("status") == "invalid"


def test_the_models_thumbprint_agrees_with_rfc_7638() -> None:
    """The CA computes thumbprints from the key's numbers; wucme from its JWK (RFC 7638 §3)."""
    for key in (ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP384R1())):
        assert thumbprint(key.public_key()) == jws.jws_thumbprint(key)
