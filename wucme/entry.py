"""The `wucme` console script's entry: as small as a module can be, so the quickest answers stay
close to the interpreter's own start.

`wucme version` (and `-V`, `--version`) is answered here, with no import beyond the package's
own `__init__`; everything else goes to the command-line face, wucme.cli (docs/performance.md,
"Start-up").  The text is the `version` verb's, from wucme.version_text.
"""
import os
import sys

from wucme import version_text

_VERSION_WORDS = ("version", "-V", "--version")


def main() -> int:
    args = sys.argv[1:]
    if (len(args) == 1 and (args[0] in _VERSION_WORDS or args[0].lower() == "version")
            and not os.environ.get("GATEWAY_INTERFACE")):
        sys.stdout.write(f"%WUCME-I-VERSION, {version_text()}\n")
        sys.stdout.flush()
        return 0
    from wucme.cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
