"""VMS emulation: logical names, file specifications, ODS-2 names, versions, messages.

Imports nothing of wucme above it.  Modules, bottom up: `msg` (messages and
condition values), `dclquote` (DCL quoting), `atomic` (atomic writes), `lnm`
(logical names), `files` (versions), `filespec` (VMS file specs), `ods2`.
"""
