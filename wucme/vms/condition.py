"""VMS condition values and messages (`%WUCME-E-IDENT, text`) and their Linux exit statuses."""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "FACILITY",
    "FACILITY_NUMBER",
    "SEVERITIES",
    "Condition",
    "VmsError",
    "condition_value",
    "exit_status",
    "format_message",
    "format_messages",
    "parse_message",
]

#: The facility name every wucme message carries.
FACILITY = "WUCME"
#: Facility number in condition values.  VMS reserves numbers with bit 11 of the
#: facility field (bit 27 of the value, STS$V_CUST_DEF) for customers; 1939 is
#: wucme's choice below that bit, and the bit is set in every value.
FACILITY_NUMBER = 1939

# VMS severity codes (STS$K_WARNING=0, SUCCESS=1, ERROR=2, INFO=3, SEVERE=4).
_SEVERITY_CODE = {"W": 0, "S": 1, "E": 2, "I": 3, "F": 4}
SEVERITIES = tuple(_SEVERITY_CODE)

# Linux exit statuses: success and information are success; the rest grow with severity.
_EXIT = {"S": 0, "I": 0, "W": 1, "E": 2, "F": 4}


def _check(severity: str) -> str:
    sev = severity.upper()
    if sev not in _SEVERITY_CODE:
        raise ValueError(f"severity must be one of S, I, W, E, F, not {severity!r}")
    return sev


def format_message(severity: str, ident: str, text: str, facility: str = FACILITY) -> str:
    """The primary message line VMS $PUTMSG prints: ``%WUCME-E-BADHOST, text``."""
    return f"%{facility}-{_check(severity)}-{ident.upper()}, {text}"


def parse_message(line: str, facility: str = FACILITY) -> Condition | None:
    """The condition a `format_message` line carries, or None when *line* is not one."""
    m = re.fullmatch(rf"%{re.escape(facility)}-([SIWEF])-([A-Z0-9_$]+), (.*)", line, re.S)
    return Condition(m.group(1), m.group(2), m.group(3), facility=facility) if m else None


def format_messages(conditions: list[Condition]) -> list[str]:
    """A message vector: the first line starts with ``%``, continuation lines with ``-``."""
    lines = [c.message() for c in conditions]
    return [line if i == 0 else "-" + line[1:] for i, line in enumerate(lines)]


def exit_status(severity: str) -> int:
    """Linux exit status for a final severity: S, I -> 0; W -> 1; E -> 2; F -> 4."""
    return _EXIT[_check(severity)]


def condition_value(severity: str, msgno: int) -> int:
    """A 32-bit VMS condition value, laid out as the MESSAGE utility lays it out.

    Bits 0-2 severity, 3-14 message number, 15 facility-specific, 16-27 facility
    number with bit 27 the customer-facility bit.
    """
    if not 0 <= msgno < 1 << 12:
        raise ValueError("message number must be in 0..4095")
    return (
        (1 << 27)
        | (FACILITY_NUMBER << 16)
        | (1 << 15)
        | (msgno << 3)
        | _SEVERITY_CODE[_check(severity)]
    )


@dataclass(frozen=True)
class Condition:
    """One VMS condition: facility, severity, ident and text (msgno only for the value)."""

    severity: str
    ident: str
    text: str
    msgno: int = 0
    facility: str = FACILITY

    def __post_init__(self) -> None:
        object.__setattr__(self, "severity", _check(self.severity))
        object.__setattr__(self, "ident", self.ident.upper())

    def message(self) -> str:
        return format_message(self.severity, self.ident, self.text, self.facility)

    @property
    def value(self) -> int:
        return condition_value(self.severity, self.msgno)

    @property
    def exit_status(self) -> int:
        return exit_status(self.severity)

    def __str__(self) -> str:
        return self.message()


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
            self.severity = _check(severity)

    def message(self) -> str:
        return format_message(self.severity, self.ident, self.text)
