"""Issue 12 item 7: `man wucme` and bash completion, made from the verb table `wucme help` shows."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from wucme.verbs import VERBS


def wucme(*args: str) -> str:
    return subprocess.run([sys.executable, "-m", "wucme", *args], capture_output=True, text=True,
                          check=True).stdout


@pytest.mark.skipif(shutil.which("groff") is None, reason="groff (Debian package groff-base) is not installed")
def test_the_manual_page_names_every_verb_and_qualifier_and_renders_cleanly(tmp_path: Path) -> None:
    page = tmp_path / "wucme.1"
    page.write_text(wucme("help", "/output=man"))
    r = subprocess.run(["groff", "-man", "-Tutf8", "-ww", str(page)], capture_output=True, text=True,
                       env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})
    assert r.returncode == 0 and r.stderr == "", r.stderr
    shown = subprocess.run(["col", "-b"], input=r.stdout, capture_output=True, text=True).stdout
    assert "WUCME(1)" in shown and "SYNOPSIS" in shown
    for v in VERBS:
        assert f"\n       {v.name}" in shown, v.name
        for q in v.qualifiers:
            assert f"/{'[NO]' if q.negatable else ''}{q.name.upper()}" in shown, (v.name, q.name)
    assert "--uacme ARGS" in shown and "alpn ARGS" in shown


def complete(script: Path, line: str) -> list[str]:
    """What bash offers at the end of *line*, split into words as bash's readline does."""
    prog = f"""
source {script}
line={line!r}
COMP_LINE="$line"; COMP_POINT=${{#line}}
read -ra COMP_WORDS <<< "$line"
[[ "$line" == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))
_wucme
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    out = subprocess.run(["bash", "--norc", "-c", prog], capture_output=True, text=True, check=True).stdout
    return sorted(w for w in out.splitlines() if w)


def test_bash_completes_verbs_qualifiers_and_their_values(tmp_path: Path) -> None:
    script = tmp_path / "wucme"
    script.write_text(wucme("help", "/output=bash"))
    assert "manage" in complete(script, "wucme ") and "certificates" in complete(script, "wucme ")
    assert complete(script, "wucme re") == ["register", "revoke"]
    assert complete(script, "wucme certificates --o") == ["--output="]
    assert complete(script, "wucme cert /o") == ["/output="]
    assert complete(script, "wucme certificates --output=j") == ["json"]
    assert "/once" in complete(script, "wucme agent /")
    assert complete(script, "wucme help --output=") == ["bash", "man", "text"]
