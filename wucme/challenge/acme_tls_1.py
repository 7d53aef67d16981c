"""The ACME_TLS_1 agent: a server that asks a script for the acme-tls/1 certificate gets it here.

WASD (v12.3.0 and later) runs an agent when a ClientHello offers ``acme-tls/1``; given the SNI
host name, the agent answers from the challenge store's tls-alpn-01 entry with the validation
certificate and its key in PEM (RFC 8737 §3), or fails so the server aborts that handshake.
The interface is documented in docs/challenges.md.
"""

from __future__ import annotations

import os
import sys
from typing import IO

from cryptography.hazmat.primitives import serialization

from wucme.challenge.store import ChallengeStore
from wucme.challenge.tlsalpn import auth_digest, make_validation_cert
from wucme.vms.condition import format_message

__all__ = ["acme_tls_1_main", "SNI_VARIABLES"]

#: Where the host name is looked for when it is not the first argument, in this order.
SNI_VARIABLES = ("WUCME_SNI", "ACME_TLS_1_SNI", "SERVER_NAME")
USAGE = "usage: wucme acme_tls_1 [--digest] [SNI-host-name]"


def acme_tls_1_main(
    argv: list[str],
    environ: dict[str, str] | None = None,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
    store: ChallengeStore | None = None,
) -> int:
    """Print the validation certificate then its private key (PEM) for the SNI; 0, or 2 when none.

    ``--digest`` prints ualpn's AUTH value instead (base64url SHA-256 of the key authorization),
    for servers that build the certificate themselves.
    """
    env = os.environ if environ is None else environ
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    args = list(argv)
    digest_only = "--digest" in args
    args = [a for a in args if a != "--digest"]
    if len(args) > 1 or any(a.startswith("-") for a in args):
        err.write(USAGE + "\n")
        return 1
    sni = args[0] if args else next((env[v] for v in SNI_VARIABLES if env.get(v)), "")
    if not sni:
        err.write(format_message("E", "NOSNI", "no SNI host name given (argument or "
                                 + "/".join(SNI_VARIABLES) + ")") + "\n")
        return 1
    entry = (store or ChallengeStore()).alpn_lookup(sni, sni=True)
    if entry is None:
        err.write(format_message("E", "NOAUTH", f"no tls-alpn-01 authorization pending for {sni[:253]}") + "\n")
        return 2
    if digest_only:
        out.write(auth_digest(entry.key_authorization) + "\n")
        return 0
    cert, key = make_validation_cert(entry.ident, entry.key_authorization)
    out.write(cert.public_bytes(serialization.Encoding.PEM).decode("ascii"))
    out.write(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode("ascii")
    )
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(acme_tls_1_main(sys.argv[1:]))
