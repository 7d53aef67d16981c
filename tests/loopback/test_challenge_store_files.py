"""The challenge store's files as the responders read them: the record format, the 64 KiB read
limit, planted and damaged entries, what `purge` removes and what it leaves, and who is trusted.

tests/loopback/test_challenge_store.py covers the round trips; these scenarios pin the edges
(each at the limit and one past it) that a responder running as another user relies on.
"""
from __future__ import annotations

import json
import os
import pwd
import stat
import time
from pathlib import Path

import pytest

from wucme.challenge import storefile
from wucme.challenge.store import ChallengeStore
from wucme.vms.atomic import TEMP_PREFIX

TOKEN = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"
KEYAUTH = TOKEN + ".9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"
NOBODY = pwd.getpwnam("nobody").pw_uid


def only_entry(directory: Path) -> Path:
    (entry,) = directory.iterdir()
    return entry


def rewrite(entry: Path, record: object) -> None:
    """Replace an entry's content as its owner would (same file, same owner and mode)."""
    entry.write_bytes(json.dumps(record, separators=(",", ":")).encode())


def test_an_http01_entry_is_a_versioned_json_record(tmp_path: Path) -> None:
    store = ChallengeStore(tmp_path)
    before = time.time()
    store.put(TOKEN, KEYAUTH, "www.example.org", "http-01", ttl=600)
    entry = only_entry(tmp_path)
    record = json.loads(entry.read_bytes())
    assert sorted(record) == ["expires", "ident", "keyauth", "token", "type", "v"]
    assert (record["v"], record["type"], record["token"], record["ident"], record["keyauth"]) == (
        1, "http-01", TOKEN, "www.example.org", KEYAUTH)
    assert before + 600 <= record["expires"] <= time.time() + 600
    assert stat.S_IMODE(entry.stat().st_mode) == 0o644  # the web server's user reads it


@pytest.mark.parametrize("ident, stored", [
    ("www.example.org.", "www.example.org"),  # the root's dot goes...
    ("MAIL.EXAMPLE.BOX.", "MAIL.EXAMPLE.BOX"),  # ...and only it: letters and case stay
    ("192.0.2.7", "192.0.2.7"),
    ("2001:db8::1", "2001:db8::1"),
])
def test_a_tls_alpn01_entry_keeps_the_identifier_as_ordered_without_the_root_dot(
        tmp_path: Path, ident: str, stored: str) -> None:
    store = ChallengeStore(tmp_path)
    before = time.time()
    store.alpn_put(ident, KEYAUTH, ttl=300)
    record = json.loads(only_entry(tmp_path).read_bytes())
    assert sorted(record) == ["expires", "ident", "keyauth", "sni", "type", "v"]
    assert (record["v"], record["type"], record["ident"], record["keyauth"]) == (1, "tls-alpn-01", stored, KEYAUTH)
    entry = store.alpn_lookup(ident)
    assert entry is not None and entry.ident == stored and entry.key_authorization == KEYAUTH
    assert before + 300 <= entry.expires <= time.time() + 300


def test_refusals_say_what_was_refused(tmp_path: Path) -> None:
    store = ChallengeStore(tmp_path)
    with pytest.raises(ValueError) as bad_token:
        store.put("a/b", KEYAUTH, "a.example", "http-01")
    assert str(bad_token.value) == "invalid challenge token 'a/b'"
    with pytest.raises(ValueError) as bad_ident:
        store.alpn_put("bad/ident", KEYAUTH)
    assert str(bad_ident.value) == "invalid identifier 'bad/ident'"
    for unprintable in (KEYAUTH + "\n", "a\x00b", KEYAUTH + "\x7f"):
        for put in (lambda: store.put(TOKEN, unprintable, "a.example", "http-01"),
                    lambda: store.alpn_put("a.example", unprintable)):
            with pytest.raises(ValueError) as bad_keyauth:
                put()
            assert str(bad_keyauth.value) == "invalid key authorization"
    assert os.listdir(tmp_path) == []


def test_an_sni_that_is_an_ip_literal_is_refused_but_its_reverse_name_is_answered(tmp_path: Path) -> None:
    """RFC 8738 §6: validation servers send the reverse-DNS name; RFC 6066 §3 bars IPs in SNI."""
    store = ChallengeStore(tmp_path)
    store.alpn_put("192.0.2.7", KEYAUTH)
    assert store.alpn_lookup("192.0.2.7", sni=True) is None
    entry = store.alpn_lookup("7.2.0.192.in-addr.arpa", sni=True)
    assert entry is not None and entry.ident == "192.0.2.7"
    assert store.alpn_lookup("192.0.2.7") == entry  # the identifier itself, from `issue`
    for junk in ("", b"7.2.0.192.in-addr.arpa", None, 7):
        assert store.alpn_lookup(junk) is None  # type: ignore[arg-type]


