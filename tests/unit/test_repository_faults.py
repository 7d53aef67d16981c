"""The repository when the disk fills up or the writer is killed halfway (issue 10 items 5, 10).

A real tmpfs of a few pages for the full disk (skipped where mounting is not permitted), a
real SIGKILL between the certificate's rename and the state's.
"""
from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from wucme import crypto
from wucme.repository import NoSpace, Repository

HOSTS = ["www.example.org"]


def make_cert(serial: int) -> tuple[bytes, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOSTS[0])])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(serial)
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=60))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in HOSTS]), False)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM), key


def pair_matches(repo: Repository) -> int:
    """The serial of the repository's certificate, after checking that WUCME_K is its key and
    WUCME_C carries the same key."""
    cert_file = repo.cert_path(HOSTS[0]).read_bytes()
    leaf = crypto.cert_load(cert_file)[0]
    key = serialization.load_pem_private_key(repo.key_path(HOSTS[0]).read_bytes(), None)
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    assert key.public_key().public_bytes(serialization.Encoding.DER, spki) == \
        leaf.public_key().public_bytes(serialization.Encoding.DER, spki)
    assert repo.key_path(HOSTS[0]).read_bytes() in cert_file
    return int(leaf.serial_number)


@pytest.fixture
def small_tmpfs() -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    where = Path(tempfile.mkdtemp(prefix="wucme-enospc-"))
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0755", "tmpfs", str(where)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        where.rmdir()
        pytest.skip(f"mounting a tmpfs is not permitted here: {r.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)
        where.rmdir()


def fill(directory: Path, leave_pages: int) -> None:
    """Fill the file system of *directory* until *leave_pages* pages are free."""
    st = os.statvfs(directory)
    free = st.f_bavail * st.f_frsize
    with open(directory / "filler", "wb") as f:
        f.write(b"\0" * max(0, free - leave_pages * st.f_frsize))
    st = os.statvfs(directory)
    assert st.f_bavail == leave_pages, st


def test_full_disk_keeps_the_pair_and_the_new_certificate(small_tmpfs: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WUCME_KEEP", "0")
    repo = Repository(small_tmpfs / "here")
    repo.ensure_writable()
    old_pem, old_key = make_cert(1)
    repo.save_certificate(HOSTS, old_key, old_pem, "http-01")
    assert pair_matches(repo) == 1
    # Room for one page: the new key's temporary file fits, the certificate's does not.  (Before,
    # WUCME_K then held the new key beside the old certificate, and the CA's certificate was lost.)
    fill(small_tmpfs, 1)
    new_pem, new_key = make_cert(2)
    with pytest.raises(NoSpace) as info:
        repo.save_certificate(HOSTS, new_key, new_pem, "http-01")
    e = info.value
    assert e.ident == "NOSPACE" and e.severity == "E"
    assert str(repo.path) in e.text and "old certificate and key are unchanged" in e.text
    assert pair_matches(repo) == 1
    assert repo.load_state(HOSTS[0]).serial == "01"  # as openssl prints it
    assert not [p for p in repo.path.iterdir() if p.name.startswith(".wucme-tmp")]
    # The new certificate and its key: in the exception, and in the rescue file that fitted.
    assert new_pem.strip() in e.pem
    assert e.rescue is not None and e.rescue.read_bytes() == e.pem
    assert e.rescue.stat().st_mode & 0o777 == 0o600 and e.rescue.name.startswith("WUCME_RESCUE_")
    # No room even for the rescue file: the message says the certificate is only in memory.
    e.rescue.unlink()
    (small_tmpfs / "filler").unlink()
    fill(small_tmpfs, 0)
    with pytest.raises(NoSpace) as info:
        repo.save_certificate(HOSTS, new_key, new_pem, "http-01")
    assert info.value.rescue is None and "memory" in info.value.text
    assert pair_matches(repo) == 1
    # Room again: the kept certificate is saved, as a pair.
    (small_tmpfs / "filler").unlink()
    repo.save_certificate(HOSTS, new_key, info.value.pem.split(b"-----BEGIN PRIVATE KEY-----")[0],
                          "http-01")
    assert pair_matches(repo) == 2


def test_the_wucme_command_says_nospace_exit_2(small_tmpfs: Path) -> None:
    """The message the operator sees: %WUCME-E-NOSPACE, exit 2 (it was %WUCME-F-BUG, exit 4)."""
    here = small_tmpfs / "here"
    repo = Repository(here)
    repo.ensure_writable()
    old_pem, old_key = make_cert(1)
    repo.save_certificate(HOSTS, old_key, old_pem, "http-01")
    fill(small_tmpfs, 1)
    code = f"""
import sys
from tests.unit.test_repository_faults import make_cert, HOSTS
from wucme.repository import Repository
from wucme.cli import _error
pem, key = make_cert(2)
try:
    Repository({str(here)!r}).save_certificate(HOSTS, key, pem, "http-01")
except Exception as e:
    sys.exit(_error(e.severity, e.ident, e.text))
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       cwd=Path(__file__).resolve().parents[2])
    assert r.returncode == 2 and r.stderr.startswith(f"%WUCME-E-NOSPACE, no space left in {here}"), r.stderr
    assert pair_matches(repo) == 1


def test_kill_between_certificate_and_state_the_state_follows_the_certificate(tmp_path: Path) -> None:
    """SIGKILL after the certificate's rename, before the state's: the state names the old
    serial; a read trusts the certificate and says so."""
    repo = Repository(tmp_path / "here")
    repo.ensure_writable()
    old_pem, old_key = make_cert(0x1A)
    repo.save_certificate(HOSTS, old_key, old_pem, "http-01")
    code = f"""
import os, signal
import wucme.vms.files as files
from tests.unit.test_repository_faults import make_cert, HOSTS
from wucme.repository import Repository
real = files.install_temp
def install(tmp, path, before=None, durable=True):
    if path.name.startswith("WUCME_S_"):
        os.kill(os.getpid(), signal.SIGKILL)
    return real(tmp, path, before, durable)
files.install_temp = install
pem, key = make_cert(0x2B)
Repository({str(repo.path)!r}).save_certificate(HOSTS, key, pem, "http-01")
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       cwd=Path(__file__).resolve().parents[2])
    assert r.returncode == -9, r.stderr
    assert pair_matches(repo) == 0x2B
    assert '"serial": "1A"' in repo.state_path(HOSTS[0]).read_text()  # the stale state on disk
    (m,) = repo.managed()
    assert m.state.serial == "2B"
    assert "the state named serial 1A" in m.state.last_result and "holds 2B" in m.state.last_result
    assert m.state.not_after is not None
    not_after = dt.datetime.fromisoformat(m.state.not_after.replace("Z", "+00:00"))
    assert not_after > dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=59)
