"""wucme.settings: every WUCME_* value checked where it is read, and read again after each change.

The system table is a file of its own per test (WUCME_LNM_DIR), written by a second process as
an administrator's `wucme define /system` would: a running process sees the new value at once.
"""
from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest

from wucme import settings
from wucme.core.ident import is_ip
from wucme.core.times import iso, parse_iso, parse_rfc3339, utc_now
from wucme.errors import UsageError

NAMES = ("WUCME_VERBOSE", "WUCME_CA", "WUCME_HTTP", "WUCME_POLL_TIMEOUT", "WUCME_KEY_TYPE", "WUCME_KEY_BITS",
         "WUCME_CHALLENGE", "WUCME_HTTP01", "WUCME_ALPN", "WUCME_HTTP_PORT", "WUCME_WORKERS", "WUCME_DAYS",
         "WUCME_WARN_DAYS", "WUCME_LOAD", "WUCME_LOAD_TIMEOUT", "WUCME_LOAD_SETTLE", "WUCME_SERVICES",
         "WUCME_SCHEDULE", "WUCME_JITTER", "WUCME_ACTIVE", "WUCME_LOCK_DB", "WUCME_HERE", "WASD_ROOT",
         "WUCME_CHALLENGES", "WUCME_EAB", "WUCME_CA_BUNDLE", "UACME_CAINFO", "WUCME_PROXY", "UACME_PROXY",
         "WUCME_HTTP_DEADLINE", "WUCME_PASS_DEADLINE", "WUCME_CLUSTER_MODE")


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("WUCME_LNM_DIR", str(tmp_path / "lnm"))
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)


def define_system(name: str, value: str) -> None:
    """DEFINE /SYSTEM by another process, as an administrator does while wucme runs."""
    subprocess.run([sys.executable, "-m", "wucme", "define", "/system", name, value], check=True,
                   capture_output=True, timeout=60)


def refused(ident: str, fn: object) -> str:
    assert callable(fn)
    with pytest.raises(UsageError) as info:
        fn()
    assert info.value.ident == ident
    return info.value.text


def test_a_definition_made_by_another_process_is_seen_at_once() -> None:
    assert settings.verbosity() == 0 and settings.ca_directory() == settings.PRODUCTION_URL
    define_system("WUCME_VERBOSE", "2")
    define_system("WUCME_CA", "staging")
    assert settings.verbosity() == 2 and settings.ca_directory() == settings.STAGING_URL
    define_system("WUCME_CA", "<not a url>")
    assert "<not a url>" in refused("BADVALUE", settings.ca_directory)


def test_verbosity(monkeypatch: pytest.MonkeyPatch) -> None:
    for value, level in (("", 0), ("0", 0), ("1", 1), ("3", 3), ("*", 1), ("yes", 1)):
        monkeypatch.setenv("WUCME_VERBOSE", value)
        assert settings.verbosity() == level, value


def test_ca_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WUCME_CA", " Production ")
    assert settings.ca_directory() == settings.PRODUCTION_URL
    monkeypatch.setenv("WUCME_CA", "https://ca.example/dir")
    assert settings.ca_directory() == "https://ca.example/dir"
    monkeypatch.setenv("WUCME_CA", "ftp://ca.example/dir")
    refused("BADVALUE", settings.ca_directory)


def test_transport_and_poll_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    assert settings.transport_name() == "builtin" and settings.poll_timeout() is None
    monkeypatch.setenv("WUCME_HTTP", "Requests")
    assert settings.transport_name() == "requests"
    monkeypatch.setenv("WUCME_HTTP", "curl")
    refused("BADVALUE", settings.transport_name)
    monkeypatch.setenv("WUCME_POLL_TIMEOUT", "0.2")
    assert settings.poll_timeout() == 1.0  # at least a second
    monkeypatch.setenv("WUCME_POLL_TIMEOUT", "90")
    assert settings.poll_timeout() == 90.0
    for bad in ("soon", "nan", "inf"):
        monkeypatch.setenv("WUCME_POLL_TIMEOUT", bad)
        refused("BADVALUE", settings.poll_timeout)


def test_http_config_honours_uacme_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UACME_CAINFO", "/etc/uacme.pem")
    monkeypatch.setenv("UACME_PROXY", "http://proxy:3128")
    cfg = settings.http_config()
    assert (cfg.ca_bundle, cfg.proxy) == ("/etc/uacme.pem", "http://proxy:3128")
    monkeypatch.setenv("WUCME_CA_BUNDLE", "/etc/wucme.pem")
    assert settings.http_config().ca_bundle == "/etc/wucme.pem"


