"""The wheel a user installs holds the product and nothing of the test harness.

Built from a copy of the checkout (tests/ included, as in a clone) with pip, the way any
installer builds it; the native module is compiled on the way.
"""
from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

#: What only the test harness has: its modules and its classes, under any name.
HARNESS_MARKS = ("FakeClock", "FaultProxy", "class Pebble", "ChallengeDirServer", "pebble-challtestsrv")


def test_wheel_holds_wucme_and_no_test_harness(checkout: Path, tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                        "--disable-pip-version-check", "-w", str(dist), str(checkout)],
                       capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    (wheel,) = dist.glob("wucme-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        sources = {n: z.read(n).decode("utf-8", "replace") for n in names if n.endswith(".py")}
        entry_points = next(z.read(n).decode() for n in names if n.endswith(".dist-info/entry_points.txt"))

    name, version = wheel.name.split("-")[:2]
    assert {n.split("/")[0] for n in names} == {"wucme", f"{name}-{version}.dist-info"}
    assert "wucme/cli.py" in names and "wucme/py.typed" in names
    for helper in ("lockmgr", "certscan"):  # every native helper is built into the wheel
        assert any(n.startswith(f"wucme/_native/_{helper}.") and n.endswith(".so") for n in names), helper
    assert "wucme = wucme.entry:main" in entry_points
    assert not [n for n in names if n.startswith(("wucme/testing/", "harness/")) or n.endswith("/demo.py")]
    for mark in HARNESS_MARKS:
        assert not [n for n, text in sources.items() if mark in text], f"{mark!r} is in the wheel"
