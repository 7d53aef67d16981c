"""Files: F$SEARCH and F$PARSE on VMS file specifications, OPEN/READ/WRITE/CLOSE, DELETE, attributes."""

from dcl_conformance import Case

SEARCH = "HELP Lexicals F$SEARCH"
PARSE = "DCL Dictionary, F$PARSE"
THREE = (("A.TXT", "a\n"), ("B.TXT", "b\n"), ("C.LOG", "c\n"))

CASES = [
    Case("search-wildcard-loop-ends", SEARCH, """
        $ loop:
        $   file = f$search("*.TXT")
        $   if file .eqs. "" then goto done
        $   write sys$output file
        $   goto loop
        $ done:
        $ write sys$output "done"
        """, files=THREE, out=("{DIR}A.TXT;1", "{DIR}B.TXT;1", "done"), issue="16.1"),
    Case("search-streams-keep-their-own-place", SEARCH, """
        $ write sys$output f$search("*.TXT", 1), " ", f$search("*.LOG", 2)
        $ write sys$output f$search("*.TXT", 1), " [", f$search("*.LOG", 2), "]"
        $ write sys$output "[", f$search("*.TXT", 1), "]"
        """, files=THREE, out=("{DIR}A.TXT;1 {DIR}C.LOG;1", "{DIR}B.TXT;1 []", "[]"), issue="16.1"),
    Case("search-new-spec-restarts-the-stream", SEARCH, """
        $ write sys$output f$search("*.TXT")
        $ write sys$output f$search("*.LOG")
        $ write sys$output f$search("*.TXT")
        """, files=THREE, out=("{DIR}A.TXT;1", "{DIR}C.LOG;1", "{DIR}A.TXT;1"), issue="16.1"),
    Case("search-percent-wildcard-and-case", SEARCH, """
        $ write sys$output f$search("%.txt")
        """, files=(("a.txt", "x\n"),), out=("{DIR}A.TXT;1",), issue="16.1"),
    Case("search-without-wildcards-returns-the-file", SEARCH, """
        $ write sys$output f$search("A.TXT")
        $ write sys$output f$search("A.TXT")
        $ write sys$output "[", f$search("NONE.TXT"), "]"
        """, files=THREE, out=("{DIR}A.TXT;1", "{DIR}A.TXT;1", "[]"), issue="16.7"),
    Case("search-versions", SEARCH, """
        $ write sys$output f$search("V.DAT")
        $ write sys$output f$search("V.DAT;*")
        $ write sys$output f$search("V.DAT;*")
        $ write sys$output f$search("V.DAT;1")
        """, files=(("V.DAT", "new\n"), ("V.DAT;1", "old\n")),
        out=("{DIR}V.DAT;2", "{DIR}V.DAT;2", "{DIR}V.DAT;1", "{DIR}V.DAT;1"), issue="16.7"),
    Case("search-no-type-default", SEARCH, """
        $ write sys$output "[", f$search("*"), "] ", f$search("*.")
        """, files=(("README", "r\n"), ("X.TXT", "x\n")), out=("[{DIR}README.;1] {DIR}README.;1",)),
    Case("search-directories-are-dir-files", SEARCH, """
        $ write sys$output f$search("*.DIR")
        $ write sys$output f$search("[.SUB]*.*")
        """, files=(("sub/INSIDE.TXT", "i\n"),),
        out=("{DIR}SUB.DIR;1", "{DIR_SUB}INSIDE.TXT;1"), issue="16.7"),
    Case("search-directory-wildcard", SEARCH, """
        $ loop:
        $   f = f$search("[...]*.TXT")
        $   if f .eqs. "" then exit
        $   write sys$output f$parse(f,,, "NAME")
        $   goto loop
        """, files=(("TOP.TXT", "t\n"), ("sub/DEEP.TXT", "d\n")), out=("TOP", "DEEP"), issue="16.1"),
    Case("search-through-a-concealed-device", SEARCH, """
        $ define /translation=concealed site "{ROOT}/site/"
        $ write sys$output f$search("SITE:[CONF]*.CONF")
        """, files=(("site/conf/HTTPD.CONF", "c\n"),), out=("SITE:[CONF]HTTPD.CONF;1",), issue="16.7"),
    Case("search-too-many-logical-levels", "HELP Lexicals F$SEARCH; User's Manual, Logical Names (translation)", """
        $ define loop1 loop2
        $ define loop2 loop1:
        $ define /nolog loop1 loop2:
        $ x = f$search("LOOP1:[X]*.TXT")
        $ write sys$output "not reached"
        """, errors=("%RMS-F-LNE",), status="F", issue="16.8"),
    Case("parse-full-and-defaults", PARSE, """
        $ write sys$output f$parse("X.Y")
        $ write sys$output f$parse("X")
        $ write sys$output f$parse("A", "B.DAT")
        $ write sys$output f$parse("A", , "[]REL.LIS")
        """, out=("{DIR}X.Y;", "{DIR}X.;", "{DIR}A.DAT;", "{DIR}A.LIS;"), issue="16.6"),
    Case("parse-fields", PARSE, """
        $ f = "A.TXT;3"
        $ write sys$output f$parse(f,,, "DEVICE"), " ", f$parse(f,,, "DIRECTORY"), " ", f$parse(f,,, "NAME"), " ", -
            f$parse(f,,, "TYPE"), " ", f$parse(f,,, "VERSION"), " [", f$parse(f,,, "NODE"), "]"
        """, out=("SYS$DISK: {DIRECTORY} A .TXT ;3 []",), issue="16.6"),
    Case("parse-relative-directory", PARSE, """
        $ write sys$output f$parse("[.SUB]Z.TXT")
        $ write sys$output f$parse("[-.WORK]Z.TXT")
        """, files=(("sub/KEEP", ""),), out=("{DIR_SUB}Z.TXT;", "{DIR}Z.TXT;"), issue="16.6"),
    Case("parse-missing-directory-is-null", PARSE, """
        $ write sys$output "[", f$parse("[.NOSUCH]Z.TXT"), "]"
        $ write sys$output f$parse("[.NOSUCH]Z.TXT",,,, "SYNTAX_ONLY")
        """, out=("[]", "{DIR_NOSUCH}Z.TXT;"), issue="16.6"),
    Case("parse-logical-device-translated", PARSE, """
        $ write sys$output f$parse("SYS$LOGIN:LOGIN.COM")
        $ write sys$output f$parse("SYS$LOGIN:LOGIN.COM",,, "DEVICE"), f$parse("SYS$LOGIN:LOGIN.COM",,, "DIRECTORY")
        """, out=("{HOME}LOGIN.COM;", "{HOME}"), issue="16.6"),
    Case("parse-concealed-device-kept", PARSE, """
        $ define /translation=concealed site "{ROOT}/site/"
        $ write sys$output f$parse("SITE:[CONF]HTTPD.CONF")
        $ write sys$output f$parse("SITE:[CONF]HTTPD.CONF",,,, "NO_CONCEAL")
        """, files=(("site/conf/KEEP", ""),), out=("SITE:[CONF]HTTPD.CONF;", "{ROOT_VMS}.SITE.CONF]HTTPD.CONF;"),
        issue="16.6"),
    Case("parse-logical-name-as-file", PARSE, """
        $ define infile "SYS$LOGIN:DATA.TXT"
        $ write sys$output f$parse("INFILE")
        """, out=("{HOME}DATA.TXT;",), issue="16.6"),
    Case("parse-wildcards-kept", PARSE, """
        $ write sys$output f$parse("*.TXT;*")
        """, out=("{DIR}*.TXT;*",), issue="16.6"),
    Case("parse-idiom-directory-of-procedure", PARSE, """
        $ here = f$parse(f$environment("PROCEDURE"),,, "DEVICE") + f$parse(f$environment("PROCEDURE"),,, "DIRECTORY")
        $ @'here'OTHER
        """, files=(("OTHER.COM", '$ write sys$output "other ran"\n'),), out=("other ran",), issue="16.7"),
    Case("open-write-read-loop", "DCL Dictionary, OPEN, READ, WRITE, CLOSE", """
        $ open /write out DATA.TXT
        $ write out "line one"
        $ write out "line ", 2
        $ close out
        $ open /read in DATA.TXT
        $ loop:
        $   read /end_of_file=eof in rec
        $   write sys$output "got: ", rec
        $   goto loop
        $ eof:
        $ close in
        """, out=("got: line one", "got: line 2")),
    Case("open-missing-file", "DCL Dictionary, OPEN", """
        $ open /read in NOSUCH.TXT
        $ write sys$output "not reached"
        """, errors=("%DCL-E-OPENIN", "-RMS-E-FNF"), status="E"),
    Case("open-error-label", "DCL Dictionary, OPEN (/ERROR)", """
        $ open /read /error=missing in NOSUCH.TXT
        $ write sys$output "not reached"
        $ missing:
        $ write sys$output "went to the label"
        """, out=("went to the label",)),
    Case("read-end-of-file-without-label", "DCL Dictionary, READ", """
        $ open /read in EMPTY.TXT
        $ set noon
        $ read in rec
        $ write sys$output $status
        """, files=(("EMPTY.TXT", ""),), out=("%X1001827A",), errors=("%RMS-E-EOF",)),
    Case("delete-versions", "DCL Dictionary, DELETE", """
        $ delete V.DAT;*
        $ write sys$output "[", f$search("V.DAT;*"), "]"
        """, files=(("V.DAT", "new\n"), ("V.DAT;1", "old\n")), out=("[]",)),
    Case("delete-missing-warns", "DCL Dictionary, DELETE", """
        $ delete NOSUCH.TXT;*
        $ write sys$output "continues"
        """, out=("continues",), errors=("%DELETE-W-SEARCHFAIL", "-RMS-E-FNF")),
    Case("file-attributes", "DCL Dictionary, F$FILE_ATTRIBUTES", """
        $ write sys$output f$file_attributes("BIG.DAT", "EOF"), " ", f$file_attributes("BIG.DAT", "FFB"), " ", -
            f$file_attributes("BIG.DAT", "ORG"), " ", f$file_attributes("[]SUB.DIR", "DIRECTORY")
        """, files=(("BIG.DAT", "x" * 1000), ("sub/KEEP", "")), out=("2 488 SEQ TRUE",)),
]
