"""Parity with the real uacme 1.7.4 on one Pebble: exit codes, files, modes, shared confdirs.

The same scenario runs through `/usr/bin/uacme` and `wucme --uacme`; each tool must
also carry on from a configuration directory the other one wrote (DESIGN.md:
"everything uacme can do stays available with `wucme --uacme ARGS`").  uacme trusts
only the system store, so these tests need root (the `system_trust` fixture).
"""
from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest

from harness.faultproxy import FaultProxy
from harness.pebble import Pebble

from .uacme_parity import (PARITY, Tool, epoch_free, expect, layout, new_accounts, serial,
                           uacme_has_check)

pytestmark = PARITY

IDENT = "www.example.org"
NAMES = (IDENT, "alt.example.org")
#: What `new` + `issue` leave in a confdir (uacme(1), FILES), with uacme's modes.
EXPECTED_LAYOUT = {
    ".": 0o40755,
    "private": 0o40700,
    "private/key.pem": 0o100400,
    f"private/{IDENT}": 0o40700,
    f"private/{IDENT}/key.pem": 0o100400,
    IDENT: 0o40755,
    f"{IDENT}/cert.pem": 0o100444,
}
BACKUP_RE = re.compile(r"^cert-(\d+)\.pem$")


def test_new_twice(tools: tuple[Tool, Tool]) -> None:
    for t in tools:
        expect(t("-y", "new", f"{t.name}@example.org"), 0, t.name)
    for t in tools:
        expect(t("-y", "new", f"{t.name}@example.org"), 2, t.name)  # account already exists


def test_issue_layout_modes_still_current_and_force(tools: tuple[Tool, Tool],
                                                    hook_scripts: dict[str, str]) -> None:
    new_accounts(*tools)
    hook = hook_scripts["http-01"]
    for t in tools:
        expect(t("-h", hook, "issue", *NAMES), 0, t.name)
    u, w = (layout(t.confdir) for t in tools)
    assert u == EXPECTED_LAYOUT, f"uacme wrote {u}"
    assert w == u

    for t in tools:
        expect(t("-h", hook, "issue", *NAMES), 1, t.name)  # still current
    expect(tools[1]("check", *NAMES), 1, "wucme")  # valid
    expect(tools[1]("check", *NAMES, confdir=tools[0].confdir), 1, "wucme on uacme's confdir")
    if uacme_has_check():
        expect(tools[0]("check", *NAMES), 1, "uacme")

    before = {t.name: (t.confdir / IDENT / "cert.pem") for t in tools}
    old = {name: (p.stat().st_ino, p.read_bytes()) for name, p in before.items()}
    for t in tools:
        expect(t("-h", hook, "-f", "issue", *NAMES), 0, t.name)
    for t in tools:
        backups = [p for p in (t.confdir / IDENT).iterdir() if BACKUP_RE.match(p.name)]
        assert len(backups) == 1, f"{t.name}: {sorted(os.listdir(t.confdir / IDENT))}"
        bak = backups[0]
        ino, pem = old[t.name]
        assert bak.stat().st_ino == ino, f"{t.name}: backup is not a hard link to the old cert"
        assert bak.read_bytes() == pem
        assert stat.S_IMODE(bak.stat().st_mode) == 0o444
        assert (t.confdir / IDENT / "cert.pem").read_bytes() != pem
    u, w = (layout(t.confdir) for t in tools)
    assert epoch_free(w) == epoch_free(u)


def test_each_tool_continues_the_others_confdir(tools: tuple[Tool, Tool], pebble: Pebble,
                                                hook_scripts: dict[str, str]) -> None:
    u, w = tools
    hook = hook_scripts["http-01"]
    new_accounts(u, w)
    for t in tools:
        expect(t("-h", hook, "issue", *NAMES), 0, t.name)

    for runner, owner in ((w, u), (u, w)):
        cert = owner.confdir / IDENT / "cert.pem"
        first = serial(cert)
        expect(runner("-h", hook, "-f", "issue", *NAMES, confdir=owner.confdir), 0, runner.name)
        second = serial(cert)
        assert second != first
        assert any(BACKUP_RE.match(p.name) for p in cert.parent.iterdir())
        if runner is w:
            expect(w("update", "newmail@example.org", confdir=u.confdir), 0, "wucme")
        expect(runner("revoke", str(cert), confdir=owner.confdir), 0, runner.name)
        assert pebble.cert_status(second)["Status"] == "Revoked"
        assert pebble.cert_status(first)["Status"] == "Valid"


def test_check_name_never_issued(tools: tuple[Tool, Tool], hook_scripts: dict[str, str]) -> None:
    """A name whose issue failed has its key and directories but no certificate: check says 0.

    uacme's `check` (newer than 1.7.4) needs private/IDENT to exist, so the name is
    first tried once with a hook that declines every challenge, by uacme (whose
    directory wucme then reads) and by wucme.
    """
    new_accounts(*tools)
    name = "never.example.org"
    for t in tools:
        expect(t("-h", hook_scripts["decline-all"], "issue", name), 2, t.name)
        assert not (t.confdir / name / "cert.pem").exists()
    for t in tools:
        expect(tools[1]("check", name, confdir=t.confdir), 0, f"wucme on {t.name}'s confdir")
    if uacme_has_check():
        for t in tools:
            expect(tools[0]("check", name, confdir=t.confdir), 0, f"uacme on {t.name}'s confdir")
    else:
        expect(tools[0]("check", name), 2, "uacme 1.7.4 (no check action)")


@pytest.mark.parametrize("bad", ["-a.example.org", "a..b"])
def test_invalid_identifier_fails_without_an_order(tools: tuple[Tool, Tool], pebble: Pebble,
                                                   hook_scripts: dict[str, str], bad: str) -> None:
    """Exit 2 from both; wucme refuses a name that is no DNS host name (RFC 1123
    section 2.1) before any request.  uacme 1.7.4 checks no identifier and does create
    an order (Pebble accepts both names), so the no-order assertion is for wucme only."""
    new_accounts(*tools)
    for t in tools:
        with FaultProxy(pebble) as proxy:  # one each: its log is that tool's requests only
            r = t("-h", hook_scripts["decline-all"], "issue", "--", bad,
                  directory_url=proxy.directory_url)
            expect(r, 2, t.name)
            if t.name == "wucme":
                assert proxy.requests_to("/order-plz") == [], "wucme sent an order"
                assert not (t.confdir / bad).exists()


def test_deactivate_then_issue_fails(tools: tuple[Tool, Tool],
                                     hook_scripts: dict[str, str]) -> None:
    new_accounts(*tools)
    for t in tools:
        expect(t("deactivate"), 0, t.name)
    for t in tools:
        expect(t("-h", hook_scripts["http-01"], "issue", IDENT), 2, t.name)
        assert not (t.confdir / IDENT / "cert.pem").exists()

