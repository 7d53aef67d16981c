"""wucme against a second ACME server implementation (issue 13): Pebble behind the fault proxy's
"second CA" profile (harness.secondca), which leaves orders pending after a failed
authorization, never reuses authorizations, drops must-staple, ignores `replaces`, requires a
contact and answers a 500 then badNonce while its database is locked."""
from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509

from harness.faultproxy import FaultProxy
from harness.pebble import Pebble, free_port
from harness.responders import ChallengeDirServer
from harness.secondca import SecondCA, install_second_ca
from wucme.uacme.ari import ari_cert_id

from .test_wucme_verbs import Wucme, chain
from .uacme_cli import UacmeRun, ok

pytestmark = pytest.mark.pebble

#: A failed challenge must end the order this fast (uacme: 0.4 s), not after WUCME_POLL_TIMEOUT.
PROMPT = 5.0


@pytest.fixture
def second_ca(fault_proxy: FaultProxy) -> SecondCA:
    return install_second_ca(fault_proxy)


@pytest.fixture
def wucme(second_ca: SecondCA, pebble: Pebble, tmp_path: Path) -> Iterator[Wucme]:
    w = Wucme(tmp_path, pebble, ca_url=second_ca.proxy.directory_url)
    w.env["WUCME_CHALLENGE"] = "http-01"
    w("register", "admin@example.org")
    yield w


def nowhere() -> str:
    """A WUCME_HTTP01 where wucme answers but the CA does not look: every validation fails."""
    return f"127.0.0.1:{free_port()}"


def timed(w: Wucme, *args: str, code: int, **env: str) -> tuple[float, str]:
    t0 = time.monotonic()
    r = w(*args, code=code, **env)
    return time.monotonic() - t0, r.stdout + r.stderr


# --- 1. a failed challenge, with the order left pending ----------------------------------------

def test_issue_ends_at_the_failed_challenge_with_the_cas_error(wucme: Wucme, second_ca: SecondCA) -> None:
    took, out = timed(wucme, "issue", "fail.example.org", code=2, WUCME_HTTP01=nowhere())
    assert took < PROMPT, out
    assert "%WUCME-E-CHALLFAIL" in out and "urn:ietf:params:acme:error:connection" in out
    assert "TIMEOUT" not in out
    assert second_ca.kept_pending >= 1  # the CA did leave the order pending


def test_uacme_face_ends_at_the_failed_challenge_and_the_hook_hears_failed(
        second_ca: SecondCA, hook_scripts: dict[str, str], tmp_path: Path) -> None:
    unserved = tmp_path / "unserved"
    unserved.mkdir()
    hook_log = tmp_path / "hook.log"
    run = UacmeRun(second_ca.proxy.directory_url, second_ca.proxy.ca_bundle, tmp_path / "conf",
                   {"UACME_CHALLENGE_PATH": str(unserved), "HOOK_LOG": str(hook_log)})
    ok(run("-y", "new", "admin@example.org"))
    t0 = time.monotonic()
    r = ok(run("-h", hook_scripts["http-01"], "issue", "fail.example.org"), 2)
    assert time.monotonic() - t0 < PROMPT, r.stderr
    assert "urn:ietf:params:acme:error:connection" in r.stderr and "TIMEOUT" not in r.stderr
    calls = [line.split()[:2] for line in hook_log.read_text().splitlines()]
    assert [m for m, t in calls if t == "http-01"] == ["begin", "failed"]


def test_manage_ends_the_failed_renewal_at_once(wucme: Wucme, second_ca: SecondCA) -> None:
    wucme("issue", "renew.example.org")
    took, out = timed(wucme, "manage", code=2, WUCME_DAYS="3000", WUCME_HTTP01=nowhere())
    assert took < PROMPT, out
    assert "%WUCME-E-RENEWFAIL" in out and "urn:ietf:params:acme:error:connection" in out
    assert "TIMEOUT" not in out


