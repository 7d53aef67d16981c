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
    from wucme import cli

    status = cli.main()
    if cli.verb_finished:
        _exit_now(status)
    return status


def _exit_now(status: int) -> None:
    """End the process at once after a verb that ran to its end, without the interpreter's
    teardown (every module and object freed one by one, OpenSSL's cleanup: 15 to 20 ms of
    `wucme issue`, docs/performance.md).  Nothing is lost: the verb has closed, fsynced and
    unlocked what it wrote (atomic writes fsync before the rename, locks are released when
    the verb returns), the atexit functions still run (logical name job tables, logging),
    and stdout and stderr are flushed.  Only here, in the console entry: never in a process
    that merely imports wucme.  Left to the normal exit when a thread that is not a daemon
    still runs, when the output cannot be flushed (a closed pipe), and under a profiler or a
    tracer (cProfile, coverage), which write their results at the normal exit."""
    if sys.getprofile() is not None or sys.gettrace() is not None:
        return
    import threading

    main = threading.main_thread()
    if any(t is not main and not t.daemon and t.is_alive() for t in threading.enumerate()):
        return
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        return
    import atexit

    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        status = 120  # what the interpreter's own exit gives when it cannot flush stdout
    os._exit(status)


if __name__ == "__main__":
    sys.exit(main())
