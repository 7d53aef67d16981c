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
from typing import Any

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
    w.env["WUCME_LOAD"] = "/bin/true"  # something loads the renewals (else manage warns NOTLOADED)
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


# --- 2. one tls-alpn-01 validation per name at a time ---------------------------------------------

def test_manage_renews_two_certificates_sharing_a_name_over_tls_alpn01(
        wucme: Wucme, second_ca: SecondCA) -> None:
    """Both renewals run at once (WUCME_WORKERS 2); each challenge start is held a moment at the
    proxy, so without the per-name lock the second order's answer for the shared name replaces
    the first's before the CA looks."""
    import time as _time

    def slow_start(req: Any) -> None:
        if req.body and b'"payload":"e30"' in req.body.replace(b" ", b""):
            _time.sleep(0.5)
        return None

    second_ca.ahead(second_ca.proxy.add_rule(
        lambda m, p, _b: m == "POST" and p.startswith("/chalZ/"), slow_start))
    wucme("issue", "one.example.org,shared.example.org", WUCME_CHALLENGE="tls-alpn-01")
    wucme("issue", "two.example.org,shared.example.org", WUCME_CHALLENGE="tls-alpn-01")
    r = wucme("manage", WUCME_DAYS="3000", WUCME_WORKERS="2", WUCME_VERBOSE="1",
              WUCME_CHALLENGE="tls-alpn-01")
    assert "%WUCME-S-MANAGED, 2 renewed, 0 not due, 0 failed" in r.stdout
    assert "waiting for another order's tls-alpn-01 validation of shared.example.org" in r.stdout + r.stderr


# --- 3. each certificate renewed over the challenge type it was issued with -----------------------

def state_of(w: Wucme, part: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((w.here / f"WUCME_S_{part}.JSON").read_text())
    return result


def test_manage_renews_over_the_recorded_challenge_unless_told_otherwise(wucme: Wucme) -> None:
    wucme("issue", "byhttp.example.org")  # http-01 (the fixture's WUCME_CHALLENGE)
    # WUCME_CHALLENGE now says tls-alpn-01, and nothing answers it: the renewal keeps http-01.
    r = wucme("manage", WUCME_DAYS="3000", WUCME_CHALLENGE="tls-alpn-01", WUCME_ALPN=nowhere())
    assert "1 renewed" in r.stdout
    assert state_of(wucme, "BYHTTP_EXAMPLE_ORG")["challenge"] == "http-01"
    # The qualifier overrides for one pass, and the state records what was used.
    r = wucme("manage", "/challenge=tls-alpn-01", WUCME_DAYS="3000", WUCME_HTTP01=nowhere())
    assert "1 renewed" in r.stdout
    assert state_of(wucme, "BYHTTP_EXAMPLE_ORG")["challenge"] == "tls-alpn-01"
    # WUCME_RENEW_CHALLENGE overrides for every pass (the agent's too).
    r = wucme("manage", WUCME_DAYS="3000", WUCME_RENEW_CHALLENGE="http-01", WUCME_ALPN=nowhere())
    assert "1 renewed" in r.stdout
    assert state_of(wucme, "BYHTTP_EXAMPLE_ORG")["challenge"] == "http-01"
    wucme("manage", WUCME_RENEW_CHALLENGE="dns-01", code=2)  # refused, as WUCME_CHALLENGE is


# --- 4. revoke names the repository's file --------------------------------------------------------

def test_revoke_errors_name_the_repository_file(wucme: Wucme) -> None:
    wucme("issue", "revoke.example.org")
    wucme("revoke", "WUCME_C_REVOKE_EXAMPLE_ORG.PEM")
    (wucme.here / "WUCME_S_REVOKE_EXAMPLE_ORG.JSON").unlink()  # so the verb asks again
    r = wucme("revoke", "WUCME_C_REVOKE_EXAMPLE_ORG.PEM", code=2)
    assert "alreadyRevoked" in r.stderr
    assert str(wucme.here / "WUCME_C_REVOKE_EXAMPLE_ORG.PEM") in r.stderr
    assert "wucme-revoke-" not in r.stderr and "cert.pem" not in r.stderr


# --- 5. a closed output pipe under --uacme: SIGPIPE, as uacme ---------------------------------------

def test_uacme_face_dies_of_sigpipe_when_its_reader_goes(
        second_ca: SecondCA, challenge_dir_server: ChallengeDirServer,
        hook_scripts: dict[str, str], tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    run = UacmeRun(second_ca.proxy.directory_url, second_ca.proxy.ca_bundle, tmp_path / "conf",
                   {"UACME_CHALLENGE_PATH": str(challenge_dir_server.root_dir)})
    ok(run("-y", "new", "admin@example.org"))
    import os
    env = dict(os.environ, WUCME_CA_BUNDLE=run.ca_bundle, **run.env)
    p = subprocess.Popen([sys.executable, "-m", "wucme", "--uacme", "-v", "-c", str(run.confdir),
                          "-a", run.directory_url, "-h", hook_scripts["http-01"], "issue",
                          "pipe.example.org"], env=env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert p.stderr is not None
    p.stderr.readline(), p.stderr.readline()  # `| head -2`
    p.stderr.close()
    assert p.wait(timeout=60) == -signal.SIGPIPE  # 141 in a shell; 1 would mean "still current"


# --- 6. messages ------------------------------------------------------------------------------------

def test_authorizing_is_said_once_the_order_is_accepted(wucme: Wucme, second_ca: SecondCA) -> None:
    second_ca.ahead(second_ca.proxy.inject(
        "POST", "/order-plz", 400, {"Content-Type": "application/problem+json"},
        {"type": "urn:ietf:params:acme:error:rejectedIdentifier",
         "detail": "policy forbids issuing for these names", "status": 400}))
    r = wucme("issue", "refused.example.org", code=2)
    assert "policy forbids" in r.stderr
    assert "AUTHORIZING" not in r.stdout + r.stderr
    r = wucme("issue", "accepted.example.org")
    assert "%WUCME-I-AUTHORIZING, 1 name by http-01" in r.stdout + r.stderr


def test_manage_says_when_outside_the_ari_window(wucme: Wucme, second_ca: SecondCA) -> None:
    second_ca.proxy.enable_ari()
    wucme("issue", "later.example.org")
    old = ari_cert_id(chain(wucme.here / "WUCME_C_LATER_EXAMPLE_ORG.PEM")[0])
    start = datetime.now(timezone.utc) + timedelta(days=30)
    second_ca.proxy.set_renewal_info(old, start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                     (start + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ"))
    r = wucme("manage")
    assert f"not due until {start.strftime('%Y-%m-%dT%H:%M')}" in r.stdout
    assert "outside the CA's renewal window (ARI)" in r.stdout
