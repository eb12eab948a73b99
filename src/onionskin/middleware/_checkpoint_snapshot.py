"""What a checkpoint's `data` holds, and the `ResumePoint` rebuilt from it.

`data` (JSON): `input` (the first agent's message), `outputs` (finished agents),
`tool_returns` (results of the latest reply's tool calls that ran), `totals` (tokens, cost
and calls per agent), and on `end` checkpoints `output`, `error` or `stopped`; a forked run
also names the checkpoint it `forked_from`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pydantic_core

from onionskin.core.context import RunContext
from onionskin.core.errors import StoreError
from onionskin.core.messages import Message
from onionskin.core.progress import AgentTotals, ResumePoint
from onionskin.middleware._message_json import (
    message_from_json,
    message_to_json,
    part_to_json,
    tool_return_from_json,
)
from onionskin.stores.checkpoints import Checkpoint

FORMAT = 1
"""Bumped when `data`'s layout changes incompatibly."""


def jsonable(value: Any) -> Any:  # Any: JSON in, JSON out
    """`value` as JSON values; anything JSON can't hold is stored as its `str()`."""
    return pydantic_core.to_jsonable_python(value, fallback=str)


def _totals(ctx: RunContext) -> dict[str, dict[str, Any]]:
    return {
        agent: {
            "input_tokens": stats.usage.input_tokens,
            "output_tokens": stats.usage.output_tokens,
            "cached_tokens": stats.usage.cached_tokens,
            "cost_usd": str(stats.cost),
            "duration_ms": stats.duration_ms,
            "model_calls": stats.model_calls,
            "tool_calls": stats.tool_calls,
        }
        for agent, stats in ctx.agent_stats.items()
    }


def snapshot_data(
    ctx: RunContext, extra: Mapping[str, Any] | None, *, forked_from: str | None
) -> dict[str, Any]:
    """The `data` of a checkpoint taken now."""
    progress = ctx.progress
    data: dict[str, Any] = {
        "format": FORMAT,
        "input": None if progress.input is None else message_to_json(progress.input),
        "outputs": jsonable(progress.outputs),
        "tool_returns": [part_to_json(part) for part in progress.tool_returns or ()],
        "totals": _totals(ctx),
    }
    if forked_from is not None:
        data["forked_from"] = forked_from
    if extra:
        data.update(jsonable(extra))
    return data


def _input(data: Mapping[str, Any]) -> Message:
    raw = data.get("input")
    if raw is None:
        raise StoreError("the checkpoint does not record the run's input: it can't be resumed")
    return message_from_json(raw)


def resume_point_of(
    checkpoint: Checkpoint, *, step: int | None = None, checkpoint_id: str | None = None
) -> ResumePoint:
    """Where a run continues from `checkpoint` (numbered after `step`, child of `checkpoint_id`)."""
    data = checkpoint.data
    if data.get("format") != FORMAT:
        raise StoreError(f"checkpoint {checkpoint.checkpoint_id!r} has an unknown data format")
    outputs = data.get("outputs")
    totals = data.get("totals")
    if not isinstance(outputs, Mapping) or not isinstance(totals, Mapping):
        raise StoreError(f"checkpoint {checkpoint.checkpoint_id!r} is missing outputs or totals")
    try:
        agent_totals = {agent: AgentTotals(**raw) for agent, raw in totals.items()}
    except TypeError as error:
        raise StoreError(
            f"checkpoint {checkpoint.checkpoint_id!r} has bad totals: {error}"
        ) from None
    between_turns = checkpoint.kind in ("input", "agent", "end")
    return ResumePoint(
        checkpoint_id=checkpoint_id or checkpoint.checkpoint_id,
        run_id=checkpoint.run_id,
        step=checkpoint.step if step is None else step,
        input=_input(data),
        outputs=dict(outputs),
        turn_agent=None if between_turns else checkpoint.agent,
        turn_messages=tuple(message_from_json(raw) for raw in checkpoint.messages),
        tool_returns=tuple(tool_return_from_json(raw) for raw in data.get("tool_returns", ())),
        state=dict(checkpoint.state),
        totals=agent_totals,
    )
