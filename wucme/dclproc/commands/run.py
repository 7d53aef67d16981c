"""Running things: `@procedure`, foreign commands (a symbol `X == "$image"`), MCR and RUN."""

from __future__ import annotations

from typing import TYPE_CHECKING

from wucme.dclproc.commands.common import need
from wucme.dclproc.images import command_argv, image_argv, is_wucme_image
from wucme.dclproc.scan import parse_args, split_words, unquote, upcase_unquoted
from wucme.dclproc.status import signal

if TYPE_CHECKING:
    from wucme.dclproc.interp import Interpreter

__all__ = ["VERBS", "at", "foreign"]


def at(interp: Interpreter, rest: str) -> int:
    """`@file p1 ... p8`: unquoted parameters upper-cased, quoted ones kept (DCL Dictionary, @)."""
    words = split_words(interp.ampersands(rest))
    if not words:
        raise signal("INSFPRM")
    if len(words) > 9:
        raise signal("MAXPARM", upcase_unquoted(words[9]))
    params = [upcase_unquoted(w) for w in words[1:]]
    return interp.run_file(unquote(words[0]), params)


def foreign(interp: Interpreter, value: str, rest: str) -> int:
    """A symbol `X == "$image [args]"` used as a verb: run the image with the rest of the line."""
    words = split_words(value)
    if not words:
        raise signal("IVVERB", value)
    image = unquote(words[0])
    argv = image_argv(image) + command_argv(" ".join(words[1:]) + " " + interp.ampersands(rest))
    return interp.run_image(argv, is_wucme_image(image))


def _mcr(interp: Interpreter, rest: str) -> int:
    words = split_words(rest)
    if not words:
        raise signal("INSFPRM")
    image = unquote(words[0])
    argv = image_argv(image) + command_argv(interp.ampersands(rest.strip()[len(words[0]):]))
    return interp.run_image(argv, is_wucme_image(image))


def _run(interp: Interpreter, rest: str) -> int:
    parsed = parse_args(interp.ampersands(rest), ())
    need(parsed.params, 1, 1)
    image = unquote(parsed.params[0])
    return interp.run_image(image_argv(image), is_wucme_image(image))


VERBS = {"MCR": _mcr, "RUN": _run}