def test_an_entry_is_read_up_to_64_kib_and_no_further(tmp_path: Path) -> None:
    store = ChallengeStore(tmp_path)
    store.put(TOKEN, KEYAUTH, "a.example", "http-01")
    entry = only_entry(tmp_path)
    record = json.loads(entry.read_bytes())
    fixed = len(json.dumps(dict(record, keyauth=""), separators=(",", ":")).encode())
    record["keyauth"] = "k" * (64 * 1024 - fixed)
    rewrite(entry, record)
    assert entry.stat().st_size == 64 * 1024
    assert store.get(TOKEN) == record["keyauth"]
    record["keyauth"] += "k"
    rewrite(entry, record)
    assert entry.stat().st_size == 64 * 1024 + 1
    assert store.get(TOKEN) is None  # cut at 64 KiB: not JSON, not answered
    record["keyauth"] = "é" * 40000  # 80000 bytes in fewer than 64 Ki characters: bytes count
    entry.write_bytes(json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode())
    assert store.get(TOKEN) is None


@pytest.mark.parametrize("damage", [
    [1, 2, 3],  # JSON, but not a record
    "a string",
    {"v": 1, "token": TOKEN, "keyauth": KEYAUTH},  # no expiry
    {"v": 1, "token": TOKEN, "keyauth": KEYAUTH, "expires": "tomorrow"},
    {"v": 1, "token": TOKEN, "keyauth": 12345, "expires": 4e9},  # a key authorization not text
    {"v": 1, "token": "another", "keyauth": KEYAUTH, "expires": 4e9},  # not this token's
])
def test_a_damaged_http01_entry_answers_nothing(tmp_path: Path, damage: object) -> None:
    store = ChallengeStore(tmp_path)
    store.put(TOKEN, KEYAUTH, "a.example", "http-01")
    rewrite(only_entry(tmp_path), damage)
    assert store.get(TOKEN) is None
    assert len(store) == (1 if isinstance(damage, dict) and "expires" in damage
                          and isinstance(damage["expires"], float) else 0)


@pytest.mark.parametrize("field, value", [("ident", None), ("keyauth", None), ("ident", 7), ("keyauth", ["x"]),
                                          ("sni", "other.example")])
def test_a_damaged_tls_alpn01_entry_answers_nothing(tmp_path: Path, field: str, value: object) -> None:
    store = ChallengeStore(tmp_path)
    store.alpn_put("www.example.org", KEYAUTH)
    entry = only_entry(tmp_path)
    record = json.loads(entry.read_bytes())
    record[field] = value
    rewrite(entry, record)
    assert store.alpn_lookup("www.example.org") is None and store.alpn_get("www.example.org") is None


def test_a_missing_store_is_empty_and_purge_removes_nothing(tmp_path: Path) -> None:
    store = ChallengeStore(tmp_path / "never-made")
    assert len(store) == 0 and store.purge() == 0 and store.get(TOKEN) is None
    assert not (tmp_path / "never-made").exists()


def test_purge_removes_debris_older_than_a_minute_and_no_younger(tmp_path: Path) -> None:
    store = ChallengeStore(tmp_path)
    now = 2_000_000_000.0
    for name, age in (("a-minute", 60), ("a-minute-and-a-second", 61), ("just-written", 0)):
        debris = tmp_path / f"{TEMP_PREFIX}{name}"
        debris.write_text("partial")
        os.utime(debris, ns=(int((now - age) * 1e9),) * 2)
    assert store.purge(now=now) == 1
    assert sorted(os.listdir(tmp_path)) == [f"{TEMP_PREFIX}a-minute", f"{TEMP_PREFIX}just-written"]


