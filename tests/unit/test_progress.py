"""Progress of a many-name issue: a bar on a terminal, plain lines otherwise."""
from __future__ import annotations

import io

from wucme.progress import Progress


def test_plain_lines_when_not_a_terminal() -> None:
    out = io.StringIO()
    p = Progress(["a.org", "b.org"], stream=out)
    assert not p.tty
    p.update("a.org", "answering", "http-01")
    p.update("a.org", "valid")
    p.update("b.org", "invalid")
    p.finish(False)
    assert out.getvalue() == "  a.org: answering http-01\n  a.org: valid\n  b.org: invalid\n"


def test_bar_on_a_terminal() -> None:
    out = io.StringIO()
    names = [f"h{i}.org" for i in range(10)]
    p = Progress(names, stream=out, tty=True, width=10)
    for n in names[:4]:
        p.update(n, "valid")
    p.update(names[4], "answering")
    assert p.bar() == "[####......] 4/10 valid, 1 answering"
    p.update(names[5], "invalid")
    assert p.bar().endswith(", 1 invalid")
    p.finish(True)  # the never-answered ones were already valid at the CA
    text = out.getvalue()
    assert "\r[" in text and "\n" not in text.split("\r")[1]
    assert "  h5.org: invalid\n" in text
    assert p.counts() == {"pending": 0, "answering": 1, "valid": 8, "invalid": 1}
