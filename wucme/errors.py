"""The exception every wucme failure is raised as, carrying its VMS message ident.

A WucmeError prints as a VMS message (`%WUCME-E-BADHOST, text`) and maps to an
exit status; faces catch it, so a user sees the message and never a traceback.
"""
from __future__ import annotations

from wucme.vms.message import VmsError


class WucmeError(VmsError):
    """A failure with a VMS-style message ident and severity (E or F).

    The VMS layer's own errors share the base, so a face catches one kind.
    """

    ident = "ERROR"
    severity = "E"


class UsageError(WucmeError):
    ident = "USAGE"


class BadIdentifier(WucmeError):
    """An identifier the CA must never see: rejected before any request (RFC 8555 §7.1.4)."""

    ident = "BADHOST"


class FileError(WucmeError):
    """A file that cannot be read or written (the SYSPRV of the seed on VMS)."""

    ident = "FILEERR"


class ProtocolViolation(WucmeError):
    """The CA answered something RFC 8555 does not allow (wrong status, missing member)."""

    ident = "PROTOCOL"


class PollTimeout(WucmeError):
    """An order, authorization or challenge did not reach a final state in time."""

    ident = "TIMEOUT"
