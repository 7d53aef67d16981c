"""`wucme revoke file [/reason=...]`: revoke the certificate in a file (RFC 8555 §7.6).

The file is a repository WUCME_C file (by name or path) or any PEM certificate; the request is
signed by the account key.  The file itself is left in place (a server may still point at it);
the repository's state marks the certificate revoked, and `manage` leaves it alone until
`wucme issue` replaces it.
"""
from __future__ import annotations

from pathlib import Path

from cryptography import x509

from wucme import crypto
from wucme.command import Command, Qualifier, Verb, match_keyword
from wucme.errors import FileError, UsageError
from wucme.core.times import iso, utc_now
from wucme.crypto import PrivateKey
from wucme.repository import Managed, Repository
from wucme.session import account_session
from wucme.uacme.cert import cert_revoke_leaf
from wucme.verbs.common import VerbLog
from wucme.result import Result, Show
from wucme.vms.filespec import is_vms_spec, to_path

#: RFC 5280 §5.3.1 CRLReason codes (7 is unused).
REASONS = {"unspecified": 0, "keyCompromise": 1, "cACompromise": 2, "affiliationChanged": 3,
           "superseded": 4, "cessationOfOperation": 5, "certificateHold": 6, "removeFromCRL": 8,
           "privilegeWithdrawn": 9, "aACompromise": 10}

VERB = Verb("revoke", qualifiers=(Qualifier("reason", "required",
                                            help="KEYCOMPROMISE, SUPERSEDED, ... or a number"),
                                 Qualifier("nowait", help="BUSY at once when another process "
                                           "works on this certificate")),
            min_params=1, max_params=1,
            help="Request the CA to revoke the certificate contained in the specified file.")


def reason_code(value: str | None) -> tuple[int, str]:
    if value is None:
        return 0, "unspecified"
    if value.isdigit():
        n = int(value)
        names = {v: k for k, v in REASONS.items()}
        if n not in names:
            raise UsageError(f"revocation reason {n} is not an RFC 5280 code", ident="BADREASON")
        return n, names[n]
    name = match_keyword(value, list(REASONS), "revocation reason", ident="IVKEYW")
    return REASONS[name], name


def find_file(spec: str, repo: Repository) -> Path:
    path = to_path(spec) if is_vms_spec(spec) else Path(spec)
    if not path.exists() and not path.is_absolute():
        for cand in (repo.path / spec, repo.path / spec.upper()):
            if cand.exists():
                return cand
    if not path.is_file():
        raise FileError(f"no such file {spec}", ident="NOFILE")
    return path


def run(cmd: Command, show: Show | None = None) -> Result:
    code, name = reason_code(cmd.value("reason"))
    repo = Repository.here()
    path = find_file(cmd.params[0], repo)
    try:
        certs = crypto.cert_load(path)
    except crypto.CryptoError as e:
        raise FileError(f"{path}: {e.text}", ident="NOCERT") from None
    if not certs:
        raise FileError(f"no certificate in {path}", ident="NOCERT")
    managed = repo.find(path)
    if managed is not None:
        repo.ensure_writable()
    key = repo.load_account_key()
    # A managed certificate's lock: no renewal of it runs while it is revoked.
    lock = (repo.lock_certificate(managed.cert_name, wait=not cmd.qualifiers.get("nowait"))
            if managed is not None else None)
    try:
        return _revoke(repo, path, certs, managed, key, code, name, show)
    finally:
        if lock is not None:
            lock.release()


def _revoke(repo: Repository, path: Path, certs: list[x509.Certificate], managed: Managed | None,
            key: PrivateKey, code: int, name: str, show: Show | None) -> Result:
    serial = crypto.serial_hex(certs[0].serial_number)
    if managed is not None:
        # Read again under the lock: another revoke of this certificate may have ended while
        # this one waited for it; the CA would only answer alreadyRevoked (RFC 8555 §7.6).
        # keyCompromise still goes to the CA: a CA may let it replace an earlier reason.
        state = repo.load_state(managed.hosts[0])
        if state.status == "revoked" and state.serial == serial and code != REASONS["keyCompromise"]:
            return Result("Revoke", show=show).say(
                "I", "ALREADYREVOKED", f"certificate {serial} in {path.name} was revoked already "
                f"({state.last_result}); nothing sent to the CA")
    with account_session(VerbLog(), key=key, retrieve=True) as a:
        cert_revoke_leaf(a, certs[0], code, str(path))  # the file stays where it is
    if managed is not None:
        repo.record_attempt(managed.state, "revoked", f"revoked ({name}) {iso(utc_now())}")
    return Result("Revoke", show=show).say("S", "REVOKED", f"certificate {serial} in {path.name} revoked ({name})")
