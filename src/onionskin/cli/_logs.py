"""onionskin's log warnings during a project command: one `warning:` line each on stderr.

Loading a project and its plugins logs what the user should know (a plugin skipped, a
model string answered by the scripted stand-in). Python's last-resort handler would print
those with their tracebacks; the CLI promises tracebacks only with `--debug`, so while a
command runs, the `onionskin` logger gets a handler that prints the message alone.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape

from onionskin.cli import _errors

ROOT_LOGGER = "onionskin"


class _LineHandler(logging.Handler):
    """Prints each record as `warning: message` on stderr, skipping the loggers in `muted`."""

    def __init__(self, muted: Collection[str]) -> None:
        super().__init__(logging.WARNING)
        self.muted = tuple(muted)
        self.console = Console(stderr=True, soft_wrap=True, highlight=False)

    def emit(self, record: logging.LogRecord) -> None:
        if any(record.name == name or record.name.startswith(f"{name}.") for name in self.muted):
            return
        label = "error" if record.levelno >= logging.ERROR else "warning"
        colour = "red" if label == "error" else "yellow"
        # The first line only: a message that spans lines would break the one-line promise.
        line = (record.getMessage().strip().splitlines() or [""])[0]
        self.console.print(f"[{colour}]{label}:[/{colour}] {escape(line)}")


@contextmanager
def warnings_as_lines(*, muted: Collection[str] = ()) -> Iterator[None]:
    """While the block runs, print onionskin's warnings as one line each (not with `--debug`).

    Args:
        muted: loggers whose records the command reports itself (`onionskin.plugins` for
            `onionskin plugins`, which lists the skipped plugins in its table).
    """
    # The CLI's own debug switch (a context variable of `_errors`): with --debug, Python's
    # handlers print everything, tracebacks included.
    if _errors._debug.get():
        yield
        return
    logger = logging.getLogger(ROOT_LOGGER)
    handler = _LineHandler(muted)
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False  # or the root's handlers (and the last resort) print it again
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate
