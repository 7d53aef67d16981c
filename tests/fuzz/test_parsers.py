"""Every parser that takes outside input, fed by hypothesis: a result or a clean error (the
parser's documented one, or a VMS message), never another exception, never a hang (each input
within hypothesis' deadline).  Bounded for the default run (a few seconds each); the longer
runs are atheris' (tests/fuzz/atheris_parsers.py, `python3 build.py fuzz MINUTES`).
"""
from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.fuzz.targets import SEEDS, TARGETS, run
from tests.unit.test_bad_certificates import (bit_string_subject, duplicate_extension, version_66,
                                              x400_address)

#: Inputs per target; deadline per input (a hang is a failure).
EXAMPLES = 400
DEADLINE_MS = 2000


def mutated(seeds: list[bytes]) -> st.SearchStrategy[bytes]:
    """Random bytes, and seeds with random bytes spliced in (deeper into each parser)."""
    def splice(args: tuple[bytes, int, bytes, int]) -> bytes:
        seed, at, junk, cut = args
        at %= len(seed) + 1
        return seed[:at] + junk + seed[at + cut:]

    return st.one_of(
        st.binary(max_size=512),
        st.tuples(st.sampled_from(seeds), st.integers(0, 1 << 16), st.binary(max_size=64),
                  st.integers(0, 16)).map(splice),
        st.sampled_from(seeds),
    )


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_parser_gives_a_result_or_a_clean_error(name: str) -> None:
    @settings(max_examples=EXAMPLES, deadline=DEADLINE_MS, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    @given(mutated(SEEDS[name]))
    def check(data: bytes) -> None:
        run(name, data)

    check()


# What the fuzzers found, kept as regression inputs (docs/reliability.md, "Fuzzing").
FOUND: list[tuple[str, bytes]] = [
    ("acme_json", b'{"a": ' + b"9" * 5000 + b"}"),
    ("problem_document", b'{"type": "x", "status": ' + b"9" * 5000 + b"}"),
    ("der_structures", b"\x06\x01\x80"),  # an OID ending inside an arc: IndexError
    ("dcl_procedure", b" " + b"(" * 127),  # atheris: RecursionError
    ("certificate_scan", version_66()),  # atheris: x509.InvalidVersion, not a ValueError
    ("certificate_scan", bit_string_subject()),  # atheris: TypeError from the subject
    ("certificate_scan", duplicate_extension()),  # atheris: x509.DuplicateExtension
    ("certificate_scan", x400_address()),  # atheris: x509.UnsupportedGeneralNameType
    # search lists of search lists, ten deep: 20**9 translations (a hang)
    ("logical_name_translation", json.dumps({"table": "LNM$SYSTEM_TABLE", "names": {
        f"L{i}": {"values": [f"L{i + 1}:"] * 20} for i in range(10)}}).encode()),
]


@pytest.mark.parametrize("name, data", FOUND, ids=[f"{n}-{i}" for i, (n, _) in enumerate(FOUND)])
def test_found_inputs_stay_clean(name: str, data: bytes) -> None:
    run(name, data)
