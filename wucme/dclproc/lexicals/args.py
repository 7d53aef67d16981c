"""Reading a lexical function's arguments: omitted ones take their documented defaults."""

from __future__ import annotations

from wucme.dclproc.status import signal
from wucme.dclproc.values import Value, to_int, to_str

__all__ = ["Args", "keyword"]

Args = list["Value | None"]


def text(args: Args, i: int, default: str = "") -> str:
    v = args[i] if i < len(args) else None
    return default if v is None else to_str(v)


def number(args: Args, i: int, default: int = 0) -> int:
    v = args[i] if i < len(args) else None
    return default if v is None else to_int(v)


def keyword(args: Args, i: int, function: str, known: tuple[str, ...], supported: tuple[str, ...] | None = None,
            default: str = "") -> str:
    """An item or keyword argument, upper-cased (items are not abbreviated); *default* when omitted or null.

    One DCL documents for the function but wucme does not give (in *known*, not in
    *supported*) is %DCL-E-NOTSUPP, an error: going on without it would run the procedure
    in a wrong state.  One DCL does not know is %DCL-W-IVKEYW, as DCL reports it.
    """
    word = text(args, i).strip().upper() or default
    if word in (known if supported is None else supported):
        return word
    if word in known:
        raise signal("NOTSUPP", f"{function} {word}")
    raise signal("IVKEYW", word)
