"""`wucme certificates [/output=json]`: the managed certificates, as a table or as JSON.

The admin page /admin/cert shows the same result."""
from __future__ import annotations

from typing import Any

from wucme.command import Command, Qualifier, Verb
from wucme.core.times import iso, utc_now
from wucme.renewal import due
from wucme.repository import Managed, Repository
from wucme.settings import fixed_days
from wucme.result import Cell, Result, Show

VERB = Verb("certificates", qualifiers=(Qualifier("output", "required", keywords=("text", "json"),
                                                  help="TEXT (a table, default) or JSON"),),
            help="List the certificates currently being managed.")

HEADING = ("HOSTS", "FILE", "NOT AFTER", "DAYS", "STATE", "LAST RESULT")


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


def _row(r: dict[str, Any]) -> tuple[Cell, ...]:
    days = f"{r['days_left']:.0f}" if r["days_left"] is not None else "-"
    return (tuple(r["hosts"]), r["file"].rsplit("/", 1)[-1], r["not_after"] or "-", days, r["state"],
            r["last_result"] or "-")


def certificates(show: Show | None = None) -> Result:
    """The repository's certificates: a message, then a table (JSON: every record)."""
    repo = Repository.here()
    records = [record(m) for m in repo.managed()]
    result = Result("Certificates", data={"repository": str(repo.path), "certificates": records}, show=show)
    if not records:
        return result.say("I", "NOCERTS", f"no certificates managed in {repo.path}")
    n = len(records)
    result.say("S", "CERTS", f"{n} certificate{'s' if n != 1 else ''} in {repo.path}")
    return result.table(HEADING, [_row(r) for r in records])


def run(cmd: Command, show: Show | None = None) -> Result:
    return certificates(show)
