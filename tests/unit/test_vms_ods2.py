"""ODS-2 names for hosts: the design's mapping, the 39-character limit, and no collisions."""

from __future__ import annotations

import base64
import hashlib
import itertools
import re

import pytest

from wucme.vms.ods2 import HOST_MAX, MAX_NAME, cert_file_name, is_ods2_name, key_file_name, ods2_name

ODS2 = re.compile(r"[A-Z0-9_$-]{1,39}")


def digest(host: str) -> str:
    return base64.b32encode(hashlib.sha256(host.lower().encode()).digest()).decode()[:12]


@pytest.mark.parametrize("host, expected", [
    ("www.example.org", "WWW_EXAMPLE_ORG"),
    ("an.example.net", "AN_EXAMPLE_NET"),  # the seed's own example
    ("a-b.example", "A-B_EXAMPLE"),
    ("a.b-c", "A_B-C"),
    ("a-b.c", "A-B_C"),
    ("xn--lg-nja.example", "XN--LG-NJA_EXAMPLE"),
    ("xn--bcher-kva.example", "XN--BCHER-KVA_EXAMPLE"),
    ("localhost", "LOCALHOST"),
    ("x" * 31, "X" * 31),
])
def test_lossless(host: str, expected: str) -> None:
    assert ods2_name(host) == expected


def test_repository_file_names() -> None:
    assert cert_file_name("www.example.org") == "WUCME_C_WWW_EXAMPLE_ORG.PEM"
    assert key_file_name("www.example.org") == "WUCME_K_WWW_EXAMPLE_ORG.PEM"


@pytest.mark.parametrize("host, prefix", [
    ("a_b.example", "A_B_EXAMPLE"),
    ("*.example.org", "__EXAMPLE_ORG"),
    ("example.org.", "EXAMPLE_ORG"),
    ("a..b", "A__B"),
    ("$x.example", "$X_EXAMPLE"),
    ("bücher.example", "B_CHER_EXAMPLE"),
    ("x" * 32, "X" * 17),
    ("averyveryverylongsubdomainname.example.com", "AVERYVERYVERYLONGSUBDOMAIN"),
])
def test_lossy_names_carry_the_digest(host: str, prefix: str) -> None:
    name = ods2_name(host)
    assert name == f"{prefix[:HOST_MAX - 14].rstrip('_')}__{digest(host)}"
    assert len(name) <= HOST_MAX


def test_case_only_differences_are_equal() -> None:
    assert ods2_name("WWW.Example.ORG") == ods2_name("www.example.org")
    assert ods2_name("A_B.Example") == ods2_name("a_b.example")
    long = "Sub." * 12 + "Example.Com"
    assert ods2_name(long) == ods2_name(long.lower())


@pytest.mark.parametrize("a, b", [
    ("a-b.example", "a_b.example"),
    ("a.b-c", "a-b.c"),
    ("a.b.example", "a_b.example"),
    ("a.b", "a_b"),
    ("a$b", "a_b"),
    ("example.org", "example.org."),
    ("*.example.org", "_.example.org"),
    ("bücher.example", "b.cher.example"),
    ("b_cher.example", "bücher.example"),
])
def test_punctuation_differences_are_distinct(a: str, b: str) -> None:
    assert ods2_name(a) != ods2_name(b)


def test_long_names_shortened_and_distinct() -> None:
    hosts = [f"{a}{b}.{'x' * 40}.example.com" for a, b in itertools.product("abc", "0123456789")]
    hosts += ["y" * 63 + ".example.com", "y" * 63 + ".example.net", "y" * 62 + ".example.com"]
    names = [ods2_name(h) for h in hosts]
    assert len(set(names)) == len(hosts)
    for name in names:
        assert len(name) == HOST_MAX and "__" in name


def test_lossless_never_looks_lossy() -> None:
    # A lossless name whose last label looks like a digest still cannot equal a lossy one.
    lossy = ods2_name("a_b.example")
    forged = lossy.replace("__", "_").lower().replace("_", ".")
    assert ods2_name(forged) != lossy


@pytest.mark.parametrize("host", [
    "www.example.org", "x" * 200, "\u00e9\u00e8.\u4e2d\u6587", "a b\tc", "semi;colon", "dot.dot..",
    "slash/../etc", "nul\x00byte", "UPPER.lower", "---", "_", ".", "xn--lg-nja.xn--p1ai",
])
def test_output_charset_and_length(host: str) -> None:
    name = ods2_name(host)
    assert ODS2.fullmatch(name) and len(name) <= HOST_MAX
    for f in (cert_file_name(host), key_file_name(host)):
        stem, typ = f.split(".")
        assert typ == "PEM" and is_ods2_name(stem) and len(stem) <= MAX_NAME


def test_empty_host_refused() -> None:
    with pytest.raises(ValueError):
        ods2_name("")
