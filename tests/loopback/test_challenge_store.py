"""The challenge store: the on-disk contract between `issue` and the responders."""

from __future__ import annotations

import json
import os
import pwd
import stat
import time
from pathlib import Path

import pytest

from wucme.challenge.store import ChallengeStore, default_store_dir, is_token
from wucme.vms.atomic import TEMP_PREFIX
from wucme.vms.secure import InsecureError

TOKEN = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"
KEYAUTH = TOKEN + ".9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"
NOBODY = pwd.getpwnam("nobody").pw_uid


def test_put_get_remove_roundtrip(tmp_path: Path) -> None:
    store = ChallengeStore(tmp_path / "ch")
    assert store.get(TOKEN) is None
    store.put(TOKEN, KEYAUTH, "www.example.org", "http-01")
    assert store.get(TOKEN) == KEYAUTH
    assert ChallengeStore(tmp_path / "ch").get(TOKEN) == KEYAUTH  # another process's view
    store.remove(TOKEN)
    assert store.get(TOKEN) is None
    store.remove(TOKEN)  # idempotent


def test_permissions_and_names(tmp_path: Path) -> None:
    store = ChallengeStore(tmp_path / "ch")
    store.put(TOKEN, KEYAUTH, "www.example.org", "http-01")
    store.alpn_put("www.example.org", KEYAUTH)
    assert stat.S_IMODE(os.stat(store.directory).st_mode) == 0o755
    names = os.listdir(store.directory)
    assert len(names) == 2
    for name in names:
        assert TOKEN not in name and "example" not in name.lower()
        assert len(name) <= 39 + 4 and name.upper() == name  # ODS-2 safe
        assert stat.S_IMODE(os.stat(store.directory / name).st_mode) == 0o644


def test_made_0755_under_umask_000(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        ChallengeStore(tmp_path / "here" / "ch").put(TOKEN, KEYAUTH, "a.example", "http-01")
    finally:
        os.umask(old)
    for d in (tmp_path / "here", tmp_path / "here" / "ch"):
        assert stat.S_IMODE(os.stat(d).st_mode) == 0o755
    assert [stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "here" / "ch").iterdir()] == [0o644]


@pytest.mark.parametrize("linked", [False, True])
def test_sticky_world_writable_directory_is_refused_and_left_untouched(tmp_path: Path, linked: bool) -> None:
    """Pointed (or linked) at a root-owned 1777 directory such as /tmp, the store neither writes
    there nor takes the directory's sticky bit and others' write access away."""
    shared = tmp_path / "tmp"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    where = shared
    if linked:
        where = tmp_path / "link"
        where.symlink_to(shared)
    with pytest.raises(InsecureError) as err:
        ChallengeStore(where).put(TOKEN, KEYAUTH, "a.example", "http-01")
    assert err.value.message() == f"%WUCME-E-INSECURE, {where} is writable by every user (mode 1777)"
    assert stat.S_IMODE(os.stat(shared).st_mode) == 0o1777
    assert os.listdir(shared) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="handing a directory to another user needs root")
def test_another_users_directory_is_refused_and_left_untouched(tmp_path: Path) -> None:
    d = tmp_path / "ch"
    d.mkdir(mode=0o775)
    os.chmod(d, 0o775)
    os.chown(d, NOBODY, -1)
    with pytest.raises(InsecureError, match=f"{d} is writable by its owner nobody"):
        ChallengeStore(d).put(TOKEN, KEYAUTH, "a.example", "http-01")
    assert stat.S_IMODE(os.stat(d).st_mode) == 0o775 and os.stat(d).st_uid == NOBODY


@pytest.mark.skipif(os.geteuid() != 0, reason="handing a file to another user needs root")
def test_entries_others_could_have_written_are_not_answered(tmp_path: Path) -> None:
    """An entry planted by another user, or one others may write, answers nothing: whoever can
    write the store could have a certificate issued for our names to an account of theirs."""
    store = ChallengeStore(tmp_path / "ch")
    store.put(TOKEN, KEYAUTH, "a.example", "http-01")
    store.alpn_put("www.example.org", KEYAUTH)
    http, alpn = sorted(store.directory.iterdir())[::-1]  # H_... then A_...
    assert store.get(TOKEN) == KEYAUTH and store.alpn_get("www.example.org") == KEYAUTH
    os.chown(http, NOBODY, -1)
    os.chmod(alpn, 0o666)
    assert store.get(TOKEN) is None and store.alpn_get("www.example.org") is None
    os.chown(http, 0, -1)
    os.chmod(alpn, 0o644)
    os.chmod(store.directory, 0o777)  # a directory others may write: nothing in it is believed
    assert store.get(TOKEN) is None and store.alpn_get("www.example.org") is None
    assert store.purge(now=time.time() + 10 * 3600) == 0  # and nothing there is touched
    os.chmod(store.directory, 0o755)
    assert store.get(TOKEN) == KEYAUTH


