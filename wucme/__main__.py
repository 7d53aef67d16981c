"""`python -m wucme` runs the `wucme` command."""
import sys

from wucme.cli import main

sys.exit(main())
