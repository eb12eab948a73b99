"""A trace file read back: its records checked line by line, and what they add up to.

`TraceMiddleware` writes one JSON object per model or tool call (the fields are listed in
`onionskin.middleware.trace`). A file is input like any other: each line is checked here
against the fields the CLI shows, and the first bad line fails the whole read with its line
number, so a truncated or foreign file is never shown half right. Fields the CLI does not
show (arguments, results, ids) are not checked: a trace may carry anything there.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from onionskin.cli._errors import CommandError


class CallError(BaseModel):
    """Why a traced call failed."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    type: str
    message: str


class CallTokens(BaseModel):
    """A model call's tokens."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    input: int = Field(default=0, ge=0)
    output: int = Field(default=0, ge=0)
    cached: int = Field(default=0, ge=0)


class TraceRecord(BaseModel):
    """One traced call, as much of it as the CLI shows."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    run_id: str | None = None
    tenant_id: str | None = None
    agent: str | None = None
    kind: str
    name: str
    started_at: AwareDatetime | None = None
    duration_ms: float = Field(ge=0, allow_inf_nan=False)
    status: str
    error: CallError | None = None
    tokens: CallTokens | None = None
    cost: Decimal | None = Field(default=None, ge=0)
    """USD, exact: the writer stores it as a decimal string."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TraceSummary:
    """What a trace file's calls add up to."""

    calls: int
    by_kind: dict[str, int]
    by_status: dict[str, int]
    runs: int
    """Distinct run ids among the calls (calls outside a run are not counted)."""
    duration_ms: float
    """The calls' durations added up (nested calls count within their parents too)."""
    input_tokens: int
    output_tokens: int
    cost: Decimal
    first: datetime | None
    last: datetime | None


def read_trace(path: Path) -> list[TraceRecord]:
    """Every record of the trace file at `path`, in file order; blank lines are skipped.

    Raises:
        CommandError: the file is missing or unreadable, or a line is not a trace record
            (the message names the file and the line number).
    """
    records: list[TraceRecord] = []
    try:
        with path.open("rb") as file:
            for number, line in enumerate(file, start=1):
                line = line.strip()
                if line:
                    records.append(_record(path, number, line))
    except FileNotFoundError:
        raise CommandError(f"trace file {path} does not exist") from None
    except OSError as error:
        raise CommandError(f"cannot read trace file {path}: {error.strerror or error}") from None
    return records


def _record(path: Path, number: int, line: bytes) -> TraceRecord:
    try:
        return TraceRecord.model_validate_json(line)
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        if first["type"] == "json_invalid":
            # The parser sees one line: its "line 1" would read as the file's first line.
            problem = f"not valid JSON ({first['msg'].replace(' at line 1 column', ' at column')})"
        else:
            where = ".".join(str(part) for part in first["loc"])
            problem = f"not a trace record: {where + ': ' if where else ''}{first['msg']}"
        raise CommandError(f"{path}:{number}: {problem}") from None


def summarize(records: list[TraceRecord]) -> TraceSummary:
    """The totals of `records`: calls by kind and status, runs, time, tokens and cost."""
    times = [record.started_at for record in records if record.started_at is not None]
    tokens = [record.tokens for record in records if record.tokens is not None]
    return TraceSummary(
        calls=len(records),
        by_kind=dict(Counter(record.kind for record in records)),
        by_status=dict(Counter(record.status for record in records)),
        runs=len({record.run_id for record in records if record.run_id is not None}),
        duration_ms=round(sum(record.duration_ms for record in records), 3),
        input_tokens=sum(used.input for used in tokens),
        output_tokens=sum(used.output for used in tokens),
        cost=sum((record.cost for record in records if record.cost is not None), Decimal(0)),
        first=min(times, default=None),
        last=max(times, default=None),
    )
