"""The demo behind `python3 build.py demo`: wucme against a local Pebble CA.

It starts Pebble (Debian package) on loopback, then runs, as an administrator
would, `wucme --uacme` to create an account, issue a two-name certificate
(http-01 answered through a uacme-style hook and a webroot), check it, and
revoke it.  Every step is a real process; the output is the tools' own.
"""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from wucme.testing.pebble import Pebble, pebble_available
from wucme.testing.responders import ChallengeDirServer, write_hook_scripts


def _step(title: str, argv: list[str], env: dict[str, str], expect: int = 0) -> None:
    shown = " ".join(shlex.quote(a) for a in argv[3:])
    print(f"\n=== {title}\n$ wucme {shown}", flush=True)
    rc = subprocess.call(argv, env=env)
    print(f"(exit status {rc})", flush=True)
    if rc != expect:
        raise SystemExit(f"%WUCME-F-DEMO, step '{title}' exited {rc}, expected {expect}")


def main() -> int:
    if not pebble_available():
        print("%WUCME-F-NOPEBBLE, the demo needs Pebble: run 'python3 build.py setup' first")
        return 2
    work = Path(tempfile.mkdtemp(prefix="wucme-demo-"))
    print(f"%WUCME-I-DEMO, working in {work}")
    with Pebble(work / "pebble") as ca:
        print(f"%WUCME-I-CA, Pebble directory at {ca.directory_url}")
        webroot = work / "webroot"
        hooks = write_hook_scripts(work / "hooks")
        with ChallengeDirServer(webroot, ca.http_port):
            env = dict(os.environ, WUCME_CA_BUNDLE=ca.ca_bundle, UACME_CHALLENGE_PATH=str(webroot))
            conf = work / "conf"
            base = [sys.executable, "-m", "wucme", "--uacme", "-v", "-c", str(conf),
                    "-a", ca.directory_url]
            _step("register an account", base + ["-y", "new", "webmaster@example.org"], env)
            _step("issue a certificate for two names (http-01 through the hook)",
                  base + ["-h", hooks["http-01"], "issue", "www.example.org", "two.example.org"], env)
            _step("issue again: still current, nothing to do", base + ["issue", "www.example.org"],
                  env, expect=1)
            cert = conf / "www.example.org" / "cert.pem"
            print(subprocess.run(["openssl", "x509", "-noout", "-subject", "-ext", "subjectAltName",
                                  "-enddate", "-in", str(cert)], capture_output=True, text=True).stdout)
            _step("revoke it", base + ["-r", "4", "revoke", str(cert)], env)
    print("\n%WUCME-S-DEMO, account, issue, check and revoke done against a local Pebble")
    return 0


if __name__ == "__main__":
    sys.exit(main())
