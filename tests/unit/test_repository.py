"""The certificate repository and the renewal decision, on real files (no CA involved)."""
from __future__ import annotations

import datetime as dt
import json
import os
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from wucme.errors import WucmeError
from wucme.renewal import due, threshold
from wucme.crypto import key_pem
from wucme.repository import STATE_MODE, CertState, NoPrivilege, Repository
from wucme.settings import default_here

NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def make_chain(names: list[str], not_before: dt.datetime, not_after: dt.datetime,
               key: ec.EllipticCurvePrivateKey) -> bytes:
    """A leaf for *names* signed by a throwaway issuer, then the issuer: a two-certificate chain."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test issuer")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(1)
          .not_valid_before(not_before).not_valid_after(not_after + dt.timedelta(days=1))
          .sign(ca_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
            .sign(ca_key, hashes.SHA256()))
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (leaf, ca))


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Repository:
    monkeypatch.setenv("WUCME_LNM_DIR", str(tmp_path / "lnm"))
    for name in ("WUCME_KEEP", "WUCME_DAYS", "WUCME_HERE", "WASD_ROOT"):
        monkeypatch.delenv(name, raising=False)
    return Repository(tmp_path / "here")


def save(repo: Repository, names: list[str], days: float = 90, age: float = 0) -> CertState:
    key = ec.generate_private_key(ec.SECP256R1())
    start = NOW - dt.timedelta(days=age)
    repo.ensure_writable()
    return repo.save_certificate(names, key, make_chain(names, start, start + dt.timedelta(days=days), key),
                                 "http-01")


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_files_names_modes_and_contents(repo: Repository) -> None:
    st = save(repo, ["www.example.org", "two.example.org"])
    c = repo.path / "WUCME_C_WWW_EXAMPLE_ORG.PEM"
    k = repo.path / "WUCME_K_WWW_EXAMPLE_ORG.PEM"
    s = repo.path / "WUCME_S_WWW_EXAMPLE_ORG.JSON"
    assert mode(c) == mode(k) == 0o600
    assert c.read_bytes().endswith(k.read_bytes())
    assert c.read_bytes().count(b"BEGIN CERTIFICATE") == 2
    leaf = x509.load_pem_x509_certificates(c.read_bytes())[0]
    data = json.loads(s.read_text())
    assert data["hosts"] == ["www.example.org", "two.example.org"]
    assert data["serial"] == format(leaf.serial_number, "X").zfill(len(format(leaf.serial_number, "X")) + 1 & ~1) == st.serial
    assert data["not_after"] == leaf.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert data["key_type"] == "EC P-256" and data["challenge"] == "http-01"
    assert data["status"] == "issued" and data["last_attempt"] and data["next_attempt"] is None
    assert not any(n.startswith(".wucme-tmp") for n in os.listdir(repo.path))


def test_replacing_keeps_versions(repo: Repository) -> None:
    save(repo, ["www.example.org"])
    first = (repo.path / "WUCME_C_WWW_EXAMPLE_ORG.PEM").read_bytes()
    save(repo, ["www.example.org"])
    assert (repo.path / "WUCME_C_WWW_EXAMPLE_ORG.PEM;1").read_bytes() == first
    assert mode(repo.path / "WUCME_K_WWW_EXAMPLE_ORG.PEM;1") == 0o600
    for _ in range(4):
        save(repo, ["www.example.org"])
    kept = sorted(n for n in os.listdir(repo.path) if n.startswith("WUCME_C_WWW_EXAMPLE_ORG.PEM;"))
    assert len(kept) == 3  # WUCME_KEEP's default


def test_long_and_idn_hosts_get_distinct_ods2_names(repo: Repository) -> None:
    long1 = "a-very-long-host-name-for-testing.example.org"
    long2 = "a-very-long-host-name-for-testing.example.net"
    for h in (long1, long2, "xn--bcher-kva.example"):
        save(repo, [h])
    names = sorted(n for n in os.listdir(repo.path) if n.startswith("WUCME_C_") and ";" not in n)
    assert len(names) == 3 and "WUCME_C_XN--BCHER-KVA_EXAMPLE.PEM" in names
    assert all(len(n.split(".")[0]) <= 39 for n in names)
    assert {m.hosts[0] for m in repo.managed()} == {long1, long2, "xn--bcher-kva.example"}


def test_corrupt_state_is_tolerated_and_means_due(repo: Repository) -> None:
    save(repo, ["www.example.org"])
    for junk in (b"{not json", b"[]", b'{"hosts": []}', b'{"hosts": [1]}', b"\xff\xfe", b""):
        (repo.path / "WUCME_S_WWW_EXAMPLE_ORG.JSON").write_bytes(junk)
        [m] = repo.managed()
        assert m.state.corrupt and m.hosts == ["www.example.org"]  # read back from the certificate
        assert due(m, NOW) == (True, m.state.last_result)
        assert "unreadable" in m.state.last_result
    # A certificate file without any state is managed too, its hosts taken from it.
    (repo.path / "WUCME_S_WWW_EXAMPLE_ORG.JSON").unlink()
    [m] = repo.managed()
    assert not m.state.corrupt and m.hosts == ["www.example.org"]
    assert due(m, NOW)[0] is False


def test_unreadable_certificate_is_due(repo: Repository) -> None:
    save(repo, ["www.example.org"])
    (repo.path / "WUCME_C_WWW_EXAMPLE_ORG.PEM").write_bytes(b"-----BEGIN CERTIFICATE-----\nxx\n")
    [m] = repo.managed()
    assert m.leaf is None and "unreadable" in m.problem
    assert due(m, NOW)[0] is True
    assert m.hosts == ["www.example.org"]  # from the state file


def test_repository_not_writable_is_noprivilege(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(NoPrivilege) as e:
        Repository(blocker / "repo").ensure_writable()
    assert e.value.message().startswith("%WUCME-E-NOPRIV, cannot write the certificate repository")
    with pytest.raises(NoPrivilege):
        Repository(blocker).ensure_writable()
    assert blocker.read_text() == "x"


def test_account_key_missing_corrupt_and_saved(repo: Repository) -> None:
    with pytest.raises(WucmeError) as e:
        repo.load_account_key()
    assert e.value.ident == "NOACCOUNT"
    repo.ensure_writable()
    key = ec.generate_private_key(ec.SECP256R1())
    repo.save_account_key(key)
    assert mode(repo.account_key_path) == 0o600
    assert key_pem(repo.load_account_key()) == key_pem(key)
    repo.account_key_path.write_bytes(b"garbage")
    with pytest.raises(WucmeError) as e:
        repo.load_account_key()
    assert e.value.ident == "BADACCKEY" and "never replaced silently" in e.value.text
    assert repo.account_key_path.read_bytes() == b"garbage"
    repo.save_account_key(key)
    assert (repo.path / "WUCME_ACCOUNT.PEM;1").read_bytes() == b"garbage"
    assert repo.account_key_path.read_bytes() == key_pem(key)


def test_default_here(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("WUCME_LNM_DIR", str(tmp_path / "lnm"))
    monkeypatch.delenv("WUCME_HERE", raising=False)
    monkeypatch.delenv("WASD_ROOT", raising=False)
    assert default_here() == "/var/lib/wucme"
    monkeypatch.setenv("WASD_ROOT", str(tmp_path) + "/")
    assert default_here() == "WASD_ROOT:[LOCAL]"
    assert Repository.here().path == tmp_path / "local"
    monkeypatch.setenv("WUCME_HERE", str(tmp_path / "x"))
    assert Repository.here().path == tmp_path / "x"


@pytest.mark.parametrize("lifetime, age, expect", [
    (90, 59, False),   # 31 days left of 90: a third is 30
    (90, 61, True),    # 29 days left
    (10, 4.9, False),  # short lifetime: half
    (10, 5.1, True),
    (6, 2.9, False),   # a 6-day certificate: renew at 3 days left
    (6, 3.1, True),
    (90, 91, True),    # expired
])
def test_due_by_lifetime(repo: Repository, lifetime: float, age: float, expect: bool) -> None:
    save(repo, ["www.example.org"], days=lifetime, age=age)
    [m] = repo.managed()
    assert due(m, NOW)[0] is expect


def test_threshold() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    for days, want in ((90, 30), (10, 5), (160 / 24, 80 / 24)):
        pem = make_chain(["a.org"], NOW, NOW + dt.timedelta(days=days), key)
        leaf = x509.load_pem_x509_certificates(pem)[0]
        assert abs(threshold(leaf).total_seconds() - want * 86400) < 1


def test_due_by_days_ari_names_and_revocation(repo: Repository) -> None:
    save(repo, ["www.example.org", "two.example.org"], days=90, age=10)
    [m] = repo.managed()
    assert due(m, NOW)[0] is False
    assert due(m, NOW, days=81)[0] is True and "WUCME_DAYS" in due(m, NOW, days=81)[1]
    assert due(m, NOW, days=79)[0] is False
    assert due(m, NOW, ari=lambda c: 1)[0] is True
    assert due(m, NOW, ari=lambda c: 0, days=81)[0] is False  # ARI decides when offered
    assert due(m, NOW, ari=lambda c: -1, days=81)[0] is True
    m.state.hosts.append("three.example.org")
    assert due(m, NOW) == (True, "certificate lacks three.example.org")
    m.state.status = "revoked"
    assert due(m, NOW)[0] is False


def test_record_attempt_and_find(repo: Repository) -> None:
    st = save(repo, ["www.example.org"])
    repo.record_attempt(st, "failed", "failed: no", NOW + dt.timedelta(hours=6))
    data = json.loads(repo.state_path("www.example.org").read_text())
    assert data["status"] == "failed" and data["last_result"] == "failed: no"
    assert data["next_attempt"] == (NOW + dt.timedelta(hours=6)).strftime("%Y-%m-%dT%H:%M:%SZ")
    c = repo.cert_path("www.example.org")
    assert repo.find(c) is not None
    other = repo.path.parent / "copy.pem"
    other.write_bytes(c.read_bytes())
    found = repo.find(other)
    assert found is not None and found.cert_path == c


# --- the load action's outcome, read back by the next pass (WUCME_LOAD.JSON) -----------------------

def test_a_failed_load_is_read_back_by_a_new_repository(repo: Repository) -> None:
    repo.ensure_writable()
    assert repo.load_pending() is False  # no record yet
    repo.record_load(False, "%WUCME-E-LOADFAIL, status 3: boom")
    again = Repository(repo.path)  # the next pass, maybe another process
    assert again.load_pending() is True
    data = json.loads((repo.path / "WUCME_LOAD.JSON").read_text())
    assert data["ok"] is False and data["result"] == "%WUCME-E-LOADFAIL, status 3: boom"
    assert data["version"] == 1 and data["at"].endswith("Z")
    assert mode(repo.path / "WUCME_LOAD.JSON") == STATE_MODE
    repo.record_load(True, "loaded")
    assert Repository(repo.path).load_pending() is False
    assert not list(repo.path.glob("WUCME_LOAD.JSON;*"))  # no versions kept


@pytest.mark.parametrize("text", ['[{"ok": false}]', '{"ok": null}', '{"ok": 0}', '{}', "{not json", "\xff"])
def test_a_damaged_load_record_means_nothing_pending(repo: Repository, text: str) -> None:
    repo.ensure_writable()
    (repo.path / "WUCME_LOAD.JSON").write_bytes(text.encode("latin-1"))
    assert repo.load_pending() is False


def test_a_pass_with_nothing_renewed_runs_a_failed_load_again(repo: Repository, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from wucme.renewal import renewal_pass
    from wucme.uacme.msg import Msg

    marker = tmp_path / "loaded"
    monkeypatch.setenv("WUCME_LOAD", f"sh -c 'echo x >> {marker}; exit $(cat {tmp_path}/status)'")
    monkeypatch.delenv("WUCME_SERVICES", raising=False)
    (tmp_path / "status").write_text("0")
    repo.ensure_writable()
    said: list[str] = []
    renewal_pass(repo, Msg(0), note=lambda c: said.append(str(c)))
    assert not marker.exists() and said == []  # nothing renewed, nothing pending: no load
    repo.record_load(False, "status 1")
    report = renewal_pass(repo, Msg(0), note=lambda c: said.append(str(c)))
    assert marker.read_text() == "x\n" and report.load is not None and report.load[0] is True
    assert any("LOADED" in s for s in said)
    assert repo.load_pending() is False  # the good load is noted: the next pass does not load
    renewal_pass(repo, Msg(0))
    assert marker.read_text() == "x\n"
    (tmp_path / "status").write_text("4")
    repo.record_load(False, "status 1")
    said.clear()
    report = renewal_pass(repo, Msg(0), note=lambda c: said.append(str(c)))
    assert report.load is not None and report.load[0] is False and "status 4" in report.load[1]
    assert any("LOADFAIL" in s and "status 4" in s for s in said)
    assert Repository(repo.path).load_pending() is True
