"""`HookMiddleware`: run your own callbacks before and after every model and tool call.

`before_call(call)` receives the `ModelRequest` or `ToolCall` and may return a replacement
of the same type; `after_call(call, result)` receives the call as it was made and its
`ModelResponse` or `ToolResult` and may return a replacement result. None keeps the
original. Either callback may be sync or async (detected once, at construction; a sync
callable that returns an awaitable, such as a lambda, is awaited too). A sync callback runs
on the event loop, so keep it quick. `after_call` does not run when the call failed:
the error propagates unchanged.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeAlias, TypeVar

from onionskin.core._layers import is_async_callable
from onionskin.core.calls import ModelRequest, ModelResponse, ToolCall, ToolResult
from onionskin.core.errors import ConfigError

Call: TypeAlias = ModelRequest | ToolCall
Result: TypeAlias = ModelResponse | ToolResult
BeforeCall: TypeAlias = Callable[[Call], Call | Awaitable[Call | None] | None]
"""`before_call(call)`: returns a replacement call, None, or an awaitable of either."""
AfterCall: TypeAlias = Callable[[Call, Result], Result | Awaitable[Result | None] | None]
"""`after_call(call, result)`: returns a replacement result, None, or an awaitable of either."""

C = TypeVar("C", ModelRequest, ToolCall)
R = TypeVar("R", ModelResponse, ToolResult)


@dataclass(frozen=True, slots=True, kw_only=True)
class HookConfig:
    """The callbacks to run around each call; at least one of them."""

    before_call: BeforeCall | None = None
    """Called with the call before it is made; may return a replacement call."""
    after_call: AfterCall | None = None
    """Called with the call and its result after it succeeded; may return a replacement."""

    def __post_init__(self) -> None:
        for field in ("before_call", "after_call"):
            value: object = getattr(self, field)
            if value is not None and not callable(value):
                raise ConfigError(f"HookConfig.{field} must be callable, got {value!r}")
        if self.before_call is None and self.after_call is None:
            raise ConfigError("HookConfig needs before_call or after_call (or both)")


def _check(hook: str, value: object, expected: type[Any]) -> None:
    """A hook's replacement must be of the type it replaces (Any: either kind's type)."""
    if value is not None and not isinstance(value, expected):
        raise TypeError(
            f"{hook} returned {type(value).__name__}; return a {expected.__name__} to replace "
            "it, or None to keep it"
        )


class HookMiddleware:
    """Runs `before_call` / `after_call` callbacks around every model and tool call."""

    def __init__(
        self,
        config: HookConfig | None = None,
        *,
        before_call: BeforeCall | None = None,
        after_call: AfterCall | None = None,
    ) -> None:
        """Take the callbacks from `config` or from the keyword arguments, not both."""
        if config is not None and not isinstance(config, HookConfig):
            raise ConfigError(f"config must be a HookConfig, got {config!r}")
        if config is not None and (before_call is not None or after_call is not None):
            raise ConfigError("pass the hooks in a HookConfig or as keywords, not both")
        if config is None:
            config = HookConfig(before_call=before_call, after_call=after_call)
        self.config = config
        self._before = config.before_call
        self._after = config.after_call
        self._before_async = self._before is not None and is_async_callable(self._before)
        self._after_async = self._after is not None and is_async_callable(self._after)

    async def wrap_tool_call(self, call: C, next: Callable[[C], Awaitable[R]]) -> R:
        """Run the hooks around one model or tool call."""
        # One method serves both kinds (no extra coroutine per call), and the usual None
        # from a hook skips the awaitable and type checks, which could not matter for it.
        before = self._before
        if before is not None:
            replaced: Any = before(call)  # Any: a call, None, or an awaitable of either
            if replaced is not None:
                if self._before_async or inspect.isawaitable(replaced):
                    replaced = await replaced
                if replaced is not None:
                    _check("before_call", replaced, type(call))
                    call = replaced
        result = await next(call)
        after = self._after
        if after is not None:
            new: Any = after(call, result)  # Any: a result, None, or an awaitable
            if new is not None:
                if self._after_async or inspect.isawaitable(new):
                    new = await new
                if new is not None:
                    _check("after_call", new, type(result))
                    result = new
        return result

    wrap_model_call = wrap_tool_call
