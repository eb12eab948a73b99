"""`MessageCaptureMiddleware`: the run's transcript, as the model and the tools really saw it.

Always innermost (seed 004: core, then plugins, then message capture; its
`position="capture"` sits inside even an "innermost" one), it records every model request
after every other layer rewrote it, and every tool call as the tool received it.

Each model call adds a `ModelExchange` (the messages sent, and the response as the model
gave it, before outer `after_model` hooks), each tool call a `ToolExchange`, in order,
tagged with the run id and the agent whose turn it was. A call that raised is recorded with
its `error`, and the exception propagates unchanged.

A run's entries live in `context.guard_state["message_capture"]`; `current_transcript()`
reads them (from an `after_pipeline` hook, say). A `sink`, sync or async, gets each entry
as it is recorded; an async one is awaited before the call returns, so entries arrive in
order. A sink that raises is logged on `onionskin.capture` and the run goes on: a
transcript is an observer's record, never a reason to fail a user's call. Per call it costs
a context lookup, a record and a list append.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import ClassVar, Literal, TypeAlias

from onionskin.core._layers import is_async_callable
from onionskin.core.calls import ModelRequest, ModelResponse, ToolCall, ToolResult
from onionskin.core.context import RunContext, current_context, current_context_or_none
from onionskin.core.errors import ConfigError
from onionskin.core.messages import Message
from onionskin.core.placement import StackContract

logger = logging.getLogger("onionskin.capture")

TRANSCRIPT_KEY = "message_capture"
"""Where a run's transcript lives in `RunContext.guard_state`."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelExchange:
    """One model call: the messages the model got and what it answered."""

    kind: ClassVar[Literal["model"]] = "model"
    run_id: str | None
    """The run the call belongs to (None outside a run)."""
    agent: str | None
    """The agent whose turn it was."""
    model: str
    """The name of the model that was called (after any fallback layer redirected it)."""
    messages: tuple[Message, ...]
    """The messages as the model received them, every other layer's rewrites included."""
    response: ModelResponse | None
    """The model's answer as it gave it; None when the call raised."""
    error: str | None = None
    """`"ErrorType: message"` when the call raised."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolExchange:
    """One tool call: the call as the tool received it, and its result."""

    kind: ClassVar[Literal["tool"]] = "tool"
    run_id: str | None
    """The run the call belongs to (None outside a run)."""
    agent: str | None
    """The agent whose turn it was."""
    call: ToolCall
    """The call as the tool received it."""
    result: ToolResult | None
    """The tool's result; None when the call raised."""
    error: str | None = None
    """`"ErrorType: message"` when the call raised."""


TranscriptEntry: TypeAlias = ModelExchange | ToolExchange
TranscriptSink: TypeAlias = Callable[[TranscriptEntry], Awaitable[None] | None]


def current_transcript(context: RunContext | None = None) -> tuple[TranscriptEntry, ...]:
    """The transcript recorded so far in `context` (default: the run in progress).

    Raises:
        OnionskinError: when called outside a run without a `context`.
    """
    ctx = current_context() if context is None else context
    return tuple(ctx.guard_state.get(TRANSCRIPT_KEY, ()))


def _describe(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"


class MessageCaptureMiddleware:
    """Records the run's transcript: every model and tool call, innermost (see module docs).

    Args:
        sink: called with each entry as it is recorded (sync or async); optional.
    """

    stack_contract: ClassVar[StackContract] = StackContract(
        name="MessageCaptureMiddleware", position="capture"
    )

    def __init__(self, *, sink: TranscriptSink | None = None) -> None:
        if sink is not None and not callable(sink):
            raise ConfigError(
                f"MessageCaptureMiddleware.sink must be a callable taking one entry, got {sink!r}"
            )
        self.sink = sink
        self._sink_is_async = sink is not None and is_async_callable(sink)

    async def wrap_model_call(
        self, request: ModelRequest, next: Callable[[ModelRequest], Awaitable[ModelResponse]]
    ) -> ModelResponse:
        """Call the model and record what it got and answered."""
        # Copied before the call: the record must not follow later edits of the list.
        messages = tuple(request.messages)
        ctx = current_context_or_none()
        run_id, agent = (None, None) if ctx is None else (ctx.run_id, ctx.current_agent)
        model = request.model.name
        try:
            response = await next(request)
        except Exception as error:
            failed = ModelExchange(
                run_id=run_id,
                agent=agent,
                model=model,
                messages=messages,
                response=None,
                error=_describe(error),
            )
            await _settled(self._record(ctx, failed))
            raise
        entry = ModelExchange(
            run_id=run_id, agent=agent, model=model, messages=messages, response=response
        )
        if (pending := self._record(ctx, entry)) is not None:
            await pending
        return response

    async def wrap_tool_call(
        self, call: ToolCall, next: Callable[[ToolCall], Awaitable[ToolResult]]
    ) -> ToolResult:
        """Call the tool and record the call and its result."""
        ctx = current_context_or_none()
        run_id, agent = (None, None) if ctx is None else (ctx.run_id, ctx.current_agent)
        try:
            result = await next(call)
        except Exception as error:
            failed = ToolExchange(
                run_id=run_id, agent=agent, call=call, result=None, error=_describe(error)
            )
            await _settled(self._record(ctx, failed))
            raise
        entry = ToolExchange(run_id=run_id, agent=agent, call=call, result=result)
        if (pending := self._record(ctx, entry)) is not None:
            await pending
        return result

    def _record(self, ctx: RunContext | None, entry: TranscriptEntry) -> Awaitable[None] | None:
        """Store `entry` in the run; returns the sink's awaitable when it is async."""
        if ctx is not None:
            transcript: list[TranscriptEntry] | None = ctx.guard_state.get(TRANSCRIPT_KEY)
            if transcript is None:
                transcript = ctx.guard_state[TRANSCRIPT_KEY] = []
            transcript.append(entry)
        sink = self.sink
        if sink is None:
            return None
        try:
            result = sink(entry)
        except Exception as error:  # the sink observes the run: its failure must not fail it
            _sink_failed(sink, entry, error)
            return None
        if self._sink_is_async and result is not None:
            return _awaited(sink, entry, result)
        return None


async def _settled(pending: Awaitable[None] | None) -> None:
    # Only on the failure paths: the hot path awaits the sink inline, without this frame.
    if pending is not None:
        await pending


async def _awaited(sink: TranscriptSink, entry: TranscriptEntry, result: Awaitable[None]) -> None:
    try:
        await result
    except Exception as error:  # as above: a failing sink is logged, the run goes on
        _sink_failed(sink, entry, error)


def _sink_failed(sink: TranscriptSink, entry: TranscriptEntry, error: Exception) -> None:
    message = "message capture: the sink %r raised on a %s entry (%s); the run goes on"
    logger.error(message, sink, entry.kind, _describe(error), exc_info=error)
