"""Accounts (wucme.uacme.account, RFC 8555 §7.3): creation, terms, EAB, retrieval, update,
key change and deactivation against the in-memory CA."""
from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from wucme import crypto
from wucme.errors import WucmeError
from wucme.uacme.account import (
    account_deactivate, account_keychange, account_new, account_retrieve, account_update, eab_parse)
from wucme.uacme.acme import acme_bootstrap, acme_post

from .fakeca import BASE, FakeCA, b64, canonical_jwk
from .support import fails, new_session, registered, said

MAC_KEY = bytes(range(32))


def test_new_account_asks_first_then_agrees_to_the_terms(ca: FakeCA) -> None:
    a = new_session(ca, email="admin@a.test")
    acme_bootstrap(a)
    account_new(a, yes=True)
    ask, create = ca.requests("newAccount")
    assert (ask.payload, ask.status) == ({"onlyReturnExisting": True}, 400)
    assert create.payload == {"termsOfServiceAgreed": True, "contact": ["mailto:admin@a.test"]}
    assert create.status == 201
    (acct,) = ca.accounts.values()
    assert a.kid == acct.url and acct.contact == ["mailto:admin@a.test"]
    assert canonical_jwk(acct.key) == canonical_jwk(a.key.public_key())
    assert f"terms at {BASE}/terms-v1 autoaccepted (-y)" in said(a)
    assert f"account created at {a.kid}" in said(a)


@pytest.mark.parametrize(("answer", "created"), [("y\n", True), ("  yes\n", True), ("n\n", False),
                                                  ("\n", False)], ids=["y", "yes", "n", "empty"])
