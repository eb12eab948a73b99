"""`TimingMiddleware`: how long every model and tool call took, kept in the run's state."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from onionskin.core.calls import ModelRequest, ModelResponse, ToolCall, ToolResult
from onionskin.core.context import current_context


@dataclass(frozen=True, slots=True, kw_only=True)
class CallTiming:
    """One call's duration."""

    kind: str
    name: str
    agent: str | None
    duration_ms: float


class TimingMiddleware:
    """Times each model and tool call; the list is `context.state[key]`.

    Registered outermost it measures the call with every inner middleware included; innermost,
    the call alone.
    """

    def __init__(self, *, key: str = "timings") -> None:
        self.key = key

    def _record(self, kind: str, name: str, started: float) -> None:
        ctx = current_context()
        timings: list[CallTiming] = ctx.state.setdefault(self.key, [])
        elapsed = (time.perf_counter() - started) * 1000.0
        timings.append(
            CallTiming(kind=kind, name=name, agent=ctx.current_agent, duration_ms=elapsed)
        )

    async def wrap_model_call(
        self, request: ModelRequest, next: Callable[[ModelRequest], Awaitable[ModelResponse]]
    ) -> ModelResponse:
        """Time one model call."""
        started = time.perf_counter()
        try:
            return await next(request)
        finally:
            self._record("model", request.model.name, started)

    async def wrap_tool_call(
        self, call: ToolCall, next: Callable[[ToolCall], Awaitable[ToolResult]]
    ) -> ToolResult:
        """Time one tool call."""
        started = time.perf_counter()
        try:
            return await next(call)
        finally:
            self._record("tool", call.tool_name, started)