@pytest.mark.parametrize(
    "token", ["", "../x", "a/b", "%2e%2e", "..", "a b", "a=", "x" * 257, "tok\n", "é"]
)
def test_invalid_tokens(tmp_path: Path, token: str) -> None:
    store = ChallengeStore(tmp_path)
    assert not is_token(token)
    with pytest.raises(ValueError):
        store.put(token, KEYAUTH, "a.example", "http-01")
    assert store.get(token) is None
    assert os.listdir(tmp_path) == []


def test_expiry_and_purge(tmp_path: Path) -> None:
    store = ChallengeStore(tmp_path)
    store.put("old", "old.k", "a.example", "http-01", ttl=-1)
    store.put("new", "new.k", "a.example", "http-01", ttl=60)
    store.alpn_put("b.example", "x.y", ttl=-1)
    (tmp_path / "H_GARBAGE.DAT").write_text("{not json")
    debris = tmp_path / f"{TEMP_PREFIX}crash"
    debris.write_text("partial")
    os.utime(debris, (time.time() - 3600, time.time() - 3600))
    assert store.get("old") is None  # expired entries are ignored before any purge
    assert store.alpn_get("b.example") is None
    assert len(store) == 1
    assert store.purge() == 4
    assert len(os.listdir(tmp_path)) == 1
    assert store.get("new") == "new.k"
    assert store.purge(now=time.time() + 120) == 1
    assert os.listdir(tmp_path) == []


def test_entry_carries_expiry_and_token(tmp_path: Path) -> None:
    store = ChallengeStore(tmp_path)
    store.put(TOKEN, KEYAUTH, "www.example.org", "http-01", ttl=100)
    (entry,) = tmp_path.iterdir()
    record = json.loads(entry.read_text())
    assert record["token"] == TOKEN and record["keyauth"] == KEYAUTH
    assert time.time() + 90 < record["expires"] <= time.time() + 100


def test_alpn_keys_by_sni(tmp_path: Path) -> None:
    store = ChallengeStore(tmp_path)
    store.alpn_put("WWW.Example.ORG", "k.1")
    store.alpn_put("192.0.2.7", "k.2")
    store.alpn_put("2001:db8::1", "k.3")
    assert store.alpn_get("www.example.org") == "k.1"
    assert store.alpn_get("www.example.org.") == "k.1"
    assert store.alpn_get("7.2.0.192.in-addr.arpa") == "k.2"
    assert store.alpn_get("192.0.2.7") == "k.2"
    entry = store.alpn_lookup("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa")
    assert entry is not None and entry.ident == "2001:db8::1" and entry.key_authorization == "k.3"
    assert store.alpn_get("other.example.org") is None
    assert store.alpn_get("../../etc/passwd") is None
    store.alpn_remove("192.0.2.7")
    assert store.alpn_get("7.2.0.192.in-addr.arpa") is None
    with pytest.raises(ValueError):
        store.alpn_put("bad/ident", "k")


def test_default_store_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("WUCME_CHALLENGES", raising=False)
    monkeypatch.delenv("WUCME_HERE", raising=False)
    monkeypatch.delenv("WASD_ROOT", raising=False)
    assert default_store_dir() == Path("/var/lib/wucme/WUCME_CHALLENGES")
    monkeypatch.setenv("WUCME_HERE", str(tmp_path))
    assert default_store_dir() == tmp_path / "WUCME_CHALLENGES"
    monkeypatch.setenv("WUCME_CHALLENGES", str(tmp_path / "x"))
    assert default_store_dir() == tmp_path / "x"
    assert ChallengeStore().directory == tmp_path / "x"


def test_concurrent_writers_never_expose_partial_entries(tmp_path: Path) -> None:
    import threading

    store = ChallengeStore(tmp_path)
    values = [f"{TOKEN}.{i:04d}" + "x" * 2000 for i in range(50)]
    seen: set[str | None] = set()
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            seen.add(store.get(TOKEN))

    t = threading.Thread(target=reader)
    t.start()
    for v in values:
        store.put(TOKEN, v, "a.example", "http-01")
    stop.set()
    t.join()
    assert seen - {None} <= set(values)
    assert store.get(TOKEN) == values[-1]


def test_entry_names_are_the_on_disk_contract(tmp_path: Path) -> None:
    """An entry's name is SHA-256 of its key, base32 (the interpreter's own SHA-256 since the CGI
    answer stopped importing hashlib): the same names as before, so a store written by an older
    wucme is still read, and the same as hashlib's."""
    import base64
    import hashlib

    from wucme.challenge.storefile import entry_name

    store = ChallengeStore(tmp_path / "ch")
    store.put(TOKEN, KEYAUTH, "www.example.org", "http-01")
    assert [p.name for p in store.directory.iterdir()] == ["H_P2QKVJUSCTTR4AWOXMMLXBTXGYE3OMBA.DAT"]
    for key in (TOKEN, "www.example.org", "7.2.0.192.in-addr.arpa", "\u00e9"):
        digest = hashlib.sha256(key.encode("utf-8")).digest()[:20]
        assert entry_name("A_", key) == "A_" + base64.b32encode(digest).decode() + ".DAT"
