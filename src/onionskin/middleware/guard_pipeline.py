"""`MiddlewarePipeline`: guards around any function, outside an agent (seed 001).

The pipeline compiles the built-in guards of a `GuardConfig`, in the seed's order, then the
`extra_middleware`, into one tool-call chain with the same core as an orchestrator's, so a
middleware behaves the same around a model's tool call and around a plain function.
`execute` returns the `ToolResult` (value, execution_time_ms, status); the function's own
exceptions propagate unchanged.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, TypeAlias

from onionskin.core.calls import ToolCall, ToolResult
from onionskin.core.chain import MiddlewareStack, Terminals
from onionskin.core.errors import ConfigError, OnionskinError
from onionskin.core.explain import StackExplanation, explain_entries
from onionskin.core.ids import new_id
from onionskin.middleware._function_target import FunctionTarget
from onionskin.middleware.guard_config import GuardConfig

ToolNext: TypeAlias = Callable[[ToolCall], Awaitable[ToolResult]]
"""What a tool-call middleware calls to go on: the next layer, in the end the function."""


class GuardMiddleware(ABC):
    """Base class of a seed-001 middleware: one `__call__(call, next)` around tool calls."""

    @abstractmethod
    async def __call__(self, call: ToolCall, next: ToolNext) -> ToolResult:
        """Handle `call`: usually do something, `await next(call)`, do something after."""


def _invoke_target(call: ToolCall) -> Awaitable[ToolResult]:
    # A plain function handing back the target's coroutine: one coroutine less per call.
    if call.tool is None:
        raise OnionskinError(f"tool call {call.tool_name!r} reached the pipeline without a target")
    return call.tool.invoke(call)


async def _not_a_tool_call(call: object) -> object:
    # MiddlewarePipeline builds tool calls only; model, agent and pipeline chains stay unused.
    raise OnionskinError(f"MiddlewarePipeline runs tool calls only, got {type(call).__name__}")


_MAX_TARGETS = 256
"""Functions whose targets a pipeline remembers."""
_TERMINALS = Terminals(
    pipeline=_not_a_tool_call, agent=_not_a_tool_call, model=_not_a_tool_call, tool=_invoke_target
)


class MiddlewarePipeline:
    """A chain of guards around any function: the built-ins of `config`, then `extra_middleware`.

    Example:
        ```python
        pipeline = MiddlewarePipeline(config=GuardConfig(max_retries=2))
        result = await pipeline.execute(search, kwargs={"query": "test"})
        result.value
        ```
    """

    def __init__(
        self,
        config: GuardConfig | None = None,
        *,
        extra_middleware: Iterable[object] = (),
    ) -> None:
        if config is not None and not isinstance(config, GuardConfig):
            raise ConfigError(f"config must be a GuardConfig, got {config!r}")
        self.config = config or GuardConfig()
        builtins, self._stores = self.config.build_with_stores()
        self.middleware: tuple[object, ...] = (*builtins, *extra_middleware)
        """Every layer, outermost first: the configured built-ins, then the extras."""
        self._stack = MiddlewareStack(_TERMINALS, self.middleware)
        # Each function's target, made once: telling an async function from a sync one
        # (inspect) costs a quarter of what the empty pipeline adds to a call. Bounded, as
        # a caller may pass a new function (a lambda) every time.
        self._targets: dict[tuple[Callable[..., Any], str | None], FunctionTarget] = {}

    async def execute(
        self,
        fn: Callable[..., Any],
        args: Iterable[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        session_id: str | None = None,
        tool_name: str | None = None,
    ) -> ToolResult:
        """Call `fn(*args, **kwargs)` through the chain; returns its `ToolResult`.

        Any: the function's arguments are whatever it takes.
        """
        target = self._target(fn, tool_name)
        call = ToolCall(
            tool_name=target.name,
            args=tuple(args),
            kwargs=dict(kwargs or {}),
            call_id=new_id(),
            session_id=session_id,
            tool=target,
        )
        result: ToolResult = await self._stack.compiled().tool(call)  # as `call()`, inline
        return result

    def _target(self, fn: Callable[..., Any], tool_name: str | None) -> FunctionTarget:
        key = (fn, tool_name)
        try:
            target = self._targets.get(key)
        except TypeError:  # a callable that cannot be a key: made for this call alone
            return FunctionTarget(fn, tool_name)
        if target is None:
            if len(self._targets) >= _MAX_TARGETS:
                self._targets.clear()
            target = self._targets[key] = FunctionTarget(fn, tool_name)
        return target

    def explain(self) -> StackExplanation:
        """The layers a call crosses, outermost first; `str()` it to print."""
        return explain_entries(self._stack.entries)

    async def aclose(self) -> None:
        """Close the store connections the built-in guards opened (Redis); idempotent."""
        await self._stores.aclose()

    async def check(self) -> None:
        """Check that the configured stores answer (Redis is pinged); call it at start-up.

        `async with MiddlewarePipeline(...)` calls it. A store that is down at start-up is a
        deployment error and fails loudly, whatever the guards' fail-open settings, which
        are for failures while serving.

        Raises:
            StoreError: a configured store cannot be reached (the message names it).
        """
        await self._stores.check()

    async def __aenter__(self) -> MiddlewarePipeline:
        await self.check()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def call(self, call: ToolCall) -> ToolResult:
        """Send a prepared `ToolCall` (its `tool` set) through the chain."""
        result: ToolResult = await self._stack.compiled().tool(call)
        return result
