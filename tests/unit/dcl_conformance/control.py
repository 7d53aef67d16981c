"""Control flow: IF blocks, GOTO, GOSUB, CALL/SUBROUTINE, @, EXIT, verbs, records."""

from dcl_conformance import Case

IF = "DCL Dictionary, IF"
GOSUB = "DCL Dictionary, GOSUB and RETURN"
CALL = "DCL Dictionary, CALL (and SUBROUTINE, ENDSUBROUTINE)"
VERBS = "DCL Dictionary, Command Format (verbs: four significant characters)"

CASES = [
    Case("if-single-line", IF, """
        $ if 1 .eq. 1 then write sys$output "yes"
        $ if 1 .eq. 2 then write sys$output "no"
        """, out=("yes",)),
    Case("if-block-then-else", IF, """
        $ x = 2
        $ if x .eq. 2
        $ then
        $   write sys$output "then"
        $ else
        $   write sys$output "else"
        $ endif
        $ if x .ne. 2
        $ then
        $   write sys$output "then"
        $ else
        $   write sys$output "else"
        $ endif
        """, out=("then", "else")),
    Case("if-nested-blocks", IF, """
        $ if 1
        $ then
        $   if 0
        $   then
        $     write sys$output "inner then"
        $   else
        $     write sys$output "inner else"
        $   endif
        $ else
        $   if 1
        $   then
        $     write sys$output "skipped block"
        $   endif
        $ endif
        $ write sys$output "after"
        """, out=("inner else", "after")),
    Case("if-then-on-the-if-line", IF, """
        $ if 0 then
        $   write sys$output "skipped"
        $ else
        $   write sys$output "else ran"
        $ endif
        """, out=("else ran",)),
    Case("if-command-on-then-line", IF, """
        $ if 1
        $ then write sys$output "on the THEN line"
        $ endif
        """, out=("on the THEN line",)),
    Case("if-command-on-else-line", IF, """
        $ if 0
        $ then
        $   write sys$output "no"
        $ else write sys$output "on the ELSE line"
        $ endif
        $ if 1
        $ then
        $   write sys$output "then branch"
        $ else write sys$output "must not run"
        $ endif
        """, out=("on the ELSE line", "then branch"), issue="16.3"),
    Case("if-missing-endif", IF, """
        $ if 1
        $ then
        $   write sys$output "in"
        """, out=("in",), errors=("%DCL-E-INVIFNEST",)),
    Case("if-else-without-if", IF, """
        $ set noon
        $ else
        $ write sys$output "continues under NOON"
        """, out=("continues under NOON",), errors=("%DCL-E-INVIFNEST",)),
    Case("goto-forward-and-back", "DCL Dictionary, GOTO", """
        $ n = 0
        $ top:
        $   n = n + 1
        $   if n .lt. 3 then goto top
        $ goto end
        $ write sys$output "skipped"
        $ end: write sys$output "n = ", n
        """, out=("n = 3",)),
    Case("goto-out-of-if-block", "DCL Dictionary, GOTO", """
        $ if 1
        $ then
        $   goto out
        $ endif
        $ out:
        $ write sys$output "left the block cleanly"
        """, out=("left the block cleanly",)),
    Case("goto-missing-label", "DCL Dictionary, GOTO", """
        $ goto nowhere
        $ write sys$output "continues"
        """, out=("continues",), errors=("%DCL-W-USGOTO",)),
    Case("gosub-return", GOSUB, """
        $ gosub sub
        $ write sys$output "back"
        $ exit
        $ sub:
        $ write sys$output "in sub"
        $ return
        """, out=("in sub", "back")),
    Case("gosub-from-inside-if-block", GOSUB, """
        $ if 1
        $ then
        $   gosub sub
        $   write sys$output "still in the THEN block"
        $ else
        $   write sys$output "wrong"
        $ endif
        $ write sys$output "after ENDIF"
        $ exit
        $ sub:
        $ write sys$output "in sub"
        $ return
        """, out=("in sub", "still in the THEN block", "after ENDIF"), issue="16.2"),
    Case("gosub-nested-and-in-loop", GOSUB, """
        $ total = 0
        $ n = 0
        $ loop:
        $   n = n + 1
        $   if n .le. 3
        $   then
        $     gosub add
        $     goto loop
        $   endif
        $ write sys$output "total ", total
        $ exit
        $ add:
        $   gosub twice
        $   return
        $ twice:
        $   total = total + 2 * n
        $   return
        """, out=("total 12",)),
    Case("gosub-return-status", GOSUB, """
        $ gosub sub
        $ write sys$output $status
        $ exit
        $ sub: return 3
        """, out=("%X00000003",)),
    Case("return-without-gosub", GOSUB, """
        $ return
        $ write sys$output "not reached"
        """, errors=("%DCL-E-NOGOSUB",), status="E"),
    Case("call-parameters-and-level", CALL, """
        $ call sub one "Two"
        $ write sys$output "status ", $status, " depth ", f$environment("DEPTH")
        $ exit
        $ sub: subroutine
        $   write sys$output p1, "|", p2, "|", p3, "| depth ", f$environment("DEPTH")
        $   exit 3
        $ endsubroutine
        """, out=("ONE|Two|| depth 2", "status %X00000003 depth 1"), issue="16.6"),
    Case("call-subroutine-skipped-in-sequence", CALL, """
        $ write sys$output "before"
        $ sub: subroutine
        $   write sys$output "must not run in sequence"
        $ endsubroutine
        $ write sys$output "after"
        """, out=("before", "after"), issue="16.6"),
    Case("call-locals-are-new-callers-visible", CALL, """
        $ outer = "outer"
        $ call sub
        $ write sys$output "[", f$type(inner), "]"
        $ exit
        $ sub: subroutine
        $   inner = 1
        $   write sys$output outer
        $ endsubroutine
        """, out=("outer", "[]"), issue="16.6"),
    Case("call-labels-are-local", CALL, """
        $ call sub
        $ goto inside
        $ exit
        $ sub: subroutine
        $   goto inside
        $   write sys$output "skipped"
        $ inside:
        $   write sys$output "inside the subroutine"
        $ endsubroutine
        """, out=("inside the subroutine",), errors=("%DCL-W-USGOTO",), issue="16.6"),
    Case("call-nested-and-exit-status", CALL, """
        $ call a
        $ write sys$output "a returned ", $status
        $ exit
        $ a: subroutine
        $   call b
        $   write sys$output "b returned ", $status
        $   exit 5
        $ endsubroutine
        $ b: subroutine
        $   exit 7
        $ endsubroutine
        """, out=("b returned %X00000007", "a returned %X00000005"), issue="16.6"),
    Case("call-endsubroutine-returns-status", CALL, """
        $ call sub
        $ write sys$output $severity
        $ exit
        $ sub: subroutine
        $   write sys$output "ran"
        $ endsubroutine
        """, out=("ran", "1"), issue="16.6"),
    Case("call-output-qualifier", CALL, """
        $ call sub /output=SUB.OUT
        $ open /read f SUB.OUT
        $ read f line
        $ close f
        $ write sys$output "file holds: ", line
        $ exit
        $ sub: subroutine
        $   write sys$output "to the file"
        $ endsubroutine
        """, out=("file holds: to the file",), issue="16.6"),
    Case("call-missing-label", CALL, """
        $ call nowhere
        """, errors=("%DCL-W-USGOTO",), issue="16.6"),
    Case("at-nested-procedure-status", "DCL Dictionary, @ (Execute Procedure)", """
        $ set noon
        $ @INNER
        $ write sys$output "inner exited with ", $status
        """, files=(("INNER.COM", "$ exit 44\n"),), out=("inner exited with %X0000002C",)),
    Case("at-default-type-com", "DCL Dictionary, @ (Execute Procedure)", """
        $ @inner
        """, files=(("INNER.COM", '$ write sys$output "ran INNER.COM"\n'),), out=("ran INNER.COM",)),
    Case("at-missing-procedure", "DCL Dictionary, @ (Execute Procedure)", """
        $ @NOSUCH
        """, errors=("%DCL-E-OPENIN", "-RMS-E-FNF"), status="E"),
    Case("verb-abbreviation", VERBS, """
        $ wri sys$output "abbreviated"
        $ writexyz sys$output "four significant characters"
        """, out=("abbreviated", "four significant characters"), issue="16.6"),
    Case("verb-ambiguous", VERBS, """
        $ de x
        $ write sys$output "continues"
        """, out=("continues",), errors=("%DCL-W-ABVERB",)),
    Case("verb-unknown", VERBS, """
        $ frobnicate now
        $ write sys$output "continues"
        """, out=("continues",), errors=("%DCL-W-IVVERB",), status="S"),
    Case("verb-unsupported-stops", "DCL Dictionary, COPY (not in wucme: docs/dcl.md)", """
        $ copy a.txt b.txt
        $ write sys$output "not reached"
        """, errors=("%DCL-E-NOTSUPP",), status="E", issue="16.6"),
    Case("record-continuation", "User's Manual, Developing Simple Command Procedures (continuation)", """
        $ write sys$output "a", -   ! a comment after the hyphen
            "b"
        """, out=("ab",)),
    Case("record-comment-and-blank", "User's Manual, Developing Simple Command Procedures (comments)", """
        $! a comment
        $
        $ write sys$output "a ! not a comment" ! a comment
        """, out=("a ! not a comment",)),
    Case("record-data-lines-skipped", "DCL Dictionary, @ (data records)", """
        $ write sys$output 1
        data line
        $ write sys$output 2
        """, out=("1", "2"), errors=("%DCL-W-SKPDAT",)),
    Case("exit-status", "DCL Dictionary, EXIT", """
        $ exit 3
        """, status=3),
    Case("inquire-upcases", "DCL Dictionary, INQUIRE", """
        $ inquire answer "Proceed"
        $ write sys$output answer
        """, stdin="yes  please\n", out=("Proceed: YES PLEASE",)),
    Case("set-verify-shows-lines-and-comments", "DCL Dictionary, SET VERIFY", """
        $ set verify
        $! a comment line
        $ x = 'f$length("abc")'
        $ set noverify
        $ write sys$output x
        """, out=("$! a comment line", "$ x = 3", "$ set noverify", "3"), issue="16.8"),
]
