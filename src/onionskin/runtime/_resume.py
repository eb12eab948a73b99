"""Starting a run from a `ResumePoint`: finding the checkpoint source, restoring totals."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from onionskin.core.context import AgentStats, RunContext
from onionskin.core.errors import ConfigError
from onionskin.core.progress import CheckpointSource, ResumePoint
from onionskin.core.usage import Usage


def checkpoint_source(middleware: Iterable[object]) -> CheckpointSource:
    """The stack's checkpointing middleware; resuming without one is a `ConfigError`."""
    for candidate in middleware:
        if isinstance(candidate, CheckpointSource):
            return candidate
    raise ConfigError(
        "resume, replay and fork need checkpoints: add a CheckpointMiddleware to the "
        "orchestrator (orchestrator.use(CheckpointMiddleware(store)))"
    )


def restore_progress(ctx: RunContext, point: ResumePoint) -> None:
    """Make `ctx` start where `point` left off: finished agents, their totals, the turn."""
    ctx.resume = point
    for agent, totals in point.totals.items():
        ctx.agent_stats[agent] = AgentStats(
            usage=Usage(
                input_tokens=totals.input_tokens,
                output_tokens=totals.output_tokens,
                cached_tokens=totals.cached_tokens,
            ),
            cost=Decimal(totals.cost_usd),
            duration_ms=totals.duration_ms,
            model_calls=totals.model_calls,
            tool_calls=totals.tool_calls,
        )
