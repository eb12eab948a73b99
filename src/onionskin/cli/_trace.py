"""`onionskin trace show FILE`: a trace file as one line per call, and a summary."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from onionskin.cli._errors import clear_errors
from onionskin.cli._options import JsonOption
from onionskin.cli._output import (
    JsonValue,
    add_row,
    clip,
    console,
    emit_json,
    iso,
    say,
    shown_time,
    status_text,
    table,
)
from onionskin.cli._trace_records import TraceRecord, TraceSummary, read_trace, summarize

trace = typer.Typer(no_args_is_help=True, help="Read the JSON-lines files TraceMiddleware writes.")


@trace.command("show")
def show(
    file: Annotated[
        Path, typer.Argument(metavar="FILE", help="A trace file (trace.jsonl or a rotated one).")
    ],
    as_json: JsonOption = False,
) -> None:
    """Show every call of a trace file (time, kind, name, status, duration, error) and a summary."""
    with clear_errors():
        records = read_trace(file)
    summary = summarize(records)
    if as_json:
        calls = [record.model_dump(mode="json") for record in records]
        emit_json({"file": str(file), "calls": calls, "summary": _summary_json(summary)})
        return
    out = console()
    if records:
        out.print(_calls_table(file, records))
    else:
        say(out, f"no calls in {file}")
    for line in _summary_lines(summary):
        say(out, line)


def _calls_table(file: Path, records: list[TraceRecord]) -> Table:
    columns = ("time (UTC)", "run", "kind", "name", "agent", "status", "ms", "tokens", "cost")
    shown = table(f"Calls in {file}", *columns, "error", right=("ms", "tokens", "cost"))
    for record in records:
        used = record.tokens
        error = record.error
        add_row(
            shown,
            "-" if record.started_at is None else shown_time(record.started_at, millis=True),
            record.run_id or "-",
            record.kind,
            record.name,
            record.agent or "-",
            status_text(record.status),
            f"{record.duration_ms:.3f}",
            "-" if used is None else f"{used.input}/{used.output}",
            "-" if record.cost is None else str(record.cost),
            "" if error is None else clip(f"{error.type}: {error.message}", 60),
        )
    return shown


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{count} {name}" for name, count in sorted(counts.items()))


def _summary_lines(summary: TraceSummary) -> list[str]:
    lines = [
        f"{summary.calls} calls ({_counts(summary.by_kind) or 'none'}) in {summary.runs} runs; "
        f"status: {_counts(summary.by_status) or 'none'}",
        f"{summary.duration_ms:.3f} ms in calls; tokens {summary.input_tokens} in / "
        f"{summary.output_tokens} out; cost ${summary.cost}",
    ]
    if summary.first is not None and summary.last is not None:
        first, last = (shown_time(moment, millis=True) for moment in (summary.first, summary.last))
        lines.append(f"from {first} to {last} (UTC)")
    return lines


def _summary_json(summary: TraceSummary) -> JsonValue:
    return {
        "calls": summary.calls,
        "by_kind": summary.by_kind,
        "by_status": summary.by_status,
        "runs": summary.runs,
        "duration_ms": summary.duration_ms,
        "input_tokens": summary.input_tokens,
        "output_tokens": summary.output_tokens,
        "cost_usd": str(summary.cost),
        "first_started_at": None if summary.first is None else iso(summary.first),
        "last_started_at": None if summary.last is None else iso(summary.last),
    }
