"""What Pebble 2.4.0 cannot do, through the fault-injecting proxy in front of it:
ARI (RFC 9773), `replaces`, rate limits with Retry-After, profiles, hostile answers."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509

from harness.faultproxy import FaultProxy, ProxyRequest, match_path, problem
from harness.responders import ChallengeDirServer
from wucme.core.b64 import b64url_decode
from wucme.uacme.ari import ari_cert_id

from .uacme_cli import UacmeRun, ok

pytestmark = pytest.mark.pebble


@pytest.fixture
def run(fault_proxy: FaultProxy, challenge_dir_server: ChallengeDirServer,
        hook_scripts: dict[str, str], tmp_path: Path) -> UacmeRun:
    r = UacmeRun(fault_proxy.directory_url, fault_proxy.ca_bundle, tmp_path / "conf",
                 {"UACME_CHALLENGE_PATH": str(challenge_dir_server.root_dir)})
    ok(r("-y", "new"))
    r.env["HOOK"] = hook_scripts["http-01"]
    return r


def issue(run: UacmeRun, *args: str, code: int = 0) -> str:
    return ok(run("-o", "-h", run.env["HOOK"], "issue", *args), code).stderr


def new_orders(proxy: FaultProxy) -> list[ProxyRequest]:
    """newOrder requests, less those Pebble refused for a bad nonce (5% of all)."""
    return [r for r in proxy.requests_to("/order-plz", "POST") if b"badNonce" not in r.response_body]


def rfc3339(delta: timedelta) -> str:
    return (datetime.now(timezone.utc) + delta).strftime("%Y-%m-%dT%H:%M:%SZ")


def cert_id(run: UacmeRun, ident: str) -> str:
    pem = (run.confdir / ident / "cert.pem").read_bytes()
    return ari_cert_id(x509.load_pem_x509_certificates(pem)[0])


def test_ari_window_in_the_past_renews_and_names_the_replaced_certificate(
        run: UacmeRun, fault_proxy: FaultProxy) -> None:
    fault_proxy.enable_ari()
    issue(run, "ari.example.org")
    old = cert_id(run, "ari.example.org")
    fault_proxy.set_renewal_info(old, rfc3339(-timedelta(days=2)), rfc3339(-timedelta(days=1)))
    out = issue(run, "ari.example.org")
    assert "due for renewal" in out
    assert new_orders(fault_proxy)[-1].jws_payload()["replaces"] == old
    assert fault_proxy.requests_to(f"/renewal-info/{old}", "GET")
    assert cert_id(run, "ari.example.org") != old


def test_ari_window_in_the_future_keeps_the_certificate_whatever_the_days(
        run: UacmeRun, fault_proxy: FaultProxy) -> None:
    fault_proxy.enable_ari()
    issue(run, "later.example.org")
    cid = cert_id(run, "later.example.org")
    fault_proxy.set_renewal_info(cid, rfc3339(timedelta(days=30)), rfc3339(timedelta(days=31)))
    issue(run, "-d", "3000", "later.example.org", code=1)
    assert len(new_orders(fault_proxy)) == 1


def test_ari_unavailable_falls_back_to_days_and_no_ari_option_skips_it(
        run: UacmeRun, fault_proxy: FaultProxy) -> None:
    fault_proxy.enable_ari()
    issue(run, "fallback.example.org")
    old = cert_id(run, "fallback.example.org")
    # No renewal information for this certificate (404): the days rule decides.
    issue(run, "fallback.example.org", code=1)
    issue(run, "-d", "3000", "fallback.example.org")
    # The CA offers ARI, so the renewal still names the certificate it replaces.
    assert new_orders(fault_proxy)[-1].jws_payload()["replaces"] == old
    before = len(fault_proxy.requests_to("/renewal-info"))
    issue(run, "-i", "fallback.example.org", code=1)
    assert len(fault_proxy.requests_to("/renewal-info")) == before


def test_already_replaced_retries_once_without_replaces(run: UacmeRun, fault_proxy: FaultProxy) -> None:
    fault_proxy.enable_ari()
    issue(run, "twice.example.org")
    old = cert_id(run, "twice.example.org")
    fault_proxy.set_renewal_info(old, rfc3339(-timedelta(days=2)), rfc3339(-timedelta(days=1)))
    fault_proxy.add_rule(match_path("POST", "/order-plz"),
                         problem(409, "alreadyReplaced", "already replaced"), times=1)
    out = issue(run, "twice.example.org")
    assert "retrying without it" in out
    first, second = new_orders(fault_proxy)[-2:]
    assert first.jws_payload()["replaces"] == old and first.injected
    assert "replaces" not in second.jws_payload()


@pytest.mark.parametrize("status", [429, 503])
def test_rate_limited_waits_for_retry_after_then_retries(run: UacmeRun, fault_proxy: FaultProxy,
                                                         status: int) -> None:
    fault_proxy.add_rule(match_path("POST", "/order-plz"),
                         problem(status, "rateLimited", "slow down", retry_after=2), times=1)
    out = issue(run, "limited.example.org")
    assert "rate limited" in out
    limited, retried = new_orders(fault_proxy)
    assert limited.injected and not retried.injected
    assert retried.time - limited.time >= 1.9


def test_rate_limited_gives_up_after_three_tries(run: UacmeRun, fault_proxy: FaultProxy) -> None:
    fault_proxy.add_rule(match_path("POST", "/order-plz"),
                         problem(429, "rateLimited", "no more today", retry_after=1), times=None)
    out = issue(run, "never.example.org", code=2)
    assert "rateLimited" in out and "no more today" in out
    assert len(new_orders(fault_proxy)) == 3


def test_profile_is_sent_and_an_unknown_one_refused_before_ordering(
        run: UacmeRun, fault_proxy: FaultProxy) -> None:
    fault_proxy.patch_directory({"meta": {"profiles": {"shortlived": "six days", "classic": "90 days"}}})
    issue(run, "-p", "shortlived", "prof.example.org")
    order = new_orders(fault_proxy)[-1].jws_payload()
    assert order["profile"] == "shortlived"
    # uacme leaves keyUsage out of the CSR when a profile is chosen.
    (final,) = [r for r in fault_proxy.requests_to("/finalize-order/", "POST") if r.status == 200]
    csr = x509.load_der_x509_csr(b64url_decode(final.jws_payload()["csr"]))
    with pytest.raises(x509.ExtensionNotFound):
        csr.extensions.get_extension_for_class(x509.KeyUsage)
    out = issue(run, "-p", "nosuch", "prof2.example.org", code=2)
    assert "NOPROFILE" in out and "classic, shortlived" in out
    assert len(new_orders(fault_proxy)) == 1


def test_plain_http_url_from_the_ca_gets_no_signed_request(run: UacmeRun, fault_proxy: FaultProxy) -> None:
    port = fault_proxy.port
    fault_proxy.patch_directory({"newOrder": f"http://localhost:{port}/order-plz"})
    out = issue(run, "plain.example.org", code=2)
    assert "non-https" in out
    assert new_orders(fault_proxy) == []


def test_certificate_with_a_private_key_block_is_refused_and_nothing_written(
        run: UacmeRun, fault_proxy: FaultProxy) -> None:
    key_block = b"-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n"
    fault_proxy.add_rule(match_path("POST", "/certZ/"),
                         rewrite=lambda req, st, h, body: (st, h, body + key_block if st == 200 else body))
    out = issue(run, "keyed.example.org", code=2)
    assert "CERTIFICATE blocks" in out
    assert not (run.confdir / "keyed.example.org" / "cert.pem").exists()


def test_order_that_never_becomes_ready_times_out_without_finalizing(
        run: UacmeRun, fault_proxy: FaultProxy) -> None:
    def pending(req: ProxyRequest, st: int, h: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        if st != 200:
            return st, h, body
        order = json.loads(body)
        order["status"] = "pending"
        return st, h, json.dumps(order).encode()

    fault_proxy.add_rule(match_path("POST", "/my-order/"), rewrite=pending)
    out = ok(run("-o", "-h", run.env["HOOK"], "issue", "stuck.example.org",
                 extra_env={"WUCME_POLL_TIMEOUT": "2"}), 2).stderr
    assert "TIMEOUT" in out
    assert fault_proxy.requests_to("/finalize-order/") == []


def test_bad_nonce_storm_is_bounded(run: UacmeRun, fault_proxy: FaultProxy) -> None:
    fault_proxy.add_rule(match_path("POST", "/order-plz"),
                         problem(400, "badNonce", "stale"), times=None)
    out = issue(run, "storm.example.org", code=2)
    assert "badNonce" in out
    assert len(fault_proxy.requests_to("/order-plz", "POST")) == 20  # AcmeSession.max_badnonce


@pytest.mark.parametrize("token", ["../../etc/passwd", "a/b", "tok=en", "x" * 300])
def test_hostile_token_aborts_before_any_hook(run: UacmeRun, fault_proxy: FaultProxy,
                                             tmp_path: Path, token: str) -> None:
    def poison(req: ProxyRequest, st: int, h: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        authz = json.loads(body) if st == 200 else {}
        for ch in authz.get("challenges", []):
            ch["token"] = token
        return st, h, json.dumps(authz).encode() if authz else body

    fault_proxy.add_rule(match_path("POST", "/authZ/"), rewrite=poison)
    log = tmp_path / "hook.log"
    out = ok(run("-o", "-h", run.env["HOOK"], "issue", "evil.example.org",
                 extra_env={"HOOK_LOG": str(log)}), 2).stderr
    assert "token" in out
    assert not log.exists()
    assert fault_proxy.requests_to("/chalZ/") == []


def test_polling_honours_retry_after(run: UacmeRun, fault_proxy: FaultProxy) -> None:
    polls: list[float] = []

    def slow(req: ProxyRequest, st: int, h: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        if st != 200:
            return st, h, body
        polls.append(req.time)
        if len(polls) == 1:  # the first poll after the challenge started: not yet
            order = json.loads(body)
            order["status"] = "pending"
            return st, {**h, "Retry-After": "2"}, json.dumps(order).encode()
        return st, h, body

    fault_proxy.add_rule(match_path("POST", "/my-order/"), rewrite=slow)
    issue(run, "patient.example.org")
    assert len(polls) >= 2 and polls[1] - polls[0] >= 1.9
