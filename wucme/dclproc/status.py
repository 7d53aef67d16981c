"""DCL condition values and messages: what a procedure's $STATUS holds and what DCL prints.

Values follow VMS's layout (severity in bits 0-2, bit 28 STS$M_INHIB_MSG once a message was
shown).  CLI$_NORMAL, CLI$_IVVERB and CLI$_UNDSYM have VMS's own values; the other DCL messages
get values in the DCL facility (3) numbered by this module, since no procedure tests them by
number.  An image's Linux exit status n is encoded as the C run-time library encodes `exit(n)`
under _POSIX_EXIT (facility C, %X35A000 + n*8), so it survives the trip back to Linux.
"""

from __future__ import annotations

from wucme.vms.condition import exit_status

__all__ = [
    "CLI_NORMAL",
    "INHIBIT",
    "SS_NORMAL",
    "DclSignal",
    "image_status",
    "is_success",
    "linux_exit",
    "message_lines",
    "severity_letter",
    "signal",
    "status_text",
]

SS_NORMAL = 0x00000001
CLI_NORMAL = 0x00030001
#: STS$M_INHIB_MSG: the message for this status has been shown already.
INHIBIT = 0x10000000
_C_EXIT = 0x0035A000
_C_EXIT_MASK = 0x0FFFE000
_LETTER = {0: "W", 1: "S", 2: "E", 3: "I", 4: "F", 5: "?", 6: "?", 7: "?"}

# ident -> (severity, text, value or message number within DCL's facility)
_DCL: dict[str, tuple[str, str, int]] = {
    "IVVERB": ("W", "unrecognized command verb - check validity and spelling", 0x00038090),
    "UNDSYM": ("W", "undefined symbol - check validity and spelling", 0x00038140),
    "IVQUAL": ("W", "unrecognized qualifier - check validity, spelling, and placement", 0x101),
    "IVKEYW": ("W", "unrecognized keyword - check validity and spelling", 0x102),
    "MAXPARM": ("W", "too many parameters - reenter command with fewer parameters", 0x103),
    "INSFPRM": ("W", "missing command parameters - supply all required parameters", 0x104),
    "USGOTO": ("W", "target of GOTO not found - check spelling and presence of label", 0x105),
    "EXPSYN": ("W", "invalid expression syntax - check operators and operands", 0x106),
    "UNDFUN": ("W", "undefined lexical function - check spelling", 0x107),
    "INSFARG": ("W", "insufficient arguments - supply all required arguments", 0x108),
    "MAXARG": ("W", "too many arguments - reenter with fewer arguments", 0x109),
    "IVCHAN": ("W", "invalid or unopened channel - check channel name", 0x10A),
    "INVIFNEST": ("E", "invalid IF-THEN-ELSE nesting structure or data inconsistency", 0x10B),
    "NOGOSUB": ("E", "RETURN without a matching GOSUB", 0x10C),
    "SKPDAT": ("W", 'image data (records not beginning with "$") ignored', 0x10D),
    "UNDQUOTE": ("W", "unterminated quoted string", 0x10E),
    "DIVBYZERO": ("E", "arithmetic divide by zero", 0x10F),
    "NOVALU": ("W", "value not allowed - remove value specification", 0x110),
    "VALREQ": ("W", "missing qualifier or keyword value - supply all required values", 0x111),
    "NOTSUPP": ("E", "not supported by wucme's DCL - see docs/dcl.md", 0x112),
    "OPENIN": ("E", "error opening file as input", 0x113),
    "ACTIMAGE": ("E", "error activating image", 0x114),
    "SUPERSEDE": ("I", "previous value has been superseded", 0x115),
    "ABVERB": ("W", "ambiguous command verb - supply more characters", 0x116),
    "ABKEYW": ("W", "ambiguous keyword - supply more characters", 0x117),
    "TOODEEP": ("E", "procedures nested too deeply", 0x118),
    "BUFOVF": ("W", "command buffer overflow - shorten expression or command line", 0x119),
    "NOTSUBR": ("E", "CALL target is not a SUBROUTINE - check the label", 0x11A),
    "ARGERR": ("W", "invalid argument", 0x11B),
    "INVRANGE": ("W", "field specification is out of bounds - check sign and size", 0x11C),
    "IVCHAR": ("W", "invalid numeric value - check for invalid digits", 0x11D),
}

