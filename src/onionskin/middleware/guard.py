"""`@guard`: wrap any sync or async function in a `MiddlewarePipeline` (seed 001).

`@guard` alone, `@guard(max_retries=2, timeout=5.0)` with `GuardConfig` fields, or
`@guard(config=..., extra_middleware=[...])`. An async function stays async; a sync
function stays sync and callable from sync code: its pipeline runs on the guard loop (see
`_sync_bridge`) while the function itself runs in a worker thread. Both return the
function's value; `.pipeline` is the pipeline, `.acall()` awaits the guarded call.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Generic, ParamSpec, TypeVar, overload

from onionskin.core.calls import ToolCall
from onionskin.core.errors import ConfigError
from onionskin.core.ids import new_id
from onionskin.middleware._function_target import FunctionTarget
from onionskin.middleware._sync_bridge import run_sync
from onionskin.middleware.guard_config import GuardConfig
from onionskin.middleware.guard_pipeline import MiddlewarePipeline

P = ParamSpec("P")
R = TypeVar("R")


class _Guarded(Generic[P, R]):
    """What the two guarded forms share: the pipeline, the target and the async call."""

    __name__: str
    __qualname__: str
    __wrapped__: Callable[..., Any]

    def __init__(self, function: Callable[P, Any], pipeline: MiddlewarePipeline) -> None:
        self.pipeline = pipeline
        """The guards this function runs through."""
        self._target = FunctionTarget(function)
        # Name, docstring and __wrapped__ (so inspect.signature and Tool() see the function).
        functools.update_wrapper(self, function)  # type: ignore[arg-type]  # typeshed wants a function

    async def acall(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Call the function through its guards and return its value."""
        call = ToolCall(
            tool_name=self._target.name,
            args=args,
            kwargs=kwargs,
            call_id=new_id(),
            tool=self._target,
        )
        result = await self.pipeline.call(call)
        value: R = result.value
        return value

    def __repr__(self) -> str:
        return f"<guarded {self._target.name}>"


class AsyncGuardedTool(_Guarded[P, R]):
    """An async function behind its guards; call and await it as before."""

    async def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Await the guarded call."""
        return await self.acall(*args, **kwargs)


class GuardedTool(_Guarded[P, R]):
    """A sync function behind its guards; call it as before, from sync code."""

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Make the guarded call and wait for it."""
        return run_sync(self.acall(*args, **kwargs))


def _pipeline(
    config: GuardConfig | None, extra_middleware: Iterable[object], fields: dict[str, Any]
) -> MiddlewarePipeline:
    if config is not None and fields:
        raise ConfigError(
            f"@guard takes either config= or GuardConfig fields, not both (got config and "
            f"{', '.join(sorted(fields))})"
        )
    if config is None:
        try:
            config = GuardConfig(**fields)
        except TypeError as error:
            raise ConfigError(f"@guard: {error}; see GuardConfig for the fields") from error
    return MiddlewarePipeline(config=config, extra_middleware=extra_middleware)


# An async function's R would also match the sync overload; the async one comes first.
@overload
def guard(function: Callable[P, Awaitable[R]], /) -> AsyncGuardedTool[P, R]: ...  # type: ignore[overload-overlap]
@overload
def guard(function: Callable[P, R], /) -> GuardedTool[P, R]: ...
@overload
def guard(
    *,
    config: GuardConfig | None = None,
    extra_middleware: Iterable[object] = (),
    **fields: Any,
) -> _Decorator: ...
def guard(
    function: Callable[..., Any] | None = None,
    /,
    *,
    config: GuardConfig | None = None,
    extra_middleware: Iterable[object] = (),
    **fields: Any,
) -> Any:
    """Run a function through guards: `@guard`, `@guard(max_retries=2)`, `@guard(config=...)`.

    Any: `fields` are `GuardConfig` fields, checked by it; the result's type depends on the
    overload taken.
    """
    pipeline = _pipeline(config, extra_middleware, fields)
    if function is None:
        return _Decorator(pipeline)
    return _Decorator(pipeline)(function)


class _Decorator:
    """`@guard(...)` with options: applies one pipeline to the function it decorates."""

    def __init__(self, pipeline: MiddlewarePipeline) -> None:
        self._pipeline = pipeline

    @overload
    def __call__(self, function: Callable[P, Awaitable[R]], /) -> AsyncGuardedTool[P, R]: ...  # type: ignore[overload-overlap]
    @overload
    def __call__(self, function: Callable[P, R], /) -> GuardedTool[P, R]: ...
    def __call__(self, function: Callable[..., Any], /) -> Any:
        if not callable(function):
            raise ConfigError(f"@guard needs a function, got {function!r}")
        if inspect.iscoroutinefunction(function):
            return AsyncGuardedTool(function, self._pipeline)
        return GuardedTool(function, self._pipeline)
