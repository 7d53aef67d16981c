"""VMS emulation: logical names, file specifications, ODS-2 names, messages.

Imports nothing of wucme above it.
"""
