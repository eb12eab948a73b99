"""`TimeoutMiddleware`: cancel a model or tool call that runs longer than its timeout.

The call runs under `asyncio.timeout`: when time is up the callee is really cancelled (it
sees `asyncio.CancelledError` at its current `await`, and its `finally` blocks run), then
the caller gets `GuardTimeoutError(target, timeout)` chained from the `TimeoutError`.
A `TimeoutError` the callee raises by itself passes through unchanged.

A sync function runs in a worker thread (`asyncio.to_thread`), and a thread cannot be
interrupted: at the timeout the caller stops waiting and gets `GuardTimeoutError` at once,
while the thread runs on in the background until the function returns; its result, or its
exception, is discarded. Side effects of such a function still happen, after the timeout.
Keep sync tools short, or make them async so that cancellation reaches them.

The deadline is the event loop's real time, not the injected `Clock`: cancelling a call
needs the loop's timer, which a fake clock cannot drive.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from onionskin.core.calls import ModelRequest, ModelResponse, ToolCall, ToolResult
from onionskin.core.errors import ConfigError, GuardTimeoutError
from onionskin.middleware._config import require_positive

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True, slots=True, kw_only=True)
class TimeoutConfig:
    """How long a model or tool call may run before it is cancelled."""

    seconds: float = 60.0
    """The timeout of every call, unless a per-kind timeout below overrides it."""
    model_seconds: float | None = None
    """The timeout of model calls; None: `seconds`."""
    tool_seconds: float | None = None
    """The timeout of tool calls; None: `seconds`."""

    def __post_init__(self) -> None:
        require_positive("TimeoutConfig", "seconds", self.seconds)
        for field in ("model_seconds", "tool_seconds"):
            value = getattr(self, field)
            if value is not None:
                require_positive("TimeoutConfig", field, value)


class TimeoutMiddleware:
    """Cancels model and tool calls that exceed their timeout, raising `GuardTimeoutError`."""

    def __init__(self, config: TimeoutConfig | None = None) -> None:
        if config is not None and not isinstance(config, TimeoutConfig):
            raise ConfigError(f"config must be a TimeoutConfig, got {config!r}")
        self.config = config or TimeoutConfig()
        seconds = self.config.seconds
        self._model_seconds = self.config.model_seconds or seconds
        self._tool_seconds = self.config.tool_seconds or seconds

    @staticmethod
    async def _guard(target: str, seconds: float, next: Callable[[T], Awaitable[R]], call: T) -> R:
        deadline = asyncio.timeout(seconds)
        try:
            async with deadline:
                return await next(call)
        except TimeoutError as error:
            if not deadline.expired():
                raise  # the callee's own TimeoutError, not ours
            raise GuardTimeoutError(target, seconds) from error

    async def wrap_model_call(
        self, request: ModelRequest, next: Callable[[ModelRequest], Awaitable[ModelResponse]]
    ) -> ModelResponse:
        """Call the model; cancel it after `model_seconds`."""
        target = f"model {request.model.name!r}"
        return await self._guard(target, self._model_seconds, next, request)

    async def wrap_tool_call(
        self, call: ToolCall, next: Callable[[ToolCall], Awaitable[ToolResult]]
    ) -> ToolResult:
        """Call the tool; cancel it after `tool_seconds`."""
        return await self._guard(f"tool {call.tool_name!r}", self._tool_seconds, next, call)
