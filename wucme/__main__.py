"""`python -m wucme` runs the `wucme` command."""
import sys

from wucme.entry import main

sys.exit(main())
