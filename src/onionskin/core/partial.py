"""What an interrupted model call used: the tokens streamed before it was cut off.

A streamed answer cut short (the client disconnected, a timeout fired, the connection
dropped) still cost its prompt and the tokens already sent; DEPENDENCIES lesson 4: charge
partial streams and disconnects too. The runtime notes an estimate on the exception that
ends the call, and every layer the exception passes through on its way out (the budget
guard, the cost ledger) bills it. The exception is the one thing that travels out of an
interrupted call through every layer, so that is where the usage rides; nothing else about
the exception changes.
"""

from __future__ import annotations

from onionskin.core.usage import Usage

_ATTRIBUTE = "onionskin_partial_usage"


def note_partial_usage(error: BaseException, usage: Usage) -> None:
    """Record on `error` what the call it ended had used."""
    setattr(error, _ATTRIBUTE, usage)


def partial_usage(error: BaseException) -> Usage | None:
    """What the call `error` ended had used, if the runtime noted it."""
    usage = getattr(error, _ATTRIBUTE, None)
    return usage if isinstance(usage, Usage) else None