# --- the other ways this CA differs, which must stay handled ------------------------------------

def test_a_contact_is_required(second_ca: SecondCA, pebble: Pebble, tmp_path: Path) -> None:
    w = Wucme(tmp_path, pebble, ca_url=second_ca.proxy.directory_url)
    r = w("register", code=2)
    assert "invalidContact" in r.stderr and "a contact address is required" in r.stderr
    w("register", "admin@example.org")


def test_authorizations_are_never_reused(wucme: Wucme, second_ca: SecondCA) -> None:
    wucme("issue", "again.example.org")
    wucme("issue", "again.example.org")
    starts = [q for q in second_ca.proxy.requests_to("/chalZ/", "POST") if q.jws_payload() == {}
              and b"badNonce" not in q.response_body]
    assert len(starts) == 2  # each order's authorization was pending and answered again


def test_must_staple_dropped_is_warned(second_ca: SecondCA, challenge_dir_server: ChallengeDirServer,
                                       hook_scripts: dict[str, str], tmp_path: Path) -> None:
    run = UacmeRun(second_ca.proxy.directory_url, second_ca.proxy.ca_bundle, tmp_path / "conf",
                   {"UACME_CHALLENGE_PATH": str(challenge_dir_server.root_dir)})
    ok(run("-y", "new", "admin@example.org"))
    r = ok(run("-m", "-h", hook_scripts["http-01"], "issue", "staple.example.org"))
    assert "must-staple was requested but the CA issued the certificate without" in r.stderr
    leaf = x509.load_pem_x509_certificates((tmp_path / "conf/staple.example.org/cert.pem").read_bytes())[0]
    with pytest.raises(x509.ExtensionNotFound):
        leaf.extensions.get_extension_for_class(x509.TLSFeature)
    assert second_ca.resigned <= 1  # Pebble 2.4.0 drops it itself; the profile would otherwise
    r = ok(run("-f", "-h", hook_scripts["http-01"], "issue", "staple.example.org"))
    assert "must-staple" not in r.stderr  # not asked for, nothing to warn about


def test_replaces_is_accepted_and_ignored(wucme: Wucme, second_ca: SecondCA) -> None:
    def when(days: int) -> str:
        return (datetime.now(timezone.utc) + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")

    second_ca.proxy.enable_ari()
    wucme("issue", "ari.example.org")
    cfile = wucme.here / "WUCME_C_ARI_EXAMPLE_ORG.PEM"
    old = ari_cert_id(chain(cfile)[0])
    second_ca.proxy.set_renewal_info(old, when(-2), when(-1))
    r = wucme("manage")
    assert "1 renewed" in r.stdout + r.stderr
    orders = [q for q in second_ca.proxy.requests_to("/order-plz", "POST") if b"badNonce" not in q.response_body]
    assert orders[-1].jws_payload()["replaces"] == old  # sent, and the CA's answer does not echo it
    assert "replaces" not in json.loads(orders[-1].response_body)
    assert ari_cert_id(chain(cfile)[0]) != old


def test_a_locked_database_500_then_bad_nonces(wucme: Wucme, second_ca: SecondCA) -> None:
    """The 500 ends that run with the CA's problem and changes nothing; the badNonce burst that
    follows is retried through."""
    before = wucme.snapshot()
    second_ca.lock_database(bad_nonces=3)
    r = wucme("issue", "locked.example.org", code=2)
    assert "database is locked" in r.stderr
    assert wucme.snapshot().keys() == before.keys()
    wucme("issue", "locked.example.org")
    assert (wucme.here / "WUCME_C_LOCKED_EXAMPLE_ORG.PEM").exists()
    assert sum(1 for q in second_ca.proxy.log if q.injected and b"badNonce" in q.response_body) == 3
    state = json.loads((wucme.here / "WUCME_S_LOCKED_EXAMPLE_ORG.JSON").read_text())
    assert state["status"] == "issued"
