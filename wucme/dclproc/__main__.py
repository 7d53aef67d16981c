"""`python3 -m wucme.dclproc @PROC.COM p1 ...` runs a DCL procedure (as `wucme @PROC.COM` does)."""
import sys

from wucme.dclproc import dcl_main

sys.exit(dcl_main(sys.argv[1:]))
