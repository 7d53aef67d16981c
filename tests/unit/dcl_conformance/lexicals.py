"""Lexical functions: strings, numbers, times, formatting, the process and the system."""

from dcl_conformance import Case

CASES = [
    # --- F$EDIT
    Case("edit-collapse-compress-trim", "DCL Dictionary, F$EDIT", """
        $ write sys$output "[", f$edit("  a   b  ", "COLLAPSE"), "][", f$edit("  a   b  ", "COMPRESS"), "][", -
            f$edit("  a   b  ", "TRIM"), "][", f$edit("  a   b  ", "TRIM,COMPRESS"), "]"
        """, out=("[ab][ a b ][a   b][a b]",)),
    Case("edit-case", "DCL Dictionary, F$EDIT", """
        $ write sys$output f$edit("MiXed", "UPCASE"), " ", f$edit("MiXed", "LOWERCASE")
        """, out=("MIXED mixed",)),
    Case("edit-quoted-text-untouched", "DCL Dictionary, F$EDIT", """
        $ write sys$output f$edit("a b ""c d"" e", "COLLAPSE,UPCASE")
        """, out=('AB"c d"E',)),
    Case("edit-uncomment", "DCL Dictionary, F$EDIT", """
        $ write sys$output "[", f$edit("value ! comment", "UNCOMMENT"), "]"
        """, out=("[value]",)),
    # --- F$ELEMENT, F$EXTRACT, F$LOCATE, F$LENGTH
    Case("element-items-and-past-the-end", "DCL Dictionary, F$ELEMENT", """
        $ list = "a,b,,d"
        $ write sys$output f$element(0, ",", list), f$element(1, ",", list), "[", f$element(2, ",", list), "]", -
            f$element(3, ",", list), f$element(4, ",", list)
        """, out=("ab[]d,",)),
    Case("element-loop-idiom", "DCL Dictionary, F$ELEMENT (example)", """
        $ i = 0
        $ loop:
        $   day = f$element(i, "/", "MON/TUE/WED")
        $   if day .eqs. "/" then exit
        $   write sys$output day
        $   i = i + 1
        $   goto loop
        """, out=("MON", "TUE", "WED")),
    Case("extract-within-and-beyond", "DCL Dictionary, F$EXTRACT", """
        $ write sys$output f$extract(1, 2, "abcd"), "|", f$extract(2, 99, "abcd"), "|", f$extract(9, 1, "abcd"), "|"
        """, out=("bc|cd||",)),
    Case("locate-found-and-not", "DCL Dictionary, F$LOCATE", """
        $ write sys$output f$locate("c", "abcd"), " ", f$locate("z", "abcd"), " ", f$locate("", "abcd")
        """, out=("2 4 0",)),
    Case("length", "DCL Dictionary, F$LENGTH", """
        $ write sys$output f$length(""), " ", f$length("abc"), " ", f$length(12345)
        """, out=("0 3 5",)),
    # --- F$INTEGER, F$STRING, F$TYPE, F$CVUI, F$CVSI
    Case("integer-conversions", "DCL Dictionary, F$INTEGER", """
        $ write sys$output f$integer("42") + 1, " ", f$integer("%X10"), " ", f$integer("YES"), " ", f$integer("abc")
        """, out=("43 16 1 0",)),
    Case("string-conversion", "DCL Dictionary, F$STRING", """
        $ x = f$string(5) + "x"
        $ write sys$output x, " ", f$type(x)
        """, out=("5x STRING",)),
    Case("type-of-symbols", "DCL Dictionary, F$TYPE", """
        $ i = 1
        $ s = "12"
        $ t = "text"
        $ write sys$output f$type(i), ",", f$type(s), ",", f$type(t), ",", f$type(nope), "."
        """, out=("INTEGER,INTEGER,STRING,.",)),
    Case("cvui-and-cvsi", "DCL Dictionary, F$CVUI and F$CVSI", """
        $ write sys$output f$cvui(0, 4, "A"), " ", f$cvui(4, 4, "A"), " ", f$cvui(0, 2, "C"), " ", f$cvsi(0, 2, "C")
        """, out=("1 4 3 -1",)),
    Case("match-wild", "DCL Dictionary, F$MATCH_WILD", """
        $ write sys$output f$match_wild("WUCME_C_X.PEM", "WUCME_%_*.PEM"), " ", f$match_wild("A.TXT", "*.PEM")
        """, out=("TRUE FALSE",)),
    # --- F$FAO
    Case("fao-strings-and-numbers", "DCL Dictionary, F$FAO", """
        $ write sys$output f$fao("!AS has !UL file!%S", "DISK", 3)
        $ write sys$output f$fao("!UL file!%S", 1)
        """, out=("DISK has 3 files", "1 file"), issue="16.6"),
    Case("fao-widths", "DCL Dictionary, F$FAO", """
        $ write sys$output f$fao("[!5UL][!5SL][!4ZL][!ZL][!10AS][!3AS]", 42, -5, 7, 7, "left", "truncated")
        """, out=("[   42][   -5][0007][7][left      ][tru]",), issue="16.6"),
    Case("fao-hex-and-octal", "DCL Dictionary, F$FAO", """
        $ write sys$output f$fao("!XL !XW !XB !OL !4XL", 255, 255, 255, 8, %X12345)
        """, out=("000000FF 00FF FF 00000000010 2345",), issue="16.6"),
    Case("fao-too-wide-decimal-is-asterisks", "DCL Dictionary, F$FAO", """
        $ write sys$output f$fao("!2UL", 12345)
        """, out=("**",), issue="16.6"),
    Case("fao-repeat-tab-newline", "DCL Dictionary, F$FAO", """
        $ write sys$output f$fao("!5*-!_x!/y")
        """, out=("-----\tx", "y"), issue="16.6"),
    Case("fao-field-and-reuse", "DCL Dictionary, F$FAO", """
        $ write sys$output f$fao("[!12<!AS!UL!>] !UL !-!UL !+!UL", "a", 1, 2, 3, 4)
        """, out=("[a1          ] 2 2 4",), issue="16.6"),
    Case("fao-exclamation", "DCL Dictionary, F$FAO", """
        $ write sys$output f$fao("100!! sure")
        """, out=("100! sure",), issue="16.6"),
    Case("fao-date", "DCL Dictionary, F$FAO", """
        $ d = f$fao("!%D", 0)
        $ write sys$output f$length(f$element(1, " ", f$edit(d, "TRIM"))), " ", f$cvtime(d,, "YEAR")
        """, out=("11 {YEAR}",), issue="16.6"),
    # --- F$TIME, F$CVTIME, F$DELTA_TIME
    Case("time-format", "HELP Lexicals F$TIME, Return_Value", """
        $ t = f$time()
        $ write sys$output f$length(t), " ", f$extract(2, 1, t), f$extract(6, 1, t), f$extract(14, 1, t)
        """, out=("23 --:",)),
    Case("cvtime-comparison-default", "HELP Lexicals F$CVTIME", """
        $ write sys$output f$cvtime("14-DEC-2002 10:56:23.10")
        """, out=("2002-12-14 10:56:23.10",), issue="16.6"),
    Case("cvtime-absolute-no-leading-blank", "HELP Lexicals F$CVTIME", """
        $ write sys$output f$cvtime("5-MAR-2024 07:08", "ABSOLUTE")
        """, out=("5-MAR-2024 07:08:00.00",), issue="16.6"),
    Case("cvtime-fields", "HELP Lexicals F$CVTIME", """
        $ t = "5-MAR-2024 07:08:09.10"
        $ write sys$output f$cvtime(t,, "DATE"), " ", f$cvtime(t,, "TIME"), " ", f$cvtime(t,, "MONTH"), " ", -
            f$cvtime(t,, "DAY"), " ", f$cvtime(t,, "HOUR"), " ", f$cvtime(t,, "MINUTE"), " ", f$cvtime(t,, "SECOND"), -
            " ", f$cvtime(t,, "HUNDREDTH"), " ", f$cvtime(t,, "YEAR")
        """, out=("2024-03-05 07:08:09.10 03 05 07 08 09 10 2024",), issue="16.6"),
    Case("cvtime-absolute-fields", "HELP Lexicals F$CVTIME", """
        $ t = "5-MAR-2024 07:08:09.10"
        $ write sys$output f$cvtime(t, "ABSOLUTE", "DATE"), " ", f$cvtime(t, "ABSOLUTE", "MONTH"), " ", -
            f$cvtime(t, "ABSOLUTE", "WEEKDAY")
        """, out=("5-MAR-2024 MAR Tuesday",), issue="16.6"),
    Case("cvtime-time-parts-default-to-zero", "HELP Lexicals F$CVTIME", """
        $ write sys$output f$cvtime("1-JAN-2000"), "|", f$cvtime("1-JAN-2000 12")
        """, out=("2000-01-01 00:00:00.00|2000-01-01 12:00:00.00",), issue="16.6"),
    Case("cvtime-date-parts-default-to-today", "HELP Lexicals F$CVTIME", """
        $ write sys$output f$cvtime("10:30",, "DATE") .eqs. f$cvtime(,, "DATE"), " ", f$cvtime("10:30",, "TIME")
        """, out=("1 10:30:00.00",), issue="16.6"),
    Case("cvtime-keywords", "HELP Lexicals F$CVTIME", """
        $ today = f$cvtime("TODAY")
        $ write sys$output f$extract(11, 11, today), " ", f$cvtime("TODAY",, "DATE") .eqs. f$cvtime(,, "DATE")
        $ write sys$output f$cvtime("TOMORROW") .gts. today, " ", f$cvtime("YESTERDAY") .lts. today
        """, out=("00:00:00.00 1", "1 1"), issue="16.6"),
    Case("cvtime-combination", "HELP Lexicals F$CVTIME", """
        $ write sys$output f$cvtime("28-FEB-2024+1-"), "|", f$cvtime("1-MAR-2024 00:00-0:30")
        """, out=("2024-02-29 00:00:00.00|2024-02-29 23:30:00.00",), issue="16.6"),
    Case("cvtime-delta", "HELP Lexicals F$CVTIME", """
        $ write sys$output f$cvtime("3-12:30", "DELTA"), " ", f$cvtime("3-12:30", "DELTA", "HOUR"), " ", -
            f$cvtime("3-12:30", "DELTA", "DAY")
        """, out=("3-12:30:00.00 12 3",), issue="16.6"),
    Case("cvtime-invalid-time-is-an-error", "HELP Lexicals F$CVTIME", """
        $ x = f$cvtime("32-JAN-2024")
        $ write sys$output "not reached"
        """, errors=("%SYSTEM-F-IVTIME",), status="F", issue="16.6"),
    Case("delta-time", "DCL Dictionary, F$DELTA_TIME", """
        $ s = "15-JUL-2003 16:26:35.77"
        $ e = "15-JUL-2003 16:26:41.39"
        $ write sys$output f$delta_time(s, e), "|", f$delta_time(s, e, "DCL")
        """, out=("   0 00:00:05.62|0-00:00:05.62",)),
    # --- F$GETJPI, F$GETSYI, F$ENVIRONMENT, F$MODE, F$MESSAGE, ...
    Case("getjpi-pid-username-prcnam-mode", "DCL Dictionary, F$GETJPI", """
        $ write sys$output f$getjpi("", "PID"), "|", f$getjpi("", "USERNAME"), "|", f$getjpi("", "PRCNAM"), "|", -
            f$getjpi("", "MODE")
        """, out=("{PID}|{USER12}|{USER}|OTHER",), issue="16.6"),
    Case("getjpi-own-pid-by-number", "DCL Dictionary, F$GETJPI", """
        $ pid = f$getjpi("", "PID")
        $ write sys$output f$getjpi(pid, "PID") .eqs. pid, " ", f$length(f$getjpi("", "USERNAME"))
        """, out=("1 12",), issue="16.6"),
    Case("getjpi-unsupported-item-stops", "DCL Dictionary, F$GETJPI", """
        $ x = f$getjpi("", "WSQUOTA")
        $ write sys$output "not reached"
        """, errors=("%DCL-E-NOTSUPP",), status="E", issue="16.6"),
    Case("getjpi-unknown-item-warns", "DCL Dictionary, F$GETJPI", """
        $ x = f$getjpi("", "NO_SUCH_ITEM")
        $ write sys$output "continues"
        """, out=("continues",), errors=("%DCL-W-IVKEYW",)),
    Case("getsyi-nodename", "DCL Dictionary, F$GETSYI", """
        $ write sys$output f$getsyi("NODENAME"), " ", f$getsyi("CLUSTER_MEMBER")
        """, out=("{NODE} FALSE",)),
    Case("environment-depth-and-default", "DCL Dictionary, F$ENVIRONMENT", """
        $ write sys$output f$environment("DEPTH"), " ", f$environment("DEFAULT"), " ", f$directory()
        $ @INNER
        """, files=(("INNER.COM", '$ write sys$output f$environment("DEPTH")\n'),),
        out=("1 {DIR} {DIRECTORY}", "2"), issue="16.7"),
    Case("environment-procedure-is-a-file-spec", "DCL Dictionary, F$ENVIRONMENT", """
        $ p = f$environment("PROCEDURE")
        $ write sys$output p
        $ write sys$output f$parse(p,,, "NAME"), f$parse(p,,, "TYPE"), " ", f$element(0, ";", p)
        """, out=("{DIR}T.COM;1", "T.COM {DIR}T.COM"), issue="16.7"),
    Case("environment-verify-and-on-severity", "DCL Dictionary, F$ENVIRONMENT", """
        $ write sys$output f$environment("VERIFY_PROCEDURE"), " ", f$environment("ON_SEVERITY")
        $ on warning then continue
        $ write sys$output f$environment("ON_SEVERITY")
        $ set noon
        $ write sys$output f$environment("ON_SEVERITY")
        """, out=("FALSE ERROR", "WARNING", "NONE")),
    Case("mode-and-interactive", "DCL Dictionary, F$MODE", """
        $ write sys$output f$mode(), " ", f$environment("INTERACTIVE")
        """, out=("OTHER FALSE",)),
    Case("message-text-and-parts", "DCL Dictionary, F$MESSAGE", """
        $ write sys$output f$message(44)
        $ write sys$output f$message(44, "IDENT"), " ", f$message(44, "TEXT"), " ", -
            f$message(44, "FACILITY", "SEVERITY")
        """, out=("%SYSTEM-F-ABORT, abort", "%ABORT abort %SYSTEM-F")),
    Case("verify-lexical", "DCL Dictionary, F$VERIFY", """
        $ old = f$verify(0)
        $ write sys$output old, " ", f$environment("VERIFY_PROCEDURE")
        """, out=("0 FALSE",)),
    Case("privilege-default", "DCL Dictionary, F$PRIVILEGE", """
        $ write sys$output f$privilege("TMPMBX,NETMBX")
        """, out=("TRUE",)),
    Case("unsupported-lexical-is-an-error", "DCL Dictionary, F$GETQUI (not in wucme: docs/dcl.md)", """
        $ x = f$getqui("DISPLAY_QUEUE", "QUEUE_NAME", "*")
        $ write sys$output "not reached"
        """, errors=("%DCL-E-NOTSUPP",), status="E", issue="16.6"),
    Case("unknown-lexical-is-undfun", "User's Manual, Using Lexical Functions", """
        $ x = f$no_such_function(1)
        $ write sys$output "continues"
        """, out=("continues",), errors=("%DCL-W-UNDFUN",)),
    Case("lexical-argument-count", "User's Manual, Using Lexical Functions", """
        $ x = f$length()
        $ y = f$length("a", "b")
        """, errors=("%DCL-W-INSFARG", "%DCL-W-MAXARG")),
]
