"""Two copies of one command run at once on one repository, as two administrators (or a cron
job and an administrator) do: what each says, what the CA was asked, what the files hold.

`issue`, `manage` twice at once and `manage` during the agent's pass are in
tests/agent/test_ownership.py;
`wucme alpn` started several times at once in tests/loopback/test_alpn_races.py.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from harness.pebble import Pebble
from wucme.vms.files import version_path

from agent.test_ownership import at_once

from .test_wucme_verbs import SPKI, Wucme, assert_files

pytestmark = pytest.mark.pebble




def spki(pem: bytes) -> bytes:
    return serialization.load_pem_private_key(pem, None).public_key().public_bytes(*SPKI)


def test_two_registrations_at_once_keep_both_new_keys(pebble: Pebble, tmp_path: Path) -> None:
    w = Wucme(tmp_path, pebble)
    w("register", "admin@example.org")
    original = spki(w.here.joinpath("WUCME_ACCOUNT.PEM").read_bytes())
    runs = at_once(w.env, "register", "admin@example.org")
    assert [rc for rc, _ in runs] == [0, 0], runs
    assert all("%WUCME-S-REGISTERED" in out for _, out in runs)
    # The newer account's key is in use; the other new one is the version just before it; the
    # original before that: no key of an account the CA made is lost.
    current = w.here / "WUCME_ACCOUNT.PEM"
    versions = sorted(w.here.glob("WUCME_ACCOUNT.PEM;*"), key=lambda p: int(p.name.rsplit(";", 1)[1]))
    keys = [spki(p.read_bytes()) for p in versions] + [spki(current.read_bytes())]
    assert keys[0] == original and len(set(keys[-2:])) == 2 and original not in keys[-2:], \
        [p.name for p in versions]
    assert sum("%WUCME-I-NEWACCOUNT" in out for _, out in runs) == 2
    assert version_path(current, 1).exists()


def test_two_revocations_of_one_certificate_at_once_revoke_it_once(pebble: Pebble, tmp_path: Path) -> None:
    wucme = Wucme(tmp_path, pebble)
    wucme("register", "admin@example.org")
    wucme("issue", "gone.example.org", WUCME_CHALLENGE="http-01")
    leaf = assert_files(wucme.here, "GONE_EXAMPLE_ORG", {"gone.example.org"})
    runs = at_once(wucme.env, "revoke", "WUCME_C_GONE_EXAMPLE_ORG.PEM")
    assert [rc for rc, _ in runs] == [0, 0], runs
    assert sum("%WUCME-S-REVOKED" in out for _, out in runs) == 1, runs
    other = next(out for _, out in runs if "%WUCME-S-REVOKED" not in out)
    # the second waited for the first's lock, read the state again and left the CA alone
    assert "%WUCME-I-ALREADYREVOKED" in other and "nothing sent to the CA" in other, other
    assert pebble.cert_status(format(leaf.serial_number, "x"))["Status"] == "Revoked"
    [rec] = wucme.json()
    assert rec["state"] == "revoked"
    print("\nthe second revocation said:", other.strip())


def test_a_later_revocation_leaves_the_ca_alone_unless_the_key_is_compromised(pebble: Pebble,
                                                                             tmp_path: Path) -> None:
    wucme = Wucme(tmp_path, pebble)
    wucme("register", "admin@example.org")
    wucme("issue", "later.example.org", WUCME_CHALLENGE="http-01")
    wucme("revoke", "WUCME_C_LATER_EXAMPLE_ORG.PEM", "/reason=superseded")
    again = wucme("revoke", "WUCME_C_LATER_EXAMPLE_ORG.PEM")
    assert "%WUCME-I-ALREADYREVOKED" in again.stdout + again.stderr
    assert "revoked (superseded)" in again.stdout + again.stderr
    # keyCompromise goes to the CA all the same; this CA answers that it was revoked already
    r = wucme("revoke", "WUCME_C_LATER_EXAMPLE_ORG.PEM", "/reason=keyCompromise", code=2)
    print("\nkeyCompromise after superseded:", (r.stdout + r.stderr).strip())
    assert "alreadyRevoked" in r.stdout + r.stderr
