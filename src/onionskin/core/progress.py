"""Where a run is, and where a resumed, replayed or forked run picks up.

The runtime keeps a `RunProgress` current as it goes (live references, no copies: it is on
the path of every call); checkpointing reads it to save a step. A `ResumePoint`, built from a
saved checkpoint by a `CheckpointSource`, tells the runtime which agents already finished
and which messages and tool results of the interrupted turn already exist, so that no
completed step runs again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from onionskin.core.messages import Message, Part, ToolReturnPart


@dataclass(slots=True)
class RunProgress:
    """A run's position, kept current by the runtime (one owner: the run)."""

    input: Message | None = None
    """What the first agent was asked."""
    outputs: dict[str, Any] = field(default_factory=dict)
    """Outputs of the agents that finished, in run order (Any: whatever they answered)."""
    turn_agent: str | None = None
    """The agent whose turn is under way, None between turns."""
    turn_messages: list[Message] | None = None
    """The live transcript of that turn (system, user, assistant and tool messages)."""
    tool_returns: list[Part] | None = None
    """The live results of the tool calls of the turn's latest model reply."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentTotals:
    """An agent's consumption carried over into a resumed run."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: str = "0"
    """Exact decimal string."""
    duration_ms: float = 0.0
    model_calls: int = 0
    tool_calls: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ResumePoint:
    """Everything a run needs to continue from a saved checkpoint."""

    checkpoint_id: str
    """The checkpoint the run continues from (the parent of its next checkpoint)."""
    run_id: str
    """The run that checkpoint belongs to."""
    step: int
    """The checkpoint's step; the continuing run numbers its steps after it."""
    input: Message
    outputs: Mapping[str, Any]
    """Agents already finished, with their outputs (Any: whatever they answered)."""
    turn_agent: str | None
    """The agent whose turn was under way, None if the checkpoint fell between turns."""
    turn_messages: tuple[Message, ...] = ()
    tool_returns: tuple[ToolReturnPart, ...] = ()
    """Results of the latest reply's tool calls that already ran."""
    state: Mapping[str, Any] = field(default_factory=dict)
    """The run's `context.state` at the checkpoint (JSON values)."""
    totals: Mapping[str, AgentTotals] = field(default_factory=dict)
    """Tokens, cost and calls per agent up to the checkpoint."""


@runtime_checkable
class CheckpointSource(Protocol):
    """A middleware that can turn a saved checkpoint into a `ResumePoint`."""

    async def resume_point(
        self,
        *,
        tenant_id: str | None,
        run_id: str | None = None,
        checkpoint_id: str | None = None,
    ) -> ResumePoint:
        """The point to resume: `run_id`'s latest checkpoint, or `checkpoint_id` itself.

        Raises `StoreError` when the tenant has no such run or checkpoint.
        """
        ...
