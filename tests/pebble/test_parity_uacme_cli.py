"""uacme's command line, read and answered as uacme 1.7.4 does (issue 11, points 6 and 8-11)."""
from __future__ import annotations

from pathlib import Path

import pytest

from wucme.testing.pebble import Pebble

from .uacme_parity import PARITY, Tool, expect, new_accounts, serial

pytestmark = PARITY

#: Option values and whether uacme takes them: -r and -l with strtol(s, 0), -b and -d base 10.
NUMBERS = [("-r", "01"), ("-r", "0x1"), ("-r", "010"), ("-r", "08"), ("-r", " 2"), ("-r", "2 "),
           ("-d", "010"), ("-d", "0x10"), ("-d", "+5"), ("-d", "0"), ("-b", "02048"),
           ("-b", "0x800"), ("-b", "4294969344"), ("-l", "0x1"), ("-l", "010"), ("-l", "0"),
           ("-l", "aa::bb"), ("-l", "aa:b")]


@pytest.mark.parametrize("opt, value", NUMBERS)
def test_numbers_are_taken_or_refused_as_uacme_does(tools: tuple[Tool, Tool], opt: str,
                                                    value: str) -> None:
    """With no action after the options, uacme says why it refuses an option value, or
    shows its usage once every option was taken: both tools agree on each value."""
    verdicts = {}
    for t in tools:
        r = t.bare(opt, value)
        expect(r, 2, t.name)
        verdicts[t.name] = "refused" if "usage:" not in r.stderr + r.stdout else "taken"
    assert verdicts["wucme"] == verdicts["uacme"], f"{opt} {value!r}: {verdicts}"


def test_revoke_reason_in_hex(tools: tuple[Tool, Tool], pebble: Pebble,
                              hook_scripts: dict[str, str]) -> None:
    """-r 0x4 is reason 4 (superseded) for both."""
    new_accounts(*tools)
    for t in tools:
        expect(t("-h", hook_scripts["http-01"], "issue", "rv.example.org"), 0, t.name)
        cert = t.confdir / "rv.example.org" / "cert.pem"
        number = serial(cert)
        expect(t("-r", "0x4", "revoke", str(cert)), 0, t.name)
        assert pebble.cert_status(number)["Status"] == "Revoked"
