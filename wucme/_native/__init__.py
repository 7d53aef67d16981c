"""cffi-built native helpers and their pure-Python twins.

WUCME_NO_NATIVE (a logical name) defined forces the twins everywhere.
"""
