"""`wucme --uacme` reads uacme's command line as getopt_long does (uacme.c main())."""
from __future__ import annotations

import pytest

from wucme.errors import UsageError
from wucme.uacme.account import eab_parse
from wucme.uacme.acme import STAGING_URL, AcmeSession
from wucme.uacme.main import OPTIONS, alt_parse, parse_options


def test_short_and_long_forms_are_the_same_option() -> None:
    short, a1 = parse_options(["-fyvv", "-c", "/x", "-t", "ec", "-i", "-l", "2", "issue", "a.example"])
    long_, a2 = parse_options(["--force", "--yes", "--verbose", "--verbose", "--confdir=/x",
                               "--type", "EC", "--no-ari", "--alternate=2", "issue", "a.example"])
    assert vars(short) == vars(long_) and a1 == a2 == ["issue", "a.example"]
    assert short.force and short.yes and short.verbose == 2 and short.type == "EC"
    assert short.bits == 256 and not short.ari and short.alternate == 2


def test_options_may_follow_the_action_as_with_gnu_getopt() -> None:
    o, args = parse_options(["issue", "-f", "a.example", "--days", "10"])
    assert o.force and o.days == 10 and args == ["issue", "a.example"]
    o, args = parse_options(["issue", "--", "-a.example"])
    assert args == ["issue", "-a.example"]


@pytest.mark.parametrize("argv, text", [
    (["-a", "https://x/dir", "-s", "new"], "incompatible"),
    (["-s", "-a", "https://x/dir", "new"], "incompatible"),
    (["-b", "1024", "new"], "between 2048 and 8192"),
    (["-b", "2049", "new"], "multiple of 8"),
    (["-t", "EC", "-b", "521", "new"], "256 or 384"),
    (["-t", "DSA", "new"], "RSA or EC"),
    (["-d", "0", "new"], "DAYS"),
    (["-r", "-1", "revoke", "x"], "CODE"),
    (["-l", "zz", "issue", "a.example"], "-l requires"),
    (["--bogus", "new"], "bogus"),
])
def test_bad_options_are_usage_errors(argv: list[str], text: str) -> None:
    with pytest.raises(UsageError) as e:
        parse_options(argv)
    assert text in e.value.text


def test_staging_and_defaults() -> None:
    o, _ = parse_options(["-s", "new"])
    assert o.directory == STAGING_URL and o.type == "RSA" and o.bits == 2048 and o.days == 30
    assert o.status_check and o.ari and not o.force


def test_every_option_letter_is_uacmes() -> None:
    assert "".join(c for c, _, _ in OPTIONS) == "abcdef?hiklmnoprstvVy"


def test_alternate_chain_selectors() -> None:
    assert alt_parse("3") == 3
    assert alt_parse("4a:3B") == bytes([0x4A, 0x3B])
    assert alt_parse("0x10") == 16 and alt_parse("010") == 8 and alt_parse(" +7") == 7
    assert alt_parse(":4a::3b:") == bytes([0x4A, 0x3B])  # strtok() skips empty tokens
    for bad in ("0", "4a", "4a:3", ":".join(["00"] * 33), "-1", "0x", "08"):
        with pytest.raises(UsageError):
            alt_parse(bad)


@pytest.mark.parametrize("value, bits", [("kid:c2VjcmV0", 256), ("kid:c2VjcmV0:384", 384),
                                         ("kid:c2VjcmV0:512", 512)])
def test_eab_credentials_as_uacme_meant_them(value: str, bits: int) -> None:
    a = AcmeSession(transport=None)  # type: ignore[arg-type]
    eab_parse(a, value)
    assert (a.eab_keyid, a.eab_key, a.eab_bits) == ("kid", b"secret", bits)


@pytest.mark.parametrize("value", ["kid", "kid:", ":key", "kid:c2VjcmV0:128", "kid:not base64"])
def test_bad_eab_credentials(value: str) -> None:
    with pytest.raises(UsageError):
        eab_parse(AcmeSession(transport=None), value)  # type: ignore[arg-type]


@pytest.mark.parametrize("argv, attr, value", [
    (["-r", "01"], "reason", 1), (["-r", "0x4"], "reason", 4), (["-r", "010"], "reason", 8),
    (["-r", " 5"], "reason", 5), (["-r", "+3"], "reason", 3), (["-r", "-0"], "reason", 0),
    (["-d", "010"], "days", 10), (["-d", " +7"], "days", 7),
    (["-b", "03072"], "bits", 3072), (["-b", str((1 << 32) + 2048)], "bits", 2048),
    (["-l", "0x1"], "alternate", 1), (["-l", "010"], "alternate", 8),
])
def test_numbers_are_read_as_uacme_s_strtol_reads_them(argv: list[str], attr: str,
                                                       value: int) -> None:
    """-r and -l: strtol(s, 0) (0x.. hex, 0.. octal); -b and -d: strtol(s, 10) into an int."""
    o, _ = parse_options([*argv, "new"])
    assert getattr(o, attr) == value


@pytest.mark.parametrize("argv", [["-d", "0x10"], ["-b", "0x800"], ["-r", "08"], ["-r", "1 "],
                                  ["-d", ""], ["-d", "-5"], ["-r", "0x"]])
def test_numbers_uacme_refuses(argv: list[str]) -> None:
    with pytest.raises(UsageError, match="integer"):
        parse_options([*argv, "new"])
