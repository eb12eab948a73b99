"""`CallLimitMiddleware`: refuse model or tool calls past a per-run maximum.

Inside a run the counts live in `context.guard_state[config.name]` as
`{"model": n, "tool": n}`, so they belong to the run and end with it. A call is counted
when it is admitted, whether it then succeeds or fails; the call past the limit is refused
with `CallLimitExceededError(kind, limit)` before it is made. Only a kind with a limit is
counted (the other's count stays 0). Placed outside `RetryMiddleware`, every retry
counts; inside it, a retried call counts once.

Outside a run (a guarded plain function), tool calls are counted per `call.session_id`,
and calls without a session id (and model calls) share one count per middleware instance.
Those counts live on the instance: `reset()` forgets them, and only the `max_sessions`
most recently used sessions are remembered (the least recently used is forgotten first).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

from onionskin.core.calls import ModelRequest, ModelResponse, ToolCall, ToolResult
from onionskin.core.context import current_context_or_none
from onionskin.core.errors import CallLimitExceededError, ConfigError
from onionskin.middleware._config import require_int

T = TypeVar("T")
R = TypeVar("R")
Kind = Literal["model", "tool"]


@dataclass(frozen=True, slots=True, kw_only=True)
class CallLimitConfig:
    """The most model and tool calls one run may make; at least one limit is required."""

    max_model_calls: int | None = None
    """Model calls a run may make (None: no limit)."""
    max_tool_calls: int | None = None
    """Tool calls a run may make (None: no limit)."""
    name: str = "call_limit"
    """This guard's key in `guard_state`: give two call limiters on one stack distinct names."""
    max_sessions: int = 10_000
    """Sessions whose counts are remembered outside a run."""

    def __post_init__(self) -> None:
        owner = "CallLimitConfig"
        for field in ("max_model_calls", "max_tool_calls"):
            value = getattr(self, field)
            if value is not None:
                require_int(owner, field, value, minimum=0)
        if self.max_model_calls is None and self.max_tool_calls is None:
            raise ConfigError(f"{owner} needs max_model_calls or max_tool_calls (or both)")
        name: object = self.name
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{owner}.name must be a non-empty string, got {name!r}")
        require_int(owner, "max_sessions", self.max_sessions)


class CallLimitMiddleware:
    """Refuses a run's model or tool calls beyond their configured maximum."""

    def __init__(self, config: CallLimitConfig) -> None:
        if not isinstance(config, CallLimitConfig):
            raise ConfigError(f"config must be a CallLimitConfig, got {config!r}")
        self.config = config
        # Counts outside a run, by session id (None: no session), least recently used first.
        self._outside: OrderedDict[str | None, dict[str, int]] = OrderedDict()

    def reset(self, session_id: str | None = None) -> None:
        """Forget the counts kept outside a run for `session_id` (None: calls without one)."""
        self._outside.pop(session_id, None)

    def _counts(self, session_id: str | None) -> dict[str, int]:
        ctx = current_context_or_none()
        if ctx is not None:
            counts: dict[str, int] | None = ctx.guard_state.get(self.config.name)
            if counts is None:
                counts = ctx.guard_state[self.config.name] = {"model": 0, "tool": 0}
            return counts
        outside = self._outside
        counts = outside.get(session_id)
        if counts is None:
            counts = outside[session_id] = {"model": 0, "tool": 0}
            if len(outside) > self.config.max_sessions:
                outside.popitem(last=False)
        else:
            outside.move_to_end(session_id)
        return counts

    async def _guard(
        self,
        kind: Kind,
        limit: int | None,
        session_id: str | None,
        next: Callable[[T], Awaitable[R]],
        call: T,
    ) -> R:
        if limit is not None:
            # Check and count with no await in between: concurrent calls cannot both pass.
            counts = self._counts(session_id)
            if counts[kind] >= limit:
                raise CallLimitExceededError(kind, limit)
            counts[kind] += 1
        return await next(call)

    async def wrap_model_call(
        self, request: ModelRequest, next: Callable[[ModelRequest], Awaitable[ModelResponse]]
    ) -> ModelResponse:
        """Count the model call; refuse it past `max_model_calls`."""
        return await self._guard("model", self.config.max_model_calls, None, next, request)

    async def wrap_tool_call(
        self, call: ToolCall, next: Callable[[ToolCall], Awaitable[ToolResult]]
    ) -> ToolResult:
        """Count the tool call; refuse it past `max_tool_calls`."""
        limit = self.config.max_tool_calls
        return await self._guard("tool", limit, call.session_id, next, call)
