"""The orchestrator: a pipeline, the middleware around it, and the two ways to run it.

`await orchestrator.execute(input_data)` runs to completion and returns a `RunResult`;
`async for event in orchestrator.run(input_data, context=tenant)` yields the run's events
as they happen (seed 000). Either way a run ends *completed* (also when `StopProcessing`
ended it early) or raises the original exception after the `on_error` hooks ran.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

from onionskin.core.calls import PipelineCall, PipelineResult
from onionskin.core.chain import CompiledStack, MiddlewareStack, OnErrorHook, run_on_error_hooks
from onionskin.core.context import (
    RunContext,
    bind_context,
    current_request_metadata,
    request_metadata_scope,
    unbind_context,
)
from onionskin.core.errors import ConfigError, StopProcessing, TenantError
from onionskin.core.events import EventSink, RunCompleted, RunEvent, RunFailed, RunStarted
from onionskin.core.explain import StackExplanation, explain_entries
from onionskin.core.ids import new_id
from onionskin.core.progress import ResumePoint
from onionskin.core.tenant import TenantContext
from onionskin.runtime._input import input_message
from onionskin.runtime._result import RunResult
from onionskin.runtime._resume import restore_progress
from onionskin.runtime._terminals import AGENT_TERMINALS
from onionskin.runtime._time_travel import TimeTravel
from onionskin.runtime.agent import Agent
from onionskin.runtime.pipeline import Pipeline

logger = logging.getLogger("onionskin.orchestrator")


_DONE = object()


async def _run_with_mandatory(
    ctx: RunContext, chains: CompiledStack, call: PipelineCall
) -> tuple[Any, bool]:
    """Run the chain, then every mandatory `after_pipeline` hook, however the run completed."""
    try:
        result, stopped = await chains.pipeline(call), False
    except StopProcessing as stop:
        result, stopped = PipelineResult(output=stop.response), True
    for item in chains.mandatory_after:
        replaced = item.hook(ctx, result)
        if item.is_async:
            replaced = await replaced
        if replaced is not None:
            result = replaced
    return result.output, stopped


def _report_hook_error(hook: OnErrorHook, error: BaseException) -> None:
    logger.error(
        "an on_error hook (%r) raised; the run's own error still propagates",
        hook.hook,
        exc_info=error,
    )


class Orchestrator(TimeTravel):
    """Runs a pipeline (or a single agent) through a stack of middleware.

    Middleware registered first is outermost: its `before_*` hooks run first and its
    `after_*` hooks last (seed 000).
    """

    def __init__(self, pipeline: Pipeline | Agent, *, middleware: Iterable[object] = ()) -> None:
        if isinstance(pipeline, Agent):
            pipeline = Pipeline([pipeline])
        if not isinstance(pipeline, Pipeline):
            raise ConfigError(f"Orchestrator needs a Pipeline or an Agent, got {pipeline!r}")
        self.pipeline = pipeline
        self._stack = MiddlewareStack(AGENT_TERMINALS, middleware)

    def use(self, middleware: object) -> Orchestrator:
        """Add `middleware` inside those already registered; returns the orchestrator."""
        self._stack.use(middleware)
        return self

    @property
    def middleware(self) -> tuple[object, ...]:
        """The middleware in effect, outermost first (declared positions resolved)."""
        return tuple(entry.middleware for entry in self._stack.entries)

    def explain(self) -> StackExplanation:
        """The layers each call kind crosses, outermost first; `str()` it to print.

        Raises:
            ConfigError: declared positions name a missing middleware or contradict.
        """
        return explain_entries(self._stack.entries)

    def _prepare(
        self,
        input_data: object,
        context: TenantContext | None,
        state: Mapping[str, Any] | None,
        run_id: str | None,
        emit: EventSink | None,
        resume: ResumePoint | None = None,
    ) -> tuple[RunContext, PipelineCall]:
        if context is not None and not isinstance(context, TenantContext):
            raise TenantError(f"context must be a TenantContext, got {type(context).__name__}")
        if state is not None and not isinstance(state, Mapping):
            raise ConfigError(f"state must be a mapping, got {type(state).__name__}")
        if resume is None:
            message, seeded = input_message(input_data)
        else:
            message, seeded = resume.input, dict(resume.state)
        run_state = {**seeded, **(state or {})}
        run_state.setdefault("input", message.text)
        ctx = RunContext(
            run_id=run_id or new_id(),
            pipeline_id=self.pipeline.name,
            chains=self._stack.compiled(),
            tenant=context,
            metadata=current_request_metadata(),
            state=run_state,
            input_data=input_data,
            emit=emit,
        )
        if resume is not None:
            restore_progress(ctx, resume)
        return ctx, PipelineCall(pipeline=self.pipeline, input=message)

    async def execute(
        self,
        input_data: object,
        *,
        context: TenantContext | None = None,
        metadata: Mapping[str, Any] | None = None,
        state: Mapping[str, Any] | None = None,
        run_id: str | None = None,
        on_event: EventSink | None = None,
    ) -> RunResult:
        """Run to completion and return the result; a failed run raises its exception.

        Args:
            input_data: the user's message: text, a `Message`, or a mapping.
            context: the tenant the run belongs to.
            metadata: request metadata, merged over any `request_metadata_scope`.
            state: initial `context.state` (fills `{var}` placeholders).
            run_id: the run's id; a new time-ordered id by default.
            on_event: called with each event as it happens (model text is then streamed).
        """
        if metadata is None:
            return await self._execute(input_data, context, state, run_id, on_event)
        with request_metadata_scope(metadata):
            return await self._execute(input_data, context, state, run_id, on_event)

    async def _execute(
        self,
        input_data: object,
        context: TenantContext | None,
        state: Mapping[str, Any] | None,
        run_id: str | None,
        emit: EventSink | None,
        resume: ResumePoint | None = None,
    ) -> RunResult:
        ctx, call = self._prepare(input_data, context, state, run_id, emit, resume)
        chains = ctx.chains
        token = bind_context(ctx)
        try:
            if emit is not None:
                emit(
                    RunStarted(
                        run_id=ctx.run_id, tenant_id=ctx.tenant_id, pipeline_id=ctx.pipeline_id
                    )
                )
            try:
                if chains.mandatory_after:
                    output, stopped = await _run_with_mandatory(ctx, chains, call)
                else:
                    try:
                        output, stopped = (await chains.pipeline(call)).output, False
                    except StopProcessing as stop:
                        output, stopped = stop.response, True
            except Exception as error:
                await run_on_error_hooks(chains.on_error, ctx, error, _report_hook_error)
                if emit is not None:
                    emit(
                        RunFailed(
                            run_id=ctx.run_id,
                            tenant_id=ctx.tenant_id,
                            error_type=type(error).__name__,
                            error=str(error),
                            duration_ms=ctx.total_duration_ms,
                        )
                    )
                raise
            return self._finish(ctx, output, stopped)
        finally:
            unbind_context(token)

    def _finish(self, ctx: RunContext, output: Any, stopped: bool) -> RunResult:
        duration = ctx.total_duration_ms
        usage, cost = ctx.usage, ctx.total_cost
        if ctx.emit is not None:
            ctx.emit(
                RunCompleted(
                    run_id=ctx.run_id,
                    tenant_id=ctx.tenant_id,
                    output=output,
                    stopped=stopped,
                    input_tokens=usage.input_tokens,
                    output_tokens=usage.output_tokens,
                    cost_usd=cost,
                    duration_ms=duration,
                )
            )
        return RunResult(
            run_id=ctx.run_id,
            pipeline_id=ctx.pipeline_id,
            tenant_id=ctx.tenant_id,
            output=output,
            stopped=stopped,
            usage=usage,
            cost_usd=cost,
            duration_ms=duration,
            state=ctx.state,
            agents=ctx.agent_stats,
        )

    async def run(
        self,
        input_data: object,
        *,
        context: TenantContext | None = None,
        metadata: Mapping[str, Any] | None = None,
        state: Mapping[str, Any] | None = None,
        run_id: str | None = None,
    ) -> AsyncIterator[RunEvent]:
        """Run and yield its events as they happen (seed 000).

        The last event is `RunCompleted` or `RunFailed`; after `RunFailed` the iterator
        raises the run's exception. Leaving the loop early cancels the run.
        """
        queue: asyncio.Queue[Any] = asyncio.Queue()  # Any: events, then the end marker

        async def produce() -> RunResult:
            try:
                if metadata is None:
                    return await self._execute(input_data, context, state, run_id, queue.put_nowait)
                with request_metadata_scope(metadata):
                    return await self._execute(input_data, context, state, run_id, queue.put_nowait)
            finally:
                queue.put_nowait(_DONE)

        task = asyncio.create_task(produce())
        try:
            while (item := await queue.get()) is not _DONE:
                yield item
            task.result()
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
