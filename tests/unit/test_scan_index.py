"""The repository scan's index (WUCME_SCAN.DAT): it answers only for files whose stat keys
have not changed, it is rebuilt when damaged, and a scan's memory does not grow with the
repository.  Real files and certificates; the only spy counts the certificate reads."""
from __future__ import annotations

import datetime as dt
import os
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from wucme import crypto, scanindex
from wucme._native import certscan
from wucme.crypto import key_pem
from wucme.repository import CertState, Managed, Repository
from wucme.vms.ods2 import ods2_name

NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
ISSUER_KEY = ec.generate_private_key(ec.SECP256R1())
LEAF_KEY = ec.generate_private_key(ec.SECP256R1())
ISSUER = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "scan index test issuer")])


def chain(name: str, days: int = 90, serial: int | None = None) -> bytes:
    leaf = (x509.CertificateBuilder().subject_name(x509.Name([])).issuer_name(ISSUER)
            .public_key(LEAF_KEY.public_key()).serial_number(serial or x509.random_serial_number())
            .not_valid_before(NOW - dt.timedelta(days=10)).not_valid_after(NOW + dt.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=True)
            .sign(ISSUER_KEY, hashes.SHA256()))
    return leaf.public_bytes(serialization.Encoding.PEM) + key_pem(LEAF_KEY)