# Statuses a procedure may EXIT with, shown as VMS shows them at the end of the procedure.
_SYSTEM: dict[int, str] = {
    0x00000001: "%SYSTEM-S-NORMAL, normal successful completion",
    0x00000014: "%SYSTEM-F-BADPARAM, bad parameter value",
    0x0000002C: "%SYSTEM-F-ABORT, abort",
    0x00000114: "%SYSTEM-F-INSFARG, insufficient call arguments",
}
_SEV_CODE = {"W": 0, "S": 1, "E": 2, "I": 3, "F": 4}


def _value(ident: str, severity: str) -> int:
    sev, _, num = _DCL[ident]
    if num > 0xFFF:
        return num
    return 0x00030000 | 0x8000 | (num << 3) | _SEV_CODE[severity or sev]


class DclSignal(Exception):
    """A command DCL refuses: printed as `%DCL-W-IDENT, text` and ` \\DETAIL\\`, then signalled."""

    def __init__(self, ident: str, detail: str | None = None, *, text: str | None = None,
                 severity: str | None = None, facility: str = "DCL", extra: tuple[str, ...] = (),
                 status: int | None = None) -> None:
        sev, default_text, _ = _DCL.get(ident, ("E", ident.lower(), 0x1FF))
        self.ident = ident
        self.severity = severity or sev
        self.text = text if text is not None else default_text
        self.detail = detail
        self.facility = facility
        self.extra = extra
        if status is not None:
            self.status = status
        elif ident in _DCL:
            self.status = _value(ident, self.severity)
        else:
            self.status = 0x00030000 | 0x8000 | (0x1FF << 3) | _SEV_CODE[self.severity]
        super().__init__(self.lines()[0])

    def lines(self) -> list[str]:
        out = [f"%{self.facility}-{self.severity}-{self.ident}, {self.text}"]
        if self.detail is not None:
            out.append(f" \\{self.detail}\\")
        out.extend(self.extra)
        return out


def signal(ident: str, detail: str | None = None, **kw: object) -> DclSignal:
    """Shorthand used by the interpreter: `raise signal("UNDSYM", "FOO")`."""
    return DclSignal(ident, detail, **kw)  # type: ignore[arg-type]


def is_success(status: int) -> bool:
    return bool(status & 1)


def severity_letter(status: int) -> str:
    return _LETTER[status & 7]


def status_text(status: int) -> str:
    """DCL shows $STATUS as a string: %X00030001."""
    return f"%X{status & 0xFFFFFFFF:08X}"


def message_lines(status: int) -> list[str]:
    """What VMS prints for a status a procedure exits with (F$MESSAGE's text)."""
    plain = status & ~INHIBIT
    if plain in _SYSTEM:
        return [_SYSTEM[plain]]
    for ident, (sev, text, _) in _DCL.items():
        for s in "WSEIF":
            if _value(ident, s) == plain:
                return [f"%DCL-{s}-{ident}, {text}"]
    if plain & _C_EXIT_MASK == _C_EXIT:
        return [f"%C-{severity_letter(plain)}-EXIT, image exit status {(plain >> 3) & 0x3FF}"]
    return [f"%NONAME-{severity_letter(plain)}-NOMSG, Message number {plain:08X}"]


# wucme's own Linux exit statuses, back to severities (wucme.vms.condition.exit_status inverted).
_WUCME_SEVERITY = {1: 0, 2: 2, 4: 4}


def image_status(rc: int, wucme: bool) -> int:
    """$STATUS after an image that exited with Linux status *rc* (negative: killed by a signal)."""
    if rc == 0:
        return SS_NORMAL
    if rc < 0:
        return INHIBIT | _C_EXIT | (((128 - rc) & 0x3FF) << 3) | 4
    sev = _WUCME_SEVERITY.get(rc, 2) if wucme else 2
    return INHIBIT | _C_EXIT | ((rc & 0x3FF) << 3) | sev


def linux_exit(status: int) -> int:
    """The Linux exit status of a procedure that ended with *status*."""
    if status & 1:
        return 0
    if status & _C_EXIT_MASK == _C_EXIT:
        return ((status >> 3) & 0x3FF) or 1
    letter = severity_letter(status)
    return exit_status(letter) if letter in "WEF" else 2
