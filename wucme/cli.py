"""The `wucme` command: the face that dispatches to the verbs, the uacme port and alpn.

When a web server runs the image as a CGI script (GATEWAY_INTERFACE set, no arguments), it answers http-01
challenges and serves the authorised admin pages (wucme.web), as WASD runs the same wucme image
as a script; run as a script with no request
method (WASD's proctor), it is the agent (docs/agent.md).  Errors are shown as VMS messages and
mapped to exit statuses; a traceback is shown only for a bug, and only with WUCME_VERBOSE defined.
"""
from __future__ import annotations

import os
import signal
import sys
import threading

from typing import TYPE_CHECKING

from wucme.errors import WucmeError
from wucme.vms.condition import Condition, VmsError, exit_status, format_message

if TYPE_CHECKING:
    from wucme.result import Block


def _verbose() -> bool:
    try:
        from wucme.settings import verbosity

        return verbosity() > 0
    except Exception:  # noqa: BLE001 - a broken table must not hide the original error
        return bool(os.environ.get("WUCME_VERBOSE"))


def _error(severity: str, ident: str, text: str) -> int:
    sys.stdout.flush()
    sys.stderr.write(format_message(severity, ident, text) + "\n")
    sys.stderr.flush()
    return exit_status(severity)


class _Show:
    """One block of a verb's result as it comes: S and I messages and everything else on
    stdout, W, E and F messages on stderr (docs/commands.md).  What it shows of I and S
    messages needs no keeping (wucme.result: `keep_blocks`).

    A run of I messages (a pass's "not due" for each of 100,000 certificates) is written in
    one go: once PENDING_LINES wait, PENDING_SECONDS after the first of them at the latest (a
    timer), before anything else is shown, and when the verb ends (`flush`); a write(2) per
    line was a tenth of such a pass.  The renewals' threads show their lines too: one lock
    keeps the lines whole and in the order they were said."""

    keep_blocks = False
    PENDING_SECONDS = 0.1
    PENDING_LINES = 256

    def __init__(self) -> None:
        self._pending: list[str] = []
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    def __call__(self, block: Block) -> None:
        if isinstance(block, Condition):
            if block.severity == "I":
                with self._lock:
                    self._pending.append(block.message())
                    if len(self._pending) >= self.PENDING_LINES:
                        self._write_pending()
                    elif self._timer is None:
                        self._timer = threading.Timer(self.PENDING_SECONDS, self._due)
                        self._timer.daemon = True
                        self._timer.start()
                return
            lines = [block.message()]
        else:
            from wucme.result import block_lines

            lines = block_lines(block)
        stream = sys.stderr if isinstance(block, Condition) and block.severity in ("W", "E", "F") else sys.stdout
        with self._lock:
            self._write_pending()
            for text in lines:
                stream.write(text + "\n")
            stream.flush()

    def _due(self) -> None:
        """The timer: the I messages waiting since it was set go out."""
        with self._lock:
            self._timer = None
            self._write_pending()

    def _write_pending(self) -> None:
        if self._pending:
            pending, self._pending = self._pending, []
            sys.stdout.write("\n".join(pending) + "\n")
            sys.stdout.flush()

    def flush(self) -> None:
        """Write the I messages not written yet (the verb's end)."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._write_pending()


_show = _Show()

#: Set once a verb has run to its end and its output is flushed: the console entry may then
#: end the process without the interpreter's teardown (wucme.entry).
verb_finished = False


def _verb(args: list[str]) -> int:
    """Run a verb; its result shown as it comes, or as one JSON object for /OUTPUT=JSON."""
    from wucme.verbs import parse_command, run
    from wucme.result import render_json

    cmd = parse_command(args)
    if cmd.value("output") == "json":
        result = run(cmd)
        sys.stdout.write(render_json(result) + "\n")
        sys.stdout.flush()
    else:
        try:
            result = run(cmd, _show)
        finally:
            _show.flush()
    global verb_finished
    verb_finished = True
    return result.status


def _as_cgi_script(args: list[str]) -> bool:
    """Was the image invoked as a CGI script?  With no arguments, or with the ones a server
    makes of a query string without '=' (RFC 3875 §4.4).  A command with its own arguments
    (`wucme @load.com` run by WUCME_LOAD, a hook) is the command line even where a CGI
    variable leaked into its environment: answering it as the script again made the admin
    load page fork without end."""
    if not args:
        return True
    from urllib.parse import unquote

    query = os.environ.get("QUERY_STRING", "")
    return "=" not in query and args == [unquote(w) for w in query.split("+") if w]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if argv is None and os.environ.get("GATEWAY_INTERFACE") and _as_cgi_script(args):
        if not os.environ.get("REQUEST_METHOD"):
            # A script activation without a request: WASD's proctor starting the agent.
            from wucme.agent.__main__ import main as agent_main

            return agent_main([])
        from wucme.web import cgi_main

        return cgi_main()
    if args and args[0] == "--uacme":
        from wucme.uacme.main import main as uacme_main

        if argv is None and hasattr(signal, "SIGPIPE"):
            # As uacme (a C program) does: a closed output pipe kills the process (141 in a
            # shell), where Python would raise and end with 1, uacme's "still current".
            signal.signal(signal.SIGPIPE, signal.SIG_DFL)

        return uacme_main(args[1:])
    if args and args[0].lower() == "alpn":
        from wucme.challenge.alpn import alpn_main

        return alpn_main(args[1:])
    if args and args[0].startswith("@"):
        from wucme.dclproc import dcl_main

        return dcl_main(args)
    if args and args[0].lower() in ("acme_tls_1", "acme-tls-1"):
        from wucme.challenge.acme_tls_1 import acme_tls_1_main

        return acme_tls_1_main(args[1:])
    if args and args[0] in ("--version", "-V"):
        args = ["version"]
    if args and args[0] in ("--help", "-h", "-?"):
        args = ["help"]
    try:
        return _verb(args)
    except (WucmeError, VmsError) as e:
        return _error(e.severity, e.ident, e.text)
    except KeyboardInterrupt:
        return _error("F", "ABORT", "interrupted")
    except BrokenPipeError:
        # The reader went away (`wucme certificates | head -3`): end quietly, as a command killed
        # by SIGPIPE does, with the shell's status for it; nothing more can be written there.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except OSError:
            pass
        return 128 + 13
    except Exception as e:  # noqa: BLE001 - the face never shows a bare traceback
        if _verbose():
            import traceback

            traceback.print_exc()
            hint = "the traceback is above"
        else:
            hint = "define WUCME_VERBOSE and run it again for the traceback"
        return _error("F", "BUG", f"unexpected {type(e).__name__}: {e} ({hint})")


if __name__ == "__main__":
    sys.exit(main())
