"""wucme (wµCME): a certificate management environment for ACME CAs.

A Python port of the WASD web server's wµCME, itself built on the C client
uacme.  The uacme port lives in `wucme.uacme`; the protocol core without I/O
in `wucme.core`; the HTTP client in `wucme.http`; VMS emulation in `wucme.vms`.
"""

__version__ = "0.1.0"
#: The uacme release whose behaviour `wucme --uacme` follows (HEAD features included).
UACME_VERSION = "1.7.6"

__all__ = ["__version__", "UACME_VERSION", "version_text"]


def version_text() -> str:
    """The `version` verb's message text (without the %WUCME-I-VERSION prefix)."""
    return f"wucme {__version__} (uacme {UACME_VERSION} port)"
