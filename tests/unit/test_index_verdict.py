"""The renewal pass decides "not due" straight from the scan index's line (renewal.
_index_verdict, the DUE field of wucme.scanindex): it must give due()'s answer, to the
microsecond at the boundaries, and leave every other case to due().  Real certificates
and files; the clock is the pass's `now`."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from wucme import renewal, scanindex
from wucme.core.times import renewal_threshold
from wucme.crypto import key_pem
from wucme.repository import CertState, Managed, Repository
from wucme.vms.ods2 import ods2_name

KEY = ec.generate_private_key(ec.SECP256R1())
ISSUER = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "index verdict test issuer")])
US = dt.timedelta(microseconds=1)
# A lifetime that a third of does not divide into whole microseconds (rounding is due()'s).
NB = dt.datetime(2026, 9, 1, 0, 0, 7, tzinfo=dt.timezone.utc)
NA = NB + dt.timedelta(days=90, seconds=1)
SHORT_NA = NB + dt.timedelta(days=6, seconds=1)  # 10 days or less: half the lifetime


def add(repo: Repository, name: str, *, not_after: dt.datetime = NA, leaf_names: tuple[str, ...] = (),
        hosts: list[str] | None = None, status: str = "issued") -> None:
    leaf = (x509.CertificateBuilder().subject_name(x509.Name([])).issuer_name(ISSUER)
            .public_key(KEY.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(NB).not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in leaf_names or (name,)]),
                           critical=True)
            .sign(KEY, hashes.SHA256()))
    part = ods2_name(name)
    (repo.path / f"WUCME_C_{part}.PEM").write_bytes(leaf.public_bytes(serialization.Encoding.PEM) + key_pem(KEY))
    st = CertState(hosts=hosts or [name], key_type="EC P-256", challenge="http-01", status=status)
    (repo.path / f"WUCME_S_{part}.JSON").write_bytes(st.to_json())


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Repository:
    monkeypatch.setenv("WUCME_LNM_DIR", str(tmp_path / "lnm"))
    monkeypatch.setattr(scanindex, "RACY_SECONDS", 0.0)  # files written a moment ago count as settled
    (tmp_path / "here").mkdir()
    r = Repository(tmp_path / "here")
    add(r, "plain.example.org")
    add(r, "short.example.org", not_after=SHORT_NA)
    add(r, "revoked.example.org", status="revoked")
    add(r, "lacking.example.org", hosts=["lacking.example.org", "other.example.org"])
    add(r, "upper.example.org", hosts=["UPPER.example.org"])
    add(r, "bad.example.org", hosts=["../../etc/evil"], leaf_names=("bad.example.org",))
    list(r.scan())  # writes the index
    return r


def entries(repo: Repository) -> dict[str, scanindex.Entry]:
    reader = scanindex.IndexReader(f"{repo.path}/")
    try:
        return {e.part: e for e in reader.entries()}
    finally:
        reader.close()


def managed(repo: Repository) -> dict[str, Managed]:
    return {m.host_part: m for m in repo.scan()}


def check(e: scanindex.Entry, m: Managed, now: dt.datetime, days: float | None,
          limit: dt.timedelta | None) -> tuple[str, str] | None:
    """The index's verdict, checked against due(): when it answers, due() says "not due" for
    the same reason and the certificate is outside the limit."""
    v = renewal._index_verdict(e, scanindex.micros(now), days,
                               None if limit is None else limit // US)
    is_due, why = renewal.due(m, now, None, days)
    if v is not None:
        assert (is_due, why) == (False, v[1])
        assert v[0].split(",") == m.hosts
        assert m.info is not None and (limit is None or m.info.not_valid_after_utc - now >= limit)
    return v


@pytest.mark.parametrize("part", ["PLAIN_EXAMPLE_ORG", "SHORT_EXAMPLE_ORG", "UPPER_EXAMPLE_ORG"])
@pytest.mark.parametrize("days", [None, 20, 2.5])
def test_the_index_decides_as_due_does_at_the_boundaries(repo: Repository, part: str,
                                                          days: float | None) -> None:
    e, m = entries(repo)[part], managed(repo)[part]
    na = NA if part != "SHORT_EXAMPLE_ORG" else SHORT_NA
    turn = na - (renewal_threshold(NB, na) if days is None else dt.timedelta(days=days))
    times = (NB, turn - US, turn, turn + US, na - US, na, na + US)
    for limit in (None, dt.timedelta(days=7), dt.timedelta(days=1)):
        decided = [check(e, m, now, days, limit) is not None for now in times]
        # Every "not due" outside the limit is the index's; a due one, or one within the
        # limit (a candidate for the expiry warnings), is left to due().
        assert decided == [not renewal.due(m, now, None, days)[0] and (limit is None or na - now >= limit)
                           for now in times]
    # Up to the turn itself not due (less than the threshold left is due), after it due.
    if turn > NB:
        assert renewal.due(m, turn, None, days)[0] is False and renewal.due(m, turn + US, None, days)[0] is True
        assert check(e, m, turn, days, None) is not None


@pytest.mark.parametrize("part", ["REVOKED_EXAMPLE_ORG", "LACKING_EXAMPLE_ORG", "BAD_EXAMPLE_ORG"])
def test_what_due_must_look_at_is_left_to_it(repo: Repository, part: str) -> None:
    """A revoked state, a host the leaf lacks, a host that is none: no DUE field."""
    e = entries(repo)[part]
    assert e.due == b"-"
    assert check(e, managed(repo)[part], NB + dt.timedelta(days=1), None, None) is None


def test_a_line_of_the_previous_format_is_not_read_and_the_index_rebuilt(repo: Repository) -> None:
    index = repo.path / scanindex.INDEX_FILE
    lines = index.read_bytes().split(b"\n")
    old = lines[0].replace(b'"wucme-scan-index":5', b'"wucme-scan-index":4')
    index.write_bytes(b"\n".join([old] + lines[1:]))
    assert scanindex.IndexReader(f"{repo.path}/").names is None  # not taken
    got = managed(repo)
    assert index.read_bytes().startswith(b'{"wucme-scan-index":5,')
    assert set(entries(repo)) == set(got)
