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
from typing import Literal

from onionskin.core.calls import ModelRequest, ModelResponse, ToolCall, ToolResult
from onionskin.core.context import current_context_or_none
from onionskin.core.errors import CallLimitExceededError, ConfigError
from onionskin.middleware._config import require_int

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

    def _admit(self, kind: Kind, limit: int, session_id: str | None) -> None:
        """Count one call of `kind`, or refuse it when the count has reached `limit`."""
        ctx = current_context_or_none()
        if ctx is not None:
            counts: dict[str, int] | None = ctx.guard_state.get(self.config.name)
            if counts is None:
                counts = ctx.guard_state[self.config.name] = {"model": 0, "tool": 0}
        else:
            counts = self._outside.get(session_id)
            if counts is None:
                counts = self._remember(session_id)
            else:
                self._outside.move_to_end(session_id)
        # Check and count with no await in between: concurrent calls cannot both pass.
        if counts[kind] >= limit:
            raise CallLimitExceededError(kind, limit)
        counts[kind] += 1

    def _remember(self, session_id: str | None) -> dict[str, int]:
        """Fresh counts for a session seen outside a run; forgets the least recently used."""
        counts = self._outside[session_id] = {"model": 0, "tool": 0}
        if len(self._outside) > self.config.max_sessions:
            self._outside.popitem(last=False)
        return counts

    # The onion methods check inline rather than through a shared coroutine: one coroutine
    # frame less on every call, the whole of this guard's cost when the kind is unlimited.
    async def wrap_model_call(
        self, request: ModelRequest, next: Callable[[ModelRequest], Awaitable[ModelResponse]]
    ) -> ModelResponse:
        """Count the model call; refuse it past `max_model_calls`."""
        limit = self.config.max_model_calls
        if limit is not None:
            self._admit("model", limit, None)
        return await next(request)

    async def wrap_tool_call(
        self, call: ToolCall, next: Callable[[ToolCall], Awaitable[ToolResult]]
    ) -> ToolResult:
        """Count the tool call; refuse it past `max_tool_calls`."""
        limit = self.config.max_tool_calls
        if limit is not None:
            self._admit("tool", limit, call.session_id)
        return await next(call)