def add(repo: Repository, name: str, *, state: bool = True, **kw: Any) -> Path:
    """One certificate as `issue` leaves it: WUCME_C (chain and key) and WUCME_S."""
    part = ods2_name(name)
    c = repo.path / f"WUCME_C_{part}.PEM"
    c.write_bytes(chain(name, **kw))
    if state:
        info = crypto.cert_info(c)
        assert info is not None
        st = CertState(hosts=[name], key_type="EC P-256", challenge="http-01", status="issued",
                       serial=crypto.serial_hex(info.serial_number),
                       not_after=info.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"))
        (repo.path / f"WUCME_S_{part}.JSON").write_bytes(st.to_json())
    return c


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Repository:
    monkeypatch.setenv("WUCME_LNM_DIR", str(tmp_path / "lnm"))
    # Files written by the test a moment ago count as settled (the racy rule has its own test).
    monkeypatch.setattr(scanindex, "RACY_SECONDS", 0.0)
    (tmp_path / "here").mkdir()
    r = Repository(tmp_path / "here")
    for name in ("a.example.org", "b.example.org", "c.example.org"):
        add(r, name)
    return r


class Reads:
    """How many certificate files the scan read (the index answers for the others)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.files: list[str] = []
        scanner = certscan.backend()
        real = scanner.cert_file

        def cert_file(path: str) -> certscan.CertInfo | None:
            self.files.append(os.path.basename(path))
            return real(path)
        monkeypatch.setattr(scanner, "cert_file", cert_file)
        monkeypatch.setattr(certscan, "backend", lambda: scanner)


def view(m: Managed) -> tuple[Any, ...]:
    """Everything a scan says of one certificate, but the leaf's DER (which the index does
    not hold: it is read from the file when asked for)."""
    info = m.info
    return (m.host_part, m.state, m.state.corrupt, m.problem,
            None if info is None else (info.serial_number, info.not_valid_before_utc,
                                       info.not_valid_after_utc, info.names, info.aki))


def unindexed(repo: Repository) -> list[tuple[Any, ...]]:
    """The scan as it was before the index: every file read."""
    parts = sorted({n[8:].rsplit(".", 1)[0] for n in os.listdir(repo.path)
                    if n.startswith(("WUCME_C_", "WUCME_S_")) and ";" not in n})
    return [view(repo._managed(p, certscan.backend())) for p in parts]


def scan(repo: Repository) -> list[tuple[Any, ...]]:
    return [view(m) for m in repo.scan()]


def test_unchanged_files_are_not_read_again(repo: Repository, monkeypatch: pytest.MonkeyPatch) -> None:
    first = scan(repo)
    assert (repo.path / scanindex.INDEX_FILE).exists()
    reads = Reads(monkeypatch)
    again = scan(repo)
    assert reads.files == [] and again == first == unindexed(repo)
    # What the index cannot hold, the leaf's DER, comes from the file when asked for.
    reads.files.clear()
    ders = [m.info.der for m in repo.scan() if m.info is not None]
    assert ders == [m.info.der for m in repo.managed() if m.info is not None] == [
        crypto.cert_load(repo.path / f"WUCME_C_{p}_EXAMPLE_ORG.PEM")[0].public_bytes(serialization.Encoding.DER)
        for p in "ABC"]
    assert len(reads.files) == 6


def test_same_size_rewritten_with_a_new_mtime_is_read_again(repo: Repository,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    scan(repo)
    c = repo.path / "WUCME_C_B_EXAMPLE_ORG.PEM"
    st = c.stat()
    data = c.read_bytes()
    c.write_bytes(data)
    os.utime(c, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    reads = Reads(monkeypatch)
    got = scan(repo)
    assert reads.files == ["WUCME_C_B_EXAMPLE_ORG.PEM"]
    assert got == unindexed(repo)


def test_new_content_with_the_old_mtime_restored_is_read_again(repo: Repository,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Same size (same name, same key, only the serial differs), mtime put back: the ctime
    still tells, and the new certificate is what the scan gives."""
    scan(repo)
    c = repo.path / "WUCME_C_B_EXAMPLE_ORG.PEM"
    st = c.stat()
    old = crypto.cert_info(c)
    assert old is not None
    # Another serial of the same length; ECDSA signatures vary by a byte or two: try a few.
    new = next(pem for i in range(1, 200)
               for pem in [chain("b.example.org", serial=old.serial_number ^ i)] if len(pem) == st.st_size)
    with open(c, "r+b") as f:  # in place: same inode
        f.write(new)
    os.utime(c, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (c.stat().st_size, c.stat().st_mtime_ns, c.stat().st_ino) == (st.st_size, st.st_mtime_ns, st.st_ino)
    reads = Reads(monkeypatch)
    got = {v[0]: v for v in scan(repo)}
    assert reads.files == ["WUCME_C_B_EXAMPLE_ORG.PEM"]
    assert old is not None and got["B_EXAMPLE_ORG"][4][0] != old.serial_number
    assert list(got.values()) == unindexed(repo)


def test_a_file_renamed_over_with_the_same_mtime_is_read_again(repo: Repository,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A new inode (a copy renamed into place, as `issue` and the admins' tools do)."""
    scan(repo)
    c = repo.path / "WUCME_C_C_EXAMPLE_ORG.PEM"
    st = c.stat()
    tmp = repo.path / "copy.tmp"
    tmp.write_bytes(chain("c.example.org", days=30))
    os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(tmp, c)
    assert c.stat().st_ino != st.st_ino
    reads = Reads(monkeypatch)
    got = scan(repo)
    assert reads.files == ["WUCME_C_C_EXAMPLE_ORG.PEM"]
    assert got == unindexed(repo)


def test_removed_and_added_files(repo: Repository, monkeypatch: pytest.MonkeyPatch) -> None:
    scan(repo)
    (repo.path / "WUCME_C_A_EXAMPLE_ORG.PEM").unlink()          # state left: "missing", due
    (repo.path / "WUCME_S_B_EXAMPLE_ORG.JSON").unlink()         # certificate left: hosts from it
    (repo.path / "WUCME_S_C_EXAMPLE_ORG.JSON").write_text("{")  # a state that does not parse
    add(repo, "d.example.org")
    reads = Reads(monkeypatch)
    got = scan(repo)
    # Only the new certificate is read: a state changed or gone leaves its certificate's entry.
    assert reads.files == ["WUCME_C_D_EXAMPLE_ORG.PEM"]
    assert got == unindexed(repo)
    a, b, c, d = repo.managed()
    assert a.problem == "WUCME_C_A_EXAMPLE_ORG.PEM missing" and a.info is None
    assert b.state.hosts == ["b.example.org"] and b.info is not None
    assert c.state.corrupt and "state file unreadable" in c.state.last_result
    # And once more, from the index written by that scan: the same answers, no certificate
    # read (the state that does not parse is read again: the index keeps only good ones).
    reads.files.clear()
    assert scan(repo) == got and reads.files == []


@pytest.mark.parametrize("damage", ["flipped byte", "truncated", "other format", "empty", "garbage"])
def test_a_damaged_index_is_rebuilt(repo: Repository, monkeypatch: pytest.MonkeyPatch, damage: str) -> None:
    first = scan(repo)
    index = repo.path / scanindex.INDEX_FILE
    data = index.read_bytes()
    if damage == "flipped byte":
        pos = data.index(b"b.example.org")
        data = data[:pos] + b"x" + data[pos + 1:]  # a name changed: only the checksum tells
    elif damage == "truncated":
        data = data[:len(data) * 2 // 3]
    elif damage == "other format":
        data = data.replace(b'"wucme-scan-index":5', b'"wucme-scan-index":9')
    elif damage == "empty":
        data = b""
    else:
        data = os.urandom(len(data))
    index.write_bytes(data)
    reads = Reads(monkeypatch)
    assert scan(repo) == first  # the files, not the damaged index, answer
    assert reads.files  # (some were read again)
    reads.files.clear()
    assert scan(repo) == first and reads.files == []  # rebuilt
    assert index.read_bytes().startswith(b'{"wucme-scan-index":5,')


def test_files_changed_just_before_a_scan_are_read_again(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The racy rule: a file changed within RACY_SECONDS of the scan could change again in the
    same timestamp granule, so its key is not recorded and the next scan reads it."""
    monkeypatch.setenv("WUCME_LNM_DIR", str(tmp_path / "lnm"))
    (tmp_path / "here").mkdir()
    repo = Repository(tmp_path / "here")
    add(repo, "a.example.org")
    c = add(repo, "b.example.org")
    old = c.stat().st_mtime_ns - 10 * 10**9
    for p in repo.path.iterdir():
        if "A_EXAMPLE" in p.name:
            os.utime(p, ns=(old, old))
    monkeypatch.setattr(scanindex, "RACY_SECONDS", 5.0)  # now-5 s: a's mtime is older, its ctime is not
    scan(repo)
    reads = Reads(monkeypatch)
    scan(repo)
    assert sorted(reads.files) == ["WUCME_C_A_EXAMPLE_ORG.PEM", "WUCME_C_B_EXAMPLE_ORG.PEM"]
    assert not (repo.path / scanindex.INDEX_FILE).exists()  # nothing settled: no index at all


def test_an_abandoned_scan_leaves_the_index_alone(repo: Repository) -> None:
    scan(repo)
    index = repo.path / scanindex.INDEX_FILE
    before = index.read_bytes()
    add(repo, "0.example.org")  # sorts first: the scan differs from the index at once
    it: Iterator[Managed] = repo.scan()
    assert next(it).host_part == "0_EXAMPLE_ORG"
    del it
    assert index.read_bytes() == before
    assert not [n for n in os.listdir(repo.path) if n.startswith(".wucme-tmp")]


def test_an_index_that_cannot_be_written_is_done_without(repo: Repository,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Its name taken by a directory (which defeats even root): every scan reads the files,
    gives the same answers, and leaves no temporary file behind."""
    (repo.path / scanindex.INDEX_FILE).mkdir()
    expected = unindexed(repo)
    reads = Reads(monkeypatch)
    for _ in range(2):
        reads.files.clear()
        assert scan(repo) == expected and len(reads.files) == 3
    assert not [n for n in os.listdir(repo.path) if n.startswith(".wucme-tmp")]


def _peak_of_a_pass_over(repo: Repository) -> int:
    """tracemalloc's peak over two streamed scans, as the pass makes them (a pre-filtered
    look, then every certificate, each dropped once looked at)."""
    tracemalloc.start()
    try:
        for _ in repo.scan(lambda e: e.hosts is None):
            pass
        seen = 0
        for m in repo.scan():
            seen += len(m.hosts)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_the_memory_of_a_scan_does_not_grow_with_the_repository(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """N and 10 N certificates: a scan holds nothing per certificate (the directory is not even
    listed into memory when its names are the index's), where a list of them holds over a KiB
    each."""
    monkeypatch.setenv("WUCME_LNM_DIR", str(tmp_path / "lnm"))
    monkeypatch.setattr(scanindex, "RACY_SECONDS", 0.0)
    peaks = []
    for n in (150, 1500):
        (tmp_path / str(n)).mkdir()
        repo = Repository(tmp_path / str(n))
        pem = chain("x.example.org")
        for i in range(n):
            part = f"H{i:05d}_EXAMPLE_ORG"
            (repo.path / f"WUCME_C_{part}.PEM").write_bytes(pem)
            (repo.path / f"WUCME_S_{part}.JSON").write_bytes(
                CertState(hosts=[f"h{i:05d}.example.org", "x.example.org"]).to_json())
        for _ in repo.scan():  # builds the index
            pass
        peaks.append(_peak_of_a_pass_over(repo))
        if n == 150:
            tracemalloc.start()
            held = repo.managed()  # what holding every certificate costs, for scale
            per_cert_held = tracemalloc.get_traced_memory()[1] / n
            tracemalloc.stop()
            del held
    growth = (peaks[1] - peaks[0]) / 1350
    print(f"scan peaks {peaks}, {growth:.0f} bytes per certificate more; a list: {per_cert_held:.0f}")
    assert growth < 16, f"{growth:.0f} bytes more per certificate (a list of them: {per_cert_held:.0f})"
    assert per_cert_held > 500


def test_an_index_whose_names_still_match_never_brings_back_a_certificate_that_is_gone(
        repo: Repository) -> None:
    """The header's digest of the names is what lets a scan take the index's certificates
    without listing the directory.  Should the digest match while a certificate of the index
    has no file left (its names came and went between two readings), it is passed over and
    the next scan lists the directory."""
    add(repo, "z.example.org")
    scan(repo)
    for n in ("WUCME_C_Z_EXAMPLE_ORG.PEM", "WUCME_S_Z_EXAMPLE_ORG.JSON"):
        (repo.path / n).unlink()
    index = repo.path / scanindex.INDEX_FILE
    fd = os.open(repo.path, os.O_RDONLY)
    try:
        names = Repository._names(fd)
    finally:
        os.close(fd)
    head, _, body = index.read_bytes().partition(b"\n")
    index.write_bytes(scanindex.header(names) + body)  # as if Z's names were still there
    assert [m.host_part for m in repo.scan()] == ["A_EXAMPLE_ORG", "B_EXAMPLE_ORG", "C_EXAMPLE_ORG"]
    assert b"Z_EXAMPLE_ORG" not in index.read_bytes()
    assert scan(repo) == unindexed(repo)
    assert index.read_bytes().startswith(scanindex.header(names))  # listed, and its digest kept


def test_a_snapshot_scan_gives_what_the_scan_before_it_saw(repo: Repository,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The renewal pass looks twice (hosts, then due): the second look is the first one's
    snapshot, as a list of the certificates was, taken from the index that scan left without
    reading or even stat-ing the files; once the index is not that one, an ordinary scan."""
    scan(repo)  # builds the index
    first = scan(repo)
    c = repo.path / "WUCME_C_B_EXAMPLE_ORG.PEM"
    c.write_bytes(chain("b.example.org", days=30))  # changed after the first look
    reads = Reads(monkeypatch)
    assert [view(m) for m in repo.scan(snapshot=True)] == first and reads.files == []
    # Only once: a further snapshot has no scan before it to be the snapshot of.
    again = [view(m) for m in repo.scan(snapshot=True)]
    assert reads.files == ["WUCME_C_B_EXAMPLE_ORG.PEM"] and again != first and again == unindexed(repo)
    # The index replaced by another process in between: an ordinary scan.
    scan(repo)
    index = repo.path / scanindex.INDEX_FILE
    copy = repo.path / "index.copy"
    copy.write_bytes(index.read_bytes())
    os.replace(copy, index)
    c.write_bytes(chain("b.example.org", days=20))
    reads.files.clear()
    assert [view(m) for m in repo.scan(snapshot=True)] == unindexed(repo)
    assert reads.files[0] == "WUCME_C_B_EXAMPLE_ORG.PEM"


def test_the_index_keeps_whether_a_states_hosts_are_valid(repo: Repository) -> None:
    """The pass's check of every state's hosts before any request takes the index's answer for
    a state it answers for: the answer is core.ident's, kept per line."""
    st = CertState(hosts=["../../etc/evil", "a.example.org"], status="issued")
    (repo.path / "WUCME_S_EVIL.JSON").write_bytes(st.to_json())
    scan(repo)
    reader = scanindex.IndexReader(f"{repo.path}/")
    try:
        ok = {e.part: e.hosts_ok for e in reader.entries()}
    finally:
        reader.close()
    assert ok == {"A_EXAMPLE_ORG": True, "B_EXAMPLE_ORG": True, "C_EXAMPLE_ORG": True, "EVIL": False}
    seen: list[str] = []

    def may_be_bad(e: scanindex.Entry) -> bool:
        seen.append(e.part)
        return not e.hosts_ok
    assert [m.host_part for m in repo.scan(may_be_bad)] == ["EVIL"] and len(seen) == 4


class Listings:
    """How many times a scan listed the repository directory for its names."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        real = Repository._names

        def names(dfd: int) -> tuple[str, int]:
            self.count += 1
            return real(dfd)
        monkeypatch.setattr(Repository, "_names", staticmethod(names))


def settle(repo: Repository) -> None:
    """Let the directory's last change age past the racy limit (50 ms here), then scan once:
    the scan lists the directory, finds the index's names and vouches for its key."""
    time.sleep(0.06)
    scan(repo)


def dir_field(repo: Repository) -> bytes:
    head = (repo.path / scanindex.INDEX_FILE).read_bytes().split(b"\n", 1)[0]
    return head.split(b'"dir":"')[1][:len(scanindex.NO_DIR_KEY)]


def test_a_directory_whose_key_is_vouched_for_is_not_listed(repo: Repository,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The header's DIR: written in place by a scan that listed the directory and found the
    index's names; while stat(2) of the directory gives it, no scan lists the directory."""
    first = scan(repo)  # (writes the index: its rename changes the directory)
    assert dir_field(repo) == scanindex.NO_DIR_KEY
    settle(repo)
    assert dir_field(repo) == scanindex.dir_key(os.stat(repo.path))
    listings = Listings(monkeypatch)
    before = (repo.path / scanindex.INDEX_FILE).stat()
    assert scan(repo) == first and scan(repo) == first
    assert listings.count == 0
    after = (repo.path / scanindex.INDEX_FILE).stat()
    assert (after.st_mtime_ns, after.st_ino) == (before.st_mtime_ns, before.st_ino)  # not written


@pytest.mark.parametrize("change", ["added", "removed", "renamed over", "state added"])
def test_a_name_that_comes_or_goes_is_seen_though_the_key_was_vouched_for(
        repo: Repository, monkeypatch: pytest.MonkeyPatch, change: str) -> None:
    """Every create, unlink and rename in the directory moves its key: the scan then lists
    it, as before the index vouched for it, and answers as a scan that reads every file."""
    add(repo, "d.example.org", state=False)
    scan(repo)
    settle(repo)
    assert dir_field(repo) == scanindex.dir_key(os.stat(repo.path))
    if change == "added":
        add(repo, "e.example.org")
    elif change == "removed":
        (repo.path / "WUCME_C_B_EXAMPLE_ORG.PEM").unlink()
    elif change == "renamed over":
        tmp = repo.path / "new.tmp"
        tmp.write_bytes(chain("c.example.org", days=30))
        os.replace(tmp, repo.path / "WUCME_C_C_EXAMPLE_ORG.PEM")
    else:
        st = CertState(hosts=["d.example.org"], key_type="EC P-256", challenge="http-01", status="issued")
        (repo.path / "WUCME_S_D_EXAMPLE_ORG.JSON").write_bytes(st.to_json())
    listings = Listings(monkeypatch)
    assert scan(repo) == unindexed(repo)
    assert listings.count == 1


def test_a_directory_changed_just_before_a_scan_is_not_vouched_for(repo: Repository,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A name changed within the same tick of the file system's clock would leave the
    directory's key as it was: a key younger than the racy limit is not written."""
    scan(repo)
    monkeypatch.setattr(scanindex, "RACY_SECONDS", 3600.0)
    scan(repo)
    assert dir_field(repo) == scanindex.NO_DIR_KEY


def test_the_write_probe_leaves_the_directory_as_it_was(repo: Repository) -> None:
    """ensure_writable() proves a file can be made without naming one (O_TMPFILE): a pass
    that writes nothing leaves the directory's key, and the index's DIR, valid."""
    before = os.stat(repo.path)
    repo.ensure_writable()
    after = os.stat(repo.path)
    assert (after.st_mtime_ns, after.st_ctime_ns) == (before.st_mtime_ns, before.st_ctime_ns)
    assert not [n for n in os.listdir(repo.path) if n.startswith(".")]


@pytest.mark.parametrize("scanner", [certscan.PURE, certscan.NATIVE], ids=["pure", "native"])
def test_both_scanners_compare_the_files_keys_alike(repo: Repository, scanner: certscan.Scanner | None) -> None:
    """The first look's question for each certificate, Scanner.same_keys (two fstatat(2)
    in native/certscan.c, two os.stat in the twin): the keys the index writes, compared."""
    if scanner is None:
        pytest.skip("the native certificate scan was not built")
    c, s = repo.path / "WUCME_C_A_EXAMPLE_ORG.PEM", repo.path / "WUCME_S_A_EXAMPLE_ORG.JSON"
    ck, sk = certscan.file_key(c.stat()), certscan.file_key(s.stat())
    assert ck == b"%d,%d,%d,%d" % tuple(scanindex.file_key(c.stat()))
    fd = os.open(repo.path, os.O_RDONLY)
    try:
        assert scanner.same_keys(fd, b"A_EXAMPLE_ORG", ck, sk)
        assert not scanner.same_keys(fd, b"A_EXAMPLE_ORG", ck, sk[:-1])
        assert not scanner.same_keys(fd, b"A_EXAMPLE_ORG", ck + b"0", sk)
        assert not scanner.same_keys(fd, b"B_EXAMPLE_ORG", ck, sk)  # another file's keys
        for bad in (b"", b"../here/A_EXAMPLE_ORG", b"A" * 200, b"A\0B"):
            assert not scanner.same_keys(fd, bad, ck, sk)
        st = c.stat()
        os.utime(c, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
        assert not scanner.same_keys(fd, b"A_EXAMPLE_ORG", ck, sk)
        assert scanner.same_keys(fd, b"A_EXAMPLE_ORG", certscan.file_key(c.stat()), sk)
        s.unlink()
        assert not scanner.same_keys(fd, b"A_EXAMPLE_ORG", certscan.file_key(c.stat()), sk)
    finally:
        os.close(fd)