def test_a_crashed_writers_debris_goes_at_the_stores_first_write_and_later_debris_at_purge(
        tmp_path: Path) -> None:
    """A store scans its directory for crashed writers' temporaries once, at its first write, not
    before every entry (a 100-name order's writes each scanned the others', docs/performance.md)."""
    def debris(name: str) -> Path:
        path = tmp_path / f"{TEMP_PREFIX}{name}"
        path.write_text("partial")
        os.utime(path, (time.time() - 7200,) * 2)  # two hours old: its writer is long gone
        return path

    store = ChallengeStore(tmp_path)
    first = debris("before-the-first-write")
    store.put(TOKEN, KEYAUTH, "www.example.org", "http-01")
    assert not first.exists()
    later = debris("after-the-first-write")
    store.put("b" * 43, "b" * 43 + KEYAUTH[43:], "www.example.net", "http-01")
    assert later.exists() and store.get("b" * 43) is not None
    assert store.purge() == 1 and not later.exists()
    assert ChallengeStore(tmp_path).get(TOKEN) == KEYAUTH  # the entries stay


def test_purge_judges_expiry_by_the_time_it_is_given(tmp_path: Path) -> None:
    store = ChallengeStore(tmp_path)
    store.put(TOKEN, KEYAUTH, "a.example", "http-01", ttl=-60)  # expired a minute ago
    expires = json.loads(only_entry(tmp_path).read_bytes())["expires"]
    assert store.purge(now=expires - 1) == 0  # not yet expired at that time: kept
    assert store.purge(now=expires) == 1  # expiring at that instant: gone
    assert os.listdir(tmp_path) == []


def test_an_entry_is_answered_until_its_expiry_and_not_at_that_instant(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same instant as purge's: an entry whose expiry is now is gone for the responders too."""
    store = ChallengeStore(tmp_path)
    store.put(TOKEN, KEYAUTH, "a.example", "http-01", ttl=60)
    expires = json.loads(only_entry(tmp_path).read_bytes())["expires"]
    monkeypatch.setattr(storefile.time, "time", lambda: expires - 0.001)
    assert store.get(TOKEN) == KEYAUTH
    assert storefile.http01_keyauth(tmp_path, TOKEN) == KEYAUTH
    monkeypatch.setattr(storefile.time, "time", lambda: expires)
    assert store.get(TOKEN) is None
    assert storefile.http01_keyauth(tmp_path, TOKEN) is None


def test_purge_leaves_files_that_are_not_entries_and_goes_on_past_them(tmp_path: Path) -> None:
    store = ChallengeStore(tmp_path)
    for i in range(20):
        store.put(f"token{i}", f"token{i}.k", "a.example", "http-01", ttl=-1)
    foreign = ["H_NOTES.TXT", "README.DAT", "A_", "notes"]
    for name in foreign:
        (tmp_path / name).write_text("not an entry")
    (tmp_path / f"{TEMP_PREFIX}gone").symlink_to(tmp_path / "nowhere")  # debris that vanished
    assert store.purge() == 20
    assert sorted(os.listdir(tmp_path)) == sorted(foreign + [f"{TEMP_PREFIX}gone"])


@pytest.mark.skipif(os.geteuid() != 0, reason="handing the store to another user needs root")
def test_a_store_owned_by_a_service_user_answers_from_its_entries_and_roots(tmp_path: Path) -> None:
    """Readers trust root and the directory's owner, whoever they run as."""
    store = ChallengeStore(tmp_path / "ch")
    store.put(TOKEN, KEYAUTH, "a.example", "http-01")
    store.alpn_put("www.example.org", KEYAUTH)
    http = next(p for p in store.directory.iterdir() if p.name.startswith("H_"))
    os.chown(store.directory, NOBODY, -1)
    os.chown(http, NOBODY, -1)  # written by the directory's owner; the other entry by root
    assert store.get(TOKEN) == KEYAUTH and store.alpn_get("www.example.org") == KEYAUTH
    assert len(store) == 2


def test_entries_are_not_fsynced_and_a_torn_one_is_ignored_then_purged(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An entry matters only while its order runs: it is renamed into place whole but never
    fsynced (docs/performance.md, "`wucme issue`: the lean path"); what a crash of the machine
    could leave instead, an empty entry, answers nothing and goes at the next purge.  The
    repository's own files keep their fsyncs."""
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    store = ChallengeStore(tmp_path / "store")
    store.put(TOKEN, KEYAUTH, "www.example.org", "http-01", ttl=600)
    assert store.get(TOKEN) == KEYAUTH and synced == []
    from wucme.vms.atomic import atomic_write

    atomic_write(tmp_path / "durable", b"x", 0o600)
    assert len(synced) == 2  # the file, then its directory
    only_entry(tmp_path / "store").write_bytes(b"")  # as a crash before the data reached the disk
    assert store.get(TOKEN) is None
    assert store.purge() == 1 and list((tmp_path / "store").iterdir()) == []
