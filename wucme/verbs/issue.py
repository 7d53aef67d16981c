"""`wucme issue host[,host...]`: the initial certification of up to 100 names.

Everything that can be checked locally is checked before the CA hears of it: the names (IDNA2008
A-labels, no wildcards, at most 100), the challenge settings, write access to the repository and
the account key.  The first name names the files.
"""
from __future__ import annotations

from wucme.core.ident import MAX_IDENTIFIERS, validate_identifiers
from wucme.command import Command, Qualifier, Verb, split_list
from wucme.errors import BadIdentifier, WucmeError
from wucme.challenge.solver import ChallengeSolver
from wucme.core.jws import jws_thumbprint
from wucme.obtain import host_list, obtain

from wucme.crypto import PrivateKey
from wucme.settings import ChallengeConfig, ca_directory, challenge_config, key_spec, load_command
from wucme.progress import Progress
from wucme.core.times import utc_now
from wucme.repository import Busy, Repository
from wucme.session import account_session
from wucme.uacme.ari import ari_replaces
from wucme.verbs.common import VerbLog
from wucme.result import Result, Show

VERB = Verb("issue", qualifiers=(Qualifier("progress", negatable=True,
                                           help="show each authorization's state (default)"),
                                 Qualifier("nowait", help="BUSY at once when another process "
                                           "works on this certificate")),
            min_params=1, max_params=None,
            help="Request a certificate for the host or comma-separated list of hosts.")


def names_from(params: list[str]) -> list[str]:
    """The host list as the CA will see it: A-labels, duplicates removed, no wildcards."""
    raw = split_list(params)
    for n in raw:
        if n.startswith("*"):
            raise BadIdentifier(f"{n!r}: wucme does not support wildcard certificates", ident="WILDCARD")
    names = validate_identifiers(raw, wildcard=False)
    if len(names) > MAX_IDENTIFIERS:  # validate_identifiers enforces it too; be explicit
        raise BadIdentifier(f"{len(names)} names: at most {MAX_IDENTIFIERS}", ident="TOOMANY")
    return names


def run(cmd: Command, show: Show | None = None) -> Result:
    names = names_from(cmd.params)
    config = challenge_config()
    key_spec()
    directory = ca_directory()
    repo = Repository.here()
    repo.ensure_writable()
    account_key = repo.load_account_key()
    result = Result("Issue", show=show)
    # The certificate's lock: two orders for one certificate never run at once.  One that had
    # to wait finds the certificate issued meanwhile for the same names, and orders nothing.
    before = _issued(repo, names)
    try:
        lock = repo.lock_certificate(repo.cert_path(names[0]).name, wait=False)
    except Busy:
        if cmd.qualifiers.get("nowait"):
            raise
        result.say("I", "WAITING", f"another process is working on {repo.cert_path(names[0]).name}: waiting")
        lock = repo.lock_certificate(repo.cert_path(names[0]).name)
        now = _issued(repo, names)
        if now is not None and now != before:
            lock.release()
            return result.say("S", "CURRENT", f"certificate for {', '.join(names)} in "
                              f"{repo.cert_path(names[0]).name} was issued by another process "
                              f"while this one waited (expires {now[1]}): nothing ordered")
    with lock:
        return _issue(cmd, repo, names, config, directory, account_key, result, show)


def _issued(repo: Repository, names: list[str]) -> tuple[str, str] | None:
    """(serial, notAfter) of the repository's certificate when it covers every name."""
    try:
        m = next((m for m in repo.managed() if m.cert_name == repo.cert_path(names[0]).name), None)
    except WucmeError:
        return None
    if m is None or m.info is None or not set(names) <= set(m.info.names):
        return None
    return format(m.info.serial_number, "x"), str(m.info.not_valid_after_utc)


def _issue(cmd: Command, repo: Repository, names: list[str], config: ChallengeConfig, directory: str,
           account_key: PrivateKey, result: Result, show: Show | None) -> Result:
    managed_before = repo.state_path(names[0]).exists()
    log = VerbLog()
    # Progress is drawn on the terminal as it happens: only for a face that shows as it goes.
    progress = Progress(names) if cmd.qualifiers.get("progress", True) and show is not None else None
    try:
        with account_session(log, key=account_key, directory=directory, retrieve=True) as a:
            replaces = ari_replaces(a, repo.cert_path(names[0]))
            def authorizing() -> None:  # once the CA accepted the order, not before it refuses
                result.say("I", "AUTHORIZING", f"{len(names)} name{'s' if len(names) != 1 else ''} "
                           f"by {config.type}")
            with ChallengeSolver(config, jws_thumbprint(account_key), log=lambda s: log(1, s)) as solver:
                state = obtain(a, repo, names, solver, challenge=config.type, replaces=replaces,
                               progress=progress,
                               on_authorize=authorizing if progress is not None else None)
    except WucmeError as e:
        if managed_before:  # a managed certificate: note the failure beside it
            st = repo.load_state(names[0])
            if not st.corrupt:
                from wucme.renewal import RETRY_AFTER_FAILURE  # (the renewal pass: only here)

                repo.record_attempt(st, "failed", f"failed: {e.text}", utc_now() + RETRY_AFTER_FAILURE)
        raise
    result.say("S", "ISSUED", f"certificate for {host_list(state)} in {repo.cert_path(names[0]).name}, "
               f"expires {state.not_after}")
    command = load_command()  # WUCME_LOAD: a failure is a warning, the certificate is saved
    if command and command.strip():
        from wucme.load import run_load_command  # (its subprocess machinery: only when defined)

        load = run_load_command(command)
        if load is not None:
            result.say("I", "LOADED", load.text) if load.ok else result.say("W", "LOADFAIL", load.text)
    return result