def test_terms_are_asked_on_stdin_without_yes(ca: FakeCA, answer: str, created: bool,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    a = new_session(ca)
    acme_bootstrap(a)
    if created:
        account_new(a, yes=False, stdin=io.StringIO(answer))
        assert a.kid in ca.accounts
    else:
        with fails(WucmeError, "^%WUCME-E-NOTERMS, terms not agreed to, aborted$"):
            account_new(a, yes=False, stdin=io.StringIO(answer))
        assert ca.accounts == {} and len(ca.requests("newAccount")) == 1
    assert f"type 'y' to accept the terms at {BASE}/terms-v1" in said(a)  # uacme's msg(0, ...)


def test_no_terms_no_question_no_contact(ca: FakeCA) -> None:
    ca.terms = None
    a = new_session(ca)
    acme_bootstrap(a)
    account_new(a, yes=False, stdin=io.StringIO(""))
    assert ca.requests("newAccount")[-1].payload == {"termsOfServiceAgreed": True}


def test_an_existing_account_is_not_created_again(ca: FakeCA) -> None:
    a = registered(ca)
    b = new_session(ca, key=a.key)
    acme_bootstrap(b)
    with fails(WucmeError, f"^%WUCME-E-ACCTEXISTS, account already exists at {a.kid}$"):
        account_new(b, yes=True)
    assert len(ca.accounts) == 1


# --- External Account Binding (RFC 8555 §7.3.4) ------------------------------------------------

def test_eab_required_but_not_given(ca: FakeCA) -> None:
    ca.eab_keys = {"kid-1": (MAC_KEY, 256)}
    a = new_session(ca)
    acme_bootstrap(a)
    with fails(WucmeError, "EABREQ, this ACME server requires external credentials, use -e KEYID:KEY"):
        account_new(a, yes=True)
    assert len(ca.requests("newAccount")) == 1 and ca.accounts == {}


@pytest.mark.parametrize("bits", [256, 384, 512])
def test_eab_binds_the_account_key(ca: FakeCA, bits: int) -> None:
    ca.eab_keys = {"kid-1": (MAC_KEY, bits)}
    a = new_session(ca)
    acme_bootstrap(a)
    eab_parse(a, f"kid-1:{b64(MAC_KEY)}" + ("" if bits == 256 else f":{bits}"))
    account_new(a, yes=True)
    assert a.kid in ca.accounts
    binding = ca.requests("newAccount")[-1].payload["externalAccountBinding"]
    assert set(binding) == {"protected", "payload", "signature"}


def test_eab_with_the_wrong_key_is_refused_by_the_ca(ca: FakeCA) -> None:
    ca.eab_keys = {"kid-1": (MAC_KEY, 256)}
    a = new_session(ca)
    acme_bootstrap(a)
    eab_parse(a, f"kid-1:{b64(bytes(32))}")
    with fails(WucmeError, f"failed to create account at {BASE}/new-acct: .*unauthorized.*EAB MAC does not verify"):
        account_new(a, yes=True)
    assert ca.accounts == {}


# --- retrieve, update, deactivate ---------------------------------------------------------------

def test_retrieve_finds_the_account_of_the_key(ca: FakeCA) -> None:
    a = registered(ca)
    b = new_session(ca, key=a.key)
    acme_bootstrap(b)
    account_retrieve(b)
    assert b.kid == a.kid and b.account and b.account["status"] == "valid"
    assert ca.requests("newAccount")[-1].payload == {"onlyReturnExisting": True}


def test_retrieve_without_an_account(ca: FakeCA) -> None:
    a = new_session(ca)
    acme_bootstrap(a)
    with fails(WucmeError, "^%WUCME-E-NOACCOUNT, no account found for this key; create one with 'new'$"):
        account_retrieve(a)


@pytest.mark.parametrize(("before", "email", "sent"), [
    (None, "new@a.test", {"contact": ["mailto:new@a.test"]}),
    ("old@a.test", "new@a.test", {"contact": ["mailto:new@a.test"]}),
    ("old@a.test", None, {"contact": []}),
    ("same@a.test", "SAME@a.test", None),
    (None, None, None),
], ids=["add", "change", "remove", "unchanged-case-insensitive", "none"])
def test_update_sends_only_a_change(ca: FakeCA, before: str | None, email: str | None,
                                    sent: dict[str, list[str]] | None) -> None:
    a = registered(ca, email=before)
    a.email = email
    account_update(a)
    posts = ca.requests("account")
    if sent is None:
        assert posts == [] and f"email is already up to date for account at {a.kid}" in said(a)
    else:
        assert [p.payload for p in posts] == [sent]
        assert ca.accounts[a.kid or ""].contact == sent["contact"]


def test_deactivated_account_can_do_nothing_more(ca: FakeCA) -> None:
    a = registered(ca)
    account_deactivate(a)
    assert ca.requests("account")[-1].payload == {"status": "deactivated"}
    r = acme_post(a, a.url("newOrder"), {"identifiers": [{"type": "dns", "value": "a.test"}]})
    assert r.status == 401 and ca.orders == {}
    b = new_session(ca, key=a.key)
    acme_bootstrap(b)
    with fails(WucmeError, "ACCTSTATUS, invalid account status \\(deactivated\\)"):
        account_retrieve(b)


# --- key change (RFC 8555 §7.3.5) --------------------------------------------------------------

def test_key_change_rolls_the_key_at_the_ca_and_on_disk(ca: FakeCA, tmp_path: Path) -> None:
    keyfile = tmp_path / "key.pem"
    old = crypto.key_load(keyfile, "EC", 256)
    a = registered(ca, key=old)
    account_keychange(a, False, "EC", 256, str(tmp_path))
    new = load_pem_private_key(keyfile.read_bytes(), None)
    assert canonical_jwk(ca.accounts[a.kid or ""].key) == canonical_jwk(new.public_key())
    assert canonical_jwk(a.key.public_key()) == canonical_jwk(new.public_key())
    assert not (tmp_path / "newkey.pem").exists()
    (backup,) = tmp_path.glob("key-*.pem")
    assert canonical_jwk(load_pem_private_key(backup.read_bytes(), None).public_key()) == canonical_jwk(
        old.public_key())
    assert stat.S_IMODE(os.stat(keyfile).st_mode) == 0o400
    # the new key speaks for the account; the old one no longer finds it
    acme_post(a, a.url("newOrder"), {"identifiers": [{"type": "dns", "value": "a.test"}]}).expect(201, what="order")
    b = new_session(ca, key=old)
    acme_bootstrap(b)
    with fails(WucmeError, "NOACCOUNT"):
        account_retrieve(b)


def test_key_change_refused_leaves_the_files_alone(ca: FakeCA, tmp_path: Path) -> None:
    old = crypto.key_load(tmp_path / "key.pem", "EC", 256)
    a = registered(ca, key=old)
    other = registered(ca)  # the new key is already another account's
    crypto.key_save(tmp_path / "newkey.pem", other.key)
    with fails(WucmeError, "failed to change account key at .*conflict.*already in use"):
        account_keychange(a, True, "EC", 256, str(tmp_path))
    assert (tmp_path / "newkey.pem").exists() and list(tmp_path.glob("key-*.pem")) == []
    assert canonical_jwk(ca.accounts[a.kid or ""].key) == canonical_jwk(old.public_key())


# --- key types (RFC 7518 §3.3, §3.4) -----------------------------------------------------------

def test_rsa_and_p384_account_keys(ca: FakeCA) -> None:
    for key, alg in ((rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256"),
                     (ec.generate_private_key(ec.SECP384R1()), "ES384")):
        a = registered(ca, key=key)
        acme_post(a, a.url("newOrder"), {"identifiers": [{"type": "dns", "value": "a.test"}]}).expect(201, what="order")
        protected = ca.requests("newOrder")[-1].protected
        assert protected and protected["alg"] == alg
