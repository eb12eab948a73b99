"""Rich rendering of a run's events and of its summary (the demo and the CLI use it)."""

from __future__ import annotations

from decimal import Decimal

from rich.console import Console
from rich.table import Table

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
from onionskin.runtime._result import RunResult


class EventPrinter:
    """Prints events as one line each; streamed text is printed as it arrives."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._streaming = False

    def _end_stream(self) -> None:
        if self._streaming:
            self.console.print()
            self._streaming = False

    def __call__(self, event: RunEvent) -> None:
        out = self.console
        if isinstance(event, TextDelta):
            if not self._streaming:
                out.print("      [dim]│[/dim] ", end="")
                self._streaming = True
            out.print(event.text, end="", markup=False, highlight=False)
            return
        self._end_stream()
        if isinstance(event, RunStarted):
            out.print(
                f"[bold]▶ run[/bold] {event.pipeline_id} [dim]{event.run_id}[/dim] "
                f"tenant [cyan]{event.tenant_id}[/cyan]"
            )
        elif isinstance(event, CallStarted) and event.kind == "agent":
            out.print(f"  [bold magenta]● {event.name}[/bold magenta]")
        elif isinstance(event, CallFinished) and event.kind == "model":
            out.print(
                f"    [blue]model[/blue] {event.name}: {event.input_tokens} in / "
                f"{event.output_tokens} out tokens, ${event.cost_usd:.6f}, "
                f"{event.duration_ms:.2f} ms"
            )
        elif isinstance(event, CallFinished) and event.kind == "tool":
            out.print(f"    [green]tool[/green] {event.name}: {event.duration_ms:.2f} ms")
        elif isinstance(event, CallFailed):
            out.print(f"    [red]✗ {event.kind} {event.name}: {event.error_type}: {event.error}")
        elif isinstance(event, RunCompleted):
            verb = "stopped" if event.stopped else "completed"
            out.print(f"[bold green]✔ run {verb}[/bold green] in {event.duration_ms:.1f} ms")
        elif isinstance(event, RunFailed):
            out.print(f"[bold red]✗ run failed[/bold red]: {event.error_type}: {event.error}")


def summary_table(result: RunResult, *, title: str = "Summary") -> Table:
    """A table of tokens, cost, calls and duration per agent, with a total row."""
    table = Table(title=title, title_justify="left")
    for column in ("agent", "model calls", "tool calls", "input tokens", "output tokens"):
        table.add_column(column, justify="left" if column == "agent" else "right")
    table.add_column("cost (USD)", justify="right")
    table.add_column("duration (ms)", justify="right")
    total_cost = Decimal(0)
    for name, stats in result.agents.items():
        total_cost += stats.cost
        table.add_row(
            name,
            str(stats.model_calls),
            str(stats.tool_calls),
            str(stats.usage.input_tokens),
            str(stats.usage.output_tokens),
            f"{stats.cost:.6f}",
            f"{stats.duration_ms:.2f}",
        )
    table.add_row(
        "[bold]total[/bold]",
        str(sum(s.model_calls for s in result.agents.values())),
        str(sum(s.tool_calls for s in result.agents.values())),
        str(result.usage.input_tokens),
        str(result.usage.output_tokens),
        f"{total_cost:.6f}",
        f"{result.duration_ms:.2f}",
        style="bold",
    )
    return table
