"""How hooks are run, uacme 1.7.4 against `wucme --uacme` (issue 11, points 2-4 and 7).

Both tools run the same recording hook (tests/pebble/uacme_parity.py: RECORDER) on
the same Pebble, each in its own confdir, on a pseudo-terminal as an operator
would; the calls are compared in order with their arguments, their environment
and what the hook can reach: stdin, /dev/tty, the session.
"""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from .uacme_parity import (PARITY, Tool, calls, canon, expect, hook_calls, new_accounts,
                           run_pty, write_recorder)

pytestmark = PARITY

#: Set by uacme HEAD (and wucme) for the hook; 1.7.4 predates them.
HEAD_ONLY = {"UACME_METHOD", "UACME_TYPE", "UACME_IDENT", "UACME_TOKEN", "UACME_AUTH",
             "UACME_CONFDIR", "UACME_VERBOSE"}


def on_terminal(t: Tool, *args: str, env: dict[str, str],
                answers: list[tuple[str, str]] | None = None,
                cwd: Path | None = None) -> tuple[int, str]:
    return run_pty(t.argv(*args), {**t.env, **env}, answers, cwd=cwd)


def test_hook_gets_the_terminal_the_session_and_uacme_s_environment(
        tools: tuple[Tool, Tool], tmp_path: Path) -> None:
    """A manual dns-01 hook asks the operator on /dev/tty and waits for Enter: both tools
    give it the terminal as stdin, keep it in their session, and wait for it."""
    new_accounts(*tools)
    hook = write_recorder(tmp_path / "hooks" / "recorder")
    seen = {}
    for t in tools:
        log = tmp_path / f"{t.name}.log"
        rc, out = on_terminal(t, "-h", hook, "issue", "tty.example.org",
                              env={"HOOK_LOG": str(log), "HOOK_ASK": "1", "HOOK_SLEEP": "1"},
                              answers=[(r"then press Enter", "ok, done\r")])
        assert rc == 0, f"{t.name}: exit {rc}\n{out[-3000:]}"
        seen[t.name] = hook_calls(log)
    assert calls(tmp_path / "wucme.log") == calls(tmp_path / "uacme.log")
    u, w = ([c for c in seen[t] if c["type"] == "http-01"] for t in ("uacme", "wucme"))
    assert [c["method"] for c in u] == ["begin", "done"]
    for c in u + w:
        assert c["stdin_tty"] and c["dev_tty"] and c["same_session"] and c["same_pgrp"], c
        assert c["argv0"] == hook
    assert [c.get("typed") for c in w] == [c.get("typed") for c in u]
    assert u[0]["typed"] == "ok, done"
    for cu, cw in zip(u, w):
        extra = {k: v for k, v in cw["env"].items() if k not in cu["env"]}
        assert set(extra) <= HEAD_ONLY, f"wucme's hook environment has {extra}"
        mine = HEAD_ONLY | {"HOOK_LOG"}  # HOOK_LOG: each tool's own log
        assert {k: v for k, v in cw["env"].items() if k not in mine} == \
            {k: v for k, v in cu["env"].items() if k not in mine}
        assert cw["env"]["UACME_METHOD"] == cw["method"]
        assert cw["env"]["UACME_TOKEN"] == "TOKEN" and cw["env"]["UACME_AUTH"] == "AUTH"
        assert cw["env"]["UACME_VERBOSE"] == "1"
        assert cw["env"]["UACME_CONFDIR"] == str(tools[1].confdir)


def test_hook_timeout_is_opt_in(tools: tuple[Tool, Tool], tmp_path: Path) -> None:
    """uacme waits for its hook however long it takes, and so does wucme unless
    WUCME_HOOK_TIMEOUT says otherwise: then the hook is killed and the issue fails."""
    u, w = tools
    new_accounts(w)
    hook = write_recorder(tmp_path / "hooks" / "recorder")
    log = tmp_path / "slow.log"
    env = {"HOOK_LOG": str(log), "HOOK_SLEEP": "2"}
    expect(w("-h", hook, "issue", "slow.example.org", env=env), 0, "wucme")
    r = w("-h", hook, "issue", "slower.example.org", env={**env, "WUCME_HOOK_TIMEOUT": "0.5"})
    expect(r, 2, "wucme with WUCME_HOOK_TIMEOUT=0.5")
    assert not (w.confdir / "slower.example.org" / "cert.pem").exists()
    r = w("-h", hook, "issue", "slower.example.org", env={"WUCME_HOOK_TIMEOUT": "soon"})
    expect(r, 2, "wucme with WUCME_HOOK_TIMEOUT=soon")
    assert "WUCME_HOOK_TIMEOUT" in r.stderr


