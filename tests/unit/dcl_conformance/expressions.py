"""Expressions and symbols: operators, precedence, conversions, assignment forms."""

from dcl_conformance import Case

UM_EXPR = "User's Manual, Defining Symbols, Commands, and Expressions (expressions and operators)"
ASSIGN = "DCL Dictionary, = (Assignment)"
STRING_ASSIGN = "DCL Dictionary, := (String Assignment)"

CASES = [
    Case("expr-precedence", UM_EXPR, """
        $ write sys$output 2 + 3 * 4, " ", (2 + 3) * 4, " ", -2 * -3
        """, out=("14 20 6",)),
    Case("expr-division-truncates", UM_EXPR, """
        $ write sys$output 7 / 2, " ", -7 / 2, " ", 7 / -2
        """, out=("3 -3 -3",)),
    Case("expr-radix-literals", UM_EXPR, """
        $ write sys$output %X1F, " ", %O17, " ", %D12
        """, out=("31 15 12",)),
    Case("expr-32-bit-wrap", UM_EXPR, """
        $ x = 2147483647 + 1
        $ write sys$output x
        """, out=("-2147483648",)),
    Case("expr-string-concatenation", UM_EXPR, """
        $ write sys$output "AB" + "CD"
        """, out=("ABCD",)),
    Case("expr-string-subtraction-first-occurrence", UM_EXPR, """
        $ write sys$output "ABCABC" - "B", "|", "ABC" - "X"
        """, out=("ACABC|ABC",)),
    Case("expr-numeric-string-adds", UM_EXPR, """
        $ write sys$output "12" + 3, " ", "TRUE" + 1, " ", "no" + 1
        """, out=("15 2 1",)),
    Case("expr-eq-compares-integers", UM_EXPR, """
        $ write sys$output "01" .eq. 1, " ", "01" .eqs. "1", " ", "ABC" .eqs. "ABC"
        """, out=("1 0 1",)),
    Case("expr-string-ordering", UM_EXPR, """
        $ write sys$output "ABC" .lts. "ABD", " ", "b" .gts. "a", " ", "A" .ges. "B"
        """, out=("1 1 0",)),
    Case("expr-logical-operators-are-bitwise", UM_EXPR, """
        $ write sys$output .not. 0, " ", 6 .and. 3, " ", 4 .or. 1, " ", .not. 1
        """, out=("-1 2 5 -2",)),
    Case("expr-comparison-below-arithmetic", UM_EXPR, """
        $ write sys$output 1 + 1 .eq. 2, " ", 2 .lt. 1 + 3
        """, out=("1 1",)),
    Case("expr-truth-of-strings-and-integers", "DCL Dictionary, IF", """
        $ if "YES" then write sys$output "yes is true"
        $ if "no" then write sys$output "no is true"
        $ if 2 then write sys$output "2 is true"
        $ if 3 then write sys$output "3 is true"
        $ if "t" then write sys$output "t is true"
        """, out=("yes is true", "3 is true", "t is true")),
    Case("expr-quoted-quote", UM_EXPR, '''
        $ x = "say ""hi"""
        $ write sys$output x, " ", f$length(x)
        ''', out=('say "hi" 8',)),
    Case("expr-undefined-symbol-warns", UM_EXPR, """
        $ x = nothing_here + 1
        $ write sys$output "continues"
        """, out=("continues",), errors=("%DCL-W-UNDSYM",)),
    Case("assign-local-and-global", ASSIGN, """
        $ a = 1
        $ b == 2
        $ show symbol a
        $ show symbol b
        """, out=("  A = 1   Hex = 00000001  Octal = 00000000001", '  B == 2   Hex = 00000002  Octal = 00000000002')),
    Case("assign-string-show-symbol", ASSIGN, """
        $ s = "Text"
        $ show symbol s
        """, out=('  S = "Text"',)),
    Case("assign-string-assignment-upcases", STRING_ASSIGN, """
        $ x := abc   def
        $ y := "Abc"def
        $ write sys$output x, "|", y, "|"
        """, out=("ABC DEF|AbcDEF|",)),
    Case("assign-string-assignment-trims", STRING_ASSIGN, """
        $ x :=    padded
        $ write sys$output "[", x, "]"
        """, out=("[PADDED]",)),
    Case("assign-substring-overlay", STRING_ASSIGN, """
        $ a = "abcdef"
        $ a[0,3] := xyz
        $ write sys$output a
        """, out=("XYZdef",), issue="16.6"),
    Case("assign-substring-pads-with-blanks", STRING_ASSIGN, """
        $ b[4,2] := "ok"
        $ write sys$output "[", b, "]", f$length(b)
        $ c = "long text"
        $ c[0,4] := "ab"
        $ write sys$output "[", c, "]"
        """, out=("[    ok]6", "[ab   text]"), issue="16.6"),
    Case("assign-substring-position-is-an-expression", STRING_ASSIGN, """
        $ n = 2
        $ s = "....."
        $ s[n,n-1] := "X"
        $ write sys$output s
        """, out=("..X..",), issue="16.6"),
    Case("assign-numeric-overlay-makes-a-character", ASSIGN, """
        $ esc[0,8] = 65
        $ letter[0,7] = %X62
        $ write sys$output esc, letter, " ", f$length(esc)
        """, out=("Ab 1",), issue="16.6"),
    Case("assign-numeric-overlay-of-an-integer", "HELP =, Parameters ([bit-position,size])", """
        $ i = 5
        $ i[0,1] = 0
        $ i[8,4] = 15
        $ write sys$output i
        """, out=("3844",), issue="16.6"),
    Case("assign-abbreviated-symbol", ASSIGN, """
        $ sa*y == "write sys$output"
        $ sa "two letters"
        $ say "three letters"
        $ show symbol say
        """, out=("two letters", "three letters", '  SA*Y == "write sys$output"'), issue="16.6"),
    Case("assign-abbreviation-too-short-or-long", ASSIGN, """
        $ wr*ite_it = 5
        $ write sys$output write_it, " ", wr, " ", f$type(w), " ", f$type(write_itx)
        """, out=("5 5  ",), issue="16.6"),
    Case("assign-global-seen-by-nested-procedure", ASSIGN, """
        $ g == "global"
        $ l = "local"
        $ @INNER
        $ write sys$output f$type(inner_local), "|", back
        """, files=(("INNER.COM", '$ write sys$output g, " ", l\n$ inner_local = 1\n$ back == "set"\n'),),
        out=("global local", "|set")),
    Case("assign-delete-symbol", "DCL Dictionary, DELETE/SYMBOL", """
        $ x = 1
        $ delete /symbol x
        $ write sys$output "[", f$type(x), "]"
        """, out=("[]",)),
    Case("assign-show-symbol-wildcard", "DCL Dictionary, SHOW SYMBOL", """
        $ ab1 = 1
        $ ab2 = "two"
        $ show symbol ab*
        """, out=("  AB1 = 1   Hex = 00000001  Octal = 00000000001", '  AB2 = "two"')),
]
