"""Live progress of a run: agent turns, model and tool calls, and the model's streamed text.

On a terminal a rich `Live` area shows what is under way (a spinner, the current call and
the tail of the text being streamed) while finished calls scroll above it. Anywhere else
(a pipe, a file, CI) the same story is written as plain lines, the text as it streams, so
that a log reads top to bottom:

```
run 01a1... started (pipeline assistant, no tenant)
→ agent assistant
  → model scripted
    (scripted) You said: hello
  ← model scripted: 25 in / 9 out tokens, $0.000000, 3 ms
← agent assistant: 4 ms
```
"""

from __future__ import annotations

from decimal import Decimal
from types import TracebackType
from typing import assert_never

from rich.console import Console, Group
from rich.live import Live
from rich.spinner import Spinner
from rich.text import Text

from onionskin.core.calls import CallKind
from onionskin.core.events import (
    CallFailed,
    CallFinished,
    CallStarted,
    RunCompleted,
    RunEvent,
    RunFailed,
    RunStarted,
    TextDelta,
)

_INDENT: dict[CallKind, str] = {"pipeline": "", "agent": "", "model": "  ", "tool": "  "}
_TEXT_INDENT = "    "
_TAIL_LINES = 6
"""Lines of streamed text the live area shows (the whole text is printed once it ends)."""


def money(amount: Decimal) -> str:
    """USD as shown: six decimals, or every digit when an amount has more (never rounded)."""
    exact = amount.normalize()
    exponent = exact.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -6:
        return f"${exact:f}"
    return f"${amount:.6f}"


def _ms(duration_ms: float) -> str:
    return f"{duration_ms:.0f} ms"


class ProgressView:
    """Shows a run's events as they happen; use it as a context manager and call it per event.

    Args:
        console: where to write; `Live` is used only when it is a terminal.
    """

    def __init__(self, console: Console) -> None:
        self.console = console
        self._live: Live | None = None
        self._active: dict[str, str] = {}
        """The calls under way, outermost first, by call id (the live area's status line)."""
        self._text = ""
        """The text streamed by the model call under way."""
        self._line_open = False
        """Plain mode: the streamed text's last line has no newline yet."""

    def __enter__(self) -> ProgressView:
        if self.console.is_terminal:
            self._live = Live(
                self._renderable(), console=self.console, transient=True, refresh_per_second=12
            )
            self._live.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._end_text()
        if self._live is not None:
            self._live.stop()
            self._live = None

    def __call__(self, event: RunEvent) -> None:
        """Show one event (an `EventSink`)."""
        match event:
            case RunStarted():
                tenant = "no tenant" if event.tenant_id is None else f"tenant {event.tenant_id}"
                self._line(f"run {event.run_id} started (pipeline {event.pipeline_id}, {tenant})")
            case CallStarted():
                self._end_text()
                self._active[event.call_id] = f"{event.kind} {event.name}"
                self._line(f"{_INDENT[event.kind]}→ {event.kind} {event.name}")
            case CallFinished():
                self._end_text()
                self._active.pop(event.call_id, None)
                self._line(f"{_INDENT[event.kind]}← {event.kind} {event.name}: {_done(event)}")
            case CallFailed():
                self._end_text()
                self._active.pop(event.call_id, None)
                self._line(
                    f"{_INDENT[event.kind]}✗ {event.kind} {event.name} failed after "
                    f"{_ms(event.duration_ms)}: {event.error_type}: {event.error}"
                )
            case TextDelta():
                self._stream(event.text)
            case RunCompleted() | RunFailed():
                self._end_text()  # the command prints the result or the error itself
            case unknown:
                assert_never(unknown)

    def _line(self, text: str) -> None:
        self._refresh()  # printing redraws the live area below the line: make it current
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def _stream(self, piece: str) -> None:
        self._text += piece
        if self._live is not None:
            self._refresh()  # the live area shows the tail; the whole is printed at the end
            return
        out = ""
        for index, part in enumerate(piece.split("\n")):
            if index:
                out += "\n"
                self._line_open = False
            if part and not self._line_open:
                out += _TEXT_INDENT
                self._line_open = True
            out += part
        self.console.print(out, end="", markup=False, highlight=False, soft_wrap=True)

    def _end_text(self) -> None:
        """Close the streamed text of the call that ended (print it whole on a terminal)."""
        if self._live is not None and self._text:
            for line in self._text.splitlines():
                self._line(f"{_TEXT_INDENT}{line}")
        elif self._line_open:
            self.console.print(soft_wrap=True)
        self._text = ""
        self._line_open = False

    def _renderable(self) -> Group:
        status = " → ".join(self._active.values()) or "running"
        spinner = Spinner("dots", text=Text(status, style="bold"))
        tail = self._text.splitlines()[-_TAIL_LINES:]
        return Group(spinner, *(Text(f"{_TEXT_INDENT}{line}", style="dim") for line in tail))

    def _refresh(self) -> None:
        if self._live is not None:
            # Drawn now: a line printed next redraws the live area from what was last drawn.
            self._live.update(self._renderable(), refresh=True)


def _done(event: CallFinished) -> str:
    if event.error is not None:  # a tool that could not run: the model was told why
        return f"{_ms(event.duration_ms)}, answered the error: {event.error}"
    if event.kind != "model":
        return _ms(event.duration_ms)
    return (
        f"{event.input_tokens} in / {event.output_tokens} out tokens, "
        f"{money(event.cost_usd)}, {_ms(event.duration_ms)}"
    )