def test_key_spec_uses_the_one_key_size_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    assert settings.key_spec() == ("EC", 256)
    monkeypatch.setenv("WUCME_KEY_TYPE", "rsa")
    assert settings.key_spec() == ("RSA", 2048)
    for bits, ok in (("4096", True), ("2049", False), ("1024", False), ("lots", False)):
        monkeypatch.setenv("WUCME_KEY_BITS", bits)
        if ok:
            assert settings.key_spec() == ("RSA", int(bits))
        else:
            assert "WUCME_KEY_BITS" in refused("BADKEYTYPE", settings.key_spec)
    monkeypatch.setenv("WUCME_KEY_TYPE", "EC")
    monkeypatch.setenv("WUCME_KEY_BITS", "384")
    assert settings.key_spec() == ("EC", 384)
    monkeypatch.setenv("WUCME_KEY_BITS", "521")
    assert "256 or 384" in refused("BADKEYTYPE", settings.key_spec)
    monkeypatch.setenv("WUCME_KEY_TYPE", "DSA")
    refused("BADKEYTYPE", settings.key_spec)


def test_challenge_config(monkeypatch: pytest.MonkeyPatch) -> None:
    assert settings.challenge_config() == settings.ChallengeConfig("tls-alpn-01", None, ("", 443))  # both families
    monkeypatch.setenv("WUCME_CHALLENGE", "HTTP-01")
    monkeypatch.setenv("WUCME_HTTP01", "[::1]:8080")
    monkeypatch.setenv("WUCME_ALPN", "agent")
    assert settings.challenge_config() == settings.ChallengeConfig("http-01", ("::1", 8080), None)
    monkeypatch.setenv("WUCME_HTTP01", "127.0.0.1:99999")
    assert "WUCME_HTTP01" in refused("BADPORT", settings.challenge_config)
    monkeypatch.setenv("WUCME_CHALLENGE", "dns-01")
    refused("BADCHALLENGE", settings.challenge_config)


def test_renewal_challenge(monkeypatch: pytest.MonkeyPatch) -> None:
    """Undefined: each certificate renews over the type it recorded; defined, it overrides."""
    assert settings.renewal_challenge() is None
    monkeypatch.setenv("WUCME_RENEW_CHALLENGE", "HTTP-01")
    assert settings.renewal_challenge() == "http-01"
    monkeypatch.setenv("WUCME_CHALLENGE", "http-01")
    assert settings.challenge_config("tls-alpn-01").type == "tls-alpn-01"  # a type given wins
    monkeypatch.setenv("WUCME_RENEW_CHALLENGE", "dns-01")
    assert "WUCME_RENEW_CHALLENGE" in refused("BADCHALLENGE", settings.renewal_challenge)


def test_http01_places(monkeypatch: pytest.MonkeyPatch) -> None:
    assert settings.http01_listen() == ("", 80)  # no address: IPv4 and IPv6
    assert settings.http01_probe() == ("127.0.0.1", 80, "this web server's port 80 mapping")
    monkeypatch.setenv("WUCME_HTTP_PORT", "8080")
    assert settings.http01_probe()[:2] == ("127.0.0.1", 8080)
    monkeypatch.setenv("WUCME_HTTP01", "[::]:5002")
    assert settings.http01_listen() == ("::", 5002)
    assert settings.http01_probe()[:2] == ("::1", 5002)
    monkeypatch.setenv("WUCME_HTTP01", "x")
    refused("BADPORT", settings.http01_listen)


def test_tuning_values_fall_back_to_their_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """A typo in a value that only tunes the agent must never stop the renewals."""
    checks = [("WUCME_WORKERS", settings.workers, [("8", 8), ("1000", 64), ("0", 1), ("many", 4)]),
              ("WUCME_DAYS", settings.fixed_days, [("30", 30.0), ("2.5", 2.5), ("0", 0.0), ("", None)]),
              ("WUCME_WARN_DAYS", settings.warn_days, [("3", 3.0), ("-1", 7.0), ("x", 7.0)]),
              ("WUCME_LOAD_TIMEOUT", settings.load_timeout, [("5", 5.0), ("0", 60.0), ("soon", 60.0)]),
              ("WUCME_LOAD_SETTLE", settings.settle_time, [("0.5", 0.5), ("-3", 10.0)]),
              ("WUCME_SCHEDULE", settings.schedule_time, [("03:45", dt.time(3, 45)), ("25:00", dt.time(0, 20))]),
              ("WUCME_JITTER", settings.jitter_seconds, [("600", 600.0), ("-5", 0.0), ("nan", 0.0)])]
    for name, fn, cases in checks:
        for value, want in cases:
            monkeypatch.setenv(name, value)
            assert fn() == want, (name, value)  # type: ignore[operator]


