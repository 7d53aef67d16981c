"""The `wucme` console script's entry: as small as a module can be, so the quickest answers stay
close to the interpreter's own start (docs/performance.md, "Start-up").

- `wucme version` (and `-V`, `--version`) is answered here, with no import beyond the package's
  own `__init__`; the text is the `version` verb's, from wucme.version_text.
- Run by a web server as a CGI script (GATEWAY_INTERFACE and REQUEST_METHOD set, no arguments),
  a challenge request is answered by wucme.challenge.answer, which imports the logical name
  lookup and the store's reader and nothing else: the server starts a process per request.

Everything else goes to the command-line face, wucme.cli (which routes the other CGI requests,
the admin pages, to wucme.web).
"""
import os
import sys

from wucme import version_text

_VERSION_WORDS = ("version", "-V", "--version")


def main() -> int:
    args = sys.argv[1:]
    if os.environ.get("GATEWAY_INTERFACE"):
        if not args and os.environ.get("REQUEST_METHOD"):
            from wucme.challenge.answer import cgi_answer

            status = cgi_answer()
            if status is not None:
                return status
    elif len(args) == 1 and (args[0] in _VERSION_WORDS or args[0].lower() == "version"):
        sys.stdout.write(f"%WUCME-I-VERSION, {version_text()}\n")
        sys.stdout.flush()
        return 0
    from wucme.cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
