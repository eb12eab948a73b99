"""Middleware that project YAML files in these tests name by import string."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from onionskin import AgentCall, AgentResult, BaseMiddleware, ModelRequest, ToolCall, ToolResult
from onionskin.core.context import RunContext


class Tagger(BaseMiddleware):
    """Appends `[tag]` to every output of the agent it wraps, and counts its model calls."""

    def __init__(self, tag: str = "tagged") -> None:
        self.tag = tag

    async def wrap_agent(
        self, call: AgentCall, next: Callable[[AgentCall], Awaitable[AgentResult]]
    ) -> AgentResult:
        result = await next(call)
        result.output = f"{result.output} [{self.tag}]"
        return result

    def before_model(self, context: RunContext, request: ModelRequest) -> None:
        MODEL_CALLS.append(f"{self.tag}:{context.current_agent}")


MODEL_CALLS: list[str] = []
"""Every model call a Tagger saw, as `tag:agent` (tests clear it first)."""

ready_made = Tagger("ready")
"""A middleware object, used as is."""


def make_tagger(tag: str) -> Tagger:
    """A factory: called with the `with:` kwargs."""
    return Tagger(tag.upper())


async def passthrough(
    call: ToolCall, next: Callable[[ToolCall], Awaitable[ToolResult]]
) -> ToolResult:
    """An onion function (it wraps tool calls): used as is."""
    return await next(call)


def broken_factory() -> Tagger:
    """A factory that fails."""
    raise RuntimeError("no database configured")


NOT_MIDDLEWARE = 42


RUN_EVENTS: list[str] = []
"""What every RunWatcher saw (tests clear it first)."""


class RunWatcher(BaseMiddleware):
    """Records run starts and failures: pipeline-level hooks."""

    def before_pipeline(self, context: RunContext) -> None:
        RUN_EVENTS.append(f"start:{context.pipeline_id}")

    def on_error(self, context: RunContext, error: BaseException) -> None:
        RUN_EVENTS.append(f"error:{type(error).__name__}")