def test_days_that_are_not_days_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """WUCME_DAYS decides whether anything is renewed: -1 or a typo read as "never due" would let
    every certificate expire, so it is refused, where the tuning values fall back."""
    for value in ("-1", "x", "inf", "nan"):
        monkeypatch.setenv("WUCME_DAYS", value)
        assert repr(value) in refused("BADVALUE", settings.fixed_days)


def test_load_and_services(monkeypatch: pytest.MonkeyPatch) -> None:
    assert settings.load_command() is None and settings.services() == []
    monkeypatch.setenv("WUCME_LOAD", "  ")
    assert settings.load_command() is None
    monkeypatch.setenv("WUCME_LOAD", "nginx -s reload")
    assert settings.load_command() == "nginx -s reload"
    monkeypatch.setenv("WUCME_SERVICES", "www.example.org:443, admin.example.org@[::1]:8443")
    assert [str(s) for s in settings.services()] == ["www.example.org:443", "admin.example.org@[::1]:8443"]
    monkeypatch.setenv("WUCME_SERVICES", "127.0.0.1:443")
    assert "SNI" in refused("BADSERVICE", settings.services)


def test_agent_switches(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not settings.always_active() and settings.lock_db() is None
    monkeypatch.setenv("WUCME_ACTIVE", "*")
    monkeypatch.setenv("WUCME_LOCK_DB", "host=db")
    assert settings.always_active() and settings.lock_db() == "host=db"


def test_where_things_are(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert settings.here_path() == Path("/var/lib/wucme")
    monkeypatch.setenv("WUCME_HERE", str(tmp_path))
    assert settings.here_path() == tmp_path
    assert settings.challenges_dir() == tmp_path / "WUCME_CHALLENGES"
    monkeypatch.setenv("WUCME_CHALLENGES", str(tmp_path / "c"))
    assert settings.challenges_dir() == tmp_path / "c"


# --- the one is_ip and the one time helper -----------------------------------------------------

@pytest.mark.parametrize(("text", "ip"), [
    ("192.0.2.1", True), ("2001:db8::1", True), ("::1", True),
    ("fe80::1%eth0", False),  # a zone is this host's, never a CA's to validate
    ("127.1", False), ("www.example.org", False), ("", False), ("1.2.3.4.5", False),
])
def test_is_ip(text: str, ip: bool) -> None:
    from wucme import crypto
    from wucme.challenge import names

    assert is_ip(text) is ip
    assert crypto.is_ip is is_ip and names.is_ip is is_ip  # one definition, the uacme name kept


def test_times_round_trip() -> None:
    now = utc_now()
    assert now.tzinfo is not None
    text = iso(now)
    assert text is not None and text.endswith("Z") and len(text) == 20
    assert parse_iso(text) == now.replace(microsecond=0)
    assert iso(None) is None and parse_iso("2026-11-27 00:20") is None and parse_iso(3) is None
    assert parse_rfc3339("2026-11-27T01:20:00.5+01:00") == dt.datetime(2026, 11, 27, 0, 20, 0, 500000,
                                                                       tzinfo=dt.timezone.utc)
    with pytest.raises(ValueError):
        parse_rfc3339("2026-11-27")


def test_deadlines(monkeypatch: pytest.MonkeyPatch) -> None:
    assert settings.http_deadline() == 120.0 and settings.pass_deadline() == 3600.0
    assert settings.http_config().deadline == 120.0
    monkeypatch.setenv("WUCME_HTTP_DEADLINE", "7.5")
    monkeypatch.setenv("WUCME_PASS_DEADLINE", "600")
    assert settings.http_config().deadline == 7.5 and settings.pass_deadline() == 600.0
    for bad in ("soon", "-1", "0", "1e9"):  # tuning only: a typo falls back to the default
        monkeypatch.setenv("WUCME_HTTP_DEADLINE", bad)
        assert settings.http_deadline() == 120.0


def test_cluster_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    """ACTIVE unless SHARED is asked for; anything else is refused, never taken for the default."""
    assert settings.cluster_mode() == "ACTIVE"
    define_system("WUCME_CLUSTER_MODE", "shared")
    assert settings.cluster_mode() == "SHARED"
    monkeypatch.setenv("WUCME_CLUSTER_MODE", " Active ")
    assert settings.cluster_mode() == "ACTIVE"
    monkeypatch.setenv("WUCME_CLUSTER_MODE", "shard")
    assert refused("BADVALUE", settings.cluster_mode) == "WUCME_CLUSTER_MODE 'SHARD' must be ACTIVE or SHARED"
