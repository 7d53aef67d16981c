"""A renewal that nothing loads is said, not silent: with WUCME_LOAD and WUCME_SERVICES both
undefined the pass renews, then warns `%WUCME-W-NOTLOADED` in the log, by OPCOM and by mail, and
`check /load` says what to define."""
from __future__ import annotations

from typing import Any

import pytest

from harness.timemachine import TimeMachine

from .support import Agents, Syslog
from .test_deadlines import ca  # noqa: F401 - the fixture: a due certificate on Pebble

pytestmark = pytest.mark.pebble


def test_renewed_but_not_loaded_is_reported(agents: Agents, ca: TimeMachine, syslog: Syslog,  # noqa: F811
                                            smtp: tuple[int, list[Any]]) -> None:
    del agents.env["WUCME_LOAD"]
    agents.env.update(WUCME_OPCOM="CENTRAL", WUCME_SYSLOG=str(syslog.path), WUCME_MAIL="admin@example.org",
                      WUCME_SMTP=f"127.0.0.1:{smtp[0]}")
    r = agents.wucme("agent", "/once")
    log = r.stdout + r.stderr
    assert "%WUCME-S-RENEWED, WUCME_C_DRIP_EXAMPLE_ORG.PEM" in log
    assert "%WUCME-W-NOTLOADED, nothing loads the renewed certificates" in log
    assert "NOTLOADED" in syslog.drain()
    mails = b"".join(m.content for m in smtp[1]).decode(errors="replace")
    assert "NOTLOADED" in mails
    r = agents.wucme("check", "/load")
    assert "define WUCME_LOAD as the command that reloads the server" in r.stdout + r.stderr
    # Loaded: no warning.
    agents.env["WUCME_LOAD"] = "true"
    agents.wucme("issue", "again.example.org", "/noprogress")
    r = agents.wucme("agent", "/once")
    assert "%WUCME-S-RENEWED, WUCME_C_AGAIN_EXAMPLE_ORG.PEM" in r.stdout + r.stderr
    assert "NOTLOADED" not in r.stdout + r.stderr
