"""Running `wucme --uacme` as an administrator would: a real process, real environment."""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class UacmeRun:
    """One `wucme --uacme` command line against one CA, with its confdir and hook."""

    directory_url: str
    ca_bundle: str
    confdir: Path
    env: dict[str, str] = field(default_factory=dict)
    transport: str = "builtin"

    def __call__(self, *args: str, stdin: str | None = None, timeout: float = 120,
                 extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ)
        env.update(WUCME_CA_BUNDLE=self.ca_bundle, WUCME_HTTP=self.transport)
        env.update(self.env)
        env.update(extra_env or {})
        cmd = [sys.executable, "-m", "wucme", "--uacme", "-v", "-c", str(self.confdir),
               "-a", self.directory_url, *args]
        return subprocess.run(cmd, env=env, input=stdin if stdin is not None else "",
                              capture_output=True, text=True, timeout=timeout)


def ok(r: subprocess.CompletedProcess[str], code: int = 0) -> subprocess.CompletedProcess[str]:
    assert r.returncode == code, f"exit {r.returncode}, wanted {code}\n{r.stderr[-4000:]}"
    return r
