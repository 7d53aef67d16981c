"""The demo behind `python3 build.py demo`: wucme against a local Pebble CA.

It lives in the test harness, not in the package, since it needs the harness's Pebble
starter and a webroot server; build.py runs it as `python -m harness.demo` with tests/ on
the path and the project's virtual environment's interpreter.

It starts Pebble (Debian package) on loopback, then runs, as an administrator
would:
1. the uacme port, `wucme --uacme`: an account, a two-name certificate
   (http-01 through a uacme-style hook and a webroot), a check, a revocation;
2. wµCME's own verbs on a repository (WUCME_HERE): `register`, `issue` of two
   names answered by wucme's own http-01 listener (WUCME_HTTP01), `issue` of
   an internationalised name by its tls-alpn-01 responder (WUCME_ALPN),
   `certificates`, `manage` (nothing due), `revoke`.
Every step is a real process; the output is the tools' own.
"""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from harness.pebble import Pebble, pebble_available
from harness.responders import ChallengeDirServer, write_hook_scripts


def _step(title: str, argv: list[str], env: dict[str, str], expect: int = 0) -> None:
    shown = " ".join(shlex.quote(a) for a in argv[3:])
    print(f"\n=== {title}\n$ wucme {shown}", flush=True)
    rc = subprocess.call(argv, env=env)
    print(f"(exit status {rc})", flush=True)
    if rc != expect:
        raise SystemExit(f"%WUCME-F-DEMO, step '{title}' exited {rc}, expected {expect}")


def _verbs(ca: Pebble, work: Path) -> None:
    """The wµCME verbs on a repository of their own; wucme answers the challenges itself."""
    here = work / "repository"
    here.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WUCME_", "UACME_"))}
    env.update(WUCME_HERE=str(here), WUCME_LNM_DIR=str(work / "lnm"), WUCME_CA=ca.directory_url,
               WUCME_CA_BUNDLE=ca.ca_bundle, WUCME_HTTP01=f"127.0.0.1:{ca.http_port}",
               WUCME_ALPN=f"127.0.0.1:{ca.tls_port}", WUCME_ALPN_SOCKET=str(work / "alpn.sock"))
    verb = [sys.executable, "-m", "wucme"]
    _step("register the wµCME account", verb + ["register", "webmaster@example.org"], env)
    _step("issue two names, http-01 answered by wucme's own listener",
          verb + ["issue", "www.example.org,two.example.org"], dict(env, WUCME_CHALLENGE="http-01"))
    _step("issue an IDN name, tls-alpn-01 answered by wucme's own responder",
          verb + ["issue", "bücher.example.org"], dict(env, WUCME_CHALLENGE="tls-alpn-01"))
    _step("list the managed certificates", verb + ["certificates"], env)
    _step("one renewal pass: nothing is due yet", verb + ["manage"], env)
    _step("revoke one", verb + ["revoke", str(here / "WUCME_C_WWW_EXAMPLE_ORG.PEM"),
                                "/reason=superseded"], env)
    print(f"\n%WUCME-I-FILES, the repository {here}:")
    for p in sorted(here.iterdir()):
        print(f"  {p.name}")


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
        _verbs(ca, work)
    print("\n%WUCME-S-DEMO, the uacme port and the wµCME verbs done against a local Pebble")
    return 0


if __name__ == "__main__":
    sys.exit(main())