def test_hook_without_a_slash_is_run_from_the_current_directory(
        tools: tuple[Tool, Tool], tmp_path: Path) -> None:
    """-h myhook runs ./myhook (execl), never a myhook found in PATH; without ./myhook
    both refuse before anything is done."""
    new_accounts(*tools)
    here, elsewhere = tmp_path / "here", tmp_path / "onpath"
    write_recorder(here / "myhook")
    write_recorder(elsewhere / "myhook")
    for t in tools:
        log = tmp_path / f"{t.name}-path.log"
        env = {"PATH": f"{elsewhere}:{os.environ['PATH']}", "HOOK_LOG": str(log)}
        expect(t.bare("-v", "-c", str(t.confdir), "-a", t.directory_url, "-h", "myhook",
                      "issue", "cwd.example.org", env=env, cwd=here), 0, t.name)
        assert ("begin", "http-01", "cwd.example.org") in calls(log)
        assert {c["argv0"] for c in hook_calls(log)} == {"myhook"}  # $0 as given
        r = t.bare("-c", str(t.confdir), "-a", t.directory_url, "-h", "myhook", "issue",
                   "nocwd.example.org", env=env, cwd=tmp_path)
        expect(r, 2, f"{t.name} without ./myhook")
        assert not (t.confdir / "nocwd.example.org").exists()
        assert not any(c["ident"] == "nocwd.example.org" for c in hook_calls(log))


def test_hook_stdin_is_the_tools_stdin(tools: tuple[Tool, Tool], tmp_path: Path) -> None:
    """Without a terminal the hook reads what the tool was given on stdin (uacme's fork)."""
    new_accounts(*tools)
    hook = tmp_path / "stdin-hook"
    hook.write_text('#!/bin/sh\n[ "$2" = http-01 ] || exit 1\n'
                    'read line || line=EOF\necho "$1 $line" >> "$HOOK_LOG"\n'
                    '[ "$1" = begin ] && [ "$2" = http-01 ] && '
                    'printf %s "$5" > "$UACME_CHALLENGE_PATH/$4"\n'
                    'exit 0\n')
    hook.chmod(0o755)
    for t in tools:
        log = tmp_path / f"{t.name}-stdin.log"
        r = subprocess.run(t.argv("-h", str(hook), "issue", "stdin.example.org"),
                           env={**t.env, "HOOK_LOG": str(log)}, input="first\nsecond\n",
                           capture_output=True, text=True, timeout=120)
        expect(r, 0, t.name)
        assert log.read_text().splitlines() == ["begin first", "done second"], t.name


NAMES3 = ("one.example.org", "two.example.org", "three.example.org")


def test_a_name_no_challenge_is_accepted_for_ends_the_offering(
        tools: tuple[Tool, Tool], tmp_path: Path) -> None:
    """uacme offers the first name's three challenges, none is accepted, it stops: three
    begins, nothing for the second name.  wucme calls the same hooks, in either order."""
    new_accounts(*tools)
    hook = write_recorder(tmp_path / "hooks" / "recorder")
    seen = {}
    for t, order in ((tools[0], ""), (tools[1], "WUCME"), (tools[1], "UACME")):
        log = tmp_path / f"{t.name}-{order}.log"
        env = {"HOOK_LOG": str(log), "HOOK_DECLINE": "a.example.org,b.example.org",
               "WUCME_HOOK_ORDER": order}
        expect(t("-h", hook, "issue", "a.example.org", "b.example.org", env=env), 2, t.name)
        seen[order] = canon(calls(log, every_type=True))
    assert seen[""] == [("begin", ty, "name1") for ty in ("dns-01", "http-01", "tls-alpn-01")]
    assert seen["WUCME"] == seen["UACME"] == seen[""]


