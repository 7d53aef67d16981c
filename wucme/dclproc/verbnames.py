"""DCL's command verbs and how a word names one.

A verb may be abbreviated while it stays unique among DCL's verbs, and only its first four
characters are significant, so `WRITEXYZ` is WRITE (DCL Dictionary, "Command Format":
"verbs can be truncated to four characters... any characters beyond the fourth are not
checked").  The list is DCL's own, so an abbreviation resolves as on VMS even for the verbs
wucme does not run.
"""

from __future__ import annotations

from wucme.vms.dcllex import abbreviations

__all__ = ["DCL_VERBS", "verb_names"]

DCL_VERBS = (
    "ACCOUNTING", "ALLOCATE", "ANALYZE", "APPEND", "ASSIGN", "ATTACH", "BACKUP", "CALL", "CANCEL",
    "CLOSE", "CONNECT", "CONTINUE", "CONVERT", "COPY", "CREATE", "DEALLOCATE", "DEASSIGN", "DEBUG",
    "DECK", "DEFINE", "DELETE", "DEPOSIT", "DIFFERENCES", "DIRECTORY", "DISCONNECT", "DISMOUNT",
    "DUMP", "EDIT", "ELSE", "ENDIF", "ENDSUBROUTINE", "EOD", "EOJ", "EXAMINE", "EXCHANGE", "EXIT",
    "GOSUB", "GOTO", "HELP", "IF", "INITIALIZE", "INQUIRE", "INSTALL", "JOB", "LIBRARY", "LICENSE",
    "LINK", "LOGOUT", "MACRO", "MAIL", "MCR", "MERGE", "MESSAGE", "MONITOR", "MOUNT", "ON", "OPEN",
    "PATCH", "PHONE", "PIPE", "PRINT", "PRODUCT", "PURGE", "READ", "RECALL", "RENAME", "REPLY",
    "REQUEST", "RETURN", "RUN", "RUNOFF", "SEARCH", "SET", "SHOW", "SORT", "SPAWN", "START", "STOP",
    "SUBMIT", "SUBROUTINE", "SYNCHRONIZE", "THEN", "TYPE", "UNLOCK", "WAIT", "WRITE",
)


def verb_names(word: str) -> list[str]:
    """The verbs *word* may name: exactly one is a match, more are ambiguous, none is no verb."""
    hits = abbreviations(word, DCL_VERBS)
    if not hits and len(word) > 4:
        hits = abbreviations(word[:4], DCL_VERBS)
    return hits
