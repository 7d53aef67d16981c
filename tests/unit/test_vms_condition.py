"""VMS messages, condition values and exit statuses."""

from __future__ import annotations

import pytest

from wucme.vms.condition import FACILITY_NUMBER, Condition, VmsError, condition_value, exit_status, format_message, \
    format_messages


def test_format_message() -> None:
    assert format_message("e", "badhost", "text") == "%WUCME-E-BADHOST, text"
    with pytest.raises(ValueError):
        format_message("X", "A", "b")


def test_message_vector() -> None:
    lines = format_messages([Condition("E", "NOTISSUED", "a"), Condition("I", "REASON", "b")])
    assert lines == ["%WUCME-E-NOTISSUED, a", "-WUCME-I-REASON, b"]


@pytest.mark.parametrize("sev, status", [("S", 0), ("I", 0), ("W", 1), ("E", 2), ("F", 4)])
def test_exit_status(sev: str, status: int) -> None:
    assert exit_status(sev) == status
    assert Condition(sev, "X", "y").exit_status == status


def test_condition_value_layout() -> None:
    v = condition_value("E", 5)
    assert v & 7 == 2  # STS$K_ERROR
    assert (v >> 3) & 0xFFF == 5
    assert v & (1 << 15)  # facility-specific
    assert (v >> 16) & 0xFFF == FACILITY_NUMBER | 0x800  # customer facility bit
    assert v < 1 << 32 and not v & (1 << 28)
    assert condition_value("S", 1) & 1 and condition_value("W", 1) & 7 == 0
    assert Condition("F", "X", "y", msgno=9).value == condition_value("F", 9)
    with pytest.raises(ValueError):
        condition_value("E", 4096)


def test_vms_error() -> None:
    err = VmsError("no such thing", "NOSUCH", "f")
    assert err.message() == "%WUCME-F-NOSUCH, no such thing" and str(err) == "no such thing"
