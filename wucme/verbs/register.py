"""`wucme register [email]`: a new account key and a new account (RFC 8555 §7.3).

The terms of service are accepted (the seed: registration is the administrator's agreement) and
their URL shown.  Run again, it makes a NEW key and a NEW account; the previous key is kept as an
earlier version of WUCME_ACCOUNT.PEM.  The new key is written only once the CA has made the
account, so a failed registration leaves the old account in use.
"""
from __future__ import annotations

import re

from wucme.command import Command, Verb
from wucme.errors import UsageError
from wucme.obtain import new_key
from wucme.settings import ca_directory, eab, key_spec
from wucme.repository import Repository, key_description
from wucme.session import account_session
from wucme.uacme.account import account_new
from wucme.verbs.common import VerbLog
from wucme.result import Result, Show

VERB = Verb("register", min_params=0, max_params=1,
            help="Create the account key and register an account with the CA.")

_EMAIL = re.compile(r"[^@\s,;<>\"]+@[^@\s,;<>\"]+\.[^@\s,;<>\"]+")


def run(cmd: Command, show: Show | None = None) -> Result:
    email = cmd.params[0] if cmd.params else None
    if email is not None:
        if email.lower().startswith("mailto:"):
            email = email[7:]
        if not _EMAIL.fullmatch(email):
            raise UsageError(f"{email!r} is not an email address", ident="BADEMAIL")
    repo = Repository.here()
    repo.ensure_writable()
    key_spec()
    directory = ca_directory()
    with repo.lock_account():  # two at once: each new key saved, the other's kept as a version
        had_account = repo.account_key_path.exists()
        with account_session(VerbLog(), key=new_key(), directory=directory, email=email, eab=eab()) as a:
            account_new(a, yes=True)
        repo.save_account_key(a.key)
    result = Result("Register", show=show)
    terms = (a.dir.get("meta") or {}).get("termsOfService")
    if isinstance(terms, str) and terms:
        result.say("I", "TERMS", f"terms of service at {terms} accepted")
    result.say("S", "REGISTERED", f"account {a.kid}{' for ' + email if email else ''}, "
               f"{key_description(a.key)} key in {repo.account_key_path}")
    if had_account:
        result.say("I", "NEWACCOUNT", "the previous account key is kept as an earlier version; "
                   "issue the managed certificates again under the new account")
    return result
