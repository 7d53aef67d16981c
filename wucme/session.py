"""The account session: what every verb, the admin pages and the renewal pass do before they
ask the CA anything, and after.

    with account_session(log, key=repo.load_account_key(), retrieve=True) as a:
        ...  # a is the uacme port's AcmeSession: directory fetched, account URL known

opens the transport WUCME_HTTP names (trusting WUCME_CA_BUNDLE), fetches the directory of
WUCME_CA (RFC 8555 §7.1.1), finds the account of the key when asked (§7.3.1, uacme's
account_retrieve), and closes the transport however the block ends.  `wucme --uacme` builds its
session with the same `open_session` and keeps uacme's own order of the rest.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from wucme import settings
from wucme.core.jws import PrivateKey
from wucme.http import make_transport
from wucme.uacme.account import account_retrieve, eab_parse
from wucme.uacme.acme import AcmeSession, acme_bootstrap
from wucme.uacme.msg import Msg

__all__ = ["open_session", "account_session", "ensure_account"]


def open_session(directory: str, log: Msg) -> AcmeSession:
    """A session (uacme's acme_t) on the transport WUCME_HTTP names, trusting WUCME_CA_BUNDLE;
    WUCME_POLL_TIMEOUT bounds each polling loop.  The caller closes its transport."""
    a = AcmeSession(transport=make_transport(settings.transport_name(), settings.http_config()),
                    directory=directory, log=log)
    timeout = settings.poll_timeout()
    if timeout is not None:
        a.poll_deadline = timeout
    return a


@contextmanager
def account_session(log: Msg, *, key: PrivateKey | None = None, directory: str | None = None,
                    retrieve: bool = False, email: str | None = None, eab: str | None = None,
                    retry_delay: float | None = None) -> Iterator[AcmeSession]:
    """A session with the directory fetched and, with *retrieve*, the account of *key* found.

    *directory* defaults to WUCME_CA (read before anything is opened, so a bad value costs no
    connection); *email* and *eab* (`KEYID:KEY[:BITS]`) are for a new account; *retry_delay*
    shortens the pause between tries on a transport failure (a page someone is waiting for).
    The transport is closed on the way out, whatever happened inside.
    """
    a = open_session(directory if directory is not None else settings.ca_directory(), log)
    try:
        a.key, a.email = key, email
        if eab:
            eab_parse(a, eab)
        if retry_delay is not None:
            a.transport_retry_delay = retry_delay
        acme_bootstrap(a)
        if retrieve:
            account_retrieve(a)
        yield a
    finally:
        a.transport.close()


def ensure_account(a: AcmeSession) -> None:
    """Find the account of the session's key unless it is known already (the renewal pass asks
    only once something is due)."""
    if a.kid is None:
        account_retrieve(a)
