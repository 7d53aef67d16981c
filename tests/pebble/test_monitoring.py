"""Issue 12 item 6: the certificates for Prometheus, from the command line and from each
renewal pass (WUCME_PROMETHEUS_FILE, node_exporter's textfile collector)."""
from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from harness.pebble import Pebble

from .test_wucme_verbs import Wucme, wucme  # noqa: F401 - the fixture

pytestmark = pytest.mark.pebble

#: One sample of the text exposition format: name{labels} value.
SAMPLE = re.compile(r'^(wucme_[a-z_]+)(\{(?:[a-z]+="(?:[^"\\]|\\.)*",?)*\})? (-?[0-9.]+)$')


def samples(text: str) -> dict[str, dict[str, float]]:
    """{metric: {labels: value}}; every line is a comment or a well-formed sample."""
    out: dict[str, dict[str, float]] = {}
    typed: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            typed.add(line.split()[2])
            continue
        if line.startswith("# HELP "):
            continue
        m = SAMPLE.match(line)
        assert m, f"not a Prometheus sample: {line!r}"
        assert m.group(1) in typed, f"{m.group(1)} has no # TYPE line before it"
        out.setdefault(m.group(1), {})[m.group(2) or ""] = float(m.group(3))
    return out


def test_certificates_for_prometheus_and_the_file_each_pass_rewrites(wucme: Wucme, tmp_path: Path) -> None:  # noqa: F811
    wucme("issue", "www.example.org,two.example.org")
    labels = '{file="WUCME_C_WWW_EXAMPLE_ORG.PEM",host="www.example.org"}'

    shown = samples(wucme("certificates", "/output=prometheus").stdout)
    assert shown["wucme_certificate_days_left"][labels] > 80  # a fresh certificate
    assert shown["wucme_certificate_ok"][labels] == 1
    assert abs(shown["wucme_certificate_last_attempt_seconds"][labels] - time.time()) < 300
    assert "wucme_renewal_pass_seconds" not in shown  # no pass ran here

    textfile = tmp_path / "textfile" / "wucme.prom"
    textfile.parent.mkdir()
    before = time.time()
    wucme("manage", WUCME_PROMETHEUS_FILE=str(textfile))
    first = samples(textfile.read_text())
    assert textfile.stat().st_mode & 0o644 == 0o644  # node_exporter reads it as its own user
    assert first["wucme_renewal_pass_ok"][""] == 1
    assert first["wucme_renewal_pass_seconds"][""] >= int(before)
    assert first["wucme_certificate_last_pass_seconds"][labels] >= int(before)
    assert first["wucme_certificate_days_left"][labels] > 80

    time.sleep(1.1)
    wucme("manage", WUCME_PROMETHEUS_FILE=str(textfile))
    again = samples(textfile.read_text())
    assert again["wucme_renewal_pass_seconds"][""] > first["wucme_renewal_pass_seconds"][""]
    assert [p.name for p in textfile.parent.iterdir()] == ["wucme.prom"]  # replaced, nothing left aside


def test_a_relative_prometheus_file_is_refused(wucme: Wucme) -> None:  # noqa: F811
    wucme("issue", "www.example.org")
    r = wucme("manage", code=1, WUCME_PROMETHEUS_FILE="wucme.prom")  # a warning: the pass itself went well
    assert "%WUCME-W-NOMETRICS" in r.stderr and "absolute" in r.stderr
