"""The JSON of runs and checkpoints, as `routes.runs` answers them.

Times are ISO 8601 in UTC; a checkpoint's messages become `{"role", "text"}` pairs and its
step a one-line summary, in the CLI's words (`onionskin.stores._checkpoint_summary`).
A run that a middleware ended early (`StopProcessing`) is stored as completed with
`stopped` on its end checkpoint: here its status is `"stopped"`. A failed run's error shows
only when the HTTP API would show it (`onionskin.server.errors`): a database URL in an
exception stays in the store.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from onionskin.server.errors import is_public
from onionskin.server.routes._live import HIDDEN_ERROR_TYPE, HIDDEN_RUN_ERROR
from onionskin.stores._checkpoint_summary import plain_text, summary
from onionskin.stores.checkpoints import Checkpoint, CheckpointKind, RunSummary

RunState = Literal["running", "completed", "failed", "stopped"]


def iso(moment: datetime) -> str:
    """`moment` in UTC as ISO 8601."""
    return moment.astimezone(UTC).isoformat()


class RunBody(BaseModel):
    """One run of the organization."""

    run_id: str
    pipeline_id: str
    tenant_id: str | None
    status: RunState
    started_at: str = Field(description="ISO 8601, UTC: the run's first checkpoint.")
    updated_at: str = Field(description="ISO 8601, UTC: the run's latest checkpoint.")
    checkpoints: int = Field(description="How many checkpoints the run has.")
    last_step: str | None = Field(description="What the run's latest step did, in a line.")


class RunsBody(BaseModel):
    """The organization's runs, the most recently started first."""

    runs: list[RunBody]


class MessageBody(BaseModel):
    """One message of a checkpoint's transcript, as text."""

    role: str
    text: str


class CheckpointBody(BaseModel):
    """A run as it was after one step."""

    checkpoint_id: str
    parent_id: str | None
    run_id: str
    step: int
    kind: CheckpointKind
    agent: str | None
    created_at: str = Field(description="ISO 8601, UTC.")
    summary: str = Field(description="What had just happened, in a line.")
    state: dict[str, Any] = Field(description="The run's state at that step (JSON values).")
    messages: list[MessageBody]


class CheckpointsBody(BaseModel):
    """A run's checkpoints, in step order."""

    checkpoints: list[CheckpointBody]


class ReplayRequest(BaseModel):
    """Where a replay starts, and the state a fork sets over the saved one."""

    model_config = ConfigDict(extra="forbid", strict=True)

    checkpoint_id: str = Field(
        min_length=1, max_length=200, description="A checkpoint of the run to start from."
    )
    state: dict[str, Any] | None = Field(
        default=None,
        description="Fork: keys set over the checkpoint's saved state; null replays it as saved.",
    )


def run_status(run: RunSummary, latest: Checkpoint | None) -> RunState:
    """The run's status, `"stopped"` for a completed run a middleware ended early."""
    if (
        run.status == "completed"
        and latest is not None
        and latest.kind == "end"
        and latest.data.get("stopped") is True
    ):
        return "stopped"
    return run.status


def run_body(run: RunSummary, latest: Checkpoint | None) -> RunBody:
    """The JSON of a run, from its summary and its latest checkpoint."""
    return RunBody(
        run_id=run.run_id,
        pipeline_id=run.pipeline_id,
        tenant_id=run.tenant_id,
        status=run_status(run, latest),
        started_at=iso(run.started_at),
        updated_at=iso(run.updated_at),
        checkpoints=run.checkpoints,
        last_step=None if latest is None else summary(_public(latest)),
    )


def summarize(checkpoints: Sequence[Checkpoint]) -> RunSummary:
    """The summary of a run from all its checkpoints (in step order, at least one)."""
    latest = checkpoints[-1]
    times = [checkpoint.created_at for checkpoint in checkpoints]
    return RunSummary(
        run_id=latest.run_id,
        tenant_id=latest.tenant_id,
        pipeline_id=latest.pipeline_id,
        checkpoints=len(checkpoints),
        last_step=latest.step,
        status=latest.status,
        started_at=min(times),
        updated_at=max(times),
    )


def checkpoint_body(checkpoint: Checkpoint) -> CheckpointBody:
    """The JSON of a checkpoint."""
    return CheckpointBody(
        checkpoint_id=checkpoint.checkpoint_id,
        parent_id=checkpoint.parent_id,
        run_id=checkpoint.run_id,
        step=checkpoint.step,
        kind=checkpoint.kind,
        agent=checkpoint.agent,
        created_at=iso(checkpoint.created_at),
        summary=summary(_public(checkpoint)),
        state=dict(checkpoint.state),
        messages=[_message(message) for message in checkpoint.messages],
    )


def _public(checkpoint: Checkpoint) -> Checkpoint:
    """`checkpoint` with its failure's message generic, unless clients may see it."""
    error = checkpoint.data.get("error")
    if not isinstance(error, Mapping) or is_public(str(error.get("type"))):
        return checkpoint
    hidden = {"type": HIDDEN_ERROR_TYPE, "message": HIDDEN_RUN_ERROR}
    return replace(checkpoint, data={**checkpoint.data, "error": hidden})


def _message(message: object) -> MessageBody:
    # object: a store may hold messages other code wrote; a shape not known reads as text.
    role = message.get("role") if isinstance(message, Mapping) else None
    return MessageBody(role=role if isinstance(role, str) else "unknown", text=plain_text(message))
