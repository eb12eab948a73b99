"""Watching a run from the CLI (`run`, `replay`): its progress, then its result or its failure.

A run that fails after it started is not a usage error: its checkpoints are saved (so
`onionskin replay` can continue it), and the command says which run failed and why, in one
line, and exits 1. Anything that goes wrong before the run starts (a bad option, a broken
project, an unknown agent) is left to `clear_errors` (exit 2).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import typer
from rich.console import Console
from rich.markup import escape

from onionskin.cli import _errors
from onionskin.cli._output import JsonValue, console, emit_json
from onionskin.cli._progress import ProgressView
from onionskin.cli._run_result import print_result, result_json
from onionskin.core.events import RunEvent, RunStarted
from onionskin.runtime._result import RunResult

RUN_FAILED = 1
"""The exit code of a run that started and failed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RunFailure:
    """A run that started and raised: its id and its exception."""

    run_id: str
    error: Exception


@dataclass(slots=True, kw_only=True)
class RunWatch:
    """An event sink: shows each event (unless `--json`) and notes the run's id."""

    view: ProgressView | None
    run_id: str | None = None
    pipeline_id: str | None = None

    def __call__(self, event: RunEvent) -> None:
        """Take one event of the run."""
        if isinstance(event, RunStarted):
            self.run_id, self.pipeline_id = event.run_id, event.pipeline_id
        if self.view is not None:
            self.view(event)


async def watched(
    watch: RunWatch, start: Callable[[RunWatch], Awaitable[RunResult]]
) -> RunResult | RunFailure:
    """`start(watch)`'s result, or, when the run started and then raised, a `RunFailure`."""
    try:
        if watch.view is None:
            return await start(watch)
        with watch.view:
            return await start(watch)
    except Exception as error:
        if watch.run_id is None:
            raise  # it never started: a usage error for clear_errors
        return RunFailure(run_id=watch.run_id, error=error)


def new_watch(as_json: bool) -> RunWatch:
    """A watch that shows progress on stdout, or nothing when the output is JSON."""
    return RunWatch(view=None if as_json else ProgressView(console()))


def report(
    outcome: RunResult | RunFailure,
    *,
    as_json: bool,
    hint: Callable[[str], str],
    **extra: JsonValue,
) -> None:
    """Print the result (or one JSON object); for a failure, one line and exit 1.

    Args:
        outcome: how the run ended.
        as_json: print one JSON object instead of text.
        hint: what to run to continue a failed run, given its id.
        extra: more fields for the JSON object (where a replay started from).
    """
    if isinstance(outcome, RunFailure):
        error = outcome.error
        if _errors._debug.get():  # --debug: the run's own exception, with its traceback
            raise error
        text = (str(error).strip() or type(error).__name__).splitlines()[0]
        line = f"run {outcome.run_id} failed: {type(error).__name__}: {text}"
        hint_text = hint(outcome.run_id)
        Console(stderr=True, soft_wrap=True, highlight=False).print(
            f"[red]error:[/red] {escape(line)} (checkpoints saved; {escape(hint_text)})"
        )
        raise typer.Exit(RUN_FAILED)
    if as_json:
        emit_json(result_json(outcome, **extra))
    else:
        print_result(console(), outcome)
