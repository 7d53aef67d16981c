"""Logical names: tables and their order, DEFINE's forms, search lists, attributes, modes, iteration, SHOW LOGICAL."""

from dcl_conformance import Case

DEFINE = "DCL Dictionary, DEFINE"
SHOW = "DCL Dictionary, SHOW LOGICAL"
TRNLNM = "DCL Dictionary, F$TRNLNM"
TABLES = "User's Manual, Logical Names (logical name tables: process, job, group, system)"
LOGIN = "User's Manual, Logical Names (names created at login: SYS$LOGIN, SYS$SCRATCH, SYS$DISK, SYS$NODE)"

CASES = [
    Case("define-process-and-translate", DEFINE, """
        $ define mydir "/srv/x"
        $ write sys$output f$trnlnm("MYDIR"), " ", f$trnlnm("mydir", "LNM$PROCESS", , , , "TABLE_NAME")
        """, out=("/srv/x LNM$PROCESS_TABLE",)),
    Case("define-unquoted-value-upper-cased", DEFINE, """
        $ define mode start
        $ if f$trnlnm("MODE") .eqs. "START" then write sys$output "upper case, as DCL makes it"
        $ define /nolog mode "Start"
        $ write sys$output f$trnlnm("MODE")
        """, out=("upper case, as DCL makes it", "Start"), issue="16.5"),
    Case("define-supersede-message", DEFINE, """
        $ define x one
        $ define x two
        $ define /nolog x three
        """, out=("%DCL-I-SUPERSEDE, previous value of X has been superseded",)),
    Case("define-search-list", DEFINE, """
        $ define list first, "Second", third
        $ write sys$output f$trnlnm("LIST"), f$trnlnm("LIST",, 1), f$trnlnm("LIST",, 2), " ", -
            f$trnlnm("LIST",,,,, "MAX_INDEX"), " [", f$trnlnm("LIST",, 3), "]"
        """, out=("FIRSTSecondTHIRD 2 []",), issue="16.5"),
    Case("define-quoted-commas-one-value", DEFINE, '''
        $ define /system wucme_mail "system,smtp%""a@b"""
        $ write sys$output f$trnlnm("WUCME_MAIL"), " ", f$trnlnm("WUCME_MAIL",,,,, "MAX_INDEX")
        ''', out=('system,smtp%"a@b" 0',)),
    Case("define-attributes", DEFINE, """
        $ define /translation_attributes=(concealed,terminal) dev "{ROOT}/"
        $ write sys$output f$trnlnm("DEV",,,,, "CONCEALED"), f$trnlnm("DEV",,,,, "TERMINAL"), -
            f$trnlnm("SYS$LOGIN",,,,, "CONCEALED")
        """, out=("TRUETRUEFALSE",), issue="16.8"),
    Case("define-access-mode", DEFINE, """
        $ define /executive_mode emode yes
        $ define smode yes
        $ write sys$output f$trnlnm("EMODE",,,,, "ACCESS_MODE"), " ", f$trnlnm("SMODE",,,,, "ACCESS_MODE")
        $ write sys$output "[", f$trnlnm("SMODE",,, "EXECUTIVE"), "] [", f$trnlnm("EMODE",,, "EXECUTIVE"), "]"
        """, out=("EXECUTIVE SUPERVISOR", "[] [YES]"), issue="16.5"),
    Case("define-job-table", TABLES, """
        $ define /job jobname "job value"
        $ write sys$output f$trnlnm("JOBNAME"), " ", f$trnlnm("JOBNAME",,,,, "TABLE_NAME") .eqs. -
            "LNM$JOB_" + f$getjpi("", "PID")
        $ write sys$output f$trnlnm("JOBNAME", "LNM$JOB")
        """, out=("job value 1", "job value"), issue="16.8"),
    Case("define-job-table-shared-with-nested-procedures", TABLES, """
        $ @INNER
        $ write sys$output f$trnlnm("FROM_INNER", "LNM$JOB")
        """, files=(("INNER.COM", "$ define /job from_inner \"set inside\"\n"),), out=("set inside",), issue="16.8"),
    Case("define-group-table", TABLES, """
        $ define /group grpname "group value"
        $ write sys$output f$trnlnm("GRPNAME"), " ", f$trnlnm("GRPNAME",,,,, "TABLE_NAME")
        """, out=("group value LNM$GROUP_{GID}",), issue="16.8"),
    Case("tables-search-order", TABLES, """
        $ define /system order system
        $ define /group /nolog order group
        $ define /job /nolog order job
        $ write sys$output f$trnlnm("ORDER")
        $ define /nolog order process
        $ write sys$output f$trnlnm("ORDER")
        $ deassign order
        $ write sys$output f$trnlnm("ORDER")
        $ deassign /job order
        $ write sys$output f$trnlnm("ORDER")
        $ deassign /group order
        $ write sys$output f$trnlnm("ORDER"), " ", f$trnlnm("ORDER", "LNM$SYSTEM_TABLE")
        """, out=("JOB", "PROCESS", "JOB", "GROUP", "SYSTEM SYSTEM"), issue="16.8"),
    Case("login-names-defined", LOGIN, """
        $ write sys$output f$trnlnm("SYS$LOGIN"), " ", f$trnlnm("SYS$SCRATCH"), " ", f$trnlnm("SYS$LOGIN_DEVICE")
        $ write sys$output f$trnlnm("SYS$NODE"), " ", f$trnlnm("SYS$NODE",,,,, "TABLE_NAME")
        $ write sys$output f$trnlnm("SYS$DISK",,,,, "TABLE_NAME"), " ", f$trnlnm("SYS$LOGIN",,,,, "TABLE_NAME") -
            .eqs. "LNM$JOB_" + f$getjpi("", "PID")
        """, out=("{HOME} {HOME} SYS$DISK:", "{NODE}:: LNM$SYSTEM_TABLE", "LNM$PROCESS_TABLE 1"), issue="16.8"),
    Case("login-directory-usable-as-device", LOGIN, """
        $ open /write f SYS$LOGIN:NOTE.TXT
        $ write f "in the login directory"
        $ close f
        $ write sys$output f$search("SYS$LOGIN:*.TXT")
        """, out=("{HOME}NOTE.TXT;1",), issue="16.8"),
    Case("deassign-missing-is-severe", "DCL Dictionary, DEASSIGN", """
        $ deassign no_such_logical_name
        $ write sys$output "not reached"
        """, errors=("%SYSTEM-F-NOLOGNAM",), status="F"),
    Case("trnlnm-one-level", TRNLNM, """
        $ define /nolog second "final"
        $ define /nolog first second
        $ write sys$output f$trnlnm("FIRST"), " ", f$trnlnm(f$trnlnm("FIRST"))
        """, out=("SECOND final",), issue="16.5"),
    Case("trnlnm-undefined-and-table", TRNLNM, """
        $ define /nolog here "process"
        $ write sys$output "[", f$trnlnm("NOT_DEFINED_ANYWHERE"), "][", f$trnlnm("HERE", "LNM$SYSTEM_TABLE"), "]"
        """, out=("[][]",)),
    Case("show-logical-first-match", SHOW, """
        $ define /system both "in system"
        $ define /nolog both "in process"
        $ show logical both
        """, out=('   "BOTH" = "in process" (LNM$PROCESS_TABLE)',)),
    Case("show-logical-iterates", SHOW, """
        $ define /nolog second "final"
        $ define /nolog first second
        $ show logical first
        """, out=('   "FIRST" = "SECOND" (LNM$PROCESS_TABLE)', '1  "SECOND" = "final" (LNM$PROCESS_TABLE)'),
        issue="16.5"),
    Case("show-logical-search-list", SHOW, """
        $ define /system /executive_mode opcom central,network
        $ show logical opcom
        """, out=('   "OPCOM" [exec] = "CENTRAL" (LNM$SYSTEM_TABLE)', '        = "NETWORK"'), issue="16.5"),
    Case("show-logical-wildcard-lists-tables", SHOW, """
        $ define /system wa_one "1"
        $ define /nolog wa_two "2"
        $ show logical wa_*
        """, out=("", "(LNM$PROCESS_TABLE)", "", '  "WA_TWO" = "2"', "", "(LNM$JOB_{PID})", "",
                  "(LNM$GROUP_{GID})", "", "(LNM$SYSTEM_TABLE)", "", '  "WA_ONE" = "1"', "",
                  "(LNM$SYSCLUSTER_TABLE)"), issue="16.8"),
    Case("show-logical-all-shows-every-table", SHOW, """
        $ define /system both "in system"
        $ define /nolog both "in process"
        $ show logical /all both
        """, out=("", "(LNM$PROCESS_TABLE)", "", '  "BOTH" = "in process"', "", "(LNM$JOB_{PID})", "",
                  "(LNM$GROUP_{GID})", "", "(LNM$SYSTEM_TABLE)", "", '  "BOTH" = "in system"', "",
                  "(LNM$SYSCLUSTER_TABLE)"), issue="16.8"),
    Case("show-logical-one-table", SHOW, """
        $ define /system both "in system"
        $ define /nolog both "in process"
        $ show logical /system both
        """, out=('   "BOTH" = "in system" (LNM$SYSTEM_TABLE)',)),
    Case("show-logical-full-shows-mode", SHOW, """
        $ define /nolog plain "x"
        $ show logical /full plain
        """, out=('   "PLAIN" [super] = "x" (LNM$PROCESS_TABLE)',), issue="16.8"),
    Case("show-logical-no-translation", SHOW, """
        $ show logical no_such_name_here
        """, out=("%SHOW-S-NOTRAN, no translation for logical name NO_SUCH_NAME_HERE",), status="S"),
    Case("too-many-translation-levels", "User's Manual, Logical Names (iterative translation); RMS-F-LNE", """
        $ define /nolog l1 l2:
        $ define /nolog l2 l1:
        $ @L1:[X]PROC
        """, errors=("%DCL-E-OPENIN", "-RMS-F-LNE"), status="E", issue="16.8"),
    Case("concealed-device-in-file-specs", "User's Manual, Logical Names (concealed devices)", """
        $ define /translation=concealed site "{ROOT}/site/"
        $ open /write f SITE:[CONF]NEW.CONF
        $ close f
        $ write sys$output f$search("SITE:[CONF]NEW.CONF")
        """, files=(("site/conf/KEEP", ""),), out=("SITE:[CONF]NEW.CONF;1",), issue="16.7"),
    Case("deassign-job-and-user-mode", "DCL Dictionary, DEASSIGN", """
        $ define /job jname x
        $ deassign /job jname
        $ write sys$output "[", f$trnlnm("JNAME"), "]"
        """, out=("[]",), issue="16.8"),
]
