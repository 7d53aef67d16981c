"""Accounts (RFC 8555 §7.3): ports of uacme.c's account_* functions and EAB."""
from __future__ import annotations

import json
import os
import re
from typing import Any, TextIO

from wucme import crypto
from wucme.core import jws
from wucme.core.b64 import b64url_decode
from wucme.core.problem import AccountDoesNotExist
from wucme.errors import ProtocolViolation, UsageError, WucmeError
from wucme.uacme.acme import AcmeSession, acme_post
from wucme.uacme.files import link_backup
from wucme.uacme.msg import scan_char

_EAB = re.compile(r"^([^:]+):([-_A-Za-z0-9]+)(?::([0-9]+))?$")


def eab_parse(a: AcmeSession, s: str) -> None:
    """Port of uacme.c:eab_parse() as intended: KEYID:KEY[:BITS], BITS 256 (default), 384, 512.

    uacme HEAD inverts the BITS test and writes before its buffer when BITS is
    omitted; this is what it meant to do.
    """
    m = _EAB.match(s)
    if not m:
        raise UsageError("EAB credentials must be KEYID:KEY[:BITS] with KEY in base64url")
    bits = int(m.group(3) or 256)
    if bits not in (256, 384, 512):
        raise UsageError("EAB BITS must be 256, 384 or 512")
    try:
        key = b64url_decode(m.group(2))
    except ValueError:
        raise UsageError("EAB KEY is not valid base64url") from None
    a.eab_keyid, a.eab_key, a.eab_bits = m.group(1), key, bits


def eab_encode(a: AcmeSession, url: str) -> dict[str, Any]:
    """Port of uacme.c:eab_encode(): the externalAccountBinding JWS (RFC 8555 §7.3.4)."""
    assert a.eab_keyid and a.eab_key is not None
    jwk, _ = jws.jws_jwk(a.key)
    protected = jws.jws_protected_eab(a.eab_bits, a.eab_keyid, url)
    return json.loads(jws.jws_encode_hmac(protected, jwk, a.eab_key, a.eab_bits))


def _confirm(a: AcmeSession, question: str, stdin: TextIO | None) -> bool:
    """uacme's msg(0, ...) and scanf(" %c"): the first non-blank character must be y."""
    a.log.warn(question)
    return (scan_char(stdin) or "").lower() == "y"


def account_new(a: AcmeSession, yes: bool, stdin: TextIO | None = None) -> None:
    """Port of uacme.c:account_new(): create the account, agreeing to the terms (RFC 8555 §7.3)."""
    url = a.url("newAccount")
    a.log(1, f"creating new account at {url}")
    r = acme_post(a, url, {"onlyReturnExisting": True})
    if r.status == 200:
        raise WucmeError(f"account already exists at {r.location}", ident="ACCTEXISTS")
    prob = r.problem()
    if not isinstance(prob, AccountDoesNotExist):
        r.expect(200, what=f"create account at {url}")
    meta = a.dir.get("meta") or {}
    if meta.get("externalAccountRequired") is True and not a.eab_keyid:
        raise WucmeError(
            "this ACME server requires external credentials, use -e KEYID:KEY", ident="EABREQ"
        )
    terms = meta.get("termsOfService")
    if isinstance(terms, str) and terms:
        if yes:
            a.log.warn(f"terms at {terms} autoaccepted (-y)")
        elif not _confirm(a, f"type 'y' to accept the terms at {terms}", stdin):
            raise WucmeError("terms not agreed to, aborted", ident="NOTERMS")
    payload: dict[str, Any] = {"termsOfServiceAgreed": True}
    if a.email:
        payload["contact"] = [f"mailto:{a.email}"]
    if a.eab_keyid:
        payload["externalAccountBinding"] = eab_encode(a, url)
    r = acme_post(a, url, payload).expect(201, what=f"create account at {url}")
    if r.jstr("status") != "valid":
        raise ProtocolViolation(f"account created but status is not valid ({r.jstr('status')})")
    if not r.location:
        raise ProtocolViolation("account created but location not found")
    a.kid, a.account = r.location, r.json
    a.log(1, f"account created at {a.kid}")


def account_retrieve(a: AcmeSession) -> None:
    """Port of uacme.c:account_retrieve(): find the account URL for our key (RFC 8555 §7.3.1)."""
    url = a.url("newAccount")
    a.log(1, f"retrieving account at {url}")
    r = acme_post(a, url, {"onlyReturnExisting": True})
    if isinstance(r.problem(), AccountDoesNotExist):
        raise WucmeError("no account found for this key; create one with 'new'", ident="NOACCOUNT")
    r.expect(200, what=f"retrieve account at {url}")
    if r.jstr("status") != "valid":
        raise WucmeError(f"invalid account status ({r.jstr('status')})", ident="ACCTSTATUS")
    if not r.location:
        raise ProtocolViolation("account location not found")
    a.kid, a.account = r.location, r.json
    a.log(1, f"account location: {a.kid}")


def account_update(a: AcmeSession) -> None:
    """Port of uacme.c:account_update(): set or remove the contact email (RFC 8555 §7.3.2)."""
    assert a.kid
    contacts = (a.account or {}).get("contact") or []
    if not isinstance(contacts, list) or not all(
        isinstance(c, str) and c.lower().startswith("mailto:") for c in contacts
    ):
        raise ProtocolViolation("failed to parse account contacts")
    current = [c[len("mailto:"):].lower() for c in contacts]
    if a.email:
        update = current != [a.email.lower()]
    else:
        update = bool(current)
    if not update:
        a.log(1, f"email is already up to date for account at {a.kid}")
        return
    payload = {"contact": [f"mailto:{a.email}"] if a.email else []}
    if a.email:
        a.log(1, f"updating account email to {a.email} at {a.kid}")
    else:
        a.log(1, f"removing account email at {a.kid}")
    r = acme_post(a, a.kid, payload).expect(200, what=f"update account email at {a.kid}")
    a.account = r.json
    a.log(1, f"account at {a.kid} updated")


def account_keychange(a: AcmeSession, never: bool, type: str, bits: int, keyprefix: str,
                      key_mode: int = 0o400) -> None:
    """Port of uacme.c:account_keychange(): roll the account key (RFC 8555 §7.3.5).

    The new key is private/newkey.pem (generated unless -n); after the CA
    agrees, key.pem is hard-linked to key-EPOCH.pem and newkey.pem renamed over it.
    """
    assert a.kid
    newfile = os.path.join(keyprefix, "newkey.pem")
    keyfile = os.path.join(keyprefix, "key.pem")
    newkey = crypto.key_load(newfile, None if never else type, bits, mode=key_mode,
                             log=a.log.at(1))
    url = a.url("keyChange")
    oldjwk, _ = jws.jws_jwk(a.key)
    inner = jws.jws_encode(jws.jws_protected_jwk(None, url, newkey),
                           {"account": a.kid, "oldKey": oldjwk}, newkey)
    a.log(1, f"changing account key at {url}")
    acme_post(a, url, json.loads(inner)).expect(200, what=f"change account key at {url}")
    link_backup(a.log, keyfile)
    os.rename(newfile, keyfile)
    a.key = newkey
    a.log(1, f"account key changed, new key in {keyfile}")


def account_deactivate(a: AcmeSession) -> None:
    """Port of uacme.c:account_deactivate() (RFC 8555 §7.3.6)."""
    assert a.kid
    a.log(1, f"deactivating account at {a.kid}")
    acme_post(a, a.kid, {"status": "deactivated"}).expect(200, what=f"deactivate account at {a.kid}")
    a.log(1, f"account at {a.kid} deactivated")