def test_hooks_never_overlap_and_uacme_order_is_uacme_s_sequence(
        tools: tuple[Tool, Tool], tmp_path: Path) -> None:
    """Three names: every hook call starts after the one before it ended, in both orders;
    WUCME_HOOK_ORDER=UACME gives uacme's begin, done, begin, done ... sequence, the
    default every begin, then every done, each in the order's authorization order."""
    new_accounts(*tools)
    hook = write_recorder(tmp_path / "hooks" / "recorder")
    seen = {}
    for t, order in ((tools[0], ""), (tools[1], "WUCME"), (tools[1], "UACME")):
        log = tmp_path / f"{t.name}-{order}.log"
        env = {"HOOK_LOG": str(log), "HOOK_SLEEP": "0.2", "WUCME_HOOK_ORDER": order}
        expect(t("-f", "-h", hook, "issue", *NAMES3, env=env), 0, f"{t.name} {order}")
        assert not any(c["overlap"] for c in hook_calls(log)), f"{t.name} {order}: overlap"
        seen[order] = canon(calls(log))
    names = ("name1", "name2", "name3")
    assert seen[""] == [(m, "http-01", n) for n in names for m in ("begin", "done")]
    assert seen["UACME"] == seen[""]
    assert seen["WUCME"] == [(m, "http-01", n) for m in ("begin", "done") for n in names]


def test_a_failing_challenge_in_uacme_order(tools: tuple[Tool, Tool], tmp_path: Path) -> None:
    """One of three names is answered wrongly: uacme runs begin, done for each name before
    it, begin, failed for it, and stops; so does wucme in uacme's order.  In wucme's order
    every begun challenge ends with done or failed, one call at a time."""
    new_accounts(*tools)
    hook = write_recorder(tmp_path / "hooks" / "recorder")
    seen = {}
    for t, order in ((tools[0], ""), (tools[1], "UACME"), (tools[1], "WUCME")):
        log = tmp_path / f"{t.name}-{order}.log"
        env = {"HOOK_LOG": str(log), "HOOK_BREAK": NAMES3[1], "WUCME_HOOK_ORDER": order}
        expect(t("-h", hook, "issue", *NAMES3, env=env), 2, f"{t.name} {order}")
        assert not any(c["overlap"] for c in hook_calls(log))
        seen[order] = canon(calls(log), keep=(NAMES3[1],))
    bad = NAMES3[1]
    for order in ("", "UACME"):  # Pebble orders the authorizations at random: where bad is varies
        before = [c for c in seen[order] if c[2] != bad]
        assert seen[order] == before + [("begin", "http-01", bad), ("failed", "http-01", bad)]
        assert before == [(m, "http-01", f"name{i + 1}") for i in range(len(before) // 2)
                          for m in ("begin", "done")]
    begins = [c for c in seen["WUCME"] if c[0] == "begin"]
    assert sorted(begins) == sorted(("begin", "http-01", n) for n in ("name1", "name2", bad))
    assert seen["WUCME"][:3] == begins
    ends = sorted((c[2], c[0]) for c in seen["WUCME"][3:])
    assert [n for n, _ in ends] == sorted(("name1", "name2", bad))
    assert (bad, "failed") in ends


PROMPT = re.compile(r"challenge=(\S+) ident=(\S+) token=(\S+) key_auth=(\S+)\s*\r?\n"
                    r".*type 'y' followed by a newline to accept challenge, anything else to skip")


def test_without_a_hook_the_operator_answers_one_challenge_at_a_time(
        tools: tuple[Tool, Tool], tmp_path: Path) -> None:
    """No -h: each challenge is shown on the terminal and answered before the next is shown.
    The operator puts the http-01 file in place and types a blank line, then ' y' (scanf's
    " %c" skips white space, newlines included); other types get 'n'."""
    new_accounts(*tools)
    for t in tools:
        webroot = Path(t.env["UACME_CHALLENGE_PATH"])
        answered: list[tuple[str, str]] = []

        def operator(shown: str) -> str | None:
            m = PROMPT.search(shown)
            if not m:
                return None
            ctype, ident, token, key_auth = m.groups()
            answered.append((ctype, ident))
            if ctype != "http-01":
                return "n\n"
            (webroot / token).write_text(key_auth)
            return "\n  y\n"

        rc, out = run_pty(t.argv("issue", *NAMES3[:2]), t.env, operator)
        assert rc == 0, f"{t.name}: exit {rc}\n{out[-3000:]}"
        assert (t.confdir / NAMES3[0] / "cert.pem").exists()
        assert sorted(i for ty, i in answered if ty == "http-01") == sorted(NAMES3[:2]), answered
        assert len(PROMPT.findall(out)) == len(answered), f"{t.name}: prompts not one at a time"
