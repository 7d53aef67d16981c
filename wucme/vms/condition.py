"""VMS condition values and messages (`%WUCME-E-IDENT, text`) and their Linux exit statuses.

The message line, the exit statuses and VmsError live in wucme.vms.message (imported here
and re-exported), which a process that needs no Condition imports alone."""

from __future__ import annotations

import re
from typing import NamedTuple

from wucme.vms.message import (FACILITY, SEVERITIES, SEVERITY_CODE, VmsError, check_severity, exit_status,
                               format_message)

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

#: Facility number in condition values.  VMS reserves numbers with bit 11 of the
#: facility field (bit 27 of the value, STS$V_CUST_DEF) for customers; 1939 is
#: wucme's choice below that bit, and the bit is set in every value.
FACILITY_NUMBER = 1939

_check = check_severity


def parse_message(line: str, facility: str = FACILITY) -> Condition | None:
    """The condition a `format_message` line carries, or None when *line* is not one."""
    m = re.fullmatch(rf"%{re.escape(facility)}-([SIWEF])-([A-Z0-9_$]+), (.*)", line, re.S)
    return Condition(m.group(1), m.group(2), m.group(3), facility=facility) if m else None


def format_messages(conditions: list[Condition]) -> list[str]:
    """A message vector: the first line starts with ``%``, continuation lines with ``-``."""
    lines = [c.message() for c in conditions]
    return [line if i == 0 else "-" + line[1:] for i, line in enumerate(lines)]


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
        | SEVERITY_CODE[_check(severity)]
    )


class _ConditionFields(NamedTuple):
    severity: str
    ident: str
    text: str
    msgno: int = 0
    facility: str = FACILITY


class Condition(_ConditionFields):
    """One VMS condition: facility, severity, ident and text (msgno only for the value).

    An immutable record (a named tuple, not a dataclass: `dataclasses` brings `inspect` and
    `ast` into every verb's start); severity is checked and the ident upper-cased when made.
    """

    __slots__ = ()

    def __new__(cls, severity: str, ident: str, text: str, msgno: int = 0,
                facility: str = FACILITY) -> Condition:
        if severity not in SEVERITY_CODE:
            severity = _check(severity)
        return super().__new__(cls, severity, ident.upper(), text, msgno, facility)

    def message(self) -> str:
        # format_message's line; severity and ident were checked and upper-cased when made
        return f"%{self.facility}-{self.severity}-{self.ident}, {self.text}"

    @property
    def value(self) -> int:
        return condition_value(self.severity, self.msgno)

    @property
    def exit_status(self) -> int:
        return exit_status(self.severity)

    def __str__(self) -> str:
        return self.message()
