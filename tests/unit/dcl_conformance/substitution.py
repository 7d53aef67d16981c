"""Symbol substitution: apostrophes, ampersands, command synonyms, and the case DCL gives the result."""

from dcl_conformance import Case

UM_SUBST = "User's Manual, Understanding Symbol Substitution"
EXT_AMP = "HELP Ext_File_Specs, Ampersand Versus Apostrophe Substitution"
AT = "DCL Dictionary, @ (Execute Procedure)"

CASES = [
    Case("subst-apostrophes-outside-quotes", UM_SUBST, """
        $ b = "sys$output"
        $ write 'b' "forced"
        """, out=("forced",)),
    Case("subst-two-apostrophes-inside-quotes", UM_SUBST, """
        $ b = "World"
        $ write sys$output "Hello ''b'!"
        """, out=("Hello World!",)),
    Case("subst-single-apostrophe-inside-quotes-is-text", UM_SUBST, """
        $ b = "x"
        $ write sys$output "it's 'b' here"
        """, out=("it's 'b' here",)),
    Case("subst-undefined-is-null", UM_SUBST, """
        $ write sys$output "[''nothing_at_all']"
        """, out=("[]",)),
    Case("subst-lexical-in-apostrophes", UM_SUBST, """
        $ n = 'f$length("abcd")' + 1
        $ write sys$output n
        """, out=("5",)),
    Case("subst-builds-symbol-names", UM_SUBST, """
        $ i = 2
        $ p'i' = "second"
        $ write sys$output p2
        """, out=("second",)),
    Case("subst-repeated-substitution-manual-example", UM_SUBST, """
        $ FILE1 = "[BOLIVAR]TEST_CASE.TXT"
        $ NUM = 1
        $ FILE = "'FILE''NUM''"
        $ SHOW SYMBOL FILE
        $ X := 'FILE'
        $ WRITE SYS$OUTPUT X
        """, out=('  FILE = "\'FILE1\'"', "[BOLIVAR]TEST_CASE.TXT"), issue="16.6"),
    Case("subst-result-is-scanned-again", UM_SUBST, """
        $ inner = "found"
        $ outer = "'inner'"
        $ y := 'outer'
        $ write sys$output y
        """, out=("FOUND",), issue="16.6"),
    Case("subst-apostrophe-result-is-upper-cased", EXT_AMP, """
        $ x = "string"
        $ define y 'x'
        $ show logical y
        $ define y &x
        $ show logical y
        """, out=('   "Y" = "STRING" (LNM$PROCESS_TABLE)',
                  "%DCL-I-SUPERSEDE, previous value of Y has been superseded",
                  '   "Y" = "string" (LNM$PROCESS_TABLE)'), issue="16.5"),
    Case("subst-quoted-keeps-case", EXT_AMP, """
        $ x = "string"
        $ define /nolog y "''x'"
        $ write sys$output f$trnlnm("Y")
        """, out=("string",)),
    Case("subst-procedure-parameters-upper-cased", AT, """
        $ mode = "start"
        $ @SUB 'mode' "''mode'" plain "Quoted"
        """, files=(("SUB.COM", '$ write sys$output p1, "|", p2, "|", p3, "|", p4\n'
                     '$ if p1 .eqs. "START" then write sys$output "P1 tested as START"\n'),),
        out=("START|start|PLAIN|Quoted", "P1 tested as START")),
    Case("subst-parameters-default-null", AT, """
        $ @SUB one
        """, files=(("SUB.COM", '$ write sys$output "[", p1, "][", p2, "][", p8, "]"\n'),),
        out=("[ONE][][]",)),
    Case("subst-ampersand-in-parameters", UM_SUBST, """
        $ chan = "SYS$OUTPUT"
        $ write &chan "ampersand"
        """, out=("ampersand",)),
    Case("subst-symbol-as-command-synonym", "DCL Dictionary, = (Assignment): symbols as commands", """
        $ say = "write sys$output"
        $ say "synonym ", 1 + 1
        """, out=("synonym 2",)),
    Case("subst-in-label-line", UM_SUBST, """
        $ v = "x"
        $ here: write sys$output "after label ''v'"
        """, out=("after label x",)),
    Case("subst-string-assignment-of-substitution", "DCL Dictionary, := (String Assignment)", """
        $ name = "mixed Case"
        $ a := 'name'
        $ b := "''name'"
        $ write sys$output a, "|", b
        """, out=("MIXED CASE|mixed Case",)),
]
