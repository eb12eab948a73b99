"""The coordinator's middleware form: analytics from the calls themselves, no `on_event` needed.

`orchestrator.use(coordinator)` records the same analytics events that passing
`on_event=coordinator` would, built from the four call kinds' wraps (a tool that answered
with an error result is a failed `tool_call` either way). When the coordinator is the run's
`on_event` sink as well, the wraps step aside so that nothing is counted twice.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from onionskin.analytics.events import AnalyticsEvent, tool_call
from onionskin.core.calls import (
    AgentCall,
    AgentResult,
    CallKind,
    ModelRequest,
    ModelResponse,
    PipelineCall,
    PipelineResult,
    ToolCall,
    ToolResult,
)
from onionskin.core.context import RunContext, current_context_or_none
from onionskin.core.errors import StopProcessing
from onionskin.core.events import (
    CallFailed,
    CallFinished,
    RunCompleted,
    RunEvent,
    RunFailed,
    RunStarted,
)
from onionskin.core.ids import new_id
from onionskin.core.middleware import BaseMiddleware
from onionskin.core.placement import StackContract


def _elapsed(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0


class RunObserver(BaseMiddleware):
    """Wraps pipeline, agent, model and tool calls and records what they did."""

    # Outermost: the run's duration includes every guard, and a guard's refusal is seen.
    stack_contract = StackContract(name="AnalyticsCoordinator", position="outermost")

    def record(self, event: RunEvent | AnalyticsEvent) -> None:
        """Take one event (the coordinator buffers it for its exporters)."""
        raise NotImplementedError

    def _observing(self) -> RunContext | None:
        """The run to observe, or None when there is none or the sink form sees it already."""
        ctx = current_context_or_none()
        if ctx is None:
            return None
        emit: Any = ctx.emit  # Any: any callable may be a sink; only ours is compared
        if emit is self or emit == self.record:
            return None
        return ctx

    def _failed(
        self, ctx: RunContext, kind: CallKind, name: str, started: float, error: Exception
    ) -> None:
        self.record(
            CallFailed(
                run_id=ctx.run_id,
                tenant_id=ctx.tenant_id,
                kind=kind,
                name=name,
                call_id=new_id(),
                duration_ms=_elapsed(started),
                error_type=type(error).__name__,
                error=str(error),
                agent=ctx.current_agent,
            )
        )

    def _completed(self, ctx: RunContext, *, stopped: bool) -> None:
        usage = ctx.usage
        self.record(
            RunCompleted(
                run_id=ctx.run_id,
                tenant_id=ctx.tenant_id,
                output=None,  # analytics never carry the answer
                stopped=stopped,
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                cost_usd=ctx.total_cost,
                duration_ms=ctx.total_duration_ms,
            )
        )

    async def wrap_pipeline(
        self, call: PipelineCall, next: Callable[[PipelineCall], Awaitable[PipelineResult]]
    ) -> PipelineResult:
        """Record the run's start and its end: totals, or the error."""
        ctx = self._observing()
        if ctx is None:
            return await next(call)
        self.record(
            RunStarted(run_id=ctx.run_id, tenant_id=ctx.tenant_id, pipeline_id=ctx.pipeline_id)
        )
        try:
            result = await next(call)
        except StopProcessing:
            self._completed(ctx, stopped=True)  # a stop ends the run as completed
            raise
        except Exception as error:
            self.record(
                RunFailed(
                    run_id=ctx.run_id,
                    tenant_id=ctx.tenant_id,
                    error_type=type(error).__name__,
                    error=str(error),
                    duration_ms=ctx.total_duration_ms,
                )
            )
            raise
        self._completed(ctx, stopped=False)
        return result

    def _finished(self, ctx: RunContext, kind: CallKind, name: str, started: float) -> CallFinished:
        return CallFinished(
            run_id=ctx.run_id,
            tenant_id=ctx.tenant_id,
            kind=kind,
            name=name,
            call_id=new_id(),
            duration_ms=_elapsed(started),
            agent=name if kind == "agent" else ctx.current_agent,
        )

    async def wrap_agent(
        self, call: AgentCall, next: Callable[[AgentCall], Awaitable[AgentResult]]
    ) -> AgentResult:
        """Record each agent's finished (or failed) turn."""
        ctx = self._observing()
        if ctx is None:
            return await next(call)
        name, started = call.agent_name, time.perf_counter()
        try:
            result = await next(call)
        except Exception as error:
            self._failed(ctx, "agent", name, started, error)
            raise
        self.record(self._finished(ctx, "agent", name, started))
        return result

    async def wrap_model_call(
        self, request: ModelRequest, next: Callable[[ModelRequest], Awaitable[ModelResponse]]
    ) -> ModelResponse:
        """Record each model call's tokens and cost (`token_usage`)."""
        ctx = self._observing()
        if ctx is None:
            return await next(request)
        name, started = request.model.name, time.perf_counter()
        try:
            response = await next(request)
        except Exception as error:
            self._failed(ctx, "model", name, started, error)
            raise
        finished = self._finished(ctx, "model", name, started)
        finished.input_tokens = response.usage.input_tokens
        finished.output_tokens = response.usage.output_tokens
        finished.cost_usd = request.model.cost(response.usage)
        self.record(finished)
        return response

    async def wrap_tool_call(
        self, call: ToolCall, next: Callable[[ToolCall], Awaitable[ToolResult]]
    ) -> ToolResult:
        """Record each tool call; failed when it raised or answered an error result."""
        ctx = self._observing()
        if ctx is None:
            return await next(call)
        started = time.perf_counter()
        try:
            result = await next(call)
        except Exception as error:
            self._failed(ctx, "tool", call.tool_name, started, error)
            raise
        finished = self._finished(ctx, "tool", call.tool_name, started)
        finished.error = result.error
        self.record(tool_call(finished))
        return result
