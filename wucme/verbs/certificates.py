"""`wucme certificates [/output=json]`: the managed certificates, as a table or as JSON."""
from __future__ import annotations

import json
from typing import Any

from wucme.command import Command, Qualifier, Verb
from wucme.renewal import due, fixed_days
from wucme.repository import Managed, Repository, iso, utc_now
from wucme.verbs.common import line, say

VERB = Verb("certificates", qualifiers=(Qualifier("output", "required", keywords=("text", "json"),
                                                  help="TEXT (a table, default) or JSON"),),
            help="List the certificates currently being managed.")


def condition(m: Managed) -> str:
    """valid, due, expired, revoked or missing: what `manage` would make of it (without ARI)."""
    if m.state.status == "revoked":
        return "revoked"
    if m.info is None:
        return "missing"
    left = m.days_left()
    if left is not None and left <= 0:
        return "expired"
    return "due" if due(m, utc_now(), None, fixed_days())[0] else "valid"


def record(m: Managed) -> dict[str, Any]:
    leaf = m.info
    left = m.days_left()
    return {
        "hosts": m.hosts,
        "file": str(m.cert_path),
        "key_file": str(m.key_path),
        "not_after": iso(leaf.not_valid_after_utc) if leaf is not None else None,
        "days_left": round(left, 2) if left is not None else None,
        "state": condition(m),
        "serial": format(leaf.serial_number, "x") if leaf is not None else m.state.serial,
        "key_type": m.state.key_type,
        "challenge": m.state.challenge,
        "status": m.state.status,
        "last_result": m.state.last_result or m.problem,
        "last_attempt": m.state.last_attempt,
        "next_attempt": m.state.next_attempt,
    }


def run(cmd: Command) -> int:
    repo = Repository.here()
    records = [record(m) for m in repo.managed()]
    if cmd.value("output", "text") == "json":
        line(json.dumps({"repository": str(repo.path), "certificates": records}, indent=1))
        return 0
    if not records:
        return say("I", "NOCERTS", f"no certificates managed in {repo.path}")
    rows = [("HOSTS", "FILE", "NOT AFTER", "DAYS", "STATE", "LAST RESULT")]
    for r in records:
        hosts = r["hosts"][0] + (f" +{len(r['hosts']) - 1}" if len(r["hosts"]) > 1 else "")
        days = f"{r['days_left']:.0f}" if r["days_left"] is not None else "-"
        rows.append((hosts, r["file"].rsplit("/", 1)[-1], r["not_after"] or "-", days, r["state"],
                     r["last_result"] or "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    for row in rows:
        line("  ".join(c.ljust(w) for c, w in zip(row[:5], widths)) + "  " + row[5])
    line(f"{len(records)} certificate{'s' if len(records) != 1 else ''} in {repo.path}")
    return 0
