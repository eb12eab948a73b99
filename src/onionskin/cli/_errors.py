"""How a command fails: one clear line on stderr and a non-zero exit, or with `--debug` a traceback.

Exit codes: 2 for what the user can fix (onionskin's own errors, a file that cannot be
read, a value that does not parse, an optional extra that is not installed), 1 for anything
else (a bug: the line says to run again with `--debug`). typer's own exits and usage errors
pass through untouched.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import typer
from rich.console import Console
from rich.markup import escape

from onionskin.core.errors import OnionskinError

USER_ERROR = 2
"""The exit code of an error the user can fix (as click's own usage errors)."""
INTERNAL_ERROR = 1
"""The exit code of an unexpected error."""

# A context variable, not a module global: CliRunner runs many invocations in one process,
# and the app's callback sets it again for each.
_debug: ContextVar[bool] = ContextVar("onionskin_cli_debug", default=False)


class CommandError(OnionskinError):
    """What a command was asked for does not exist or is malformed (an unknown run, a bad line).

    The CLI's own error, under onionskin's root: the message is the whole line the user sees.
    """


def set_debug(enabled: bool) -> None:
    """Show tracebacks instead of one-line errors for the rest of this invocation."""
    _debug.set(enabled)


def _fail(message: str, code: int) -> typer.Exit:
    # Escaped and unhighlighted: a message may hold brackets (a repr) or numbers. soft_wrap:
    # one line however narrow the terminal, so that scripts can grep it.
    Console(stderr=True, soft_wrap=True).print(
        f"[red]error:[/red] {escape(message)}", highlight=False
    )
    return typer.Exit(code)


@contextmanager
def clear_errors() -> Iterator[None]:
    """Turn an exception of the block into one line on stderr and an exit; `--debug` re-raises.

    onionskin's errors, `OSError` (a missing or unreadable file), `ValueError` (a value that
    does not parse) and `ImportError` (the backends name the extra to install) exit 2; any
    other exception is a bug and exits 1.
    """
    try:
        yield
    except (typer.Exit, typer.Abort, typer.TyperException):
        raise  # typer's own control flow and usage errors
    except (OnionskinError, OSError, ValueError, ImportError) as error:
        if _debug.get():
            raise
        raise _fail(_one_line(error), USER_ERROR) from None
    except Exception as error:
        if _debug.get():
            raise
        message = f"unexpected {type(error).__name__}: {_one_line(error)}"
        raise _fail(
            f"{message} (run again with --debug for the traceback)", INTERNAL_ERROR
        ) from None


def _one_line(error: BaseException) -> str:
    # Some messages span lines (a driver's SQL, a pydantic report): the first one names it.
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]
