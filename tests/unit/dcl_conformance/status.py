"""ON, SET NOON, $STATUS and $SEVERITY: what a failure does to a procedure.

Failures come from small procedures that exit with a status whose message is inhibited
(STS$M_INHIB_MSG), so only the ON handling is under test: FAIL.COM an error, WARN.COM a
warning, SEVERE.COM a severe error.
"""

from dcl_conformance import Case

ON = "DCL Dictionary, ON"
HELP_ON = "HELP ON"
UM_STATUS = "User's Manual, Developing Advanced Command Procedures ($STATUS and $SEVERITY)"
FAILS = (("FAIL.COM", "$ exit %X10000002\n"), ("WARN.COM", "$ exit %X10000000\n"),
         ("SEVERE.COM", "$ exit %X10000004\n"))

CASES = [
    Case("on-default-error-exits", ON, """
        $ @FAIL
        $ write sys$output "not reached"
        """, files=FAILS, status=0x10000002),
    Case("on-default-warning-continues", ON, """
        $ @WARN
        $ write sys$output "continues after a warning"
        """, files=FAILS, out=("continues after a warning",)),
    Case("on-warning-goto", ON, """
        $ on warning then goto handler
        $ x = undefined_symbol
        $ write sys$output "not reached"
        $ handler:
        $ write sys$output "handled ", $status
        """, out=("handled %X10038140",), errors=("%DCL-W-UNDSYM",)),
    Case("on-action-fires-once-then-default", HELP_ON, """
        $ on warning then goto first
        $ @WARN
        $ first:
        $ write sys$output "first handled"
        $ @WARN
        $ write sys$output "the default is back: a warning continues"
        $ @FAIL
        $ write sys$output "not reached: ON ERROR THEN EXIT"
        """, files=FAILS, out=("first handled", "the default is back: a warning continues"),
        status=0x10000002, issue="16.4"),
    Case("on-action-reset-shown-by-environment", HELP_ON, """
        $ on warning then goto next
        $ @WARN
        $ next:
        $ write sys$output f$environment("ON_SEVERITY")
        """, files=FAILS, out=("ERROR",), issue="16.4"),
    Case("on-severe-error-lets-errors-pass", ON, """
        $ on severe_error then exit
        $ @FAIL
        $ write sys$output "an error continues ", $severity
        $ @SEVERE
        $ write sys$output "not reached"
        """, files=FAILS, out=("an error continues 2",), status=0x10000004),
    Case("on-error-continue", ON, """
        $ on error then continue
        $ @FAIL
        $ write sys$output "continued"
        """, files=FAILS, out=("continued",)),
    Case("on-is-per-procedure-level", ON, """
        $ on warning then goto handler
        $ @INNER
        $ write sys$output "outer goes on"
        $ exit
        $ handler: write sys$output "outer handler"
        """, files=FAILS + (("INNER.COM", "$ @WARN\n$ write sys$output \"inner continues\"\n"),),
        out=("inner continues", "outer goes on")),
    Case("on-error-in-inner-exits-only-the-inner-level", ON, """
        $ set noon
        $ @INNER
        $ write sys$output "outer sees ", $status
        """, files=FAILS + (("INNER.COM", "$ @FAIL\n$ write sys$output \"not reached\"\n"),),
        out=("outer sees %X10000002",)),
    Case("set-noon-continues", "DCL Dictionary, SET ON", """
        $ set noon
        $ @FAIL
        $ write sys$output "severity ", $severity
        $ set on
        $ @FAIL
        $ write sys$output "not reached"
        """, files=FAILS, out=("severity 2",), status=0x10000002),
    Case("status-after-success", UM_STATUS, """
        $ write sys$output "x"
        $ write sys$output $status, " ", $severity
        """, out=("x", "%X00030001 1")),
    Case("status-kept-by-assignment-and-if", UM_STATUS, """
        $ @WARN
        $ a = 1
        $ if a .eq. 1 then b = 2
        $ write sys$output $status, " ", $severity
        """, files=FAILS, out=("%X10000000 0",)),
    Case("status-exit-idiom", UM_STATUS, """
        $ set noon
        $ @FAIL
        $ if .not. $status then exit $status
        $ write sys$output "not reached"
        """, files=FAILS, status=0x10000002),
    Case("exit-shows-message-at-the-outermost-level", "DCL Dictionary, EXIT", """
        $ exit 44
        """, errors=("%SYSTEM-F-ABORT",), status=44),
    Case("exit-keeps-status", "DCL Dictionary, EXIT", """
        $ @WARN
        $ exit
        """, files=FAILS, status=0x10000000),
    Case("exit-inhibited-message-not-shown", "DCL Dictionary, EXIT", """
        $ exit %X1000002C
        """, status=0x1000002C),
    Case("severity-values", UM_STATUS, """
        $ set noon
        $ @SEV 0
        $ write sys$output $severity
        $ @SEV 2
        $ write sys$output $severity
        $ @SEV 3
        $ write sys$output $severity
        $ @SEV 4
        $ write sys$output $severity
        """, files=(("SEV.COM", "$ exit %X10000000 + p1\n"),), out=("0", "2", "3", "4")),
]
