"""VMS message lines (`%WUCME-E-IDENT, text`), their exit statuses, and the error base that
carries them: what every layer needs to report a failure, without the `Condition` value type
(wucme.vms.condition, which re-exports all of this).

Kept apart so the CGI answer to an http-01 challenge, a new process per request, imports no
more than this to say what went wrong (docs/performance.md, "Start-up").
"""

from __future__ import annotations

__all__ = ["FACILITY", "SEVERITIES", "VmsError", "check_severity", "exit_status", "format_message"]

#: The facility name every wucme message carries.
FACILITY = "WUCME"

# VMS severity codes (STS$K_WARNING=0, SUCCESS=1, ERROR=2, INFO=3, SEVERE=4).
SEVERITY_CODE = {"W": 0, "S": 1, "E": 2, "I": 3, "F": 4}
SEVERITIES = tuple(SEVERITY_CODE)

# Linux exit statuses: success and information are success; the rest grow with severity.
_EXIT = {"S": 0, "I": 0, "W": 1, "E": 2, "F": 4}


def check_severity(severity: str) -> str:
    """*severity* upper-cased; ValueError unless it is one of S, I, W, E, F."""
    sev = severity.upper()
    if sev not in SEVERITY_CODE:
        raise ValueError(f"severity must be one of S, I, W, E, F, not {severity!r}")
    return sev


def format_message(severity: str, ident: str, text: str, facility: str = FACILITY) -> str:
    """The primary message line VMS $PUTMSG prints: ``%WUCME-E-BADHOST, text``."""
    return f"%{facility}-{check_severity(severity)}-{ident.upper()}, {text}"


def exit_status(severity: str) -> int:
    """Linux exit status for a final severity: S, I -> 0; W -> 1; E -> 2; F -> 4."""
    return _EXIT[check_severity(severity)]


class VmsError(Exception):
    """Base of the errors `wucme.vms` raises; carries an ident and severity for the message."""

    ident = "VMSERR"
    severity = "E"

    def __init__(self, text: str, ident: str | None = None, severity: str | None = None):
        super().__init__(text)
        self.text = text
        if ident:
            self.ident = ident
        if severity:
            self.severity = check_severity(severity)

    def message(self) -> str:
        return format_message(self.severity, self.ident, self.text)
